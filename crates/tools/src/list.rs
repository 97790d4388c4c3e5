//! `list_files {path?, pattern?}`: the files under a directory, as the agent should see them.

use sandbox::untrusted::{FileKind, UntrustedDir};
use sandbox::{Access, ProjectRoot};
use serde_json::Value;

use crate::args::Args;
use crate::outcome::{
    project_relative, shown_name, shown_path, shown_rel, untrusted_message, ToolOutcome,
};
use crate::walk::{walk, IgnoreRules, PathGlob, WALK_MAX_ENTRIES};

/// Entries shown at most; the output says how many more there were.
pub const LIST_MAX_ENTRIES: usize = 1000;

/// Directories are shown with a trailing `/`, symbolic links as `name -> target` (never
/// followed), FIFOs, sockets and devices with their kind in brackets.
pub(crate) fn list_files(
    root: &ProjectRoot,
    files: &UntrustedDir,
    input: &Value,
) -> Result<ToolOutcome, String> {
    let args = Args::parse("list_files", input, &["path", "pattern"])?;
    let path = args.optional_str("path")?.unwrap_or(".");
    let pattern = args.optional_str("pattern")?;
    let glob = pattern.map(|p| PathGlob::new("pattern", p)).transpose()?;

    let start = root
        .resolve(path, Access::Read)
        .map_err(|e| e.to_string())?;
    let shown = shown_path(root.path(), &start);
    let start_rel = project_relative(root, &start);
    let kind = match files.stat(start_rel) {
        Ok(Some(st)) => st.kind,
        Ok(None) => {
            return Err(format!(
                "{shown} does not exist; check the path with list_files"
            ))
        }
        Err(e) => return Err(untrusted_message(&shown, &e)),
    };
    if kind != FileKind::Directory {
        return Ok(ToolOutcome::success(
            format!("list_files: {shown} ({kind})"),
            format!("{shown} is {kind}, not a directory\n{shown}\n"),
        ));
    }

    let mut entries: Vec<String> = Vec::new();
    let mut total = 0usize;
    let mut visited = 0usize;
    let mut unreadable = 0usize;
    let mut walk_capped = false;
    let mut rules = IgnoreRules::new(files);
    let walker = walk(&mut rules, start_rel).map_err(|e| untrusted_message(&shown, &e))?;
    for entry in walker {
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
        let from_root = entry.rel.as_path();
        let from_start = from_root.strip_prefix(start_rel).unwrap_or(from_root);
        if let Some(glob) = &glob {
            if !glob.is_match(from_root, from_start) {
                continue;
            }
        }
        total += 1;
        if entries.len() < LIST_MAX_ENTRIES {
            let mut line = shown_rel(from_root);
            match entry.kind {
                FileKind::Regular => {}
                FileKind::Directory => line.push('/'),
                FileKind::Symlink => {
                    let target = files
                        .read_link(from_root)
                        .map(|t| shown_name(&t.to_string_lossy()))
                        .unwrap_or_else(|_| "?".into());
                    line.push_str(&format!(" -> {target}"));
                }
                other => line.push_str(&format!(" [{other}]")),
            }
            entries.push(line);
        }
    }
    let notes = rules.notes;

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
    for note in notes {
        out.push_str(&format!("[{note}]\n"));
    }
    Ok(ToolOutcome::success(
        format!("list_files: {shown} ({total} entries)"),
        out,
    ))
}

/// The `list_files` tool.
pub(crate) struct ListFiles(pub(crate) crate::project_files::ProjectFiles);

impl crate::registry::Tool for ListFiles {
    fn spec(&self) -> llm::ToolSpec {
        crate::specs::list_files()
    }

    fn call<'a>(&'a self, input: &'a Value) -> crate::registry::BoxFuture<'a, ToolOutcome> {
        let (project, input) = (self.0.clone(), input.clone());
        crate::project_files::blocking("list_files", move || {
            list_files(project.root(), project.files(), &input)
        })
    }
}
