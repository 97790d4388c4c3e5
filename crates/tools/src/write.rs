//! `write_file {path, content}` and `edit_file {path, old_string, new_string, replace_all?}`:
//! confined, frozen-aware, atomic.

use std::path::{Path, PathBuf};

use sandbox::untrusted::{FileKind, InTheWay, UntrustedDir};
use sandbox::{Access, ProjectRoot};
use serde_json::Value;

use crate::args::Args;
use crate::guarded::FrozenFiles;
use crate::outcome::{project_relative, shown_path, untrusted_message, ToolOutcome};
use crate::read::{plural, READ_MAX_WHOLE_FILE_BYTES};

/// The message for a write to a frozen file.
pub(crate) fn frozen_refusal(rel: &Path) -> String {
    format!(
        "{} is frozen: the feature checks written during planning cannot be changed; change the \
         code under test instead",
        rel.display()
    )
}

/// Resolves `path` for writing (the sandbox refuses escapes and protected paths, and resolves
/// symlinks to their physical target) and refuses frozen files.
fn resolve_for_write(
    root: &ProjectRoot,
    frozen: &FrozenFiles,
    path: &str,
) -> Result<PathBuf, String> {
    let abs = root
        .resolve(path, Access::Write)
        .map_err(|e| e.to_string())?;
    match frozen.frozen_path_of(&abs) {
        Some(rel) => Err(frozen_refusal(rel)),
        None => Ok(abs),
    }
}

/// Written with [`UntrustedDir::replace`]: never through a link, even one swapped in after the
/// path was resolved; a directory in the way is refused, not moved.
pub(crate) fn write_file(
    root: &ProjectRoot,
    files: &UntrustedDir,
    frozen: &FrozenFiles,
    input: &Value,
) -> Result<ToolOutcome, String> {
    let args = Args::parse("write_file", input, &["path", "content"])?;
    let path = args.required_str("path")?;
    let content = args.required_str("content")?;
    let abs = resolve_for_write(root, frozen, path)?;
    let shown = shown_path(root.path(), &abs);
    let rel = project_relative(root, &abs);
    let existed = match files.stat(rel) {
        Ok(Some(st)) if st.kind == FileKind::Directory => {
            return Err(format!("{shown} is a directory; give the path of a file"))
        }
        Ok(found) => found.is_some(),
        Err(e) => return Err(untrusted_message(&shown, &e)),
    };
    files
        .replace(rel, content.as_bytes(), InTheWay::Refuse)
        .map_err(|e| untrusted_message(&shown, &e))?;
    let lines = line_count(content);
    Ok(ToolOutcome::success(
        format!("write_file: {shown} ({lines} line{})", plural(lines)),
        format!(
            "{} {shown}: {} bytes, {lines} line{}",
            if existed { "overwrote" } else { "created" },
            content.len(),
            plural(lines)
        ),
    ))
}

pub(crate) fn edit_file(
    root: &ProjectRoot,
    files: &UntrustedDir,
    frozen: &FrozenFiles,
    input: &Value,
) -> Result<ToolOutcome, String> {
    let args = Args::parse(
        "edit_file",
        input,
        &["path", "old_string", "new_string", "replace_all"],
    )?;
    let path = args.required_str("path")?;
    let old = args.required_str("old_string")?;
    let new = args.required_str("new_string")?;
    let replace_all = args.optional_bool("replace_all")?.unwrap_or(false);
    if old.is_empty() {
        return Err(
            "old_string is empty; give the exact text to replace (read the file first), or use \
             write_file to create or overwrite a whole file"
                .into(),
        );
    }
    if old == new {
        return Err("old_string and new_string are the same, so nothing would change".into());
    }

    let abs = resolve_for_write(root, frozen, path)?;
    let shown = shown_path(root.path(), &abs);
    let rel = project_relative(root, &abs);
    let contents = files
        .read(rel, READ_MAX_WHOLE_FILE_BYTES)
        .map_err(|e| match e {
            e if e.is_not_found() => format!("{shown} does not exist; create it with write_file"),
            e => untrusted_message(&shown, &e),
        })?;
    if contents.truncated {
        return Err(format!(
            "{shown} is {} bytes, too big for edit_file; change it with bash (e.g. sed)",
            contents.size
        ));
    }
    let text = String::from_utf8(contents.bytes)
        .map_err(|_| format!("{shown} is not UTF-8 text; edit_file only edits text files"))?;

    let positions: Vec<usize> = text.match_indices(old).map(|(i, _)| i).collect();
    match positions.len() {
        0 => return Err(not_found_message(&shown, &text, old)),
        1 => {}
        n if !replace_all => {
            return Err(format!(
                "old_string occurs {n} times in {shown} (at lines {}); include more surrounding \
                 lines in old_string to make it unique, or set replace_all to true to replace \
                 every occurrence",
                line_list(&text, &positions)
            ))
        }
        _ => {}
    }
    let (updated, count) = if replace_all {
        (text.replace(old, new), positions.len())
    } else {
        (text.replacen(old, new, 1), 1)
    };
    files
        .replace(rel, updated.as_bytes(), InTheWay::Refuse)
        .map_err(|e| untrusted_message(&shown, &e))?;
    let first_line = line_of(&text, positions[0]);
    Ok(ToolOutcome::success(
        format!(
            "edit_file: {shown} ({count} replacement{})",
            plural(count as u64)
        ),
        format!(
            "edited {shown}: replaced {count} occurrence{} (first at line {first_line})",
            plural(count as u64)
        ),
    ))
}

fn not_found_message(shown: &str, text: &str, old: &str) -> String {
    let mut msg = format!("old_string was not found in {shown}.");
    let trimmed = old.trim();
    if looks_like_read_file_output(old) {
        msg.push_str(
            " It seems to contain the line-number prefixes that read_file shows; leave them out \
             and copy only the text after the tab.",
        );
    } else if old.contains('\n') && !old.contains("\r\n") && text.contains("\r\n") {
        msg.push_str(
            " The file uses CRLF (\\r\\n) line endings; include the \\r in old_string, or use \
             bash (e.g. sed) for this change.",
        );
    } else if !trimmed.is_empty() && trimmed != old && text.contains(trimmed) {
        msg.push_str(
            " It is found when its leading/trailing whitespace is ignored: copy the text \
             exactly, with the file's indentation and line breaks.",
        );
    } else {
        msg.push_str(
            " Read the file first (read_file) and copy the text exactly; whitespace and \
             indentation must match.",
        );
    }
    msg
}

/// Whether `s` starts with read_file's `     12\t` prefix.
fn looks_like_read_file_output(s: &str) -> bool {
    let line = s.lines().next().unwrap_or_default();
    match line.split_once('\t') {
        Some((prefix, _)) => {
            let digits = prefix.trim_start();
            !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text.as_bytes()[..byte]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn line_list(text: &str, positions: &[usize]) -> String {
    let mut lines: Vec<String> = positions
        .iter()
        .take(10)
        .map(|&p| line_of(text, p).to_string())
        .collect();
    if positions.len() > 10 {
        lines.push("…".into());
    }
    lines.join(", ")
}

fn line_count(content: &str) -> u64 {
    let newlines = content.bytes().filter(|&b| b == b'\n').count() as u64;
    if content.is_empty() || content.ends_with('\n') {
        newlines
    } else {
        newlines + 1
    }
}

/// The `write_file` tool: refuses the frozen files.
pub(crate) struct WriteFile {
    pub(crate) project: crate::project_files::ProjectFiles,
    pub(crate) frozen: crate::guarded::FrozenSlot,
}

impl crate::registry::Tool for WriteFile {
    fn spec(&self) -> llm::ToolSpec {
        crate::specs::write_file()
    }

    fn call<'a>(&'a self, input: &'a Value) -> crate::registry::BoxFuture<'a, ToolOutcome> {
        let (project, frozen, input) = (self.project.clone(), self.frozen.get(), input.clone());
        crate::project_files::blocking("write_file", move || {
            write_file(project.root(), project.files(), &frozen, &input)
        })
    }
}

/// The `edit_file` tool: refuses the frozen files.
pub(crate) struct EditFile {
    pub(crate) project: crate::project_files::ProjectFiles,
    pub(crate) frozen: crate::guarded::FrozenSlot,
}

impl crate::registry::Tool for EditFile {
    fn spec(&self) -> llm::ToolSpec {
        crate::specs::edit_file()
    }

    fn call<'a>(&'a self, input: &'a Value) -> crate::registry::BoxFuture<'a, ToolOutcome> {
        let (project, frozen, input) = (self.project.clone(), self.frozen.get(), input.clone());
        crate::project_files::blocking("edit_file", move || {
            edit_file(project.root(), project.files(), &frozen, &input)
        })
    }
}
