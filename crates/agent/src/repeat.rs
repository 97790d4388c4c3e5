//! Noticing a model that goes round in circles: the same tool call (name + canonical input) with
//! the same result, again and again.

use crate::session::Repeated;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use tools::ToolOutcome;

/// Counts identical (call, result) pairs over a session.
#[derive(Debug)]
pub(crate) struct RepeatDetector {
    limit: u32,
    seen: HashMap<u64, u32>,
}

impl RepeatDetector {
    /// `limit` identical pairs earn a nudge; `limit + 1` end the session. 0 turns detection off.
    pub(crate) fn new(limit: u32) -> RepeatDetector {
        RepeatDetector {
            limit,
            seen: HashMap::new(),
        }
    }

    pub(crate) fn record(
        &mut self,
        name: &str,
        input: &serde_json::Value,
        outcome: &ToolOutcome,
    ) -> Repeated {
        if self.limit == 0 {
            return Repeated::No;
        }
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        canonical(input).hash(&mut h);
        outcome.content.hash(&mut h);
        outcome.is_error.hash(&mut h);
        let count = self.seen.entry(h.finish()).or_insert(0);
        *count += 1;
        match *count {
            n if n > self.limit => Repeated::End,
            n if n == self.limit => Repeated::Nudge,
            _ => Repeated::No,
        }
    }
}

/// JSON text with object keys sorted at every level, so `{"a":1,"b":2}` and `{"b":2,"a":1}`
/// count as the same input.
pub(crate) fn canonical(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(content: &str) -> ToolOutcome {
        ToolOutcome {
            content: content.into(),
            is_error: false,
            summary: String::new(),
            exit_code: None,
            frozen_restored: Vec::new(),
        }
    }

    #[test]
    fn key_order_does_not_matter() {
        assert_eq!(
            canonical(&json!({"b": [1, {"y": 2, "x": 1}], "a": "s"})),
            canonical(&json!({"a": "s", "b": [1, {"x": 1, "y": 2}]}))
        );
    }

    #[test]
    fn nudges_at_the_limit_and_ends_past_it() {
        let mut d = RepeatDetector::new(3);
        let input = json!({"command": "ls"});
        assert_eq!(d.record("bash", &input, &outcome("a")), Repeated::No);
        assert_eq!(d.record("bash", &input, &outcome("b")), Repeated::No);
        assert_eq!(d.record("bash", &input, &outcome("a")), Repeated::No);
        assert_eq!(d.record("bash", &input, &outcome("a")), Repeated::Nudge);
        assert_eq!(d.record("bash", &input, &outcome("a")), Repeated::End);
        assert_eq!(d.record("read_file", &input, &outcome("a")), Repeated::No);
    }
}
