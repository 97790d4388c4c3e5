//! Guarded files: the one place that decides what in the project the agent may not change, and
//! the one path that puts it back. Three kinds ([`GuardedKind`]):
//!
//! - the feature checks frozen during planning ([`FrozenFiles`]): the write tools refuse them,
//!   commands see them read-only from the next session on, and after every `bash` command and at
//!   the end of each session their hashes are compared with the snapshot and any change undone;
//! - the files the harness owns ([`HARNESS_OWNED`]: `feature_list.json`, `app_spec.txt`): the
//!   write tools and literal shell writes refuse them; the harness writes them itself;
//! - the user's configuration ([`USER_CONFIG`]): refused like the harness's files, and since a
//!   program the agent runs could still write it, snapshotted when a session starts (recorded in
//!   the state dir) and put back when it ends ([`SessionGuard::restore`]), or before the next
//!   start when the harness was killed mid-session ([`undo_cut_off_session`]).
//!
//! Whatever is put back is reported as one list of paths (the `frozen.restored` event).

mod config;
mod frozen;

use std::path::{Path, PathBuf};

pub use config::{
    has_config_record, undo_cut_off_session, CONFIG_RECORD_FILE, PROJECT_CONFIG_MAX_BYTES,
};
pub(crate) use frozen::FrozenSlot;
pub use frozen::{FrozenCheck, FrozenFiles, FrozenManifest, MANIFEST_FILE};

use crate::error::ToolError;

/// Files the harness writes into the project and the agent may not.
pub const HARNESS_OWNED: [&str; 2] = ["feature_list.json", "app_spec.txt"];

/// The project's configuration of the harness.
pub const USER_CONFIG: &str = "loopwright.toml";

/// Why a file is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardedKind {
    /// A feature check frozen during planning (set with [`crate::Toolbox::set_frozen`]).
    FrozenCheck,
    /// A file the harness writes ([`HARNESS_OWNED`]).
    HarnessOwned,
    /// The user's configuration ([`USER_CONFIG`]).
    UserConfig,
}

impl GuardedKind {
    /// The fixed paths (relative to the project) of this kind; frozen checks have none, they
    /// are chosen at planning.
    pub fn paths(self) -> &'static [&'static str] {
        match self {
            GuardedKind::FrozenCheck => &[],
            GuardedKind::HarnessOwned => &HARNESS_OWNED,
            GuardedKind::UserConfig => &[USER_CONFIG],
        }
    }

    /// The fixed paths of every kind in `kinds`, for [`crate::ToolboxConfig::protected`].
    pub fn protected(kinds: &[GuardedKind]) -> Vec<PathBuf> {
        kinds
            .iter()
            .flat_map(|k| k.paths())
            .map(PathBuf::from)
            .collect()
    }
}

/// The guarded files of one session, from its start to [`SessionGuard::restore`]. Made by
/// [`crate::Toolbox::guard_session`].
#[derive(Debug)]
pub struct SessionGuard {
    frozen: FrozenSlot,
    config: config::ConfigSnapshot,
}

impl SessionGuard {
    pub(crate) fn start(
        frozen: FrozenSlot,
        project: &Path,
        state_dir: &Path,
    ) -> Result<SessionGuard, ToolError> {
        Ok(SessionGuard {
            frozen,
            config: config::ConfigSnapshot::capture(project, state_dir)?,
        })
    }

    /// The session is over: puts back every guarded file it changed (the frozen checks in force
    /// now, then the configuration) and returns their paths, relative to the project.
    pub fn restore(self) -> Vec<PathBuf> {
        let mut restored = self.frozen.get().verify_and_restore().restored;
        restored.extend(self.config.restore());
        restored
    }
}
