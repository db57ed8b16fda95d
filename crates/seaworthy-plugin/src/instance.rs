//! Running a plugin: the store's data, the limits, and calls that discard a broken instance.
//!
//! A [`Runner`] owns at most one live instance (a `Store` and the component's exports). Each
//! call sets the CPU deadline (the epoch callback stops wasm code that has run longer than
//! [`Limits::cpu_per_call`], not counting time in host calls), runs under the wall-clock
//! [`Limits::call_timeout`], and the store's limiter refuses memory past
//! [`Limits::memory_bytes`]. A trap, a deadline or a timeout leaves the instance unusable, so it
//! is dropped and the next call instantiates a fresh one.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use seaworthy::Container;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::error::PluginError;
use crate::host_api::{clip, Denials, LogFollower, LogRate, TooManyDenials};
use crate::latest::types::{
    ConnectionInfo as WitConnection, ContainerSpec, FixtureError, HostError, Isolated,
    PluginMetadata,
};
use crate::limits::Limits;
use crate::manifest::Manifest;
use crate::plugin::{Exports, LoadedPlugin};

/// How much of a plugin's stderr is kept for error messages.
const STDERR_TAIL: usize = 4096;
/// The longest error text of a plugin's that is passed on (the rest is cut).
pub(crate) const MAX_ERROR_TEXT: usize = 16 << 10;
/// The longest text a plugin may return in its metadata.
pub(crate) const MAX_METADATA_TEXT: usize = 1024;

/// The store's data: what host calls may use, and the accounting of the current call.
pub(crate) struct HostState {
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) container: Option<Arc<Container>>,
    pub(crate) limits: Limits,
    pub(crate) table: ResourceTable,
    pub(crate) clock: CallClock,
    pub(crate) denials: Denials,
    pub(crate) log_rate: LogRate,
    pub(crate) open_streams: usize,
    /// The `http` capability's client of each port, kept so that its connections are reused
    /// from one request to the next (they live on Seaworthy's runtime).
    pub(crate) http_clients: std::collections::HashMap<u16, seaworthy::HttpClient>,
    /// The follower of the container's log for `container-log-since`, once a call started it.
    pub(crate) log_follower: Option<LogFollower>,
    wasi: WasiCtx,
    budget: Budget,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Time accounting of the current call.
pub(crate) struct CallClock {
    started: Instant,
    /// Time spent in host calls since `started`.
    pub(crate) host_time: Duration,
    deadline: Duration,
}

impl CallClock {
    fn start(&mut self, deadline: Duration) {
        self.started = Instant::now();
        self.host_time = Duration::ZERO;
        self.deadline = deadline;
    }

    fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }
}

/// Marks the trap raised when a call's wasm code runs past its deadline.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CPU deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Marks the trap raised when memory would grow past the limit.
#[derive(Debug)]
struct MemoryLimitExceeded {
    limit: usize,
    requested: usize,
}

impl std::fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory limit of {} bytes exceeded (asked for {})",
            self.limit, self.requested
        )
    }
}

impl std::error::Error for MemoryLimitExceeded {}

/// Marks the error raised when a plugin instance would create more tables, table elements,
/// memories or instances than its limits allow.
#[derive(Debug)]
struct CountLimitExceeded(String);

impl std::fmt::Display for CountLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CountLimitExceeded {}

/// The store limiter: one budget for the plugin instance as a whole. Linear memory is counted
/// over every memory of every core instance of the component together (a component made of
/// many modules, each with a memory just under the limit, gets no more than one), table
/// elements over every table, and the numbers of instances, memories and tables are capped
/// (wasmtime checks these counts as each is created).
struct Budget {
    memory_limit: usize,
    memory_used: usize,
    /// The growth allowed last, taken back if wasmtime then fails to grow.
    memory_pending: usize,
    elements_limit: usize,
    elements_used: usize,
    elements_pending: usize,
    instances: usize,
    memories: usize,
    tables: usize,
}

impl Budget {
    fn new(limits: &Limits) -> Budget {
        Budget {
            memory_limit: limits.memory_bytes,
            memory_used: 0,
            memory_pending: 0,
            elements_limit: limits.max_table_elements,
            elements_used: 0,
            elements_pending: 0,
            instances: limits.max_instances,
            memories: limits.max_memories,
            tables: limits.max_tables,
        }
    }
}

impl ResourceLimiter for Budget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.memory_used.saturating_add(growth);
        if total > self.memory_limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.memory_limit,
                requested: total,
            }));
        }
        self.memory_used = total;
        self.memory_pending = growth;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_used -= std::mem::take(&mut self.memory_pending);
        tracing::debug!(error = %error, "a plugin memory could not grow");
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.elements_used.saturating_add(growth);
        if total > self.elements_limit {
            return Err(wasmtime::Error::new(CountLimitExceeded(format!(
                "its tables would hold {total} elements, over its limit of {}",
                self.elements_limit
            ))));
        }
        self.elements_used = total;
        self.elements_pending = growth;
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.elements_used -= std::mem::take(&mut self.elements_pending);
        tracing::debug!(error = %error, "a plugin table could not grow");
        Ok(())
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.memories
    }

    fn tables(&self) -> usize {
        self.tables
    }
}

/// The last bytes a plugin wrote to stderr (a panic message), kept for errors.
#[derive(Clone, Default)]
struct StderrTail(Arc<Mutex<VecDeque<u8>>>);

impl StderrTail {
    fn text(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = buf.as_slices();
        let mut bytes = a.to_vec();
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend(data.iter().copied());
        let excess = buf.len().saturating_sub(STDERR_TAIL);
        buf.drain(..excess);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A call into the fixture interface.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Call {
    Metadata,
    Definition,
    Ready,
    Clean,
    Connection,
    IsolationSlots,
    Isolate(u32),
    Release(u32),
}

impl Call {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Call::Metadata => "metadata",
            Call::Definition => "definition",
            Call::Ready => "ready",
            Call::Clean => "clean",
            Call::Connection => "connection",
            Call::IsolationSlots => "isolation-slots",
            Call::Isolate(_) => "isolate",
            Call::Release(_) => "release",
        }
    }
}

/// What a call returned, in the newest WIT types.
pub(crate) enum Reply {
    Metadata(PluginMetadata),
    Definition(Result<ContainerSpec, FixtureError>),
    Ready(Result<bool, FixtureError>),
    Unit(Result<(), FixtureError>),
    Connection(Option<WitConnection>),
    Slots(u32),
    Isolated(Result<Isolated, FixtureError>),
}

struct Live {
    store: Store<HostState>,
    exports: Exports,
    stderr: StderrTail,
}

/// Runs calls into one plugin for one container (or none, for `definition`).
pub(crate) struct Runner {
    plugin: Arc<LoadedPlugin>,
    container: Option<Arc<Container>>,
    limits: Limits,
    live: tokio::sync::Mutex<Option<Live>>,
}

/// Text for a fixture error, as a user should read it.
pub(crate) fn describe(error: &FixtureError) -> String {
    let text = |m: &str| clip(m, MAX_ERROR_TEXT);
    match error {
        FixtureError::InvalidConfig(m) => format!("invalid configuration: {}", text(m)),
        FixtureError::NotReady(m) => format!("not ready: {}", text(m)),
        FixtureError::Host(h) => format!("host call failed: {}", describe_host(h)),
        FixtureError::Failed(m) => text(m),
    }
}

fn describe_host(error: &HostError) -> String {
    let text = |m: &str| clip(m, MAX_ERROR_TEXT);
    match error {
        HostError::Denied(m) => format!("denied: {}", text(m)),
        HostError::Timeout(m) => format!("timed out: {}", text(m)),
        HostError::Io(m) => text(m),
        HostError::Closed => "the connection was closed".into(),
        HostError::Invalid(m) => format!("invalid request: {}", text(m)),
    }
}

impl Runner {
    pub(crate) fn new(
        plugin: Arc<LoadedPlugin>,
        container: Option<Arc<Container>>,
        limits: Limits,
    ) -> Runner {
        Runner {
            plugin,
            container,
            limits,
            live: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn plugin_id(&self) -> &str {
        &self.plugin.manifest.id
    }

    async fn instantiate(&self) -> Result<Live, PluginError> {
        let stderr = StderrTail::default();
        // No arguments, environment, files or network: only clocks, random and stdio.
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        let state = HostState {
            manifest: self.plugin.manifest.clone(),
            container: self.container.clone(),
            limits: self.limits.clone(),
            table: ResourceTable::new(),
            clock: CallClock {
                started: Instant::now(),
                host_time: Duration::ZERO,
                deadline: self.limits.cpu_per_call,
            },
            denials: Denials::default(),
            log_rate: LogRate::default(),
            open_streams: 0,
            http_clients: std::collections::HashMap::new(),
            log_follower: None,
            wasi,
            budget: Budget::new(&self.limits),
        };
        let mut store = Store::new(&self.plugin.engine, state);
        store.limiter(|state| &mut state.budget);
        store.epoch_deadline_callback(|ctx| {
            let clock = &ctx.data().clock;
            if clock.guest_time() > clock.deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                // Let other tasks run while a long computation goes on.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.data_mut().clock.start(self.limits.cpu_per_call);
        store.set_epoch_deadline(1);
        let instantiated = tokio::time::timeout(
            self.limits.call_timeout,
            self.plugin.pre.instantiate(&mut store),
        )
        .await;
        match instantiated {
            Ok(Ok(exports)) => Ok(Live {
                store,
                exports,
                stderr,
            }),
            Ok(Err(e)) => Err(self.classify("instantiate", e, &stderr)),
            Err(_) => Err(PluginError::Timeout {
                plugin: self.plugin_id().to_string(),
                call: "instantiate",
                timeout: self.limits.call_timeout,
            }),
        }
    }

    /// Turns a wasm error into the error a user should see.
    fn classify(
        &self,
        call: &'static str,
        error: wasmtime::Error,
        stderr: &StderrTail,
    ) -> PluginError {
        let plugin = self.plugin_id().to_string();
        for cause in error.chain() {
            if cause.downcast_ref::<DeadlineExceeded>().is_some() {
                return PluginError::Deadline {
                    plugin,
                    call,
                    deadline: self.limits.cpu_per_call,
                };
            }
            if let Some(m) = cause.downcast_ref::<MemoryLimitExceeded>() {
                return PluginError::Memory {
                    plugin,
                    call,
                    limit: m.limit,
                    requested: m.requested,
                };
            }
            if let Some(d) = cause.downcast_ref::<TooManyDenials>() {
                return PluginError::Resources {
                    plugin,
                    call,
                    reason: d.to_string(),
                };
            }
            if let Some(c) = cause.downcast_ref::<CountLimitExceeded>() {
                return PluginError::Resources {
                    plugin,
                    call,
                    reason: c.0.clone(),
                };
            }
        }
        let text = error.to_string();
        if text.contains("resource limit exceeded") {
            // wasmtime's own count checks (instances, memories, tables).
            return PluginError::Resources {
                plugin,
                call,
                reason: text,
            };
        }
        let reason = match error.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => error.to_string(),
        };
        PluginError::Trap {
            plugin,
            call,
            reason,
            stderr: stderr.text(),
        }
    }

    /// Makes `call` with `config`, on a fresh instance if the last one was discarded.
    #[allow(
        clippy::ptr_arg,
        reason = "the generated bindings take the WIT list as &Vec"
    )]
    pub(crate) async fn call(
        &self,
        call: Call,
        config: &Vec<(String, String)>,
    ) -> Result<Reply, PluginError> {
        let mut slot = self.live.lock().await;
        let mut live = match slot.take() {
            Some(live) => live,
            None => self.instantiate().await?,
        };
        live.store.data_mut().clock.start(self.limits.cpu_per_call);
        live.store.data_mut().denials.clear();
        live.store.set_epoch_deadline(1);
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(self.limits.call_timeout, dispatch(&mut live, call, config)).await;
        tracing::trace!(plugin = self.plugin_id(), call = call.name(), elapsed = ?started.elapsed(), "plugin call");
        match outcome {
            Ok(Ok(reply)) => {
                *slot = Some(live);
                Ok(reply)
            }
            Ok(Err(e)) => {
                let error = self.classify(call.name(), e, &live.stderr);
                tracing::warn!(plugin = self.plugin_id(), call = call.name(), error = %error, "plugin instance discarded");
                Err(error)
            }
            Err(_) => Err(PluginError::Timeout {
                plugin: self.plugin_id().to_string(),
                call: call.name(),
                timeout: self.limits.call_timeout,
            }),
        }
    }

    /// The host calls denied during the last call, for error messages.
    pub(crate) async fn last_denials(&self) -> Vec<String> {
        self.live
            .lock()
            .await
            .as_ref()
            .map(|l| l.store.data().denials.kept.clone())
            .unwrap_or_default()
    }

    /// A plugin-reported error as a [`PluginError`], with the host's denials when the plugin
    /// did not pass them on.
    pub(crate) async fn failed(&self, call: Call, error: &FixtureError) -> PluginError {
        // Bounded work whatever the plugin did: its text is cut first, and only the first few
        // denials are kept.
        let mut message = describe(error);
        for denial in self.last_denials().await {
            if !message.contains(&denial) {
                message.push_str(&format!(" (the host denied: {denial})"));
            }
        }
        PluginError::Failed {
            plugin: self.plugin_id().to_string(),
            call: call.name(),
            message,
        }
    }

    /// A reply of the wrong kind: a bug in this crate, reported rather than panicking.
    pub(crate) fn mismatch(&self, call: Call) -> PluginError {
        PluginError::Engine {
            plugin: self.plugin_id().to_string(),
            action: call.name(),
            reason: "the call returned an unexpected kind of reply".into(),
        }
    }
}

#[allow(
    clippy::ptr_arg,
    reason = "the generated bindings take the WIT list as &Vec"
)]
async fn dispatch(
    live: &mut Live,
    call: Call,
    config: &Vec<(String, String)>,
) -> wasmtime::Result<Reply> {
    let store = &mut live.store;
    match &live.exports {
        Exports::V0_1(bindings) => {
            let f = bindings.seaworthy_fixture_fixture();
            Ok(match call {
                Call::Metadata => Reply::Metadata(f.call_metadata(&mut *store).await?),
                Call::Definition => {
                    Reply::Definition(f.call_definition(&mut *store, config).await?)
                }
                Call::Ready => Reply::Ready(f.call_ready(&mut *store, config).await?),
                Call::Clean => Reply::Unit(f.call_clean(&mut *store, config).await?),
                Call::Connection => {
                    Reply::Connection(f.call_connection(&mut *store, config).await?)
                }
                Call::IsolationSlots => {
                    Reply::Slots(f.call_isolation_slots(&mut *store, config).await?)
                }
                Call::Isolate(slot) => {
                    Reply::Isolated(f.call_isolate(&mut *store, config, slot).await?)
                }
                Call::Release(slot) => {
                    Reply::Unit(f.call_release(&mut *store, config, slot).await?)
                }
            })
        }
    }
}
