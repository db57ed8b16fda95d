//! Who this process is, in terms other processes can check: the test run's id, this process and
//! the test runner as `pid:start-time` (start time from `/proc`, so a reused pid is not taken for
//! the old process), the host name, and the one short digest every process of a run computes alike.

/// The test run's id: `SEAWORTHY_SESSION`, nextest's run id, or a hash of the parent process.
pub(crate) fn run_id() -> String {
    if let Ok(id) = std::env::var("SEAWORTHY_SESSION") {
        if !id.is_empty() {
            return id;
        }
    }
    if let Ok(id) = std::env::var("NEXTEST_RUN_ID") {
        let id: String = id.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if !id.is_empty() {
            return id.to_lowercase();
        }
    }
    let ppid = std::os::unix::process::parent_id();
    let start = process_start_time(ppid).unwrap_or(0);
    format!("{:016x}", fnv1a(format!("{ppid}:{start}").as_bytes()))
}

/// This process's part of the namespace of its session number `session` (counted from 0): its
/// pid in hex, so that the live processes of a run never share one, then `t` and the low 16 bits
/// of its start time in hex, so that a later process given the same pid almost surely does not
/// share the namespace of a killed one either, then `s<n>` for the process's later sessions. The
/// letters are not hex digits, so two tokens are the same only when all three parts are; and
/// none has a `-`, so no namespace followed by `-` (how teardown and gc select names) begins
/// another.
pub(crate) fn process_token(session: usize) -> String {
    let pid = std::process::id();
    let start = process_start_time(pid).unwrap_or(0) & 0xffff;
    let mut token = format!("{pid:x}t{start:x}");
    if session > 0 {
        token.push_str(&format!("s{session}"));
    }
    token
}

/// `pid:start-time` of this process, the value of [`LABEL_OWNER`](crate::session::LABEL_OWNER).
pub(crate) fn owner_id() -> String {
    let pid = std::process::id();
    format!("{pid}:{}", process_start_time(pid).unwrap_or(0))
}

/// `pid:start-time` of the parent process (the test runner), the value of [`LABEL_RUNNER`](crate::session::LABEL_RUNNER).
pub(crate) fn runner_id() -> String {
    let ppid = std::os::unix::process::parent_id();
    format!("{ppid}:{}", process_start_time(ppid).unwrap_or(0))
}

/// This machine's host name (the value of [`LABEL_HOST`](crate::session::LABEL_HOST)).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Whether the process named `pid:start-time` is alive (a zombie counts as dead).
pub fn process_alive(id: &str) -> bool {
    let Some((pid, start)) = id.split_once(':') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return false;
    };
    let mut fields = after.split_whitespace();
    let state = fields.next().unwrap_or("Z");
    let started: Option<u64> = fields.nth(18).and_then(|f| f.parse().ok());
    state != "Z" && state != "X" && started == Some(start)
}

/// The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), which with
/// the pid identifies a process across pid reuse.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The 64-bit FNV-1a hash of `bytes`: the one short, stable digest of Seaworthy and its fixtures
/// (run ids, definition keys that must not carry a password). Stable across processes, builds
/// and versions, since other processes of a run compare it; not a cryptographic hash.
#[doc(hidden)]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether `SEAWORTHY_KEEP_ON_FAILURE` (`1` or `true`) asks to keep what a failed test used as
/// it was left (containers, and the namespaces fixtures hand out), for debugging. A fixture's
/// guard dropped while its test panics checks it before it resets or releases anything.
pub fn keep_on_failure() -> bool {
    std::env::var("SEAWORTHY_KEEP_ON_FAILURE").is_ok_and(|v| v == "1" || v == "true")
}
