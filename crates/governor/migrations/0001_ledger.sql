-- loopwright's spend ledger in PostgreSQL, schema version 1.
--
-- Applied by loopwright when it connects (crates/governor/src/ledger/postgres/schema.rs), in
-- one transaction, recorded in loopwright.schema_migrations. Money is in nano-dollars (bigint).
--
-- budgets: one row per named budget, with its cap and its running totals. Every reservation
-- and settlement locks its budget's row (SELECT ... FOR UPDATE), so the totals always equal
-- what the ledger's rows add up to; loopwright checks that when it connects and in `status`.
-- ledger: one row per attempt at a model call, inserted when it is reserved and completed
-- when it is settled. Rows are never deleted, and a settled row's amounts never go down
-- (triggers below refuse it).

CREATE SCHEMA IF NOT EXISTS loopwright;

CREATE TABLE loopwright.budgets (
    name            text PRIMARY KEY CHECK (name <> ''),
    -- NULL: no cap (attempts are recorded, nothing is refused).
    cap_nanos       bigint CHECK (cap_nanos IS NULL OR cap_nanos >= 0),
    -- Settled costs of the budget's attempts.
    spent_nanos     bigint NOT NULL DEFAULT 0 CHECK (spent_nanos >= 0),
    -- Reservations of attempts not settled (in flight, or left by a process that died).
    reserved_nanos  bigint NOT NULL DEFAULT 0 CHECK (reserved_nanos >= 0),
    -- Rows of the ledger for this budget.
    attempts        bigint NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Every change of a budget's cap: who set it, from what to what.
CREATE TABLE loopwright.cap_changes (
    id              bigserial PRIMARY KEY,
    budget          text NOT NULL REFERENCES loopwright.budgets (name),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    old_cap_nanos   bigint,
    new_cap_nanos   bigint,
    run_id          text NOT NULL,
    host            text NOT NULL
);

CREATE TABLE loopwright.ledger (
    id                  bigserial PRIMARY KEY,
    budget              text NOT NULL REFERENCES loopwright.budgets (name),
    -- The run (one `loopwright run` across its resumes, or one `exec`), its session, the
    -- call and the attempt at it (1, then 2 for the first retry...).
    run_id              text NOT NULL,
    session             text NOT NULL,
    call                text NOT NULL,
    attempt             integer NOT NULL CHECK (attempt >= 1),
    model_asked         text NOT NULL,
    model_served        text,
    host                text NOT NULL,
    pid                 integer NOT NULL,
    reserved_at         timestamptz NOT NULL DEFAULT now(),
    -- After this, a reservation still open belongs to a process that died: any process on the
    -- budget may settle it at its full reservation (settled_by = 'expiry').
    expires_at          timestamptz NOT NULL,
    input_bound         bigint NOT NULL CHECK (input_bound >= 0),
    max_tokens          bigint NOT NULL CHECK (max_tokens >= 0),
    reserved_nanos      bigint NOT NULL CHECK (reserved_nanos >= 0),
    settled_at          timestamptz,
    -- 'self': by the process that reserved it; 'resume': by the next run of the same run id;
    -- 'expiry': by any process, after expires_at.
    settled_by          text CHECK (settled_by IN ('self', 'resume', 'expiry')),
    outcome             text CHECK (outcome IN ('answered', 'not_sent', 'refused', 'torn', 'cancelled')),
    cost_nanos          bigint CHECK (cost_nanos >= 0),
    input_tokens        bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens       bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_read_tokens   bigint NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    cache_write_tokens  bigint NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    estimated           boolean NOT NULL DEFAULT false,
    overbilled          boolean NOT NULL DEFAULT false,
    request_id          text,
    note                text,
    UNIQUE (budget, run_id, call, attempt),
    CHECK ((settled_at IS NULL) = (cost_nanos IS NULL)),
    CHECK ((settled_at IS NULL) = (outcome IS NULL)),
    CHECK ((settled_at IS NULL) = (settled_by IS NULL))
);

CREATE INDEX ledger_open ON loopwright.ledger (budget, expires_at) WHERE settled_at IS NULL;
CREATE INDEX ledger_by_run ON loopwright.ledger (budget, run_id);

-- The ledger is append-only: no row is deleted, and once settled a row's identity, its
-- reservation and its settlement stay; only its cost may rise (a process settling late what
-- was already settled at expiry records the higher of the two) and its note grow.
CREATE FUNCTION loopwright.ledger_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'loopwright.ledger is append-only: its rows are never deleted';
    END IF;
    IF NEW.budget <> OLD.budget OR NEW.run_id <> OLD.run_id OR NEW.call <> OLD.call
       OR NEW.attempt <> OLD.attempt OR NEW.reserved_nanos <> OLD.reserved_nanos
       OR NEW.reserved_at <> OLD.reserved_at THEN
        RAISE EXCEPTION 'loopwright.ledger: a reservation is never changed';
    END IF;
    IF OLD.settled_at IS NOT NULL AND (NEW.settled_at IS DISTINCT FROM OLD.settled_at
       OR NEW.settled_by IS DISTINCT FROM OLD.settled_by OR NEW.cost_nanos < OLD.cost_nanos) THEN
        RAISE EXCEPTION 'loopwright.ledger: a settled attempt''s cost never goes down';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_append_only
    BEFORE UPDATE OR DELETE ON loopwright.ledger
    FOR EACH ROW EXECUTE FUNCTION loopwright.ledger_guard();
CREATE TRIGGER ledger_no_truncate
    BEFORE TRUNCATE ON loopwright.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION loopwright.ledger_guard();
