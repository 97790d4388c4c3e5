//! Reservations per second against the PostgreSQL ledger: a throwaway server from testkit
//! (Unix socket, this machine), the backend used as the Governor uses it. Prints a table and
//! asserts nothing; skips with a message when PostgreSQL is not installed.
//!
//! - `reserve`: one connection, reservations one after another (each a transaction that locks
//!   the budget's row, inserts the attempt and updates the totals, then commits);
//! - `reserve+settle`: one attempt's whole bookkeeping (two transactions);
//! - `4 connections`: four backends (four processes' worth) reserving on the same budget at
//!   once: the row lock serializes them, so this is the budget's ceiling.
//!
//! Each runs with commits fsynced (the server's defaults, as in production) and again with
//! `synchronous_commit=off` (what a server tuned for throughput over the last few commits'
//! durability would do).
//!
//! Run: `cargo bench -p governor --bench pg_reservations` (`OPS=5000` to change the count of
//! operations per measurement, 2000 by default; 20 when not run by `cargo bench`).

use governor::ledger::postgres::{BudgetName, LedgerUrl, PgLedger, PgLedgerOptions};
use governor::ledger::{BudgetView, LedgerBackend, ReserveRequest};
use governor::{AttemptOutcome, EntryKind, GovernorError, LedgerEntry, Reservation};
use llm::Usd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::postgres::PostgresError;
use testkit::TempPostgres;

const MODEL: &str = "anthropic/claude-sonnet-4-5";

fn plan(_: Option<BudgetView>) -> Result<Reservation, GovernorError> {
    Ok(Reservation {
        input_bound: 1000,
        max_tokens: 1000,
        reserved: Usd::from_nanos(1_000),
    })
}

async fn open(url: &str, run: &str) -> PgLedger {
    let mut options = PgLedgerOptions::new(
        LedgerUrl::parse(url).unwrap_or_else(|e| panic!("{e}")),
        BudgetName::parse("bench").unwrap_or_else(|e| panic!("{e}")),
        run,
    );
    options.cap = Some(Usd::from_nanos(1_000_000_000_000));
    PgLedger::open(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn reserve(pg: &PgLedger, call: &str) {
    let entry = LedgerEntry::new(EntryKind::Reserve, call, 1, "bench", MODEL);
    pg.reserve(ReserveRequest {
        entry,
        plan: &plan,
        deadline: Duration::from_secs(600),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

async fn settle(pg: &PgLedger, call: &str) {
    let mut entry = LedgerEntry::new(EntryKind::Settle, call, 1, "bench", MODEL);
    entry.reserved = Usd::from_nanos(1_000);
    entry.outcome = Some(AttemptOutcome::Answered);
    entry.set_cost(Usd::from_nanos(500));
    pg.settle(entry).await.unwrap_or_else(|e| panic!("{e}"));
}

/// Runs `ops` operations on each of `backends` at once; returns operations per second.
async fn measure(backends: &[Arc<PgLedger>], ops: usize, with_settle: bool, tag: &str) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = backends
        .iter()
        .enumerate()
        .map(|(b, pg)| {
            let pg = pg.clone();
            let tag = tag.to_string();
            tokio::spawn(async move {
                for i in 0..ops {
                    let call = format!("{tag}-{b}-{i}");
                    reserve(&pg, &call).await;
                    if with_settle {
                        settle(&pg, &call).await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap_or_else(|e| panic!("{e}"));
    }
    (ops * backends.len()) as f64 / started.elapsed().as_secs_f64()
}

async fn scenarios(pg: &TempPostgres, label: &str, ops: usize) {
    let db = format!(
        "bench_{}",
        label.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    pg.create_database(&db).unwrap_or_else(|e| panic!("{e}"));
    let url = pg.url(&db);
    let one = vec![Arc::new(open(&url, "one").await)];
    // Warm up (prepared statements, caches).
    measure(&one, 50, false, "warm").await;
    let reserve_rate = measure(&one, ops, false, "r").await;
    let pair_rate = measure(&one, ops, true, "rs").await;
    let mut four = Vec::new();
    for p in 0..4 {
        four.push(Arc::new(open(&url, &format!("four-{p}")).await));
    }
    let four_rate = measure(&four, ops / 4, false, "r4").await;
    println!("{label:<28} {reserve_rate:>10.0} {pair_rate:>16.0} {four_rate:>16.0}");
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (`cargo test --benches`, `--all-targets`)
    // only checks that the bench still runs, with a few operations.
    let benching = std::env::args().any(|a| a == "--bench");
    let ops: usize = std::env::var("OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if benching { 2000 } else { 20 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{:<28} {:>10} {:>16} {:>16}",
        "server", "reserve/s", "reserve+settle/s", "4 connections/s"
    );
    for (label, settings) in [
        ("fsync on (default)", &[][..]),
        (
            "synchronous_commit=off",
            &[("synchronous_commit", "off")][..],
        ),
    ] {
        let pg = match TempPostgres::start_with(settings) {
            Ok(pg) => pg,
            Err(PostgresError::NotInstalled(why)) => {
                println!("skipped: PostgreSQL is not installed ({why})");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        runtime.block_on(scenarios(&pg, label, ops));
    }
    println!("({ops} operations each; reserve+settle counts attempts, each two transactions)");
}
