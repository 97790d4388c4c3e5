//! The run's own tools: `add_features` (planning) and `verify_feature` (building). Each is a
//! [`Tool`] the session offers next to the toolbox's, and the session's [`SessionHooks`] (what
//! counts as progress, whether the work is done, the git guard after a command).

use super::features::Feature;
use super::{state, RunContext};
use crate::session::SessionHooks;
use llm::ToolSpec;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use tools::{BoxFuture, Tool, ToolOutcome};

/// Planning: `add_features`.
pub(crate) struct AddFeatures<'a> {
    ctx: &'a RunContext<'a>,
    session_number: u32,
    /// Features recorded in this session (the watchdog's progress).
    recorded: AtomicU64,
}

/// Building: `verify_feature`.
pub(crate) struct VerifyFeature<'a> {
    ctx: &'a RunContext<'a>,
    session_number: u32,
    /// Features whose check passed in this session (each counts once as progress).
    passed: Mutex<BTreeSet<String>>,
}

impl<'a> AddFeatures<'a> {
    pub(crate) fn new(ctx: &'a RunContext<'a>, session_number: u32) -> AddFeatures<'a> {
        AddFeatures {
            ctx,
            session_number,
            recorded: AtomicU64::new(0),
        }
    }
}

impl<'a> VerifyFeature<'a> {
    pub(crate) fn new(ctx: &'a RunContext<'a>, session_number: u32) -> VerifyFeature<'a> {
        VerifyFeature {
            ctx,
            session_number,
            passed: Mutex::new(BTreeSet::new()),
        }
    }
}

fn add_features_spec() -> ToolSpec {
    ToolSpec {
        name: "add_features".into(),
        description:
            "Record features of the application, each with a shell `check` command that exits 0 \
exactly when the feature works and the `test_files` the check relies on (they must exist already). \
Call it several times to add features in batches. A batch with any problem is refused as a whole, \
with every problem listed; fix them and call again. After planning, the features and their test \
files are frozen."
                .into(),
        input_schema: json!({
            "type": "object",
            "properties": {
                "features": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string", "description": "Short unique id, e.g. F1"},
                            "category": {"type": "string", "description": "functional, style, error-handling..."},
                            "description": {"type": "string"},
                            "steps": {"type": "array", "items": {"type": "string"}},
                            "check": {"type": "string", "description": "Shell command run in the project directory; exit 0 = the feature works"},
                            "test_files": {"type": "array", "items": {"type": "string"}, "description": "Files (relative to the project) the check relies on"}
                        },
                        "required": ["id", "description", "check", "test_files"],
                        "additionalProperties": false
                    }
                }
            },
            "required": ["features"],
            "additionalProperties": false
        }),
    }
}

pub(super) fn verify_feature_spec() -> ToolSpec {
    ToolSpec {
        name: "verify_feature".into(),
        description:
            "Ask the harness to run a feature's check now. It answers passed, or failed with the \
check's output. Only this marks a feature as passing."
                .into(),
        input_schema: json!({
            "type": "object",
            "properties": {"id": {"type": "string", "description": "The feature id, as in feature_list.json"}},
            "required": ["id"],
            "additionalProperties": false
        }),
    }
}

impl Tool for AddFeatures<'_> {
    fn spec(&self) -> ToolSpec {
        add_features_spec()
    }

    fn call<'b>(&'b self, input: &'b Value) -> BoxFuture<'b, ToolOutcome> {
        Box::pin(self.add_features(input))
    }
}

impl SessionHooks for AddFeatures<'_> {
    fn progress_marks(&self) -> u64 {
        self.recorded.load(Ordering::SeqCst)
    }

    fn after_tool<'b>(&'b self, name: &'b str) -> BoxFuture<'b, Option<String>> {
        guard_after_command(self.ctx, name, self.session_number)
    }
}

/// After a command (the only tool that can reach `.git`): the git guard, with its note.
fn guard_after_command<'b>(
    ctx: &'b RunContext<'b>,
    name: &'b str,
    session_number: u32,
) -> BoxFuture<'b, Option<String>> {
    Box::pin(async move {
        if name != "bash" {
            return None;
        }
        ctx.guard_git(&state::session_id(session_number), Some(session_number))
            .await
    })
}

impl AddFeatures<'_> {
    async fn add_features(&self, input: &Value) -> ToolOutcome {
        let batch: Vec<Feature> = match input.get("features").cloned().map(serde_json::from_value) {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                return ToolOutcome::failure(
                    "add_features",
                    format!("`features` must be a list of {{id, category, description, steps[], check, test_files[]}} objects: {e}"),
                )
            }
            None => {
                return ToolOutcome::failure(
                    "add_features",
                    "add_features needs a `features` list of {id, category, description, steps[], check, test_files[]}",
                )
            }
        };
        if batch.is_empty() {
            return ToolOutcome::failure(
                "add_features",
                "the `features` list is empty; give at least one feature",
            );
        }
        let existing = self.ctx.features();
        let mut problems = self.ctx.batch_problems(&existing, &batch);
        if problems.is_empty() {
            problems = match self.ctx.batch_run_problems(existing.len(), &batch).await {
                Ok(p) => p,
                Err(e) => {
                    return ToolOutcome::failure(
                        "add_features",
                        format!("the harness could not run the checks: {e}"),
                    )
                }
            };
        }
        if !problems.is_empty() {
            return ToolOutcome::failure(
                "add_features",
                format!(
                    "No feature of this batch was recorded. Fix these and call add_features again:\n- {}",
                    problems.join("\n- ")
                ),
            );
        }
        let ids: Vec<String> = batch.iter().map(|f| f.id.clone()).collect();
        match self.ctx.add_planned(batch) {
            Ok(total) => {
                self.recorded.fetch_add(ids.len() as u64, Ordering::SeqCst);
                ToolOutcome::success(
                    format!("add_features: +{} ({total} in all)", ids.len()),
                    format!(
                        "Recorded {} feature(s): {}. {total} feature(s) in all.",
                        ids.len(),
                        ids.join(", ")
                    ),
                )
            }
            Err(e) => ToolOutcome::failure(
                "add_features",
                format!("the harness could not save the features: {e}"),
            ),
        }
    }
}

impl Tool for VerifyFeature<'_> {
    fn spec(&self) -> ToolSpec {
        verify_feature_spec()
    }

    fn call<'b>(&'b self, input: &'b Value) -> BoxFuture<'b, ToolOutcome> {
        Box::pin(self.verify(input))
    }
}

impl SessionHooks for VerifyFeature<'_> {
    fn progress_marks(&self) -> u64 {
        self.passed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len() as u64
    }

    fn work_done(&self) -> bool {
        self.ctx.every_feature_verified()
    }

    fn after_tool<'b>(&'b self, name: &'b str) -> BoxFuture<'b, Option<String>> {
        guard_after_command(self.ctx, name, self.session_number)
    }
}

impl VerifyFeature<'_> {
    async fn verify(&self, input: &Value) -> ToolOutcome {
        let Some(id) = input.get("id").and_then(Value::as_str) else {
            return ToolOutcome::failure(
                "verify_feature",
                "verify_feature needs `id`, a feature id from feature_list.json",
            );
        };
        let features = self.ctx.features();
        let Some(feature) = features.iter().find(|f| f.id == id) else {
            let known: Vec<&str> = features.iter().map(|f| f.id.as_str()).collect();
            return ToolOutcome::failure(
                "verify_feature",
                format!(
                    "there is no feature {id:?}; the features are: {}",
                    known.join(", ")
                ),
            );
        };
        match self.ctx.verify(feature, self.session_number).await {
            Ok(result) => {
                if result.passed {
                    self.passed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(id.to_string());
                }
                let mut outcome = if result.passed {
                    ToolOutcome::success(
                        format!("verify_feature {id}: passed"),
                        format!(
                            "{id} passed: its check `{}` exited 0. It is now marked passing.",
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
            Err(e) => ToolOutcome::failure(
                "verify_feature",
                format!("the harness could not run the check: {e}"),
            ),
        }
    }
}
