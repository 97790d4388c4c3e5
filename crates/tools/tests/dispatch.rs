#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
mod common;

use common::{assert_error, call, project};
use serde_json::json;
use tools::Toolbox;

#[test]
fn toolbox_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Toolbox>();
}

#[test]
fn specs_cover_the_contract() {
    let (_dir, tb) = project();
    let specs = tb.specs();
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "bash",
            "read_file",
            "write_file",
            "edit_file",
            "list_files",
            "grep"
        ]
    );
    let expect: [(&str, &[&str], &[&str]); 6] = [
        ("bash", &["command", "timeout_secs"], &["command"]),
        ("read_file", &["path", "offset", "limit"], &["path"]),
        ("write_file", &["path", "content"], &["path", "content"]),
        (
            "edit_file",
            &["path", "old_string", "new_string", "replace_all"],
            &["path", "old_string", "new_string"],
        ),
        ("list_files", &["path", "pattern"], &[]),
        ("grep", &["pattern", "path", "glob"], &["pattern"]),
    ];
    for (spec, (name, props, required)) in specs.iter().zip(expect) {
        assert_eq!(spec.name, name);
        assert!(spec.description.len() > 80, "{name}: description too thin");
        let schema = &spec.input_schema;
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false, "{name}");
        let mut got: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        got.sort_unstable();
        let mut want = props.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{name}");
        let got_required: Vec<&str> = schema
            .get("required")
            .and_then(|r| r.as_array())
            .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(got_required, required, "{name}");
    }
}

#[tokio::test]
async fn unknown_tool_lists_the_tools() {
    let (_dir, tb) = project();
    let out = call(&tb, "delete_everything", json!({})).await;
    assert_error(&out, "no tool named `delete_everything`");
    assert!(out.content.contains("read_file"));
}

#[tokio::test]
async fn invalid_json_input_is_a_tool_error() {
    let (_dir, tb) = project();
    for tool in tb.specs().iter().map(|s| s.name.clone()) {
        let tool = tool.as_str();
        let out = call(&tb, tool, json!({"__invalid_json": "{\"path\": \"a.txt"})).await;
        assert_error(&out, "not valid JSON");
    }
}

#[tokio::test]
async fn non_object_input_is_a_tool_error() {
    let (_dir, tb) = project();
    let out = call(&tb, "read_file", json!("a.txt")).await;
    assert_error(&out, "must be a JSON object");
}

#[tokio::test]
async fn missing_and_ill_typed_arguments_name_the_argument() {
    let (_dir, tb) = project();
    let out = call(&tb, "read_file", json!({})).await;
    assert_error(&out, "missing required argument `path`");
    let out = call(&tb, "write_file", json!({"path": "a.txt"})).await;
    assert_error(&out, "missing required argument `content`");
    let out = call(&tb, "read_file", json!({"path": 7})).await;
    assert_error(&out, "`path` must be a string, got a number");
    let out = call(&tb, "read_file", json!({"path": "a", "offset": "3"})).await;
    assert_error(&out, "`offset` must be a whole number");
    let out = call(&tb, "read_file", json!({"path": "a", "limit": 0})).await;
    assert_error(&out, "`limit` must be a whole number of at least 1");
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "a", "old_string": "x", "new_string": "y", "replace_all": "yes"}),
    )
    .await;
    assert_error(&out, "`replace_all` must be true or false");
    let out = call(&tb, "bash", json!({"command": "true", "timeout_secs": -5})).await;
    assert_error(&out, "`timeout_secs`");
    let out = call(&tb, "bash", json!({})).await;
    assert_error(&out, "missing required argument `command`");
}

#[tokio::test]
async fn unknown_arguments_are_named() {
    let (_dir, tb) = project();
    let out = call(&tb, "read_file", json!({"path": "a", "file": "b"})).await;
    assert_error(&out, "unknown argument `file`");
    assert!(out.content.contains("path, offset, limit"));
}

#[tokio::test]
async fn null_optional_arguments_are_absent() {
    let (dir, tb) = project();
    common::write(dir.path(), "a.txt", "x\n");
    let out = call(
        &tb,
        "read_file",
        json!({"path": "a.txt", "offset": null, "limit": null}),
    )
    .await;
    common::assert_ok(&out);
}

#[tokio::test]
async fn error_summaries_are_one_short_line() {
    let (_dir, tb) = project();
    let out = call(&tb, "read_file", json!({"path": "missing.txt"})).await;
    assert!(
        out.summary.starts_with("read_file: error:"),
        "{}",
        out.summary
    );
    assert!(!out.summary.contains('\n'));
    assert!(out.summary.chars().count() < 120);
}

#[tokio::test]
async fn null_input_counts_as_no_arguments() {
    let (dir, tb) = project();
    common::write(dir.path(), "a.txt", "x\n");
    let out = tb.call("list_files", &serde_json::Value::Null).await;
    common::assert_ok(&out);
    assert_eq!(out.content, "a.txt\n");
    let out = tb.call("read_file", &serde_json::Value::Null).await;
    assert_error(&out, "missing required argument `path`");
}

/// A tool a caller adds (as the orchestrator adds `add_features` and `verify_feature`).
struct Echo;

impl tools::Tool for Echo {
    fn spec(&self) -> llm::ToolSpec {
        llm::ToolSpec {
            name: "echo".into(),
            description: "Says back what it was given.".into(),
            input_schema: json!({"type": "object"}),
        }
    }

    fn call<'a>(
        &'a self,
        input: &'a serde_json::Value,
    ) -> tools::BoxFuture<'a, tools::ToolOutcome> {
        Box::pin(async move { tools::ToolOutcome::success("echo", input.to_string()) })
    }
}

#[tokio::test]
async fn a_registry_dispatches_the_toolbox_and_added_tools_alike() {
    let (_dir, tb) = project();
    let echo = Echo;
    let mut registry = tb.registry();
    registry.register(&echo);
    assert_eq!(
        registry.names(),
        [
            "bash",
            "read_file",
            "write_file",
            "edit_file",
            "list_files",
            "grep",
            "echo"
        ]
    );
    assert_eq!(registry.specs().last().unwrap().name, "echo");
    let out = registry.call("echo", &json!({"said": 1})).await;
    assert!(!out.is_error);
    assert!(out.content.contains("\"said\":1"), "{}", out.content);
    let out = registry
        .call("write_file", &json!({"path": "a.txt", "content": "x"}))
        .await;
    assert!(!out.is_error, "{}", out.content);
    let out = registry.call("nope", &json!({})).await;
    assert_error(&out, "no tool named `nope`");
    assert!(out.content.contains("echo"), "{}", out.content);
}
