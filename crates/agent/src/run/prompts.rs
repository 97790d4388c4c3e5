//! Prompt templates: `planning.md`, `building.md`, `wrapup.md`. The defaults are compiled in from
//! `crates/agent/prompts/`; `--prompts DIR` replaces any of them with `DIR/<name>.md`.
//! Placeholders are `{{name}}`; a template naming an unknown placeholder is an error. The Python
//! harness's names are accepted too (`initializer_prompt.md` for planning, `coding_prompt.md`
//! for building); a directory that is missing, or holds a file of another name, is refused so
//! a typo never silently falls back to the built-in prompts.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Planning,
    Building,
    WrapUp,
}

impl PromptKind {
    pub const ALL: [PromptKind; 3] = [
        PromptKind::Planning,
        PromptKind::Building,
        PromptKind::WrapUp,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            PromptKind::Planning => "planning.md",
            PromptKind::Building => "building.md",
            PromptKind::WrapUp => "wrapup.md",
        }
    }

    /// The Python harness's name for the same template.
    pub fn alias(self) -> Option<&'static str> {
        match self {
            PromptKind::Planning => Some("initializer_prompt.md"),
            PromptKind::Building => Some("coding_prompt.md"),
            PromptKind::WrapUp => None,
        }
    }

    /// The built-in template.
    pub fn default_text(self) -> &'static str {
        match self {
            PromptKind::Planning => include_str!("../../prompts/planning.md"),
            PromptKind::Building => include_str!("../../prompts/building.md"),
            PromptKind::WrapUp => include_str!("../../prompts/wrapup.md"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("the prompts directory {0} does not exist or is not a directory")]
    MissingDir(PathBuf),
    #[error("the prompts directory {dir} holds {unknown}, which loopwright does not use; template files are {known}")]
    UnknownFiles {
        dir: PathBuf,
        unknown: String,
        known: String,
    },
    #[error("the prompts directory {dir} holds both {name} and {alias}; keep one")]
    Ambiguous {
        dir: PathBuf,
        name: &'static str,
        alias: &'static str,
    },
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

/// A prompt template may be at most this big.
pub const TEMPLATE_MAX_BYTES: u64 = 1024 * 1024;

impl Prompts {
    pub fn new(dir: Option<&Path>) -> Prompts {
        Prompts {
            dir: dir.map(Path::to_path_buf),
        }
    }

    /// The templates of `dir` (checked: it exists and holds only template files, by their
    /// names or the Python harness's), the built-in ones for those it lacks.
    pub fn open(dir: &Path) -> Result<Prompts, PromptError> {
        if !dir.is_dir() {
            return Err(PromptError::MissingDir(dir.to_path_buf()));
        }
        let entries = std::fs::read_dir(dir).map_err(|source| PromptError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let known: Vec<&str> = PromptKind::ALL
            .iter()
            .flat_map(|k| std::iter::once(k.file_name()).chain(k.alias()))
            .collect();
        let mut unknown: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.') && !known.contains(&n.as_str()))
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            return Err(PromptError::UnknownFiles {
                dir: dir.to_path_buf(),
                unknown: unknown.join(", "),
                known: PromptKind::ALL
                    .iter()
                    .map(|k| match k.alias() {
                        Some(a) => format!("{} (or {a})", k.file_name()),
                        None => k.file_name().to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        for kind in PromptKind::ALL {
            if let Some(alias) = kind.alias() {
                if dir.join(kind.file_name()).exists() && dir.join(alias).exists() {
                    return Err(PromptError::Ambiguous {
                        dir: dir.to_path_buf(),
                        name: kind.file_name(),
                        alias,
                    });
                }
            }
        }
        let prompts = Prompts::new(Some(dir));
        prompts.validate()?;
        Ok(prompts)
    }

    /// Read at every render, so the directory may well be inside the project (`init --prompts`
    /// puts it there) where the agent could swap a template for a link to
    /// `/proc/self/environ` or a FIFO: the file is read through [`sandbox::untrusted`] (no link
    /// followed, no FIFO opened, at most [`TEMPLATE_MAX_BYTES`]).
    fn template(&self, kind: PromptKind) -> Result<String, PromptError> {
        if let Some(dir) = &self.dir {
            for name in std::iter::once(kind.file_name()).chain(kind.alias()) {
                let path = dir.join(name);
                let read = sandbox::untrusted::UntrustedDir::open(dir)
                    .and_then(|files| files.read(Path::new(name), TEMPLATE_MAX_BYTES));
                match read {
                    Ok(c) if !c.truncated => {
                        return String::from_utf8(c.bytes).map_err(|_| PromptError::Io {
                            path,
                            source: std::io::Error::other("not UTF-8 text"),
                        })
                    }
                    Ok(c) => {
                        return Err(PromptError::Io {
                            path,
                            source: std::io::Error::other(format!(
                                "{} bytes, more than the {TEMPLATE_MAX_BYTES} a template may have",
                                c.size
                            )),
                        })
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => {
                        return Err(PromptError::Io {
                            path,
                            source: std::io::Error::other(e.reason()),
                        })
                    }
                }
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

pub const PLANNING_VARS: [&str; 3] = ["spec", "previous", "feature_count"];
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
    fn a_template_swapped_for_a_link_or_fifo_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = Prompts::new(Some(dir.path()));
        std::os::unix::fs::symlink("/proc/self/environ", dir.path().join("building.md")).unwrap();
        let e = p.render(PromptKind::Building, &[]).unwrap_err().to_string();
        assert!(e.contains("symbolic link (to /proc/self/environ)"), "{e}");
        assert!(!e.contains("PATH="), "{e}");
    }

    #[test]
    fn defaults_render_and_substitute() {
        let p = Prompts::default();
        p.validate().unwrap();
        let text = p
            .render(
                PromptKind::Planning,
                &[
                    ("spec", "MAKE A TODO APP"),
                    ("previous", ""),
                    ("feature_count", ""),
                ],
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

    #[test]
    fn python_names_are_aliases_and_strays_or_a_missing_dir_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("initializer_prompt.md"), "PY PLAN {{spec}}").unwrap();
        std::fs::write(dir.path().join("coding_prompt.md"), "PY BUILD").unwrap();
        let p = Prompts::open(dir.path()).unwrap();
        let text = p
            .render(PromptKind::Planning, &[("spec", "S"), ("previous", "")])
            .unwrap();
        assert_eq!(text, "PY PLAN S");
        std::fs::write(dir.path().join("planing.md"), "typo").unwrap();
        let err = Prompts::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("planing.md") && err.contains("planning.md (or initializer_prompt.md)"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("planing.md")).unwrap();
        std::fs::write(dir.path().join("planning.md"), "x").unwrap();
        let err = Prompts::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("both planning.md and initializer_prompt.md"),
            "{err}"
        );
        let err = Prompts::open(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
