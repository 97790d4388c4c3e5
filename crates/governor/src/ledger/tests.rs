use super::*;
use crate::error::ErrorKind;

fn entry(kind: EntryKind, call: &str, session: &str, cost: i64, reserved: i64) -> LedgerEntry {
    let mut e = LedgerEntry::new(kind, call, 1, session, "anthropic/claude-sonnet-4-5");
    e.input_tokens = 10;
    e.output_tokens = 5;
    e.set_cost(Usd::from_nanos(cost));
    e.reserved = Usd::from_nanos(reserved);
    e
}

fn attempt(mut e: LedgerEntry, n: u32) -> LedgerEntry {
    e.attempt = n;
    e
}

/// An entry as an old ledger (before attempts, totals and links) wrote it.
fn old_line(kind: &str, call: &str, cost: i64, reserved: i64) -> String {
    format!(
        r#"{{"kind":"{kind}","time":"2026-01-01T00:00:00Z","call":"{call}","session":"s","model_asked":"m","model_served":null,"input_tokens":1,"output_tokens":1,"cache_read_tokens":0,"cache_write_tokens":0,"cost":{cost},"cost_usd":"{}","reserved":{reserved},"request_id":null,"estimated":false,"note":null}}"#,
        Usd::from_nanos(cost)
    )
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn corrupt_line(err: &GovernorError) -> usize {
    match err {
        GovernorError::LedgerCorrupt { line, .. } => *line,
        other => panic!("expected LedgerCorrupt, got {other}"),
    }
}

#[test]
fn appends_and_totals_by_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/ledger.jsonl");
    let (ledger, contents) = Ledger::open(&path).unwrap();
    assert!(contents.entries.is_empty());
    ledger
        .append(entry(EntryKind::Reserve, "c1", "s1", 0, 900))
        .unwrap();
    ledger
        .append(entry(EntryKind::Settle, "c1", "s1", 300, 900))
        .unwrap();
    ledger
        .append(entry(EntryKind::Reserve, "c2", "s2", 0, 700))
        .unwrap();
    ledger
        .append(entry(EntryKind::Settle, "c2", "s2", 100, 700))
        .unwrap();
    ledger
        .append(entry(EntryKind::Reserve, "c3", "s2", 0, 500))
        .unwrap(); // killed mid-call
    drop(ledger);

    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 5);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "reserve");
    assert_eq!(first["reserved"], 900);
    assert_eq!(first["attempt"], 1);
    assert_eq!(first["total"], 900);
    assert_eq!(first["prev"], "");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["total"], 900, "300 + 100 settled + 500 open");

    let c = LedgerContents::read(&path).unwrap();
    assert_eq!(c.entries.len(), 5);
    let t = c.totals_by_session();
    assert_eq!(t["s1"].spent.nanos(), 300);
    assert_eq!(t["s1"].calls, 1);
    assert_eq!(
        t["s2"].spent.nanos(),
        600,
        "the unsettled reservation counts at its reserved value"
    );
    assert_eq!(t["s2"].unsettled, 1);
    assert_eq!(c.total_spent().nanos(), 900);
}

#[test]
fn each_attempt_is_its_own_pair() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let (ledger, _) = Ledger::open(&path).unwrap();
    ledger
        .append(attempt(entry(EntryKind::Reserve, "c1", "s", 0, 900), 1))
        .unwrap();
    ledger
        .append(attempt(entry(EntryKind::Settle, "c1", "s", 900, 900), 1))
        .unwrap();
    ledger
        .append(attempt(entry(EntryKind::Reserve, "c1", "s", 0, 800), 2))
        .unwrap();
    ledger
        .append(attempt(entry(EntryKind::Settle, "c1", "s", 200, 800), 2))
        .unwrap();
    let c = LedgerContents::read(&path).unwrap();
    assert_eq!(c.total_spent().nanos(), 1100);
    let t = &c.totals_by_session()["s"];
    assert_eq!((t.calls, t.attempts, t.unsettled), (1, 2, 0));
    assert_eq!(t.spent.nanos(), 1100);
}

#[test]
fn torn_last_line_is_skipped_reported_and_cut_before_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let (ledger, _) = Ledger::open(&path).unwrap();
    ledger
        .append(entry(EntryKind::Reserve, "c1", "s", 0, 50))
        .unwrap();
    ledger
        .append(entry(EntryKind::Settle, "c1", "s", 20, 50))
        .unwrap();
    drop(ledger);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(br#"{"kind":"reserve","time":"2026-"#).unwrap();
    drop(f);

    let c = LedgerContents::read(&path).unwrap();
    assert_eq!(c.entries.len(), 2);
    assert!(c.torn_tail.as_deref().unwrap().starts_with("{\"kind\""));
    assert_eq!(c.total_spent().nanos(), 20);

    let (ledger, c) = Ledger::open(&path).unwrap();
    assert!(c.torn_tail.is_some(), "open reports the torn line");
    ledger
        .append(entry(EntryKind::Reserve, "c2", "s", 0, 70))
        .unwrap();
    drop(ledger);
    let c = LedgerContents::read(&path).unwrap();
    assert_eq!(c.entries.len(), 3, "the next entry is on its own line");
    assert_eq!(c.torn_tail, None);
    assert_eq!(c.total_spent().nanos(), 90);
}

#[test]
fn corruption_in_the_middle_is_an_error_and_nothing_is_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let good = old_line("settle", "c1", 20, 50);
    let body = format!("{good}\nthis is not json\n{good}\n");
    std::fs::write(&path, &body).unwrap();
    let err = LedgerContents::read(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("line 2"), "{msg}");
    assert!(msg.contains("ledger.jsonl"), "{msg}");
    assert_eq!(err.kind(), ErrorKind::BadInput);
    assert!(Ledger::open(&path).is_err());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        body,
        "a corrupt ledger is left as it was"
    );
}

#[test]
fn a_negative_amount_is_refused_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    // The attack of issue 10: an old-format settle line with a negative cost.
    write_lines(
        &path,
        &[
            old_line("reserve", "c1", 0, 50),
            old_line("settle", "c1", 20, 50),
            old_line("settle", "c2", -4_900_000_000, 0),
        ],
    );
    let err = LedgerContents::read(&path).unwrap_err();
    assert_eq!(corrupt_line(&err), 3);
    assert!(err.to_string().contains("negative"), "{err}");
    assert!(err.to_string().contains("-$4.900000"), "{err}");
    write_lines(&path, &[old_line("reserve", "c1", 0, -1)]);
    let err = Ledger::open(&path).unwrap_err();
    assert_eq!(corrupt_line(&err), 1);
    assert!(err.to_string().contains("reservation is negative"), "{err}");
    // A cost that is not a whole number of nano-dollars is malformed.
    write_lines(
        &path,
        &[old_line("reserve", "c1", 0, 5).replace(r#""reserved":5"#, r#""reserved":"five""#)],
    );
    assert_eq!(corrupt_line(&LedgerContents::read(&path).unwrap_err()), 1);
}

#[test]
fn a_cost_that_disagrees_with_its_display_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let edited = old_line("settle", "c1", 20, 50).replace(r#""cost":20"#, r#""cost":2"#);
    write_lines(&path, &[old_line("reserve", "c1", 0, 50), edited]);
    let err = LedgerContents::read(&path).unwrap_err();
    assert_eq!(corrupt_line(&err), 2);
    assert!(err.to_string().contains("cost_usd"), "{err}");
}

fn chained_ledger(path: &Path) -> Vec<String> {
    let (ledger, _) = Ledger::open(path).unwrap();
    for (call, cost) in [("c1", 300), ("c2", 200), ("c3", 100)] {
        ledger
            .append(entry(EntryKind::Reserve, call, "s", 0, 1000))
            .unwrap();
        ledger
            .append(entry(EntryKind::Settle, call, "s", cost, 1000))
            .unwrap();
    }
    lines(path)
}

#[test]
fn an_edited_removed_or_reordered_line_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let original = chained_ledger(&path);
    assert_eq!(
        LedgerContents::read(&path).unwrap().total_spent().nanos(),
        600
    );

    // A cost lowered, with its display and its own total made to agree: the next line's link
    // no longer matches.
    let mut edited = original.clone();
    edited[1] = edited[1]
        .replace(r#""cost":300"#, r#""cost":3"#)
        .replace("$0.000000300", "$0.000000003")
        .replace(r#""total":300"#, r#""total":3"#);
    write_lines(&path, &edited);
    assert_eq!(corrupt_line(&LedgerContents::read(&path).unwrap_err()), 3);

    // A settle line removed from the middle.
    let mut removed = original.clone();
    removed.remove(3);
    write_lines(&path, &removed);
    let err = LedgerContents::read(&path).unwrap_err();
    assert_eq!(corrupt_line(&err), 4);
    assert!(
        err.to_string().contains("does not match the line before"),
        "{err}"
    );

    // The first lines cut away.
    write_lines(&path, &original[2..]);
    let err = LedgerContents::read(&path).unwrap_err();
    assert_eq!(corrupt_line(&err), 1);
    assert!(
        err.to_string().contains("start of the ledger is missing"),
        "{err}"
    );

    // A running total that does not add up (link intact: the last line).
    let mut wrong = original.clone();
    let last = wrong.len() - 1;
    wrong[last] = wrong[last].replace(r#""total":600"#, r#""total":6"#);
    write_lines(&path, &wrong);
    let err = LedgerContents::read(&path).unwrap_err();
    assert_eq!(corrupt_line(&err), 6);
    assert!(err.to_string().contains("add up to $0.000000600"), "{err}");

    // An old-format line after chained ones.
    let mut spliced = original;
    spliced.push(old_line("settle", "c9", 0, 0));
    write_lines(&path, &spliced);
    assert_eq!(corrupt_line(&LedgerContents::read(&path).unwrap_err()), 7);
}

#[test]
fn old_ledgers_load_and_the_chain_starts_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    write_lines(
        &path,
        &[
            old_line("reserve", "c1", 0, 50),
            old_line("settle", "c1", 20, 50),
            old_line("reserve", "c2", 0, 70), // killed mid-call
        ],
    );
    let (ledger, c) = Ledger::open(&path).unwrap();
    assert_eq!(c.total_spent().nanos(), 90);
    assert_eq!(
        c.entries[0].attempt, 1,
        "no attempt field reads as the first"
    );
    ledger
        .append(entry(EntryKind::Reserve, "c3", "s", 0, 10))
        .unwrap();
    drop(ledger);
    let written: serde_json::Value = serde_json::from_str(lines(&path).last().unwrap()).unwrap();
    assert_eq!(
        written["total"], 100,
        "the old lines count in the running total"
    );
    let c = LedgerContents::read(&path).unwrap();
    assert_eq!(c.total_spent().nanos(), 100);
}

#[test]
fn an_emptied_or_truncated_ledger_is_short_of_the_last_known_total() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let original = chained_ledger(&path);
    let (ledger, c) = Ledger::open(&path).unwrap();
    let known = c.total_spent();
    assert_eq!(ledger.verify(known).unwrap(), known);

    // Cut after whole lines: every remaining line checks out, but spend was forgotten.
    write_lines(&path, &original[..2]);
    let err = ledger.verify(known).unwrap_err();
    assert!(
        matches!(err, GovernorError::LedgerShort { found, expected, .. }
            if found.nanos() == 300 && expected == known),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::BadInput);
    assert!(
        err.to_string().contains("truncated, emptied or replaced"),
        "{err}"
    );

    std::fs::write(&path, "").unwrap();
    let err = LedgerContents::read(&path)
        .unwrap()
        .verify_total_at_least(&path, known)
        .unwrap_err();
    assert!(matches!(err, GovernorError::LedgerShort { found, .. } if found == Usd::ZERO));
    std::fs::remove_file(&path).unwrap();
    assert!(
        ledger.verify(known).is_err(),
        "a deleted ledger is short too"
    );
    assert!(ledger.verify(Usd::ZERO).is_ok());
}

#[test]
fn missing_ledger_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let c = LedgerContents::read(&dir.path().join("none.jsonl")).unwrap();
    assert_eq!(c.total_spent(), Usd::ZERO);
}
