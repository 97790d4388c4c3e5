//! The live view on a real terminal: `loopwright run` in a pseudo-terminal of 80 columns, its
//! output rendered by a terminal emulator (the `vt100` crate), and every row of the final
//! screen checked — no fragment of the live area is left, the model's text is there, a failed
//! command is marked failed, and the model's escape sequences did not drive the terminal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::three_scripts::*;
use serde_json::json;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use testkit::{FakeServer, Script, Turn};

const COLS: u16 = 80;
const ROWS: u16 = 400;

/// A pseudo-terminal of `ROWS` x `COLS`: (master, slave).
fn pty() -> (std::fs::File, OwnedFd) {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let size = libc::winsize {
        ws_row: ROWS,
        ws_col: COLS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors into the integers given; the size is read only.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned here only.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    }
}

fn build(n: usize) -> Vec<Turn> {
    vec![
        call(
            "write_file",
            json!({"path": format!("{}.py", NAMES[n]), "content": format!("print({})\n", n + 1)}),
        ),
        call("verify_feature", json!({"id": format!("F{}", n + 1)})),
        Turn::text(format!("F{} works.", n + 1)),
    ]
}

#[test]
fn run_at_80_columns_leaves_no_fragment_of_the_live_area() {
    let w = world();
    let long = "This line of model text is deliberately longer than eighty columns so that it wraps on the terminal.";
    let mut turns = planning_turns();
    turns.extend(vec![
        call("bash", json!({"command": "python3 -c 'import sys; sys.exit(3)'"})),
        Turn::text(format!(
            "First I looked around.\nThe clear-screen sequence \x1b[2J\x1b[H must not clear anything.\n{long}"
        )),
    ]);
    turns.extend(build(0));
    turns.extend(build(1));
    turns.extend(build(2));
    let server = FakeServer::start_blocking(Script::turns(turns));

    let (mut master, slave) = pty();
    let mut cmd = run_cmd(&w, &server, &["--budget", "5"]);
    cmd.env("TERM", "xterm-256color")
        .env("NO_COLOR", "1")
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    let mut child = cmd.spawn().unwrap();
    drop(slave);
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match master.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                // EIO: every slave descriptor is closed (the run and its children ended).
                Err(_) => break,
            }
        }
        let _ = master.as_raw_fd();
        raw
    });
    let status = child.wait().unwrap();
    let raw = reader.join().unwrap();
    if let Ok(dump) = std::env::var("LIVE_VIEW_DUMP") {
        std::fs::write(dump, &raw).unwrap();
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(status.success(), "{text}");

    // The live area was drawn while the run went on...
    assert!(
        text.contains("building · session 2 · passing 0/3 · turn"),
        "the live area was never drawn:\n{text}"
    );
    // ...and nothing of it is left on the screen.
    let mut parser = vt100::Parser::new(
        std::num::NonZeroU16::new(ROWS).unwrap(),
        std::num::NonZeroU16::new(COLS).unwrap(),
        0,
    );
    parser.process(&raw);
    let screen = parser.screen();
    let rows: Vec<String> = screen.rows(0, COLS).collect();
    let used: Vec<&String> = rows.iter().filter(|r| !r.trim().is_empty()).collect();
    assert!(used.len() > 10, "{rows:#?}");
    for row in &rows {
        assert!(row.chars().count() <= usize::from(COLS));
        assert!(
            !row.contains(" · turn ") && !row.contains("asking the model"),
            "a fragment of the live area is left: {row:?}\n{}",
            screen.contents()
        );
        let first = row.trim_start().chars().next().unwrap_or(' ');
        assert!(
            !('\u{2800}'..='\u{28ff}').contains(&first),
            "a spinner is left: {row:?}"
        );
    }
    let contents = screen.contents();
    let first_line = rows
        .iter()
        .position(|r| r.starts_with("loopwright run: anthropic/claude-sonnet-4-5"));
    let clear_screen = rows
        .iter()
        .position(|r| r.starts_with("The clear-screen sequence"));
    assert!(
        first_line.is_some() && first_line < clear_screen,
        "what came before the model's clear-screen sequence is still there: {contents}"
    );
    for expected in [
        "First I looked around.",
        "The clear-screen sequence",
        "✗ bash: python3 -c 'import sys; sys.exit(3)' → exit 3",
        "✓ feature F1 passes (passing 1/3)",
        "✓ feature F3 passes (passing 3/3)",
        "F2 works.",
        "loopwright: complete: every feature passes — passing 3/3, spent $",
        "of $5.00",
    ] {
        assert!(
            contents.contains(expected),
            "{expected:?} missing:\n{contents}"
        );
    }
    // The long line wrapped whole onto the next row.
    let joined = rows.join("");
    assert!(joined.contains(long), "{contents}");
    // NO_COLOR: no colour codes.
    assert!(!text.contains("\x1b[31m") && !text.contains("\x1b[32m"));
}
