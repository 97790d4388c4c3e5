//! `loopwright report`: one self-contained HTML file about a run — the feature table, each
//! session's outcome, cause and duration, spend by session and by feature, and a chart of
//! features passing against dollars spent. Inline CSS and an inline SVG: it opens offline, with
//! no script. Every text that came from the model (descriptions, ids, stop details) is escaped.

use crate::exit::{code, CmdResult, Failure};
use crate::status::{gather, human_duration, locate, Report};
use anyhow::anyhow;
use llm::Usd;
use std::fmt::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The project directory of the run [default: the current directory].
    #[arg(long, short = 'C', value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// The run's state directory [default: the project's, else $XDG_STATE_HOME/loopwright/<project id>].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where to write the HTML file [default: report.html in the state directory].
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub async fn run(args: ReportArgs) -> CmdResult {
    let (project, state_dir) = locate(args.project_dir.as_deref(), args.state_dir.clone())?;
    let report = gather(&project, &state_dir)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| state_dir.join("report.html"));
    let html = render(&report, &agent::events::rfc3339_now());
    llm::atomic_write(&output, html.as_bytes())
        .map_err(|e| Failure::usage(anyhow!("cannot write {}: {e}", output.display())))?;
    crate::stdout::outln!("{}", output.display());
    Ok(code::OK)
}

/// `$1.23`: dollars to the cent, for people (the ledger and JSON keep nano-dollars).
pub fn cents(usd: Usd) -> String {
    let nanos = i128::from(usd.nanos());
    let sign = if nanos < 0 { "-" } else { "" };
    let cents = (nanos.abs() + 5_000_000) / 10_000_000;
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

/// Escapes text for HTML element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#1d1d1f;background:#fff}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#555}.meta b{color:#1d1d1f}
table{border-collapse:collapse;width:100%;margin-top:.5em}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f6f6f6;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.yes{color:#17803d;font-weight:600}.no{color:#b42318;font-weight:600}
.bar{background:#4c78a8;height:.8em;display:inline-block;vertical-align:middle;min-width:1px}
.chart{max-width:46em}.chart text{font:12px system-ui,sans-serif;fill:#333}
.summary{display:flex;gap:2em;flex-wrap:wrap;margin:1em 0}.summary div{background:#f6f6f6;padding:.6em 1em;border-radius:6px}
.summary b{display:block;font-size:1.4em}";

/// The whole HTML document.
pub fn render(r: &Report, generated: &str) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>loopwright report: {}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n",
        esc(&r.project)
    );
    let _ = writeln!(o, "<h1>loopwright run report</h1>");
    let _ = writeln!(
        o,
        "<p class=\"meta\">project <b>{}</b> · model <b>{}</b> · state <b>{}</b> · generated {}</p>",
        esc(&r.project),
        esc(&r.model),
        esc(&r.state_dir),
        esc(generated)
    );
    let _ = writeln!(
        o,
        "<div class=\"summary\" id=\"summary\"><div>passing<b id=\"passing\">{}/{}</b></div>\
         <div>spent<b>{}</b></div><div>sessions<b>{}</b></div><div>duration<b>{}</b></div>\
         <div>phase<b>{}{}</b></div></div>",
        r.passing,
        r.total,
        cents(r.spent),
        r.sessions.len(),
        r.duration_secs
            .map(human_duration)
            .unwrap_or_else(|| "-".into()),
        esc(&r.phase),
        if r.running { " (running)" } else { "" }
    );
    if let Some(stop) = &r.last_stop {
        let _ = writeln!(
            o,
            "<p>Last stop: <b>{}</b> (exit {}) at {}: {}</p>",
            esc(stop.reason.as_str()),
            stop.exit_code,
            esc(&stop.time),
            esc(&stop.detail)
        );
    }

    let _ = writeln!(o, "<h2>Features passing against dollars spent</h2>");
    o.push_str(&chart(r));

    let _ = writeln!(o, "<h2>Features</h2>");
    let max_feature = r.features.iter().map(|f| f.cost.nanos()).max().unwrap_or(0);
    let _ = writeln!(
        o,
        "<table id=\"features\"><thead><tr><th>id</th><th>description</th><th>passing</th>\
         <th class=\"num\">verified in</th><th class=\"num\">regressions</th>\
         <th class=\"num\">cost</th><th>share</th></tr></thead><tbody>"
    );
    for f in &r.features {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\" title=\"{}\">{}</td><td>{}</td></tr>",
            esc(&f.id),
            esc(&f.description),
            if f.passes { "yes" } else { "no" },
            if f.passes { "yes" } else { "no" },
            f.verified_in
                .map(|n| format!("session {n}"))
                .unwrap_or_else(|| "-".into()),
            f.regressions,
            f.cost,
            cents(f.cost),
            bar(f.cost, max_feature)
        );
    }
    let _ = writeln!(o, "</tbody></table>");
    let _ = writeln!(
        o,
        "<p class=\"meta\">Spend by feature: each build session's cost (with that of earlier sessions that made no feature pass) is split among the features it made pass first. Planning {}; not yet attributed {}.</p>",
        cents(r.planning_cost),
        cents(r.unattributed_cost)
    );

    let _ = writeln!(o, "<h2>Sessions</h2>");
    let max_session = r.sessions.iter().map(|s| s.cost.nanos()).max().unwrap_or(0);
    let _ = writeln!(
        o,
        "<table id=\"sessions\"><thead><tr><th class=\"num\">#</th><th>kind</th><th>started</th>\
         <th class=\"num\">duration</th><th>outcome</th><th class=\"num\">turns</th>\
         <th>newly passing</th><th>regressed</th><th class=\"num\">passing after</th>\
         <th class=\"num\">cost</th><th>share</th></tr></thead><tbody>"
    );
    for s in &r.sessions {
        let list = |ids: &[String]| {
            if ids.is_empty() {
                "-".to_string()
            } else {
                esc(&ids.join(", "))
            }
        };
        let _ = writeln!(
            o,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\" title=\"{}\">{}</td><td>{}</td></tr>",
            s.number,
            esc(&s.kind),
            esc(&short_time(&s.started)),
            s.duration_secs
                .map(human_duration)
                .unwrap_or_else(|| "-".into()),
            esc(&s.end.replace('_', " ")),
            s.turns,
            list(&s.newly_passing),
            list(&s.regressions),
            s.passing_at_end
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            s.cost,
            cents(s.cost),
            bar(s.cost, max_session)
        );
    }
    let _ = writeln!(o, "</tbody></table>");
    let _ = writeln!(
        o,
        "<p class=\"meta\">Amounts are rounded to the cent; hover for the exact figure. The ledger ({}/ledger.jsonl) has every call in nano-dollars.</p>\n</body>\n</html>",
        esc(&r.state_dir)
    );
    o
}

/// `2026-05-01 12:00:00` from an RFC 3339 time (UTC).
fn short_time(ts: &str) -> String {
    match ts.get(..19) {
        Some(head) => format!("{} UTC", head.replacen('T', " ", 1)),
        None => ts.to_string(),
    }
}

/// A proportional bar for a table cell.
fn bar(value: Usd, max: i64) -> String {
    if max <= 0 || value.nanos() <= 0 {
        return String::new();
    }
    let em = (value.nanos() as f64 / max as f64) * 8.0;
    format!("<span class=\"bar\" style=\"width:{em:.2}em\"></span>")
}

/// The chart: after each session, features passing (y) against dollars spent so far (x).
fn chart(r: &Report) -> String {
    const W: f64 = 640.0;
    const H: f64 = 320.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 44.0;
    let mut points: Vec<(i64, usize, u32)> = vec![(0, 0, 0)];
    let mut spent = 0i64;
    for s in &r.sessions {
        spent = spent.saturating_add(s.cost.nanos());
        let passing = s
            .passing_at_end
            .unwrap_or_else(|| points.last().map(|p| p.1).unwrap_or(0));
        points.push((spent, passing, s.number));
    }
    // A run that cost nothing (free or local models) is charted against sessions instead.
    let free = spent == 0;
    if free {
        for p in points.iter_mut() {
            p.0 = i64::from(p.2);
        }
    }
    let max_x = points.iter().map(|p| p.0).max().unwrap_or(0).max(1);
    let max_y = r
        .total
        .max(points.iter().map(|p| p.1).max().unwrap_or(0))
        .max(1);
    let x = |nanos: i64| LEFT + (nanos as f64 / max_x as f64) * (W - LEFT - RIGHT);
    let y = |n: usize| TOP + (1.0 - n as f64 / max_y as f64) * (H - TOP - BOTTOM);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg class=\"chart\" id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" aria-label=\"features passing against dollars spent\">"
    );
    let _ = writeln!(
        o,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#ccc\"/>",
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    // Horizontal grid: features.
    let step = (max_y / 5).max(1);
    let mut n = 0;
    while n <= max_y {
        let _ = writeln!(
            o,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{n}</text>",
            W - RIGHT,
            y(n),
            y(n),
            LEFT - 6.0,
            y(n) + 4.0
        );
        n += step;
    }
    // Vertical grid: dollars in four steps, or each session of a free run.
    let ticks: Vec<i64> = if free {
        (0..=max_x)
            .step_by(usize::try_from(max_x / 8 + 1).unwrap_or(1))
            .collect()
    } else {
        (0..=4).map(|i| max_x / 4 * i).collect()
    };
    for nanos in ticks {
        let label = if free {
            nanos.to_string()
        } else {
            axis_dollars(nanos, max_x)
        };
        let _ = writeln!(
            o,
            "<line y1=\"{TOP}\" y2=\"{}\" x1=\"{:.1}\" x2=\"{:.1}\" stroke=\"#e4e4e4\"/><text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            H - BOTTOM,
            x(nanos),
            x(nanos),
            x(nanos),
            H - BOTTOM + 16.0,
            esc(&label)
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
         <text x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">features passing</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 6.0,
        if free {
            "sessions (nothing was spent)"
        } else {
            "dollars spent"
        },
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0
    );
    if r.total > 0 {
        let _ = writeln!(
            o,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#17803d\" stroke-dasharray=\"4 3\"/>",
            W - RIGHT,
            y(r.total),
            y(r.total)
        );
    }
    let path: Vec<String> = points
        .iter()
        .map(|(s, p, _)| format!("{:.1},{:.1}", x(*s), y(*p)))
        .collect();
    let _ = writeln!(
        o,
        "<polyline id=\"passing-line\" fill=\"none\" stroke=\"#4c78a8\" stroke-width=\"2.5\" points=\"{}\"/>",
        path.join(" ")
    );
    for (s, p, number) in points.iter().skip(1) {
        let _ = writeln!(
            o,
            "<circle class=\"session-point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#4c78a8\"><title>after session {number}: {p} passing, {} spent</title></circle>",
            x(*s),
            y(*p),
            esc(&cents(Usd::from_nanos(*s)))
        );
    }
    let _ = writeln!(o, "</svg>");
    o
}

/// Axis labels: cents when the run cost a dollar or more, else enough decimals to tell
/// the steps apart.
fn axis_dollars(nanos: i64, max: i64) -> String {
    if max >= 1_000_000_000 {
        return cents(Usd::from_nanos(nanos));
    }
    let dollars = nanos as f64 / 1e9;
    if max >= 10_000_000 {
        format!("${dollars:.3}")
    } else {
        format!("${dollars:.5}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_round_half_up_and_keep_the_sign() {
        assert_eq!(cents(Usd::from_nanos(5_850_000)), "$0.01");
        assert_eq!(cents(Usd::from_nanos(4_999_999)), "$0.00");
        assert_eq!(cents(Usd::from_nanos(1_234_560_000)), "$1.23");
        assert_eq!(cents(Usd::from_nanos(-1_500_000_000)), "-$1.50");
        assert_eq!(cents(Usd::ZERO), "$0.00");
    }

    #[test]
    fn model_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{1b}[2Jb"), "a\u{fffd}[2Jb");
    }
}
