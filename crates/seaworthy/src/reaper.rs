//! The reaper: for SIGKILL (and crashes), each process starts one, the same executable re-executed
//! in a process group of its own (`SEAWORTHY_REAPER=1`, caught by a constructor before `main`),
//! which watches its owner. When the owner is gone it removes the owner's resources; then, if
//! resources shared by the run exist, it waits for the runner process to be gone and removes those
//! and the run's files.

use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::gc::{list_labelled, remove_all, GcReport, LabelledResource};
use crate::identity::process_alive;
use crate::session::{LABEL_OWNER, LABEL_SESSION, OWNER_RUN};
use crate::state::{kept_ids, remove_run_files, state_dir};

const ENV_REAPER: &str = "SEAWORTHY_REAPER";

/// `var` as a number of seconds, else `default` seconds.
fn env_seconds(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// How long a reaper keeps trying to reach the engine and remove what its owner left:
/// `SEAWORTHY_REAPER_PATIENCE` seconds, 10 minutes by default.
fn reaper_patience() -> Duration {
    env_seconds("SEAWORTHY_REAPER_PATIENCE", 600)
}

/// How long an endpoint where nothing answers (connection refused, its socket gone) is tried
/// before the reaper gives up on it: `SEAWORTHY_REAPER_GONE_AFTER` seconds, 30 by default (an
/// engine restarting comes back within that), never more than the patience. An engine that
/// answers, even with errors, or is slow to answer (busy) gets the whole patience.
fn gone_after() -> Duration {
    env_seconds("SEAWORTHY_REAPER_GONE_AFTER", 30).min(reaper_patience())
}

/// When the reaper tries again after a failure, and when it gives up: a busy engine is retried,
/// backing off, until the patience runs out (a line per attempt); an endpoint where nothing
/// answers is given up after [`gone_after`], with one line.
struct Retry {
    endpoint: String,
    started: Instant,
    deadline: Instant,
    pause: Duration,
    /// Since when nothing has answered at the endpoint (reset by any answer).
    silent_since: Option<Instant>,
}

impl Retry {
    fn new(endpoint: &str) -> Retry {
        let started = Instant::now();
        Retry {
            endpoint: endpoint.to_string(),
            started,
            deadline: started + reaper_patience(),
            pause: Duration::from_millis(200),
            silent_since: None,
        }
    }

    /// The engine answered: a later silence counts from its own start.
    fn answered(&mut self) {
        self.silent_since = None;
    }

    /// How long to wait before trying `what` again after `e`, or `None` to give up (said on
    /// stderr, the reaper's log).
    fn after(&mut self, what: &str, e: &crate::Error) -> Option<Duration> {
        let now = Instant::now();
        let wait = self.pause;
        self.pause = (self.pause * 2).min(Duration::from_secs(2));
        if e.is_endpoint_silent() {
            let since = *self.silent_since.get_or_insert(now);
            if now + wait >= since + gone_after() {
                eprintln!(
                    "reaper: giving up: nothing answers at {} any more ({:?} of trying: {e}); \
                     what is left there stays until `seaworthy gc` runs against that engine",
                    self.endpoint,
                    now - self.started,
                );
                return None;
            }
            return Some(wait);
        }
        self.silent_since = None;
        if now + wait >= self.deadline {
            eprintln!(
                "reaper: giving up after {:?} (SEAWORTHY_REAPER_PATIENCE): {what}: {e}",
                now - self.started
            );
            return None;
        }
        eprintln!("reaper: {what}: {e}; trying again in {wait:?}");
        Some(wait)
    }
}

/// Starts this process's reaper (once), unless `SEAWORTHY_REAPER=off` or resources are kept.
pub(crate) fn spawn_reaper(endpoint: &str, run_id: &str, owner: &str, runner: &str) {
    if std::env::var(ENV_REAPER).is_ok_and(|v| v == "off" || v == "0") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(state_dir().join(format!("reaper-{}.log", std::process::id())));
    let mut command = std::process::Command::new(exe);
    command
        .env(ENV_REAPER, "1")
        .env("SEAWORTHY_REAPER_ENDPOINT", endpoint)
        .env("SEAWORTHY_REAPER_RUN", run_id)
        .env("SEAWORTHY_REAPER_OWNER", owner)
        .env("SEAWORTHY_REAPER_RUNNER", runner)
        .envs(crate::engine::connect_env(endpoint))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .process_group(0);
    match log {
        Ok(f) => command.stderr(f),
        Err(_) => command.stderr(std::process::Stdio::null()),
    };
    match command.spawn() {
        Ok(child) => {
            tracing::debug!(pid = child.id(), "started the reaper");
            // Nobody waits for it: it outlives this process. Don't keep a zombie if it ends first.
            std::thread::spawn(move || {
                let mut child = child;
                let _ = child.wait();
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not start the reaper; `seaworthy gc` removes what a killed process leaves")
        }
    }
}

// SAFETY: runs before main; it only reads the environment and returns unless this process was
// started as a reaper, in which case it never returns to main.
#[ctor::ctor(unsafe)]
fn reaper_entry() {
    if std::env::var(ENV_REAPER).is_ok_and(|v| v == "1") {
        let code = run_reaper();
        if code == 0 {
            // Its log (named after the owner's pid) is only worth keeping when something failed.
            let owner = std::env::var("SEAWORTHY_REAPER_OWNER").unwrap_or_default();
            if let Some((pid, _)) = owner.split_once(':') {
                let _ = std::fs::remove_file(state_dir().join(format!("reaper-{pid}.log")));
            }
        }
        std::process::exit(code);
    }
}

fn run_reaper() -> i32 {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let (endpoint, run, owner, runner) = (
        var("SEAWORTHY_REAPER_ENDPOINT"),
        var("SEAWORTHY_REAPER_RUN"),
        var("SEAWORTHY_REAPER_OWNER"),
        var("SEAWORTHY_REAPER_RUNNER"),
    );
    if owner.is_empty() || run.is_empty() {
        return 2;
    }
    while process_alive(&owner) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return 3;
    };
    rt.block_on(async move {
        let started = Instant::now();
        // The engine may be busy, or restarting right now (a restart is often what killed the
        // tests): keep trying, backing off, for a while; an endpoint that stays silent (the
        // engine stopped for good) is given up sooner.
        let mut retry = Retry::new(&endpoint);
        let engine = loop {
            match Engine::connect_to(&endpoint).await {
                Ok(engine) => break engine,
                Err(e) => match retry.after(&format!("cannot reach {endpoint}"), &e) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return 4,
                },
            }
        };
        let kept = kept_ids();
        let keep = |r: &LabelledResource| kept.iter().any(|k| r.id.starts_with(k.as_str()));
        // What the owner left, listed again after each pass until nothing is left.
        let mut removed = 0;
        loop {
            let failure = match list_labelled(&engine, &[(LABEL_OWNER, &owner)]).await {
                Ok(found) => {
                    retry.answered();
                    let found: Vec<_> = found.into_iter().filter(|r| !keep(r)).collect();
                    if found.is_empty() {
                        break;
                    }
                    let mut report = GcReport::default();
                    remove_all(&engine, found, &mut report).await;
                    removed += report.removed.len();
                    match report.errors.into_iter().next() {
                        None => continue,
                        Some(e) => e,
                    }
                }
                Err(e) => e,
            };
            match retry.after("cannot remove what the owner left", &failure) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return 5,
            }
        }
        eprintln!(
            "reaper: owner {owner} is gone; removed {removed} resources in {:?}",
            started.elapsed(),
        );
        // Resources shared by the run live until the runner is gone.
        loop {
            let shared =
                match list_labelled(&engine, &[(LABEL_SESSION, &run), (LABEL_OWNER, OWNER_RUN)])
                    .await
                {
                    Ok(shared) => {
                        retry.answered();
                        shared
                    }
                    Err(e) => {
                        match retry.after("cannot list the run's shared resources", &e) {
                            Some(wait) => tokio::time::sleep(wait).await,
                            None => return 6,
                        }
                        continue;
                    }
                };
            if shared.is_empty() {
                return 0;
            }
            if !process_alive(&runner) {
                // Everything of the run: shared containers, and whatever else is left.
                let all = match list_labelled(&engine, &[(LABEL_SESSION, &run)]).await {
                    Ok(all) => all,
                    Err(e) => {
                        match retry.after("cannot list the run's resources", &e) {
                            Some(wait) => tokio::time::sleep(wait).await,
                            None => return 6,
                        }
                        continue;
                    }
                };
                let mut report = GcReport::default();
                remove_all(
                    &engine,
                    all.into_iter().filter(|r| !keep(r)).collect(),
                    &mut report,
                )
                .await;
                eprintln!(
                    "reaper: runner {runner} is gone; removed {} shared resources",
                    report.removed.len()
                );
                if report.errors.is_empty() {
                    remove_run_files(&run);
                    return 0;
                }
                // Listed again on the next pass; what failed is tried again.
                match retry.after("cannot remove the run's resources", &report.errors[0]) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return 6,
                }
                continue;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}
