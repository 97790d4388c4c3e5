//! The three-script app the `run` end-to-end tests build (`one.py` prints 1, ...): its spec,
//! tests, planning turns, and the binary run against a fake model server in a temporary world.

use super::{loopwright, loopwright_std};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use testkit::{FakeServer, Turn};

pub const MODEL: &str = "anthropic/claude-sonnet-4-5";

pub const TEST_FILE: &str = r#"import subprocess, sys, unittest

def run(script):
    return subprocess.run([sys.executable, script], capture_output=True, text=True).stdout.strip()

class TestOne(unittest.TestCase):
    def test_one(self):
        self.assertEqual(run("one.py"), "1")

class TestTwo(unittest.TestCase):
    def test_two(self):
        self.assertEqual(run("two.py"), "2")

class TestThree(unittest.TestCase):
    def test_three(self):
        self.assertEqual(run("three.py"), "3")
"#;

pub const NAMES: [&str; 3] = ["one", "two", "three"];

/// A temporary home, project and state dir, and the spec file.
pub struct World {
    _dir: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
    pub state: PathBuf,
    pub spec: PathBuf,
}

pub fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let spec = dir.path().join("app_spec.txt");
    std::fs::write(
        &spec,
        "Three scripts: one.py prints 1, two.py prints 2, three.py prints 3.\n",
    )
    .unwrap();
    World {
        project: dir.path().join("project"),
        state: dir.path().join("state"),
        spec,
        home,
        _dir: dir,
    }
}

pub fn run_cmd(w: &World, server: &FakeServer, extra: &[&str]) -> std::process::Command {
    let mut cmd = loopwright_std(&w.home);
    cmd.arg("run")
        .arg("--project-dir")
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .arg("--spec")
        .arg(&w.spec)
        .args(["--model", MODEL])
        .args(extra)
        .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
        .env("ANTHROPIC_API_KEY", "sk-test");
    cmd
}

pub fn run(w: &World, server: &FakeServer, extra: &[&str]) -> assert_cmd::assert::Assert {
    assert_cmd::Command::from_std(run_cmd(w, server, extra)).assert()
}

pub fn status_json(w: &World) -> Value {
    let out = loopwright(&w.home)
        .args(["status", "--json", "--project-dir"])
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn call(name: &str, input: Value) -> Turn {
    Turn::tool_call(name, input)
}

pub fn feature(n: usize) -> Value {
    let class = ["TestOne", "TestTwo", "TestThree"][n];
    json!({
        "id": format!("F{}", n + 1),
        "category": "functional",
        "description": format!("{}.py prints {}", NAMES[n], n + 1),
        "steps": [format!("python3 {}.py", NAMES[n])],
        "check": format!("python3 -m unittest tests.test_app.{class}"),
        "test_files": ["tests/test_app.py"]
    })
}

pub fn git_log(project: &Path) -> Vec<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(project)
        .args(["log", "--format=%s"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn events(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn ids_where(status: &Value, keep: impl Fn(&Value) -> bool) -> Vec<String> {
    status["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| keep(f))
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

pub fn passing(status: &Value) -> Vec<String> {
    ids_where(status, |f| f["passes"] == json!(true))
}

pub fn write_tests() -> Turn {
    call(
        "write_file",
        json!({"path": "tests/test_app.py", "content": TEST_FILE}),
    )
}

pub fn planning_turns() -> Vec<Turn> {
    vec![
        write_tests(),
        call(
            "add_features",
            json!({"features": [feature(0), feature(1), feature(2)]}),
        ),
        Turn::text("Planned F1, F2, F3."),
    ]
}
