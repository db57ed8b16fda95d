//! Results, progress lines while they arrive, and the final report as text, JSON or JUnit XML.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use serde::Serialize;

/// The kind of a test, as in the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// A check of `metadataTest`.
    Metadata,
    /// A `fileExistenceTests` entry.
    FileExistence,
    /// A `fileContentTests` entry.
    FileContent,
    /// A `commandTests` entry.
    Command,
    /// A check of a `daemonTests` entry.
    Daemon,
    /// A `licenseTests` entry.
    License,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Metadata => "metadata",
            Kind::FileExistence => "file",
            Kind::FileContent => "content",
            Kind::Command => "command",
            Kind::Daemon => "daemon",
            Kind::License => "license",
        }
    }
}

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every expectation held.
    Pass,
    /// At least one did not (or the test could not run).
    Fail,
    /// Not run.
    Skip,
}

/// The result of one test.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// The spec file it comes from.
    pub file: String,
    /// Its position among the run's tests (for a stable order).
    #[serde(skip)]
    pub order: (usize, Kind, usize, usize),
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// What went wrong (empty when it passed).
    pub errors: Vec<String>,
    /// The command's standard output (command tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// The command's standard error (command tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

impl TestResult {
    /// A result: passed when `errors` is empty.
    pub fn new(
        file: &str,
        order: (usize, Kind, usize, usize),
        name: impl Into<String>,
        duration: Duration,
        errors: Vec<String>,
    ) -> TestResult {
        TestResult {
            file: file.to_string(),
            order,
            kind: order.1,
            name: name.into(),
            status: if errors.is_empty() {
                Status::Pass
            } else {
                Status::Fail
            },
            duration_ms: duration.as_secs_f64() * 1000.0,
            errors,
            stdout: None,
            stderr: None,
        }
    }

    /// Marks the result skipped, with the reason.
    #[cfg(test)]
    pub fn skipped(mut self, why: impl Into<String>) -> TestResult {
        self.status = Status::Skip;
        self.errors = vec![why.into()];
        self
    }
}

/// Totals of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Number of tests.
    pub total: usize,
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests not run.
    pub skipped: usize,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: f64,
    /// Containers started (command and daemon tests).
    pub containers_started: usize,
    /// Containers created and never started (file tests read them through the archive API).
    pub containers_created: usize,
    /// Whether every test had a container of its own (`--isolate`).
    pub isolate: bool,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The image tested.
    pub image: String,
    /// The spec files, in order.
    pub spec_files: Vec<String>,
    /// Whether every test passed.
    pub passed: bool,
    /// Totals.
    pub summary: Summary,
    /// Every result, in spec order.
    pub results: Vec<TestResult>,
    /// Spec files that could not be used (no test ran then).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spec_errors: Vec<SpecErrorEntry>,
    /// Wall time of each spec file's tests, in milliseconds, in `spec_files` order (files run one
    /// after another, so these add up to at most the run's duration).
    #[serde(skip)]
    pub file_durations_ms: Vec<f64>,
}

/// A spec file that could not be used, in a report.
#[derive(Debug, Clone, Serialize)]
pub struct SpecErrorEntry {
    /// The file.
    pub file: String,
    /// The line (1-based), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The column (1-based), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl Report {
    /// Sorts `results` into spec order and counts them.
    pub fn new(
        image: &str,
        spec_files: Vec<String>,
        mut results: Vec<TestResult>,
        mut summary: Summary,
    ) -> Report {
        results.sort_by_key(|r| r.order);
        summary.total = results.len();
        summary.passed = results.iter().filter(|r| r.status == Status::Pass).count();
        summary.failed = results.iter().filter(|r| r.status == Status::Fail).count();
        summary.skipped = results.iter().filter(|r| r.status == Status::Skip).count();
        Report {
            image: image.to_string(),
            spec_files,
            passed: summary.failed == 0,
            summary,
            results,
            spec_errors: Vec::new(),
            file_durations_ms: Vec::new(),
        }
    }

    /// The report of a run stopped by spec errors: no test ran, and it did not pass.
    pub fn of_spec_errors(image: &str, errors: Vec<SpecErrorEntry>) -> Report {
        let files = errors.iter().map(|e| e.file.clone()).collect();
        let mut report = Report::new(image, files, Vec::new(), Summary::default());
        report.passed = false;
        report.spec_errors = errors;
        report
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The closing lines of the text output: failures in full, then the totals.
    pub fn to_text_summary(&self) -> String {
        let mut out = String::new();
        let failures: Vec<&TestResult> = self
            .results
            .iter()
            .filter(|r| r.status == Status::Fail)
            .collect();
        if !failures.is_empty() {
            out.push_str("\nFailures:\n");
            for r in failures {
                out.push_str(&format!("  [{}] {} ({})\n", r.kind.label(), r.name, r.file));
                for e in &r.errors {
                    out.push_str(&indent(e, "      "));
                }
                for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
                    if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
                        out.push_str(&format!("      {stream}:\n"));
                        out.push_str(&indent(&last_lines(text, 10), "        "));
                    }
                }
            }
        }
        let s = &self.summary;
        out.push_str(&format!(
            "\n{}: {} tests, {} passed, {} failed, {} skipped in {:.2} s; containers: {} started, {} created (never started){}\n",
            if self.passed { "PASS" } else { "FAIL" },
            s.total,
            s.passed,
            s.failed,
            s.skipped,
            s.duration_ms / 1000.0,
            s.containers_started,
            s.containers_created,
            if s.isolate { "; --isolate" } else { "" },
        ));
        out
    }

    /// The report as JUnit XML: one `testsuite` per spec file.
    pub fn to_junit(&self) -> std::io::Result<String> {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let s = &self.summary;
        writer
            .create_element("testsuites")
            .with_attributes([
                ("name", "seaworthy"),
                ("tests", s.total.to_string().as_str()),
                ("failures", s.failed.to_string().as_str()),
                ("skipped", s.skipped.to_string().as_str()),
                ("time", seconds(s.duration_ms).as_str()),
            ])
            .write_inner_content(|w| {
                for e in &self.spec_errors {
                    write_spec_error(w, e)?;
                }
                for (i, file) in self.spec_files.iter().enumerate() {
                    if self.spec_errors.iter().any(|e| &e.file == file) {
                        continue;
                    }
                    let results: Vec<&TestResult> =
                        self.results.iter().filter(|r| &r.file == file).collect();
                    let count = |status| results.iter().filter(|r| r.status == status).count();
                    // The file's wall time: its tests run concurrently, so their sum would be
                    // more than the time the file took (and than the run's).
                    let time = self.file_durations_ms.get(i).copied().unwrap_or_else(|| {
                        results.iter().map(|r| r.duration_ms).fold(0.0, f64::max)
                    });
                    let name = xml_safe(file);
                    w.create_element("testsuite")
                        .with_attributes([
                            ("name", name.as_str()),
                            ("tests", results.len().to_string().as_str()),
                            ("failures", count(Status::Fail).to_string().as_str()),
                            ("skipped", count(Status::Skip).to_string().as_str()),
                            ("time", seconds(time).as_str()),
                        ])
                        .write_inner_content(|w| {
                            for r in &results {
                                write_case(w, &self.image, r)?;
                            }
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
        String::from_utf8(writer.into_inner()).map_err(std::io::Error::other)
    }
}

/// A spec file that could not be used, as a suite of one failed case (so that JUnit consumers
/// show it).
fn write_spec_error(w: &mut Writer<Vec<u8>>, e: &SpecErrorEntry) -> std::io::Result<()> {
    let file = xml_safe(&e.file);
    let text = match (e.line, e.column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}: {}", e.file, e.message),
        _ => format!("{}: {}", e.file, e.message),
    };
    w.create_element("testsuite")
        .with_attributes([
            ("name", file.as_str()),
            ("tests", "1"),
            ("failures", "1"),
            ("skipped", "0"),
            ("time", "0.000"),
        ])
        .write_inner_content(|w| {
            w.create_element("testcase")
                .with_attributes([
                    ("classname", file.as_str()),
                    ("name", "spec file"),
                    ("time", "0.000"),
                ])
                .write_inner_content(|w| {
                    w.create_element("failure")
                        .with_attribute(("message", one_line(&text).as_str()))
                        .write_text_content(BytesText::new(&xml_safe(&text)))?;
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(())
}

/// `text` with the characters XML 1.0 cannot carry (control characters other than tab, line
/// feed and carriage return, and U+FFFE, U+FFFF) written as `\u{..}` escapes: the ESC of
/// coloured output becomes `\u{1b}`. A backslash is left as it is.
pub fn xml_safe(text: &str) -> String {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}')
    };
    if text.chars().all(allowed) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if allowed(c) {
                c.to_string()
            } else {
                format!("\\u{{{:x}}}", u32::from(c))
            }
        })
        .collect()
}

/// `text` for an attribute: XML-safe, and on one line (a parser turns a line break in an
/// attribute into a space), with `\n` written for each line break.
fn one_line(text: &str) -> String {
    xml_safe(text.trim_end())
        .replace("\r\n", "\\n")
        .replace(['\n', '\r'], "\\n")
}

fn write_case(w: &mut Writer<Vec<u8>>, image: &str, r: &TestResult) -> std::io::Result<()> {
    let classname = xml_safe(&format!("{image}.{}", r.kind.label()));
    let name = xml_safe(&r.name);
    let case = w.create_element("testcase").with_attributes([
        ("classname", classname.as_str()),
        ("name", name.as_str()),
        ("time", seconds(r.duration_ms).as_str()),
    ]);
    let has_output = r.stdout.is_some() || r.stderr.is_some();
    if r.status == Status::Pass && !has_output {
        case.write_empty()?;
        return Ok(());
    }
    case.write_inner_content(|w| {
        let first = one_line(r.errors.first().map(String::as_str).unwrap_or_default());
        match r.status {
            Status::Fail => {
                w.create_element("failure")
                    .with_attribute(("message", first.as_str()))
                    .write_text_content(BytesText::new(&xml_safe(&r.errors.join("\n"))))?;
            }
            Status::Skip => {
                w.create_element("skipped")
                    .with_attribute(("message", first.as_str()))
                    .write_empty()?;
            }
            Status::Pass => {}
        }
        if let Some(out) = &r.stdout {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&xml_safe(out)))?;
        }
        if let Some(err) = &r.stderr {
            w.create_element("system-err")
                .write_text_content(BytesText::new(&xml_safe(err)))?;
        }
        Ok(())
    })?;
    Ok(())
}

fn seconds(ms: f64) -> String {
    format!("{:.3}", ms / 1000.0)
}

/// The last `n` lines of `text`, with a note of how many were left out.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[{skip} earlier lines]\n"));
    }
    for line in &lines[skip..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

/// Progress lines, written as results arrive: to stdout for text output, to stderr otherwise
/// (so a JSON or XML report on stdout stays clean), or nowhere with `--quiet`.
pub struct Progress {
    sink: Mutex<Option<Box<dyn Write + Send>>>,
}

impl Progress {
    /// Progress to stdout.
    pub fn stdout() -> Progress {
        Progress {
            sink: Mutex::new(Some(Box::new(std::io::stdout()))),
        }
    }

    /// Progress to stderr.
    pub fn stderr() -> Progress {
        Progress {
            sink: Mutex::new(Some(Box::new(std::io::stderr()))),
        }
    }

    /// No progress.
    pub fn quiet() -> Progress {
        Progress {
            sink: Mutex::new(None),
        }
    }

    /// A free-form line.
    pub fn note(&self, line: &str) {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = sink.as_mut() {
            let _ = writeln!(w, "{line}");
            let _ = w.flush();
        }
    }

    /// The line of a finished test, with its first error when it failed.
    pub fn result(&self, r: &TestResult) {
        let status = match r.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        };
        let mut line = format!(
            "  {status}  [{}] {} ({:.0} ms)",
            r.kind.label(),
            r.name,
            r.duration_ms
        );
        if r.status != Status::Pass {
            if let Some(first) = r.errors.first() {
                line.push_str(&format!(
                    "\n        {}",
                    first.lines().next().unwrap_or_default()
                ));
            }
        }
        self.note(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut failing = TestResult::new(
            "a.yaml",
            (0, Kind::Command, 1, 0),
            "says <hello> & exits",
            Duration::from_millis(12),
            vec!["expected exit code 0, got 3".into()],
        );
        failing.stdout = Some("out \"quoted\"\n".into());
        let passing = TestResult::new(
            "a.yaml",
            (0, Kind::Metadata, 0, 0),
            "env var PATH",
            Duration::ZERO,
            vec![],
        );
        let skipped = TestResult::new(
            "b.yaml",
            (1, Kind::License, 0, 0),
            "license test 1",
            Duration::ZERO,
            vec![],
        )
        .skipped("not supported");
        Report::new(
            "img",
            vec!["a.yaml".into(), "b.yaml".into()],
            vec![failing, skipped, passing],
            Summary {
                duration_ms: 1500.0,
                containers_started: 1,
                ..Default::default()
            },
        )
    }

    #[test]
    fn results_are_ordered_and_counted() {
        let r = sample();
        assert_eq!(r.results[0].name, "env var PATH");
        assert_eq!(
            (
                r.summary.total,
                r.summary.passed,
                r.summary.failed,
                r.summary.skipped
            ),
            (3, 1, 1, 1)
        );
        assert!(!r.passed);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["results"][1]["status"], "fail");
        assert_eq!(json["results"][1]["kind"], "command");
        assert_eq!(json["summary"]["containers_started"], 1);
    }

    #[test]
    fn the_text_summary_shows_failures_with_their_output() {
        let text = sample().to_text_summary();
        assert!(
            text.contains("  [command] says <hello> & exits (a.yaml)\n      expected exit code 0, got 3\n      stdout:\n        out \"quoted\"\n"),
            "{text}"
        );
        assert!(text.ends_with(
            "FAIL: 3 tests, 1 passed, 1 failed, 1 skipped in 1.50 s; containers: 1 started, 0 created (never started)\n"
        ), "{text}");
        assert_eq!(last_lines("a\nb\nc\n", 2), "[1 earlier lines]\nb\nc\n");
    }

    #[test]
    fn junit_is_escaped_and_grouped_by_file() {
        let xml = sample().to_junit().unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(
            xml.contains(
                r#"<testsuites name="seaworthy" tests="3" failures="1" skipped="1" time="1.500">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testsuite name="a.yaml" tests="2" failures="1" skipped="0""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"name="says &lt;hello&gt; &amp; exits""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="expected exit code 0, got 3">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<skipped message="not supported"/>"#),
            "{xml}"
        );
        assert!(xml.contains("<system-out>out &quot;quoted&quot;"), "{xml}");
    }
}
