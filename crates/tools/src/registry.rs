//! [`Tool`]: one tool the model can call — its spec and its handler. [`ToolRegistry`]: the
//! tools of a session by name. The toolbox's six tools implement [`Tool`], and so do the tools
//! an orchestrator adds (`add_features`, `verify_feature`); a session offers and dispatches them
//! all through one registry.

use std::future::Future;
use std::pin::Pin;

use llm::ToolSpec;
use serde_json::Value;

use crate::outcome::ToolOutcome;

/// A boxed future, so [`Tool`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One tool the model can call.
pub trait Tool: Send + Sync {
    /// Its name, description and input schema, for the model request.
    fn spec(&self) -> ToolSpec;

    /// Runs one call. Never fails as a Rust error: bad arguments, refusals and I/O errors come
    /// back as `is_error: true` with a message that says what to do instead.
    fn call<'a>(&'a self, input: &'a Value) -> BoxFuture<'a, ToolOutcome>;
}

/// Tools by name, in the order they were registered (the order the model sees them in).
#[derive(Default)]
pub struct ToolRegistry<'a> {
    tools: Vec<(String, &'a dyn Tool)>,
}

impl std::fmt::Debug for ToolRegistry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl<'a> ToolRegistry<'a> {
    pub fn new() -> ToolRegistry<'a> {
        ToolRegistry::default()
    }

    /// Adds `tool`; one with the name of a tool registered earlier takes its place.
    pub fn register(&mut self, tool: &'a dyn Tool) {
        let name = tool.spec().name;
        match self.tools.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = tool,
            None => self.tools.push((name, tool)),
        }
    }

    /// The names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The specs, in order, for the model request.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|(_, t)| t.spec()).collect()
    }

    /// Runs a call of the tool named `name`; an unknown name comes back as an error outcome
    /// that lists the tools.
    pub async fn call(&self, name: &str, input: &Value) -> ToolOutcome {
        match self.tools.iter().find(|(n, _)| n == name) {
            Some((_, tool)) => tool.call(input).await,
            None => {
                let shown = crate::args::preview(name, 60);
                let mut outcome = ToolOutcome::failure(
                    "unknown tool",
                    format!(
                        "there is no tool named `{shown}`; the tools are: {}",
                        self.names().join(", ")
                    ),
                );
                outcome.summary = format!("{shown}: unknown tool");
                outcome
            }
        }
    }
}
