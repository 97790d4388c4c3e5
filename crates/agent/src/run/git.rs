//! The harness's own git operations on the project. They run through the same confined runner
//! as the agent's commands: the agent can write inside `.git` (hooks, config, attributes
//! filters), so anything git might execute on the harness's behalf stays confined too. Hooks are
//! switched off and the identity is given on the command line (a fresh machine has none).

use sandbox::Sandbox;
use std::time::Duration;

const GIT: &str = "git -c core.hooksPath=/dev/null -c commit.gpgsign=false -c user.name=loopwright -c user.email=loopwright@localhost -c core.fsmonitor=false";
const GIT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git could not run in the project: {0}")]
    Run(String),
    #[error("`{command}` failed (exit {code:?}): {output}")]
    Failed {
        command: String,
        code: Option<i32>,
        output: String,
    },
}

/// Quotes `s` for bash as one word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

async fn git(sandbox: &Sandbox, args: &str) -> Result<String, GitError> {
    let command = format!("{GIT} {args}");
    let out = sandbox
        .run(&command, GIT_TIMEOUT)
        .await
        .map_err(|e| GitError::Run(e.to_string()))?;
    if out.exit_code == Some(0) {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed {
            command: format!("git {args}"),
            code: out.exit_code,
            output: format!("{}{}", out.stdout, out.stderr).trim().to_string(),
        })
    }
}

/// Makes the project a git repository if it is not one.
pub async fn ensure_repo(sandbox: &Sandbox, project: &std::path::Path) -> Result<bool, GitError> {
    if project.join(".git").exists() {
        return Ok(false);
    }
    git(sandbox, "init -q").await?;
    Ok(true)
}

/// Commits everything in the work tree with `message`; returns false when there was nothing to
/// commit.
pub async fn commit_all(sandbox: &Sandbox, message: &str) -> Result<bool, GitError> {
    git(sandbox, "add -A").await?;
    let status = git(sandbox, "status --porcelain").await?;
    if status.trim().is_empty() {
        return Ok(false);
    }
    git(sandbox, &format!("commit -q -m {}", shell_quote(message))).await?;
    Ok(true)
}

/// The last `n` commits, one line each; empty in a repository without commits.
pub async fn recent_log(sandbox: &Sandbox, n: u32) -> String {
    git(sandbox, &format!("log --oneline -n {n}"))
        .await
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("a; rm -rf /"), "'a; rm -rf /'");
    }
}
