//! The one door to the model. Every model request in loopwright goes through a [`Governor`]:
//! it pins the configured model ([`ModelRef`]) and checks the model that answered, prices calls
//! from a catalog ([`PriceCatalog`]: config overrides > refreshed OpenRouter cache > built-in),
//! reserves each call's worst-case cost against the budget before sending ([`budget`]),
//! enforces free-only mode, and records every reservation and settlement in an append-only,
//! fsynced ledger ([`Ledger`]).
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
