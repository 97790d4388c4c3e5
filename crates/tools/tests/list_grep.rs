#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
mod common;

use common::{assert_error, assert_ok, call, project, write};
use serde_json::json;

fn sample(dir: &std::path::Path) {
    write(dir, ".gitignore", "build/\n*.log\n");
    write(dir, "src/main.py", "import os\nprint('hello')\n");
    write(
        dir,
        "src/util.py",
        "def helper():\n    return 'hello world'\n",
    );
    write(
        dir,
        "tests/test_main.py",
        "def test_hello():\n    assert True\n",
    );
    write(dir, "build/out.py", "print('hello')\n");
    write(dir, "debug.log", "hello\n");
    write(dir, ".git/config", "hello\n");
    write(dir, "README.md", "# Hello\n");
}

#[tokio::test]
async fn list_respects_gitignore_and_marks_dirs() {
    let (dir, tb) = project();
    sample(dir.path());
    let out = call(&tb, "list_files", json!({})).await;
    assert_ok(&out);
    let lines: Vec<&str> = out.content.lines().collect();
    assert_eq!(
        lines,
        vec![
            ".gitignore",
            "README.md",
            "src/",
            "src/main.py",
            "src/util.py",
            "tests/",
            "tests/test_main.py"
        ],
        "{}",
        out.content
    );
}

#[tokio::test]
async fn list_with_path_and_pattern() {
    let (dir, tb) = project();
    sample(dir.path());
    let out = call(&tb, "list_files", json!({"path": "src"})).await;
    assert_ok(&out);
    assert_eq!(out.content, "src/main.py\nsrc/util.py\n");

    let out = call(&tb, "list_files", json!({"pattern": "*.py"})).await;
    assert_ok(&out);
    assert_eq!(
        out.content, "src/main.py\nsrc/util.py\ntests/test_main.py\n",
        "{}",
        out.content
    );

    let out = call(&tb, "list_files", json!({"pattern": "test_*"})).await;
    assert_eq!(out.content, "tests/test_main.py\n");

    let out = call(&tb, "list_files", json!({"pattern": "*.rs"})).await;
    assert_ok(&out);
    assert!(out.content.contains("no entries"), "{}", out.content);

    let out = call(&tb, "list_files", json!({"pattern": "[unclosed"})).await;
    assert_error(&out, "not a valid glob");
}

#[tokio::test]
async fn list_is_capped_and_says_so() {
    let (dir, tb) = project();
    for i in 0..1100 {
        write(dir.path(), &format!("many/f{i:04}.txt"), "");
    }
    let out = call(&tb, "list_files", json!({"path": "many"})).await;
    assert_ok(&out);
    assert_eq!(
        out.content
            .lines()
            .filter(|l| l.starts_with("many/"))
            .count(),
        1000
    );
    assert!(
        out.content.contains("showed 1000 of 1100"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn list_refuses_outside_paths() {
    let (_dir, tb) = project();
    let out = call(&tb, "list_files", json!({"path": "/etc"})).await;
    assert_error(&out, "outside the project");
    let out = call(&tb, "list_files", json!({"path": "../.."})).await;
    assert_error(&out, "outside the project");
}

#[tokio::test]
async fn grep_finds_lines_respecting_gitignore() {
    let (dir, tb) = project();
    sample(dir.path());
    let out = call(&tb, "grep", json!({"pattern": "hello"})).await;
    assert_ok(&out);
    assert_eq!(
        out.content,
        "src/main.py:2:print('hello')\nsrc/util.py:2:    return 'hello world'\ntests/test_main.py:1:def test_hello():\n",
        "{}",
        out.content
    );
    assert!(
        out.summary.contains("3 matches in 3 files"),
        "{}",
        out.summary
    );
}

#[tokio::test]
async fn grep_with_path_glob_and_regex() {
    let (dir, tb) = project();
    sample(dir.path());
    let out = call(
        &tb,
        "grep",
        json!({"pattern": "(?i)^# hello", "glob": "*.md"}),
    )
    .await;
    assert_eq!(out.content, "README.md:1:# Hello\n");
    let out = call(&tb, "grep", json!({"pattern": "def \\w+", "path": "tests"})).await;
    assert_eq!(out.content, "tests/test_main.py:1:def test_hello():\n");
    let out = call(
        &tb,
        "grep",
        json!({"pattern": "import", "path": "src/main.py"}),
    )
    .await;
    assert_eq!(out.content, "src/main.py:1:import os\n");
    let out = call(&tb, "grep", json!({"pattern": "nothing-here"})).await;
    assert_ok(&out);
    assert!(out.content.contains("no matches"));
}

#[tokio::test]
async fn grep_invalid_regex_is_an_error() {
    let (_dir, tb) = project();
    let out = call(&tb, "grep", json!({"pattern": "fn("})).await;
    assert_error(&out, "not a valid regular expression");
}

#[tokio::test]
async fn grep_skips_binary_files() {
    let (dir, tb) = project();
    std::fs::write(dir.path().join("blob.bin"), b"needle\0\x01\x02needle").unwrap();
    write(dir.path(), "text.txt", "a needle\n");
    let out = call(&tb, "grep", json!({"pattern": "needle"})).await;
    assert_ok(&out);
    assert!(
        out.content.starts_with("text.txt:1:a needle\n"),
        "{}",
        out.content
    );
    assert!(!out.content.contains("blob.bin:"), "{}", out.content);
    assert!(
        out.content.contains("1 binary file skipped"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn grep_is_capped() {
    let (dir, tb) = project();
    let text: String = (0..600).map(|i| format!("match {i}\n")).collect();
    write(dir.path(), "m.txt", &text);
    let out = call(&tb, "grep", json!({"pattern": "match"})).await;
    assert_ok(&out);
    assert_eq!(
        out.content
            .lines()
            .filter(|l| l.starts_with("m.txt:"))
            .count(),
        500
    );
    assert!(out.content.contains("stopped after 500"), "{}", out.content);
}

#[tokio::test]
async fn grep_refuses_outside_paths() {
    let (_dir, tb) = project();
    let out = call(&tb, "grep", json!({"pattern": "root", "path": "/etc"})).await;
    assert_error(&out, "outside the project");
}
