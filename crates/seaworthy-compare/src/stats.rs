//! The process's own resource use, read from `/proc/self`: resident memory, open file
//! descriptors, sockets and threads. Load tests take one reading before and one after a long run
//! and compare them.

use std::fmt;
use std::io;

/// One reading of this process's resource use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStats {
    /// Resident set size in KiB (`VmRSS` of `/proc/self/status`).
    pub rss_kib: u64,
    /// Open file descriptors (entries of `/proc/self/fd`).
    pub open_fds: usize,
    /// Of those, sockets (TCP and Unix: connections to the engine and to services).
    pub sockets: usize,
    /// Threads of the process.
    pub threads: usize,
}

impl ProcessStats {
    /// Reads the current figures. Fails only where `/proc` is missing (not Linux).
    pub fn now() -> io::Result<ProcessStats> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let field = |name: &str| -> io::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| io::Error::other(format!("no {name} line in /proc/self/status")))
        };
        let rss_kib = field("VmRSS:")?;
        let threads = usize::try_from(field("Threads:")?).unwrap_or(usize::MAX);
        let mut open_fds = 0;
        let mut sockets = 0;
        for entry in std::fs::read_dir("/proc/self/fd")? {
            let Ok(entry) = entry else { continue };
            // The descriptor read_dir itself holds shows up too, and may be gone by readlink.
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            open_fds += 1;
            if target.to_string_lossy().starts_with("socket:") {
                sockets += 1;
            }
        }
        Ok(ProcessStats {
            rss_kib,
            open_fds,
            sockets,
            threads,
        })
    }

    /// The change from `earlier` to `self`, field by field (negative when it went down).
    pub fn since(&self, earlier: &ProcessStats) -> StatsDelta {
        let diff = |now: u64, then: u64| now as i64 - then as i64;
        StatsDelta {
            rss_kib: diff(self.rss_kib, earlier.rss_kib),
            open_fds: diff(self.open_fds as u64, earlier.open_fds as u64),
            sockets: diff(self.sockets as u64, earlier.sockets as u64),
            threads: diff(self.threads as u64, earlier.threads as u64),
        }
    }
}

impl fmt::Display for ProcessStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB, {} fds ({} sockets), {} threads",
            self.rss_kib as f64 / 1024.0,
            self.open_fds,
            self.sockets,
            self.threads
        )
    }
}

/// The difference between two [`ProcessStats`] readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsDelta {
    /// Change of resident memory, KiB.
    pub rss_kib: i64,
    /// Change of open file descriptors.
    pub open_fds: i64,
    /// Change of open sockets.
    pub sockets: i64,
    /// Change of threads.
    pub threads: i64,
}

impl fmt::Display for StatsDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RSS {:+.1} MiB, fds {:+}, sockets {:+}, threads {:+}",
            self.rss_kib as f64 / 1024.0,
            self.open_fds,
            self.sockets,
            self.threads
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process_and_sees_a_new_descriptor() {
        let before = ProcessStats::now().unwrap();
        assert!(before.rss_kib > 0 && before.threads >= 1 && before.open_fds >= 3);
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let after = ProcessStats::now().unwrap();
        let delta = after.since(&before);
        assert!(delta.sockets >= 1, "{delta}");
        drop(socket);
    }
}
