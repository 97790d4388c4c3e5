//! `loopwright report` end to end: a priced run against the fake server, then the HTML file —
//! its content, and its rendering by headless Chromium (skipped with a message when no
//! browser is installed; `.ci/run` installs Debian's `chromium`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::loopwright;
use common::three_scripts::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use testkit::{FakeServer, Script, Turn};

/// A build session that implements and verifies feature `n` (0-based), or fails to.
fn build(n: usize, works: bool) -> Vec<Turn> {
    let content = if works {
        format!("print({})\n", n + 1)
    } else {
        "print('nope')\n".to_string()
    };
    vec![
        call(
            "write_file",
            json!({"path": format!("{}.py", NAMES[n]), "content": content}),
        ),
        call("verify_feature", json!({"id": format!("F{}", n + 1)})),
        Turn::text("Done for now."),
    ]
}

/// A finished three-feature run whose second build session achieved nothing; a feature
/// description carries markup the report must escape.
fn finished_run() -> World {
    let w = world();
    let mut plan = planning_turns();
    let mut f1 = feature(0);
    f1["description"] = json!("one.py prints 1 <script>alert('x')</script>");
    plan[1] = call(
        "add_features",
        json!({"features": [f1, feature(1), feature(2)]}),
    );
    let turns: Vec<Turn> = [
        plan,
        build(0, true),
        build(1, false),
        build(1, true),
        build(2, true),
    ]
    .into_iter()
    .flatten()
    .collect();
    let server = FakeServer::start_blocking(Script::turns(turns));
    run(&w, &server, &[]).success();
    w
}

fn report(w: &World, output: &Path) -> String {
    let out = loopwright(&w.home)
        .args(["report", "--project-dir"])
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .arg("--output")
        .arg(output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        output.display().to_string(),
        "the path is printed"
    );
    std::fs::read_to_string(output).unwrap()
}

#[test]
fn the_report_holds_the_table_the_sessions_the_spend_and_the_chart_offline() {
    let w = finished_run();
    let html = report(&w, &w.home.join("out/report.html"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: nothing fetched from anywhere, no script needed.
    for banned in ["<script", "src=", "<link", "http://", "https://"] {
        let allowed_ns = html.matches("http://www.w3.org/2000/svg").count();
        let count = html.matches(banned).count();
        let count = if banned == "http://" {
            count - allowed_ns
        } else {
            count
        };
        assert_eq!(count, 0, "{banned} in the report");
    }
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    // Feature table, sessions with outcomes, the chart's line and one point per session.
    for id in ["F1", "F2", "F3"] {
        assert!(html.contains(&format!("<tr><td>{id}</td>")), "{id}");
    }
    assert!(html.contains("id=\"passing\">3/3</b>"));
    assert_eq!(html.matches("class=\"session-point\"").count(), 5);
    assert!(
        html.contains("after session 3: 1 passing"),
        "session 3 made nothing pass"
    );
    assert!(html.contains("after session 5: 3 passing"));
    assert!(html.contains("<polyline id=\"passing-line\""));
    assert!(html.contains(">dollars spent</text>"));
    // The last build session ends the moment every feature passes.
    assert_eq!(html.matches(">completed</td>").count(), 4);
    assert_eq!(html.matches(">all passing</td>").count(), 1);
    // Spend: the chart's last point is at the total, which the summary shows in cents.
    let status = status_json(&w);
    let spent = status["spent"].as_i64().unwrap();
    assert!(spent > 0, "the fake server's usage is priced");
    let cents = (spent + 5_000_000) / 10_000_000;
    assert!(html.contains(&format!("<b>${}.{:02}</b>", cents / 100, cents % 100)));
}

#[test]
fn the_default_output_is_in_the_state_dir() {
    let w = finished_run();
    let out = loopwright(&w.home)
        .args(["report", "-C"])
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(path, w.state.join("report.html"));
    assert!(path.is_file());
}

fn browser() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

#[test]
fn chromium_renders_the_report_to_a_png_and_its_dom_holds_the_chart_and_table() {
    let Some(chromium) = browser() else {
        eprintln!("SKIPPED: no chromium installed (apt-get install chromium); the report was not rendered");
        return;
    };
    let w = finished_run();
    let html_path = w.home.join("report.html");
    report(&w, &html_path);
    let url = format!("file://{}", html_path.display());
    let profile = w.home.join("chromium-profile");
    let headless = |extra: &[&str]| {
        let out = std::process::Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1200,1600",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .env("HOME", &w.home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let png = w.home.join("report.png");
    headless(&[&format!("--screenshot={}", png.display())]);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG was written");
    // IHDR: width and height of the screenshot.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 1600));
    assert!(bytes.len() > 20_000, "a page with content, not a blank one");

    let dom = String::from_utf8(headless(&["--dump-dom"]).stdout).unwrap();
    assert!(dom.contains("<svg"), "the chart is in the DOM");
    assert!(dom.contains("id=\"passing-line\""));
    assert_eq!(dom.matches("class=\"session-point\"").count(), 5);
    assert!(dom.contains("<table id=\"features\""));
    assert!(dom.contains("<table id=\"sessions\""));
    assert!(
        !dom.contains("<script>alert"),
        "model text stays text in the browser"
    );
}
