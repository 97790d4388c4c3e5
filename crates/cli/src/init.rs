//! `loopwright init [DIR] [--prompts]`: a project to fill in — `app_spec.txt` as a commented
//! template, `loopwright.toml` with every key commented out at its default, and with
//! `--prompts` the built-in prompt templates to edit. Existing files are never overwritten.
//!
//! The configuration file is generated from the doc comments of [`crate::config::FileConfig`]
//! (its source is compiled in), so it cannot drift from the keys the program reads.

use crate::exit::{code, CmdResult, Failure};
use agent::run::prompts::PromptKind;
use anyhow::anyhow;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The project directory to scaffold (created if missing) [default: the current directory].
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also write the built-in prompt templates into DIR/prompts, to edit and pass with
    /// `run --prompts DIR/prompts`.
    #[arg(long)]
    pub prompts: bool,
}

/// The first line of the spec template; `run` refuses a spec that still starts with it.
pub const SPEC_TEMPLATE_MARKER: &str =
    "# loopwright app_spec.txt template: replace this whole file with your application's spec.";

const SPEC_TEMPLATE: &str =
    "# loopwright app_spec.txt template: replace this whole file with your application's spec.
#
# The planning session reads this file, turns it into features with executable checks and
# writes their tests; build sessions then implement them until every check passes. Say:
#
# - what the application is, and who uses it;
# - the language, libraries and layout you want (e.g. \"Python 3 standard library only, a
#   single package `todo/` with a command-line entry point `todo.py`\");
# - each thing it must do, precisely enough to test: inputs, outputs, errors, file formats;
# - what is out of scope.
#
# Example:
#
# A command-line todo list in Python 3 (standard library only). `python3 todo.py add TEXT`
# adds an item and prints its number; `list` prints the open items as `N. TEXT`; `done N`
# marks item N done; items are kept in todo.json in the current directory. Unknown
# commands print usage to stderr and exit 2.
";

const CONFIG_SOURCE: &str = include_str!("config.rs");

/// One key of [`crate::config::FileConfig`] as its source declares it.
#[derive(Debug, PartialEq)]
struct Key {
    name: String,
    /// The doc comment's prose, without the markers.
    doc: Vec<String>,
    /// `[default: X]` or `[example: X]`, as TOML.
    value: Option<String>,
    /// Indented doc lines: an example table.
    example: Vec<String>,
    table: bool,
}

/// The keys of `FileConfig`, read from the source of `config.rs`.
fn config_keys() -> Vec<Key> {
    let mut keys = Vec::new();
    let Some(start) = CONFIG_SOURCE.find("pub struct FileConfig {") else {
        return keys;
    };
    let mut doc: Vec<String> = Vec::new();
    let mut example: Vec<String> = Vec::new();
    for line in CONFIG_SOURCE[start..].lines().skip(1) {
        if line.starts_with('}') {
            break;
        }
        let trimmed = line.trim();
        if let Some(text) = trimmed.strip_prefix("///") {
            let text = text.strip_prefix(' ').unwrap_or(text);
            match text.strip_prefix("    ") {
                Some(ex) => example.push(ex.to_string()),
                None => doc.push(text.trim().to_string()),
            }
        } else if let Some(field) = trimmed.strip_prefix("pub ") {
            let Some((name, ty)) = field.split_once(':') else {
                continue;
            };
            let prose = doc.join(" ");
            let (prose, value) = take_marker(&prose);
            keys.push(Key {
                name: name.trim().to_string(),
                doc: wrap(&prose, 96),
                value,
                example: std::mem::take(&mut example),
                table: ty.contains("Table"),
            });
            doc.clear();
        }
    }
    keys
}

/// Splits `[default: X]` / `[example: X]` off the prose.
fn take_marker(prose: &str) -> (String, Option<String>) {
    for marker in ["[default: ", "[example: "] {
        if let Some(i) = prose.find(marker) {
            let rest = &prose[i + marker.len()..];
            if let Some(end) = rest.rfind(']') {
                let value = rest[..end].trim().to_string();
                let mut text = format!("{}{}", &prose[..i], &rest[end + 1..]);
                text = text.trim().to_string();
                if marker == "[default: " {
                    text = format!("{text} Default: {value}.");
                }
                return (text, Some(value));
            }
        }
    }
    (prose.trim().to_string(), None)
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The `loopwright.toml` that `init` writes: every key commented out, scalars first, then the
/// tables with an example each.
pub fn config_template() -> String {
    let mut out = String::from(
        "# loopwright.toml: this project's configuration. Every key is shown commented out with its\n\
         # default or an example; uncomment to set it. Flags and LOOPWRIGHT_* variables win over\n\
         # this file, which wins over ~/.config/loopwright/config.toml. Unknown keys are errors.\n",
    );
    let keys = config_keys();
    for key in keys.iter().filter(|k| !k.table) {
        out.push('\n');
        for line in &key.doc {
            out.push_str(&format!("# {line}\n"));
        }
        out.push_str(&format!(
            "# {} = {}\n",
            key.name,
            key.value.as_deref().unwrap_or("\"\"")
        ));
    }
    for key in keys.iter().filter(|k| k.table) {
        out.push('\n');
        for line in &key.doc {
            out.push_str(&format!("# {line}\n"));
        }
        for line in &key.example {
            out.push_str(&format!("# {line}\n"));
        }
    }
    out
}

/// Writes `text` to `rel` in `dir` unless something is there already (a dangling link
/// included); says which. The write goes through [`sandbox::untrusted`], so a link the agent
/// left in the project (`app_spec.txt -> ~/.bashrc`) is never written through.
fn write_new(dir: &Path, rel: &Path, text: &str, written: &mut Vec<String>) -> Result<(), Failure> {
    use sandbox::untrusted::{InTheWay, UntrustedDir};
    let path = dir.join(rel);
    let files = UntrustedDir::open(dir).map_err(|e| Failure::usage(anyhow!(e)))?;
    match files.stat(rel) {
        Ok(Some(_)) => {
            eprintln!("kept     {} (it exists)", path.display());
            return Ok(());
        }
        Ok(None) => {}
        Err(e) => {
            return Err(Failure::usage(anyhow!(
                "cannot write {}: {e}",
                path.display()
            )))
        }
    }
    files
        .replace(rel, text.as_bytes(), InTheWay::Refuse)
        .map_err(|e| Failure::usage(anyhow!("cannot write {}: {e}", path.display())))?;
    eprintln!("wrote    {}", path.display());
    written.push(path.display().to_string());
    Ok(())
}

pub fn run(args: &InitArgs) -> CmdResult {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::usage(anyhow!("cannot create {}: {e}", dir.display())))?;
    let mut written = Vec::new();
    write_new(&dir, Path::new("app_spec.txt"), SPEC_TEMPLATE, &mut written)?;
    write_new(
        &dir,
        Path::new("loopwright.toml"),
        &config_template(),
        &mut written,
    )?;
    if args.prompts {
        for kind in PromptKind::ALL {
            write_new(
                &dir,
                &Path::new("prompts").join(kind.file_name()),
                kind.default_text(),
                &mut written,
            )?;
        }
    }
    let shown = dir.display();
    eprintln!();
    eprintln!("next: describe your app in {shown}/app_spec.txt, choose a model in {shown}/loopwright.toml, then");
    eprintln!(
        "      loopwright run --project-dir {shown}{}",
        if args.prompts {
            format!(" --prompts {shown}/prompts")
        } else {
            String::new()
        }
    );
    Ok(code::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    #[test]
    fn init_never_writes_through_a_link_left_in_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        std::fs::create_dir(&project).unwrap();
        // Dangling: `exists()` says no, and a plain write would create the target.
        let target = dir.path().join("autostart.desktop");
        std::os::unix::fs::symlink(&target, project.join("app_spec.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path(), project.join("prompts")).unwrap();
        let mut written = Vec::new();
        write_new(&project, Path::new("app_spec.txt"), "x", &mut written).unwrap();
        assert!(!target.exists());
        assert!(written.is_empty());
        let e = write_new(
            &project,
            Path::new("prompts/building.md"),
            "x",
            &mut written,
        );
        assert!(e.is_err());
        assert!(!dir.path().join("building.md").exists());
        write_new(&project, Path::new("loopwright.toml"), "y", &mut written).unwrap();
        assert_eq!(written.len(), 1);
    }

    #[test]
    fn every_key_of_the_config_is_in_the_template_with_a_value_and_a_doc() {
        let keys = config_keys();
        assert!(keys.len() >= 16, "{keys:?}");
        for k in &keys {
            assert!(!k.doc.is_empty(), "{} has no doc comment", k.name);
            if k.table {
                assert!(!k.example.is_empty(), "table {} has no example", k.name);
            } else {
                assert!(
                    k.value.is_some(),
                    "{} has neither [default: X] nor [example: X] in its doc comment",
                    k.name
                );
            }
        }
        let template = config_template();
        for k in &keys {
            let shown = if k.table {
                format!("# [{}", k.name)
            } else {
                format!("# {} = ", k.name)
            };
            assert!(template.contains(&shown), "{shown} missing:\n{template}");
        }
    }

    #[test]
    fn the_template_uncommented_is_a_valid_config_and_the_readme_names_every_key() {
        let uncommented: String = config_template()
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                l.starts_with('[')
                    || l.split_once(" = ").is_some_and(|(k, _)| {
                        !k.contains(' ') && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let cfg: FileConfig =
            toml::from_str(&uncommented).unwrap_or_else(|e| panic!("{e}\n---\n{uncommented}"));
        assert_eq!(cfg.max_turns, Some(80));
        assert_eq!(cfg.sandbox.as_deref(), Some("on"));
        assert!(cfg.policy.contains_key("allow"));
        let readme = include_str!("../../../README.md");
        for k in config_keys() {
            assert!(
                readme.contains(&k.name),
                "README.md does not mention the config key {}",
                k.name
            );
        }
    }
}
