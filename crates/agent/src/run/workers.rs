//! Parallel build sessions (`run --workers N`).
//!
//! Each worker is a build session in its own copy of the project (a repository of its own in
//! the state dir, `workers/session-NNN/tree`, started from the harness's last commit on the
//! branch `worker/session-NNN`), with features the harness assigned to it: two workers never
//! hold one feature, and a worker's `verify_feature` runs only its own. Its commands run in a
//! sandbox of their own rooted at its copy (own world, frozen files, git guard). Up to N run at
//! once, polled together on the run's task; when one ends the harness commits its work on its
//! branch and merges the branch into the project's (one merge at a time), then re-runs every
//! passing check there (a regression flips the feature back, as after any session) and the
//! checks of the features the worker verified (they pass only if they pass on the run's branch).
//! A free slot is then given the next failing features.
//!
//! Decisions:
//! - **A copy, not a `git worktree`.** A linked worktree's `.git` is a file pointing into the
//!   project's `.git`, which the git guard refuses (`worktrees/`, `commondir`) and which the
//!   worker's sandbox would not show; a repository of its own keeps every guarantee of the
//!   harness's git (hardened commands, baseline, mirror). It is started by fetching the
//!   harness's mirror of the project's history (never the agent-writable `.git`), and its work
//!   is merged back from its own mirror, so no object comes from a `.git` the agent could write.
//! - **Harness files never conflict.** `feature_list.json`, `app_spec.txt`, `loopwright.toml`
//!   and `progress.md` are put back as they were at the copy's start before its work is
//!   committed; what the session wrote to `progress.md` is appended to the project's under a
//!   heading naming the session, after the merge.
//! - **A conflict is handed on, never resolved by dropping work.** The merge is aborted (the
//!   project is as before), the branch is kept in the project (`worker/session-NNN`), its
//!   features go back to failing with a note, and the next worker takes exactly those
//!   features, starting from the run's branch with the conflicting branch merged in, conflict
//!   markers and all, and a task to resolve them; its commit records the merge.
//! - **Resume.** `run.json` records every worker (features, branch, copy, base commit, stage).
//!   A worker still marked running when the run starts again was cut off: its copy's work is
//!   committed and merged like a finished one (its verdicts re-checked); a copy that is gone
//!   gives its features back. Copies no record needs are removed.
//!
//! Known residuals: the sessions are futures polled concurrently on the run's task (the run's
//! context is borrowed, not shared), so a harness step that blocks the thread briefly holds
//! the others up; build output committed by two workers (files `.gitignore` does not name)
//! can conflict and costs a session to resolve.

use super::extra::verify_feature_spec;
use super::git::{HarnessGit, MergeOutcome, MIRROR_REF};
use super::sessions::{session_commit_message, Ending};
use super::state::{
    self, SessionEnd, SessionKind, SessionRecord, Stall, WorkerRecord, WorkerStage,
};
use super::{tail_chars, RunContext, RunError, FROZEN_DIR};
use crate::events::{rfc3339_now, EventKind};
use crate::outcome::{EndReason, SessionOutcome};
use crate::session::{Session, SessionError, SessionHooks};
use futures::stream::{FuturesUnordered, StreamExt};
use llm::ToolSpec;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use tokio_util::sync::CancellationToken;
use tools::{BoxFuture, FrozenFiles, Tool, ToolOutcome, Toolbox};

/// Where the workers' copies live in the state dir.
const WORKERS_DIR: &str = "workers";
/// Files the harness owns in every copy: put back as they were when the copy started before
/// its work is committed, so merges never conflict on them.
const HARNESS_FILES: [&str; 4] = [
    "feature_list.json",
    "app_spec.txt",
    "loopwright.toml",
    "progress.md",
];
const PROGRESS_FILE: &str = "progress.md";
/// The most of a worker's `progress.md` carried into the project's.
const NOTES_MAX_BYTES: u64 = 64 * 1024;

/// A worker's copy of the project: its repository and where everything of it is.
struct Copy {
    number: u32,
    id: String,
    features: Vec<String>,
    branch: String,
    /// `workers/session-NNN` in the state dir.
    root: PathBuf,
    /// The copy's working tree (the agent's project).
    tree: PathBuf,
    git: HarnessGit,
    /// The run's commit it started from.
    base: String,
}

/// What a slot was given: a new session's number and features, and the conflicting worker
/// it continues, if any.
struct Claim {
    number: u32,
    features: Vec<String>,
    continues: Option<u32>,
}

fn worker_root(state_dir: &Path, number: u32) -> PathBuf {
    state_dir.join(WORKERS_DIR).join(state::session_id(number))
}

fn branch_name(number: u32) -> String {
    format!("worker/{}", state::session_id(number))
}

/// The harness's copy of a worker's history (its mirror).
fn worker_history(root: &Path) -> PathBuf {
    root.join("git").join("history.git")
}

fn remove_dir(path: &Path) {
    // A copy left behind costs disk, not correctness: the next start removes it again.
    let _ = std::fs::remove_dir_all(path);
}

impl RunContext<'_> {
    /// Build sessions in parallel until none can be started and none runs: a stop condition
    /// (complete, session limit, stall), Ctrl-C, or an error (the others are stopped, their
    /// work committed and merged, then the error is returned).
    pub(super) async fn build_with_workers(
        &self,
        spec: &str,
        cancel: CancellationToken,
    ) -> Result<EndReason, RunError> {
        self.recover_workers().await?;
        let slots = self.cfg.workers.max(1) as usize;
        let stop = cancel.child_token();
        let merging = tokio::sync::Mutex::new(());
        let mut running = FuturesUnordered::new();
        let mut started = 0usize;
        let mut first_error: Option<RunError> = None;
        loop {
            while first_error.is_none()
                && !stop.is_cancelled()
                && running.len() < slots
                && self.stop_condition().is_none()
            {
                let claim = match self.claim(slots - running.len()) {
                    Ok(Some(claim)) => claim,
                    Ok(None) => break,
                    Err(e) => {
                        // The workers running finish their step and land first.
                        first_error = Some(e);
                        stop.cancel();
                        break;
                    }
                };
                started += 1;
                running.push(self.worker(spec, claim, stop.clone(), &merging, running.len() + 1));
            }
            let Some(result) = running.next().await else {
                break;
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
                stop.cancel();
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if cancel.is_cancelled() {
            return Ok(EndReason::Cancelled);
        }
        if started == 0 && self.stop_condition().is_none() {
            // Nothing to hand out (cannot happen while features fail): one plain session.
            return self.build_session(spec, cancel).await;
        }
        Ok(EndReason::Completed)
    }

    /// Gives a free slot its features (of `free` slots): a conflict waiting for a session
    /// first (exactly its features), else an even share of the failing features no worker
    /// holds. Records the session and the worker, so no other slot gets them.
    fn claim(&self, free: usize) -> Result<Option<Claim>, RunError> {
        let claim = {
            let mut s = self.lock();
            let waiting = s
                .workers
                .iter()
                .position(|w| w.stage == WorkerStage::Conflict);
            let (features, continues) = match waiting {
                Some(i) => {
                    s.workers[i].stage = WorkerStage::TakenOver;
                    (s.workers[i].features.clone(), Some(s.workers[i].session))
                }
                None => {
                    let held = s.held_features();
                    let open: Vec<String> = s
                        .features
                        .iter()
                        .filter(|f| {
                            !held.contains(&f.id)
                                && !s.status.get(&f.id).is_some_and(|st| st.passes)
                        })
                        .map(|f| f.id.clone())
                        .collect();
                    if open.is_empty() {
                        return Ok(None);
                    }
                    let share = open.len().div_ceil(free.max(1));
                    (open[..share].to_vec(), None)
                }
            };
            let number = s.next_session_number();
            let mut record = SessionRecord::started(number, SessionKind::Building, &rfc3339_now());
            record.features = features.clone();
            s.sessions.push(record);
            s.workers.push(WorkerRecord {
                session: number,
                features: features.clone(),
                branch: branch_name(number),
                dir: worker_root(&self.cfg.state_dir, number).join("tree"),
                base: String::new(),
                stage: WorkerStage::Running,
                verified: Vec::new(),
                merge_commit: None,
                continues,
                conflicts: Vec::new(),
            });
            Claim {
                number,
                features,
                continues,
            }
        };
        self.save()?;
        Ok(Some(claim))
    }

    fn update_worker(&self, number: u32, change: impl FnOnce(&mut WorkerRecord)) {
        let mut s = self.lock();
        if let Some(w) = s.workers.iter_mut().find(|w| w.session == number) {
            change(w);
        }
    }

    /// One worker from start to merge.
    async fn worker(
        &self,
        spec: &str,
        claim: Claim,
        cancel: CancellationToken,
        merging: &tokio::sync::Mutex<()>,
        running: usize,
    ) -> Result<EndReason, RunError> {
        let (copy, toolbox, conflicts) = match self.open_copy(&claim).await {
            Ok(opened) => opened,
            Err(e) => {
                self.update_worker(claim.number, |w| w.stage = WorkerStage::Abandoned);
                let ending = Ending {
                    end: SessionEnd::Stopped(crate::stop::StopReason::Error),
                    detail: String::new(),
                    turns: 0,
                    text: e.to_string(),
                };
                self.end_session(claim.number, &ending, Vec::new(), Vec::new());
                self.save()?;
                return Err(e);
            }
        };
        self.emit(
            &copy.id,
            EventKind::WorkerStarted {
                features: copy.features.clone(),
                branch: copy.branch.clone(),
                dir: copy.tree.display().to_string(),
                running,
            },
        );
        let session = self
            .worker_session(spec, &copy, &toolbox, &conflicts, cancel)
            .await;
        // The copy's world ends with its session.
        drop(toolbox);
        let ending = match &session {
            Ok(result) => Ending::of(result),
            Err(e) => Ending {
                end: SessionEnd::Stopped(crate::stop::StopReason::Error),
                detail: String::new(),
                turns: 0,
                text: e.to_string(),
            },
        };
        let honest = matches!(&session, Ok(Ok(o)) if o.end != EndReason::Cancelled);
        // Whatever ended the session, its work is committed and merged.
        let (newly, regressions) = self.land(&copy, "", merging).await?;
        self.end_session(copy.number, &ending, newly, regressions);
        {
            let mut s = self.lock();
            let passing = s.passing();
            if passing > s.best_passing {
                s.best_passing = passing;
                s.stall = Stall::default();
            } else if honest {
                s.stall.add(&ending.end);
            }
        }
        self.save()?;
        session?.map(|o| o.end).map_err(RunError::Session)
    }

    /// Makes the copy: a fresh repository on the worker's branch at the harness's last commit
    /// (with a conflicting branch it continues merged in, markers and all), its tools, its
    /// frozen files, its `feature_list.json`. Returns the files in conflict.
    async fn open_copy(&self, claim: &Claim) -> Result<(Copy, Toolbox, Vec<String>), RunError> {
        let root = worker_root(&self.cfg.state_dir, claim.number);
        remove_dir(&root);
        let tree = root.join("tree");
        let git = HarnessGit::open(&tree, &root.join("git")).await?;
        let branch = branch_name(claim.number);
        let base = git
            .start_branch_from(&self.git.history_dir(), MIRROR_REF, &branch)
            .await?;
        let mut conflicts = Vec::new();
        if let Some(old) = claim.continues {
            let old_root = worker_root(&self.cfg.state_dir, old);
            let old_branch = branch_name(old);
            git.fetch_branch(&worker_history(&old_root), MIRROR_REF, &old_branch)
                .await?;
            conflicts = git.merge_leaving_conflicts(&old_branch).await?;
        }
        self.update_worker(claim.number, |w| w.base = base.clone());
        self.save()?;
        let mut config = self.cfg.worker_toolbox.clone().ok_or_else(|| {
            RunError::Worker("no tool configuration was given for workers".into())
        })?;
        // Paths given inside the project are the same paths inside the copy.
        for path in config
            .read_only
            .iter_mut()
            .chain(config.protected.iter_mut())
        {
            if let Ok(rel) = path.strip_prefix(&self.cfg.project_dir) {
                *path = rel.to_path_buf();
            }
        }
        config.project = tree.clone();
        let toolbox = Toolbox::new(config).map_err(|e| RunError::Worker(e.to_string()))?;
        toolbox.sandbox().start_egress_proxy().await?;
        let frozen =
            FrozenFiles::restore_from(toolbox.project(), &self.cfg.state_dir.join(FROZEN_DIR))?;
        let check = frozen.verify_and_restore();
        toolbox.set_frozen(frozen)?;
        let id = state::session_id(claim.number);
        self.report_restored(&id, &check.restored);
        self.write_feature_list_in(&tree)?;
        let copy = Copy {
            number: claim.number,
            id,
            features: claim.features.clone(),
            branch,
            root,
            tree,
            git,
            base,
        };
        Ok((copy, toolbox, conflicts))
    }

    /// The worker's session in its copy, with its own tools; afterwards its world ends and
    /// frozen files and `.git` are put right.
    async fn worker_session(
        &self,
        spec: &str,
        copy: &Copy,
        toolbox: &Toolbox,
        conflicts: &[String],
        cancel: CancellationToken,
    ) -> Result<Result<SessionOutcome, SessionError>, RunError> {
        let prompt = self.building_prompt(spec, copy.number).await?;
        let task = self.worker_task(copy, conflicts);
        let config = self.session_config(&copy.id, prompt, &task)?;
        let tools = WorkerTools {
            ctx: self,
            copy,
            toolbox,
            passed: Mutex::new(BTreeSet::new()),
        };
        let result = Session::new(self.governor, toolbox, config)
            .tool(&tools)
            .hooks(&tools)
            .events(&self.events)
            .cancel_token(cancel)
            .run()
            .await;
        toolbox.sandbox().end_session().await;
        self.report_restored(&copy.id, &toolbox.frozen().verify_and_restore().restored);
        self.guard_git_of(&copy.git, &copy.id, Some(copy.number))
            .await;
        Ok(result)
    }

    /// The session's task: its features (the fake model of the tests finds them by the
    /// `Your features:` line), and the conflict to resolve when it continues one.
    fn worker_task(&self, copy: &Copy, conflicts: &[String]) -> String {
        let features = self.features();
        let lines: Vec<String> = copy
            .features
            .iter()
            .map(|id| {
                let description = features
                    .iter()
                    .find(|f| &f.id == id)
                    .map(|f| f.description.as_str())
                    .unwrap_or_default();
                format!("- {id}: {description}")
            })
            .collect();
        let mut task = format!(
            "Continue building the application. Other sessions build other features at the \
             same time, each in its own copy of the project; the harness merges your work \
             into the project when your session ends.\nYour features: {}.\n{}\nImplement \
             only these and verify each with verify_feature (it runs only yours). Leave \
             the other features alone: changing their files makes merges conflict.",
            copy.features.join(", "),
            lines.join("\n")
        );
        let notes: Vec<String> = {
            let s = self.lock();
            s.workers
                .iter()
                .filter(|w| w.stage == WorkerStage::TakenOver)
                .filter(|w| {
                    s.workers
                        .iter()
                        .any(|c| c.session == copy.number && c.continues == Some(w.session))
                })
                .map(|w| {
                    format!(
                        "\nSession {} built these features, but its branch {} conflicted with \
                         the project's when the harness merged it (in {}).",
                        w.session,
                        w.branch,
                        w.conflicts.join(", ")
                    )
                })
                .collect()
        };
        for note in notes {
            task.push_str(&note);
        }
        if !conflicts.is_empty() {
            task.push_str(&format!(
                "\nThe harness merged that branch into your copy: resolve the conflict markers \
                 (<<<<<<< ======= >>>>>>>) in {} keeping both sides' work, then verify your \
                 features. The harness commits the merge at the end of your session.",
                conflicts.join(", ")
            ));
        }
        task
    }

    /// Commits the copy's work on its branch and merges it into the project's branch (one
    /// merge at a time), then re-checks. Returns the features newly passing on the run's
    /// branch and the regressions. Removes the copy (kept while its branch waits on a
    /// conflict).
    async fn land(
        &self,
        copy: &Copy,
        note: &str,
        merging: &tokio::sync::Mutex<()>,
    ) -> Result<(Vec<String>, Vec<String>), RunError> {
        let verified: Vec<String> = {
            let s = self.lock();
            s.workers
                .iter()
                .find(|w| w.session == copy.number)
                .map(|w| w.verified.clone())
                .unwrap_or_default()
        };
        let notes = sandbox::untrusted::read(&copy.tree, Path::new(PROGRESS_FILE), NOTES_MAX_BYTES)
            .ok()
            .map(|c| c.bytes);
        let base_notes = copy.git.show_file(&copy.base, PROGRESS_FILE).await;
        copy.git.reset_paths(&copy.base, &HARNESS_FILES).await?;
        let message = session_commit_message(copy.number, &format!("{note} (worker)"), &verified);
        self.commit_in(&copy.git, &copy.id, Some(copy.number), &message)
            .await?;

        let _one_merge_at_a_time = merging.lock().await;
        // What the run's checks left in the project is committed first: a clean tree to merge
        // into.
        self.commit(
            &copy.id,
            Some(copy.number),
            &format!("loopwright: before merging session {}", copy.number),
        )
        .await?;
        let merge_message = format!(
            "loopwright: merge session {} ({})",
            copy.number,
            copy.features.join(", ")
        );
        let outcome = self
            .git
            .merge_from(&worker_history(&copy.root), MIRROR_REF, &merge_message)
            .await?;
        let continued = {
            let s = self.lock();
            s.workers
                .iter()
                .find(|w| w.session == copy.number)
                .and_then(|w| w.continues)
        };
        let result = match outcome {
            MergeOutcome::Merged { commit } => {
                if let Some(added) = added_notes(base_notes.as_deref(), notes.as_deref()) {
                    self.append_notes(copy, &added)?;
                }
                let regressions = self.recheck_passing(copy.number).await?;
                let passed = self.check_merged(copy, &verified).await?;
                self.write_feature_list()?;
                let message = session_commit_message(copy.number, " merged", &passed);
                self.commit(&copy.id, Some(copy.number), &message).await?;
                self.mark_committed();
                self.update_worker(copy.number, |w| {
                    w.stage = WorkerStage::Merged;
                    w.merge_commit = Some(commit.clone());
                });
                // Recorded before the copy goes: a run killed in between merges nothing twice.
                self.save()?;
                self.emit(
                    &copy.id,
                    EventKind::WorkerMerged {
                        features: copy.features.clone(),
                        branch: copy.branch.clone(),
                        commit,
                        passed: passed.clone(),
                    },
                );
                remove_dir(&copy.root);
                (passed, regressions)
            }
            MergeOutcome::Conflict { files, detail } => {
                // Kept in the project, for people and for the session that takes it over.
                let kept = self
                    .git
                    .fetch_branch(&worker_history(&copy.root), MIRROR_REF, &copy.branch)
                    .await;
                if let Err(e) = kept {
                    self.emit(
                        &copy.id,
                        EventKind::Warning {
                            message: format!(
                                "could not keep the branch {} in the project: {e}",
                                copy.branch
                            ),
                        },
                    );
                }
                self.update_worker(copy.number, |w| {
                    w.stage = WorkerStage::Conflict;
                    w.conflicts = files.clone();
                });
                self.save()?;
                let shown = if files.is_empty() {
                    tail_chars(&detail, 300)
                } else {
                    files.join(", ")
                };
                self.note_session(
                    copy.number,
                    format!(
                        "[the harness could not merge this session's branch {} into the \
                         project's: they conflict ({shown}). The merge was aborted and the \
                         branch kept; a later session starts from the conflict to resolve it. \
                         Until then {} do not pass]",
                        copy.branch,
                        copy.features.join(", ")
                    ),
                );
                self.emit(
                    &copy.id,
                    EventKind::WorkerConflict {
                        features: copy.features.clone(),
                        branch: copy.branch.clone(),
                        files,
                    },
                );
                remove_dir(&copy.tree);
                (Vec::new(), Vec::new())
            }
        };
        if let Some(old) = continued {
            // Its work is in this worker's branch now (merged, or handed on with it).
            remove_dir(&worker_root(&self.cfg.state_dir, old));
        }
        self.save()?;
        Ok(result)
    }

    /// Runs the checks of the features a worker verified, on the run's branch after its
    /// merge: those that pass there are recorded as passing (the merge is committed); the
    /// others are not, with a note. Returns the ones that pass.
    async fn check_merged(
        &self,
        copy: &Copy,
        verified: &[String],
    ) -> Result<Vec<String>, RunError> {
        let features = self.features();
        let mut passed = Vec::new();
        for id in verified {
            let Some(feature) = features.iter().find(|f| &f.id == id) else {
                continue;
            };
            let result = self.run_check(&copy.id, feature).await?;
            {
                let mut s = self.lock();
                let st = s.status.entry(id.clone()).or_default();
                st.last_checked_in = Some(copy.number);
                st.passes = result.passed;
                st.uncommitted = false;
                if result.passed {
                    st.verified_in.get_or_insert(copy.number);
                }
            }
            if result.passed {
                passed.push(id.clone());
            } else {
                self.note_session(
                    copy.number,
                    format!(
                        "[{id} passed in the session's copy but its check {} after the merge \
                         into the project's branch: {}]",
                        result.describe_exit(),
                        tail_chars(&result.output, 600)
                    ),
                );
            }
            let (passing, total) = self.tally();
            self.emit(
                &copy.id,
                EventKind::FeatureVerified {
                    id: id.clone(),
                    passed: result.passed,
                    exit_code: result.exit_code,
                    passing,
                    total,
                },
            );
        }
        self.save()?;
        Ok(passed)
    }

    /// Appends what a worker wrote to its `progress.md` to the project's, under a heading.
    fn append_notes(&self, copy: &Copy, added: &str) -> Result<(), RunError> {
        let current = sandbox::untrusted::read(
            &self.cfg.project_dir,
            Path::new(PROGRESS_FILE),
            NOTES_MAX_BYTES * 16,
        )
        .ok()
        .map(|c| c.bytes)
        .unwrap_or_default();
        let mut text = current;
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.extend_from_slice(
            format!(
                "\n## Session {} ({})\n{}\n",
                copy.number,
                copy.features.join(", "),
                added.trim_end()
            )
            .as_bytes(),
        );
        let written =
            super::project_files::write_project_file(&self.cfg.project_dir, PROGRESS_FILE, &text)?;
        if let Some(message) = written {
            self.emit("run", EventKind::Warning { message });
        }
        Ok(())
    }

    /// Workers a stopped run left: a cut-off one's copy is committed and merged (its verdicts
    /// re-checked), a lost one's features go back; copies no record needs are removed.
    async fn recover_workers(&self) -> Result<(), RunError> {
        let cut_off: Vec<WorkerRecord> = {
            let s = self.lock();
            s.workers
                .iter()
                .filter(|w| w.stage == WorkerStage::Running)
                .cloned()
                .collect()
        };
        let merging = tokio::sync::Mutex::new(());
        for record in cut_off {
            let root = worker_root(&self.cfg.state_dir, record.session);
            let usable = record.dir.join(".git").is_dir() && !record.base.is_empty();
            if !usable {
                self.update_worker(record.session, |w| w.stage = WorkerStage::Abandoned);
                self.note_session(
                    record.session,
                    "[the session was cut off before its copy of the project was ready; its \
                     features went back to the others]"
                        .into(),
                );
                self.save()?;
                remove_dir(&root);
                continue;
            }
            let git = HarnessGit::open(&record.dir, &root.join("git")).await?;
            let copy = Copy {
                number: record.session,
                id: state::session_id(record.session),
                features: record.features.clone(),
                branch: record.branch.clone(),
                root,
                tree: record.dir.clone(),
                git,
                base: record.base.clone(),
            };
            let (newly, regressions) = self.land(&copy, " (cut off)", &merging).await?;
            {
                let mut s = self.lock();
                if let Some(rec) = s.sessions.iter_mut().find(|r| r.number == record.session) {
                    rec.newly_passing = newly;
                    rec.regressions = regressions;
                }
                let passing = s.passing();
                if passing > s.best_passing {
                    s.best_passing = passing;
                    s.stall = Stall::default();
                }
            }
            self.save()?;
        }
        // Copies no record needs any more (a run killed while removing one).
        let keep: BTreeSet<PathBuf> = {
            let s = self.lock();
            s.workers
                .iter()
                .filter(|w| matches!(w.stage, WorkerStage::Conflict | WorkerStage::Running))
                .map(|w| worker_root(&self.cfg.state_dir, w.session))
                .collect()
        };
        if let Ok(entries) = std::fs::read_dir(self.cfg.state_dir.join(WORKERS_DIR)) {
            for entry in entries.flatten() {
                if !keep.contains(&entry.path()) {
                    remove_dir(&entry.path());
                }
            }
        }
        Ok(())
    }
}

/// What the session added to `progress.md`: the text after the start's, or all of it when
/// it rewrote the file; `None` when it added nothing.
fn added_notes(base: Option<&[u8]>, now: Option<&[u8]>) -> Option<String> {
    let now = now?;
    let base = base.unwrap_or_default();
    if now == base {
        return None;
    }
    let added = now.strip_prefix(base).unwrap_or(now);
    let text = String::from_utf8_lossy(added).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// A worker's `verify_feature`: only its own features, checked in its copy.
struct WorkerTools<'a> {
    ctx: &'a RunContext<'a>,
    copy: &'a Copy,
    toolbox: &'a Toolbox,
    /// Its features whose check passed in this session.
    passed: Mutex<BTreeSet<String>>,
}

impl Tool for WorkerTools<'_> {
    fn spec(&self) -> ToolSpec {
        verify_feature_spec()
    }

    fn call<'b>(&'b self, input: &'b Value) -> BoxFuture<'b, ToolOutcome> {
        Box::pin(self.verify(input))
    }
}

impl SessionHooks for WorkerTools<'_> {
    fn progress_marks(&self) -> u64 {
        self.passed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len() as u64
    }

    fn work_done(&self) -> bool {
        let passed = self.passed.lock().unwrap_or_else(PoisonError::into_inner);
        self.copy.features.iter().all(|f| passed.contains(f))
    }

    fn after_tool<'b>(&'b self, name: &'b str) -> BoxFuture<'b, Option<String>> {
        Box::pin(async move {
            if name != "bash" {
                return None;
            }
            self.ctx
                .guard_git_of(&self.copy.git, &self.copy.id, Some(self.copy.number))
                .await
        })
    }
}

impl WorkerTools<'_> {
    async fn verify(&self, input: &Value) -> ToolOutcome {
        let Some(id) = input.get("id").and_then(Value::as_str) else {
            return ToolOutcome::failure(
                "verify_feature",
                "verify_feature needs `id`, one of your features",
            );
        };
        if !self.copy.features.iter().any(|f| f == id) {
            return ToolOutcome::failure(
                "verify_feature",
                format!(
                    "{id:?} is not one of this session's features ({}); other sessions build \
                     the others at the same time",
                    self.copy.features.join(", ")
                ),
            );
        }
        let features = self.ctx.features();
        let Some(feature) = features.iter().find(|f| f.id == id) else {
            return ToolOutcome::failure("verify_feature", format!("there is no feature {id:?}"));
        };
        let result = match self
            .ctx
            .run_check_in(self.toolbox, &self.copy.id, feature)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return ToolOutcome::failure(
                    "verify_feature",
                    format!("the harness could not run the check: {e}"),
                )
            }
        };
        self.ctx.update_worker(self.copy.number, |w| {
            w.verified.retain(|v| v != id);
            if result.passed {
                w.verified.push(id.to_string());
            }
        });
        if let Err(e) = self.ctx.save() {
            return ToolOutcome::failure(
                "verify_feature",
                format!("the harness could not save the verdict: {e}"),
            );
        }
        if result.passed {
            self.passed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.to_string());
        } else {
            self.passed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id);
        }
        let (passing, total) = self.ctx.tally();
        self.ctx.emit(
            &self.copy.id,
            EventKind::FeatureVerified {
                id: id.to_string(),
                passed: result.passed,
                exit_code: result.exit_code,
                passing,
                total,
            },
        );
        let mut outcome = if result.passed {
            ToolOutcome::success(
                format!("verify_feature {id}: passed"),
                format!(
                    "{id} passed: its check `{}` exited 0 in your copy. It counts as passing \
                     once your work is merged into the project and passes there.",
                    feature.check
                ),
            )
        } else {
            ToolOutcome::success(
                format!("verify_feature {id}: failed"),
                format!(
                    "{id} failed: its check `{}` {}. It is not passing.\n{}",
                    feature.check,
                    result.describe_exit(),
                    result.output
                ),
            )
        };
        outcome.exit_code = result.exit_code;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::added_notes;

    #[test]
    fn notes_added_after_the_start_are_kept_and_a_rewrite_is_kept_whole() {
        assert_eq!(added_notes(Some(b"a\n"), Some(b"a\n")), None);
        assert_eq!(added_notes(None, None), None);
        assert_eq!(
            added_notes(Some(b"a\n"), Some(b"a\nF2 done\n")).as_deref(),
            Some("F2 done")
        );
        assert_eq!(
            added_notes(Some(b"a\n"), Some(b"new\n")).as_deref(),
            Some("new")
        );
        assert_eq!(added_notes(None, Some(b"x")).as_deref(), Some("x"));
    }
}
