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
//!
//! Each kind of condition is one file of `wait/` behind an internal condition trait (how it is
//! checked, whether it reads the log or probes, needs published ports or waits for the exit), with
//! its constructors on [`Wait`]; this file composes them and drives them under the deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::{LogsOptions, WaitContainerOptions};
use futures_util::{FutureExt, StreamExt};

use crate::container::Inner;
use crate::error::{Error, Result};

mod custom;
mod exit;
mod health;
mod http;
pub(crate) mod log;
mod running;
mod tcp;
pub(crate) mod tree;

pub use custom::{CheckTarget, CustomCheck};
// `Wait` and `LogPattern` are public at the crate root (`seaworthy::Wait`), their one path.
pub(crate) use tree::Wait;
use tree::{Checking, Condition, Node};

/// How often HTTP, TCP and custom checks are retried.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// How long the container's exit and a condition failing because of it may lie apart: the
/// condition still holding within this time after the exit counts; a condition that cannot hold is
/// blamed on an exit recorded within this time.
const EXIT_SETTLE: Duration = Duration::from_millis(500);
/// Lines of log carried by a failed wait.
const LOG_TAIL_LINES: usize = 50;

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
        if matches!(wait.node, Node::Leaf(_)) {
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
    match &wait.node {
        Node::All(v) | Node::Any(v) => {
            for (child, w) in numbered(v, node) {
                collect_leaves(w, child, out);
            }
        }
        Node::Leaf(_) => out.push((node, wait)),
    }
}

/// Waits until `wait` holds for `inner`, or fails at `deadline` with the log tail.
pub(crate) async fn wait_until(inner: &Arc<Inner>, wait: &Wait, deadline: Instant) -> Result<()> {
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
    } else if matches!(&wait.node, Node::Leaf(c) if c.reads_log()) {
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
    inner: &Arc<Inner>,
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
    inner: &'a Arc<Inner>,
    wait: &'a Wait,
    after_exit: bool,
    progress: &'a Progress,
    node: usize,
) -> Checking<'a> {
    Box::pin(async move {
        let result = check_node(inner, wait, after_exit, progress, node).await;
        progress.record(node, &result);
        result
    })
}

async fn check_node(
    inner: &Arc<Inner>,
    wait: &Wait,
    after_exit: bool,
    progress: &Progress,
    node: usize,
) -> Result<(), Impossible> {
    match &wait.node {
        Node::Leaf(condition) if after_exit && !condition.reads_log() => {
            Err(Impossible("because the container exited".into()))
        }
        Node::Leaf(condition) => condition.check(inner).await,
        // One part that cannot hold fails the whole at once.
        Node::All(waits) => futures_util::future::try_join_all(
            numbered(waits, node)
                .into_iter()
                .map(|(n, w)| check(inner, w, after_exit, progress, n)),
        )
        .await
        .map(|_| ()),
        Node::Any(waits) => {
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
