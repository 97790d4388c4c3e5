//! `grep {pattern, path?, glob?}`: regex search over the files the agent should see.

use std::io::Read;
use std::path::PathBuf;

use grep_regex::RegexMatcherBuilder;
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use sandbox::untrusted::{FileKind, UntrustedDir, UntrustedFile};
use sandbox::{Access, ProjectRoot};
use serde_json::Value;

use crate::args::{preview, Args};
use crate::outcome::{project_relative, shown_path, shown_rel, untrusted_message, ToolOutcome};
use crate::read::BINARY_SNIFF_BYTES;
use crate::walk::{walk, IgnoreRules, PathGlob, WALK_MAX_ENTRIES};

/// Matching lines shown at most.
pub const GREP_MAX_MATCHES: usize = 500;
/// A longer matching line is cut.
pub const GREP_MAX_LINE_CHARS: usize = 300;

/// Only regular files are searched, each opened through [`UntrustedDir`] (no link followed, no
/// FIFO opened) and read no further than its size when opened.
pub(crate) fn grep(
    root: &ProjectRoot,
    files: &UntrustedDir,
    input: &Value,
) -> Result<ToolOutcome, String> {
    let args = Args::parse("grep", input, &["pattern", "path", "glob"])?;
    let pattern = args.required_str("pattern")?;
    let path = args.optional_str("path")?.unwrap_or(".");
    let glob = args
        .optional_str("glob")?
        .map(|g| PathGlob::new("glob", g))
        .transpose()?;
    let matcher = RegexMatcherBuilder::new()
        .line_terminator(Some(b'\n'))
        .build(pattern)
        .map_err(|e| {
            format!(
                "`{pattern}` is not a valid regular expression (Rust regex syntax): {e}; escape \
                 special characters like ( [ . * + ? with a backslash to match them literally"
            )
        })?;

    let start = root
        .resolve(path, Access::Read)
        .map_err(|e| e.to_string())?;
    let shown = shown_path(root.path(), &start);
    let start_rel = project_relative(root, &start);
    let start_kind = match files.stat(start_rel) {
        Ok(Some(st)) => st.kind,
        Ok(None) => {
            return Err(format!(
                "{shown} does not exist; check the path with list_files"
            ))
        }
        Err(e) => return Err(untrusted_message(&shown, &e)),
    };

    let mut searcher = SearcherBuilder::new()
        .binary_detection(BinaryDetection::quit(0))
        .line_number(true)
        .build();
    let mut out = String::new();
    let mut matches = 0usize;
    let mut files_with_matches = 0usize;
    let mut binary_skipped = 0usize;
    let mut unreadable = 0usize;
    let mut capped = false;
    let mut walk_capped = false;
    let mut visited = 0usize;
    let mut rules = IgnoreRules::new(files);
    // A file given as the path is searched whatever the ignore files say.
    let candidates: Box<dyn Iterator<Item = Result<(PathBuf, FileKind), ()>> + '_> =
        if start_kind == FileKind::Directory {
            let walker = walk(&mut rules, start_rel).map_err(|e| untrusted_message(&shown, &e))?;
            Box::new(walker.map(|e| e.map(|e| (e.rel, e.kind)).map_err(|_| ())))
        } else {
            Box::new(std::iter::once(Ok((start_rel.to_path_buf(), start_kind))))
        };
    for candidate in candidates {
        if capped {
            break;
        }
        visited += 1;
        if visited > WALK_MAX_ENTRIES {
            walk_capped = true;
            break;
        }
        let Ok((from_root, kind)) = candidate else {
            unreadable += 1;
            continue;
        };
        if kind != FileKind::Regular {
            continue;
        }
        let from_start = from_root.strip_prefix(start_rel).unwrap_or(&from_root);
        if let Some(glob) = &glob {
            if !glob.is_match(&from_root, from_start) {
                continue;
            }
        }
        let Ok(mut file) = files.open_file(&from_root) else {
            unreadable += 1;
            continue;
        };
        match looks_binary(&mut file) {
            Ok(true) => {
                binary_skipped += 1;
                continue;
            }
            Ok(false) => {}
            Err(_) => {
                unreadable += 1;
                continue;
            }
        }
        let name = shown_rel(&from_root);
        let before = matches;
        let result = searcher.search_reader(
            &matcher,
            file.reader(),
            Lossy(|line_number, line| {
                if matches >= GREP_MAX_MATCHES {
                    capped = true;
                    return Ok(false);
                }
                matches += 1;
                let text = line.trim_end_matches(['\n', '\r']);
                out.push_str(&format!(
                    "{name}:{line_number}:{}\n",
                    preview(text, GREP_MAX_LINE_CHARS)
                ));
                Ok(true)
            }),
        );
        if result.is_err() {
            unreadable += 1;
        }
        if matches > before {
            files_with_matches += 1;
        }
    }
    let notes = std::mem::take(&mut rules.notes);

    if matches == 0 {
        out.push_str(&format!("no matches for `{pattern}` in {shown}\n"));
    }
    if capped {
        out.push_str(&format!(
            "[stopped after {GREP_MAX_MATCHES} matching lines; narrow the search with path, glob \
             or a more specific pattern]\n"
        ));
    }
    if walk_capped {
        out.push_str(&format!(
            "[stopped after visiting {WALK_MAX_ENTRIES} entries; search a subdirectory or use glob]\n"
        ));
    }
    if binary_skipped > 0 {
        out.push_str(&format!(
            "[{binary_skipped} binary file{} skipped]\n",
            if binary_skipped == 1 { "" } else { "s" }
        ));
    }
    if unreadable > 0 {
        out.push_str(&format!("[{unreadable} entries could not be read]\n"));
    }
    for note in notes {
        out.push_str(&format!("[{note}]\n"));
    }
    Ok(ToolOutcome::success(
        format!(
            "grep: {} in {shown} → {matches} match{} in {files_with_matches} file{}",
            preview(pattern, 40),
            if matches == 1 { "" } else { "es" },
            if files_with_matches == 1 { "" } else { "s" }
        ),
        out,
    ))
}

/// Whether the start of `file` has a NUL byte; leaves it at its start again.
fn looks_binary(file: &mut UntrustedFile) -> std::io::Result<bool> {
    let mut head = Vec::with_capacity(BINARY_SNIFF_BYTES);
    file.reader()
        .take(BINARY_SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    file.rewind()?;
    Ok(head.contains(&0))
}

/// The `grep` tool.
pub(crate) struct Grep(pub(crate) crate::project_files::ProjectFiles);

impl crate::registry::Tool for Grep {
    fn spec(&self) -> llm::ToolSpec {
        crate::specs::grep()
    }

    fn call<'a>(&'a self, input: &'a Value) -> crate::registry::BoxFuture<'a, ToolOutcome> {
        let (project, input) = (self.0.clone(), input.clone());
        crate::project_files::blocking("grep", move || {
            grep(project.root(), project.files(), &input)
        })
    }
}
