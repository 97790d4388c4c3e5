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
//!   Governor: exit 4.
//! - Reservation ([`budget`]): input bound × the dearest input price + `max_tokens` × output
//!   price; `max_tokens` is lowered to fit; refused below [`MIN_ANSWER_TOKENS`] (exit 3).
//! - Settlement: the larger of the provider-reported cost and the usage at our price. A failed
//!   call settles at zero when the provider refused it (HTTP error status), at its reservation
//!   when it may have been billed (cut stream, transport error, retries exhausted).
//! - Free-only: a model not known to cost zero is refused before anything is sent, and a
//!   non-zero cost reported for a call stops the Governor after the ledger records it: exit 3
//!   both times (free-only is a budget of zero).
//! - Unknown price: refused under a budget (exit 2); allowed without one, with a warning.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod budget;
pub mod error;
pub mod governor;
pub mod ledger;
pub mod model_ref;
pub mod pin;
pub mod pricing;
pub mod provider;

pub use budget::{Reservation, MIN_ANSWER_TOKENS, REQUEST_OVERHEAD_TOKENS};
pub use error::GovernorError;
pub use governor::{Governor, GovernorConfig, GovernorSettings};
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
