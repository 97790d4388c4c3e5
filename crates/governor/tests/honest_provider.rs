//! Property: over random fault sequences (refusals, rate limits, cut streams, error events
//! after HTTP 200, malformed events, a call cancelled in flight as Ctrl-C or SIGTERM does) and
//! random usage figures from an honest provider (input within what was sent, output within
//! `max_tokens`), on both wires and under a budget, with the process stopped and resumed (a
//! new Governor on the same ledger) at a random call:
//! - each attempt is settled at exactly what the documented charging rule says the provider
//!   may bill for it (computed here independently, from what the server was told to do), so
//!   the ledger total is their sum;
//! - the ledger total never exceeds the budget, and equals what the Governor counts as spent;
//! - an honest provider is never flagged as over-billing;
//! - a resumed Governor counts what the ledger holds (so the budget goes on from there) and
//!   the ledger verifies against the total the stopped one last knew (what a run keeps in
//!   `run.json`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Setup;
use governor::{EntryKind, ErrorKind, GovernorError};
use llm::{Message, Prompt, Usd};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use testkit::{ErrorEventFault, FakeServer, Fault, HttpFault, Reply, Script, StreamFault, Turn};
use tokio_util::sync::CancellationToken;

/// What the server does with one request.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// HTTP 529 (overloaded).
    Overloaded,
    /// HTTP 429 with `retry-after: 0`.
    RateLimited,
    /// The stream is cut after this many events (at most 3: the final usage never came).
    Cut(usize),
    /// An error event after this many events.
    ErrorEvent(usize),
    /// A malformed event after this many events.
    Malformed(usize),
    /// The caller cancels the call while the server holds the response back (nothing
    /// streamed); the call ends there.
    Cancelled,
    /// A complete answer.
    Answer,
}

/// One planned request: what happens, and the honest share of the input sent and of
/// `max_tokens` that the provider reports using.
#[derive(Debug, Clone, Copy)]
struct Plan {
    kind: Kind,
    input_pct: u64,
    output_pct: u64,
}

/// What the server was told to do with one request it received.
#[derive(Debug, Clone, Copy)]
struct Served {
    kind: Kind,
    input: u64,
    output: u64,
}

fn arb_fault() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Overloaded),
        Just(Kind::RateLimited),
        (0usize..=3).prop_map(Kind::Cut),
        (0usize..=3).prop_map(Kind::ErrorEvent),
        (0usize..=3).prop_map(Kind::Malformed),
        Just(Kind::Cancelled),
    ]
}

/// A call: up to three failed attempts, then an answer; the size of its prompt.
fn arb_call() -> impl Strategy<Value = (Vec<Plan>, usize)> {
    let plan = |kind: BoxedStrategy<Kind>| {
        (kind, 1u64..=100, 0u64..=100).prop_map(|(kind, input_pct, output_pct)| Plan {
            kind,
            input_pct,
            output_pct,
        })
    };
    (
        proptest::collection::vec(plan(arb_fault().boxed()), 0..=3),
        plan(Just(Kind::Answer).boxed()),
        0usize..20_000,
    )
        .prop_map(|(mut faults, answer, bytes)| {
            faults.push(answer);
            (faults, bytes)
        })
}

/// Prices per million tokens in nano-dollars: (input, output) — the built-in table's.
fn prices(anthropic: bool) -> (i128, i128) {
    if anthropic {
        (3_000_000_000, 15_000_000_000) // claude-sonnet-4-5
    } else {
        (400_000_000, 1_600_000_000) // gpt-4.1-mini
    }
}

/// Σ tokens × nano-dollars per Mtok / 1e6, rounded up.
fn per_mtok(items: &[(u64, i128)]) -> Usd {
    let scaled: i128 = items.iter().map(|(t, p)| i128::from(*t) * p).sum();
    Usd::from_nanos(i64::try_from((scaled + 999_999) / 1_000_000).unwrap())
}

/// The documented rule, restated: what the provider may bill for one attempt, given what the
/// server did and what the attempt reserved (`max_tokens`, the worst case).
fn may_bill(anthropic: bool, served: Served, max_tokens: u64, reserved: Usd) -> Usd {
    let (input, output) = prices(anthropic);
    match served.kind {
        Kind::Overloaded | Kind::RateLimited => Usd::ZERO,
        // Anthropic's first event reports the input; the output may run to max_tokens.
        Kind::Cut(k) | Kind::ErrorEvent(k) | Kind::Malformed(k) if anthropic && k >= 1 => {
            per_mtok(&[(served.input, input), (max_tokens, output)])
        }
        // A cancelled attempt is torn with nothing reported.
        Kind::Cut(_) | Kind::ErrorEvent(_) | Kind::Malformed(_) | Kind::Cancelled => reserved,
        Kind::Answer => per_mtok(&[(served.input, input), (served.output, output)]),
    }
}

fn turn_for(served: Served) -> Turn {
    let reply = Reply::text("an answer in a few pieces")
        .with_usage(testkit::Usage::new(served.input, served.output));
    let stream = |after_events| StreamFault {
        after_events,
        reply: Some(reply.clone()),
    };
    match served.kind {
        Kind::Overloaded => Turn::http_error(529),
        Kind::RateLimited => Turn::Fault(Fault::Http(HttpFault::new(429).with_retry_after("0"))),
        Kind::Cut(k) => Turn::Fault(Fault::Cut(stream(k))),
        Kind::Malformed(k) => Turn::Fault(Fault::MalformedSse(stream(k))),
        Kind::ErrorEvent(k) => Turn::Fault(Fault::StreamError(ErrorEventFault {
            after_events: k,
            reply: Some(reply),
            error_type: None,
            message: None,
        })),
        Kind::Cancelled => Turn::Fault(Fault::Stall(testkit::StallFault {
            after_events: 0,
            ms: 60_000,
            reply: Some(reply),
        })),
        Kind::Answer => Turn::Reply(reply),
    }
}

fn run_case(
    anthropic: bool,
    budget: Usd,
    calls: Vec<(Vec<Plan>, usize)>,
    resume_at: usize,
) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let plans: VecDeque<Plan> = calls.iter().flat_map(|(p, _)| p.clone()).collect();
        let queue = Arc::new(Mutex::new(plans));
        let served = Arc::new(Mutex::new(Vec::<Served>::new()));
        // The token of the call in flight: a `Cancelled` request cancels it.
        let current = Arc::new(Mutex::new(CancellationToken::new()));
        let (q, log, token) = (queue.clone(), served.clone(), current.clone());
        let server = FakeServer::start(Script::handler(move |req| {
            // An honest provider: input within the bytes sent (a token is at least a byte,
            // and the Governor's bound counts every byte of the prompt), output within
            // max_tokens.
            let plan = q.lock().unwrap().pop_front().unwrap_or(Plan {
                kind: Kind::Answer,
                input_pct: 50,
                output_pct: 50,
            });
            let max_tokens = req.body["max_tokens"].as_u64().unwrap_or(0);
            let served = Served {
                kind: plan.kind,
                input: (req.body_len as u64 / 4 * plan.input_pct / 100).max(1),
                output: max_tokens * plan.output_pct / 100,
            };
            log.lock().unwrap().push(served);
            if matches!(served.kind, Kind::Cancelled) {
                token.lock().unwrap().cancel();
            }
            turn_for(served)
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let model = if anthropic {
            "anthropic/claude-sonnet-4-5"
        } else {
            "openai/gpt-4.1-mini"
        };
        let mut setup = Setup::new(model, &server, dir.path());
        setup.budget = Some(budget);
        setup.attempts = 4;
        let mut g = setup.governor().unwrap();
        for (i, (_, bytes)) in calls.iter().enumerate() {
            if i == resume_at {
                // Stopped and resumed: what the stopped process last knew, then a new
                // Governor over the same ledger.
                let known = g.spent();
                drop(g);
                g = setup.governor().unwrap();
                prop_assert_eq!(g.spent(), known, "the resumed Governor counts the ledger");
                prop_assert_eq!(g.verify_ledger(known).unwrap(), known);
            }
            let cancel = CancellationToken::new();
            *current.lock().unwrap() = cancel.clone();
            let prompt = Prompt {
                system: "You are a careful coding agent.".into(),
                messages: vec![Message::user_text("x".repeat(*bytes))],
                ..Prompt::default()
            };
            let result = g
                .call(&format!("s{i}"), &prompt, &cancel, &mut |_| {})
                .await;
            if let Err(e) = result {
                prop_assert!(
                    matches!(e.kind(), ErrorKind::Budget)
                        || matches!(e, GovernorError::RetriesExhausted { .. })
                        || (cancel.is_cancelled() && matches!(e, GovernorError::Cancelled { .. })),
                    "an honest provider only runs out the budget or the attempts: {e}"
                );
            }
        }

        let ledger = g.ledger().unwrap();
        let served = served.lock().unwrap().clone();
        let reserves: Vec<_> = ledger
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Reserve)
            .collect();
        let settles: Vec<_> = ledger
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Settle)
            .collect();
        prop_assert_eq!(
            reserves.len(),
            served.len(),
            "one reservation per request sent"
        );
        prop_assert_eq!(settles.len(), served.len(), "every attempt settled");
        let mut expected = Usd::ZERO;
        for ((r, s), served) in reserves.iter().zip(&settles).zip(&served) {
            prop_assert_eq!((&r.call, r.attempt), (&s.call, s.attempt));
            let bill = may_bill(anthropic, *served, r.output_tokens, r.reserved);
            prop_assert_eq!(
                s.cost,
                bill,
                "attempt {:?} settled at {} (rule: {})",
                served,
                s.cost,
                bill
            );
            prop_assert!(
                s.cost <= r.reserved,
                "an honest attempt stays within its reservation"
            );
            prop_assert!(!s.overbilled, "an honest provider is never over-billing");
            expected = expected.saturating_add(bill);
        }
        prop_assert_eq!(ledger.total_spent(), expected);
        prop_assert!(
            ledger.total_spent() <= budget,
            "spent {} of {}",
            ledger.total_spent(),
            budget
        );
        prop_assert_eq!(g.spent(), ledger.total_spent());
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_is_what_an_honest_provider_may_bill_and_within_the_budget(
        anthropic in any::<bool>(),
        budget_thousandths in 2i64..600,
        calls in proptest::collection::vec(arb_call(), 1..5),
        resume_at in 0usize..6,
    ) {
        // Sonnet's calls reserve about ten times what gpt-4.1-mini's do.
        let scale = if anthropic { 1_000_000 } else { 100_000 };
        run_case(anthropic, Usd::from_nanos(budget_thousandths * scale), calls, resume_at)?;
    }
}
