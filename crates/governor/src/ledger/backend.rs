//! Where the Governor reserves and settles: the [`LedgerBackend`] trait, and its file
//! implementation ([`FileBackend`], the default: `ledger.jsonl` in the run's state dir). The
//! PostgreSQL implementation, for one budget shared by many processes, is
//! [`crate::ledger::postgres`].
//!
//! A backend owns the budget's accounting: what was settled, what is reserved and not settled,
//! and the cap. [`LedgerBackend::reserve`] reads what the budget has left, lets the caller plan
//! the attempt against it, and records the reservation, as one step that no other reservation
//! on the same budget can interleave with; [`LedgerBackend::settle`] records what the attempt
//! cost. Both take `&self` and may be called from many tasks at once (parallel workers of one
//! run share one Governor and so one backend).

use super::{EntryKind, Ledger, LedgerEntry};
use crate::budget::Reservation;
use crate::error::GovernorError;
use llm::Usd;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

/// A boxed future, so the trait can be used as `dyn LedgerBackend`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a budget has counted when an attempt is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetView {
    /// The cap.
    pub limit: Usd,
    /// Settled costs plus reservations not settled (attempts in flight, and attempts of
    /// processes that died before settling).
    pub spent: Usd,
}

impl BudgetView {
    /// What is left (never below zero).
    pub fn remaining(&self) -> Usd {
        self.limit.saturating_sub(self.spent).max(Usd::ZERO)
    }
}

/// Plans an attempt against the budget (`None`: the budget has no cap): the reservation, or the
/// refusal ([`GovernorError::BudgetExhausted`], [`GovernorError::UnknownPrice`]). A backend may
/// call it more than once (a database transaction that is retried).
pub type PlanFn<'a> =
    dyn Fn(Option<BudgetView>) -> Result<Reservation, GovernorError> + Send + Sync + 'a;

/// One attempt to reserve.
pub struct ReserveRequest<'a> {
    /// The reserve entry: kind, call, attempt, session and model filled in; the backend sets
    /// the planned input bound, `max_tokens` and reservation.
    pub entry: LedgerEntry,
    pub plan: &'a PlanFn<'a>,
    /// The longest the attempt can take (the provider's per-call deadline). A backend shared
    /// between processes uses it to tell a reservation whose process died from one in flight.
    pub deadline: Duration,
}

impl fmt::Debug for ReserveRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReserveRequest")
            .field("entry", &self.entry)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// Where attempts are reserved and settled. Implementations are safe to call from many tasks
/// at once; a reservation never makes the budget's settled costs plus open reservations
/// exceed its cap (the plan sees what is left, in the same step that records it).
pub trait LedgerBackend: Send + Sync + fmt::Debug {
    /// Says where the ledger is, for messages (a path, or a URL without its password).
    fn describe(&self) -> String;

    /// The cap, as last seen (`None`: no cap).
    fn budget(&self) -> Option<Usd>;

    /// Settled costs plus open reservations, as last seen: for the file ledger, this process's
    /// view (what the ledger held when it was opened, if it counts, plus this process's
    /// attempts); for a shared budget, the budget's total at this process's last reservation
    /// or settlement.
    fn spent(&self) -> Usd;

    /// Plans the attempt against what the budget has left and records the reservation, as one
    /// step. Returns the plan; a refusal of the plan is returned as it is, nothing recorded.
    fn reserve<'a>(
        &'a self,
        request: ReserveRequest<'a>,
    ) -> BoxFuture<'a, Result<Reservation, GovernorError>>;

    /// Records the settle entry of a reserved attempt (`entry.reserved` is its reservation).
    /// If it cannot be recorded, the reservation keeps counting.
    fn settle(&self, entry: LedgerEntry) -> BoxFuture<'_, Result<(), GovernorError>>;

    /// The ledger file, for the file backend.
    fn file(&self) -> Option<&Path> {
        None
    }

    /// Things the user should know, found when the ledger was opened.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The file ledger as a budget: `ledger.jsonl` (see [`crate::ledger`]) and this process's
/// account of it.
#[derive(Debug)]
pub struct FileBackend {
    ledger: Ledger,
    budget: Option<Usd>,
    account: Mutex<Account>,
    warnings: Vec<String>,
}

/// What counts against the budget.
#[derive(Debug, Default)]
struct Account {
    /// Settled costs (and reservations never settled) from the ledger if they count, plus this
    /// process's settled attempts.
    settled: Usd,
    /// Reservations of attempts in flight.
    in_flight: Usd,
}

impl Account {
    fn spent(&self) -> Usd {
        self.settled.saturating_add(self.in_flight)
    }
}

impl FileBackend {
    /// Opens (creating) the ledger file. `count_ledger`: whether what it already holds counts
    /// against `budget` (a resumed run continues its budget; one `exec` task has a budget of
    /// its own).
    pub fn open(
        path: &Path,
        budget: Option<Usd>,
        count_ledger: bool,
    ) -> Result<FileBackend, GovernorError> {
        let (ledger, contents) = Ledger::open(path)?;
        let mut warnings = Vec::new();
        if let Some(tail) = &contents.torn_tail {
            warnings.push(format!(
                "the ledger {} ended with a line cut short by a crash ({} bytes); it was dropped (its call is counted by its reservation)",
                path.display(),
                tail.len()
            ));
        }
        let settled = if count_ledger {
            contents.total_spent()
        } else {
            Usd::ZERO
        };
        Ok(FileBackend {
            ledger,
            budget,
            account: Mutex::new(Account {
                settled,
                in_flight: Usd::ZERO,
            }),
            warnings,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Account> {
        self.account.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file appender.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn reserve_now(&self, request: ReserveRequest<'_>) -> Result<Reservation, GovernorError> {
        // One lock over planning and writing: two tasks never plan against the same remainder.
        let mut account = self.lock();
        let view = self.budget.map(|limit| BudgetView {
            limit,
            spent: account.spent(),
        });
        let plan = (request.plan)(view)?;
        let mut entry = request.entry;
        debug_assert_eq!(entry.kind, EntryKind::Reserve);
        entry.input_tokens = plan.input_bound;
        entry.output_tokens = u64::from(plan.max_tokens);
        entry.reserved = plan.reserved;
        self.ledger.append(entry)?;
        account.in_flight = account.in_flight.saturating_add(plan.reserved);
        Ok(plan)
    }

    fn settle_now(&self, entry: LedgerEntry) -> Result<(), GovernorError> {
        let mut account = self.lock();
        let (cost, reserved) = (entry.cost, entry.reserved);
        let written = self.ledger.append(entry);
        account.in_flight = account.in_flight.saturating_sub(reserved);
        // Unwritten, the ledger still holds the reservation, so the reservation is what counts.
        let counted = if written.is_ok() {
            cost
        } else {
            cost.max(reserved)
        };
        account.settled = account.settled.saturating_add(counted);
        written
    }
}

impl LedgerBackend for FileBackend {
    fn describe(&self) -> String {
        self.ledger.path().display().to_string()
    }

    fn budget(&self) -> Option<Usd> {
        self.budget
    }

    fn spent(&self) -> Usd {
        self.lock().spent()
    }

    fn reserve<'a>(
        &'a self,
        request: ReserveRequest<'a>,
    ) -> BoxFuture<'a, Result<Reservation, GovernorError>> {
        let result = self.reserve_now(request);
        Box::pin(std::future::ready(result))
    }

    fn settle(&self, entry: LedgerEntry) -> BoxFuture<'_, Result<(), GovernorError>> {
        let result = self.settle_now(entry);
        Box::pin(std::future::ready(result))
    }

    fn file(&self) -> Option<&Path> {
        Some(self.ledger.path())
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}
