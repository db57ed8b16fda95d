//! Stopping and starting the local Docker engine, for the test that restarts it mid-suite.
//!
//! [`LocalEngine::find`] says whether this process may restart the engine at all: the engine must
//! be the local one (`DOCKER_HOST` unset or `unix:///var/run/docker.sock`), this process must run
//! as root, and exactly one `dockerd` must be running. Otherwise it returns the reason, which the
//! test prints before skipping.
//!
//! [`LocalEngine::stop`] sends SIGTERM and waits for the process to exit (the engine stops its
//! containers first, so this takes up to its shutdown timeout); [`LocalEngine::start`] removes a
//! stale `/var/run/docker.pid`, starts the same `dockerd` command line again, detached, with its
//! output appended to `/var/log/dockerd.log`, and waits until the socket answers `GET /_ping`.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The engine's socket when `DOCKER_HOST` is unset.
pub const SOCKET: &str = "/var/run/docker.sock";
/// The file `dockerd` writes its pid to, and refuses to start while it exists.
pub const PID_FILE: &str = "/var/run/docker.pid";
/// Where the restarted engine's output goes.
pub const LOG_FILE: &str = "/var/log/dockerd.log";

/// The local `dockerd`, which this process may stop and start.
#[derive(Debug, Clone)]
pub struct LocalEngine {
    pid: u32,
    command_line: Vec<String>,
}

impl LocalEngine {
    /// The running local engine, or why this process may not restart it.
    pub fn find() -> Result<LocalEngine, String> {
        match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() && host != format!("unix://{SOCKET}") => {
                return Err(format!(
                    "DOCKER_HOST={host} is not the local engine at unix://{SOCKET}"
                ))
            }
            _ => {}
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(format!(
                "restarting dockerd needs root (running as uid {euid})"
            ));
        }
        let pids = dockerd_pids();
        let [pid] = pids.as_slice() else {
            return Err(format!(
                "expected one running dockerd, found {} ({pids:?})",
                pids.len()
            ));
        };
        let command_line = read_command_line(*pid)
            .ok_or_else(|| format!("cannot read the command line of dockerd (pid {pid})"))?;
        Ok(LocalEngine {
            pid: *pid,
            command_line,
        })
    }

    /// The pid of the engine found (or last started).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends SIGTERM to the engine and waits until it has exited (at most `timeout`); returns how
    /// long that took.
    pub fn stop(&self, timeout: Duration) -> io::Result<Duration> {
        let started = Instant::now();
        let pid = libc::pid_t::try_from(self.pid).map_err(io::Error::other)?;
        // SAFETY: kill(2) with a pid read from /proc and a valid signal number.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(io::Error::last_os_error());
        }
        while is_running(self.pid) {
            if started.elapsed() > timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("dockerd (pid {}) still runs after {timeout:?}", self.pid),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(started.elapsed())
    }

    /// Starts the engine again with the same command line, detached from this process, and waits
    /// (at most `timeout`) until its socket answers; returns how long that took. `self` then names
    /// the new process. The system directories lead its `PATH`, where it finds containerd and
    /// runc.
    pub fn start(&mut self, timeout: Duration) -> io::Result<Duration> {
        let started = Instant::now();
        if !dockerd_pids().is_empty() {
            return Err(io::Error::other("a dockerd is already running"));
        }
        // A dockerd that did not exit cleanly leaves its pid file, and a new one refuses to start.
        match std::fs::remove_file(PID_FILE) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // `sh -c '… &'` exits at once: the engine is re-parented and outlives this test process.
        let quoted: Vec<String> = self.command_line.iter().map(|a| shell_quote(a)).collect();
        let script = format!("{} >>{LOG_FILE} 2>&1 </dev/null &", quoted.join(" "));
        let status = {
            use std::os::unix::process::CommandExt;
            std::process::Command::new("/bin/sh")
                .args(["-c", &script])
                .env("PATH", system_path())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .process_group(0)
                .status()?
        };
        if !status.success() {
            return Err(io::Error::other(format!(
                "`sh -c {script}` failed: {status}"
            )));
        }
        loop {
            if ping(Path::new(SOCKET)).is_ok() {
                break;
            }
            if started.elapsed() > timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the engine did not answer on {SOCKET} within {timeout:?} (see {LOG_FILE})"
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let [pid] = dockerd_pids().as_slice() {
            self.pid = *pid;
        }
        Ok(started.elapsed())
    }
}

/// `GET /_ping` on the engine's socket: `Ok` when it answers `200 OK`.
pub fn ping(socket: &Path) -> io::Result<()> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "unexpected answer: {}",
            answer.lines().next().unwrap_or("")
        )))
    }
}

/// The pids of running (not zombie) processes named `dockerd`.
fn dockerd_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "dockerd")
                && is_running(*pid)
        })
        .collect()
}

/// Whether `pid` exists and is neither a zombie nor dead (an exited engine whose parent does not
/// reap it stays a zombie).
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .unwrap_or("X");
    state != "Z" && state != "X"
}

/// The command line of `pid`, with the executable resolved to an absolute path.
fn read_command_line(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let exe: PathBuf = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let first = args.first_mut()?;
    *first = exe.to_string_lossy().into_owned();
    Some(args)
}

/// `PATH` with the system directories first.
fn system_path() -> String {
    let system = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    match std::env::var("PATH") {
        Ok(path) if !path.is_empty() => format!("{system}:{path}"),
        _ => system.to_string(),
    }
}

/// Quotes `arg` for `sh`.
fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("dockerd"), "'dockerd'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn this_process_is_running_and_a_made_up_pid_is_not() {
        assert!(is_running(std::process::id()));
        assert!(!is_running(u32::MAX - 1));
    }
}
