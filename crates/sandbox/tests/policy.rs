//! Policy unit tests: everyday commands pass, path confinement holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sandbox::{Access, CommandPolicy, PathError, PolicyConfig, PolicyContext, ProjectRoot};

const OFFLINE: &PolicyContext = &PolicyContext {
    allow_network: false,
    processes_scoped: false,
    temp_dir: None,
};

fn project() -> (tempfile::TempDir, ProjectRoot) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::create_dir_all(dir.path().join(".git/hooks")).unwrap();
    std::fs::write(dir.path().join("init.sh"), "echo hi\n").unwrap();
    let root = ProjectRoot::new(dir.path()).unwrap();
    (dir, root)
}

#[test]
fn everyday_commands_are_allowed() {
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    let allowed = [
        "pytest -q",
        "python3 -m pytest tests/",
        "python -m pytest -x -q tests/test_app.py",
        "npm test",
        "npm run build",
        "npx jest --ci",
        "cargo test",
        "cargo build --release && cargo clippy -- -D warnings",
        "go test ./...",
        "go build ./... && gofmt -l .",
        "ls -la | head -5",
        "grep -rn foo src && echo ok",
        "bash init.sh",
        "./init.sh",
        "sh ./init.sh",
        "git add -A && git commit -m x",
        "git status",
        "git log --oneline -5",
        "git diff HEAD~1 -- src/",
        "cat <<EOF > notes.txt\nhello\nworld\nEOF",
        "cat <<'EOF' > notes.txt\n$(not run) `nor this`\nEOF",
        "echo x > /dev/null 2>&1",
        "mkdir -p build/out && touch build/out/a.txt",
        "rm -rf build",
        "find . -name '*.pyc' -delete",
        "find src -name '*.rs' -exec wc -l {} +",
        "for f in src/*.py; do python3 \"$f\"; done",
        "if [ -f init.sh ]; then echo yes; else echo no; fi",
        "cd src && ls",
        "echo \"today is $(date +%F)\"",
        "sed -n '1,20p' src/main.py",
        "sed -i 's/a/b/' src/main.py",
        "python3 -c 'import sys; print(sys.version)'",
        "export FOO=bar && echo $FOO",
        "FOO=1 cargo test",
        "timeout 10 cargo test",
        "env RUST_BACKTRACE=1 cargo test",
        "make test 2>&1 | tail -20",
        "xargs -n1 echo < list.txt",
        "wc -l $(git ls-files)",
        "diff <(sort a.txt) <(sort b.txt)",
        "[[ -d src ]] && echo dir",
        "node src/index.js",
        "pip list",
        "pip3 show requests",
        "git config user.email me@example.com",
        "true; false || echo fallback",
        "command -v cargo",
        "/usr/bin/ls -la",
        "python3 -m venv .venv",
        "tee out.txt < in.txt",
        "cp src/a.py src/b.py && mv src/b.py src/c.py",
    ];
    for command in allowed {
        if let Err(e) = policy.check(command, &root, OFFLINE) {
            panic!("`{command}` should be allowed, got: {e}");
        }
    }
}

#[test]
fn network_commands_are_allowed_only_with_network() {
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    for command in [
        "pip install requests",
        "npm install",
        "npm ci",
        "cargo fetch",
        "go get example.com/x",
        "git push origin main",
        "git fetch",
        "git clone https://x/y.git",
    ] {
        let denial = policy.check(command, &root, OFFLINE).unwrap_err();
        assert!(denial.reason.contains("network"), "{command}: {denial}");
        policy
            .check(command, &root, &PolicyContext::new(true))
            .unwrap();
    }
}

#[test]
fn config_adds_and_removes_names() {
    let (_dir, root) = project();
    let config: PolicyConfig =
        serde_json::from_str(r#"{"allow": ["deno"], "deny": ["rm"]}"#).unwrap();
    let policy = CommandPolicy::new(&config);
    policy.check("deno test", &root, OFFLINE).unwrap();
    let denial = policy.check("rm -f x", &root, OFFLINE).unwrap_err();
    assert!(
        denial.reason.contains("denied by the project's policy"),
        "{denial}"
    );
    assert!(CommandPolicy::default()
        .check("deno test", &root, OFFLINE)
        .is_err());
}

#[test]
fn denial_reasons_are_actionable() {
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    let cases = [
        (
            "ssh example.com",
            "`ssh` is not on the allowlist; for HTTP use `curl` or `wget`",
        ),
        (
            "echo x > /etc/passwd",
            "output redirection to /etc/passwd writes outside the project",
        ),
        ("ls | sh", "reads code from its input"),
        ("eval ls", "`eval` runs a string as code"),
        ("$CMD -rf x", "is computed"),
        ("echo 'if (' | bash -c 'if then'", "could not be parsed"),
        ("git -c core.sshCommand=x fetch", "`git -c`"),
        ("bash -i", "interactive"),
        ("echo x > .git/hooks/pre-commit", "protected"),
    ];
    for (command, expected) in cases {
        let denial = policy.check(command, &root, OFFLINE).unwrap_err();
        assert!(
            denial.to_string().contains(expected),
            "`{command}` gave: {denial}"
        );
    }
}

#[test]
fn unparseable_commands_are_denied() {
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    for command in [
        "echo 'unterminated",
        "if true; then",
        "ls )",
        "echo $(",
        "cat <<EOF\nno end",
    ] {
        assert!(
            policy.check(command, &root, OFFLINE).is_err(),
            "`{command}` was allowed"
        );
    }
}

#[test]
fn resolve_joins_relative_paths_and_allows_inside() {
    let (dir, root) = project();
    let real = dir.path().canonicalize().unwrap();
    assert_eq!(
        root.resolve("src/main.rs", Access::Write).unwrap(),
        real.join("src/main.rs")
    );
    assert_eq!(
        root.resolve("./src/../init.sh", Access::Read).unwrap(),
        real.join("init.sh")
    );
    assert_eq!(
        root.resolve(real.join("src").to_str().unwrap(), Access::Read)
            .unwrap(),
        real.join("src")
    );
    assert_eq!(
        root.resolve("new/dir/file.txt", Access::Write).unwrap(),
        real.join("new/dir/file.txt")
    );
}

fn refused(result: Result<std::path::PathBuf, PathError>) -> String {
    match result {
        Err(PathError::Refused(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn resolve_refuses_dotdot_and_absolute_escapes() {
    let (_dir, root) = project();
    assert!(refused(root.resolve("../outside.txt", Access::Read)).contains("outside the project"));
    assert!(refused(root.resolve("src/../../x", Access::Write)).contains("outside the project"));
    assert!(refused(root.resolve("/etc/passwd", Access::Read)).contains("outside the project"));
    refused(root.resolve("/", Access::Read));
}

#[test]
fn resolve_refuses_symlinks_leading_out() {
    let (dir, root) = project();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("file_link"))
        .unwrap();
    std::os::unix::fs::symlink("src", dir.path().join("inner")).unwrap();
    std::os::unix::fs::symlink("/etc/ssl", dir.path().join("src/deep")).unwrap();
    assert!(refused(root.resolve("out/secret", Access::Read)).contains("symlink"));
    assert!(refused(root.resolve("out/new_file", Access::Write)).contains("symlink"));
    assert!(refused(root.resolve("file_link", Access::Write)).contains("symlink"));
    // `..` after a symlink follows the link first, as the kernel does.
    refused(root.resolve("src/deep/../passwd", Access::Read));
    // A symlink staying inside is fine and resolves to its target.
    let real = dir.path().canonicalize().unwrap();
    assert_eq!(
        root.resolve("inner/a.py", Access::Write).unwrap(),
        real.join("src/a.py")
    );
}

#[test]
fn protected_paths_refuse_writes_but_allow_reads() {
    let (dir, mut root) = project();
    root.protect(Path::new("feature_list.json"));
    std::os::unix::fs::symlink(".git", dir.path().join("g")).unwrap();
    assert!(refused(root.resolve("feature_list.json", Access::Write)).contains("protected"));
    assert!(root.resolve("feature_list.json", Access::Read).is_ok());
    assert!(refused(root.resolve(".git/hooks/pre-commit", Access::Write)).contains("protected"));
    assert!(refused(root.resolve("g/hooks/pre-commit", Access::Write)).contains("protected"));
    assert!(root.is_protected(Path::new(".git/config")));
    assert!(root.is_protected(&dir.path().canonicalize().unwrap().join("feature_list.json")));
    assert!(!root.is_protected(Path::new("src/main.rs")));
}
