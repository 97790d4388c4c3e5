//! The ledger in PostgreSQL: one named budget shared by any number of loopwright processes on
//! any number of machines, none of which can take it past its cap.
//!
//! # How
//! Each attempt at a model call is one row of `loopwright.ledger`, inserted when it is reserved
//! and completed when it is settled; each named budget is one row of `loopwright.budgets` with
//! its cap and running totals (settled, reserved, rows). A reservation is one transaction: lock
//! the budget's row (`SELECT … FOR UPDATE`), plan the attempt against the cap minus settled
//! minus reserved (the same [`crate::budget::reserve`] as the file ledger: `max_tokens` lowered
//! to fit, refused below the floor), insert the row, add its reservation to the totals, commit.
//! A settlement is another: lock the budget's row, complete the attempt's row, move its
//! reservation to settled at its cost, commit. Every reservation on a budget waits for the one
//! before it to commit, whichever process or machine made it, so the settled costs plus open
//! reservations of a budget never exceed its cap. Transactions run at READ COMMITTED (a row
//! lock re-reads the latest committed row); the budget's row is always locked first, so no two
//! transactions deadlock.
//!
//! # The file ledger's guarantees, here
//! - fsync per line → COMMIT per reservation and per settlement (durable as the server's
//!   `synchronous_commit` makes it; loopwright does not change it).
//! - A torn last line is dropped → a transaction is all or nothing: a process killed in the
//!   middle of one leaves nothing of it; a committed reservation whose process died stays in
//!   the budget, counted at its full reservation, until it is settled (below).
//! - Running total and hash chain on every line → the budget's row keeps running totals, and on
//!   connecting (and in `status --budget`) they are checked against what the rows add up to; a
//!   row deleted or an amount edited by hand shows as a mismatch ([`GovernorError::LedgerDb`],
//!   exit 2). Triggers make the table append-only: rows are never deleted, a reservation never
//!   changes, a settled cost never goes down. Like the chain, this stops accidents and careless
//!   edits, not the database's owner: grant the role loopwright uses SELECT, INSERT and UPDATE on
//!   the tables (after the first run created them), not DELETE or TRUNCATE, and no ownership.
//! - A killed process's attempt counts at its reservation → the same, and it is settled: the
//!   next run with the same run id (a resumed `loopwright run`) settles its own open
//!   reservations when it connects, at the torn-attempt charge — nothing was reported, so the
//!   whole reservation (`settled_by = 'resume'`). A reservation of any other run that is still
//!   open past its expiry (its attempt's per-call deadline plus [`DEFAULT_GRACE`], ten minutes)
//!   belongs to a process that died: the next process to connect to the budget settles it at its
//!   full reservation (`settled_by = 'expiry'`). Neither changes the budget's total (the
//!   reservation was counted already); they only close the books. If the process that reserved
//!   it was only paused and settles it later, the higher of the two costs is kept.
//!
//! # The cap
//! The cap is stored with the budget's name. `--budget USD` sets it: the first process creates
//! the budget with it, and a process passing a different amount changes it for every process
//! on the budget (they see it at their next reservation), with a warning, and the change is
//! recorded in `loopwright.cap_changes` (when, from what, to what, which run on which host).
//! Without `--budget`, the stored cap applies; a budget created without one has no cap (attempts
//! are recorded, nothing is refused). This is the rule of the single-machine budget — the last
//! `--budget` given is the budget, and "raise --budget to continue" works — applied to a shared
//! name; lowering it takes effect at once everywhere, so a mistake can only stop spending early.
//!
//! # Failures
//! A reservation that cannot be made (the database unreachable, a statement refused, no answer
//! within 30 s) fails the call before anything is sent (exit 1); if its commit reached the
//! server but the answer was lost, the reservation stays open and counts until it is settled
//! as above — an over-count, never an under-count. A settlement that cannot be made leaves the
//! reservation counting the same way. The connection is opened again at the next call. A URL
//! that cannot be used, a server that cannot be reached or refuses the login, and a schema
//! newer than this build are reported when the ledger is opened, before anything is sent, with
//! the password never shown ([`GovernorError::LedgerDb`] of kind `BadInput`: exit 2).
//!
//! # Driver
//! `tokio-postgres`: the maintained asynchronous driver of the rust-postgres project, on the
//! tokio runtime loopwright already uses, with TLS through rustls (`tokio-postgres-rustls`,
//! the same TLS stack as the model clients; server certificates checked against the Mozilla
//! roots of `webpki-roots`; `sslmode` from the URL, default `prefer`). The ledger needs a few
//! fixed statements inside explicit transactions; `sqlx` would add a pool, a query macro layer
//! and a larger dependency tree for nothing used here. Each process keeps one connection (held
//! across a transaction by an async mutex, so the tasks of one process — parallel workers —
//! take turns, as they would on the budget's row lock anyway) and re-opens it when it breaks.

mod report;
mod schema;
mod url;

pub use report::{BudgetReport, CapChange, RunSpend};
pub use schema::{current_version, MIGRATIONS};
pub use url::{redact, LedgerUrl, LedgerUrlError};

use super::backend::{BoxFuture, BudgetView, LedgerBackend, ReserveRequest};
use super::LedgerEntry;
use crate::budget::Reservation;
use crate::error::{ErrorKind, GovernorError};
use llm::Usd;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::{Client, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Added to an attempt's per-call deadline: a reservation still open after both belongs to a
/// process that died, and any process on the budget settles it at its full reservation.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(600);

/// The longest one reservation or settlement may take (lock waits included).
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest opening the ledger may take (connecting, migrating, settling what was left).
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);

/// Reservations expire at most this long after they are made, whatever the deadline.
const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The name of a budget shared through the database: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BudgetName(String);

impl BudgetName {
    /// The budget used when none is named.
    pub const DEFAULT: &'static str = "default";

    pub fn parse(name: &str) -> Result<BudgetName, GovernorError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(BudgetName(name.to_string()))
        } else {
            Err(GovernorError::Config(format!(
                "the budget name {name:?} is not valid: use 1 to 64 letters, digits, '.', '_' or '-'"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for BudgetName {
    fn default() -> BudgetName {
        BudgetName(BudgetName::DEFAULT.to_string())
    }
}

impl fmt::Display for BudgetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`PgLedger::open`] needs.
#[derive(Debug, Clone)]
pub struct PgLedgerOptions {
    pub url: LedgerUrl,
    pub budget: BudgetName,
    /// The run: one `loopwright run` across its resumes (kept in its state dir), or one `exec`.
    /// Its open reservations are settled when a process with the same run id opens the ledger.
    pub run_id: String,
    /// `--budget`: the cap to set (`None`: keep the stored one).
    pub cap: Option<Usd>,
    /// See [`DEFAULT_GRACE`].
    pub grace: Duration,
}

impl PgLedgerOptions {
    pub fn new(url: LedgerUrl, budget: BudgetName, run_id: impl Into<String>) -> PgLedgerOptions {
        PgLedgerOptions {
            url,
            budget,
            run_id: run_id.into(),
            cap: None,
            grace: DEFAULT_GRACE,
        }
    }
}

/// A budget in PostgreSQL, as a [`LedgerBackend`]. See the module docs.
pub struct PgLedger {
    url: LedgerUrl,
    tls: MakeRustlsConnect,
    me: Identity,
    conn: tokio::sync::Mutex<Option<Conn>>,
    seen: std::sync::Mutex<Seen>,
    warnings: Vec<String>,
}

impl fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLedger")
            .field("url", &self.url)
            .field("budget", &self.me.budget)
            .field("run_id", &self.me.run_id)
            .finish_non_exhaustive()
    }
}

/// Who reserves: written into every row.
#[derive(Debug, Clone)]
struct Identity {
    budget: String,
    run_id: String,
    host: String,
    pid: i32,
    grace: Duration,
}

/// The budget's row, as last read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Seen {
    cap: Option<Usd>,
    spent: Usd,
    reserved: Usd,
}

impl Seen {
    /// From a row of `cap_nanos, spent_nanos, reserved_nanos`.
    fn from_row(row: &Row) -> Result<Seen, tokio_postgres::Error> {
        Ok(Seen {
            cap: row.try_get::<_, Option<i64>>(0)?.map(Usd::from_nanos),
            spent: Usd::from_nanos(row.try_get(1)?),
            reserved: Usd::from_nanos(row.try_get(2)?),
        })
    }

    fn view(&self) -> Option<BudgetView> {
        self.cap.map(|limit| BudgetView {
            limit,
            spent: self.spent.saturating_add(self.reserved),
        })
    }
}

/// An open connection and its prepared statements.
struct Conn {
    client: Client,
    st: Statements,
}

struct Statements {
    lock_budget: Statement,
    insert: Statement,
    add_reserved: Statement,
    settle_own: Statement,
    move_to_settled: Statement,
    lock_attempt: Statement,
    raise_cost: Statement,
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            lock_budget: client
                .prepare(
                    "SELECT cap_nanos, spent_nanos, reserved_nanos FROM loopwright.budgets
                     WHERE name = $1 FOR UPDATE",
                )
                .await?,
            insert: client
                .prepare(
                    "INSERT INTO loopwright.ledger (budget, run_id, session, call, attempt,
                         model_asked, host, pid, expires_at, input_bound, max_tokens,
                         reserved_nanos)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                         now() + make_interval(secs => $9::float8), $10, $11, $12)",
                )
                .await?,
            add_reserved: client
                .prepare(
                    "UPDATE loopwright.budgets
                     SET reserved_nanos = reserved_nanos + $2, attempts = attempts + 1
                     WHERE name = $1 RETURNING cap_nanos, spent_nanos, reserved_nanos",
                )
                .await?,
            settle_own: client
                .prepare(
                    "UPDATE loopwright.ledger SET settled_at = now(), settled_by = 'self',
                         outcome = $5, cost_nanos = $6, model_served = $7, input_tokens = $8,
                         output_tokens = $9, cache_read_tokens = $10, cache_write_tokens = $11,
                         estimated = $12, overbilled = $13, request_id = $14, note = $15
                     WHERE budget = $1 AND run_id = $2 AND call = $3 AND attempt = $4
                         AND settled_at IS NULL
                     RETURNING reserved_nanos",
                )
                .await?,
            move_to_settled: client
                .prepare(
                    "UPDATE loopwright.budgets
                     SET spent_nanos = spent_nanos + $2, reserved_nanos = reserved_nanos - $3
                     WHERE name = $1 RETURNING cap_nanos, spent_nanos, reserved_nanos",
                )
                .await?,
            lock_attempt: client
                .prepare(
                    "SELECT cost_nanos, settled_by FROM loopwright.ledger
                     WHERE budget = $1 AND run_id = $2 AND call = $3 AND attempt = $4
                     FOR UPDATE",
                )
                .await?,
            raise_cost: client
                .prepare(
                    "UPDATE loopwright.ledger
                     SET cost_nanos = $5, overbilled = overbilled OR $6,
                         note = concat_ws('; ', note, $7::text)
                     WHERE budget = $1 AND run_id = $2 AND call = $3 AND attempt = $4",
                )
                .await?,
        })
    }
}

/// Nano-dollars or tokens as a database `bigint`.
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The message of a driver error with its causes (a server error's severity and text).
fn describe(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What to do about a driver error, when something can be said.
fn hint(e: &tokio_postgres::Error, url: &LedgerUrl) -> String {
    use tokio_postgres::error::SqlState;
    let code = e.code();
    let text = if code == Some(&SqlState::INVALID_PASSWORD)
        || code == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    {
        "; check the user and password of the ledger URL (or the server's pg_hba.conf)".to_string()
    } else if code == Some(&SqlState::INVALID_CATALOG_NAME) {
        "; create the database first (`createdb NAME`), or fix its name in the ledger URL".into()
    } else if code == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
        "; the first process on a database creates the schema `loopwright` and needs the CREATE privilege on the database (have its owner run loopwright once, or grant it)".into()
    } else if e.as_db_error().is_none() && describe(e).contains("error connecting") {
        let hosts: Vec<String> = url
            .config()
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = url
            .config()
            .get_ports()
            .iter()
            .map(u16::to_string)
            .collect();
        format!(
            "; is PostgreSQL running and reachable at {} (port {})?",
            hosts.join(", "),
            if ports.is_empty() {
                "5432".to_string()
            } else {
                ports.join(", ")
            }
        )
    } else {
        String::new()
    };
    text
}

/// This machine's name, for the rows it writes.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The TLS connector: rustls with the Mozilla roots.
fn tls_connector() -> Result<MakeRustlsConnect, String> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("cannot set up TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Opens a connection; its I/O runs on a task of the current runtime until the client drops.
async fn connect(
    url: &LedgerUrl,
    tls: &MakeRustlsConnect,
) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = url.config().connect(tls.clone()).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A ledger-database error of `kind`, naming the URL without its password.
fn ledger_error(url: &LedgerUrl, detail: &str, kind: ErrorKind) -> GovernorError {
    GovernorError::LedgerDb {
        url: url.to_string(),
        detail: url.scrub(detail),
        kind,
    }
}

/// What opening a budget found and did.
struct Opened {
    seen: Seen,
    warnings: Vec<String>,
}

impl PgLedger {
    /// Connects, brings the schema up to date, creates the budget if it is new, checks its
    /// totals against its rows, settles this run's reservations left by a killed process and
    /// other runs' expired ones, and applies `options.cap`. Every failure is
    /// [`GovernorError::LedgerDb`] of kind [`ErrorKind::BadInput`] (nothing was sent).
    pub async fn open(options: PgLedgerOptions) -> Result<PgLedger, GovernorError> {
        let url = options.url.clone();
        match tokio::time::timeout(OPEN_TIMEOUT, PgLedger::open_inner(options)).await {
            Ok(result) => result,
            Err(_) => Err(ledger_error(
                &url,
                &format!(
                    "opening the ledger took more than {} s (a lock held by another process?)",
                    OPEN_TIMEOUT.as_secs()
                ),
                ErrorKind::BadInput,
            )),
        }
    }

    async fn open_inner(options: PgLedgerOptions) -> Result<PgLedger, GovernorError> {
        let url = options.url;
        let bad = |detail: String| ledger_error(&url, &detail, ErrorKind::BadInput);
        let tls = tls_connector().map_err(&bad)?;
        let mut client = connect(&url, &tls).await.map_err(|e| {
            bad(format!(
                "cannot connect: {}{}",
                describe(&e),
                hint(&e, &url)
            ))
        })?;
        let mut warnings = Vec::new();
        match schema::migrate(&mut client).await {
            Ok(schema::Migrated::TooNew(v)) => {
                return Err(bad(format!(
                    "its schema is at version {v}, newer than this loopwright knows ({}); upgrade loopwright",
                    current_version()
                )))
            }
            Ok(schema::Migrated::Applied(versions)) => {
                tracing::info!(?versions, "ledger schema migrated");
            }
            Ok(schema::Migrated::Current) => {}
            Err(e) => {
                return Err(bad(format!(
                    "cannot set up the ledger's schema: {}{}",
                    describe(&e),
                    hint(&e, &url)
                )))
            }
        }
        let st = Statements::prepare(&client).await.map_err(|e| {
            bad(format!(
                "cannot prepare the ledger's statements: {}",
                describe(&e)
            ))
        })?;
        let me = Identity {
            budget: options.budget.as_str().to_string(),
            run_id: options.run_id,
            host: host_name(),
            pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
            grace: options.grace,
        };
        let opened = open_budget(&mut client, &me, options.cap)
            .await
            .map_err(|e| match e {
                OpenError::Db(e) => bad(format!(
                    "cannot open the budget {:?}: {}{}",
                    me.budget,
                    describe(&e),
                    hint(&e, &url)
                )),
                OpenError::Mismatch(detail) => bad(detail),
            })?;
        warnings.extend(opened.warnings);
        Ok(PgLedger {
            url,
            tls,
            me,
            conn: tokio::sync::Mutex::new(Some(Conn { client, st })),
            seen: std::sync::Mutex::new(opened.seen),
            warnings,
        })
    }

    /// The budget's name.
    pub fn budget_name(&self) -> &str {
        &self.me.budget
    }

    /// The run id rows are written with.
    pub fn run_id(&self) -> &str {
        &self.me.run_id
    }

    fn seen(&self) -> Seen {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note(&self, seen: Seen) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = seen;
    }

    fn failure(&self, detail: &str) -> GovernorError {
        ledger_error(&self.url, detail, ErrorKind::Failure)
    }

    /// The connection, opened again if it was lost.
    async fn ensure<'g>(
        &self,
        slot: &'g mut Option<Conn>,
        doing: &str,
    ) -> Result<&'g mut Conn, GovernorError> {
        if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
            *slot = None;
        }
        if slot.is_none() {
            let reopen = async {
                let client = connect(&self.url, &self.tls).await?;
                let st = Statements::prepare(&client).await?;
                Ok::<_, tokio_postgres::Error>(Conn { client, st })
            };
            let conn = match tokio::time::timeout(OP_TIMEOUT, reopen).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    return Err(self.failure(&format!(
                        "{doing}: the connection was lost and cannot be opened again: {}{}",
                        describe(&e),
                        hint(&e, &self.url)
                    )))
                }
                Err(_) => {
                    return Err(self.failure(&format!(
                        "{doing}: the connection was lost and opening it again took more than {} s",
                        OP_TIMEOUT.as_secs()
                    )))
                }
            };
            *slot = Some(conn);
        }
        slot.as_mut()
            .ok_or_else(|| self.failure(&format!("{doing}: no connection")))
    }

    /// The connection, locked for one transaction (opened again if it was lost).
    async fn lease(
        &self,
        doing: &str,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<Conn>>, GovernorError> {
        let mut slot = self.conn.lock().await;
        self.ensure(&mut slot, doing).await?;
        Ok(slot)
    }

    /// The result of a transaction run under [`OP_TIMEOUT`]; a failure that may have left the
    /// connection unusable drops it (the next operation opens a new one).
    fn finish<T>(
        &self,
        slot: &mut Option<Conn>,
        doing: &str,
        result: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, GovernorError> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.as_db_error().is_none() {
                    *slot = None;
                }
                Err(self.failure(&format!("{doing}: {}", describe(&e))))
            }
            Err(_) => {
                *slot = None;
                Err(self.failure(&format!(
                    "{doing}: no answer within {} s",
                    OP_TIMEOUT.as_secs()
                )))
            }
        }
    }

    async fn reserve_async(
        &self,
        request: ReserveRequest<'_>,
    ) -> Result<Reservation, GovernorError> {
        let doing = format!(
            "cannot reserve call {} attempt {} in the budget {:?} (nothing was sent)",
            request.entry.call, request.entry.attempt, self.me.budget
        );
        let mut slot = self.lease(&doing).await?;
        let Some(conn) = slot.as_mut() else {
            return Err(self.failure(&doing));
        };
        let result = tokio::time::timeout(OP_TIMEOUT, reserve_tx(conn, &self.me, &request)).await;
        let (plan, seen) = self.finish(&mut slot, &doing, result)?;
        self.note(seen);
        plan
    }

    async fn settle_async(&self, entry: LedgerEntry) -> Result<(), GovernorError> {
        let doing = format!(
            "cannot settle call {} attempt {} in the budget {:?} (its reservation keeps counting)",
            entry.call, entry.attempt, self.me.budget
        );
        let mut slot = self.lease(&doing).await?;
        let Some(conn) = slot.as_mut() else {
            return Err(self.failure(&doing));
        };
        let result = tokio::time::timeout(OP_TIMEOUT, settle_tx(conn, &self.me, &entry)).await;
        let (settled, seen) = self.finish(&mut slot, &doing, result)?;
        if let Some(seen) = seen {
            self.note(seen);
        }
        match settled {
            Settled::Done => Ok(()),
            Settled::NoReservation => Err(self.failure(&format!(
                "{doing}: the budget holds no reservation of it for run {:?}",
                self.me.run_id
            ))),
        }
    }
}

impl LedgerBackend for PgLedger {
    fn describe(&self) -> String {
        format!("budget {:?} in {}", self.me.budget, self.url)
    }

    fn budget(&self) -> Option<Usd> {
        self.seen().cap
    }

    fn spent(&self) -> Usd {
        let seen = self.seen();
        seen.spent.saturating_add(seen.reserved)
    }

    fn reserve<'a>(
        &'a self,
        request: ReserveRequest<'a>,
    ) -> BoxFuture<'a, Result<Reservation, GovernorError>> {
        Box::pin(self.reserve_async(request))
    }

    fn settle(&self, entry: LedgerEntry) -> BoxFuture<'_, Result<(), GovernorError>> {
        Box::pin(self.settle_async(entry))
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

/// One reservation: lock the budget, plan against what is left, insert, count, commit. The
/// plan's refusal is returned inside (nothing recorded), with the budget as read.
async fn reserve_tx(
    conn: &mut Conn,
    me: &Identity,
    request: &ReserveRequest<'_>,
) -> Result<(Result<Reservation, GovernorError>, Seen), tokio_postgres::Error> {
    let tx = conn.client.transaction().await?;
    let row = tx.query_one(&conn.st.lock_budget, &[&me.budget]).await?;
    let seen = Seen::from_row(&row)?;
    let plan = match (request.plan)(seen.view()) {
        Ok(plan) => plan,
        Err(refused) => {
            tx.rollback().await?;
            return Ok((Err(refused), seen));
        }
    };
    let e = &request.entry;
    let attempt = i32::try_from(e.attempt).unwrap_or(i32::MAX);
    let expires = (request.deadline.saturating_add(me.grace))
        .min(MAX_EXPIRY)
        .as_secs_f64();
    tx.execute(
        &conn.st.insert,
        &[
            &me.budget,
            &me.run_id,
            &e.session,
            &e.call,
            &attempt,
            &e.model_asked,
            &me.host,
            &me.pid,
            &expires,
            &big(plan.input_bound),
            &i64::from(plan.max_tokens),
            &plan.reserved.nanos(),
        ],
    )
    .await?;
    let row = tx
        .query_one(&conn.st.add_reserved, &[&me.budget, &plan.reserved.nanos()])
        .await?;
    let seen = Seen::from_row(&row)?;
    tx.commit().await?;
    Ok((Ok(plan), seen))
}

enum Settled {
    Done,
    NoReservation,
}

/// One settlement: lock the budget, complete the attempt's row, move its reservation to
/// settled at its cost, commit. An attempt already settled for it (at expiry, or by a resumed
/// run) keeps the higher of the two costs.
async fn settle_tx(
    conn: &mut Conn,
    me: &Identity,
    e: &LedgerEntry,
) -> Result<(Settled, Option<Seen>), tokio_postgres::Error> {
    let tx = conn.client.transaction().await?;
    tx.query_one(&conn.st.lock_budget, &[&me.budget]).await?;
    let attempt = i32::try_from(e.attempt).unwrap_or(i32::MAX);
    let outcome = e
        .outcome
        .map_or("torn", crate::charge::AttemptOutcome::as_str);
    let cost = e.cost.nanos();
    let rows = tx
        .query(
            &conn.st.settle_own,
            &[
                &me.budget,
                &me.run_id,
                &e.call,
                &attempt,
                &outcome,
                &cost,
                &e.model_served,
                &big(e.input_tokens),
                &big(e.output_tokens),
                &big(e.cache_read_tokens),
                &big(e.cache_write_tokens),
                &e.estimated,
                &e.overbilled,
                &e.request_id,
                &e.note,
            ],
        )
        .await?;
    let row = if let Some(row) = rows.first() {
        let reserved: i64 = row.try_get(0)?;
        tx.query_one(&conn.st.move_to_settled, &[&me.budget, &cost, &reserved])
            .await?
    } else {
        let key: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&me.budget, &me.run_id, &e.call, &attempt];
        let Some(existing) = tx.query_opt(&conn.st.lock_attempt, &key).await? else {
            tx.rollback().await?;
            return Ok((Settled::NoReservation, None));
        };
        let old: i64 = existing.try_get::<_, Option<i64>>(0)?.unwrap_or(0);
        let by: Option<String> = existing.try_get(1)?;
        let new = old.max(cost);
        let note = format!(
            "settled late by its own process ({outcome}, {}); it had been settled at {} ({}), the higher is kept",
            e.cost,
            Usd::from_nanos(old),
            by.as_deref().unwrap_or("?")
        );
        tx.execute(
            &conn.st.raise_cost,
            &[
                &me.budget,
                &me.run_id,
                &e.call,
                &attempt,
                &new,
                &e.overbilled,
                &note,
            ],
        )
        .await?;
        tx.query_one(&conn.st.move_to_settled, &[&me.budget, &(new - old), &0i64])
            .await?
    };
    let seen = Seen::from_row(&row)?;
    tx.commit().await?;
    Ok((Settled::Done, Some(seen)))
}

enum OpenError {
    Db(tokio_postgres::Error),
    /// The budget's totals do not match its rows.
    Mismatch(String),
}

impl From<tokio_postgres::Error> for OpenError {
    fn from(e: tokio_postgres::Error) -> OpenError {
        OpenError::Db(e)
    }
}

/// Opening a budget, in one transaction: create it if new, check its totals against its rows,
/// settle this run's open reservations (resume) and other runs' expired ones, apply the cap.
async fn open_budget(
    client: &mut Client,
    me: &Identity,
    cap: Option<Usd>,
) -> Result<Opened, OpenError> {
    let tx = client.transaction().await?;
    let cap_nanos = cap.map(|c| c.nanos());
    let created = tx
        .execute(
            "INSERT INTO loopwright.budgets (name, cap_nanos) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING",
            &[&me.budget, &cap_nanos],
        )
        .await?
        == 1;
    let row = tx
        .query_one(
            "SELECT cap_nanos, spent_nanos, reserved_nanos, attempts FROM loopwright.budgets
             WHERE name = $1 FOR UPDATE",
            &[&me.budget],
        )
        .await?;
    let stored = Seen::from_row(&row)?;
    let attempts: i64 = row.try_get(3)?;
    let sums = tx
        .query_one(
            "SELECT count(*),
                 coalesce(sum(cost_nanos) FILTER (WHERE settled_at IS NOT NULL), 0)::bigint,
                 coalesce(sum(reserved_nanos) FILTER (WHERE settled_at IS NULL), 0)::bigint
             FROM loopwright.ledger WHERE budget = $1",
            &[&me.budget],
        )
        .await?;
    let (rows, settled, open): (i64, i64, i64) =
        (sums.try_get(0)?, sums.try_get(1)?, sums.try_get(2)?);
    if (rows, settled, open) != (attempts, stored.spent.nanos(), stored.reserved.nanos()) {
        return Err(OpenError::Mismatch(format!(
            "the budget {:?} does not add up: its totals say {} attempts, {} settled and {} reserved, but its ledger rows are {rows} attempts, {} settled and {} reserved — rows were deleted or amounts edited by hand. Restore the database from a backup, or use another --budget-name",
            me.budget,
            attempts,
            stored.spent,
            stored.reserved,
            Usd::from_nanos(settled),
            Usd::from_nanos(open)
        )));
    }
    let mut warnings = Vec::new();
    let own = tx
        .query_one(
            "WITH s AS (
                 UPDATE loopwright.ledger SET settled_at = now(), settled_by = 'resume',
                     outcome = 'torn', cost_nanos = reserved_nanos,
                     note = 'the process that reserved it ended before settling it; settled when its run resumed, at the torn-attempt charge (nothing reported: the whole reservation)'
                 WHERE budget = $1 AND run_id = $2 AND settled_at IS NULL
                 RETURNING reserved_nanos)
             SELECT count(*), coalesce(sum(reserved_nanos), 0)::bigint FROM s",
            &[&me.budget, &me.run_id],
        )
        .await?;
    let (own_count, own_sum): (i64, i64) = (own.try_get(0)?, own.try_get(1)?);
    if own_count > 0 {
        warnings.push(format!(
            "this run left {own_count} attempt(s) unsettled in the budget {:?} when it was stopped; they are settled now at their reservation ({} in all; nothing reported, so the torn-attempt charge)",
            me.budget,
            Usd::from_nanos(own_sum)
        ));
    }
    let expired = tx
        .query_one(
            "WITH s AS (
                 UPDATE loopwright.ledger SET settled_at = now(), settled_by = 'expiry',
                     outcome = 'torn', cost_nanos = reserved_nanos,
                     note = 'still open after its deadline and grace: its process died; settled at its full reservation by another process'
                 WHERE budget = $1 AND run_id <> $2 AND settled_at IS NULL AND expires_at < now()
                 RETURNING reserved_nanos)
             SELECT count(*), coalesce(sum(reserved_nanos), 0)::bigint FROM s",
            &[&me.budget, &me.run_id],
        )
        .await?;
    let (expired_count, expired_sum): (i64, i64) = (expired.try_get(0)?, expired.try_get(1)?);
    if expired_count > 0 {
        tracing::info!(
            count = expired_count,
            nanos = expired_sum,
            "settled expired reservations of other runs"
        );
    }
    let moved = own_sum.saturating_add(expired_sum);
    let new_cap = match cap_nanos {
        Some(c) if stored.cap.map(|s| s.nanos()) != Some(c) || created => {
            tx.execute(
                "INSERT INTO loopwright.cap_changes (budget, old_cap_nanos, new_cap_nanos, run_id, host)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &me.budget,
                    &if created { None } else { stored.cap.map(|s| s.nanos()) },
                    &c,
                    &me.run_id,
                    &me.host,
                ],
            )
            .await?;
            if !created {
                warnings.push(format!(
                    "the budget {:?} had a cap of {}; --budget changes it to {} for every process sharing it",
                    me.budget,
                    stored
                        .cap
                        .map_or_else(|| "none".to_string(), |c| c.to_string()),
                    Usd::from_nanos(c)
                ));
            }
            Some(c)
        }
        _ => stored.cap.map(|s| s.nanos()),
    };
    let row = tx
        .query_one(
            "UPDATE loopwright.budgets
             SET spent_nanos = spent_nanos + $2, reserved_nanos = reserved_nanos - $2,
                 cap_nanos = $3
             WHERE name = $1 RETURNING cap_nanos, spent_nanos, reserved_nanos",
            &[&me.budget, &moved, &new_cap],
        )
        .await?;
    let seen = Seen::from_row(&row)?;
    tx.commit().await?;
    Ok(Opened { seen, warnings })
}
