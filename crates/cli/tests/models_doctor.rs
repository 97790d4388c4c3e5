//! `loopwright models` and `loopwright doctor` against the fake model server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use predicates::prelude::*;
use testkit::{FakeServer, Reply, Script, Turn};

mod common;
use common::loopwright;

#[test]
fn doctor_verifies_the_served_model_and_records_the_call() {
    let home = tempfile::tempdir().unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::Reply(Reply::text("ok").with_model("claude-sonnet-4-5-20250929")),
        Turn::Reply(
            Reply::default()
                .with_tool_call("report", serde_json::json!({"word": "ok"}))
                .with_model("claude-sonnet-4-5-20250929"),
        ),
    ]));
    loopwright(home.path())
        .args([
            "doctor",
            "--model",
            "anthropic/claude-sonnet-4-5",
            "--budget",
            "0.10",
        ])
        .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
        .env("ANTHROPIC_API_KEY", "sk-test-key-000000000")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "served by   claude-sonnet-4-5-20250929",
        ))
        .stdout(predicate::str::contains("$3.00 in / $15.00 out"))
        .stdout(predicate::str::contains("sk-…0000"))
        .stdout(predicate::str::contains(
            "tool call   ok (native protocol): report {\"word\":\"ok\"}",
        ));
    assert_eq!(server.request_count(), 2);
    let req = &server.requests()[0];
    assert_eq!(req.model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(server.requests()[1].tool_names(), ["report"]);
    let ledger = std::fs::read_to_string(
        home.path()
            .join(".local/state/loopwright/doctor/ledger.jsonl"),
    )
    .unwrap();
    assert_eq!(
        ledger.lines().count(),
        4,
        "a reserve and a settle entry per call: {ledger}"
    );
}

#[test]
fn doctor_says_when_the_model_writes_its_call_as_text_and_reads_it_with_the_text_protocol() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("loopwright.toml");
    let written_call = "```json\n{\"name\": \"report\", \"arguments\": {\"word\": \"ok\"}}\n```";
    for (flag, want) in [
        (
            "native",
            "tool call   none: the model answered in text instead of calling the tool",
        ),
        (
            "text",
            "tool call   ok (text protocol): report {\"word\":\"ok\"}",
        ),
    ] {
        let server = FakeServer::start_blocking(Script::turns(vec![
            Turn::text("ok"),
            Turn::text(written_call),
        ]));
        std::fs::write(
            &config,
            format!(
                "[providers.local]\nbase_url = \"{}\"\nwire = \"openai\"\n",
                server.openai_base_url()
            ),
        )
        .unwrap();
        let out = loopwright(home.path())
            .args(["doctor", "--model", "local/qwen", "--tool-protocol", flag])
            .assert()
            .success();
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(stdout.contains(want), "{flag}: {stdout}");
        if flag == "native" {
            assert!(stdout.contains("--tool-protocol text"), "{stdout}");
        } else {
            let sent = &server.requests()[1];
            assert!(
                sent.body.get("tools").is_none(),
                "text protocol sends no tools field"
            );
        }
    }
}

#[test]
fn doctor_exits_4_when_another_model_answers() {
    let home = tempfile::tempdir().unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::Reply(
        Reply::text("ok").with_model("claude-opus-4-1"),
    )]));
    loopwright(home.path())
        .args(["doctor", "--model", "anthropic/claude-sonnet-4-5"])
        .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
        .env("ANTHROPIC_API_KEY", "k")
        .assert()
        .code(4)
        .stderr(predicate::str::contains("pin violated"));
    let ledger = std::fs::read_to_string(
        home.path()
            .join(".local/state/loopwright/doctor/ledger.jsonl"),
    )
    .unwrap();
    assert!(
        ledger.contains("claude-opus-4-1"),
        "the swapped call is in the ledger: {ledger}"
    );
}

#[test]
fn doctor_free_only_on_a_priced_model_sends_nothing() {
    let home = tempfile::tempdir().unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::text("ok")]));
    loopwright(home.path())
        .args(["doctor", "--model", "openai/gpt-4.1-mini", "--free-only"])
        .env("OPENAI_BASE_URL", server.openai_base_url())
        .env("OPENAI_API_KEY", "k")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("free-only"));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn doctor_names_the_missing_key_and_bad_model_strings() {
    let home = tempfile::tempdir().unwrap();
    loopwright(home.path())
        .args([
            "doctor",
            "--model",
            "openrouter/mistralai/mistral-7b-instruct:free",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("OPENROUTER_API_KEY"));
    loopwright(home.path())
        .args(["doctor", "--model", "gpt-4"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("provider"));
    loopwright(home.path())
        .args([
            "doctor",
            "--model",
            "anthropic/claude-sonnet-4-5",
            "--budget",
            "lots",
        ])
        .env("ANTHROPIC_API_KEY", "k")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--budget"));
}

#[test]
fn doctor_budget_too_small_exits_3_without_sending() {
    let home = tempfile::tempdir().unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::text("ok")]));
    loopwright(home.path())
        .args([
            "doctor",
            "--model",
            "anthropic/claude-sonnet-4-5",
            "--budget",
            "0.000001",
        ])
        .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
        .env("ANTHROPIC_API_KEY", "k")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("budget"));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn models_refresh_caches_openrouter_prices_and_free_filters() {
    let home = tempfile::tempdir().unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![]));
    loopwright(home.path())
        .args(["models", "--refresh", "--free"])
        .env("OPENROUTER_BASE_URL", server.openrouter_base_url())
        .assert()
        .success()
        .stdout(predicate::str::contains(":free"))
        .stdout(predicate::str::contains("anthropic/claude-sonnet-4-5 ").not());
    assert!(home
        .path()
        .join(".cache/loopwright/openrouter-models.json")
        .is_file());
    // Without --refresh the cached list is used; no model request was ever made.
    loopwright(home.path())
        .args(["models"])
        .assert()
        .success()
        .stdout(predicate::str::contains("openrouter/"))
        .stdout(predicate::str::contains("anthropic/claude-sonnet-4-5"))
        .stdout(predicate::str::contains("OpenRouter prices fetched"));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn config_overrides_price_and_unknown_keys_fail() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("loopwright.toml"),
        "[pricing.\"openai/gpt-4.1-mini\"]\ninput = \"9.99\"\noutput = \"19.99\"\n",
    )
    .unwrap();
    loopwright(home.path())
        .args(["models"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"openai/gpt-4.1-mini\s+\$9.99\s+\$19.99").unwrap());
    std::fs::write(home.path().join("loopwright.toml"), "budgett = 3\n").unwrap();
    loopwright(home.path())
        .args(["models"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("budgett"));
}
