//! Limits on what the policy will parse.

/// How deep `bash -c` strings and substitutions may nest before the command is refused.
pub(crate) const MAX_DEPTH: usize = 8;
