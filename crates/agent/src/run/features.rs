//! The feature list: what planning records, how it is validated, and each feature's status.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One feature as the planning session records it through `add_features`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub id: String,
    #[serde(default)]
    pub category: String,
    pub description: String,
    #[serde(default)]
    pub steps: Vec<String>,
    /// A shell command that exits 0 exactly when the feature works.
    pub check: String,
    /// Files the check relies on; frozen after planning.
    #[serde(default)]
    pub test_files: Vec<String>,
}

/// What the harness knows about a feature's check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureStatus {
    pub passes: bool,
    /// The session whose `verify_feature` (or end-of-session re-check) first made it pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_in: Option<u32>,
    /// The last session in which its check ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_in: Option<u32>,
    /// How often a passing feature was found failing again at a session's end.
    #[serde(default)]
    pub regressions: u32,
    /// Its check passed in a session whose work is not committed yet: it is recorded as
    /// passing only once the commit is made (a resume commits first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncommitted: bool,
}

impl FeatureStatus {
    /// Passing, and backed by a commit.
    pub fn recorded_passing(&self) -> bool {
        self.passes && !self.uncommitted
    }
}

/// Checks one feature's own fields; returns every problem found, worded for the model.
pub fn field_problems(f: &Feature) -> Vec<String> {
    let mut problems = Vec::new();
    let id = f.id.trim();
    if id.is_empty() {
        problems.push("a feature has an empty `id`".to_string());
    } else if id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        problems.push(format!(
            "feature id {:?} must be 1-64 characters of letters, digits, '-', '_' or '.'",
            f.id
        ));
    }
    if f.description.trim().is_empty() {
        problems.push(format!("feature {:?} has an empty `description`", f.id));
    }
    if f.check.trim().is_empty() {
        problems.push(format!(
            "feature {:?} has an empty `check`; give a shell command that exits 0 when the feature works",
            f.id
        ));
    }
    for t in &f.test_files {
        if t.trim().is_empty() {
            problems.push(format!(
                "feature {:?} lists an empty path in `test_files`",
                f.id
            ));
        }
    }
    problems
}

/// Ids that appear twice, within `batch` or between `batch` and `existing`.
pub fn duplicate_ids(existing: &[Feature], batch: &[Feature]) -> Vec<String> {
    let mut seen: BTreeSet<&str> = existing.iter().map(|f| f.id.as_str()).collect();
    let mut dups = Vec::new();
    for f in batch {
        if !seen.insert(f.id.as_str()) {
            dups.push(f.id.clone());
        }
    }
    dups
}

/// A Markdown table of the features for prompts and `status`.
pub fn feature_table(
    features: &[Feature],
    status: &std::collections::BTreeMap<String, FeatureStatus>,
) -> String {
    let mut out = String::from("| id | passing | description |\n| --- | --- | --- |\n");
    for f in features {
        let passes = status.get(&f.id).map(|s| s.passes).unwrap_or(false);
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            f.id,
            if passes { "yes" } else { "no" },
            f.description.replace('|', "\\|").replace('\n', " ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feat(id: &str, check: &str) -> Feature {
        Feature {
            id: id.into(),
            category: "functional".into(),
            description: "does a thing".into(),
            steps: vec![],
            check: check.into(),
            test_files: vec![],
        }
    }

    #[test]
    fn field_problems_name_the_feature() {
        assert!(field_problems(&feat("F1", "true")).is_empty());
        let p = field_problems(&feat("F 1", ""));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("F 1"));
        assert!(p[1].contains("empty `check`"));
    }

    #[test]
    fn duplicates_found_within_and_across_batches() {
        let existing = vec![feat("F1", "true")];
        let batch = vec![feat("F2", "true"), feat("F1", "true"), feat("F2", "true")];
        assert_eq!(
            duplicate_ids(&existing, &batch),
            vec!["F1".to_string(), "F2".to_string()]
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: Result<Feature, _> =
            serde_json::from_str(r#"{"id":"F1","description":"d","check":"true","passes":true}"#);
        assert!(
            r.is_err(),
            "a model must not be able to smuggle in `passes`"
        );
    }
}
