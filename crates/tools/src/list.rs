//! `list_files {path?, pattern?}`: the files under a directory, as the agent should see them.

use sandbox::{Access, ProjectRoot};
use serde_json::Value;

use crate::args::Args;
use crate::outcome::{io_message, shown_path, ToolOutcome};
use crate::walk::{walk, PathGlob, WALK_MAX_ENTRIES};

/// Entries shown at most; the output says how many more there were.
pub const LIST_MAX_ENTRIES: usize = 1000;

pub(crate) fn list_files(root: &ProjectRoot, input: &Value) -> Result<ToolOutcome, String> {
    let args = Args::parse("list_files", input, &["path", "pattern"])?;
    let path = args.optional_str("path")?.unwrap_or(".");
    let pattern = args.optional_str("pattern")?;
    let glob = pattern.map(|p| PathGlob::new("pattern", p)).transpose()?;

    let start = root
        .resolve(path, Access::Read)
        .map_err(|e| e.to_string())?;
    let shown = shown_path(root.path(), &start);
    let meta = std::fs::metadata(&start).map_err(|e| io_message(&shown, &e))?;
    if !meta.is_dir() {
        return Ok(ToolOutcome::success(
            format!("list_files: {shown} (a file)"),
            format!("{shown} is a file, not a directory\n{shown}\n"),
        ));
    }

    let mut entries: Vec<String> = Vec::new();
    let mut total = 0usize;
    let mut visited = 0usize;
    let mut unreadable = 0usize;
    let mut walk_capped = false;
    for entry in walk(&start) {
        visited += 1;
        if visited > WALK_MAX_ENTRIES {
            walk_capped = true;
            break;
        }
        let entry = match entry {
            Ok(e) => e,
            Err(_) => {
                unreadable += 1;
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let from_start = entry.path().strip_prefix(&start).unwrap_or(entry.path());
        let from_root = entry
            .path()
            .strip_prefix(root.path())
            .unwrap_or(entry.path());
        if let Some(glob) = &glob {
            if !glob.is_match(from_root, from_start) {
                continue;
            }
        }
        total += 1;
        if entries.len() < LIST_MAX_ENTRIES {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            let mut line = shown_path(root.path(), entry.path());
            if is_dir {
                line.push('/');
            }
            entries.push(line);
        }
    }

    let mut out = String::new();
    if entries.is_empty() {
        out.push_str(&match pattern {
            Some(p) => format!("no entries under {shown} match `{p}`\n"),
            None => format!("{shown} is empty (or everything in it is ignored)\n"),
        });
    }
    for line in &entries {
        out.push_str(line);
        out.push('\n');
    }
    if total > entries.len() {
        out.push_str(&format!(
            "[showed {} of {total} entries; narrow the listing with path or pattern]\n",
            entries.len()
        ));
    }
    if walk_capped {
        out.push_str(&format!(
            "[stopped after visiting {WALK_MAX_ENTRIES} entries; list a subdirectory]\n"
        ));
    }
    if unreadable > 0 {
        out.push_str(&format!("[{unreadable} entries could not be read]\n"));
    }
    Ok(ToolOutcome::success(
        format!("list_files: {shown} ({total} entries)"),
        out,
    ))
}
