//! What reaches the user's terminal. Model text, tool output and summaries, file names, feature
//! descriptions and session notes all come from the model or the agent, and a terminal obeys
//! the control sequences in what it prints: `ESC ] 52` writes the clipboard, `ESC ] 8` makes
//! a link whose text lies about its target, `ESC [ 2 J` clears the screen, `ESC P`/`ESC _`
//! strings reach terminal extensions, `\r` and backspaces overwrite what was printed before
//! (a harmless-looking line can hide the real one). So every byte of text the CLI prints to a
//! terminal (or to a log a terminal will show later: stderr is not always a terminal but is
//! usually read on one) goes through [`sanitize`] or, for text that streams in pieces, a
//! [`StreamSanitizer`].
//!
//! What is removed: CSI sequences (`ESC [` or C1 `0x9B` … final byte), OSC (`ESC ]`/`0x9D`, up
//! to BEL or ST — clipboard and hyperlinks included), DCS, SOS, PM and APC strings (`ESC P`,
//! `ESC X`, `ESC ^`, `ESC _` and their C1 forms, up to ST), other escape sequences (`ESC (`,
//! `ESC 7`, `ESC c`...), a bare ESC, every C1 control (U+0080–U+009F), every C0 control but
//! `\n` and `\t` (so BEL, backspace, `\r`, form feed...), DEL, and the Unicode bidirectional
//! overrides and isolates (U+202A–U+202E, U+2066–U+2069), which reorder what is shown. Nothing
//! is replaced by a placeholder: text around a removed sequence stays, so nothing it hid is
//! lost. A string sequence (OSC, DCS...) that never ends is cut at the next newline, so one bad
//! byte cannot swallow the rest of a session's output.
//!
//! Decisions:
//! - `--json` output keeps the exact text (events are data; a consumer may need the raw
//!   bytes). JSON escaping already turns every C0 control into `\u00XX`; [`json_line`] also
//!   escapes DEL and the C1 controls, which JSON allows raw, so not one byte of a JSON line is a
//!   control for a terminal that shows it.
//! - The state dir's `events.jsonl` and transcripts are files, not output: they keep the raw
//!   text (what the model really sent is evidence).

/// Parser state between chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Ground,
    /// After ESC.
    Escape,
    /// After ESC and intermediate bytes (`ESC (`, `ESC #`...), waiting for the final byte.
    EscapeIntermediate,
    /// In a CSI sequence: parameters and intermediates until a final byte.
    Csi,
    /// In an OSC, DCS, SOS, PM or APC string, until ST (or BEL, which also ends OSC).
    String,
    /// ESC inside a string: `\` makes it ST.
    StringEscape,
}

/// A sanitiser for text that arrives in pieces (streamed model text): a sequence split across
/// two pieces is still recognised and removed, because the parser state carries over.
#[derive(Debug, Default)]
pub struct StreamSanitizer {
    state: State,
}

impl StreamSanitizer {
    pub fn new() -> StreamSanitizer {
        StreamSanitizer::default()
    }

    /// The printable part of the next piece of text.
    pub fn push(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            self.step(c, &mut out);
        }
        out
    }

    /// Ends the stream: a sequence left unfinished is dropped, and the next text starts fresh.
    pub fn finish(&mut self) {
        self.state = State::Ground;
    }

    fn step(&mut self, c: char, out: &mut String) {
        const ESC: char = '\x1b';
        const BEL: char = '\x07';
        match self.state {
            State::Ground => match c {
                ESC => self.state = State::Escape,
                '\u{9b}' => self.state = State::Csi,
                '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => self.state = State::String,
                '\n' | '\t' => out.push(c),
                c if c.is_control() || is_bidi_control(c) => {}
                c => out.push(c),
            },
            State::Escape => match c {
                '[' => self.state = State::Csi,
                ']' | 'P' | 'X' | '^' | '_' => self.state = State::String,
                ESC => {}
                '\x20'..='\x2f' => self.state = State::EscapeIntermediate,
                '\x30'..='\x7e' => self.state = State::Ground,
                // Not a sequence after all: drop the ESC, keep the character.
                c => {
                    self.state = State::Ground;
                    self.step(c, out);
                }
            },
            State::EscapeIntermediate => match c {
                '\x20'..='\x2f' => {}
                '\x30'..='\x7e' => self.state = State::Ground,
                c => {
                    self.state = State::Ground;
                    self.step(c, out);
                }
            },
            State::Csi => match c {
                '\x20'..='\x3f' => {}
                '\x40'..='\x7e' => self.state = State::Ground,
                c => {
                    self.state = State::Ground;
                    self.step(c, out);
                }
            },
            State::String => match c {
                BEL | '\u{9c}' => self.state = State::Ground,
                ESC => self.state = State::StringEscape,
                // An unterminated string ends at the line's end; the newline is kept.
                '\n' => {
                    self.state = State::Ground;
                    out.push('\n');
                }
                _ => {}
            },
            State::StringEscape => match c {
                '\\' => self.state = State::Ground,
                ESC => {}
                '\n' => {
                    self.state = State::Ground;
                    out.push('\n');
                }
                _ => self.state = State::String,
            },
        }
    }
}

/// Unicode controls that reorder how text is displayed ("Trojan Source").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` without terminal control sequences and control characters (`\n` and `\t` kept).
pub fn sanitize(text: &str) -> String {
    StreamSanitizer::new().push(text)
}

/// One line of JSON for `value`, with DEL and the C1 controls escaped too (JSON escapes C0
/// already); the text it carries is unchanged.
pub fn json_line<T: serde::Serialize>(value: &T) -> serde_json::Result<String> {
    let json = serde_json::to_string(value)?;
    Ok(escape_c1(json))
}

/// [`json_line`], pretty-printed.
pub fn json_pretty<T: serde::Serialize>(value: &T) -> serde_json::Result<String> {
    let json = serde_json::to_string_pretty(value)?;
    Ok(escape_c1(json))
}

fn escape_c1(json: String) -> String {
    if !json.chars().any(|c| ('\u{7f}'..='\u{9f}').contains(&c)) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        // Outside strings JSON is plain ASCII, so any such character is inside a string,
        // where `\u00XX` means the same character.
        if ('\u{7f}'..='\u{9f}').contains(&c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nasty sequences seen in the wild or in terminal-escape advisories, with what must
    /// remain.
    const CORPUS: &[(&str, &str)] = &[
        ("plain text\n\twith tab", "plain text\n\twith tab"),
        // OSC 52: write "pwned" to the clipboard, BEL- and ST-terminated, and in C1 form.
        ("a\x1b]52;c;cHduZWQ=\x07b", "ab"),
        ("a\x1b]52;c;cHduZWQ=\x1b\\b", "ab"),
        ("a\u{9d}52;c;cHduZWQ=\u{9c}b", "ab"),
        // OSC 8 hyperlink: the text stays, the lying target goes.
        (
            "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\",
            "click me",
        ),
        // OSC 0 window title.
        ("\x1b]0;owned title\x07ok", "ok"),
        // CSI: clear screen, home, colours, cursor moves, private modes, DECRQSS answerback.
        ("\x1b[2J\x1b[Hhello\x1b[31;1mred\x1b[0m", "hellored"),
        ("x\x1b[?1049hy\x1b[?25l", "xy"),
        ("up\x1b[1A\x1b[2Kover", "upover"),
        ("\u{9b}2Jc1 csi", "c1 csi"),
        // DCS (DECRQSS, sixel), SOS, PM, APC (kitty graphics), with 7- and 8-bit forms.
        ("d\x1bP$q\"p\x1b\\cs", "dcs"),
        ("a\x1bXsos string\x1b\\b", "ab"),
        ("a\x1b^pm string\x1b\\b", "ab"),
        ("a\x1b_Gf=100;AAAA\x1b\\b", "ab"),
        ("a\u{90}dcs\u{9c}b\u{9f}apc\u{9c}c", "abc"),
        // Other escapes: charset switch, save/restore cursor, full reset, bare ESC.
        ("\x1b(0lqk\x1b(B", "lqk"),
        ("\x1b7saved\x1b8\x1bc", "saved"),
        ("bare\x1b", "bare"),
        ("esc\x1b\x1b[1mx", "escx"),
        // BEL, backspace and carriage-return tricks: everything stays visible, in order.
        ("ding\x07", "ding"),
        ("rm -rf /\x08\x08\x08\x08\x08\x08\x08\x08ls", "rm -rf /ls"),
        ("evil command\rsafe command", "evil commandsafe command"),
        ("line\r\n", "line\n"),
        // Other C0, DEL, C1.
        ("a\x00b\x0bc\x0cd\x7fe\u{85}f\u{8d}g", "abcdefg"),
        // Bidi overrides reorder what is shown.
        ("if admin \u{202e}} \u{2066}x", "if admin } x"),
        // An unterminated string ends at the line's end, not the stream's.
        ("a\x1b]52;c;never ends\nnext line", "a\nnext line"),
        // Unicode text is kept.
        ("héllo wörld — ✓ 日本", "héllo wörld — ✓ 日本"),
    ];

    #[test]
    fn the_corpus_is_sanitised() {
        for (input, want) in CORPUS {
            assert_eq!(sanitize(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn no_output_byte_is_a_control_but_newline_and_tab() {
        for (input, _) in CORPUS {
            let out = sanitize(input);
            assert!(
                out.chars()
                    .all(|c| c == '\n' || c == '\t' || !c.is_control()),
                "{input:?} -> {out:?}"
            );
        }
    }

    /// A sequence cut anywhere across two streamed pieces is removed all the same.
    #[test]
    fn sequences_split_across_chunks_do_not_leak() {
        for (input, want) in CORPUS {
            let chars: Vec<char> = input.chars().collect();
            for cut in 0..=chars.len() {
                let (a, b): (String, String) =
                    (chars[..cut].iter().collect(), chars[cut..].iter().collect());
                let mut s = StreamSanitizer::new();
                let out = s.push(&a) + &s.push(&b);
                assert_eq!(&out, want, "input {input:?} cut at {cut}");
            }
        }
        // Char by char, too.
        let mut s = StreamSanitizer::new();
        let out: String = "x\x1b]52;c;AAAA\x07y"
            .chars()
            .map(|c| s.push(&c.to_string()))
            .collect();
        assert_eq!(out, "xy");
    }

    #[test]
    fn finish_drops_an_unfinished_sequence() {
        let mut s = StreamSanitizer::new();
        assert_eq!(s.push("text\x1b]52;c;"), "text");
        s.finish();
        assert_eq!(s.push("visible"), "visible");
    }

    #[test]
    fn json_keeps_the_text_and_escapes_every_control() {
        let text = "a\x1b]52;c;x\x07b\u{9b}2J\x7f";
        let line = json_line(&serde_json::json!({ "text": text })).unwrap();
        assert!(line.chars().all(|c| !c.is_control()), "{line:?}");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["text"], text);
    }
}
