//! Stopping early on a signal. The first signal (Ctrl-C's SIGINT, or SIGTERM and SIGHUP, which
//! systemd, docker, Kubernetes and a closed terminal send) asks for the step under way to end:
//! a model call in flight is abandoned and settled by the Governor, a tool call finishes, then
//! the run saves its state and stops. A second signal stops at once: whoever watches the
//! signals waits for the Governor to settle the call in flight, runs the hook the run
//! registered ([`Interrupt::on_hard_stop`], which saves a stop record), and leaves.

use serde::{Deserialize, Serialize};
use std::sync::{Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Signal {
    /// Ctrl-C.
    #[serde(rename = "SIGINT")]
    Interrupt,
    /// What service managers and container runtimes send to stop a process.
    #[serde(rename = "SIGTERM")]
    Terminate,
    /// The terminal went away (or a manager asked for a reload).
    #[serde(rename = "SIGHUP")]
    Hangup,
}

impl Signal {
    /// `SIGINT`, `SIGTERM`, `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signal::Interrupt => f.write_str("Ctrl-C (SIGINT)"),
            other => f.write_str(other.name()),
        }
    }
}

type HardStop = Box<dyn FnOnce(Signal) + Send>;

/// A request to stop early, shared between the signal watcher and the run.
#[derive(Default)]
pub struct Interrupt {
    token: CancellationToken,
    signal: Mutex<Option<Signal>>,
    hard_stop: Mutex<Option<HardStop>>,
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupt")
            .field("signal", &self.signal())
            .finish_non_exhaustive()
    }
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// The token sessions and the Governor watch: cancelled by the first signal.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The first signal: remembered, and the token cancelled. Returns whether it was the first.
    pub fn request(&self, signal: Signal) -> bool {
        let first = {
            let mut slot = self.signal.lock().unwrap_or_else(PoisonError::into_inner);
            let first = slot.is_none();
            slot.get_or_insert(signal);
            first
        };
        self.token.cancel();
        first
    }

    /// The signal that asked to stop, if one did.
    pub fn signal(&self) -> Option<Signal> {
        *self.signal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What to do when a second signal stops the process at once (the run saves a stop record
    /// of the state it shares); replaces an earlier hook.
    pub fn on_hard_stop(&self, hook: impl FnOnce(Signal) + Send + 'static) {
        *self
            .hard_stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(hook));
    }

    /// Forgets the hook (the run it saves has returned).
    pub fn clear_hard_stop(&self) {
        self.hard_stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Runs the registered hook, once (the caller leaves the process right after).
    pub fn hard_stop(&self, signal: Signal) {
        let hook = self
            .hard_stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(hook) = hook {
            hook(signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_first_signal_is_kept_and_the_hook_runs_once() {
        let interrupt = Interrupt::new();
        assert!(!interrupt.token().is_cancelled());
        assert!(interrupt.request(Signal::Terminate));
        assert!(!interrupt.request(Signal::Interrupt));
        assert!(interrupt.token().is_cancelled());
        assert_eq!(interrupt.signal(), Some(Signal::Terminate));
        let ran = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ran);
        interrupt.on_hard_stop(move |s| seen.lock().unwrap().push(s));
        interrupt.hard_stop(Signal::Hangup);
        interrupt.hard_stop(Signal::Hangup);
        assert_eq!(*ran.lock().unwrap(), vec![Signal::Hangup]);
        assert_eq!(
            serde_json::to_value(Signal::Hangup).unwrap(),
            serde_json::json!("SIGHUP")
        );
        assert_eq!(Signal::Interrupt.to_string(), "Ctrl-C (SIGINT)");
    }
}
