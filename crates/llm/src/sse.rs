//! The one Server-Sent Events parser: incremental over byte chunks.
//!
//! Lines may be split anywhere across chunks and end in `\n` or `\r\n`. `event:` names the
//! event, `data:` lines are joined with `\n`, lines starting with `:` are comments (OpenRouter's
//! `: OPENROUTER PROCESSING` keep-alives) and are skipped, and a blank line dispatches the event.
//! Other fields (`id:`, `retry:`) are ignored.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if the server sent one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser; feed it chunks with [`SseParser::push`] and call [`SseParser::finish`]
/// at the end of the body.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not yet terminated.
    partial: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Consumes a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            rest = &tail[1..];
            if self.partial.is_empty() {
                self.line(head, &mut out);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.line(&line, &mut out);
            }
        }
        self.partial.extend_from_slice(rest);
        out
    }

    /// Ends the body. A last line without its line ending was cut off and is discarded (as
    /// the SSE specification says); an event whose lines all ended but which lacks the final
    /// blank line is still dispatched (lenient toward servers that omit it).
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.partial.clear();
        self.dispatch(&mut out);
        out
    }

    fn line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            self.dispatch(out);
            return;
        }
        if raw.first() == Some(&b':') {
            return;
        }
        let line = String::from_utf8_lossy(raw);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if self.has_data {
            self.has_data = false;
            out.push(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn all(parts: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for part in parts {
            out.extend(p.push(part));
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn parses_events_data_and_comments() {
        let evs =
            all(&[b"event: ping\ndata: {}\n\n: OPENROUTER PROCESSING\n\ndata: a\ndata: b\n\n"]);
        assert_eq!(
            evs,
            vec![
                SseEvent {
                    event: Some("ping".into()),
                    data: "{}".into()
                },
                SseEvent {
                    event: None,
                    data: "a\nb".into()
                },
            ]
        );
    }

    #[test]
    fn handles_crlf_and_split_lines() {
        let evs = all(&[b"event: x\r", b"\ndata: hel", b"lo\r\n\r", b"\n"]);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].event.as_deref(), Some("x"));
        assert_eq!(evs[0].data, "hello");
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_does_not_leak_its_name() {
        let evs = all(&[b"event: lonely\n\ndata: x\n\n"]);
        assert_eq!(
            evs,
            vec![SseEvent {
                event: None,
                data: "x".into()
            }]
        );
    }

    #[test]
    fn finish_dispatches_a_terminated_event_but_drops_a_cut_line() {
        let evs = all(&[b"data: [DONE]\n"]);
        assert_eq!(evs[0].data, "[DONE]");
        let evs = all(&[b"data: {\"a\":1}\n\ndata: {\"b\""]);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].data, "{\"a\":1}");
    }

    #[test]
    fn multibyte_text_split_inside_a_character() {
        let body = "data: h\u{e9}llo \u{1f600}\n\n".as_bytes();
        for cut in 0..body.len() {
            let evs = all(&[&body[..cut], &body[cut..]]);
            assert_eq!(evs[0].data, "h\u{e9}llo \u{1f600}", "cut at {cut}");
        }
    }
}
