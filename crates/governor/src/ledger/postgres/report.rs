//! `loopwright status --budget NAME`: a named budget's cap, spend and spend by run, read in one
//! read-only snapshot, with its totals checked against its rows. Reading changes nothing (no
//! migration, no settling).

use super::schema::{self, SchemaState};
use super::{connect, describe, hint, ledger_error, tls_connector, BudgetName, LedgerUrl};
use crate::error::{ErrorKind, GovernorError};
use llm::Usd;
use serde::Serialize;
use tokio_postgres::Row;

/// A named budget as the database holds it. Money in nano-dollars (as everywhere in
/// loopwright's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetReport {
    pub budget: String,
    /// The database, without its password.
    pub database: String,
    /// `None`: no cap.
    pub cap: Option<Usd>,
    /// Settled costs.
    pub spent: Usd,
    /// Reservations not settled: attempts in flight, and attempts of processes that died
    /// (settled when their run resumes or after they expire).
    pub reserved: Usd,
    /// `spent + reserved`: what counts against the cap.
    pub total: Usd,
    /// `cap - total` (`None`: no cap).
    pub remaining: Option<Usd>,
    pub attempts: u64,
    /// Attempts reserved and not settled.
    pub open: u64,
    /// Open attempts past their expiry (their process died; the next process to open the
    /// budget settles them at their reservation).
    pub expired: u64,
    /// Attempts billed above what they asked for.
    pub overbilled: u64,
    /// Spend by run, the earliest first.
    pub runs: Vec<RunSpend>,
    /// The latest changes of the cap, the latest first (at most 5).
    pub cap_changes: Vec<CapChange>,
}

/// One run's part of a budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSpend {
    pub run_id: String,
    /// Settled costs.
    pub spent: Usd,
    /// Open reservations.
    pub reserved: Usd,
    pub attempts: u64,
    /// Distinct calls.
    pub calls: u64,
    pub open: u64,
    pub sessions: u64,
    pub models: Vec<String>,
    pub hosts: Vec<String>,
    /// RFC 3339: its first reservation and its last reservation or settlement.
    pub first: String,
    pub last: String,
}

/// One change of a budget's cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapChange {
    pub time: String,
    pub old: Option<Usd>,
    pub new: Option<Usd>,
    pub run_id: String,
    pub host: String,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn count(row: &Row, i: usize) -> Result<u64, tokio_postgres::Error> {
    Ok(u64::try_from(row.try_get::<_, i64>(i)?).unwrap_or(0))
}

fn usd(row: &Row, i: usize) -> Result<Usd, tokio_postgres::Error> {
    Ok(Usd::from_nanos(row.try_get(i)?))
}

impl BudgetReport {
    /// Reads the budget `name`. A database without loopwright's schema, a schema of another
    /// version, a budget that does not exist, and totals that do not match the rows are
    /// errors of kind [`ErrorKind::BadInput`].
    pub async fn read(url: &LedgerUrl, name: &BudgetName) -> Result<BudgetReport, GovernorError> {
        let bad = |detail: String| ledger_error(url, &detail, ErrorKind::BadInput);
        let db = |e: tokio_postgres::Error| {
            bad(format!(
                "cannot read the budget {:?}: {}{}",
                name.as_str(),
                describe(&e),
                hint(&e, url)
            ))
        };
        let tls = tls_connector().map_err(&bad)?;
        let mut client = connect(url, &tls)
            .await
            .map_err(|e| bad(format!("cannot connect: {}{}", describe(&e), hint(&e, url))))?;
        match schema::state(&client).await.map_err(db)? {
            SchemaState::Missing => {
                return Err(bad(
                    "it holds no loopwright ledger yet (the first `run` or `exec` with this ledger creates it)"
                        .into(),
                ))
            }
            SchemaState::At(v) if v != schema::current_version() => {
                return Err(bad(format!(
                    "its ledger schema is at version {v}; this loopwright reads version {}",
                    schema::current_version()
                )))
            }
            SchemaState::At(_) => {}
        }
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let n = name.as_str();
        let Some(row) = tx
            .query_opt(
                "SELECT cap_nanos, spent_nanos, reserved_nanos, attempts FROM loopwright.budgets
                 WHERE name = $1",
                &[&n],
            )
            .await
            .map_err(db)?
        else {
            let names: Vec<String> = tx
                .query("SELECT name FROM loopwright.budgets ORDER BY name", &[])
                .await
                .map_err(db)?
                .iter()
                .filter_map(|r| r.try_get(0).ok())
                .collect();
            return Err(bad(format!(
                "it has no budget named {n:?}{}",
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" (budgets there: {})", names.join(", "))
                }
            )));
        };
        let cap = row
            .try_get::<_, Option<i64>>(0)
            .map_err(db)?
            .map(Usd::from_nanos);
        let spent = usd(&row, 1).map_err(db)?;
        let reserved = usd(&row, 2).map_err(db)?;
        let attempts = count(&row, 3).map_err(db)?;
        let sums = tx
            .query_one(
                "SELECT count(*),
                     coalesce(sum(cost_nanos) FILTER (WHERE settled_at IS NOT NULL), 0)::bigint,
                     coalesce(sum(reserved_nanos) FILTER (WHERE settled_at IS NULL), 0)::bigint,
                     count(*) FILTER (WHERE settled_at IS NULL),
                     count(*) FILTER (WHERE settled_at IS NULL AND expires_at < now()),
                     count(*) FILTER (WHERE overbilled)
                 FROM loopwright.ledger WHERE budget = $1",
                &[&n],
            )
            .await
            .map_err(db)?;
        let (rows, settled, open_sum) = (
            count(&sums, 0).map_err(db)?,
            usd(&sums, 1).map_err(db)?,
            usd(&sums, 2).map_err(db)?,
        );
        if (rows, settled, open_sum) != (attempts, spent, reserved) {
            return Err(bad(format!(
                "the budget {n:?} does not add up: its totals say {attempts} attempts, {spent} settled and {reserved} reserved, but its ledger rows are {rows} attempts, {settled} settled and {open_sum} reserved — rows were deleted or amounts edited by hand"
            )));
        }
        let runs = tx
            .query(
                "SELECT run_id,
                     coalesce(sum(cost_nanos) FILTER (WHERE settled_at IS NOT NULL), 0)::bigint,
                     coalesce(sum(reserved_nanos) FILTER (WHERE settled_at IS NULL), 0)::bigint,
                     count(*), count(DISTINCT call),
                     count(*) FILTER (WHERE settled_at IS NULL),
                     count(DISTINCT session),
                     array_agg(DISTINCT model_asked), array_agg(DISTINCT host),
                     min(reserved_at), max(coalesce(settled_at, reserved_at))
                 FROM loopwright.ledger WHERE budget = $1
                 GROUP BY run_id ORDER BY min(reserved_at), run_id",
                &[&n],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok(RunSpend {
                    run_id: r.try_get(0)?,
                    spent: usd(r, 1)?,
                    reserved: usd(r, 2)?,
                    attempts: count(r, 3)?,
                    calls: count(r, 4)?,
                    open: count(r, 5)?,
                    sessions: count(r, 6)?,
                    models: r.try_get(7)?,
                    hosts: r.try_get(8)?,
                    first: rfc3339(r.try_get(9)?),
                    last: rfc3339(r.try_get(10)?),
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(db)?;
        let cap_changes = tx
            .query(
                "SELECT changed_at, old_cap_nanos, new_cap_nanos, run_id, host
                 FROM loopwright.cap_changes WHERE budget = $1 ORDER BY id DESC LIMIT 5",
                &[&n],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok(CapChange {
                    time: rfc3339(r.try_get(0)?),
                    old: r.try_get::<_, Option<i64>>(1)?.map(Usd::from_nanos),
                    new: r.try_get::<_, Option<i64>>(2)?.map(Usd::from_nanos),
                    run_id: r.try_get(3)?,
                    host: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let total = spent.saturating_add(reserved);
        Ok(BudgetReport {
            budget: n.to_string(),
            database: url.to_string(),
            cap,
            spent,
            reserved,
            total,
            remaining: cap.map(|c| c.saturating_sub(total).max(Usd::ZERO)),
            attempts,
            open: count(&sums, 3).map_err(db)?,
            expired: count(&sums, 4).map_err(db)?,
            overbilled: count(&sums, 5).map_err(db)?,
            runs,
            cap_changes,
        })
    }
}
