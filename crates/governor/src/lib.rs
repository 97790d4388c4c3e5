//! The one door to the model. Every model request in loopwright goes through a [`Governor`]:
//! it pins the configured model ([`ModelRef`]) and checks the model that answered, prices calls
//! from a catalog ([`PriceCatalog`]: config overrides > refreshed OpenRouter cache > built-in),
//! reserves each call's worst-case cost against the budget before sending ([`budget`]),
//! enforces free-only mode, and records every reservation and settlement in an append-only,
//! fsynced ledger ([`Ledger`]).
//!
//! Rules worth knowing (each is documented where it is implemented):
//! - Pinning ([`pin`]): exact id, the provider's dated snapshot of an alias, OpenRouter's id
//!   without its `:variant`, Ollama's `:latest`; an empty served model only from local servers.
//!   A mismatch is settled (at the higher of the pinned and served model's price) and stops the
//!   Governor ([`ErrorKind::PinViolation`]).
//! - Reservation ([`budget`]): input bound × the dearest input price + `max_tokens` × output
//!   price; `max_tokens` is lowered to fit; refused below [`MIN_ANSWER_TOKENS`]
//!   ([`ErrorKind::Budget`]).
//! - Attempts ([`retry`], [`charge`]): the Governor retries, not the wire client, and every
//!   attempt is reserved and settled in the ledger as its own entry. An answer settles at the
//!   larger of the provider-reported cost and the usage at our price; an attempt that sent
//!   nothing at zero; a refusal (HTTP error status) at zero unless its body reports usage; a
//!   torn attempt at what it may have cost (see [`charge`]). A retry the budget cannot pay for
//!   is not made. Usage above what was asked is recorded as reported, flagged, and stops the
//!   Governor ([`ErrorKind::Overbilled`]).
//! - Deadlines and cancellation: each attempt has a first-byte, an idle and a per-call deadline
//!   (per provider, long for local servers); [`Governor::call`] takes a cancellation token that
//!   aborts the attempt in flight, settled as torn ([`ErrorKind::Cancelled`]).
//! - Free-only: a model not known to cost zero is refused before anything is sent, and a
//!   non-zero cost reported for a call stops the Governor after the ledger records it
//!   ([`ErrorKind::Budget`] both times: free-only is a budget of zero).
//! - Unknown price: refused under a budget ([`ErrorKind::BadInput`]); allowed without one,
//!   with a warning.
//! - The ledger ([`ledger`]) carries a running total and a hash chain, checked on every read.
//!
//! Errors carry an [`ErrorKind`]; exit codes are the CLI's.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod budget;
pub mod charge;
pub mod error;
pub mod governor;
pub mod ledger;
pub mod model_ref;
pub mod pin;
pub mod pricing;
pub mod provider;
pub mod retry;

pub use budget::{Reservation, MIN_ANSWER_TOKENS, REQUEST_OVERHEAD_TOKENS};
pub use charge::AttemptOutcome;
pub use error::{ErrorKind, GovernorError};
pub use governor::{Governor, GovernorConfig, GovernorSettings, Settled};
pub use ledger::{EntryKind, Ledger, LedgerContents, LedgerEntry, SessionTotals};
pub use model_ref::{ModelRef, ModelRefError, Provider};
pub use pin::served_model_matches;
pub use pricing::{
    refresh_openrouter_catalog, CatalogEntry, OpenRouterCatalog, Price, PriceCatalog,
    PriceOverride, PriceSource, PricedModel, PricingOverrides,
};
pub use provider::{
    openrouter_catalog_client, resolve_provider, Connection, ProviderConfig, ProvidersConfig,
    ResolvedProvider,
};
pub use retry::RetryPolicy;
