//! `-q` / `-v` and `RUST_LOG`: how much the program says on stderr. Diagnostics go through
//! `tracing` to stderr; `RUST_LOG` (an `EnvFilter` directive such as `loopwright=debug`) wins
//! over `-v`. `NO_COLOR` (or stderr not being a terminal) turns colour off.

use std::sync::atomic::{AtomicI8, Ordering};

static LEVEL: AtomicI8 = AtomicI8::new(0);

/// -1 quiet, 0 normal, 1.. verbose.
pub fn level() -> i8 {
    LEVEL.load(Ordering::Relaxed)
}

/// `-q`: only errors and the final line.
pub fn quiet() -> bool {
    level() < 0
}

/// Whether colour may be used on stderr: it is a terminal and `NO_COLOR` is unset or empty.
pub fn color_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Records the level and installs the `tracing` subscriber (stderr).
pub fn init(level: i8) {
    LEVEL.store(level, Ordering::Relaxed);
    let default = match level {
        ..=-1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Fails only when a subscriber is already installed; then that one is used.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color_on_stderr())
        .with_target(true)
        .try_init();
}
