//! Every attempt accounted for: the Governor against testkit's fake server, one ledger entry
//! pair per attempt, charged by the documented rule (crate::charge); over-billing, deadlines,
//! cancellation, retry-after and the budget under retries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, call_settled, request, usd, Setup};
use governor::{AttemptOutcome, EntryKind, ErrorKind, GovernorError, LedgerContents, LedgerEntry};
use llm::{LlmError, Message, StreamEvent, Timeouts, Usd};
use std::time::Duration;
use testkit::{FakeServer, Fault, Reply, Script, StreamFault, Turn, Usage};
use tokio_util::sync::CancellationToken;

const SONNET: &str = "anthropic/claude-sonnet-4-5";
const MINI: &str = "openai/gpt-4.1-mini";

fn hi() -> Vec<Message> {
    vec![Message::user_text("hi")]
}

fn settles(ledger: &LedgerContents) -> Vec<&LedgerEntry> {
    ledger
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Settle)
        .collect()
}

fn reserves(ledger: &LedgerContents) -> Vec<&LedgerEntry> {
    ledger
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Reserve)
        .collect()
}

/// A stream cut after `after` events of a reply reporting `usage`.
fn cut_after(after: usize, usage: Usage) -> Turn {
    Turn::Fault(Fault::Cut(StreamFault {
        after_events: after,
        reply: Some(Reply::text("a partial answer that is cut").with_usage(usage)),
    }))
}

/// Waits until the server has seen `n` model requests, then cancels.
async fn cancel_after_requests(server: &FakeServer, n: usize, cancel: &CancellationToken) {
    while server.request_count() < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
}

#[tokio::test]
async fn a_torn_and_retried_stream_is_charged_per_attempt() {
    let server = FakeServer::start(Script::turns(vec![
        // Anthropic's message_start reports the input before the cut.
        cut_after(2, Usage::new(500, 40)),
        Turn::Reply(Reply::text("whole").with_usage(Usage::new(500, 60))),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    setup.attempts = 3;
    let g = setup.governor().unwrap();
    let never = CancellationToken::new();
    let (settled, events) = call_settled(&g, "s", &request(hi(), 1000), &never).await;
    let settled = settled.unwrap();
    assert_eq!(settled.response.text(), "whole");
    assert_eq!(settled.attempts, 2);
    assert_eq!(server.request_count(), 2);

    let ledger = g.ledger().unwrap();
    assert_eq!(
        ledger.entries.len(),
        4,
        "a reserve and a settle per attempt"
    );
    let (r, s) = (reserves(&ledger), settles(&ledger));
    assert_eq!(
        (r[0].attempt, s[0].attempt, r[1].attempt, s[1].attempt),
        (1, 1, 2, 2)
    );
    assert!(
        ledger.entries.iter().all(|e| e.call == r[0].call),
        "one call"
    );
    // Torn: the 500 input tokens it reported at $3/Mtok + the 1000 max_tokens it may have
    // generated at $15/Mtok.
    assert_eq!(s[0].outcome, Some(AttemptOutcome::Torn));
    assert_eq!(s[0].cost, usd("0.0165"));
    assert!(s[0].cost <= r[0].reserved);
    assert!(s[0].note.as_deref().unwrap().contains("torn-attempt rule"));
    // Answered: 500 × $3 + 60 × $15 per Mtok.
    assert_eq!(s[1].outcome, Some(AttemptOutcome::Answered));
    assert_eq!(s[1].cost, usd("0.0024"));
    assert_eq!(
        settled.cost,
        usd("0.0189"),
        "the call's cost is both attempts'"
    );
    assert_eq!(ledger.total_spent(), settled.cost);
    assert_eq!(g.spent(), settled.cost);
    let retry = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::Retry {
                attempt, reason, ..
            } => Some((*attempt, reason.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(retry.0, 1);
    assert!(retry.1.contains("settled at $0.016500"), "{}", retry.1);
}

#[tokio::test]
async fn a_torn_stream_that_reported_nothing_is_charged_its_reservation() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::cut_stream(2),
        Turn::malformed_sse(2),
        Turn::text("third time"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(MINI, &server, dir.path());
    setup.attempts = 3;
    let g = setup.governor().unwrap();
    let settled = {
        let never = CancellationToken::new();
        call_settled(&g, "s", &request(hi(), 1000), &never)
            .await
            .0
            .unwrap()
    };
    assert_eq!(settled.attempts, 3);
    let ledger = g.ledger().unwrap();
    let (r, s) = (reserves(&ledger), settles(&ledger));
    for i in 0..2 {
        assert_eq!(s[i].outcome, Some(AttemptOutcome::Torn));
        assert_eq!(s[i].cost, r[i].reserved, "nothing reported: the worst case");
    }
    assert!(
        s[1].note
            .as_deref()
            .unwrap()
            .contains("could not be parsed"),
        "a malformed event is retried: {:?}",
        s[1].note
    );
    assert_eq!(ledger.total_spent(), settled.cost);
}

#[tokio::test]
async fn a_refused_connection_is_charged_nothing() {
    let server = FakeServer::start(Script::turns(vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    setup
        .env
        .insert("ANTHROPIC_BASE_URL".into(), testkit::refused_base_url());
    setup.attempts = 2;
    setup.budget = Some(usd("1"));
    let g = setup.governor().unwrap();
    let err = call(&g, "s", request(hi(), 1000)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            GovernorError::RetriesExhausted {
                attempts: 2,
                last: LlmError::Transport(_)
            }
        ),
        "{err}"
    );
    let ledger = g.ledger().unwrap();
    assert_eq!(ledger.entries.len(), 4);
    for s in settles(&ledger) {
        assert_eq!(s.outcome, Some(AttemptOutcome::NotSent));
        assert_eq!(s.cost, Usd::ZERO);
    }
    assert_eq!(ledger.total_spent(), Usd::ZERO);
    assert_eq!(g.spent(), Usd::ZERO);
}

#[tokio::test]
async fn a_refusal_then_an_answer_charges_the_refusal_nothing() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::http_error(529),
        Turn::Reply(Reply::text("ok").with_usage(Usage::new(100, 10))),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    setup.attempts = 2;
    let g = setup.governor().unwrap();
    call(&g, "s", request(hi(), 1000)).await.unwrap();
    let ledger = g.ledger().unwrap();
    let s = settles(&ledger);
    assert_eq!(
        (s[0].outcome, s[0].cost),
        (Some(AttemptOutcome::Refused), Usd::ZERO)
    );
    assert_eq!(s[1].cost, usd("0.00045"));
    assert_eq!(ledger.total_spent(), usd("0.00045"));
}

#[tokio::test]
async fn output_above_max_tokens_is_recorded_flagged_and_stops_the_run() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::Reply(Reply::text("long").with_usage(Usage::new(100, 5000))),
        Turn::text("never served"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    setup.budget = Some(usd("1"));
    let g = setup.governor().unwrap();
    let err = call(&g, "s", request(hi(), 1000)).await.unwrap_err();
    assert!(matches!(err, GovernorError::Overbilled { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Overbilled);
    assert!(
        err.to_string()
            .contains("5000 output tokens for max_tokens 1000"),
        "{err}"
    );
    let ledger = g.ledger().unwrap();
    let s = settles(&ledger)[0];
    assert!(s.overbilled);
    assert_eq!(s.output_tokens, 5000, "recorded as reported");
    // 100 × $3 + 5000 × $15 per Mtok, above what was reserved.
    assert_eq!(s.cost, usd("0.0753"));
    assert!(s.cost > s.reserved);
    assert!(s.note.as_deref().unwrap().contains("over-billed"));
    assert_eq!(ledger.totals_by_session()["s"].overbilled, 1);

    let err = call(&g, "s", request(hi(), 1000)).await.unwrap_err();
    assert!(
        matches!(
            err,
            GovernorError::Stopped {
                kind: ErrorKind::Overbilled,
                ..
            }
        ),
        "the next call is refused: {err}"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn a_reported_cost_above_the_reservation_is_over_billing() {
    let server = FakeServer::start(Script::turns(vec![Turn::Reply(
        Reply::text("ok")
            .with_usage(Usage::new(100, 10))
            .with_cost(5.0),
    )]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(MINI, &server, dir.path());
    let g = setup.governor().unwrap();
    let err = call(&g, "s", request(hi(), 1000)).await.unwrap_err();
    assert!(
        matches!(&err, GovernorError::Overbilled { detail } if detail.contains("a cost of $5.000000 above")),
        "{err}"
    );
    assert_eq!(
        g.ledger().unwrap().total_spent(),
        usd("5"),
        "recorded as reported"
    );
}

#[tokio::test]
async fn a_torn_stream_reporting_absurd_input_is_over_billing_too() {
    let server = FakeServer::start(Script::turns(vec![
        cut_after(1, Usage::new(1_000_000, 1)),
        Turn::text("never served"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    setup.attempts = 3;
    let g = setup.governor().unwrap();
    let err = call(&g, "s", request(hi(), 1000)).await.unwrap_err();
    assert!(
        matches!(&err, GovernorError::Overbilled { detail } if detail.contains("1000000 input tokens")),
        "{err}"
    );
    assert_eq!(server.request_count(), 1, "no retry after over-billing");
    assert!(settles(&g.ledger().unwrap())[0].overbilled);
}

#[tokio::test]
async fn a_keep_alive_drip_ends_at_the_per_call_deadline() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::drip(1, 20),
        Turn::text("never served"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(MINI, &server, dir.path());
    setup.attempts = 3;
    let mut config = setup.config().unwrap();
    config.provider.timeouts = Timeouts {
        call: Duration::from_millis(400),
        ..Timeouts::REMOTE
    };
    let g = governor::Governor::new(config).unwrap();
    let err = call(&g, "s", request(hi(), 1000)).await.unwrap_err();
    assert!(
        matches!(
            err,
            GovernorError::Provider(LlmError::DeadlineExceeded { .. })
        ),
        "{err}"
    );
    assert_eq!(server.request_count(), 1, "a deadline is not retried");
    let ledger = g.ledger().unwrap();
    let s = settles(&ledger)[0];
    assert_eq!(s.outcome, Some(AttemptOutcome::Torn));
    assert_eq!(s.cost, reserves(&ledger)[0].reserved);
}

#[tokio::test]
async fn the_first_byte_timeout_is_honoured_then_the_call_retried() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::delay(20_000, Reply::text("too late")),
        Turn::text("second"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(MINI, &server, dir.path());
    setup.attempts = 2;
    let mut config = setup.config().unwrap();
    // Long enough for the retry's prompt answer on a loaded machine, far below the delay.
    config.provider.timeouts = Timeouts {
        first_byte: Duration::from_secs(2),
        ..Timeouts::REMOTE
    };
    let g = governor::Governor::new(config).unwrap();
    let r = call(&g, "s", request(hi(), 1000)).await.unwrap();
    assert_eq!(r.text(), "second");
    assert_eq!(r.attempts, 2);
    let s = settles(&g.ledger().unwrap())[0].clone();
    assert_eq!(s.outcome, Some(AttemptOutcome::Torn));
    assert!(s.note.unwrap().contains("no response headers"));
}

#[tokio::test]
async fn cancelling_during_a_stalled_stream_returns_cancelled_and_settles_it() {
    let server = FakeServer::start(Script::turns(vec![
        // The answer starts, then nothing for an hour (far past any timeout the test could
        // wait for: only the cancellation can end this call).
        Turn::stall(2, 3_600_000),
        Turn::text("the next call"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    setup.attempts = 3;
    let g = setup.governor().unwrap();
    let cancel = CancellationToken::new();
    let prompt = request(hi(), 1000);
    let (result, ()) = tokio::join!(
        call_settled(&g, "s", &prompt, &cancel),
        cancel_after_requests(&server, 1, &cancel)
    );
    let err = result.0.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    let GovernorError::Cancelled { charged } = err else {
        panic!("expected Cancelled, got {err}")
    };
    let ledger = g.ledger().unwrap();
    let s = settles(&ledger)[0];
    assert_eq!(s.outcome, Some(AttemptOutcome::Cancelled));
    assert_eq!(s.cost, charged);
    assert!(
        charged > Usd::ZERO,
        "a cancelled attempt may have been billed"
    );
    assert_eq!(g.spent(), ledger.total_spent(), "nothing left in flight");
    assert_eq!(server.request_count(), 1, "a cancellation is not retried");
    // The door stays open: cancelling is not a violation.
    let next = call(&g, "s", request(hi(), 1000)).await.unwrap();
    assert_eq!(next.text(), "the next call");
}

#[tokio::test]
async fn cancelling_during_a_retry_wait_returns_at_once() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::http_error_retry_after(429, "100"),
        Turn::text("never served"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    setup.attempts = 3;
    let g = setup.governor().unwrap();
    let cancel = CancellationToken::new();
    let prompt = request(hi(), 1000);
    let (result, ()) = tokio::join!(
        call_settled(&g, "s", &prompt, &cancel),
        cancel_after_requests(&server, 1, &cancel)
    );
    let (result, events) = result;
    assert!(
        matches!(result, Err(GovernorError::Cancelled { charged }) if charged.is_zero()),
        "{result:?}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        StreamEvent::Retry {
            wait_ms: 100_000,
            ..
        }
    )));
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn an_absurd_retry_after_is_final_with_a_clear_message() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::http_error_retry_after(429, "86400"),
        Turn::text("never served"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    setup.attempts = 5;
    let g = setup.governor().unwrap();
    let err = call(&g, "s", request(hi(), 1000)).await.unwrap_err();
    assert!(
        matches!(
            err,
            GovernorError::RetryAfterTooLong {
                wait_secs: 86_400,
                cap_secs: 120,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("treated as final"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Failure);
    assert_eq!(server.request_count(), 1);
    assert_eq!(g.ledger().unwrap().total_spent(), Usd::ZERO);
}

#[tokio::test]
async fn a_retry_the_budget_cannot_pay_for_is_not_attempted() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::cut_stream(0),
        Turn::text("never served"),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    setup.attempts = 3;
    // This call's reservation (its worst case), then a budget of it plus a little: the torn
    // attempt is charged its whole reservation, and the little left cannot pay for a retry.
    let prompt = request(hi(), 1000);
    let price = setup.governor().unwrap().price().unwrap().price;
    let reserved = price.worst_case(governor::budget::input_upper_bound(None, &prompt), 1000);
    let budget = reserved.saturating_add(usd("0.005"));
    setup.budget = Some(budget);
    let g = setup.governor().unwrap();
    let err = call(&g, "s", request(hi(), 1000)).await.unwrap_err();
    assert!(
        matches!(err, GovernorError::BudgetExhausted { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Budget);
    assert_eq!(server.request_count(), 1);
    let ledger = g.ledger().unwrap();
    assert_eq!(ledger.entries.len(), 2, "one attempt, no retry");
    assert_eq!(ledger.total_spent(), reserved);
    assert!(ledger.total_spent() <= budget);
}

#[tokio::test]
async fn a_ledger_with_a_negative_amount_is_refused_before_anything_is_sent() {
    let server = FakeServer::start(Script::turns(vec![Turn::text("never served")])).await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    setup.budget = Some(usd("3"));
    {
        let g = setup.governor().unwrap();
        let _ = g.ledger().unwrap();
    }
    std::fs::write(
        &setup.ledger,
        concat!(
            r#"{"kind":"settle","time":"2026-01-01T00:00:00Z","call":"c","session":"s","model_asked":"m","cost":-4900000000,"cost_usd":"-$4.900000","reserved":0}"#,
            "\n"
        ),
    )
    .unwrap();
    let err = setup.governor().unwrap_err();
    assert!(
        matches!(err, GovernorError::LedgerCorrupt { line: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("negative"), "{err}");
    assert_eq!(err.kind(), ErrorKind::BadInput);
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn an_emptied_ledger_is_detected_against_the_last_known_total() {
    let server = FakeServer::start(Script::turns(vec![Turn::Reply(
        Reply::text("ok").with_usage(Usage::new(1000, 100)),
    )]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(SONNET, &server, dir.path());
    let g = setup.governor().unwrap();
    call(&g, "s", request(hi(), 1000)).await.unwrap();
    let known = g.spent();
    assert_eq!(g.verify_ledger(known).unwrap(), known);
    std::fs::write(&setup.ledger, "").unwrap();
    let err = g.verify_ledger(known).unwrap_err();
    assert!(matches!(err, GovernorError::LedgerShort { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::BadInput);
}
