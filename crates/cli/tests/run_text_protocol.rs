//! `loopwright run` with `tool_protocol = "text"`: a model that writes its tool calls as text
//! (in the forms small local models use) plans and builds the three-script app to all-passing,
//! on both wires; a malformed call is fed back and corrected; a planning session that uses no
//! tool and a missing test file are explained to the planner.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::loopwright_std;
use common::three_scripts::*;
use serde_json::{json, Value};
use testkit::{FakeServer, LoggedRequest, Script, Turn};

/// How a scripted answer writes its call.
#[derive(Clone, Copy)]
enum Form {
    FencedJson,
    ToolCallTag,
    Bare,
}

fn written(form: Form, name: &str, input: &Value) -> String {
    let call = format!("{{\"name\": \"{name}\", \"arguments\": {input}}}");
    match form {
        Form::FencedJson => format!("I'll use {name}.\n```json\n{call}\n```"),
        Form::ToolCallTag => format!("<tool_call>\n{call}\n</tool_call>"),
        Form::Bare => call,
    }
}

fn text_call(form: Form, name: &str, input: Value) -> Turn {
    Turn::text(written(form, name, &input))
}

/// The test file written with raw newlines inside the JSON string, as small models do.
fn write_tests_raw_newlines() -> Turn {
    let content = TEST_FILE.replace('\\', "\\\\").replace('"', "\\\"");
    Turn::text(format!(
        "Writing the tests.\n```json\n{{\"name\": \"write_file\", \"arguments\": {{\"path\": \"tests/test_app.py\", \"content\": \"{content}\"}}}}\n```"
    ))
}

fn build_turns(n: usize, form: Form) -> Vec<Turn> {
    vec![
        text_call(
            form,
            "write_file",
            json!({"path": format!("{}.py", NAMES[n]), "content": format!("print({})\n", n + 1)}),
        ),
        text_call(form, "verify_feature", json!({"id": format!("F{}", n + 1)})),
        text_call(
            form,
            "write_file",
            json!({"path": "progress.md", "content": format!("F{} done\n", n + 1)}),
        ),
        Turn::text(format!("F{} works.", n + 1)),
    ]
}

/// Every text the request carries (system and messages), on either wire.
fn all_text(req: &LoggedRequest) -> String {
    let mut out = String::new();
    let mut push = |v: &Value| match v {
        Value::String(s) => out.push_str(s),
        Value::Array(blocks) => {
            for b in blocks {
                out.push_str(b["text"].as_str().unwrap_or_default());
            }
        }
        _ => {}
    };
    push(&req.body["system"]);
    for m in req.messages() {
        push(&m["content"]);
    }
    out
}

fn turns() -> Vec<Turn> {
    let mut turns = vec![
        // Planning session 1 describes instead of acting: no_action.
        Turn::text("I will write tests/test_app.py with three unittest classes and then record F1-F3."),
        // Planning session 2.
        write_tests_raw_newlines(),
        // A broken call (a missing comma), fed back as an error...
        Turn::text("```json\n{\"name\": \"add_features\", \"arguments\": {\"features\": [] \"x\": 1}}\n```"),
        // ...a feature naming a test file that does not exist...
        text_call(
            Form::ToolCallTag,
            "add_features",
            json!({"features": [{
                "id": "F1", "description": "one", "check": "python3 -m unittest tests.test_one",
                "test_files": ["tests/test_one.py"]
            }]}),
        ),
        // ...then the right batch.
        text_call(
            Form::Bare,
            "add_features",
            json!({"features": [feature(0), feature(1), feature(2)]}),
        ),
        Turn::text("Planned F1, F2, F3."),
    ];
    turns.extend(build_turns(0, Form::FencedJson));
    turns.extend(build_turns(1, Form::ToolCallTag));
    // The session ends as soon as every feature passes.
    turns.extend(build_turns(2, Form::Bare).into_iter().take(2));
    turns
}

fn check_run(w: &World, server: &FakeServer) {
    assert_eq!(server.turns_left(), 0, "every scripted turn was used");
    let status = status_json(w);
    assert_eq!(status["phase"], "complete");
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    assert_eq!(status["sessions"][0]["end"], "no_action");
    let requests = server.requests();
    for r in &requests {
        assert!(r.body.get("tools").is_none(), "no tools field on the wire");
        assert!(
            all_text(r).contains("# Tools"),
            "tools in the system prompt"
        );
    }
    // The second planning session was told the first used no tool.
    let second_planning = &requests[1];
    assert!(
        all_text(second_planning).contains("It answered without using any tool"),
        "{}",
        all_text(second_planning)
    );
    // The broken call came back as an error with what was wrong.
    let after_broken = all_text(&requests[3]);
    assert!(
        after_broken.contains("could not read this tool call: invalid JSON"),
        "{after_broken}"
    );
    // The missing test file was explained, with the files that do exist.
    let after_missing = all_text(&requests[4]);
    assert!(
        after_missing
            .contains("\"tests/test_one.py\" does not exist yet. First write it with write_file")
            && after_missing.contains("Files that do exist in its directory: test_app.py"),
        "{after_missing}"
    );
    assert_eq!(
        std::fs::read_to_string(w.project.join("tests/test_app.py")).unwrap(),
        TEST_FILE,
        "raw newlines in the JSON string were read as newlines"
    );
}

#[test]
fn a_run_with_the_text_protocol_reaches_all_passing_on_the_openai_wire() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(turns()));
    std::fs::create_dir_all(&w.project).unwrap();
    std::fs::write(
        w.project.join("loopwright.toml"),
        format!(
            "[providers.local]\nbase_url = \"{}\"\nwire = \"openai\"\ntool_protocol = \"text\"\n",
            server.openai_base_url()
        ),
    )
    .unwrap();
    let mut cmd = loopwright_std(&w.home);
    cmd.arg("run")
        .arg("--project-dir")
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .arg("--spec")
        .arg(&w.spec)
        .args(["--model", "local/qwen2.5-coder-1.5b"]);
    assert_cmd::Command::from_std(cmd).assert().success();
    check_run(&w, &server);
    assert!(server
        .requests()
        .iter()
        .all(|r| r.path.ends_with("/chat/completions")));
}

#[test]
fn a_run_with_the_text_protocol_reaches_all_passing_on_the_anthropic_wire() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(turns()));
    run(&w, &server, &["--tool-protocol", "text"]).success();
    check_run(&w, &server);
    assert!(server
        .requests()
        .iter()
        .all(|r| r.path.ends_with("/v1/messages")));
}
