//! `bash {command, timeout_secs?}`: policy check, confined run, frozen files restored after.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use sandbox::{CommandPolicy, PolicyContext, ProjectRoot, Sandbox};
use serde_json::Value;

use crate::args::{preview, Args};
use crate::guarded::{FrozenCheck, FrozenSlot};
use crate::outcome::ToolOutcome;
use crate::registry::{BoxFuture, Tool};

/// The `bash` tool: what a command is checked against and run in.
pub(crate) struct Bash {
    pub(crate) root: Arc<ProjectRoot>,
    pub(crate) policy: Arc<CommandPolicy>,
    /// The confinement as the policy sees it (network, process scoping, temp dir).
    pub(crate) policy_context: PolicyContext,
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) default_timeout: Duration,
    pub(crate) max_timeout: Duration,
    /// Restored after every command that changed them.
    pub(crate) frozen: FrozenSlot,
}

impl Tool for Bash {
    fn spec(&self) -> llm::ToolSpec {
        crate::specs::bash(self.default_timeout.as_secs(), self.max_timeout.as_secs())
    }

    fn call<'a>(&'a self, input: &'a Value) -> BoxFuture<'a, ToolOutcome> {
        Box::pin(async move {
            match run(self, input).await {
                Ok(outcome) => outcome,
                Err(message) => ToolOutcome::failure("bash", message),
            }
        })
    }
}

async fn run(inner: &Bash, input: &Value) -> Result<ToolOutcome, String> {
    let args = Args::parse("bash", input, &["command", "timeout_secs"])?;
    let command = args.required_str("command")?;
    let timeout_secs = args.optional_positive_int("timeout_secs")?;
    if command.trim().is_empty() {
        return Err("`command` is empty; give a shell command to run".into());
    }
    let requested = timeout_secs.map_or(inner.default_timeout, Duration::from_secs);
    let timeout = requested.min(inner.max_timeout);

    inner
        .policy
        .check(command, &inner.root, &inner.policy_context)
        .map_err(|denial| format!("command refused by policy: {denial}"))?;

    let result = inner.sandbox.run(command, timeout).await;
    let frozen = inner.frozen.get();
    let check = if frozen.is_empty() {
        FrozenCheck::default()
    } else {
        frozen.verify_and_restore()
    };
    let short = preview(command.lines().next().unwrap_or_default(), 60);

    let mut content = String::new();
    if requested > timeout {
        let _ = writeln!(
            content,
            "[timeout_secs {} is above the {} s maximum; {} s was used]",
            requested.as_secs(),
            inner.max_timeout.as_secs(),
            timeout.as_secs()
        );
    }
    let mut outcome = match result {
        Err(e) => {
            let _ = writeln!(content, "the command could not be run: {e}");
            let mut failed = ToolOutcome::failure("bash", String::new());
            failed.summary = format!("bash: {short} → could not run");
            failed
        }
        Ok(out) => {
            let status = if out.timed_out {
                format!(
                    "timed out after {} s (the command and its children were killed; give a \
                     larger timeout_secs, up to {} s, or make the command finish sooner)",
                    timeout.as_secs(),
                    inner.max_timeout.as_secs()
                )
            } else if let Some(code) = out.exit_code {
                format!("exit code: {code}")
            } else if let Some(signal) = out.signal {
                format!("killed by signal {signal}")
            } else {
                "exited without a status".to_string()
            };
            let _ = writeln!(content, "{status}");
            section(&mut content, "stdout", &out.stdout);
            section(&mut content, "stderr", &out.stderr);
            if out.truncated {
                content.push_str("[output was cut in the middle to fit the cap; redirect it to a file and read or grep that]\n");
            }
            let summary = if out.timed_out {
                format!("bash: {short} → timed out after {} s", timeout.as_secs())
            } else if let Some(code) = out.exit_code {
                format!("bash: {short} → exit {code}")
            } else if let Some(signal) = out.signal {
                format!("bash: {short} → signal {signal}")
            } else {
                format!("bash: {short} → no status")
            };
            ToolOutcome {
                content: String::new(),
                is_error: out.timed_out,
                summary,
                exit_code: if out.timed_out { None } else { out.exit_code },
                frozen_restored: Vec::new(),
            }
        }
    };
    for path in &check.restored {
        let _ = writeln!(
            content,
            "[the command modified frozen file {}; it has been restored. The feature checks \
             written during planning cannot be changed; change the code under test instead]",
            path.display()
        );
    }
    for (path, reason) in &check.failed {
        let _ = writeln!(
            content,
            "[the command modified frozen file {}, and restoring it failed: {reason}]",
            path.display()
        );
    }
    if !check.restored.is_empty() {
        let _ = write!(
            outcome.summary,
            " (restored {} frozen file{})",
            check.restored.len(),
            if check.restored.len() == 1 { "" } else { "s" }
        );
    }
    outcome.content = content;
    outcome.frozen_restored = check.restored;
    Ok(outcome)
}

fn section(content: &mut String, label: &str, text: &str) {
    if text.is_empty() {
        let _ = writeln!(content, "{label}: (empty)");
    } else {
        let _ = writeln!(content, "{label}:");
        content.push_str(text);
        if !text.ends_with('\n') {
            content.push('\n');
        }
    }
}
