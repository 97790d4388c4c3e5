//! End-to-end: the Governor against testkit's fake model server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, request, usd, Setup};
use governor::{
    refresh_openrouter_catalog, EntryKind, ErrorKind, Governor, GovernorError, LedgerContents,
    PriceSource, ProvidersConfig,
};
use llm::{Message, Usd};
use std::collections::BTreeMap;
use testkit::{FakeServer, Reply, Script, Turn};

#[tokio::test]
async fn served_model_swap_is_a_pin_violation_settled_in_the_ledger() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::Reply(Reply::text("fine").with_model("claude-sonnet-4-5-20250929")),
        Turn::Reply(
            Reply::text("surprise")
                .with_model("claude-opus-4-1-20250805")
                .with_usage(testkit::Usage::new(1000, 100)),
        ),
        Turn::text("never served"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new("anthropic/claude-sonnet-4-5", &server, dir.path());
    let g = setup.governor().unwrap();

    // The dated form of the alias is accepted.
    let r = call(&g, "s1", request(vec![Message::user_text("hi")], 1000))
        .await
        .unwrap();
    assert_eq!(r.served_model, "claude-sonnet-4-5-20250929");

    let err = call(&g, "s1", request(vec![Message::user_text("again")], 1000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GovernorError::PinViolation { ref asked, ref served }
        if asked == "claude-sonnet-4-5" && served == "claude-opus-4-1-20250805"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::PinViolation);

    let ledger = LedgerContents::read(&setup.ledger).unwrap();
    let settles: Vec<_> = ledger
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Settle)
        .collect();
    assert_eq!(settles.len(), 2);
    let last = settles[1];
    assert_eq!(
        last.model_served.as_deref(),
        Some("claude-opus-4-1-20250805")
    );
    assert!(last.note.as_deref().unwrap().contains("pin violation"));
    // Priced at the served model's higher price: 1000 × $15 + 100 × $75 per Mtok.
    assert_eq!(last.cost, usd("0.0225"));
    assert_eq!(g.spent(), ledger.total_spent());

    // The door stays closed: nothing more is sent.
    let err = call(&g, "s1", request(vec![Message::user_text("more")], 1000))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PinViolation);
    assert_eq!(server.request_count(), 2);
    for r in server.requests() {
        assert_eq!(
            r.model.as_deref(),
            Some("claude-sonnet-4-5"),
            "every request names the pinned model"
        );
    }
}

#[tokio::test]
async fn a_small_budget_ends_a_long_conversation_without_overspending() {
    // Replies use (a fair share of) the input the request carried and the output allowed.
    let server = FakeServer::start(Script::handler(|req| {
        let max_tokens = req.body["max_tokens"].as_u64().unwrap_or(0);
        let input = req.body_len as u64 / 4;
        Turn::Reply(
            Reply::text("x".repeat(200))
                .with_usage(testkit::Usage::new(input, max_tokens.min(600)))
                .with_model("claude-sonnet-4-5-20250929"),
        )
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new("anthropic/claude-sonnet-4-5", &server, dir.path());
    let limit = usd("0.05");
    setup.budget = Some(limit);
    let g = setup.governor().unwrap();

    let mut messages = vec![Message::user_text("Build the app. ".repeat(200))];
    let mut refused = None;
    for turn in 0..200 {
        match call(&g, "build-1", request(messages.clone(), 8192)).await {
            Ok(r) => {
                messages.push(Message::assistant(r.parts.clone()));
                messages.push(Message::user_text(format!(
                    "tool output {turn}: {}",
                    "y".repeat(3000)
                )));
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let err = refused.expect("the budget must run out");
    let GovernorError::BudgetExhausted {
        spent,
        limit: l,
        needed,
    } = err
    else {
        panic!("expected BudgetExhausted, got {err}");
    };
    assert_eq!(l, limit);
    assert!(
        spent.saturating_add(needed) > limit,
        "refused only when the next call could cross the budget"
    );
    assert_eq!(
        GovernorError::BudgetExhausted {
            spent,
            limit,
            needed
        }
        .kind(),
        ErrorKind::Budget
    );
    assert!(server.request_count() > 2, "several calls fit in $0.05");

    let ledger = LedgerContents::read(&setup.ledger).unwrap();
    assert!(
        ledger.total_spent() <= limit,
        "spent {} of {limit}",
        ledger.total_spent()
    );
    assert_eq!(ledger.total_spent(), g.spent());
    assert!(g.remaining().unwrap() <= limit);
    let requests = server.requests();
    for r in &requests {
        assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5"));
        assert!(r.body["max_tokens"].as_u64().unwrap() <= 8192);
    }
    // Near the end the budget lowered max_tokens.
    assert!(requests
        .iter()
        .any(|r| r.body["max_tokens"].as_u64().unwrap() < 8192));

    // A re-run resumes the same budget: the ledger's spending counts from the start.
    let again = setup.governor().unwrap();
    assert_eq!(again.spent(), ledger.total_spent());
    let err = call(&again, "build-2", request(messages, 8192))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GovernorError::BudgetExhausted { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn free_only_with_a_priced_model_sends_nothing() {
    let server = FakeServer::start(Script::turns(vec![Turn::text("should not be asked")])).await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new("anthropic/claude-sonnet-4-5", &server, dir.path());
    setup.free_only = true;
    let err = setup.governor().unwrap_err();
    assert!(
        matches!(err, GovernorError::FreeOnlyViolation { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Budget);
    assert!(err.to_string().contains("Nothing was sent"), "{err}");
    assert_eq!(server.request_count(), 0);
    assert!(LedgerContents::read(&setup.ledger)
        .unwrap()
        .entries
        .is_empty());

    // An OpenRouter model without :free and without a known price is not provably free either.
    let mut setup = Setup::new(
        "openrouter/anthropic/claude-sonnet-4.5",
        &server,
        dir.path(),
    );
    setup.free_only = true;
    assert!(matches!(
        setup.governor().unwrap_err(),
        GovernorError::FreeOnlyViolation { .. }
    ));
    assert_eq!(server.all_requests().len(), 0);
}

#[tokio::test]
async fn a_free_model_reporting_a_cost_aborts_free_only_after_recording_it() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::Reply(Reply::text("free answer").with_cost(0.0)),
        Turn::Reply(
            Reply::text("billed answer")
                .with_cost(0.0125)
                .with_model("mistralai/mistral-7b-instruct"),
        ),
        Turn::text("never served"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(
        "openrouter/mistralai/mistral-7b-instruct:free",
        &server,
        dir.path(),
    );
    setup.free_only = true;
    let g = setup.governor().unwrap();
    assert_eq!(g.price().unwrap().source, PriceSource::FreeVariant);

    call(&g, "s", request(vec![Message::user_text("hi")], 512))
        .await
        .unwrap();
    let err = call(&g, "s", request(vec![Message::user_text("hi")], 512))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GovernorError::FreeOnlyViolation { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Budget);
    let ledger = LedgerContents::read(&setup.ledger).unwrap();
    assert_eq!(
        ledger.total_spent(),
        usd("0.0125"),
        "the reported cost is recorded"
    );
    let err = call(&g, "s", request(vec![Message::user_text("hi")], 512))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Budget, "the door stays closed");
    assert_eq!(server.request_count(), 2);

    for r in server.requests() {
        assert_eq!(
            r.model.as_deref(),
            Some("mistralai/mistral-7b-instruct:free")
        );
        assert_eq!(
            r.body["provider"]["allow_fallbacks"],
            serde_json::json!(false),
            "{}",
            r.body
        );
        assert!(r.body.get("models").is_none(), "never a fallback list");
    }
}

#[tokio::test]
async fn unknown_price_with_a_budget_is_refused_before_sending() {
    let server = FakeServer::start(Script::turns(vec![Turn::text("no")])).await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new("openai/gpt-9-ultra", &server, dir.path());
    setup.budget = Some(usd("1"));
    let err = setup.governor().unwrap_err();
    assert!(matches!(err, GovernorError::UnknownPrice { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::BadInput);
    assert!(
        err.to_string().contains("[pricing.\"openai/gpt-9-ultra\"]"),
        "{err}"
    );

    // Without a budget it is allowed, with a warning the CLI can show.
    setup.budget = None;
    let g = setup.governor().unwrap();
    assert!(g.price().is_none());
    assert!(g.warnings()[0].contains("no price is known"));
    call(&g, "s", request(vec![Message::user_text("hi")], 100))
        .await
        .unwrap();
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn a_provider_refusal_settles_at_zero_and_maps_to_a_config_exit() {
    let server = FakeServer::start(Script::turns(vec![Turn::http_error(401)])).await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new("openai/gpt-4.1-mini", &server, dir.path());
    setup.budget = Some(usd("1"));
    let g = setup.governor().unwrap();
    let err = call(&g, "s", request(vec![Message::user_text("hi")], 100))
        .await
        .unwrap_err();
    assert!(matches!(err, GovernorError::Provider(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::BadInput);
    let ledger = LedgerContents::read(&setup.ledger).unwrap();
    assert_eq!(ledger.entries.len(), 2, "reserve and settle");
    assert_eq!(ledger.total_spent(), Usd::ZERO, "no reservation dangles");
    assert_eq!(g.spent(), Usd::ZERO);
}

#[tokio::test]
async fn a_cut_stream_settles_at_the_reservation() {
    let server = FakeServer::start(Script::turns(vec![Turn::cut_stream(2)])).await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new("openai/gpt-4.1-mini", &server, dir.path());
    let g = setup.governor().unwrap();
    let err = call(&g, "s", request(vec![Message::user_text("hi")], 100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GovernorError::RetriesExhausted { attempts: 1, .. }),
        "{err}"
    );
    let ledger = LedgerContents::read(&setup.ledger).unwrap();
    let reserved = ledger.entries[0].reserved;
    assert!(reserved > Usd::ZERO);
    assert_eq!(
        ledger.total_spent(),
        reserved,
        "a call that may have been billed counts at its worst case"
    );
}

#[tokio::test]
async fn refreshed_openrouter_catalog_prices_openrouter_models() {
    let server = FakeServer::start(Script::turns(vec![Turn::Reply(
        Reply::text("ok").with_usage(testkit::Usage::new(1000, 1000)),
    )]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("openrouter-models.json");
    let mut setup = Setup::new(
        "openrouter/anthropic/claude-sonnet-4.5",
        &server,
        dir.path(),
    );
    setup.budget = Some(usd("1"));
    assert!(matches!(
        setup.governor().unwrap_err(),
        GovernorError::UnknownPrice { .. }
    ));

    let client = setup.config().unwrap().provider.client().unwrap();
    let catalog = refresh_openrouter_catalog(&client, &cache).await.unwrap();
    assert!(catalog.models["mistralai/mistral-7b-instruct:free"].is_free());

    setup.catalog = Some(cache);
    let g = setup.governor().unwrap();
    let priced = g.price().unwrap();
    assert_eq!(priced.source, PriceSource::OpenrouterCatalog);
    assert_eq!(
        (priced.price.input, priced.price.output),
        (usd("3"), usd("15"))
    );
    call(&g, "s", request(vec![Message::user_text("hi")], 2000))
        .await
        .unwrap();
    // 1000 × $3 + 1000 × $15 per Mtok.
    assert_eq!(g.spent(), usd("0.018"));
}

#[tokio::test]
async fn ollama_needs_no_key_and_costs_nothing() {
    let server = FakeServer::start(Script::turns(vec![Turn::Reply(
        Reply::text("hi").with_model("qwen2.5-coder:7b"),
    )]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new("ollama/qwen2.5-coder:7b", &server, dir.path());
    setup.env.retain(|k, _| k == "OLLAMA_HOST");
    setup.free_only = true;
    setup.budget = Some(Usd::ZERO);
    let g = setup.governor().unwrap();
    call(&g, "s", request(vec![Message::user_text("hi")], 100))
        .await
        .unwrap();
    assert_eq!(g.spent(), Usd::ZERO);
    assert_eq!(server.requests()[0].path, "/v1/chat/completions");
}

#[test]
fn governor_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Governor>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_budget() {
    let server = FakeServer::start(Script::handler(|req| {
        let max_tokens = req.body["max_tokens"].as_u64().unwrap_or(0);
        Turn::Reply(
            Reply::text("ok")
                .with_usage(testkit::Usage::new(req.body_len as u64 / 4, max_tokens))
                .with_model("gpt-4.1-2025-04-14"),
        )
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new("openai/gpt-4.1", &server, dir.path());
    let limit = usd("0.2");
    setup.budget = Some(limit);
    let g = std::sync::Arc::new(setup.governor().unwrap());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let g = g.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for _ in 0..10 {
                let req = request(
                    vec![Message::user_text(format!("task {i} {}", "z".repeat(2000)))],
                    4096,
                );
                let never = tokio_util::sync::CancellationToken::new();
                let answer = g.call(&format!("s{i}"), &req, &never, &mut |_| {}).await;
                outcomes.push(answer.is_ok());
            }
            outcomes
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap().into_iter().filter(|b| *b).count();
    }
    assert!(ok > 0);
    let ledger = LedgerContents::read(&setup.ledger).unwrap();
    assert!(
        ledger.total_spent() <= limit,
        "spent {} of {limit}",
        ledger.total_spent()
    );
    assert_eq!(ledger.total_spent(), g.spent());
    assert_eq!(g.calls() as usize, ok);
}

#[tokio::test]
async fn catalog_client_needs_no_openrouter_key() {
    let server = FakeServer::start(Script::turns(vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    let env: BTreeMap<String, String> = [(
        "OPENROUTER_BASE_URL".to_string(),
        server.openrouter_base_url(),
    )]
    .into_iter()
    .collect();
    let client =
        governor::openrouter_catalog_client(&ProvidersConfig::default(), &|k| env.get(k).cloned())
            .unwrap();
    let cache = dir.path().join("c.json");
    let catalog = refresh_openrouter_catalog(&client, &cache).await.unwrap();
    assert!(catalog.models.contains_key("openai/gpt-4.1-mini"));
    let loaded = governor::OpenRouterCatalog::load(&cache).unwrap().unwrap();
    assert_eq!(loaded, catalog);
    let logged = server.all_requests();
    assert_eq!(logged.len(), 1);
    assert_ne!(
        logged[0].header("authorization"),
        Some("Bearer -"),
        "the resolution placeholder never goes on the wire"
    );
}

#[tokio::test]
async fn a_recorded_session_replays_offline_for_free() {
    let server = FakeServer::start(Script::turns(vec![Turn::Reply(
        Reply::text("recorded answer").with_model("claude-haiku-4-5-20251001"),
    )]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("run.cassette.jsonl");
    let setup = Setup::new("anthropic/claude-haiku-4-5", &server, dir.path());
    let mut config = setup.config().unwrap();
    config.record_to = Some(cassette.clone());
    let g = Governor::new(config).unwrap();
    let live = call(&g, "s", request(vec![Message::user_text("hi")], 100))
        .await
        .unwrap();
    assert_eq!(live.text(), "recorded answer");
    drop(g);

    let mut replay = Setup::new(
        &format!("replay/{}", cassette.display()),
        &server,
        dir.path(),
    );
    replay.free_only = true;
    replay.budget = Some(Usd::ZERO);
    replay.ledger = dir.path().join("replay-ledger.jsonl");
    let g = replay.governor().unwrap();
    let played = call(&g, "s", request(vec![Message::user_text("hi")], 100))
        .await
        .unwrap();
    assert_eq!(played.text(), "recorded answer");
    assert_eq!(g.spent(), Usd::ZERO);
    assert_eq!(
        server.request_count(),
        1,
        "replay never touches the network"
    );
    let err = call(&g, "s", request(vec![Message::user_text("hi")], 100))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GovernorError::Provider(llm::LlmError::ReplayExhausted { .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn earlier_spend_in_the_ledger_counts_against_the_budget_unless_scoped_to_this_process() {
    // Each call reports 8k input tokens: $0.024 at $3/Mtok (plus a little output), honestly
    // within the bound of its 6 KB prompt.
    let big = || Turn::Reply(Reply::text("ok").with_usage(testkit::Usage::new(8_000, 10)));
    let server = FakeServer::start(Script::turns(vec![big(), big(), big()])).await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new("anthropic/claude-sonnet-4-5", &server, dir.path());
    setup.budget = Some(Usd::parse_decimal("0.035").unwrap());
    let ask = || request(vec![Message::user_text("x".repeat(6_000))], 64);

    // A first process spends $0.024 of the $0.035.
    let first = setup.governor().unwrap();
    call(&first, "s1", ask()).await.unwrap();
    let spent = first.spent();
    assert!(spent > Usd::parse_decimal("0.024").unwrap());
    drop(first);

    // A resumed run counts it: the next call's worst case no longer fits, nothing is sent.
    let resumed = setup.governor().unwrap();
    assert_eq!(resumed.spent(), spent);
    let err = call(&resumed, "s2", ask()).await.unwrap_err();
    assert!(
        matches!(err, GovernorError::BudgetExhausted { .. }),
        "{err}"
    );
    assert_eq!(server.request_count(), 1);
    drop(resumed);

    // A budget scoped to this process starts from zero (and the ledger still keeps everything).
    let mut config = setup.config().unwrap();
    config.budget_includes_ledger = false;
    let fresh = Governor::new(config).unwrap();
    assert_eq!(fresh.spent(), Usd::ZERO);
    call(&fresh, "s3", ask()).await.unwrap();
    assert_eq!(server.request_count(), 2);
    assert!(fresh.ledger().unwrap().total_spent() > spent);
}
