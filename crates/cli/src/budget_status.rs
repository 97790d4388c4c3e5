//! `loopwright status --budget NAME`: a named budget of the database ledger — its cap, what
//! was settled and what is reserved, and spend by run — without a project. The database is the
//! one of `ledger` in the user's config or `LOOPWRIGHT_LEDGER`.

use crate::config::load_layers;
use crate::exit::{code, CmdResult, Failure};
use crate::stdout::outln;
use crate::terminal::{json_pretty, sanitize};
use anyhow::anyhow;
use governor::ledger::postgres::{BudgetName, BudgetReport, LedgerUrl};
use std::collections::BTreeMap;

pub async fn run(name: &str, json: bool) -> CmdResult {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let file = load_layers(None, &env).map_err(Failure::usage)?;
    let raw = file.ledger.as_deref().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        Failure::usage(anyhow!(
            "status --budget reads a database ledger, and none is configured: set ledger = \"postgres://…\" in ~/.config/loopwright/config.toml or LOOPWRIGHT_LEDGER"
        ))
    })?;
    let url = LedgerUrl::parse(raw).map_err(|e| Failure::usage(anyhow!(e)))?;
    let name = BudgetName::parse(name).map_err(|e| Failure::usage(anyhow!("--budget: {e}")))?;
    let report = BudgetReport::read(&url, &name)
        .await
        .map_err(Failure::governor)?;
    if json {
        outln!(
            "{}",
            json_pretty(&report).map_err(|e| Failure::from(anyhow!(e)))?
        );
    } else {
        crate::stdout::write(&render(&report));
    }
    Ok(code::OK)
}

/// Text of the database (run ids, models, hosts): on one line, without control sequences.
fn cell(text: &str) -> String {
    sanitize(text).replace(['\n', '\t'], " ")
}

/// The text report.
pub fn render(r: &BudgetReport) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "budget    {}", cell(&r.budget));
    let _ = writeln!(o, "database  {}", cell(&r.database));
    let cap = match r.cap {
        Some(cap) => cap.to_string(),
        None => "none (attempts are recorded, nothing is refused)".into(),
    };
    let change = r
        .cap_changes
        .first()
        .map(|c| {
            format!(
                " (set {} by run {} on {}{})",
                cell(&c.time),
                cell(&c.run_id),
                cell(&c.host),
                c.old.map(|o| format!(", was {o}")).unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let _ = writeln!(o, "cap       {cap}{change}");
    let _ = writeln!(
        o,
        "spent     {} settled + {} reserved = {}{}",
        r.spent,
        r.reserved,
        r.total,
        r.remaining
            .map(|left| format!("; {left} left"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "attempts  {} ({} open{}{})",
        r.attempts,
        r.open,
        if r.expired > 0 {
            format!(
                ", {} past their expiry: their process died; the next process on the budget settles them at their reservation",
                r.expired
            )
        } else {
            String::new()
        },
        if r.overbilled > 0 {
            format!("; {} billed above what was asked", r.overbilled)
        } else {
            String::new()
        }
    );
    if !r.runs.is_empty() {
        let ids: Vec<String> = r.runs.iter().map(|run| cell(&run.run_id)).collect();
        let w = ids
            .iter()
            .map(|id| id.chars().count())
            .max()
            .unwrap_or(3)
            .max(3);
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{:<w$}  {:>14}  {:>12}  {:>8}  {:>8}  {:<20}  models",
            "run", "spent", "reserved", "attempts", "sessions", "last"
        );
        for (run, id) in r.runs.iter().zip(&ids) {
            let _ = writeln!(
                o,
                "{:<w$}  {:>14}  {:>12}  {:>8}  {:>8}  {:<20}  {}",
                id,
                run.spent.to_string(),
                run.reserved.to_string(),
                run.attempts,
                run.sessions,
                cell(run.last.get(..19).unwrap_or(&run.last)),
                cell(&run.models.join(", "))
            );
        }
    }
    o
}
