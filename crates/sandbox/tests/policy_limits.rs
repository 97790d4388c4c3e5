//! The policy's parser limits: no command, however deep, long or repetitive, crashes or stalls
//! the harness; each gets a clear refusal, and ordinary large commands still pass.
//!
//! Each case runs in the test's own thread (a 2 MiB stack): before the limits, several of these
//! inputs overflowed the stack and aborted the whole process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox::{CommandPolicy, PolicyContext, ProjectRoot};

fn project() -> (tempfile::TempDir, ProjectRoot) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    let root = ProjectRoot::new(dir.path()).unwrap();
    (dir, root)
}

fn refusal(command: &str) -> String {
    let (_dir, root) = project();
    match CommandPolicy::default().check(command, &root, &PolicyContext::default()) {
        Ok(()) => panic!(
            "a {}-byte command was allowed: {}…",
            command.len(),
            &command[..command.len().min(80)]
        ),
        Err(denial) => denial.reason,
    }
}

fn nest(open: &str, middle: &str, close: &str, depth: usize) -> String {
    format!("{}{middle}{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn deep_brace_groups_are_refused_not_a_crash() {
    // The input: `{ { … } }` 2000 deep, about 14 KB.
    let command = nest("{ ", "echo hi", " ; }", 2000);
    assert!(command.len() > 12_000);
    let reason = refusal(&command);
    assert!(reason.contains("nests too deeply"), "{reason}");
    assert!(reason.contains("limit of 100"), "{reason}");
    let reason = refusal(&nest("{ ", "true", "; }", 20_000));
    assert!(reason.contains("over the limit"), "{reason}");
}

#[test]
fn deep_command_substitutions_are_refused() {
    let reason = refusal(&format!("echo {}", nest("$( ", "true", " )", 10_000)));
    assert!(reason.contains("over the limit of 1000"), "{reason}");
    let reason = refusal(&format!("echo {}", nest("$( ", "true", " )", 500)));
    assert!(reason.contains("nests too deeply"), "{reason}");
    let reason = refusal(&format!("echo {}", nest("\"$(echo ", "x", ")\"", 300)));
    assert!(reason.contains("nests too deeply"), "{reason}");
    // Backquotes nest by escaping; deep ones are parsed level by level, and return.
    let mut command = String::from("x");
    for _ in 0..12 {
        command = format!(
            "`echo {}`",
            command.replace('\\', "\\\\").replace('`', "\\`")
        );
    }
    let (_dir, root) = project();
    let _ = CommandPolicy::default().check(
        &format!("echo {command}"),
        &root,
        &PolicyContext::default(),
    );
}

#[test]
fn deep_parentheses_and_arithmetic_are_refused() {
    for command in [
        nest("(", "true", ")", 50_000),
        nest("( ", "true", " )", 30_000),
        format!("(( {} ))", nest("(", "1", ")", 40_000)),
        format!("echo $(( {} ))", nest("(", "1", ")", 40_000)),
        format!("echo $[ {} ]", nest("(", "1", ")", 40_000)),
        format!("x[{}]=1", nest("(", "1", ")", 40_000)),
        format!("echo {}", nest("${a:-", "x", "}", 20_000)),
        format!("[[ {} ]]", nest("( ", "a", " )", 20_000)),
        format!("[[ {}a ]]", "! ".repeat(20_000)),
        nest("if true; then ", "true", "; fi", 5_000),
        nest("while true; do ", "true", "; done", 5_000),
        nest("case x in x) ", "true", ";; esac", 5_000),
        nest("f() { ", "true", "; }", 5_000),
        format!("{}true", "coproc ".repeat(5_000)),
    ] {
        let reason = refusal(&command);
        assert!(
            reason.contains("nests too deeply") || reason.contains("over the limit"),
            "{}…: {reason}",
            &command[..60]
        );
    }
}

#[test]
fn long_pipelines_and_lists_are_refused() {
    let reason = refusal(&format!("true{}", " | true".repeat(10_000)));
    assert!(reason.contains("over the limit"), "{reason}");
    let reason = refusal(&format!("true{}", " | true".repeat(200)));
    assert!(reason.contains("a pipeline of 201 commands"), "{reason}");
    let reason = refusal(&format!("true{}", " && true".repeat(15_000)));
    assert!(reason.contains("over the limit"), "{reason}");
    let reason = refusal(&format!("echo{}", " a".repeat(60_000)));
    assert!(reason.contains("over the limit"), "{reason}");
}

#[test]
fn here_document_bombs_are_refused() {
    // Ten thousand here-documents on one command.
    let command = format!("cat {}\n{}", "<<A ".repeat(10_000), "A\n".repeat(10_000));
    let reason = refusal(&command);
    assert!(reason.contains("over the limit"), "{reason}");
    // A body full of substitutions, each of which is parsed again.
    let command = format!("cat <<EOF\n{}\nEOF", "$(echo x) ".repeat(2_000));
    let reason = refusal(&command);
    assert!(reason.contains("over the limit"), "{reason}");
    // Here-documents inside substitutions inside here-documents.
    let mut command = String::from("echo x");
    for _ in 0..12 {
        command = format!("cat <<EOF\n$({command})\nEOF");
    }
    let reason = refusal(&command);
    assert!(reason.contains("nested too deeply"), "{reason}");
    // A body that nests deeply.
    let command = format!("cat <<EOF\n{}\nEOF", nest("$(", "x", ")", 400));
    let reason = refusal(&command);
    assert!(reason.contains("nests too deeply"), "{reason}");
}

#[test]
fn oversized_commands_are_refused_before_parsing() {
    let command = format!("echo '{}'", "x".repeat(200_000));
    let reason = refusal(&command);
    assert!(reason.contains("over the 131072-byte limit"), "{reason}");
    assert!(reason.contains("write_file"), "{reason}");
}

#[test]
fn repeated_reparsing_is_bounded() {
    // Each level of an assignment inside a substitution used to be parsed twice (2^depth).
    let payload = "true; ".repeat(8_000);
    let mut command = payload;
    for _ in 0..7 {
        command = format!("x=$({command})");
    }
    let (_dir, root) = project();
    // Allowed or refused, it returns.
    let _ = CommandPolicy::default().check(&command, &root, &PolicyContext::default());
    let mut command = String::from("true");
    for _ in 0..7 {
        command = format!("bash -c {}", shell_quote(&format!("{command}; {command}")));
    }
    let _ = CommandPolicy::default().check(&command, &root, &PolicyContext::default());
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn ordinary_large_and_nested_commands_still_pass() {
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    let context = PolicyContext::default();
    let big_file = "print('hello, world')  # (((\n".repeat(3_000);
    for command in [
        format!("cat > src/app.py <<'EOF'\n{big_file}EOF"),
        format!("cat > src/app.py <<EOF\n{big_file}EOF"),
        nest("{ ", "echo hi", " ; }", 30),
        nest("( ", "echo hi", " )", 30),
        format!("echo {}", nest("\"$(echo ", "x", ")\"", 4)),
        format!("echo $(( {} ))", nest("(", "1", ")", 40)),
        "for i in 1 2 3; do if [ \"$i\" = 2 ]; then echo two; else case $i in 1) echo one;; *) echo other;; esac; fi; done".to_string(),
        (0..300).map(|i| format!("echo line {i}\n")).collect(),
        format!("true{}", " | cat".repeat(50)),
    ] {
        if let Err(e) = policy.check(&command, &root, &context) {
            panic!("{}…: {e}", &command[..command.len().min(60)]);
        }
    }
}

/// Random mixtures of openers, closers and the things that hide them (quotes, comments,
/// here-documents, case patterns, escapes): every one returns, allowed or refused. A nesting
/// count that could be fooled into letting a deep input through would abort this test.
#[test]
fn adversarial_mixtures_never_crash() {
    const PIECES: &[&str] = &[
        "{ ",
        "( ",
        "$( ",
        "\"$(",
        "${a:-",
        "$((",
        "((",
        "if x; then ",
        "case x in a) ",
        "[[ ! ",
        "while x; do ",
        "f() { ",
        "coproc ",
        "`",
        "'",
        "\"",
        "$'",
        "\\",
        "# ",
        "\n",
        "<<E ",
        "<<'E' ",
        "\nE\n",
        ") ",
        "))",
        "; } ",
        "}",
        "; fi ",
        ";; esac ",
        " ]] ",
        "; done ",
        " && ",
        " | ",
        "x ",
        "=(",
        "a[",
        "]",
        ";",
    ];
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    let context = PolicyContext::default();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..300 {
        let len = 200 + (next() % 6_000) as usize;
        // Bias each case towards a few pieces so that some cases nest deeply.
        let favourites: Vec<usize> = (0..3).map(|_| (next() as usize) % PIECES.len()).collect();
        let mut command = String::new();
        for _ in 0..len {
            let r = next() as usize;
            let piece = if r.is_multiple_of(3) {
                PIECES[(r / 3) % PIECES.len()]
            } else {
                PIECES[favourites[(r / 3) % favourites.len()]]
            };
            command.push_str(piece);
        }
        let result = policy.check(&command, &root, &context);
        if let Err(denial) = result {
            assert!(!denial.reason.is_empty(), "case {case}");
        }
    }
}

/// Deep nests whose every level carries something that looks like a closer but is not one
/// (quoted, escaped, commented, in a here-document, a case pattern): the nesting count is not
/// fooled. Each of these nests is deep enough to overflow the parser thread's stack if it got
/// through to the parser.
#[test]
fn hidden_closers_do_not_hide_depth() {
    const NESTS: &[(&str, &str)] = &[
        ("{ ", ";}"),
        ("(", ")"),
        ("if :;then ", ";fi"),
        ("while :;do ", ";done"),
        ("case x in x)", ";;esac"),
        ("f(){ ", ";}"),
    ];
    const DECOYS: &[&str] = &[
        "",
        "echo ')}'\n",
        "echo \")}\";",
        "echo \\)\\};",
        "# ) } fi done esac\n",
        ":<<E\n) }\nfi\nE\n",
        ":<<'E'\n)\n}\nE\n",
        "case y in b);;esac;",
        "((1<<2));",
        "echo }\n",
    ];
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    for (open, close) in NESTS {
        for decoy in DECOYS {
            let depth = 126_000 / (open.len() + decoy.len() + close.len());
            let command = format!(
                "{}:{}",
                format!("{open}{decoy}").repeat(depth),
                close.repeat(depth)
            );
            let result = policy.check(&command, &root, &PolicyContext::default());
            let Err(denial) = result else {
                panic!("a {depth}-deep `{open}` nest with `{decoy:?}` was allowed");
            };
            assert!(
                denial.reason.contains("too deeply") || denial.reason.contains("over the limit"),
                "{open} {decoy:?}: {denial}"
            );
        }
    }
}
