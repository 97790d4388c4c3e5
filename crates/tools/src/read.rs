//! `read_file {path, offset?, limit?}`: numbered lines, streamed so a huge file is never loaded
//! whole.

use std::io::{BufRead, BufReader};

use sandbox::untrusted::UntrustedDir;
use sandbox::{Access, ProjectRoot};
use serde_json::Value;

use crate::args::Args;
use crate::outcome::{io_message, project_relative, shown_path, untrusted_message, ToolOutcome};

/// Lines shown when `limit` is not given.
pub const READ_DEFAULT_LIMIT: u64 = 2000;
/// A longer line is cut.
pub const READ_MAX_LINE_CHARS: usize = 2000;
/// A bigger file is read only in parts (offset/limit).
pub const READ_MAX_WHOLE_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Output stops growing past this many bytes of text (about 8k tokens, so one read cannot
/// flood the conversation); the trailer says where to continue.
pub const READ_MAX_OUTPUT_BYTES: usize = 32 * 1024;
/// Bytes looked at to tell a binary file (one with a NUL byte) from text.
pub(crate) const BINARY_SNIFF_BYTES: usize = 8192;

/// The file is opened through [`UntrustedDir`] (the harness runs this tool unconfined): no link
/// is followed even if one is swapped in after the path was resolved, a FIFO, socket or device
/// is refused without blocking, and nothing past the size the file had when opened is read.
pub(crate) fn read_file(
    root: &ProjectRoot,
    files: &UntrustedDir,
    input: &Value,
) -> Result<ToolOutcome, String> {
    let args = Args::parse("read_file", input, &["path", "offset", "limit"])?;
    let path = args.required_str("path")?;
    let offset = args.optional_positive_int("offset")?;
    let limit = args.optional_positive_int("limit")?;

    let abs = root
        .resolve(path, Access::Read)
        .map_err(|e| e.to_string())?;
    let shown = shown_path(root.path(), &abs);
    let mut file = files
        .open_file(project_relative(root, &abs))
        .map_err(|e| untrusted_message(&shown, &e))?;
    let size = file.len();
    if size > READ_MAX_WHOLE_FILE_BYTES && offset.is_none() && limit.is_none() {
        return Err(format!(
            "{shown} is {size} bytes, more than the {} MB read_file shows at once; read a part \
             with offset and limit (e.g. offset 1, limit 200), or search it with grep",
            READ_MAX_WHOLE_FILE_BYTES / (1024 * 1024)
        ));
    }

    let mut reader = BufReader::with_capacity(64 * 1024, file.reader());
    let head = reader.fill_buf().map_err(|e| io_message(&shown, &e))?;
    if head.iter().take(BINARY_SNIFF_BYTES).any(|&b| b == 0) {
        return Err(format!(
            "{shown} looks like a binary file ({size} bytes, contains NUL bytes), so it is not \
             shown; inspect it with bash if you must (e.g. `file {shown}` or `xxd {shown} | head`)"
        ));
    }
    if size == 0 {
        return Ok(ToolOutcome::success(
            format!("read_file: {shown} (empty)"),
            format!("{shown} is empty (0 bytes)"),
        ));
    }

    let first = offset.unwrap_or(1);
    let limit = limit.unwrap_or(READ_DEFAULT_LIMIT);
    let io_err = |e: std::io::Error| io_message(&shown, &e);
    let mut line = Vec::new();
    let mut number: u64 = 0;
    // Skip to the first wanted line.
    while number + 1 < first {
        match next_line(&mut reader, &mut line, 0).map_err(io_err)? {
            Some(_) => number += 1,
            None => {
                return Err(format!(
                    "offset {first} is past the end of {shown}, which has {number} line{}",
                    plural(number)
                ))
            }
        }
    }

    let keep_bytes = READ_MAX_LINE_CHARS * 4;
    let mut out = String::new();
    let mut shown_lines: u64 = 0;
    let mut output_capped = false;
    while shown_lines < limit {
        if out.len() >= READ_MAX_OUTPUT_BYTES {
            output_capped = true;
            break;
        }
        let Some(bytes_cut) = next_line(&mut reader, &mut line, keep_bytes).map_err(io_err)? else {
            break;
        };
        number += 1;
        shown_lines += 1;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let text = String::from_utf8_lossy(&line);
        let (text, chars_cut) = match text.char_indices().nth(READ_MAX_LINE_CHARS) {
            Some((i, _)) => (&text[..i], true),
            None => (&text[..], false),
        };
        out.push_str(&format!("{number:>6}\t{text}"));
        if bytes_cut || chars_cut {
            out.push_str(&format!(
                " … [line cut at {READ_MAX_LINE_CHARS} characters]"
            ));
        }
        out.push('\n');
    }
    if shown_lines == 0 {
        return Err(format!(
            "offset {first} is past the end of {shown}, which has {number} line{}",
            plural(number)
        ));
    }
    let last = number;

    // How much is left: counted when the file is small enough to scan, else only noticed.
    let mut remaining: u64 = 0;
    let countable = size <= READ_MAX_WHOLE_FILE_BYTES;
    loop {
        if !countable && remaining > 0 {
            break;
        }
        match next_line(&mut reader, &mut line, 0).map_err(io_err)? {
            Some(_) => remaining += 1,
            None => break,
        }
    }

    let summary;
    if remaining == 0 {
        summary = format!("read_file: {shown} (lines {first}-{last} of {last})");
    } else if countable {
        let total = last + remaining;
        summary = format!("read_file: {shown} (lines {first}-{last} of {total})");
        out.push_str(&format!(
            "\n[{shown} has {total} lines; showed {first}-{last}, {remaining} more line{} — \
             call read_file with offset {} to continue{}]\n",
            plural(remaining),
            last + 1,
            if output_capped {
                format!("; output stopped at {} KB", READ_MAX_OUTPUT_BYTES / 1024)
            } else {
                String::new()
            }
        ));
    } else {
        summary = format!("read_file: {shown} (lines {first}-{last})");
        out.push_str(&format!(
            "\n[showed lines {first}-{last}; {shown} ({size} bytes) continues — call read_file \
             with offset {} to continue]\n",
            last + 1
        ));
    }
    Ok(ToolOutcome::success(summary, out))
}

/// Reads the next line (without its `\n`) into `buf`, keeping at most `keep` bytes of it.
/// Returns `None` at the end of the file, else whether the line was longer than `keep`.
fn next_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    keep: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut read_any = false;
    let mut cut = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(read_any.then_some(cut));
        }
        read_any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        let room = keep.saturating_sub(buf.len());
        if chunk.len() > room {
            cut = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let consumed = newline.map_or(available.len(), |i| i + 1);
        reader.consume(consumed);
        if newline.is_some() {
            return Ok(Some(cut));
        }
    }
}

pub(crate) fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The `read_file` tool.
pub(crate) struct ReadFile(pub(crate) crate::project_files::ProjectFiles);

impl crate::registry::Tool for ReadFile {
    fn spec(&self) -> llm::ToolSpec {
        crate::specs::read_file()
    }

    fn call<'a>(&'a self, input: &'a Value) -> crate::registry::BoxFuture<'a, ToolOutcome> {
        let (project, input) = (self.0.clone(), input.clone());
        crate::project_files::blocking("read_file", move || {
            read_file(project.root(), project.files(), &input)
        })
    }
}
