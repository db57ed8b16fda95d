//! Whether the machine was quiet: before a suite starts and while it runs.
//!
//! A load average says how busy the machine was, not by whom: a suite's own containers and its
//! engine raise it as much as a build running beside it. So a suite in a full run does two
//! things:
//!
//! - **before it starts**, it waits (at most `SEAWORTHY_BENCH_QUIET_WAIT` seconds, default 600;
//!   `0` does not wait) until the 1-minute load average is below 1.0, so the last suite's work
//!   has died down;
//! - **while it runs**, a thread reads `/proc` once a second and adds up the CPU time of every
//!   process that is not the suite's own work: its own process and descendants, the container
//!   engines and their descendants (`dockerd`, `containerd`, `containerd-shim*`, `docker-proxy`,
//!   `runc`, `podman`, `conmon`, `crun`, `sshd` for the SSH endpoint, `ssh`) and kernel threads.
//!   The total, its share of the machine (`foreign_share`: CPU seconds over wall seconds × CPUs)
//!   and the busiest command names go into the suite's JSON as `other_work`.
//!
//! A process that starts and ends between two readings is not seen; a build or a test suite
//! beside the bench is.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The 1-minute load average below which the machine counts as quiet at a suite's start.
pub const QUIET_LOAD: f64 = 1.0;

/// How often the watcher reads `/proc`.
const INTERVAL: Duration = Duration::from_secs(1);

/// Command names (`/proc/<pid>/comm`, at most 15 bytes) whose processes, and their descendants,
/// are a suite's own work: the engines the suites drive and the containers they run.
const ENGINE_COMMANDS: &[&str] = &[
    "dockerd",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "docker-proxy",
    "runc",
    "podman",
    "conmon",
    "crun",
    "sshd",
    "ssh",
    "docker-init",
];

/// Waits until the 1-minute load average is below [`QUIET_LOAD`], at most
/// `SEAWORTHY_BENCH_QUIET_WAIT` seconds (default 600). Returns how long it waited.
pub fn wait_for_quiet() -> Duration {
    let limit = std::env::var("SEAWORTHY_BENCH_QUIET_WAIT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(600), Duration::from_secs);
    let started = Instant::now();
    let mut said = false;
    loop {
        let Some(load) = crate::load_average() else {
            return started.elapsed();
        };
        if load[0] < QUIET_LOAD {
            if said {
                eprintln!(
                    "  quiet after {:.0} s (load average {:.2})",
                    started.elapsed().as_secs_f64(),
                    load[0]
                );
            }
            return started.elapsed();
        }
        if started.elapsed() >= limit {
            eprintln!(
                "  still not quiet after {:.0} s (load average {:.2}): running anyway; the report says so",
                started.elapsed().as_secs_f64(),
                load[0]
            );
            return started.elapsed();
        }
        if !said {
            eprintln!(
                "  waiting for a quiet machine: load average (1 min) {:.2}, below {QUIET_LOAD} wanted \
                 (at most {} s; SEAWORTHY_BENCH_QUIET_WAIT=0 does not wait)",
                load[0],
                limit.as_secs()
            );
            said = true;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// One process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone, PartialEq)]
struct Proc {
    ppid: u32,
    comm: String,
    /// User + system CPU time of all its threads, in clock ticks.
    ticks: u64,
}

/// Parses `/proc/<pid>/stat`: the command name sits in parentheses and may itself hold spaces
/// and parentheses, so the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Proc> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // After ") ": state(3) ppid(4) ... utime(14) stime(15).
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Proc {
        ppid: u32::try_from(field(4)?).ok()?,
        comm,
        ticks: field(14)? + field(15)?,
    })
}

/// Every process now.
fn processes() -> HashMap<u32, Proc> {
    let mut all = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return all;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may end between the listing and the read.
        if let Some(p) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|t| parse_stat(&t))
        {
            all.insert(pid, p);
        }
    }
    all
}

/// Whether `pid` is the suite's own work: `me` or a descendant, an engine process or a
/// descendant (containers), or a kernel thread.
fn is_own(pid: u32, me: u32, all: &HashMap<u32, Proc>) -> bool {
    let mut at = pid;
    // Bounded: a cycle cannot happen in a real table, but a table read while it changes could
    // show one.
    for _ in 0..64 {
        if at == me || at == 2 {
            return true;
        }
        let Some(p) = all.get(&at) else {
            return false;
        };
        if ENGINE_COMMANDS.contains(&p.comm.as_str()) || p.comm.starts_with("containerd-shim") {
            return true;
        }
        if p.ppid == 0 {
            return false;
        }
        at = p.ppid;
    }
    false
}

/// What the watcher saw: CPU time of other work while the suite ran.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OtherWork {
    /// Wall time watched, in seconds.
    pub wall_s: f64,
    /// CPU seconds used by processes that are not the suite's own work.
    pub cpu_s: f64,
    /// `cpu_s / (wall_s × CPUs)`: the share of the machine other work took.
    pub foreign_share: f64,
    /// The busiest other command names and their CPU seconds (at most five).
    pub top: Vec<(String, f64)>,
}

/// A running watcher; [`Watcher::finish`] stops it and returns what it saw.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<OtherWork>>,
}

impl Watcher {
    /// Starts watching the machine from a thread of its own.
    pub fn start() -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("bench-watch".into())
            .spawn(move || watch(&flag))
            .ok();
        Watcher { stop, handle }
    }

    /// Stops the watcher; `None` when it could not run.
    pub fn finish(mut self) -> Option<OtherWork> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take()?.join().ok()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn watch(stop: &AtomicBool) -> OtherWork {
    let me = std::process::id();
    // SAFETY: sysconf has no preconditions.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as f64,
        _ => 100.0,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let started = Instant::now();
    let mut last: HashMap<u32, Proc> = processes();
    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(INTERVAL);
        let now = processes();
        for (pid, p) in &now {
            if is_own(*pid, me, &now) {
                continue;
            }
            // A process seen for the first time counts with all its CPU time: it started
            // during the suite (or its pid was reused), and its work is other work.
            let before = last
                .get(pid)
                .filter(|old| old.comm == p.comm)
                .map_or(0, |old| old.ticks);
            let used = p.ticks.saturating_sub(before);
            if used > 0 {
                *by_name.entry(p.comm.clone()).or_default() += used;
            }
        }
        last = now;
    }
    let wall_s = started.elapsed().as_secs_f64();
    let total: u64 = by_name.values().sum();
    let cpu_s = total as f64 / hz;
    let mut top: Vec<(String, f64)> = by_name
        .into_iter()
        .map(|(name, ticks)| (name, ticks as f64 / hz))
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(5);
    OtherWork {
        wall_s,
        cpu_s,
        foreign_share: if wall_s > 0.0 {
            cpu_s / (wall_s * cpus)
        } else {
            0.0
        },
        top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line =
            "4242 (tokio (rt) 1) S 17 4242 17 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 8 0 1 2 3";
        let p = parse_stat(line).unwrap();
        assert_eq!(p.comm, "tokio (rt) 1");
        assert_eq!(p.ppid, 17);
        assert_eq!(p.ticks, 280);
    }

    #[test]
    fn descendants_of_the_suite_and_of_engines_are_own_work_and_the_rest_is_not() {
        let proc = |ppid: u32, comm: &str| Proc {
            ppid,
            comm: comm.into(),
            ticks: 0,
        };
        let all: HashMap<u32, Proc> = [
            (1, proc(0, "systemd")),
            (2, proc(0, "kthreadd")),
            (10, proc(1, "bash")),
            (11, proc(10, "bench")),
            (12, proc(11, "cargo")),
            (13, proc(1, "containerd-shim")),
            (14, proc(13, "postgres")),
            (15, proc(1, "dockerd")),
            (16, proc(15, "docker-proxy")),
            (17, proc(10, "rustc")),
            (18, proc(2, "kworker/0:1")),
        ]
        .into_iter()
        .collect();
        for own in [11, 12, 13, 14, 15, 16, 18] {
            assert!(is_own(own, 11, &all), "{own}");
        }
        for other in [1, 10, 17, 99] {
            assert!(!is_own(other, 11, &all), "{other}");
        }
    }

    #[test]
    fn a_busy_process_beside_the_watcher_is_seen_as_other_work() {
        // The watcher runs in this test's process, so "own" is this process: a child of it is
        // own work. A busy loop in a process of its own that is *not* our child: `sh -c` that
        // backgrounds it and exits, so the loop is re-parented away from us.
        let watcher = Watcher::start();
        let spawned = std::process::Command::new("sh")
            .args([
                "-c",
                "(timeout 2 sh -c 'while :; do :; done') >/dev/null 2>&1 &",
            ])
            .status()
            .expect("sh runs");
        assert!(spawned.success());
        std::thread::sleep(Duration::from_millis(2500));
        let seen = watcher.finish().expect("the watcher ran");
        // The loop was re-parented to init (or a subreaper that is not us): at least about a
        // second of its CPU was seen.
        assert!(seen.cpu_s >= 0.5, "{seen:?}");
        assert!(
            seen.top
                .iter()
                .any(|(name, _)| name == "sh" || name == "timeout"),
            "{seen:?}"
        );
    }
}
