//! The database schema: SQL files in `crates/governor/migrations/`, applied in order when a
//! process connects, each in the same transaction as its row in
//! `loopwright.schema_migrations`.
//!
//! Many processes may connect at once (a batch of Jobs starting together): the transaction
//! first takes a transaction-scoped advisory lock, so one of them migrates and the others find
//! the schema current when they get the lock. A process that finds the schema current does no
//! DDL at all (so a role without CREATE rights works on a database migrated by another). A
//! database migrated by a newer loopwright (a version this one does not know) is refused.

use tokio_postgres::Client;

/// The migrations, in order: version, name, SQL.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "ledger",
    include_str!("../../../migrations/0001_ledger.sql"),
)];

/// The schema version this build writes and reads.
pub fn current_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Key of the advisory lock held while migrating ("loopwrig" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c6f_6f70_7772_6967;

/// Where the schema stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaState {
    /// No loopwright schema in this database.
    Missing,
    /// At this version.
    At(i32),
}

/// The schema's version (without changing anything).
pub async fn state(client: &Client) -> Result<SchemaState, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT to_regclass('loopwright.schema_migrations') IS NOT NULL",
            &[],
        )
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(SchemaState::Missing);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM loopwright.schema_migrations",
            &[],
        )
        .await?;
    Ok(SchemaState::At(row.get(0)))
}

/// What migrating did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migrated {
    /// The schema was already current.
    Current,
    /// These versions were applied.
    Applied(Vec<i32>),
    /// The database is at a version newer than this build knows.
    TooNew(i32),
}

/// Brings the schema to [`current_version`], in one transaction under the advisory lock.
pub async fn migrate(client: &mut Client) -> Result<Migrated, tokio_postgres::Error> {
    if let SchemaState::At(v) = state(client).await? {
        if v == current_version() {
            return Ok(Migrated::Current);
        }
        if v > current_version() {
            return Ok(Migrated::TooNew(v));
        }
    }
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS loopwright;
         CREATE TABLE IF NOT EXISTS loopwright.schema_migrations (
             version     integer PRIMARY KEY,
             name        text NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM loopwright.schema_migrations",
            &[],
        )
        .await?;
    let at: i32 = row.get(0);
    if at > current_version() {
        return Ok(Migrated::TooNew(at));
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > at) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO loopwright.schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        applied.push(*version);
    }
    tx.commit().await?;
    Ok(if applied.is_empty() {
        Migrated::Current
    } else {
        Migrated::Applied(applied)
    })
}
