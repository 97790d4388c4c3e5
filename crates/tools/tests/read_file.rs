#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
mod common;

use common::{assert_error, assert_ok, call, project, write};
use serde_json::json;

#[tokio::test]
async fn numbers_lines_from_one() {
    let (dir, tb) = project();
    write(dir.path(), "a.txt", "alpha\nbeta\ngamma\n");
    let out = call(&tb, "read_file", json!({"path": "a.txt"})).await;
    assert_ok(&out);
    assert_eq!(out.content, "     1\talpha\n     2\tbeta\n     3\tgamma\n");
    assert!(
        out.summary.starts_with("read_file: a.txt"),
        "{}",
        out.summary
    );
}

#[tokio::test]
async fn offset_and_limit_keep_real_line_numbers_and_say_what_remains() {
    let (dir, tb) = project();
    let text: String = (1..=10).map(|i| format!("line {i}\n")).collect();
    write(dir.path(), "ten.txt", &text);
    let out = call(
        &tb,
        "read_file",
        json!({"path": "ten.txt", "offset": 4, "limit": 3}),
    )
    .await;
    assert_ok(&out);
    assert!(
        out.content
            .starts_with("     4\tline 4\n     5\tline 5\n     6\tline 6\n"),
        "{}",
        out.content
    );
    assert!(!out.content.contains("line 7\n"), "{}", out.content);
    assert!(out.content.contains("4 more lines"), "{}", out.content);
    assert!(out.content.contains("offset 7"), "{}", out.content);
}

#[tokio::test]
async fn no_trailer_when_everything_shown() {
    let (dir, tb) = project();
    write(dir.path(), "a.txt", "x\ny");
    let out = call(&tb, "read_file", json!({"path": "a.txt", "offset": 2})).await;
    assert_ok(&out);
    assert_eq!(out.content, "     2\ty\n");
}

#[tokio::test]
async fn default_limit_is_2000_lines() {
    let (dir, tb) = project();
    let text: String = (1..=2500).map(|i| format!("{i}\n")).collect();
    write(dir.path(), "big.txt", &text);
    let out = call(&tb, "read_file", json!({"path": "big.txt"})).await;
    assert_ok(&out);
    assert!(out.content.contains("  2000\t2000\n"));
    assert!(!out.content.contains("\t2001\n"));
    assert!(out.content.contains("500 more lines"), "{}", out.content);
    assert!(out.content.contains("offset 2001"), "{}", out.content);
}

#[tokio::test]
async fn long_lines_are_cut() {
    let (dir, tb) = project();
    write(
        dir.path(),
        "long.txt",
        &format!("{}\nshort\n", "é".repeat(5000)),
    );
    let out = call(&tb, "read_file", json!({"path": "long.txt"})).await;
    assert_ok(&out);
    let first = out.content.lines().next().unwrap();
    assert_eq!(first.matches('é').count(), 2000);
    assert!(first.contains("line cut at 2000 characters"));
    assert!(out.content.contains("     2\tshort"));
}

#[tokio::test]
async fn offset_past_end_is_an_error() {
    let (dir, tb) = project();
    write(dir.path(), "a.txt", "one\ntwo\n");
    let out = call(&tb, "read_file", json!({"path": "a.txt", "offset": 5})).await;
    assert_error(&out, "past the end");
    assert!(out.content.contains("2 lines"), "{}", out.content);
}

#[tokio::test]
async fn binary_file_is_refused() {
    let (dir, tb) = project();
    std::fs::write(
        dir.path().join("img.bin"),
        [0x89u8, b'P', b'N', b'G', 0, 1, 2],
    )
    .unwrap();
    let out = call(&tb, "read_file", json!({"path": "img.bin"})).await;
    assert_error(&out, "binary");
}

#[tokio::test]
async fn huge_file_needs_offset_or_limit() {
    let (dir, tb) = project();
    let file = std::fs::File::create(dir.path().join("huge.log")).unwrap();
    // Sparse would read as NULs; write real text lines past the cap.
    let line = "x".repeat(1023) + "\n";
    let mut w = std::io::BufWriter::new(file);
    for _ in 0..(10 * 1024 + 5) {
        std::io::Write::write_all(&mut w, line.as_bytes()).unwrap();
    }
    drop(w);
    let out = call(&tb, "read_file", json!({"path": "huge.log"})).await;
    assert_error(&out, "offset and limit");
    let out = call(&tb, "read_file", json!({"path": "huge.log", "limit": 2})).await;
    assert_ok(&out);
    assert!(out.content.starts_with("     1\txxx"));
    assert!(out.content.contains("offset 3"), "{}", out.content);
}

#[tokio::test]
async fn empty_file_and_directory() {
    let (dir, tb) = project();
    write(dir.path(), "empty.txt", "");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let out = call(&tb, "read_file", json!({"path": "empty.txt"})).await;
    assert_ok(&out);
    assert!(out.content.contains("empty"));
    let out = call(&tb, "read_file", json!({"path": "sub"})).await;
    assert_error(&out, "directory");
}

#[tokio::test]
async fn missing_file_is_an_error() {
    let (_dir, tb) = project();
    let out = call(&tb, "read_file", json!({"path": "nope.txt"})).await;
    assert_error(&out, "does not exist");
}

#[tokio::test]
async fn escapes_are_refused() {
    let (dir, tb) = project();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", "secret\n");
    let rel = format!(
        "../{}/secret.txt",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    let out = call(&tb, "read_file", json!({"path": rel})).await;
    assert!(out.is_error, "{out:?}");
    assert!(!out.content.contains("     1\tsecret"));

    let abs = outside.path().join("secret.txt");
    let out = call(&tb, "read_file", json!({"path": abs.to_str().unwrap()})).await;
    assert_error(&out, "outside the project");

    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    let out = call(&tb, "read_file", json!({"path": "link/secret.txt"})).await;
    assert_error(&out, "outside the project");
}

#[tokio::test]
async fn crlf_lines_are_shown_without_cr() {
    let (dir, tb) = project();
    write(dir.path(), "win.txt", "a\r\nb\r\n");
    let out = call(&tb, "read_file", json!({"path": "win.txt"})).await;
    assert_eq!(out.content, "     1\ta\n     2\tb\n");
}
