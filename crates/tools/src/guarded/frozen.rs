//! Frozen files: the feature checks written during planning, which the agent may read and run
//! but never change. `write_file` and `edit_file` refuse them; after every `bash` command their
//! hashes are compared with the snapshot and any change is undone from the bytes kept here.
//!
//! For resume, the orchestrator persists a snapshot with [`FrozenFiles::write_copies`] (the
//! bytes plus a `manifest.json` of path → sha256 in its state dir) and re-creates it with
//! [`FrozenFiles::restore_from`], which checks every copy against the manifest.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sandbox::untrusted::{Displaced, InTheWay, UntrustedDir, UntrustedError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ToolError;
use llm::atomic_write;

/// A frozen file may be at most this big (they are test files).
pub const FROZEN_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// The file [`FrozenFiles::write_copies`] writes beside the copies.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Path (relative to the project root) → sha256 (lowercase hex) of each frozen file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenManifest {
    pub files: BTreeMap<PathBuf, String>,
}

/// What [`FrozenFiles::verify_and_restore`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrozenCheck {
    /// Files that had been changed or deleted and now hold their frozen content again
    /// (relative to the project root).
    pub restored: Vec<PathBuf>,
    /// Files that had been changed but could not be put back, with the reason.
    pub failed: Vec<(PathBuf, String)>,
    /// What was in the way of a restore (a directory where a frozen file belongs, a link or
    /// file where its directory belongs) and was moved aside.
    pub displaced: Vec<Displaced>,
}

impl FrozenCheck {
    pub fn is_clean(&self) -> bool {
        self.restored.is_empty() && self.failed.is_empty()
    }
}

#[derive(Debug, Clone)]
struct FrozenFile {
    bytes: Vec<u8>,
    sha256: String,
}

/// A snapshot of the frozen files of one project: their bytes and sha256.
#[derive(Debug, Clone, Default)]
pub struct FrozenFiles {
    /// The canonical project root the relative paths are joined to.
    root: PathBuf,
    files: BTreeMap<PathBuf, FrozenFile>,
}

impl FrozenFiles {
    /// Reads each of `paths` (relative to the project root, or absolute inside it) and keeps its
    /// bytes and hash. Every path must be a regular file inside the project.
    pub fn snapshot(
        root: &sandbox::ProjectRoot,
        paths: &[PathBuf],
    ) -> Result<FrozenFiles, ToolError> {
        let mut files = BTreeMap::new();
        for path in paths {
            let frozen_err = |message: String| ToolError::Frozen {
                path: path.clone(),
                message,
            };
            let text = path
                .to_str()
                .ok_or_else(|| frozen_err("the path is not valid UTF-8".into()))?;
            let abs = root
                .resolve(text, sandbox::Access::Read)
                .map_err(|e| frozen_err(e.to_string()))?;
            let rel = relative_to(root.path(), &abs).ok_or_else(|| {
                frozen_err(format!("not inside the project {}", root.path().display()))
            })?;
            let contents = UntrustedDir::open(root.path())
                .and_then(|files| files.read(&rel, FROZEN_MAX_BYTES))
                .map_err(|e| match e {
                    UntrustedError::Io { path, source } => ToolError::Io { path, source },
                    e => frozen_err(e.reason()),
                })?;
            if contents.truncated {
                return Err(frozen_err(format!(
                    "{} bytes, more than the {FROZEN_MAX_BYTES} a frozen file may have",
                    contents.size
                )));
            }
            let bytes = contents.bytes;
            let sha256 = sha256_hex(&bytes);
            files.insert(rel, FrozenFile { bytes, sha256 });
        }
        Ok(FrozenFiles {
            root: root.path().to_path_buf(),
            files,
        })
    }

    /// Re-creates a snapshot from a manifest and the bytes of each file in it (keyed by the
    /// same relative paths); each file's bytes must hash to the manifest's sha256.
    pub fn from_manifest_and_bytes(
        root: &sandbox::ProjectRoot,
        manifest: &FrozenManifest,
        mut bytes: BTreeMap<PathBuf, Vec<u8>>,
    ) -> Result<FrozenFiles, ToolError> {
        let mut files = BTreeMap::new();
        for (rel, want) in &manifest.files {
            check_relative(rel)?;
            let content = bytes.remove(rel).ok_or_else(|| ToolError::Frozen {
                path: rel.clone(),
                message: "the manifest names it but no content was given".into(),
            })?;
            let sha256 = sha256_hex(&content);
            if !sha256.eq_ignore_ascii_case(want) {
                return Err(ToolError::Frozen {
                    path: rel.clone(),
                    message: format!(
                        "the saved copy hashes to {sha256}, the manifest says {want}; the state \
                         directory was changed — restore it or plan again"
                    ),
                });
            }
            files.insert(
                rel.clone(),
                FrozenFile {
                    bytes: content,
                    sha256,
                },
            );
        }
        Ok(FrozenFiles {
            root: root.path().to_path_buf(),
            files,
        })
    }

    /// Writes a copy of each frozen file under `dir` (same relative paths) and
    /// `dir/manifest.json`, atomically each; returns the manifest.
    pub fn write_copies(&self, dir: &Path) -> Result<FrozenManifest, ToolError> {
        for (rel, file) in &self.files {
            let dest = dir.join(rel);
            atomic_write(&dest, &file.bytes)
                .map_err(|source| ToolError::Io { path: dest, source })?;
        }
        let manifest = self.manifest();
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| ToolError::Frozen {
            path: dir.join(MANIFEST_FILE),
            message: e.to_string(),
        })?;
        let dest = dir.join(MANIFEST_FILE);
        atomic_write(&dest, &json).map_err(|source| ToolError::Io { path: dest, source })?;
        Ok(manifest)
    }

    /// Reads what [`FrozenFiles::write_copies`] wrote to `dir`, checking every copy's hash.
    pub fn restore_from(root: &sandbox::ProjectRoot, dir: &Path) -> Result<FrozenFiles, ToolError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let json = std::fs::read(&manifest_path).map_err(|source| ToolError::Io {
            path: manifest_path.clone(),
            source,
        })?;
        let manifest: FrozenManifest =
            serde_json::from_slice(&json).map_err(|e| ToolError::Frozen {
                path: manifest_path.clone(),
                message: format!("not a frozen-file manifest: {e}"),
            })?;
        let mut bytes = BTreeMap::new();
        for rel in manifest.files.keys() {
            check_relative(rel)?;
            let src = dir.join(rel);
            let content =
                std::fs::read(&src).map_err(|source| ToolError::Io { path: src, source })?;
            bytes.insert(rel.clone(), content);
        }
        FrozenFiles::from_manifest_and_bytes(root, &manifest, bytes)
    }

    /// Path → sha256 of every frozen file.
    pub fn manifest(&self) -> FrozenManifest {
        FrozenManifest {
            files: self.hashes(),
        }
    }

    /// Path (relative to the project root) → sha256 (lowercase hex).
    pub fn hashes(&self) -> BTreeMap<PathBuf, String> {
        self.files
            .iter()
            .map(|(p, f)| (p.clone(), f.sha256.clone()))
            .collect()
    }

    /// The frozen paths, relative to the project root, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.keys().map(PathBuf::as_path)
    }

    /// The frozen bytes of `rel`, if it is frozen.
    pub fn bytes(&self, rel: &Path) -> Option<&[u8]> {
        self.files.get(rel).map(|f| f.bytes.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// The project root the snapshot belongs to (empty for [`FrozenFiles::default`]).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The relative path under which `abs` (an absolute path in the project) is frozen, if it
    /// is. A symlink to a frozen file counts as the file.
    pub fn frozen_path_of(&self, abs: &Path) -> Option<&Path> {
        if self.files.is_empty() {
            return None;
        }
        let lookup = |p: &Path| {
            relative_to(&self.root, p)
                .and_then(|rel| self.files.get_key_value(&rel).map(|(k, _)| k.as_path()))
        };
        lookup(abs).or_else(|| abs.canonicalize().ok().and_then(|c| lookup(&c)))
    }

    /// Compares every frozen file on disk with the snapshot and writes back the frozen bytes of
    /// any that changed, was deleted or was replaced by a directory or symlink.
    ///
    /// This runs in the harness, unconfined (possibly as root), so it goes through
    /// [`UntrustedDir`]: the check reads the file at its frozen path without following any link
    /// (a symlinked directory on the way counts as a change: a check must run the frozen bytes
    /// at the frozen path), and the restore writes with [`UntrustedDir::replace`], which never
    /// writes through a link and moves aside a directory in the file's place or a link or file
    /// in its directory's place (reported in [`FrozenCheck::displaced`]).
    ///
    /// Commands are not running while this happens (each `bash` call kills its process group
    /// before returning); the walk from descriptors keeps a swap from redirecting it anyway.
    pub fn verify_and_restore(&self) -> FrozenCheck {
        let mut check = FrozenCheck::default();
        if self.files.is_empty() {
            return check;
        }
        let files = match UntrustedDir::open(&self.root) {
            Ok(files) => files,
            Err(e) => {
                for rel in self.files.keys() {
                    check.failed.push((rel.clone(), e.to_string()));
                }
                return check;
            }
        };
        for (rel, file) in &self.files {
            if is_intact(&files, rel, file) {
                continue;
            }
            match restore(&files, rel, &file.bytes) {
                Ok(displaced) => {
                    check.restored.push(rel.clone());
                    check.displaced.extend(displaced);
                }
                Err(e) => check.failed.push((rel.clone(), e.to_string())),
            }
        }
        check
    }
}

/// Whether `rel` is a regular file with the frozen bytes, reached through real directories
/// only.
fn is_intact(files: &UntrustedDir, rel: &Path, file: &FrozenFile) -> bool {
    let Ok(mut opened) = files.open_file(rel) else {
        return false;
    };
    if opened.len() != file.bytes.len() as u64 {
        return false;
    }
    let mut bytes = Vec::with_capacity(file.bytes.len());
    opened.reader().read_to_end(&mut bytes).is_ok() && sha256_hex(&bytes) == file.sha256
}

/// Writes the frozen bytes back to `rel`; returns what had to be moved out of the way.
fn restore(
    files: &UntrustedDir,
    rel: &Path,
    bytes: &[u8],
) -> Result<Vec<Displaced>, UntrustedError> {
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(UntrustedError::BadPath {
            path: rel.to_path_buf(),
        });
    }
    Ok(files.replace(rel, bytes, InTheWay::MoveAside)?.displaced)
}

/// `path` relative to `root` if it is inside it (lexically; both are expected absolute).
fn relative_to(root: &Path, path: &Path) -> Option<PathBuf> {
    path.strip_prefix(root).ok().map(Path::to_path_buf)
}

fn check_relative(rel: &Path) -> Result<(), ToolError> {
    let plain =
        !rel.as_os_str().is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(ToolError::Frozen {
            path: rel.to_path_buf(),
            message: "a manifest path must be relative, without `..`".into(),
        })
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The frozen-file snapshot in force, shared by the toolbox (which replaces it) and the tools
/// that honour it (`write_file`, `edit_file`, `bash`). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct FrozenSlot(std::sync::Arc<std::sync::RwLock<std::sync::Arc<FrozenFiles>>>);

impl FrozenSlot {
    /// The snapshot in force now.
    pub(crate) fn get(&self) -> std::sync::Arc<FrozenFiles> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, frozen: FrozenFiles) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(frozen);
    }
}
