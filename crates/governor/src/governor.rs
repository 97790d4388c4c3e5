//! The Governor: the one door to the model. Every call is checked against free-only mode,
//! reserved against the budget in the ledger, sent with the pinned model id, checked for the
//! model that answered, and settled in the ledger.

use crate::budget::{input_upper_bound, reserve, settlement, PreviousCall, Reservation};
use crate::error::{exit, may_have_billed, GovernorError};
use crate::ledger::{now_rfc3339, EntryKind, Ledger, LedgerContents, LedgerEntry};
use crate::model_ref::{ModelRef, Provider};
use crate::pin::served_model_matches;
use crate::pricing::{OpenRouterCatalog, Price, PriceCatalog, PricedModel, PricingOverrides};
use crate::provider::{resolve_provider, ProvidersConfig, ResolvedProvider};
use llm::{ModelClient, Request, Response, RetryPolicy, StreamEvent, Usage, Usd};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    pub retry: RetryPolicy,
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
        Ok(GovernorConfig {
            model,
            provider,
            price,
            catalog,
            budget: settings.budget,
            free_only: settings.free_only,
            ledger_path: settings.ledger_path.clone(),
            retry: RetryPolicy::default(),
            record_to: settings.record_to.clone(),
            budget_includes_ledger: true,
        })
    }
}

#[derive(Debug, Default)]
struct State {
    /// Settled costs and crash-orphaned reservations from the ledger, plus this process's
    /// settled calls.
    settled: Usd,
    /// Reservations of calls in flight.
    in_flight: Usd,
    calls: u64,
    next_call: u64,
    sessions: HashMap<String, PreviousCall>,
    stopped: Option<(String, i32)>,
}

impl State {
    fn spent(&self) -> Usd {
        self.settled.saturating_add(self.in_flight)
    }
}

/// The one door to the model. Shareable (`&self` methods); `Send + Sync`.
#[derive(Debug)]
pub struct Governor {
    model: ModelRef,
    local: bool,
    client: ModelClient,
    price: Option<PricedModel>,
    catalog: PriceCatalog,
    budget: Option<Usd>,
    free_only: bool,
    ledger: Ledger,
    state: Mutex<State>,
    warnings: Vec<String>,
    call_prefix: String,
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

/// Refusals decided before anything is sent or opened.
fn preflight(config: &GovernorConfig) -> Result<(), GovernorError> {
    if config.free_only {
        if let Some(err) = free_only_refusal(&config.model, config.price.as_ref()) {
            return Err(err);
        }
    }
    if config.budget.is_some() && config.price.is_none() {
        return Err(GovernorError::UnknownPrice {
            model: config.model.to_string(),
        });
    }
    Ok(())
}

impl Governor {
    /// Checks free-only and the budget's need for a price before anything is sent, opens the
    /// ledger (what it holds counts as spent) and builds the one model client.
    pub fn new(config: GovernorConfig) -> Result<Governor, GovernorError> {
        preflight(&config)?;
        let mut client = config.provider.client(config.retry.clone())?;
        if let Some(path) = &config.record_to {
            let writer = llm::CassetteWriter::open(path).map_err(|e| {
                GovernorError::Config(format!("cannot record to {}: {e}", path.display()))
            })?;
            client = client.with_recorder(Arc::new(writer));
        }
        Governor::with_client(config, client)
    }

    /// Like [`Governor::new`] with a client built by the caller (tests, embedding).
    pub fn with_client(
        config: GovernorConfig,
        client: ModelClient,
    ) -> Result<Governor, GovernorError> {
        preflight(&config)?;
        let (ledger, contents) = Ledger::open(&config.ledger_path)?;
        let mut warnings = Vec::new();
        if config.price.is_none() {
            warnings.push(format!(
                "no price is known for {}: calls are not limited by a budget and are recorded at the provider-reported cost only (add a [pricing.\"{}\"] entry to count them)",
                config.model, config.model
            ));
        }
        if let Some(tail) = &contents.torn_tail {
            warnings.push(format!(
                "the ledger {} ended with a line cut short by a crash ({} bytes); it was dropped (its call is counted by its reservation)",
                config.ledger_path.display(),
                tail.len()
            ));
        }
        let started = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        Ok(Governor {
            local: config.provider.local,
            model: config.model,
            client,
            price: config.price,
            catalog: config.catalog,
            budget: config.budget,
            free_only: config.free_only,
            ledger,
            state: Mutex::new(State {
                settled: if config.budget_includes_ledger {
                    contents.total_spent()
                } else {
                    Usd::ZERO
                },
                ..State::default()
            }),
            warnings,
            call_prefix: format!("{}-{started}", std::process::id()),
        })
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

    pub fn budget(&self) -> Option<Usd> {
        self.budget
    }

    pub fn free_only(&self) -> bool {
        self.free_only
    }

    /// Everything spent against the budget: the ledger's settled costs, reservations never
    /// settled, and calls in flight at their reserved worst case.
    pub fn spent(&self) -> Usd {
        self.lock().spent()
    }

    /// Budget left (`None`: no budget).
    pub fn remaining(&self) -> Option<Usd> {
        self.budget
            .map(|b| b.saturating_sub(self.spent()).max(Usd::ZERO))
    }

    /// Calls settled by this Governor.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Things the user should know (unknown price, a torn ledger line dropped).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// True when the model has no known price (calls are not budget-limited; see warnings).
    pub fn price_unknown(&self) -> bool {
        self.price.is_none()
    }

    /// The ledger's contents as on disk.
    pub fn ledger(&self) -> Result<LedgerContents, GovernorError> {
        LedgerContents::read(self.ledger.path())
    }

    /// Sends one request to the pinned model: free-only check → reserve (ledger) → pinned model
    /// id and budget-lowered `max_tokens` → send → served-model check → settle (ledger) →
    /// free-only cost check.
    pub async fn call(
        &self,
        session: &str,
        mut request: Request,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Response, GovernorError> {
        if self.free_only {
            if let Some(err) = free_only_refusal(&self.model, self.price.as_ref()) {
                return Err(err);
            }
        }
        let (call, plan) = self.reserve(session, &request)?;
        let reserve_entry = self.entry(EntryKind::Reserve, &call, session, &plan);
        if let Err(e) = self.ledger.append(&reserve_entry) {
            let mut st = self.lock();
            st.in_flight = st.in_flight.saturating_sub(plan.reserved);
            return Err(e);
        }

        request.model = self.model.model_id().to_string();
        request.max_tokens = plan.max_tokens;
        let result = self.client.send(&request, on_event).await;

        let response = match result {
            Ok(r) => r,
            Err(e) => {
                let billed = may_have_billed(&e);
                let cost = if billed { plan.reserved } else { Usd::ZERO };
                let mut entry = self.entry(EntryKind::Settle, &call, session, &plan);
                entry.cost = cost;
                entry.cost_usd = cost.to_string();
                entry.note = Some(if billed {
                    format!("failed after the request may have been billed, settled at the reservation: {e}")
                } else {
                    format!("refused by the provider, nothing billed: {e}")
                });
                self.settle(&entry, &plan, None)?;
                return Err(GovernorError::Provider(e));
            }
        };

        let asked = self.model.model_id();
        let pinned = self.model.provider() == &Provider::Replay
            || served_model_matches(
                self.model.provider(),
                asked,
                &response.served_model,
                self.local,
            );
        let (cost, price_note) = self.cost_of(&response, pinned);
        let mut entry = self.entry(EntryKind::Settle, &call, session, &plan);
        entry.model_served = Some(response.served_model.clone());
        let u = &response.usage;
        entry.input_tokens = u.input_tokens;
        entry.output_tokens = u.output_tokens;
        entry.cache_read_tokens = u.cache_read_tokens;
        entry.cache_write_tokens = u.cache_write_tokens;
        entry.estimated = u.estimated;
        entry.request_id = response.request_id.clone();
        entry.cost = cost;
        entry.cost_usd = cost.to_string();
        let mut notes: Vec<String> = price_note.into_iter().collect();
        if !pinned {
            notes.push(format!(
                "pin violation: asked {asked}, served {:?}",
                response.served_model
            ));
        }
        if response.attempts > 1 {
            notes.push(format!(
                "answered on attempt {}; failed earlier attempts may have been billed by the provider and are not counted",
                response.attempts
            ));
        }
        entry.note = (!notes.is_empty()).then(|| notes.join("; "));
        let remember = (pinned && !u.estimated)
            .then(|| PreviousCall::new(&request, u.total_input(), u.output_tokens));
        self.settle(&entry, &plan, remember.map(|p| (session, p)))?;

        if !pinned {
            let err = GovernorError::PinViolation {
                asked: asked.to_string(),
                served: response.served_model.clone(),
            };
            self.stop(&err, exit::PIN);
            return Err(err);
        }
        if self.free_only && !cost.is_zero() {
            let err = GovernorError::FreeOnlyViolation {
                model: self.model.to_string(),
                detail: format!(
                    "the provider reported a cost of {cost} for a call to {} (recorded in the ledger); stopping",
                    self.model
                ),
            };
            self.stop(&err, exit::BUDGET);
            return Err(err);
        }
        Ok(response)
    }

    fn stop(&self, err: &GovernorError, code: i32) {
        self.lock().stopped = Some((err.to_string(), code));
    }

    /// Plans the call under the state lock and counts its reservation as in flight.
    fn reserve(
        &self,
        session: &str,
        request: &Request,
    ) -> Result<(String, Reservation), GovernorError> {
        let mut st = self.lock();
        if let Some((reason, code)) = &st.stopped {
            return Err(GovernorError::Stopped {
                reason: reason.clone(),
                code: *code,
            });
        }
        let bound = input_upper_bound(st.sessions.get(session), request);
        let plan = match (&self.price, self.budget) {
            (Some(p), budget) => {
                let remaining = budget.map(|b| b.saturating_sub(st.spent()));
                reserve(&p.price, bound, request.max_tokens, remaining).map_err(|s| {
                    GovernorError::BudgetExhausted {
                        spent: st.spent(),
                        limit: budget.unwrap_or(Usd::ZERO),
                        needed: s.needed,
                    }
                })?
            }
            (None, None) => Reservation {
                input_bound: bound,
                max_tokens: request.max_tokens,
                reserved: Usd::ZERO,
            },
            (None, Some(_)) => {
                return Err(GovernorError::UnknownPrice {
                    model: self.model.to_string(),
                })
            }
        };
        st.next_call += 1;
        st.in_flight = st.in_flight.saturating_add(plan.reserved);
        Ok((format!("{}-{}", self.call_prefix, st.next_call), plan))
    }

    /// Writes the settle entry and moves the call from in flight to settled. If the entry
    /// cannot be written, the ledger still holds the reservation, so the reservation is what
    /// counts.
    fn settle(
        &self,
        entry: &LedgerEntry,
        plan: &Reservation,
        remember: Option<(&str, PreviousCall)>,
    ) -> Result<(), GovernorError> {
        let written = self.ledger.append(entry);
        let mut st = self.lock();
        st.in_flight = st.in_flight.saturating_sub(plan.reserved);
        let counted = if written.is_ok() {
            entry.cost
        } else {
            entry.cost.max(plan.reserved)
        };
        st.settled = st.settled.saturating_add(counted);
        st.calls += 1;
        if let Some((session, prev)) = remember {
            st.sessions.insert(session.to_string(), prev);
        }
        written
    }

    /// What a call cost: the usage at the pinned model's price (or, when another model
    /// answered and its known price is higher, at that price), and the provider-reported cost;
    /// the larger of the two.
    fn cost_of(&self, response: &Response, pinned: bool) -> (Usd, Option<String>) {
        let usage: &Usage = &response.usage;
        let mut price: Option<Price> = self.price.map(|p| p.price);
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
        let computed = price.map(|p| p.cost(usage));
        (settlement(computed, usage.reported_cost), note)
    }

    fn entry(&self, kind: EntryKind, call: &str, session: &str, plan: &Reservation) -> LedgerEntry {
        LedgerEntry {
            kind,
            time: now_rfc3339(),
            call: call.to_string(),
            session: session.to_string(),
            model_asked: self.model.to_string(),
            model_served: None,
            input_tokens: if kind == EntryKind::Reserve {
                plan.input_bound
            } else {
                0
            },
            output_tokens: if kind == EntryKind::Reserve {
                u64::from(plan.max_tokens)
            } else {
                0
            },
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost: Usd::ZERO,
            cost_usd: Usd::ZERO.to_string(),
            reserved: plan.reserved,
            request_id: None,
            estimated: false,
            note: None,
        }
    }
}
