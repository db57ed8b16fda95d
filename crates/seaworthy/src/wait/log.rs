//! Log lines matching patterns, in order or in any order, each a number of times: the log is
//! followed as a stream (each line read once), and only the current run's lines count.

use std::fmt;
use std::sync::Arc;

use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;
use regex::Regex;

use super::{Checking, Condition, Impossible, Wait, LOG_ENDED};
use crate::container::{inspect_here, Inner};
use crate::error::{Error, Result};
use crate::logs::LogStream;

/// A log line pattern that must be seen `times` times.
///
/// Lines are matched in the order the engine recorded them. Within one stream that is the order the
/// container wrote them; between stdout and stderr, lines written at nearly the same moment may be
/// recorded in either order, so an ordered wait should not rely on the order of two lines written
/// to different streams back to back.
#[derive(Debug, Clone)]
pub struct LogPattern {
    /// The regex as given.
    source: String,
    /// The compiled regex, or why it does not compile (reported by [`Wait::validate`], so before
    /// a container that waits on it is created).
    regex: std::result::Result<Regex, String>,
    times: usize,
    stream: Option<LogStream>,
}

impl LogPattern {
    /// A pattern; an invalid regex is refused here, naming it.
    pub fn new(regex: &str) -> Result<Self> {
        let pattern = LogPattern::unchecked(regex);
        pattern.validate()?;
        Ok(pattern)
    }

    /// A pattern whose regex, if invalid, is reported by [`Wait::validate`] (which every start
    /// runs before anything is created) rather than here.
    fn unchecked(regex: &str) -> Self {
        LogPattern {
            source: regex.to_string(),
            regex: Regex::new(regex).map_err(|e| e.to_string()),
            times: 1,
            stream: None,
        }
    }

    /// Requires `times` matching lines.
    pub fn times(mut self, times: usize) -> Self {
        self.times = times.max(1);
        self
    }

    /// Matches only lines of `stream` (stdout or stderr).
    pub fn on(mut self, stream: LogStream) -> Self {
        self.stream = Some(stream);
        self
    }

    /// An [`Error::Invalid`] naming the regex when it does not compile.
    fn validate(&self) -> Result<()> {
        match &self.regex {
            Ok(_) => Ok(()),
            Err(reason) => Err(Error::invalid("log pattern", &self.source, reason.clone())),
        }
    }

    /// Whether `line` (written to `stream`) matches.
    fn matches(&self, stream: LogStream, line: &str) -> bool {
        self.stream.is_none_or(|s| s == stream)
            && self.regex.as_ref().is_ok_and(|r| r.is_match(line))
    }
}

impl fmt::Display for LogPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.source)?;
        if self.times > 1 {
            write!(f, " x{}", self.times)?;
        }
        if let Some(s) = self.stream {
            write!(f, " on {s}")?;
        }
        Ok(())
    }
}

/// Log lines matching patterns; `ordered` requires each pattern to be met after the previous.
struct Logs {
    patterns: Vec<LogPattern>,
    ordered: bool,
}

impl Wait {
    /// One log line matching `regex`. An invalid regex is reported by [`validate`](Self::validate),
    /// which every start runs before anything is created: the error names the regex.
    pub fn log(regex: &str) -> Wait {
        Wait::logs_in_order(vec![LogPattern::unchecked(regex)])
    }

    /// `times` log lines matching `regex` (an invalid regex is reported as by [`log`](Self::log)).
    pub fn log_times(regex: &str, times: usize) -> Wait {
        Wait::logs_in_order(vec![LogPattern::unchecked(regex).times(times)])
    }

    /// Log lines matching `patterns`, each after the previous one was met.
    pub fn logs_in_order(patterns: Vec<LogPattern>) -> Wait {
        Wait::on(Logs {
            patterns,
            ordered: true,
        })
    }

    /// Log lines matching `patterns`, in any order.
    pub fn logs_any_order(patterns: Vec<LogPattern>) -> Wait {
        Wait::on(Logs {
            patterns,
            ordered: false,
        })
    }
}

impl Condition for Logs {
    fn check<'a>(&'a self, inner: &'a Arc<Inner>) -> Checking<'a> {
        Box::pin(check_logs(inner, &self.patterns, self.ordered))
    }

    fn validate(&self) -> Result<()> {
        self.patterns.iter().try_for_each(LogPattern::validate)
    }

    fn reads_log(&self) -> bool {
        true
    }
}

impl fmt::Display for Logs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.ordered {
            "log lines in order ["
        } else {
            "log lines in any order ["
        })?;
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        f.write_str("]")
    }
}

/// Whether the log lines of the container's current run meet `patterns`. The engine keeps the
/// lines of earlier runs (a container stopped and started again): they do not count.
async fn check_logs(
    inner: &Inner,
    patterns: &[LogPattern],
    ordered: bool,
) -> Result<(), Impossible> {
    let mut counts = vec![0usize; patterns.len()];
    let done = |counts: &[usize]| counts.iter().zip(patterns).all(|(c, p)| *c >= p.times);
    if done(&counts) {
        return Ok(());
    }
    let mut lines = crate::logs::stamped_line_stream(
        inner.docker().clone(),
        inner.name.clone(),
        LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            ..Default::default()
        },
    );
    // Where the current run's lines begin follows from the container's state, asked for while
    // the log is being read (no time lost). The engine's `since` has whole seconds: lines are
    // told apart here, by their timestamps.
    let (run_start, first) = tokio::join!(current_run_start(inner), lines.next());
    let run_start = run_start.map_err(|e| Impossible(format!("because {e}")))?;
    let mut next = first;
    let mut current = 0;
    while let Some(line) = next {
        let Ok(line) = line else { break };
        let earlier_run = run_start.is_some_and(|start| line.time.is_some_and(|t| t < start));
        let line = line.line;
        if earlier_run {
            next = lines.next().await;
            continue;
        }
        if ordered {
            let p = &patterns[current];
            if p.matches(line.stream, &line.text) {
                counts[current] += 1;
                if counts[current] >= p.times {
                    current += 1;
                    if current == patterns.len() {
                        return Ok(());
                    }
                }
            }
        } else {
            for (i, p) in patterns.iter().enumerate() {
                if counts[i] < p.times && p.matches(line.stream, &line.text) {
                    counts[i] += 1;
                }
            }
            if done(&counts) {
                return Ok(());
            }
        }
        next = lines.next().await;
    }
    Err(Impossible(LOG_ENDED.into()))
}

/// When the log of the container's current (or, once it stopped, last) run begins, in the
/// engine's clock; `None` when there is no earlier run whose lines are to be left out.
async fn current_run_start(inner: &Inner) -> Result<Option<std::time::SystemTime>> {
    // Started once by this handle and never seen stopping (the usual start-to-ready): no earlier
    // run to leave out, and no engine call to make.
    if inner.on_first_run() {
        return Ok(None);
    }
    let info = inspect_here(inner).await?;
    Ok(inner.run_log_start(&info.state.unwrap_or_default()))
}
