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
                let mut message = format!(
                    "there is no tool named `{shown}`; the tools are: {}",
                    self.names().join(", ")
                );
                if let Some(command) = program_call(name, input) {
                    message.push_str(&format!(
                        ". To run a program, call `bash`: {{\"command\": {}}}",
                        Value::String(command)
                    ));
                }
                let mut outcome = ToolOutcome::failure("unknown tool", message);
                outcome.summary = format!("{shown}: unknown tool");
                outcome
            }
        }
    }
}

/// The `bash` command a call to an unknown tool named like a program stands for (small models
/// call `python3 {"path": "hello.py"}` as if programs were tools): the name and its string or
/// number arguments. `None` for names that are not program-like (tools are snake_case).
fn program_call(name: &str, input: &Value) -> Option<String> {
    let program_like = !name.is_empty()
        && name.len() <= 40
        && !name.contains('_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    if !program_like {
        return None;
    }
    let mut command = name.to_string();
    if let Value::Object(args) = input {
        for value in args.values() {
            match value {
                Value::String(s) if !s.is_empty() && s.len() <= 200 => {
                    command.push(' ');
                    command.push_str(s);
                }
                Value::Number(n) => {
                    command.push(' ');
                    command.push_str(&n.to_string());
                }
                _ => {}
            }
        }
    }
    Some(command)
}
