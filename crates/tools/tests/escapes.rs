//! Escapes through the file tools: links planted by `bash` and then followed by `read_file`,
//! `write_file`, `edit_file`, `list_files` and `grep`; hard links to frozen files; special
//! files; and the harness's own restore of frozen files, which runs unconfined (possibly as
//! root) and must never follow a link the agent planted out of the project.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
mod common;

use std::path::{Path, PathBuf};

use common::{assert_error, assert_ok, call, project, read, toolbox_for, write};
use serde_json::json;
use tools::FrozenFiles;

const TEST: &str = "def test_todo():\n    assert add(1, 2) == 3\n";

struct Outside {
    _dir: tempfile::TempDir,
    path: PathBuf,
    canary: PathBuf,
}

fn outside() -> Outside {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap();
    let canary = path.join("canary");
    std::fs::write(&canary, "canary secret-needle\n").unwrap();
    Outside {
        _dir: dir,
        path,
        canary,
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn bash(tb: &tools::Toolbox, command: &str) -> tools::ToolOutcome {
    call(tb, "bash", json!({ "command": command })).await
}

#[tokio::test]
async fn links_planted_by_bash_are_not_followed_out_of_the_project() {
    let (_dir, tb) = project();
    let out = outside();
    // `ln -s` to a path outside is refused by the policy; a script is not.
    let plant = format!(
        "python3 -c \"import os; os.symlink('{c}', 'f'); os.symlink('{o}', 'd'); \
         os.symlink('/etc/passwd', 'p'); os.makedirs('sub'); os.symlink('../d', 'sub/up')\"",
        c = out.canary.display(),
        o = out.path.display()
    );
    assert_ok(&bash(&tb, &plant).await);

    for path in ["f", "d/canary", "p", "sub/up/canary"] {
        let r = call(&tb, "read_file", json!({ "path": path })).await;
        assert_error(&r, "outside the project");
        assert!(!r.content.contains("secret-needle") && !r.content.contains("root:"));
        let w = call(
            &tb,
            "write_file",
            json!({ "path": path, "content": "pwned" }),
        )
        .await;
        assert_error(&w, "outside the project");
        let e = call(
            &tb,
            "edit_file",
            json!({ "path": path, "old_string": "canary", "new_string": "pwned" }),
        )
        .await;
        assert_error(&e, "outside the project");
    }
    let w = call(
        &tb,
        "write_file",
        json!({ "path": "d/new", "content": "x" }),
    )
    .await;
    assert_error(&w, "outside the project");

    let l = call(&tb, "list_files", json!({ "path": "d" })).await;
    assert_error(&l, "outside the project");
    let g = call(&tb, "grep", json!({ "pattern": "secret-needle" })).await;
    assert!(!g.content.contains("canary secret"), "{g:#?}");
    let g = call(
        &tb,
        "grep",
        json!({ "pattern": "secret-needle", "path": "d" }),
    )
    .await;
    assert_error(&g, "outside the project");

    assert_eq!(
        std::fs::read_to_string(&out.canary).unwrap(),
        "canary secret-needle\n"
    );
    assert_eq!(entries(&out.path), vec!["canary"]);
}

#[tokio::test]
async fn a_hard_link_to_a_frozen_file_does_not_unfreeze_it() {
    let (dir, tb) = project();
    write(dir.path(), "tests/test_todo.py", TEST);
    let frozen =
        FrozenFiles::snapshot(tb.project(), &[PathBuf::from("tests/test_todo.py")]).unwrap();
    tb.set_frozen(frozen).unwrap();

    assert_ok(
        &bash(
            &tb,
            "python3 -c \"import os; os.link('tests/test_todo.py', 'h')\"",
        )
        .await,
    );
    // write_file replaces the link's directory entry (atomic rename), not the shared inode.
    assert_ok(
        &call(
            &tb,
            "write_file",
            json!({ "path": "h", "content": "pass\n" }),
        )
        .await,
    );
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);

    // Writing through the link from bash changes the frozen inode; it is put back afterwards.
    assert_ok(
        &bash(
            &tb,
            "python3 -c \"import os; os.link('tests/test_todo.py', 'h2')\"",
        )
        .await,
    );
    let out = bash(&tb, "printf 'def test_todo(): pass\\n' > h2").await;
    assert_eq!(
        out.frozen_restored,
        vec![PathBuf::from("tests/test_todo.py")]
    );
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);
}

/// The restore runs in the harness, outside the sandbox. If the directory of a frozen file is
/// replaced by a symlink, writing the frozen bytes back "through" it would create (or, for a
/// directory in the way, delete) files wherever the link points.
#[tokio::test]
async fn restoring_a_frozen_file_never_writes_through_a_planted_symlink() {
    let (dir, tb) = project();
    let out = outside();
    // A directory outside with the frozen file's name: a naive restore would remove it.
    std::fs::create_dir(out.path.join("test_todo.py")).unwrap();
    std::fs::write(out.path.join("test_todo.py/keep"), "keep").unwrap();
    write(dir.path(), "tests/test_todo.py", TEST);
    let frozen =
        FrozenFiles::snapshot(tb.project(), &[PathBuf::from("tests/test_todo.py")]).unwrap();
    tb.set_frozen(frozen.clone()).unwrap();

    let swap = format!(
        "python3 -c \"import os, shutil; shutil.rmtree('tests'); os.symlink('{o}', 'tests')\"",
        o = out.path.display()
    );
    let result = bash(&tb, &swap).await;
    assert_eq!(
        result.frozen_restored,
        vec![PathBuf::from("tests/test_todo.py")],
        "{result:#?}"
    );
    assert_eq!(entries(&out.path), vec!["canary", "test_todo.py"]);
    assert!(out.path.join("test_todo.py").is_dir());
    assert_eq!(
        std::fs::read_to_string(out.path.join("test_todo.py/keep")).unwrap(),
        "keep"
    );
    // The frozen file is back as a real file in a real directory of the project.
    let tests = dir.path().join("tests");
    assert!(std::fs::symlink_metadata(&tests).unwrap().is_dir());
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);

    // A symlink to another directory *inside* the project is replaced too: the check must run
    // the frozen bytes at the frozen path, not whatever the link leads to next time.
    let swap = "python3 -c \"import os, shutil; os.makedirs('elsewhere'); \
                shutil.copy('tests/test_todo.py', 'elsewhere/'); shutil.rmtree('tests'); \
                os.symlink('elsewhere', 'tests')\"";
    let result = bash(&tb, swap).await;
    assert_eq!(
        result.frozen_restored,
        vec![PathBuf::from("tests/test_todo.py")]
    );
    assert!(std::fs::symlink_metadata(&tests).unwrap().is_dir());
    // A file in the way of the directory is replaced as well.
    let result = bash(
        &tb,
        "python3 -c \"import shutil; shutil.rmtree('tests'); open('tests', 'w').write('x')\"",
    )
    .await;
    assert_eq!(
        result.frozen_restored,
        vec![PathBuf::from("tests/test_todo.py")]
    );
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);
    assert!(frozen.verify_and_restore().is_clean());
    assert_eq!(entries(&out.path), vec!["canary", "test_todo.py"]);
}

#[tokio::test]
async fn special_and_huge_files_do_not_hang_or_flood_read_file() {
    let (_dir, tb) = project();
    assert_ok(&bash(&tb, "python3 -c \"import os; os.mkfifo('pipe'); open('sparse', 'w').close(); os.truncate('sparse', 20 << 30); open('long', 'w').write('a' * (3 << 20))\"").await);
    // A FIFO would block the harness forever on open.
    let r = call(&tb, "read_file", json!({ "path": "pipe" })).await;
    assert_error(&r, "not a regular file");
    // 20 GB (sparse): refused whole; a part is refused as binary, not loaded.
    let r = call(&tb, "read_file", json!({ "path": "sparse" })).await;
    assert_error(&r, "bytes, more than");
    let r = call(
        &tb,
        "read_file",
        json!({ "path": "sparse", "offset": 1, "limit": 1 }),
    )
    .await;
    assert_error(&r, "binary");
    // One 3 MB line: cut, not returned whole.
    let r = call(&tb, "read_file", json!({ "path": "long" })).await;
    assert_ok(&r);
    assert!(r.content.len() < 64 * 1024, "{}", r.content.len());
    // grep on the FIFO does not hang either.
    let g = call(&tb, "grep", json!({ "pattern": "x" })).await;
    assert!(!g.content.contains("pipe:"), "{g:#?}");
}

/// The pointer to the run's state dir and the user's prompt templates inside the project are
/// read by the harness at every session: neither the file tools nor commands may rewrite them.
#[tokio::test]
async fn the_state_pointer_and_the_users_prompts_are_read_only_for_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".loopwright/state", "/var/tmp/state\n");
    write(dir.path(), "prompts/building.md", "build {{features}}\n");
    let tb = toolbox_for(dir.path(), |c| c.read_only = vec!["prompts".into()]);
    for path in [".loopwright/state", "prompts/building.md", "prompts/new.md"] {
        let out = call(&tb, "write_file", json!({"path": path, "content": "x"})).await;
        assert!(out.is_error, "{path}: {out:#?}");
    }
    bash(
        &tb,
        "echo /tmp/elsewhere > .loopwright/state; echo evil > prompts/building.md; \
         rm -f prompts/building.md; mv prompts p2; true",
    )
    .await;
    assert_eq!(read(dir.path(), ".loopwright/state"), "/var/tmp/state\n");
    assert_eq!(
        read(dir.path(), "prompts/building.md"),
        "build {{features}}\n"
    );
    // Other files stay writable.
    let out = bash(&tb, "echo ok > notes.txt").await;
    assert_ok(&out);
    assert_eq!(read(dir.path(), "notes.txt"), "ok\n");
    // Once files are frozen, the next session's view still keeps these read-only (written by
    // a program, which the command policy cannot see into).
    write(dir.path(), "tests/check.sh", "exit 0\n");
    let frozen = tools::FrozenFiles::snapshot(tb.project(), &["tests/check.sh".into()]).unwrap();
    tb.set_frozen(frozen).unwrap();
    tb.sandbox().end_session().await;
    let out = bash(
        &tb,
        "python3 -c \"open('.loopwright/state', 'w').write('/tmp/elsewhere')\"; \
         python3 -c \"open('prompts/building.md', 'w').write('evil')\"; true",
    )
    .await;
    assert_ok(&out);
    assert_eq!(read(dir.path(), ".loopwright/state"), "/var/tmp/state\n");
    assert_eq!(
        read(dir.path(), "prompts/building.md"),
        "build {{features}}\n"
    );
}
