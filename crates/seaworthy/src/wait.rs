//! Readiness conditions, composed and driven by engine streams and events under one deadline.
//!
//! A [`Wait`] says when a container is ready: log lines matching regexes (in order or in any
//! order, each a number of times), an HTTP status on a path, a TCP port accepting, the engine's
//! healthcheck reporting healthy, running for a while, having exited with a code, a check of your
//! own, or any combination with [`Wait::all`] and [`Wait::any`]. Logs are followed as a stream (each
//! line read once), the healthcheck and exit through the engine's events and wait API; only HTTP,
//! TCP and custom checks probe, every 50 ms. While waiting, the container exiting fails the wait at
//! once (unless the wait is for its exit), and every failure names the condition and carries the
//! last 50 lines of the container's log; a combined wait's failure also names the conditions in it
//! that did not hold, and those that did.
//!
//! Log conditions count only the lines of the container's current run (or, once it stopped, its
//! last run): the engine keeps the lines of every run of a container stopped and started again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::{EventsOptions, LogsOptions, WaitContainerOptions};
use futures_util::{FutureExt, StreamExt};
use regex::Regex;

use crate::container::{inspect_here, Inner};
use crate::error::{Error, Result};
use crate::logs::LogStream;

/// How often HTTP, TCP and custom checks are retried.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// How long the container's exit and a condition failing because of it may lie apart: the
/// condition still holding within this time after the exit counts; a condition that cannot hold is
/// blamed on an exit recorded within this time.
const EXIT_SETTLE: Duration = Duration::from_millis(500);
/// Lines of log carried by a failed wait.
const LOG_TAIL_LINES: usize = 50;

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

/// A check supplied by the caller (for example a fixture's protocol-level readiness check): it is
/// called every 50 ms until it returns `Ok(true)`; `Err` fails the wait at once.
pub type CustomCheck =
    Arc<dyn Fn(CheckTarget) -> Pin<Box<dyn Future<Output = Result<bool>> + Send>> + Send + Sync>;

/// What a custom check may use to reach the container.
#[derive(Debug, Clone)]
pub struct CheckTarget {
    /// The container's engine name.
    pub name: String,
    /// The host at which published ports are reached.
    pub host: String,
    /// Published TCP ports: container port -> host port.
    pub ports: std::collections::HashMap<u16, u16>,
}

/// A readiness condition. Build one with the constructors and combine with [`Wait::all`] / [`Wait::any`].
#[derive(Clone)]
#[non_exhaustive]
pub enum Wait {
    /// Log lines matching patterns; `ordered` requires each pattern to be met after the previous.
    Logs {
        /// The patterns.
        patterns: Vec<LogPattern>,
        /// Whether the patterns must be met in order.
        ordered: bool,
    },
    /// An HTTP GET of `path` on published `port` answering `status` (any 2xx when `None`).
    Http {
        /// Container port.
        port: u16,
        /// Path, starting with `/`.
        path: String,
        /// Expected status.
        status: Option<u16>,
    },
    /// A TCP connection to published `port` that the server inside accepts.
    Tcp {
        /// Container port.
        port: u16,
    },
    /// The engine's healthcheck reports healthy.
    Healthy,
    /// The container keeps running for this long.
    RunningFor(Duration),
    /// The container exits, with this code when given.
    Exited {
        /// Expected exit code.
        code: Option<i64>,
    },
    /// A check of the caller's own.
    Custom {
        /// What the check tests, for error messages.
        description: String,
        /// The check.
        check: CustomCheck,
    },
    /// All conditions (checked concurrently).
    All(Vec<Wait>),
    /// The first condition that holds.
    Any(Vec<Wait>),
}

impl Wait {
    /// The first error in the condition or its parts (a log regex that does not compile), as an
    /// [`Error::Invalid`] naming the bad string. [`ContainerDefinition::validate`](crate::ContainerDefinition::validate)
    /// runs it, so a start refuses an invalid wait before any container, network or volume exists.
    pub fn validate(&self) -> Result<()> {
        match self {
            Wait::Logs { patterns, .. } => patterns.iter().try_for_each(LogPattern::validate),
            Wait::All(waits) | Wait::Any(waits) => waits.iter().try_for_each(Wait::validate),
            _ => Ok(()),
        }
    }

    /// Whether checking this condition needs the published ports (HTTP, TCP, custom checks).
    pub(crate) fn needs_ports(&self) -> bool {
        match self {
            Wait::Http { .. } | Wait::Tcp { .. } | Wait::Custom { .. } => true,
            Wait::All(waits) | Wait::Any(waits) => waits.iter().any(Wait::needs_ports),
            _ => false,
        }
    }

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
        Wait::Logs {
            patterns,
            ordered: true,
        }
    }

    /// Log lines matching `patterns`, in any order.
    pub fn logs_any_order(patterns: Vec<LogPattern>) -> Wait {
        Wait::Logs {
            patterns,
            ordered: false,
        }
    }

    /// An HTTP GET of `path` on `port` answering any 2xx status.
    pub fn http(port: u16, path: impl Into<String>) -> Wait {
        Wait::Http {
            port,
            path: path.into(),
            status: None,
        }
    }

    /// An HTTP GET of `path` on `port` answering exactly `status`.
    pub fn http_status(port: u16, path: impl Into<String>, status: u16) -> Wait {
        Wait::Http {
            port,
            path: path.into(),
            status: Some(status),
        }
    }

    /// A TCP connection to `port` accepted by the server in the container.
    pub fn tcp(port: u16) -> Wait {
        Wait::Tcp { port }
    }

    /// The healthcheck reports healthy.
    pub fn healthy() -> Wait {
        Wait::Healthy
    }

    /// The container keeps running for `duration`.
    pub fn running_for(duration: Duration) -> Wait {
        Wait::RunningFor(duration)
    }

    /// The container exits with `code`.
    pub fn exit_code(code: i64) -> Wait {
        Wait::Exited { code: Some(code) }
    }

    /// The container exits, with any code.
    pub fn exited() -> Wait {
        Wait::Exited { code: None }
    }

    /// A check of your own, retried every 50 ms until it returns `Ok(true)`.
    pub fn custom<F, Fut>(description: impl Into<String>, check: F) -> Wait
    where
        F: Fn(CheckTarget) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool>> + Send + 'static,
    {
        Wait::Custom {
            description: description.into(),
            check: Arc::new(move |t| Box::pin(check(t))),
        }
    }

    /// All of `waits`.
    pub fn all(waits: impl IntoIterator<Item = Wait>) -> Wait {
        Wait::All(waits.into_iter().collect())
    }

    /// The first of `waits` to hold.
    pub fn any(waits: impl IntoIterator<Item = Wait>) -> Wait {
        Wait::Any(waits.into_iter().collect())
    }

    /// `self` and `other`.
    pub fn and(self, other: Wait) -> Wait {
        match self {
            Wait::All(mut v) => {
                v.push(other);
                Wait::All(v)
            }
            w => Wait::All(vec![w, other]),
        }
    }

    /// How many nodes the wait's tree has (itself and its parts, all the way down).
    fn size(&self) -> usize {
        match self {
            Wait::All(v) | Wait::Any(v) => 1 + v.iter().map(Wait::size).sum::<usize>(),
            _ => 1,
        }
    }

    fn expects_exit(&self) -> bool {
        match self {
            Wait::Exited { .. } => true,
            Wait::All(v) | Wait::Any(v) => v.iter().any(Wait::expects_exit),
            _ => false,
        }
    }
}

impl fmt::Debug for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Wait({self})")
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, v: &[Wait], sep: &str| -> fmt::Result {
            f.write_str("(")?;
            for (i, w) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{w}")?;
            }
            f.write_str(")")
        };
        match self {
            Wait::Logs { patterns, ordered } => {
                f.write_str(if *ordered {
                    "log lines in order ["
                } else {
                    "log lines in any order ["
                })?;
                for (i, p) in patterns.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{p}")?;
                }
                f.write_str("]")
            }
            Wait::Http { port, path, status } => match status {
                Some(s) => write!(f, "HTTP GET {path} on port {port} answering {s}"),
                None => write!(f, "HTTP GET {path} on port {port} answering 2xx"),
            },
            Wait::Tcp { port } => write!(f, "TCP port {port} accepting connections"),
            Wait::Healthy => f.write_str("healthcheck healthy"),
            Wait::RunningFor(d) => write!(f, "running for {d:?}"),
            Wait::Exited { code: Some(c) } => write!(f, "exit with code {c}"),
            Wait::Exited { code: None } => f.write_str("exit"),
            Wait::Custom { description, .. } => f.write_str(description),
            Wait::All(v) => list(f, v, " and "),
            Wait::Any(v) => list(f, v, " or "),
        }
    }
}

/// Why a log condition cannot hold any more.
const LOG_ENDED: &str = "because the log ended (the container stopped)";

/// Why a condition cannot hold (as opposed to "not yet").
struct Impossible(String);

/// What became of one node of a wait's tree.
#[derive(Clone)]
enum Outcome {
    /// Not decided (still being checked when the wait ended).
    Pending,
    /// It held.
    Held,
    /// It could not hold, for this reason.
    Failed(String),
}

/// What became of each node of a wait's tree (numbered in pre-order, the wait itself 0), so that
/// a failed combined wait can say which of its parts held and which did not.
struct Progress(std::sync::Mutex<Vec<Outcome>>);

impl Progress {
    fn new(wait: &Wait) -> Progress {
        Progress(std::sync::Mutex::new(vec![Outcome::Pending; wait.size()]))
    }

    /// Records that node `node` held or failed; a part that held once stays held (checked again
    /// after the container exited, a probe fails, but it did hold).
    fn record(&self, node: usize, result: &Result<(), Impossible>) {
        let mut outcomes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = outcomes.get_mut(node) {
            match (result, &*slot) {
                (_, Outcome::Held) => {}
                (Ok(()), _) => *slot = Outcome::Held,
                (Err(Impossible(why)), _) => *slot = Outcome::Failed(why.clone()),
            }
        }
    }

    /// For a combined wait, ` (not held: A (because ...), B; held: C)` naming its simple
    /// conditions; empty for a simple one.
    fn summary(&self, wait: &Wait) -> String {
        if !matches!(wait, Wait::All(_) | Wait::Any(_)) {
            return String::new();
        }
        let outcomes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut leaves = Vec::new();
        collect_leaves(wait, 0, &mut leaves);
        let (mut held, mut not_held) = (Vec::new(), Vec::new());
        for (node, leaf) in leaves {
            match outcomes.get(node).unwrap_or(&Outcome::Pending) {
                Outcome::Held => held.push(leaf.to_string()),
                Outcome::Pending => not_held.push(leaf.to_string()),
                Outcome::Failed(why) => not_held.push(format!("{leaf} ({why})")),
            }
        }
        let held = if held.is_empty() {
            "none".to_string()
        } else {
            held.join(", ")
        };
        if not_held.is_empty() {
            format!(" (held: {held})")
        } else {
            format!(" (not held: {}; held: {held})", not_held.join(", "))
        }
    }
}

/// The simple conditions of `wait` (node `node`), with their node numbers, in order.
fn collect_leaves<'a>(wait: &'a Wait, node: usize, out: &mut Vec<(usize, &'a Wait)>) {
    match wait {
        Wait::All(v) | Wait::Any(v) => {
            for (child, w) in numbered(v, node) {
                collect_leaves(w, child, out);
            }
        }
        leaf => out.push((node, leaf)),
    }
}

/// Waits until `wait` holds for `inner`, or fails at `deadline` with the log tail.
pub(crate) async fn wait_until(inner: &Inner, wait: &Wait, deadline: Instant) -> Result<()> {
    wait.validate()?;
    let progress = Progress::new(wait);
    let progress = &progress;
    let timeout = deadline.saturating_duration_since(Instant::now());
    let outcome = |r: Result<(), Impossible>| match r {
        Ok(()) => None,
        Err(Impossible(why)) => Some(why),
    };
    let failed = |why: String| wait_failed(inner, wait, why, progress);
    let live = check(inner, wait, false, progress, 0);
    let failure: Option<String> = if wait.expects_exit() {
        match tokio::time::timeout_at(deadline.into(), live).await {
            Ok(r) => outcome(r),
            Err(_) => Some(format!("within {timeout:?}")),
        }
    } else if matches!(wait, Wait::Logs { .. }) {
        // A log wait needs no exit watch running beside it (one engine call less per start):
        // the log ends when the container stops, and only then is the exit code asked for.
        let exit_code = match tokio::time::timeout_at(deadline.into(), live).await {
            Ok(Ok(())) => None,
            Ok(Err(Impossible(why))) if why == LOG_ENDED => {
                match tokio::time::timeout_at(deadline.into(), exit_status(inner)).await {
                    Ok(Some(code)) => Some(code),
                    // No answer about the exit (the engine went away with the log): say
                    // what is known, now rather than at the deadline.
                    Ok(None) | Err(_) => return failed(why).await,
                }
            }
            Ok(Err(Impossible(why))) => return failed(why).await,
            Err(_) => return failed(format!("within {timeout:?}")).await,
        };
        after_exit(inner, wait, exit_code, progress).await
    } else {
        // Race the condition against the container's exit.
        let exit = watch_exit(inner);
        tokio::pin!(exit);
        tokio::pin!(live);
        let exit_code = tokio::select! {
            r = &mut live => match r {
                // Held, unless the container had exited already (a probe may be fooled by the
                // engine's port proxy while the container goes away).
                Ok(()) => (&mut exit).now_or_never(),
                // A condition that can no longer hold is often a symptom of the exit (the log
                // ended, the port was never bound): the exit is the cause, report it. The engine
                // ends a container's log streams a moment before it records the exit.
                // The log ending means the container stopped: its exit is on the way.
                Err(Impossible(why)) => {
                    let settle = if why == LOG_ENDED {
                        tokio::time::timeout_at(deadline.into(), &mut exit).await
                    } else {
                        tokio::time::timeout(EXIT_SETTLE, &mut exit).await
                    };
                    match settle {
                        Ok(code) => Some(code),
                        Err(_) => return failed(why).await,
                    }
                }
            },
            code = &mut exit => Some(code),
            _ = tokio::time::sleep_until(deadline.into()) => {
                return failed(format!("within {timeout:?}")).await
            }
        };
        after_exit(inner, wait, exit_code, progress).await
    };
    match failure {
        None => Ok(()),
        Some(why) => failed(why).await,
    }
}

/// After the exit (`Some(code)`) only the log can still hold what the condition waits for
/// (output the container wrote just before exiting): look at it once more, probes count as
/// failed. `None` when it held, else why not.
async fn after_exit(
    inner: &Inner,
    wait: &Wait,
    exit_code: Option<Option<i64>>,
    progress: &Progress,
) -> Option<String> {
    match exit_code {
        None => None,
        Some(code) => {
            match tokio::time::timeout(EXIT_SETTLE, check(inner, wait, true, progress, 0)).await {
                Ok(Ok(())) => None,
                Ok(Err(_)) | Err(_) => Some(exited(code)),
            }
        }
    }
}

/// The error of a wait on `inner` that failed for `why`, with the log tail; a combined wait also
/// names its parts that did not hold, and those that did.
async fn wait_failed(inner: &Inner, wait: &Wait, why: String, progress: &Progress) -> Result<()> {
    Err(Error::Wait {
        container: inner.name.clone(),
        condition: wait.to_string(),
        why: format!("{why}{}", progress.summary(wait)),
        log_tail: log_tail(inner, LOG_TAIL_LINES).await,
    })
}

/// `because the container exited with code N`, the reason of a wait cut short by the exit.
fn exited(code: Option<i64>) -> String {
    match code {
        Some(c) => format!("because the container exited with code {c}"),
        None => "because the container stopped".to_string(),
    }
}

/// Resolves when the container is no longer running, with its exit code when known.
async fn watch_exit(inner: &Inner) -> Option<i64> {
    match exit_status(inner).await {
        Some(code) => code,
        None => {
            // The wait API failed (engine restarting?): never resolve, let the deadline decide.
            std::future::pending::<()>().await;
            None
        }
    }
}

/// The container's exit once it is no longer running (`Some`, with the code when known), or
/// `None` when the engine's wait API failed (the engine went away?).
async fn exit_status(inner: &Inner) -> Option<Option<i64>> {
    let mut stream = inner.docker().wait_container(
        &inner.name,
        Some(WaitContainerOptions {
            condition: "not-running".into(),
        }),
    );
    match stream.next().await {
        Some(Ok(r)) => Some(Some(r.status_code)),
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
            Some(Some(code))
        }
        Some(Err(_)) | None => None,
    }
}

/// Whether `wait` (node `node` of the tree `progress` follows) holds; with `after_exit`, on a
/// container that exited: only its log is looked at, probes (HTTP, TCP, healthcheck, running,
/// custom) fail at once.
fn check<'a>(
    inner: &'a Inner,
    wait: &'a Wait,
    after_exit: bool,
    progress: &'a Progress,
    node: usize,
) -> Pin<Box<dyn Future<Output = Result<(), Impossible>> + Send + 'a>> {
    Box::pin(async move {
        let result = check_node(inner, wait, after_exit, progress, node).await;
        progress.record(node, &result);
        result
    })
}

async fn check_node(
    inner: &Inner,
    wait: &Wait,
    after_exit: bool,
    progress: &Progress,
    node: usize,
) -> Result<(), Impossible> {
    let log_or_composite = matches!(wait, Wait::Logs { .. } | Wait::All(_) | Wait::Any(_));
    if after_exit && !log_or_composite {
        return Err(Impossible("because the container exited".into()));
    }
    match wait {
        Wait::Logs { patterns, ordered } => check_logs(inner, patterns, *ordered).await,
        Wait::Http { port, path, status } => check_http(inner, *port, path, *status).await,
        Wait::Tcp { port } => check_tcp(inner, *port).await,
        Wait::Healthy => check_healthy(inner).await,
        Wait::RunningFor(d) => {
            tokio::time::sleep(*d).await;
            Ok(())
        }
        Wait::Exited { code } => check_exited(inner, *code).await,
        Wait::Custom { check, .. } => loop {
            match check(target(inner)).await {
                Ok(true) => return Ok(()),
                Ok(false) => tokio::time::sleep(PROBE_INTERVAL).await,
                Err(e) => return Err(Impossible(format!("because the check failed: {e}"))),
            }
        },
        // One part that cannot hold fails the whole at once.
        Wait::All(waits) => futures_util::future::try_join_all(
            numbered(waits, node)
                .into_iter()
                .map(|(n, w)| check(inner, w, after_exit, progress, n)),
        )
        .await
        .map(|_| ()),
        Wait::Any(waits) => {
            if waits.is_empty() {
                return Ok(());
            }
            let mut futures: Vec<_> = numbered(waits, node)
                .into_iter()
                .map(|(n, w)| check(inner, w, after_exit, progress, n))
                .collect();
            let mut last = Impossible(String::new());
            while !futures.is_empty() {
                let (r, _, rest) = futures_util::future::select_all(futures).await;
                match r {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e,
                }
                futures = rest;
            }
            Err(last)
        }
    }
}

/// The parts of the combined wait `node`, with their node numbers.
fn numbered(waits: &[Wait], node: usize) -> Vec<(usize, &Wait)> {
    let mut child = node + 1;
    waits
        .iter()
        .map(|w| {
            let numbered = (child, w);
            child += w.size();
            numbered
        })
        .collect()
}

fn target(inner: &Inner) -> CheckTarget {
    let ports = inner
        .ports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|((_, proto), _)| *proto == crate::spec::Protocol::Tcp)
        .map(|((p, _), h)| (*p, *h))
        .collect();
    CheckTarget {
        name: inner.name.clone(),
        host: inner.session.engine().host().to_string(),
        ports,
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

async fn check_http(
    inner: &Inner,
    port: u16,
    path: &str,
    status: Option<u16>,
) -> Result<(), Impossible> {
    let Some(host_port) = target(inner).ports.get(&port).copied() else {
        return Err(Impossible(format!(
            "because port {port} is not published (add with_port({port}))"
        )));
    };
    let url = format!(
        "http://{}/{}",
        host_with_port(inner.session.engine().host(), host_port),
        path.trim_start_matches('/')
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| Impossible(format!("because no HTTP client could be built: {e}")))?;
    loop {
        if let Ok(response) = client.get(&url).send().await {
            let got = response.status().as_u16();
            let ok = match status {
                Some(s) => got == s,
                None => (200..300).contains(&got),
            };
            if ok {
                return Ok(());
            }
            tracing::trace!(url, got, "HTTP wait: not yet");
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// `host:port`, bracketing IPv6 addresses.
pub(crate) fn host_with_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn check_tcp(inner: &Inner, port: u16) -> Result<(), Impossible> {
    let Some(host_port) = target(inner).ports.get(&port).copied() else {
        return Err(Impossible(format!(
            "because port {port} is not published (add with_port({port}))"
        )));
    };
    let address = host_with_port(inner.session.engine().host(), host_port);
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await {
            // The engine's userland proxy accepts on the host even when nothing listens inside, then
            // closes at once: an immediate EOF means "not yet". Silence or data means accepted.
            use tokio::io::AsyncReadExt;
            let mut byte = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await {
                Ok(Ok(1..)) => return Ok(()),
                // The proxy is silent too while it tries to reach a container that just went
                // away: silence counts only from a running container.
                Err(_) => {
                    let info = inspect_here(inner)
                        .await
                        .map_err(|e| Impossible(format!("because {e}")))?;
                    if info.state.and_then(|s| s.running) == Some(true) {
                        return Ok(());
                    }
                    return Err(Impossible("because the container is not running".into()));
                }
                Ok(Ok(0)) | Ok(Err(_)) => {}
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

async fn check_healthy(inner: &Inner) -> Result<(), Impossible> {
    let info = inspect_here(inner)
        .await
        .map_err(|e| Impossible(format!("because {e}")))?;
    let configured = info.config.and_then(|c| c.healthcheck);
    let state = info.state.unwrap_or_default();
    let health = state.health.unwrap_or_default();
    match health.status {
        Some(bollard::models::HealthStatusEnum::HEALTHY) => return Ok(()),
        None
        | Some(bollard::models::HealthStatusEnum::NONE)
        | Some(bollard::models::HealthStatusEnum::EMPTY) => {
            return Err(Impossible(
                "because the container has no healthcheck (set one with with_healthcheck)".into(),
            ))
        }
        _ => {}
    }
    // The engine sends the events request only when the stream is first polled, after the
    // look above: a transition in between would be lost. The stream therefore starts at the
    // moment the look describes, in the engine's clock: the end of the last check it lists (a
    // later transition comes from a later check, and its event is recorded after that check
    // ended), or the start of the run before any check ended. The engine replays the events
    // recorded since then, and goes on with the new ones.
    let parse = |t: &Option<String>| t.as_deref().and_then(crate::logs::parse_timestamp);
    // A check's end is a string or a date, depending on the features bollard is built with (a
    // dependency of the user's may enable `time`); its serialised form is the engine's string.
    let end_of = |check: &bollard::models::HealthcheckResult| {
        serde_json::to_value(check)
            .ok()?
            .get("End")?
            .as_str()
            .and_then(crate::logs::parse_timestamp)
    };
    let since = health
        .log
        .iter()
        .flatten()
        .filter_map(end_of)
        .chain(parse(&state.started_at))
        .max()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()));
    let events = async {
        let mut events = inner.docker().events(Some(EventsOptions {
            since,
            filters: Some(std::collections::HashMap::from([
                ("container".to_string(), vec![inner.name.clone()]),
                ("event".to_string(), vec!["health_status".to_string()]),
            ])),
            ..Default::default()
        }));
        while let Some(event) = events.next().await {
            match event {
                Ok(e) if e.action.as_deref() == Some("health_status: healthy") => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(Impossible(format!("because the event stream failed: {e}"))),
            }
        }
        Err(Impossible("because the event stream ended".into()))
    };
    // Podman runs healthchecks from systemd timers: where there is no systemd, none runs and
    // the status never changes. On Podman, Seaworthy also runs the container's check itself
    // (exec); whichever says healthy first ends the wait.
    match configured {
        Some(check) if inner.session.engine().is_podman().await => {
            tokio::select! {
                done = events => done,
                done = run_healthcheck_here(inner, check) => done,
            }
        }
        _ => events.await,
    }
}

/// Runs the container's healthcheck `check` by exec until it succeeds: every `interval`, at
/// most every second (a readiness wait need not be as patient as the engine's schedule).
async fn run_healthcheck_here(
    inner: &Inner,
    check: bollard::models::HealthConfig,
) -> Result<(), Impossible> {
    let test = check.test.unwrap_or_default();
    let argv: Vec<String> = match test.first().map(String::as_str) {
        Some("CMD-SHELL") => vec!["sh".into(), "-c".into(), test[1..].join(" ")],
        Some("CMD") => test[1..].to_vec(),
        _ => return std::future::pending().await,
    };
    let interval = check
        .interval
        .filter(|ns| *ns > 0)
        .map(|ns| Duration::from_nanos(ns.unsigned_abs()))
        .unwrap_or(Duration::from_secs(1))
        .min(Duration::from_secs(1));
    let id = inner.id();
    loop {
        let run = crate::exec::exec_here(
            inner.docker(),
            &id,
            &inner.name,
            crate::Exec::new(argv.clone()),
        );
        if let Ok(out) = run.await {
            if out.exit_code == 0 {
                return Ok(());
            }
        }
        tokio::time::sleep(interval).await;
    }
}

async fn check_exited(inner: &Inner, code: Option<i64>) -> Result<(), Impossible> {
    match watch_exit(inner).await {
        Some(got) if code.is_none_or(|c| c == got) => Ok(()),
        Some(got) => Err(Impossible(format!(
            "because the container exited with code {got}"
        ))),
        None => Err(Impossible("because its exit could not be observed".into())),
    }
}

/// The last `n` lines of the container's log (stdout and stderr), best effort.
pub(crate) async fn log_tail(inner: &Inner, n: usize) -> Vec<String> {
    let lines = crate::logs::line_stream(
        inner.docker().clone(),
        inner.name.clone(),
        LogsOptions {
            stdout: true,
            stderr: true,
            tail: n.to_string(),
            ..Default::default()
        },
    );
    let collected = tokio::time::timeout(Duration::from_secs(5), lines.collect::<Vec<_>>()).await;
    match collected {
        Ok(lines) => lines
            .into_iter()
            .filter_map(|l| l.ok())
            .map(|l| l.text)
            .collect(),
        Err(_) => vec!["(the log could not be read within 5 s)".into()],
    }
}
