//! Capped capture of a child's output stream.

use std::time::Duration;

/// What one confined command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// `None` when killed by a signal (see `signal`) or by the timeout.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Captured output, capped: head and tail kept with an elision marker between.
    pub stdout: String,
    pub stderr: String,
    /// True when either stream was cut.
    pub truncated: bool,
    pub duration: Duration,
}

/// Keeps the first and last `cap / 2` bytes of a stream; memory stays bounded by `cap`.
#[derive(Debug)]
pub(crate) struct CappedBuffer {
    half: usize,
    head: Vec<u8>,
    /// Ring of the most recent bytes once `head` is full.
    tail: std::collections::VecDeque<u8>,
    total: u64,
}

impl CappedBuffer {
    pub(crate) fn new(cap: usize) -> CappedBuffer {
        let half = (cap / 2).max(1);
        CappedBuffer {
            half,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.head.len() < self.half {
            let take = (self.half - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        if data.len() >= self.half {
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.half..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(self.half);
        self.tail.drain(..overflow);
        self.tail.extend(data);
    }

    /// Bytes pushed so far.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Bytes dropped between head and tail.
    pub(crate) fn elided(&self) -> u64 {
        self.total - self.head.len() as u64 - self.tail.len() as u64
    }

    /// The captured text (lossy UTF-8) and whether anything was cut.
    pub(crate) fn finish(self) -> (String, bool) {
        let elided = self.elided();
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if elided > 0 {
            text.push_str(&format!("\n[... {elided} bytes elided ...]\n"));
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(a.len() + b.len());
        tail.extend_from_slice(a);
        tail.extend_from_slice(b);
        text.push_str(&String::from_utf8_lossy(&tail));
        (text, elided > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut b = CappedBuffer::new(16);
        b.push(b"hello");
        assert_eq!(b.finish(), ("hello".to_string(), false));
    }

    #[test]
    fn exact_cap_is_not_cut() {
        let mut b = CappedBuffer::new(10);
        b.push(b"0123456789");
        assert_eq!(b.finish(), ("0123456789".to_string(), false));
    }

    #[test]
    fn long_output_keeps_head_and_tail_across_chunks() {
        let mut b = CappedBuffer::new(8);
        for chunk in [&b"ab"[..], b"cdef", b"ghij", b"k", b"lmnop"] {
            b.push(chunk);
        }
        let (text, cut) = b.finish();
        assert!(cut);
        assert_eq!(text, "abcd\n[... 8 bytes elided ...]\nmnop");
    }
}
