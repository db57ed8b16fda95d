//! The limits every plugin call runs under.

use std::time::Duration;

/// Limits on a plugin's calls, set by the user (the host builder or a fixture definition); a
/// plugin's manifest or code cannot change them. Exceeding the CPU deadline, the memory budget
/// or the call timeout stops the call, discards the plugin's instance (the next call starts a
/// fresh one) and returns an error naming the plugin and the limit; the host process and other
/// plugins are unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wasm execution time per call, host calls excluded (epoch interruption, 10 ms
    /// granularity). Default 5 s.
    pub cpu_per_call: Duration,
    /// Wall-clock time per call, host calls included. Default 120 s.
    pub call_timeout: Duration,
    /// The most linear memory a plugin instance may have, in bytes: the total over every
    /// memory of every core instance of the component. Default 64 MiB.
    pub memory_bytes: usize,
    /// The most core instances (modules instantiated) one plugin instance may create.
    /// Default 32.
    pub max_instances: usize,
    /// The most linear memories one plugin instance may create. Default 4.
    pub max_memories: usize,
    /// The most tables one plugin instance may create. Default 16.
    pub max_tables: usize,
    /// The most table elements one plugin instance may have, over all its tables. Default
    /// 100 000.
    pub max_table_elements: usize,
    /// The longest one host call (exec, TCP, HTTP, logs) may take; a plugin may ask for less.
    /// Default 30 s.
    pub host_call_timeout: Duration,
    /// The most TCP connections a plugin instance may hold open. Default 16.
    pub max_tcp_streams: usize,
    /// The longest startup a plugin's container spec may ask for (`startup-timeout-ms`, the
    /// time its waits and its `ready()` may take); a longer one is cut to this. Default 5 min.
    pub max_startup: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_per_call: Duration::from_secs(5),
            call_timeout: Duration::from_secs(120),
            memory_bytes: 64 << 20,
            max_instances: 32,
            max_memories: 4,
            max_tables: 16,
            max_table_elements: 100_000,
            host_call_timeout: Duration::from_secs(30),
            max_tcp_streams: 16,
            max_startup: Duration::from_secs(300),
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

    /// Sets [`max_instances`](Self::max_instances), [`max_memories`](Self::max_memories) and
    /// [`max_tables`](Self::max_tables).
    pub fn with_counts(mut self, instances: usize, memories: usize, tables: usize) -> Self {
        self.max_instances = instances;
        self.max_memories = memories;
        self.max_tables = tables;
        self
    }

    /// Sets [`max_table_elements`](Self::max_table_elements).
    pub fn with_max_table_elements(mut self, elements: usize) -> Self {
        self.max_table_elements = elements;
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

    /// Sets [`max_startup`](Self::max_startup).
    pub fn with_max_startup(mut self, startup: Duration) -> Self {
        self.max_startup = startup;
        self
    }
}
