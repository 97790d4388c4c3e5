//! Prompt templates: `planning.md`, `building.md`, `wrapup.md`. The defaults are compiled in from
//! `crates/agent/prompts/`; `--prompts DIR` replaces any of them with `DIR/<name>.md`.
//! Placeholders are `{{name}}`; a template naming an unknown placeholder is an error.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Planning,
    Building,
    WrapUp,
}

impl PromptKind {
    fn file_name(self) -> &'static str {
        match self {
            PromptKind::Planning => "planning.md",
            PromptKind::Building => "building.md",
            PromptKind::WrapUp => "wrapup.md",
        }
    }

    fn default_text(self) -> &'static str {
        match self {
            PromptKind::Planning => include_str!("../../prompts/planning.md"),
            PromptKind::Building => include_str!("../../prompts/building.md"),
            PromptKind::WrapUp => include_str!("../../prompts/wrapup.md"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("cannot read prompt template {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("prompt template {name} uses the unknown placeholder {{{{{placeholder}}}}}; known here: {known}")]
    UnknownPlaceholder {
        name: &'static str,
        placeholder: String,
        known: String,
    },
}

/// The templates in use.
#[derive(Debug, Clone, Default)]
pub struct Prompts {
    dir: Option<PathBuf>,
}

impl Prompts {
    pub fn new(dir: Option<&Path>) -> Prompts {
        Prompts {
            dir: dir.map(Path::to_path_buf),
        }
    }

    fn template(&self, kind: PromptKind) -> Result<String, PromptError> {
        if let Some(dir) = &self.dir {
            let path = dir.join(kind.file_name());
            match std::fs::read_to_string(&path) {
                Ok(t) => return Ok(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(PromptError::Io { path, source }),
            }
        }
        Ok(kind.default_text().to_string())
    }

    /// Renders `kind` with `vars`; every `{{placeholder}}` must be one of `vars`.
    pub fn render(&self, kind: PromptKind, vars: &[(&str, &str)]) -> Result<String, PromptError> {
        let template = self.template(kind)?;
        let mut out = String::with_capacity(template.len() + 1024);
        let mut rest = template.as_str();
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = after[..end].trim();
            match vars.iter().find(|(k, _)| *k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    return Err(PromptError::UnknownPlaceholder {
                        name: kind.file_name(),
                        placeholder: name.to_string(),
                        known: vars.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", "),
                    })
                }
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Checks that every template renders with the placeholders the harness supplies.
    pub fn validate(&self) -> Result<(), PromptError> {
        self.render(
            PromptKind::Planning,
            PLANNING_VARS.map(|k| (k, "")).as_slice(),
        )?;
        self.render(
            PromptKind::Building,
            BUILDING_VARS.map(|k| (k, "")).as_slice(),
        )?;
        self.render(PromptKind::WrapUp, WRAPUP_VARS.map(|k| (k, "")).as_slice())?;
        Ok(())
    }
}

pub const PLANNING_VARS: [&str; 2] = ["spec", "previous"];
pub const BUILDING_VARS: [&str; 7] = [
    "spec",
    "feature_table",
    "passing",
    "total",
    "progress",
    "git_log",
    "last_session",
];
pub const WRAPUP_VARS: [&str; 1] = ["reason"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_and_substitute() {
        let p = Prompts::default();
        p.validate().unwrap();
        let text = p
            .render(
                PromptKind::Planning,
                &[("spec", "MAKE A TODO APP"), ("previous", "")],
            )
            .unwrap();
        assert!(text.contains("MAKE A TODO APP"));
        assert!(!text.contains("{{"));
    }

    #[test]
    fn override_dir_wins_and_unknown_placeholders_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wrapup.md"), "custom {{reason}}").unwrap();
        let p = Prompts::new(Some(dir.path()));
        assert_eq!(
            p.render(PromptKind::WrapUp, &[("reason", "turns")])
                .unwrap(),
            "custom turns"
        );
        std::fs::write(dir.path().join("wrapup.md"), "custom {{nope}}").unwrap();
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("wrapup.md"), "{err}");
    }
}
