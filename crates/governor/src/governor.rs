//! The Governor: the one door to the model. Every call is checked against free-only mode; each
//! of its attempts is reserved against the budget in the ledger, sent with the pinned model id
//! and the Governor's `max_tokens`, checked for the model that answered and for over-billing,
//! and settled in the ledger; failed attempts are retried here (not in the wire client) while
//! the policy and the budget allow.

use crate::budget::{input_upper_bound, reserve, PreviousCall, Reservation};
use crate::charge::{self, AttemptOutcome};
use crate::error::{ErrorKind, GovernorError};
use crate::ledger::{
    BudgetView, EntryKind, FileBackend, LedgerBackend, LedgerContents, LedgerEntry, ReserveRequest,
};
use crate::model_ref::{ModelRef, Provider};
use crate::pin::served_model_matches;
use crate::pricing::{OpenRouterCatalog, Price, PriceCatalog, PricedModel, PricingOverrides};
use crate::provider::{resolve_provider, ProvidersConfig, ResolvedProvider};
use crate::retry::{NextStep, RetryPolicy};
use llm::{
    AttemptError, Delivery, LlmError, ModelClient, Prompt, Request, Response, StreamEvent, Usage,
    Usd,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// `max_tokens` a call asks for unless configured: 8192 for a priced model, 4096 for a free or
/// local one (smaller servers and windows; a CPU generates 8–17 tokens a second, so 8192 tokens
/// can take 15 minutes). The Python harness asked 1000 and 4096.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;
/// See [`DEFAULT_MAX_TOKENS`].
pub const DEFAULT_FREE_MAX_TOKENS: u32 = 4096;

/// What the CLI knows before the Governor exists: the model string, the config tables, flags.
#[derive(Debug, Clone)]
pub struct GovernorSettings<'a> {
    /// `provider/model`, e.g. `anthropic/claude-sonnet-4-5`.
    pub model: &'a str,
    pub providers: &'a ProvidersConfig,
    pub pricing: &'a PricingOverrides,
    /// The OpenRouter catalog cache file (read if it exists).
    pub openrouter_catalog: Option<&'a Path>,
    pub budget: Option<Usd>,
    pub free_only: bool,
    pub ledger_path: PathBuf,
    /// Record every response into this cassette (for `replay/PATH` later).
    pub record_to: Option<PathBuf>,
}

/// Everything the Governor needs, resolved.
#[derive(Debug, Clone)]
pub struct GovernorConfig {
    pub model: ModelRef,
    pub provider: ResolvedProvider,
    /// The pinned model's price (`None`: unknown).
    pub price: Option<PricedModel>,
    /// Used to price a different model that answered (pin violations).
    pub catalog: PriceCatalog,
    pub budget: Option<Usd>,
    pub free_only: bool,
    pub ledger_path: PathBuf,
    /// How often and how patiently failed attempts are retried.
    pub retry: RetryPolicy,
    /// The most output tokens a call asks for; the budget may lower it per call (default:
    /// [`DEFAULT_MAX_TOKENS`], [`DEFAULT_FREE_MAX_TOKENS`]; the config's `max_tokens`).
    pub max_tokens: u32,
    pub record_to: Option<PathBuf>,
    /// Whether what the ledger already holds counts against the budget (true: a resumed run
    /// continues the same budget; false: the budget is for this process's calls only, as for
    /// one `exec` task). The ledger keeps everything either way.
    pub budget_includes_ledger: bool,
}

impl GovernorConfig {
    /// Parses the model, resolves its provider (endpoint, key) from config and `env`, and
    /// prices it (config override > OpenRouter cache > built-in).
    pub fn resolve(
        settings: &GovernorSettings<'_>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GovernorConfig, GovernorError> {
        let model = settings.providers.parse_model(settings.model)?;
        let provider = resolve_provider(&model, settings.providers, env)?;
        let openrouter = match settings.openrouter_catalog {
            Some(path) => OpenRouterCatalog::load(path)?,
            None => None,
        };
        let catalog = PriceCatalog::new(settings.pricing, openrouter)?;
        let price = catalog.lookup(&model, provider.local);
        let max_tokens = match &price {
            Some(p) if p.price.is_free() => DEFAULT_FREE_MAX_TOKENS,
            _ => DEFAULT_MAX_TOKENS,
        };
        Ok(GovernorConfig {
            model,
            provider,
            price,
            catalog,
            budget: settings.budget,
            free_only: settings.free_only,
            ledger_path: settings.ledger_path.clone(),
            retry: RetryPolicy::default(),
            max_tokens,
            record_to: settings.record_to.clone(),
            budget_includes_ledger: true,
        })
    }
}

#[derive(Debug, Default)]
struct State {
    /// Attempts reserved and not settled yet (calls in flight).
    open_attempts: usize,
    calls: u64,
    next_call: u64,
    sessions: HashMap<String, PreviousCall>,
    stopped: Option<(String, ErrorKind)>,
}

/// The one door to the model. Shareable (`&self` methods); `Send + Sync`.
#[derive(Debug)]
pub struct Governor {
    model: ModelRef,
    local: bool,
    client: ModelClient,
    price: Option<PricedModel>,
    catalog: PriceCatalog,
    free_only: bool,
    /// Where attempts are reserved and settled; it keeps the budget's accounting.
    backend: Arc<dyn LedgerBackend>,
    /// The longest one attempt can take (the provider's per-call deadline).
    attempt_deadline: std::time::Duration,
    retry: RetryPolicy,
    max_tokens: u32,
    state: Mutex<State>,
    warnings: Vec<String>,
    call_prefix: String,
}

/// A call's answer and what it cost.
#[derive(Debug, Clone)]
pub struct Settled {
    pub response: Response,
    /// What all its attempts were settled at in the ledger (a torn first attempt included).
    pub cost: Usd,
    /// Attempts made (1: no retry).
    pub attempts: u32,
}

fn free_only_refusal(model: &ModelRef, price: Option<&PricedModel>) -> Option<GovernorError> {
    let detail = match price {
        Some(p) if p.price.is_free() => return None,
        Some(p) => format!(
            "{model} is priced {}/{} per million input/output tokens; pick a free model (an openrouter/VENDOR/MODEL:free, ollama/MODEL or a local server) or drop --free-only. Nothing was sent",
            p.price.input, p.price.output
        ),
        None => format!(
            "no price is known for {model}, so it cannot be shown to be free; pick a free model or drop --free-only. Nothing was sent"
        ),
    };
    Some(GovernorError::FreeOnlyViolation {
        model: model.to_string(),
        detail,
    })
}

/// Refusals decided before anything is sent or opened. `budget`: the cap the ledger will
/// enforce.
fn preflight(config: &GovernorConfig, budget: Option<Usd>) -> Result<(), GovernorError> {
    if config.free_only {
        if let Some(err) = free_only_refusal(&config.model, config.price.as_ref()) {
            return Err(err);
        }
    }
    if budget.is_some() && config.price.is_none() {
        return Err(GovernorError::UnknownPrice {
            model: config.model.to_string(),
        });
    }
    Ok(())
}

impl Governor {
    /// Checks free-only and the budget's need for a price before anything is sent, opens the
    /// file ledger at `config.ledger_path` (what it holds counts as spent when
    /// `budget_includes_ledger`) and builds the one model client.
    pub fn new(config: GovernorConfig) -> Result<Governor, GovernorError> {
        preflight(&config, config.budget)?;
        let client = Governor::client(&config)?;
        let backend = FileBackend::open(
            &config.ledger_path,
            config.budget,
            config.budget_includes_ledger,
        )?;
        Ok(Governor::assemble(config, client, Arc::new(backend)))
    }

    /// A Governor that reserves and settles in `backend` (a budget shared with other
    /// processes: [`crate::ledger::postgres::PgLedger`]). The budget is the backend's (its cap
    /// may come from the database); `config.budget`, `config.ledger_path` and
    /// `config.budget_includes_ledger` are not used.
    pub fn with_backend(
        config: GovernorConfig,
        backend: Arc<dyn LedgerBackend>,
    ) -> Result<Governor, GovernorError> {
        preflight(&config, backend.budget())?;
        let client = Governor::client(&config)?;
        Ok(Governor::assemble(config, client, backend))
    }

    /// The one model client (recording into a cassette if asked).
    fn client(config: &GovernorConfig) -> Result<ModelClient, GovernorError> {
        let mut client = config.provider.client()?;
        if let Some(path) = &config.record_to {
            let writer = llm::CassetteWriter::open(path).map_err(|e| {
                GovernorError::Config(format!("cannot record to {}: {e}", path.display()))
            })?;
            client = client.with_recorder(Arc::new(writer));
        }
        Ok(client)
    }

    fn assemble(
        config: GovernorConfig,
        client: ModelClient,
        backend: Arc<dyn LedgerBackend>,
    ) -> Governor {
        let mut warnings = Vec::new();
        if config.price.is_none() {
            warnings.push(format!(
                "no price is known for {}: calls are not limited by a budget and are recorded at the provider-reported cost only (add a [pricing.\"{}\"] entry to count them)",
                config.model, config.model
            ));
        }
        warnings.extend(backend.warnings());
        let started = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        Governor {
            local: config.provider.local,
            attempt_deadline: config.provider.timeouts.call,
            model: config.model,
            client,
            price: config.price,
            catalog: config.catalog,
            free_only: config.free_only,
            backend,
            retry: config.retry,
            max_tokens: config.max_tokens.max(1),
            state: Mutex::new(State::default()),
            warnings,
            call_prefix: format!("{}-{started}", std::process::id()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn model(&self) -> &ModelRef {
        &self.model
    }

    /// The pinned model's price and its source (`None`: unknown).
    pub fn price(&self) -> Option<&PricedModel> {
        self.price.as_ref()
    }

    /// The cap (`None`: none). For a budget shared through a database, the cap as last seen
    /// there.
    pub fn budget(&self) -> Option<Usd> {
        self.backend.budget()
    }

    pub fn free_only(&self) -> bool {
        self.free_only
    }

    /// The most output tokens a call asks for (the budget may lower it for a call).
    pub fn max_tokens(&self) -> u32 {
        self.max_tokens
    }

    /// Everything spent against the budget: the ledger's settled costs, reservations never
    /// settled, and attempts in flight at their reserved worst case. For a budget shared
    /// through a database: the whole budget's, as of this process's last reservation or
    /// settlement.
    pub fn spent(&self) -> Usd {
        self.backend.spent()
    }

    /// Budget left (`None`: no budget).
    pub fn remaining(&self) -> Option<Usd> {
        self.budget()
            .map(|b| b.saturating_sub(self.spent()).max(Usd::ZERO))
    }

    /// Where attempts are reserved and settled.
    pub fn ledger_backend(&self) -> &Arc<dyn LedgerBackend> {
        &self.backend
    }

    /// Calls that made at least one attempt through this Governor.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Attempts reserved in the ledger and not settled yet: calls in flight.
    pub fn attempts_in_flight(&self) -> usize {
        self.lock().open_attempts
    }

    /// Waits until no attempt is in flight (a cancelled call settles as soon as its attempt is
    /// abandoned), for at most `limit`; whether none is. Used before leaving the process at
    /// once, so no reservation is left unsettled in the ledger.
    pub async fn settled(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.attempts_in_flight() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// Things the user should know (unknown price, a torn ledger line dropped).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The ledger file's contents as on disk (every line checked). A ledger in a database is
    /// read with its own report ([`crate::ledger::postgres::BudgetReport`]).
    pub fn ledger(&self) -> Result<LedgerContents, GovernorError> {
        LedgerContents::read(self.ledger_file()?)
    }

    /// Checks the ledger file on disk (every line) and that it still accounts for at least
    /// `expected`, the total the caller last knew (a run keeps it in its state); returns the
    /// total it accounts for. A truncated or emptied ledger is [`GovernorError::LedgerShort`].
    pub fn verify_ledger(&self, expected: Usd) -> Result<Usd, GovernorError> {
        let path = self.ledger_file()?;
        let contents = LedgerContents::read(path)?;
        contents.verify_total_at_least(path, expected)?;
        Ok(contents.total_spent())
    }

    fn ledger_file(&self) -> Result<&Path, GovernorError> {
        self.backend.file().ok_or_else(|| {
            GovernorError::Config(format!(
                "the ledger is in a database ({}), not a file; `loopwright status --budget NAME` reads it",
                self.backend.describe()
            ))
        })
    }

    /// Sends `prompt` to the pinned model and returns the answer with what it cost. Each
    /// attempt: reserve (ledger) → the pinned model id and the budget-lowered `max_tokens` →
    /// send → settle (ledger) by the charging rule ([`crate::charge`]) → served-model,
    /// over-billing and free-only checks. A failed attempt is retried per the [`RetryPolicy`]
    /// while the budget pays for the retry. `cancel` aborts the attempt in flight (settled as
    /// torn) and any wait: [`GovernorError::Cancelled`].
    pub async fn call(
        &self,
        session: &str,
        prompt: &Prompt,
        cancel: &CancellationToken,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Settled, GovernorError> {
        if self.free_only {
            if let Some(err) = free_only_refusal(&self.model, self.price.as_ref()) {
                return Err(err);
            }
        }
        let call = self.next_call_id();
        let mut request = Request::new(self.model.model_id(), self.max_tokens, prompt);
        // What the wire adds to the prompt's text (the text tool protocol's instructions and
        // markup) counts in the input bound.
        let wire_extra = self
            .client
            .wire_bytes(&request)
            .saturating_sub(request.approx_bytes()) as u64;
        let mut charged = Usd::ZERO;
        let mut attempt = 1;
        let mut reserved_any = false;
        let result = loop {
            if cancel.is_cancelled() {
                break Err(GovernorError::Cancelled { charged });
            }
            let plan = match self
                .reserve(&call, attempt, session, prompt, wire_extra)
                .await
            {
                Ok(plan) => plan,
                Err(e) => break Err(e),
            };
            self.lock().open_attempts += 1;
            reserved_any = true;
            request.max_tokens = plan.max_tokens;
            let at = Attempt {
                session,
                call: &call,
                number: attempt,
                plan: &plan,
            };
            let failure = match self.client.send(&request, cancel, on_event).await {
                Ok(mut response) => {
                    response.attempts = attempt;
                    break self.settle_answer(&at, prompt, response, charged).await;
                }
                Err(failure) => failure,
            };
            let cost = match self.settle_failure(&at, &failure).await {
                Ok(cost) => cost,
                Err(e) => break Err(e),
            };
            charged = charged.saturating_add(cost);
            if matches!(failure.error, LlmError::Cancelled) {
                break Err(GovernorError::Cancelled { charged });
            }
            let step = if self.client.is_replay() {
                NextStep::Final
            } else {
                self.retry
                    .next_step(attempt, &failure, &mut rand::thread_rng())
            };
            let wait = match step {
                NextStep::RetryAfter(wait) => wait,
                NextStep::Final => break Err(GovernorError::Provider(failure.error)),
                NextStep::Exhausted => {
                    break Err(GovernorError::RetriesExhausted {
                        attempts: attempt,
                        last: failure.error,
                    })
                }
                NextStep::WaitTooLong(wait) => {
                    break Err(GovernorError::RetryAfterTooLong {
                        wait_secs: wait.as_secs(),
                        cap_secs: self.retry.max_retry_after.as_secs(),
                        last: failure.error,
                    })
                }
            };
            on_event(StreamEvent::Retry {
                attempt,
                wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                reason: format!("{} (the attempt was settled at {cost})", failure.error),
            });
            tokio::select! {
                _ = cancel.cancelled() => break Err(GovernorError::Cancelled { charged }),
                _ = tokio::time::sleep(wait) => {}
            }
            attempt += 1;
        };
        if reserved_any {
            self.lock().calls += 1;
        }
        result
    }

    /// Settles an attempt that brought an answer, and checks it: the served model, over-billing,
    /// free-only. `charged` is what the call's earlier attempts cost.
    async fn settle_answer(
        &self,
        at: &Attempt<'_>,
        prompt: &Prompt,
        response: Response,
        charged: Usd,
    ) -> Result<Settled, GovernorError> {
        let asked = self.model.model_id();
        let pinned = self.model.provider() == &Provider::Replay
            || served_model_matches(
                self.model.provider(),
                asked,
                &response.served_model,
                self.local,
            );
        let (price, price_note) = self.price_for(&response, pinned);
        let u = &response.usage;
        let cost = charge::answered(price.as_ref(), u, at.plan);
        let overbilled = pinned
            .then(|| charge::overbilling(self.pinned_price().as_ref(), at.plan, u, cost))
            .flatten();
        let mut entry = self.entry(EntryKind::Settle, at.call, at.number, at.session);
        entry.reserved = at.plan.reserved;
        entry.outcome = Some(AttemptOutcome::Answered);
        entry.model_served = Some(response.served_model.clone());
        fill_usage(&mut entry, u);
        entry.request_id = response.request_id.clone();
        entry.set_cost(cost);
        let mut notes: Vec<String> = price_note.into_iter().collect();
        if !pinned {
            notes.push(format!(
                "pin violation: asked {asked}, served {:?}",
                response.served_model
            ));
        }
        if let Some(why) = &overbilled {
            entry.overbilled = true;
            notes.push(format!("over-billed: {why}"));
        }
        if at.number > 1 {
            notes.push(format!(
                "answered on attempt {}; the earlier attempts have their own entries",
                at.number
            ));
        }
        entry.note = (!notes.is_empty()).then(|| notes.join("; "));
        let remember = (pinned && !u.estimated && overbilled.is_none())
            .then(|| PreviousCall::new(prompt, u.total_input(), u.output_tokens));
        self.settle(entry, remember.map(|p| (at.session, p)))
            .await?;

        if !pinned {
            let err = GovernorError::PinViolation {
                asked: asked.to_string(),
                served: response.served_model.clone(),
            };
            return Err(self.stop(err));
        }
        if self.free_only && !cost.is_zero() {
            let err = GovernorError::FreeOnlyViolation {
                model: self.model.to_string(),
                detail: format!(
                    "the provider reported a cost of {cost} for a call to {} (recorded in the ledger); stopping",
                    self.model
                ),
            };
            return Err(self.stop(err));
        }
        if let Some(why) = overbilled {
            return Err(self.stop(GovernorError::Overbilled {
                detail: format!("{why} (call {} attempt {})", at.call, at.number),
            }));
        }
        Ok(Settled {
            response,
            cost: charged.saturating_add(cost),
            attempts: at.number,
        })
    }

    /// Settles a failed attempt by the charging rule and returns its cost; usage above what it
    /// asked for stops the Governor ([`GovernorError::Overbilled`]).
    async fn settle_failure(
        &self,
        at: &Attempt<'_>,
        failure: &AttemptError,
    ) -> Result<Usd, GovernorError> {
        let price = self.pinned_price();
        let e = &failure.error;
        let (cost, outcome, note, usage) = match &failure.delivery {
            Delivery::NotSent => (
                Usd::ZERO,
                AttemptOutcome::NotSent,
                format!("nothing reached the provider, nothing billed: {e}"),
                None,
            ),
            Delivery::Refused { status, usage } => (
                charge::refused(price.as_ref(), usage.as_ref(), at.plan),
                AttemptOutcome::Refused,
                match usage {
                    Some(_) => {
                        format!("refused with HTTP {status}; its body reports usage, charged: {e}")
                    }
                    None => format!("refused with HTTP {status}, nothing billed: {e}"),
                },
                usage.clone(),
            ),
            Delivery::Torn { seen } => {
                let (cost, basis) = charge::torn(price.as_ref(), seen, at.plan);
                let outcome = if matches!(e, LlmError::Cancelled) {
                    AttemptOutcome::Cancelled
                } else {
                    AttemptOutcome::Torn
                };
                (
                    cost,
                    outcome,
                    format!(
                        "torn after it was sent, charged by the torn-attempt rule ({}): {e}",
                        basis.describe()
                    ),
                    seen.last.clone().or_else(|| seen.input.clone()),
                )
            }
        };
        let overbilled = usage
            .as_ref()
            .and_then(|u| charge::overbilling(price.as_ref(), at.plan, u, cost));
        let mut entry = self.entry(EntryKind::Settle, at.call, at.number, at.session);
        entry.reserved = at.plan.reserved;
        entry.outcome = Some(outcome);
        if let Some(u) = &usage {
            fill_usage(&mut entry, u);
        }
        entry.set_cost(cost);
        entry.note = Some(match &overbilled {
            Some(why) => format!("{note}; over-billed: {why}"),
            None => note,
        });
        entry.overbilled = overbilled.is_some();
        self.settle(entry, None).await?;
        if let Some(why) = overbilled {
            return Err(self.stop(GovernorError::Overbilled {
                detail: format!("{why} (call {} attempt {})", at.call, at.number),
            }));
        }
        Ok(cost)
    }

    /// Closes the door: every later call is refused with `err`'s reason and kind.
    fn stop(&self, err: GovernorError) -> GovernorError {
        self.lock().stopped = Some((err.to_string(), err.kind()));
        err
    }

    fn next_call_id(&self) -> String {
        let mut st = self.lock();
        st.next_call += 1;
        format!("{}-{}", self.call_prefix, st.next_call)
    }

    /// Plans attempt `attempt` of `call` against what the budget has left and reserves it in
    /// the ledger, as one step of the backend (concurrent calls never plan against the same
    /// remainder). `wire_extra`: bytes the wire format adds to the prompt's text.
    async fn reserve(
        &self,
        call: &str,
        attempt: u32,
        session: &str,
        prompt: &Prompt,
        wire_extra: u64,
    ) -> Result<Reservation, GovernorError> {
        let bound = {
            let st = self.lock();
            if let Some((reason, kind)) = &st.stopped {
                return Err(GovernorError::Stopped {
                    reason: reason.clone(),
                    kind: *kind,
                });
            }
            input_upper_bound(st.sessions.get(session), prompt).saturating_add(wire_extra)
        };
        let max_tokens = prompt
            .max_tokens_cap
            .map_or(self.max_tokens, |cap| cap.clamp(1, self.max_tokens));
        let price = self.pinned_price();
        let model = &self.model;
        let plan = move |budget: Option<BudgetView>| match (price, budget) {
            (Some(p), budget) => reserve(&p, bound, max_tokens, budget.map(|b| b.remaining()))
                .map_err(|s| GovernorError::BudgetExhausted {
                    spent: budget.map_or(Usd::ZERO, |b| b.spent),
                    limit: budget.map_or(Usd::ZERO, |b| b.limit),
                    needed: s.needed,
                }),
            (None, None) => Ok(Reservation {
                input_bound: bound,
                max_tokens,
                reserved: Usd::ZERO,
            }),
            (None, Some(_)) => Err(GovernorError::UnknownPrice {
                model: model.to_string(),
            }),
        };
        self.backend
            .reserve(ReserveRequest {
                entry: self.entry(EntryKind::Reserve, call, attempt, session),
                plan: &plan,
                deadline: self.attempt_deadline,
            })
            .await
    }

    /// Writes the settle entry (the backend moves the attempt from reserved to settled; an
    /// entry it cannot write leaves the reservation counting) and remembers the session's
    /// call for the next input bound.
    async fn settle(
        &self,
        entry: LedgerEntry,
        remember: Option<(&str, PreviousCall)>,
    ) -> Result<(), GovernorError> {
        let written = self.backend.settle(entry).await;
        {
            let mut st = self.lock();
            st.open_attempts = st.open_attempts.saturating_sub(1);
        }
        if let Some((session, prev)) = remember {
            self.lock().sessions.insert(session.to_string(), prev);
        }
        written
    }

    fn pinned_price(&self) -> Option<Price> {
        self.price.map(|p| p.price)
    }

    /// The price an answer is charged at: the pinned model's, or, when another model answered
    /// and its known price is higher, that price (with a note saying so).
    fn price_for(&self, response: &Response, pinned: bool) -> (Option<Price>, Option<String>) {
        let mut price = self.pinned_price();
        let mut note = None;
        if !pinned && !response.served_model.trim().is_empty() {
            let served = self.model.sibling(response.served_model.trim());
            if let Some(sp) = self.catalog.lookup(&served, false) {
                let higher = price.map_or(sp.price, |p| p.max(sp.price));
                if Some(higher) != price {
                    note = Some(format!(
                        "priced at the served model's higher price ({served})"
                    ));
                }
                price = Some(higher);
            }
        }
        (price, note)
    }

    fn entry(&self, kind: EntryKind, call: &str, attempt: u32, session: &str) -> LedgerEntry {
        LedgerEntry::new(kind, call, attempt, session, &self.model.to_string())
    }
}

/// Which attempt is being settled.
struct Attempt<'a> {
    session: &'a str,
    call: &'a str,
    number: u32,
    plan: &'a Reservation,
}

fn fill_usage(entry: &mut LedgerEntry, u: &Usage) {
    entry.input_tokens = u.input_tokens;
    entry.output_tokens = u.output_tokens;
    entry.cache_read_tokens = u.cache_read_tokens;
    entry.cache_write_tokens = u.cache_write_tokens;
    entry.estimated = u.estimated;
}
