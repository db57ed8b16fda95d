//! The limits every plugin call runs under.

use std::time::Duration;

/// Limits on a plugin's calls. Exceeding the CPU deadline, the memory limit or the call timeout
/// stops the call, discards the plugin's instance (the next call starts a fresh one) and returns
/// an error naming the plugin and the limit; the host process and other plugins are unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wasm execution time per call, host calls excluded (epoch interruption, 10 ms
    /// granularity). Default 5 s.
    pub cpu_per_call: Duration,
    /// Wall-clock time per call, host calls included. Default 120 s.
    pub call_timeout: Duration,
    /// The most linear memory a plugin instance may have, in bytes. Default 64 MiB.
    pub memory_bytes: usize,
    /// The longest one host call (exec, TCP, HTTP, logs) may take; a plugin may ask for less.
    /// Default 30 s.
    pub host_call_timeout: Duration,
    /// The most TCP connections a plugin instance may hold open. Default 16.
    pub max_tcp_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_per_call: Duration::from_secs(5),
            call_timeout: Duration::from_secs(120),
            memory_bytes: 64 << 20,
            host_call_timeout: Duration::from_secs(30),
            max_tcp_streams: 16,
        }
    }
}

impl Limits {
    /// Sets [`cpu_per_call`](Self::cpu_per_call).
    pub fn with_cpu_per_call(mut self, deadline: Duration) -> Self {
        self.cpu_per_call = deadline;
        self
    }

    /// Sets [`call_timeout`](Self::call_timeout).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets [`memory_bytes`](Self::memory_bytes).
    pub fn with_memory_bytes(mut self, bytes: usize) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// Sets [`host_call_timeout`](Self::host_call_timeout).
    pub fn with_host_call_timeout(mut self, timeout: Duration) -> Self {
        self.host_call_timeout = timeout;
        self
    }

    /// Sets [`max_tcp_streams`](Self::max_tcp_streams).
    pub fn with_max_tcp_streams(mut self, streams: usize) -> Self {
        self.max_tcp_streams = streams;
        self
    }
}
