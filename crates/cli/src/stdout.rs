//! Standard output for commands that print a result (`status`, `models`, `report`, `man`...).
//! Rust ignores SIGPIPE, so a reader that goes away (`loopwright models --json | head`) turns
//! every later write into an error; `println!` would panic on it. Here the command ends quietly
//! instead, with exit 0, as `cat` would. (The harness keeps SIGPIPE ignored: restoring the
//! default would let a closed socket or a child's closed stdin kill a run.)

use std::io::Write;

/// Writes `text` to stdout; a closed reader ends the process quietly.
pub fn write(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        quit_on_broken_pipe(&e);
    }
}

/// Ends the process (exit 0, nothing printed) when `e` says the reader of stdout went away.
pub fn quit_on_broken_pipe(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(crate::exit::code::OK);
    }
}

/// `println!` for results: [`write`] of the formatted line.
macro_rules! outln {
    () => { $crate::stdout::write("\n") };
    ($($arg:tt)*) => { $crate::stdout::write(&format!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use outln;
