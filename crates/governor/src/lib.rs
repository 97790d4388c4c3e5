//! governor (in progress).
