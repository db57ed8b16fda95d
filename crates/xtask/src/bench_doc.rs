//! `cargo xtask bench-doc`: BENCHMARKS.md's result tables, generated from the suites' JSON.
//!
//! `cargo bench` leaves one file per suite in `target/seaworthy-bench/<suite>.json` (written by
//! `seaworthy-benchkit`). The task copies each into `crates/seaworthy-benchkit/records/<suite>.json`, the committed
//! record (a suite's file is replaced whole: nothing of an older run survives), then rewrites
//! every generated block of BENCHMARKS.md from the records:
//!
//! ```text
//! <!-- bench:compare -->
//! (generated: run header, result table, notes)
//! <!-- /bench:compare -->
//! ```
//!
//! A suite with a record but no block gets a new section at the end of the document; prose
//! outside the blocks is left alone. `cargo xtask bench-doc --check` copies nothing and fails when
//! the document differs from what the records give (a test of this crate runs the same check).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The 1-minute load average below which a suite's start counts as quiet (as the bench harness
/// waits for).
const QUIET_LOAD: f64 = 1.0;

/// The share of the machine other processes may take during a run that is still called quiet.
const QUIET_OTHER_SHARE: f64 = 0.02;

/// Where `cargo bench` writes, where the records are kept, and the document.
pub struct Paths {
    /// `target/seaworthy-bench`.
    pub fresh: PathBuf,
    /// `crates/seaworthy-benchkit/records/`.
    pub records: PathBuf,
    /// `BENCHMARKS.md`.
    pub document: PathBuf,
}

impl Paths {
    /// The paths of the workspace at `root`.
    pub fn new(root: &Path) -> Paths {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        Paths {
            fresh: target.join("seaworthy-bench"),
            records: root.join("crates/seaworthy-benchkit/records"),
            document: root.join("BENCHMARKS.md"),
        }
    }
}

/// Runs the task: copies fresh results (unless `check`), then regenerates or checks the document.
pub fn run(paths: &Paths, check: bool) -> Result<()> {
    if !check {
        let copied = copy_fresh(paths)?;
        if copied.is_empty() {
            println!(
                "no results in {} (run `cargo bench` first); regenerating from {}",
                paths.fresh.display(),
                paths.records.display()
            );
        }
        for suite in &copied {
            println!("recorded suite {suite}");
        }
    }
    let records = read_records(&paths.records)?;
    let document = std::fs::read_to_string(&paths.document)
        .with_context(|| format!("read {}", paths.document.display()))?;
    let generated = regenerate(&document, &records)?;
    if check {
        if generated != document {
            bail!(
                "{} is not what the records in {} give: run `cargo xtask bench-doc`",
                paths.document.display(),
                paths.records.display()
            );
        }
        println!("{} matches its records", paths.document.display());
        return Ok(());
    }
    if generated != document {
        std::fs::write(&paths.document, &generated)
            .with_context(|| format!("write {}", paths.document.display()))?;
        println!("rewrote {}", paths.document.display());
    } else {
        println!("{} is up to date", paths.document.display());
    }
    Ok(())
}

/// Copies every `<suite>.json` of the fresh directory to the records; returns the suites.
fn copy_fresh(paths: &Paths) -> Result<Vec<String>> {
    let fresh = read_reports(&paths.fresh)?;
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(&paths.records)
        .with_context(|| format!("create {}", paths.records.display()))?;
    let mut copied = Vec::new();
    for (suite, (text, report)) in fresh {
        // A file of the harness before reports carried their commit is stale by definition.
        if report.get("commit").is_none() {
            println!("skipped {suite}: an old report without commit and date");
            continue;
        }
        std::fs::write(paths.records.join(format!("{suite}.json")), text)?;
        copied.push(suite);
    }
    Ok(copied)
}

/// The records, by suite name.
fn read_records(dir: &Path) -> Result<BTreeMap<String, Value>> {
    Ok(read_reports(dir)?
        .into_iter()
        .map(|(suite, (_, report))| (suite, report))
        .collect())
}

/// The suites' reports in `dir` (`<suite>.json` with a `results` list), text and parsed, by
/// suite name; none when `dir` does not exist.
fn read_reports(dir: &Path) -> Result<BTreeMap<String, (String, Value)>> {
    let mut reports = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(reports);
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Some(suite) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)?;
        let report: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        if report.get("results").is_some() {
            reports.insert(suite.to_string(), (text, report));
        }
    }
    Ok(reports)
}

fn open_marker(suite: &str) -> String {
    format!("<!-- bench:{suite} -->")
}

fn close_marker(suite: &str) -> String {
    format!("<!-- /bench:{suite} -->")
}

/// The document with every block rewritten and a section added for each suite without one.
pub fn regenerate(document: &str, records: &BTreeMap<String, Value>) -> Result<String> {
    let mut out = document.to_string();
    let mut missing = Vec::new();
    for (suite, report) in records {
        let (open, close) = (open_marker(suite), close_marker(suite));
        let block = render(suite, report);
        match (out.find(&open), out.find(&close)) {
            (Some(start), Some(end)) if start < end => {
                let from = start + open.len();
                out.replace_range(from..end, &format!("\n{block}"));
            }
            (None, None) => missing.push((suite, block)),
            _ => bail!("the markers of suite {suite} in BENCHMARKS.md are unbalanced"),
        }
    }
    for (suite, block) in missing {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        write!(
            out,
            "\n## Suite `{suite}`\n\n{}\n{block}{}\n",
            open_marker(suite),
            close_marker(suite)
        )?;
    }
    Ok(out)
}

/// A suite's generated block: where and when it ran, the table, the notes.
fn render(suite: &str, report: &Value) -> String {
    let mut s = String::new();
    let commit = report["commit"]
        .as_str()
        .map_or("unknown".into(), |c| c.get(..10).unwrap_or(c).to_string());
    let dirty = if report["dirty"].as_bool() == Some(true) {
        " with uncommitted changes"
    } else {
        ""
    };
    let date = report["date"].as_str().unwrap_or("unknown date");
    let cpus = report["machine"]["cpus"].as_u64();
    let load = |at: &str| {
        report["load_average"][at]
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_f64)
    };
    let (start, end) = (load("start"), load("end"));
    let fmt_load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
    let other = &report["other_work"];
    let other_share = other["foreign_share"].as_f64();
    let other_top = other["top"]
        .as_array()
        .map(|top| {
            top.iter()
                .filter_map(|t| Some((t[0].as_str()?, t[1].as_f64()?)))
                .filter(|(_, cpu)| *cpu >= 0.05)
                .map(|(name, cpu)| format!("`{name}` {cpu:.1} s"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let cpus_text = cpus.map_or("?".into(), |c| c.to_string());
    let quiet = match (start, other_share) {
        // Watched: quiet when it began quiet and other work took under 2 % of the machine.
        (Some(a), Some(share)) if a < QUIET_LOAD && share < QUIET_OTHER_SHARE => format!(
            "a quiet machine (load average (1 min) {} when it began; other processes used {:.1} % of its {cpus_text} CPUs while it ran{})",
            fmt_load(start),
            share * 100.0,
            if other_top.is_empty() { String::new() } else { format!(": {other_top}") }
        ),
        (Some(a), Some(share)) => format!(
            "**not a quiet machine** (load average (1 min) {} when it began; other processes used {:.1} % of its {cpus_text} CPUs while it ran{}: absolute times are pessimistic; both sides of a ratio ran alternately under the same load)",
            fmt_load(Some(a)),
            share * 100.0,
            if other_top.is_empty() { String::new() } else { format!(": {other_top}") }
        ),
        // Older reports, not watched: the load average alone.
        (Some(a), None) if a < QUIET_LOAD && end.is_some_and(|b| b < 1.5) => {
            "a quiet machine".to_string()
        }
        (Some(_), None) => format!(
            "**not a quiet machine** (other work was running on its {cpus_text} CPUs: absolute times are pessimistic; both sides of a ratio ran alternately under the same load)"
        ),
        _ => "a machine of unknown load".to_string(),
    };
    let _ = writeln!(
        s,
        "Suite `{suite}`: commit `{commit}`{dirty}, {date}, {quiet}; load average (1 min) {} at the start, {} at the end{}.\n",
        fmt_load(start),
        fmt_load(end),
        if other_share.is_some() { " (the suite's own containers and engine)" } else { "" }
    );
    let _ = writeln!(
        s,
        "| result | runs | Seaworthy median | baseline | baseline median | ratio (95 % interval) | target | verdict |"
    );
    let _ = writeln!(s, "| --- | ---: | ---: | --- | ---: | --- | --- | --- |");
    let mut notes = Vec::new();
    for r in report["results"].as_array().into_iter().flatten() {
        let name = r["name"].as_str().unwrap_or("?");
        let ms = |v: &Value| v.as_f64().map_or("–".into(), format_ms);
        let interval = &r["interval"];
        let ratio = match (r["ratio"].as_f64(), interval["of"].as_str()) {
            (Some(x), Some("ratio")) => format!(
                "{x:.3} ({:.3}–{:.3})",
                interval["low"].as_f64().unwrap_or(f64::NAN),
                interval["high"].as_f64().unwrap_or(f64::NAN)
            ),
            (Some(x), _) => format!("{x:.3}"),
            (None, Some("median_ms")) => format!(
                "– (median's interval {}–{})",
                ms(&interval["low"]),
                ms(&interval["high"])
            ),
            _ => "–".into(),
        };
        let target = match (r["target"]["kind"].as_str(), r["target"]["value"].as_f64()) {
            (Some("ratio_at_most"), Some(v)) => format!("ratio ≤ {v}"),
            (Some("median_at_most_ms"), Some(v)) => format!("median ≤ {}", format_ms(v)),
            _ => "–".into(),
        };
        let verdict = match r["verdict"].as_str() {
            Some("met") => "met",
            Some("within_noise") => "within noise",
            Some("missed") => "**missed**",
            _ if target != "–" => "not checked",
            _ => "reference",
        };
        let _ = writeln!(
            s,
            "| `{name}` | {} | {} | {} | {} | {ratio} | {target} | {verdict} |",
            r["runs"].as_u64().unwrap_or(0),
            ms(&r["median_ms"]),
            r["baseline"].as_str().unwrap_or("–"),
            ms(&r["baseline_median_ms"]),
        );
        if let Some(extra) = r["extra"].as_object() {
            let figures: Vec<String> = extra
                .iter()
                .map(|(k, v)| match v {
                    Value::String(t) => format!("{k}: {t}"),
                    other => format!("{k} = {other}"),
                })
                .collect();
            if !figures.is_empty() {
                notes.push(format!("`{name}`: {}", figures.join("; ")));
            }
        }
        let range = |key: &str| {
            r[key].as_array().and_then(|a| {
                Some(format!(
                    "{}–{}",
                    format_ms(a.first()?.as_f64()?),
                    format_ms(a.get(1)?.as_f64()?)
                ))
            })
        };
        if let Some(measured) = range("range_ms") {
            let baseline = range("baseline_range_ms")
                .map(|b| format!(", baseline {b}"))
                .unwrap_or_default();
            notes.push(format!("`{name}` single runs: {measured}{baseline}"));
        }
    }
    if !notes.is_empty() {
        s.push('\n');
        for note in notes {
            let _ = writeln!(s, "* {note}");
        }
    }
    s
}

/// Milliseconds with a precision that suits their size.
fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "–".into()
    } else if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(verdict: &str) -> Value {
        serde_json::json!({
            "suite": "demo", "commit": "0123456789abcdef", "dirty": false,
            "date": "2026-12-04T20:00:00Z", "machine": {"cpus": 2},
            "load_average": {"start": [3.5, 2.0, 1.0], "end": [3.0, 2.0, 1.0]},
            "results": [{
                "name": "clean", "runs": 30, "median_ms": 8.0, "range_ms": [7.0, 12.0],
                "baseline": "DROP + CREATE", "baseline_median_ms": 100.0,
                "baseline_range_ms": [90.0, 130.0], "ratio": 0.08,
                "interval": {"low": 0.07, "high": 0.09, "of": "ratio"},
                "target": {"kind": "ratio_at_most", "value": 1.0}, "verdict": verdict,
                "extra": {"tables": 20}
            }]
        })
    }

    #[test]
    fn blocks_are_replaced_and_new_suites_appended() {
        let doc = "# Benchmarks\n\nprose\n<!-- bench:demo -->\nold numbers\n<!-- /bench:demo -->\nmore prose\n";
        let records = BTreeMap::from([
            ("demo".to_string(), report("missed")),
            ("other".to_string(), report("met")),
        ]);
        let out = regenerate(doc, &records).unwrap();
        assert!(!out.contains("old numbers"));
        assert!(out.contains("prose\n<!-- bench:demo -->\nSuite `demo`: commit `0123456789`"));
        assert!(out.contains("| `clean` | 30 | 8.00 ms | DROP + CREATE | 100 ms | 0.080 (0.070–0.090) | ratio ≤ 1 | **missed** |"));
        assert!(out.contains("**not a quiet machine**"));
        assert!(out.contains("<!-- /bench:demo -->\nmore prose\n"));
        assert!(out.contains("\n## Suite `other`\n\n<!-- bench:other -->\n"));
        assert!(out.contains("* `clean`: tables = 20"));
        // Regenerating what was generated changes nothing.
        assert_eq!(regenerate(&out, &records).unwrap(), out);
    }

    #[test]
    fn a_watched_run_is_quiet_only_when_it_began_quiet_and_nothing_else_ran() {
        let with = |start: f64, share: f64, top: Value| {
            let mut r = report("met");
            r["load_average"]["start"] = serde_json::json!([start, 1.0, 1.0]);
            r["load_average"]["end"] = serde_json::json!([3.2, 1.0, 1.0]);
            r["other_work"] = serde_json::json!({"wall_s": 100.0, "cpu_s": share * 200.0,
                "foreign_share": share, "top": top});
            render("demo", &r)
        };
        let quiet = with(
            0.4,
            0.004,
            serde_json::json!([["sshd", 0.8], ["cron", 0.01]]),
        );
        assert!(quiet.contains("a quiet machine (load average (1 min) 0.40 when it began; other processes used 0.4 % of its 2 CPUs while it ran: `sshd` 0.8 s)"), "{quiet}");
        assert!(
            quiet.contains("3.20 at the end (the suite's own containers and engine)"),
            "{quiet}"
        );
        let build = with(0.4, 0.3, serde_json::json!([["rustc", 60.0]]));
        assert!(build.contains("**not a quiet machine** (load average (1 min) 0.40 when it began; other processes used 30.0 % of its 2 CPUs while it ran: `rustc` 60.0 s"), "{build}");
        let busy_start = with(1.7, 0.0, serde_json::json!([]));
        assert!(busy_start.contains("**not a quiet machine** (load average (1 min) 1.70 when it began; other processes used 0.0 % of its 2 CPUs while it ran:"), "{busy_start}");
    }

    #[test]
    fn unbalanced_markers_are_an_error() {
        let records = BTreeMap::from([("demo".to_string(), report("met"))]);
        assert!(regenerate("<!-- bench:demo -->\n", &records).is_err());
    }

    /// The committed document is what the committed records give.
    #[test]
    fn benchmarks_md_matches_its_records() {
        let root = crate::workspace_root().unwrap();
        run(&Paths::new(&root), true).unwrap();
    }
}
