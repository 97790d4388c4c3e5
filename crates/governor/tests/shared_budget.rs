//! One budget, many callers: concurrent calls on one Governor (tasks) over the file ledger, and
//! Governors on separate connections to one named budget in a real PostgreSQL server
//! (testkit's throwaway server; these tests print a message and skip when PostgreSQL is not
//! installed). Every figure is checked against the database's own report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{request, usd, Setup};
use governor::ledger::postgres::{BudgetName, BudgetReport, LedgerUrl, PgLedger, PgLedgerOptions};
use governor::ledger::{BudgetView, LedgerBackend, ReserveRequest};
use governor::{
    AttemptOutcome, EntryKind, ErrorKind, Governor, GovernorError, LedgerEntry, Reservation,
};
use llm::{Message, Usd};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use testkit::{FakeServer, LoggedRequest, Reply, Script, TempPostgres, Turn, Usage};
use tokio_util::sync::CancellationToken;

const SONNET: &str = "anthropic/claude-sonnet-4-5";

/// An honest provider with random usage: input at most the request's bytes, output at most its
/// `max_tokens`.
fn honest_random(r: &LoggedRequest) -> Turn {
    let max_tokens = r
        .body
        .get("max_tokens")
        .and_then(|v| v.as_u64())
        .unwrap_or(1);
    let mut rng = rand::thread_rng();
    let input = rng.gen_range(1..=r.body_len.max(1) as u64);
    let output = rng.gen_range(0..=max_tokens);
    Turn::Reply(Reply::text("ok").with_usage(Usage::new(input, output)))
}

/// Calls until the budget refuses; returns what the calls were settled at.
async fn spend_until_refused(g: Arc<Governor>, session: String) -> Usd {
    let mut total = Usd::ZERO;
    let never = CancellationToken::new();
    for i in 0.. {
        let prompt = request(vec![Message::user_text(format!("call {i}"))], 2000);
        match g.call(&session, &prompt, &never, &mut |_| {}).await {
            Ok(settled) => total = total.saturating_add(settled.cost),
            Err(GovernorError::BudgetExhausted { .. }) => break,
            Err(e) => panic!("{session}: {e}"),
        }
    }
    total
}

async fn pg_governor(
    setup: &Setup,
    url: &str,
    budget: &str,
    run: &str,
    cap: Option<Usd>,
) -> Governor {
    let mut options = PgLedgerOptions::new(
        LedgerUrl::parse(url).unwrap(),
        BudgetName::parse(budget).unwrap(),
        run,
    );
    options.cap = cap;
    let pg = PgLedger::open(options).await.unwrap();
    Governor::with_backend(setup.config().unwrap(), Arc::new(pg)).unwrap()
}

async fn report(url: &str, budget: &str) -> BudgetReport {
    BudgetReport::read(
        &LedgerUrl::parse(url).unwrap(),
        &BudgetName::parse(budget).unwrap(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_one_governor_share_the_file_budget_without_crossing_it() {
    let server = FakeServer::start(Script::handler(honest_random)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(SONNET, &server, dir.path());
    let cap = usd("0.30");
    setup.budget = Some(cap);
    let g = Arc::new(setup.governor().unwrap());
    let tasks: Vec<_> = (0..12)
        .map(|t| tokio::spawn(spend_until_refused(g.clone(), format!("worker-{t}"))))
        .collect();
    let mut charged = Usd::ZERO;
    for t in tasks {
        charged = charged.saturating_add(t.await.unwrap());
    }
    let ledger = g.ledger().unwrap();
    assert_eq!(
        ledger.total_spent(),
        charged,
        "every call's cost is in the ledger"
    );
    assert_eq!(g.spent(), charged, "nothing left in flight");
    assert!(charged <= cap, "spent {charged} of {cap}");
    let reserves = ledger
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Reserve)
        .count();
    let settles = ledger
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Settle)
        .count();
    assert_eq!(reserves, settles);
    assert!(
        reserves > 12,
        "the budget paid for more than one call per task: {reserves}"
    );
    // Every reservation was planned against what was left when it was written: the running
    // totals of reserve lines never pass the cap.
    assert!(ledger.entries.iter().all(|e| e.total.unwrap() <= cap));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governors_on_four_connections_never_cross_one_named_budget_together() {
    let Some(pg) = TempPostgres::start_or_skip(
        "governors_on_four_connections_never_cross_one_named_budget_together",
    ) else {
        return;
    };
    pg.create_database("fleet").unwrap();
    let url = pg.url("fleet");
    let server = FakeServer::start(Script::handler(honest_random)).await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(SONNET, &server, dir.path());
    let cap = usd("0.50");
    // Four "processes" open the (not yet created) schema and budget at once.
    let config = setup.config().unwrap();
    let opened = futures_join_all((0..4).map(|p| {
        let (config, url) = (config.clone(), url.clone());
        async move {
            let mut options = PgLedgerOptions::new(
                LedgerUrl::parse(&url).unwrap(),
                BudgetName::parse("team").unwrap(),
                format!("run-{p}"),
            );
            options.cap = Some(cap);
            let pg = PgLedger::open(options).await.unwrap();
            Governor::with_backend(config, Arc::new(pg)).unwrap()
        }
    }))
    .await;
    let governors: Vec<Arc<Governor>> = opened.into_iter().map(Arc::new).collect();
    // The invariant, checked by the database at every moment: settled plus reserved never
    // above the cap (a reservation that would cross it fails its transaction, and the call).
    pg.psql(
        "fleet",
        "ALTER TABLE loopwright.budgets ADD CONSTRAINT test_never_over
         CHECK (cap_nanos IS NULL OR spent_nanos + reserved_nanos <= cap_nanos)",
    )
    .unwrap();
    assert_eq!(
        pg.psql("fleet", "SELECT count(*) FROM loopwright.schema_migrations")
            .unwrap(),
        "1"
    );
    let mut tasks = Vec::new();
    for (p, g) in governors.iter().enumerate() {
        for t in 0..3 {
            tasks.push(tokio::spawn(spend_until_refused(
                g.clone(),
                format!("p{p}-t{t}"),
            )));
        }
    }
    let mut charged = Usd::ZERO;
    for t in tasks {
        charged = charged.saturating_add(t.await.unwrap());
    }
    let r = report(&url, "team").await;
    assert_eq!(r.cap, Some(cap));
    assert_eq!((r.reserved, r.open), (Usd::ZERO, 0), "{r:?}");
    assert_eq!(r.spent, charged, "the database counted every call");
    assert!(r.total <= cap, "spent {} of {cap}", r.total);
    // Which process's tasks got calls in before the budget ran out depends on scheduling: each
    // run that spent shows up once, with at most its three sessions.
    assert!((1..=4).contains(&r.runs.len()), "{:?}", r.runs);
    let by_run: Usd = r
        .runs
        .iter()
        .fold(Usd::ZERO, |a, run| a.saturating_add(run.spent));
    assert_eq!(by_run, r.spent);
    assert!(
        r.runs
            .iter()
            .all(|run| run.attempts > 0 && (1..=3).contains(&run.sessions)),
        "{:?}",
        r.runs
    );
    // The budget was really used up: what is left cannot pay for the smallest answer.
    let price = governors[0].price().unwrap().price;
    assert!(r.remaining.unwrap() < price.worst_case(2048, 256), "{r:?}");
    for g in &governors {
        assert_eq!(g.budget(), Some(cap));
        assert!(g.spent() <= cap);
    }
}

/// `futures::future::join_all` without the dependency.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_left_open_by_a_dead_process_counts_and_is_settled_when_its_run_resumes() {
    let Some(pg) = TempPostgres::start_or_skip(
        "an_attempt_left_open_by_a_dead_process_counts_and_is_settled_when_its_run_resumes",
    ) else {
        return;
    };
    pg.create_database("fleet").unwrap();
    let url = pg.url("fleet");
    let server = FakeServer::start(Script::turns(vec![Turn::stall(0, 3_600_000)])).await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(SONNET, &server, dir.path());
    let g = Arc::new(pg_governor(&setup, &url, "team", "run-1", Some(usd("5"))).await);
    let caller = g.clone();
    let call = tokio::spawn(async move {
        let prompt = request(vec![Message::user_text("hi")], 1000);
        caller
            .call("s1", &prompt, &CancellationToken::new(), &mut |_| {})
            .await
    });
    while server.request_count() < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The process dies mid-call: nothing settles the attempt.
    call.abort();
    let _ = call.await;
    drop(g);
    let r = report(&url, "team").await;
    assert_eq!((r.open, r.spent), (1, Usd::ZERO), "{r:?}");
    assert!(r.reserved > Usd::ZERO);
    assert_eq!(
        r.total, r.reserved,
        "the open reservation counts against the budget"
    );
    let reserved = r.reserved;

    // Another run does not touch it: it has not expired.
    let other = pg_governor(&setup, &url, "team", "run-2", None).await;
    assert_eq!(other.spent(), reserved);
    assert_eq!(report(&url, "team").await.open, 1);

    // The same run, resumed, settles it at the torn-attempt charge: its whole reservation.
    let resumed = pg_governor(&setup, &url, "team", "run-1", None).await;
    assert!(
        resumed
            .warnings()
            .iter()
            .any(|w| w.contains("settled now at their reservation")),
        "{:?}",
        resumed.warnings()
    );
    let r = report(&url, "team").await;
    assert_eq!(
        (r.open, r.reserved, r.spent),
        (0, Usd::ZERO, reserved),
        "{r:?}"
    );
    let row = pg
        .psql(
            "fleet",
            "SELECT outcome, settled_by, cost_nanos = reserved_nanos FROM loopwright.ledger",
        )
        .unwrap();
    assert_eq!(row, "torn|resume|t");
    assert_eq!(resumed.spent(), reserved);
}

fn plan_fixed(
    reserved: Usd,
) -> impl Fn(Option<BudgetView>) -> Result<Reservation, GovernorError> + Send + Sync {
    move |view| match view {
        Some(v) if v.remaining() < reserved => Err(GovernorError::BudgetExhausted {
            spent: v.spent,
            limit: v.limit,
            needed: reserved,
        }),
        _ => Ok(Reservation {
            input_bound: 10,
            max_tokens: 10,
            reserved,
        }),
    }
}

async fn open(
    url: &str,
    budget: &str,
    run: &str,
    cap: Option<Usd>,
    grace: Duration,
) -> Result<PgLedger, GovernorError> {
    let mut options = PgLedgerOptions::new(
        LedgerUrl::parse(url).unwrap(),
        BudgetName::parse(budget).unwrap(),
        run,
    );
    options.cap = cap;
    options.grace = grace;
    PgLedger::open(options).await
}

fn reserve_entry(call: &str) -> LedgerEntry {
    LedgerEntry::new(EntryKind::Reserve, call, 1, "s1", SONNET)
}

fn settle_entry(call: &str, reserved: Usd, cost: Usd) -> LedgerEntry {
    let mut e = LedgerEntry::new(EntryKind::Settle, call, 1, "s1", SONNET);
    e.reserved = reserved;
    e.outcome = Some(AttemptOutcome::Answered);
    e.set_cost(cost);
    e
}

#[tokio::test]
async fn expired_reservations_of_other_runs_are_settled_at_their_reservation_and_the_higher_cost_is_kept(
) {
    let Some(pg) = TempPostgres::start_or_skip("expired_reservations_of_other_runs_are_settled_at_their_reservation_and_the_higher_cost_is_kept") else {
        return;
    };
    pg.create_database("fleet").unwrap();
    let url = pg.url("fleet");
    let paused = open(&url, "team", "run-1", Some(usd("1")), Duration::ZERO)
        .await
        .unwrap();
    for call in ["c1", "c2"] {
        let plan = plan_fixed(usd("0.10"));
        paused
            .reserve(ReserveRequest {
                entry: reserve_entry(call),
                plan: &plan,
                deadline: Duration::ZERO,
            })
            .await
            .unwrap();
    }
    assert_eq!(paused.spent(), usd("0.20"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Another process opens the budget: both reservations expired, settled at their reservation.
    let other = open(&url, "team", "run-2", None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        other.spent(),
        usd("0.20"),
        "settling at expiry changes no total"
    );
    let r = report(&url, "team").await;
    assert_eq!(
        (r.open, r.spent, r.reserved),
        (0, usd("0.20"), Usd::ZERO),
        "{r:?}"
    );
    assert_eq!(
        pg.psql("fleet", "SELECT DISTINCT settled_by FROM loopwright.ledger")
            .unwrap(),
        "expiry"
    );
    // The paused process settles late: below the reservation the higher (the reservation) is
    // kept; above it (over-billed), the higher cost.
    paused
        .settle(settle_entry("c1", usd("0.10"), usd("0.01")))
        .await
        .unwrap();
    paused
        .settle(settle_entry("c2", usd("0.10"), usd("0.15")))
        .await
        .unwrap();
    let r = report(&url, "team").await;
    assert_eq!(r.spent, usd("0.25"), "{r:?}");
    assert_eq!(paused.spent(), usd("0.25"));
    // A settle for nothing reserved is an error, and changes nothing.
    let err = paused
        .settle(settle_entry("c9", usd("0.10"), usd("0.01")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no reservation"), "{err}");
    assert_eq!(report(&url, "team").await.spent, usd("0.25"));
}

#[tokio::test]
async fn the_cap_is_stored_with_the_name_and_a_different_budget_changes_it_with_a_warning() {
    let Some(pg) = TempPostgres::start_or_skip(
        "the_cap_is_stored_with_the_name_and_a_different_budget_changes_it_with_a_warning",
    ) else {
        return;
    };
    pg.create_database("fleet").unwrap();
    let url = pg.url("fleet");
    let first = open(&url, "team", "r1", Some(usd("1")), Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(first.budget(), Some(usd("1")));
    assert!(first.warnings().is_empty(), "{:?}", first.warnings());
    let plan = plan_fixed(usd("0.40"));
    for call in ["a", "b"] {
        first
            .reserve(ReserveRequest {
                entry: reserve_entry(call),
                plan: &plan,
                deadline: Duration::from_secs(60),
            })
            .await
            .unwrap();
    }
    // Without --budget, the stored cap applies.
    let second = open(&url, "team", "r2", None, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(second.budget(), Some(usd("1")));
    let err = second
        .reserve(ReserveRequest {
            entry: reserve_entry("c"),
            plan: &plan,
            deadline: Duration::from_secs(60),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Budget, "{err}");
    // A different --budget changes it for everyone, says so, and is recorded.
    let third = open(&url, "team", "r3", Some(usd("2")), Duration::from_secs(600))
        .await
        .unwrap();
    assert!(
        third
            .warnings()
            .iter()
            .any(|w| w.contains("had a cap of $1") && w.contains("$2")),
        "{:?}",
        third.warnings()
    );
    second
        .reserve(ReserveRequest {
            entry: reserve_entry("c"),
            plan: &plan,
            deadline: Duration::from_secs(60),
        })
        .await
        .unwrap();
    assert_eq!(
        second.budget(),
        Some(usd("2")),
        "seen at the next reservation"
    );
    let r = report(&url, "team").await;
    assert_eq!(r.cap_changes.len(), 2, "{:?}", r.cap_changes);
    assert_eq!(
        (r.cap_changes[0].old, r.cap_changes[0].new),
        (Some(usd("1")), Some(usd("2")))
    );
    // Another name is another budget; a budget created without a cap has none.
    let free = open(&url, "other", "r4", None, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!((free.budget(), free.spent()), (None, Usd::ZERO));
}

#[tokio::test]
async fn bad_urls_refused_logins_and_unreachable_servers_are_clear_errors_that_never_show_the_password(
) {
    for (raw, expect) in [
        ("mysql://u:hunter2@db/x", "not a PostgreSQL URL"),
        ("postgres://u:hunter2@db:port/x", "cannot be read"),
        ("postgres:///x", "names no host"),
    ] {
        let err = LedgerUrl::parse(raw).unwrap_err().to_string();
        assert!(err.contains(expect) && !err.contains("hunter2"), "{err}");
    }
    // Nothing listens on port 1 of this machine.
    let err = open(
        "postgres://u:hunter2@127.0.0.1:1/x?connect_timeout=5",
        "team",
        "r",
        None,
        Duration::ZERO,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadInput);
    let msg = err.to_string();
    assert!(
        msg.contains("is PostgreSQL running and reachable at 127.0.0.1 (port 1)"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2") && msg.contains("u:***@"), "{msg}");

    let Some(pg) = TempPostgres::start_or_skip("bad_urls_refused_logins_and_unreachable_servers_are_clear_errors_that_never_show_the_password") else {
        return;
    };
    pg.create_database("fleet").unwrap();
    let err = open(
        &pg.url_with_password("fleet", "hunter2"),
        "team",
        "r",
        None,
        Duration::ZERO,
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.kind(), ErrorKind::BadInput);
    assert!(
        msg.contains("password authentication failed")
            && msg.contains("check the user and password"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
    let err = open(&pg.url("nosuchdb"), "team", "r", None, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("createdb"), "{err}");
    assert!(!err.to_string().contains(pg.password()), "{err}");
    // Nothing was created by the refused logins.
    assert_eq!(
        pg.psql("fleet", "SELECT to_regclass('loopwright.budgets') IS NULL")
            .unwrap(),
        "t"
    );
}

#[tokio::test]
async fn deleted_rows_and_edited_totals_are_refused_and_a_newer_schema_too() {
    let Some(pg) = TempPostgres::start_or_skip(
        "deleted_rows_and_edited_totals_are_refused_and_a_newer_schema_too",
    ) else {
        return;
    };
    pg.create_database("fleet").unwrap();
    let url = pg.url("fleet");
    let ledger = open(&url, "team", "r1", Some(usd("1")), Duration::from_secs(600))
        .await
        .unwrap();
    let plan = plan_fixed(usd("0.10"));
    ledger
        .reserve(ReserveRequest {
            entry: reserve_entry("a"),
            plan: &plan,
            deadline: Duration::from_secs(60),
        })
        .await
        .unwrap();
    ledger
        .settle(settle_entry("a", usd("0.10"), usd("0.05")))
        .await
        .unwrap();
    // The table is append-only, and a settled cost never goes down.
    for sql in [
        "DELETE FROM loopwright.ledger",
        "TRUNCATE loopwright.ledger",
        "UPDATE loopwright.ledger SET cost_nanos = 0",
        "UPDATE loopwright.ledger SET reserved_nanos = 0",
    ] {
        let err = pg.psql("fleet", sql).unwrap_err().to_string();
        assert!(err.contains("loopwright.ledger"), "{sql}: {err}");
    }
    // Totals edited by hand no longer add up: refused on opening and in the report.
    pg.psql("fleet", "UPDATE loopwright.budgets SET spent_nanos = 0")
        .unwrap();
    let err = open(&url, "team", "r2", None, Duration::from_secs(600))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadInput);
    assert!(err.to_string().contains("does not add up"), "{err}");
    let err = BudgetReport::read(
        &LedgerUrl::parse(&url).unwrap(),
        &BudgetName::parse("team").unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("does not add up"), "{err}");
    // A schema written by a newer loopwright is refused.
    pg.psql(
        "fleet",
        "INSERT INTO loopwright.schema_migrations (version, name) VALUES (99, 'future')",
    )
    .unwrap();
    let err = open(&url, "other", "r3", None, Duration::from_secs(600))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("newer than this loopwright"),
        "{err}"
    );
}

#[tokio::test]
async fn status_of_a_budget_that_does_not_exist_names_the_ones_that_do() {
    let Some(pg) = TempPostgres::start_or_skip(
        "status_of_a_budget_that_does_not_exist_names_the_ones_that_do",
    ) else {
        return;
    };
    pg.create_database("fleet").unwrap();
    let url = LedgerUrl::parse(&pg.url("fleet")).unwrap();
    let err = BudgetReport::read(&url, &BudgetName::parse("team").unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("holds no loopwright ledger yet"),
        "{err}"
    );
    let _ledger = open(
        &pg.url("fleet"),
        "team",
        "r1",
        None,
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    let err = BudgetReport::read(&url, &BudgetName::parse("taem").unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no budget named \"taem\" (budgets there: team)"),
        "{err}"
    );
    assert!(BudgetName::parse("no spaces").is_err());
    assert!(BudgetName::parse(&"x".repeat(65)).is_err());
}
