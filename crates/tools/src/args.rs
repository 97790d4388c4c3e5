//! Reading a tool's JSON input with errors the model can act on ("missing required argument
//! `path` (string)"), instead of serde's messages about structs it never saw.

use serde_json::{Map, Value};

/// The arguments of one tool call, checked against the names the tool accepts.
pub(crate) struct Args<'a> {
    tool: &'static str,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// Accepts only a JSON object whose keys are all in `allowed`. The llm layer hands over
    /// `{"__invalid_json": "<raw text>"}` when the model's arguments did not parse.
    pub(crate) fn parse(
        tool: &'static str,
        input: &'a Value,
        allowed: &[&str],
    ) -> Result<Args<'a>, String> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let expected = allowed.join(", ");
        // Some models send `null` for a call without arguments.
        let map = match input {
            Value::Null => Some(EMPTY.get_or_init(Map::new)),
            other => other.as_object(),
        };
        let Some(map) = map else {
            return Err(format!(
                "{tool}: the input must be a JSON object with the arguments ({expected}), got {}",
                type_name(input)
            ));
        };
        if let Some(raw) = map.get("__invalid_json") {
            let raw = raw.as_str().unwrap_or_default();
            return Err(format!(
                "{tool}: the tool input was not valid JSON ({}); send one JSON object with the \
                 arguments ({expected}), with strings escaped",
                preview(raw, 200)
            ));
        }
        let mut unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(format!(
                "{tool}: unknown argument{} `{}`; the arguments are: {expected}",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join("`, `")
            ));
        }
        Ok(Args { tool, map })
    }

    /// A present, non-null value.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn required_str(&self, key: &str) -> Result<&'a str, String> {
        match self.get(key) {
            None => Err(format!(
                "{}: missing required argument `{key}` (string)",
                self.tool
            )),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.wrong_type(key, "a string", v)),
        }
    }

    pub(crate) fn optional_str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "a string", v)),
        }
    }

    pub(crate) fn optional_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "true or false", v)),
        }
    }

    /// A positive whole number (`10` or `10.0`; not `"10"`, `0` or `-1`).
    pub(crate) fn optional_positive_int(&self, key: &str) -> Result<Option<u64>, String> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = match v.as_u64() {
            Some(n) => Some(n),
            None => v
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64),
        };
        match n {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(self.wrong_type(key, "a whole number of at least 1", v)),
        }
    }

    fn wrong_type(&self, key: &str, wanted: &str, got: &Value) -> String {
        format!(
            "{}: argument `{key}` must be {wanted}, got {} {}",
            self.tool,
            type_name(got),
            preview(&got.to_string(), 80)
        )
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most `max` chars of `s`, with "…" when cut.
pub(crate) fn preview(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}
