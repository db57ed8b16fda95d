//! What a plugin may ask of the host, written once against the newest WIT types
//! ([`crate::latest`]); each version's module forwards here.
//!
//! Every call acts on the plugin's own container (the store holds it; no call names another),
//! checks the capability against the manifest (whose capabilities were all granted when the
//! plugin was loaded), and runs under a timeout capped by [`Limits::host_call_timeout`]. Time
//! spent here is not counted against the plugin's CPU deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmtime::component::Resource;

use crate::instance::HostState;
use crate::latest::host::{
    ExecOutput, ExecRequest, HostError, HttpRequest, HttpResponse, Level, LogChunk, LogLine,
    LogSource,
};

/// The largest HTTP response body handed to a plugin.
const MAX_HTTP_BODY: usize = 8 << 20;
/// The largest single TCP read.
const MAX_TCP_READ: usize = 64 << 10;
/// The longest a plugin may sleep per call.
const MAX_SLEEP: Duration = Duration::from_secs(10);
/// The longest message a plugin may log.
const MAX_LOG_MESSAGE: usize = 4096;
/// How many log lines a plugin may write in a burst, and then per second.
const LOG_BURST: f64 = 200.0;
const LOG_PER_SECOND: f64 = 100.0;
/// How many denials of one call are kept for its error message.
const KEPT_DENIALS: usize = 8;
/// How many host calls one call may have denied before it is stopped.
pub(crate) const MAX_DENIED_CALLS: usize = 256;
/// The most log lines one `container-logs` call returns, and the longest line. The engine
/// counts its log entries (of at most 16 KiB each) for the tail, so the tail read costs at most
/// 1 000 x 16 KiB however long the container's lines are.
const MAX_LOG_LINES: u32 = 1_000;
const MAX_LOG_LINE: usize = 16 << 10;
/// The most bytes of log text one `container-logs` call returns (the newest lines are kept).
const MAX_LOG_BYTES: usize = 4 << 20;
/// The most lines and bytes of the log the follower of `container-log-since` keeps (the
/// newest).
const FOLLOWED_LINES: usize = 10_000;
const FOLLOWED_BYTES: usize = 4 << 20;
/// The most bytes an exec's output (stdout and stderr together) may have.
pub(crate) const MAX_EXEC_OUTPUT: usize = 8 << 20;

/// `text` cut to at most `max` bytes (at a character boundary), with a note of how much was cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes cut)", &text[..end], text.len() - end)
}

/// The host calls denied during the current call: the first few kept for the error message,
/// all counted, so a plugin that is denied in a loop costs the host a bounded amount of work.
#[derive(Debug, Default)]
pub(crate) struct Denials {
    pub(crate) kept: Vec<String>,
    pub(crate) total: usize,
}

impl Denials {
    pub(crate) fn clear(&mut self) {
        self.kept.clear();
        self.total = 0;
    }

    fn record(&mut self, what: &str) {
        self.total += 1;
        if self.kept.len() < KEPT_DENIALS {
            self.kept.push(what.to_string());
        }
    }
}

/// Marks the error that stops a call whose host calls were denied too often.
#[derive(Debug)]
pub(crate) struct TooManyDenials {
    pub(crate) first: String,
}

impl std::fmt::Display for TooManyDenials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "it was denied more than {MAX_DENIED_CALLS} host calls in one call (the first: {})",
            self.first
        )
    }
}

impl std::error::Error for TooManyDenials {}

/// Stops the call (a trap) once it has been denied more than [`MAX_DENIED_CALLS`] host calls.
pub(crate) fn check_denials(state: &HostState) -> wasmtime::Result<()> {
    if state.denials.total > MAX_DENIED_CALLS {
        return Err(wasmtime::Error::new(TooManyDenials {
            first: state.denials.kept.first().cloned().unwrap_or_default(),
        }));
    }
    Ok(())
}

/// A token bucket for a plugin's log lines: a burst, then a steady rate; lines over it are
/// dropped and counted, and the count is logged with the next line let through.
#[derive(Debug)]
pub(crate) struct LogRate {
    tokens: f64,
    last: Instant,
    dropped: u64,
}

impl Default for LogRate {
    fn default() -> Self {
        LogRate {
            tokens: LOG_BURST,
            last: Instant::now(),
            dropped: 0,
        }
    }
}

impl LogRate {
    /// Whether a line may be logged now; `Some(n)` with the lines dropped before it.
    fn take(&mut self) -> Option<u64> {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> Option<u64> {
        let refill = now.duration_since(self.last).as_secs_f64() * LOG_PER_SECOND;
        self.tokens = (self.tokens + refill).min(LOG_BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Some(std::mem::take(&mut self.dropped))
        } else {
            self.dropped += 1;
            None
        }
    }
}

/// An open TCP connection to one of the container's ports (the `tcp-stream` resource).
pub struct TcpConn {
    stream: tokio::net::TcpStream,
    port: u16,
}

/// Adds the time since `started` to the host time of the current call (not counted against
/// the plugin's CPU deadline).
fn charge(state: &mut HostState, started: Instant) {
    state.clock.host_time += started.elapsed();
}

fn denied(state: &mut HostState, what: String) -> HostError {
    if state.denials.total < KEPT_DENIALS {
        tracing::warn!(plugin = %state.manifest.id, denied = %what, "plugin host call denied");
    }
    state.denials.record(&what);
    HostError::Denied(what)
}

/// The plugin's container, or a denial before it exists (during `definition`).
fn own_container(
    state: &mut HostState,
    call: &str,
) -> Result<Arc<seaworthy::Container>, HostError> {
    match &state.container {
        Some(c) => Ok(c.clone()),
        None => Err(denied(
            state,
            format!("{call} is not available before the container exists (in definition())"),
        )),
    }
}

/// The timeout a plugin asked for, capped by the host's limit.
fn capped(state: &HostState, requested_ms: Option<u32>) -> Duration {
    let cap = state.limits.host_call_timeout;
    requested_ms.map_or(cap, |ms| Duration::from_millis(u64::from(ms)).min(cap))
}

fn core_error(e: seaworthy::Error) -> HostError {
    match e {
        seaworthy::Error::Timeout { action, timeout } => {
            HostError::Timeout(format!("{action} did not finish within {timeout:?}"))
        }
        other => HostError::Io(other.to_string()),
    }
}

pub(crate) async fn exec(
    state: &mut HostState,
    request: ExecRequest,
) -> Result<ExecOutput, HostError> {
    let started = Instant::now();
    let out = exec_here(state, request).await;
    charge(state, started);
    out
}

async fn exec_here(state: &mut HostState, request: ExecRequest) -> Result<ExecOutput, HostError> {
    let container = own_container(state, "exec")?;
    if !state.manifest.capabilities.exec {
        return Err(denied(
            state,
            format!(
                "exec is not declared in the manifest of plugin `{}`",
                state.manifest.id
            ),
        ));
    }
    if request.argv.is_empty() {
        return Err(HostError::Invalid("exec needs a program to run".into()));
    }
    let timeout = capped(state, request.timeout_ms);
    let mut exec = seaworthy::Exec::new(request.argv)
        .timeout(timeout)
        .max_output(MAX_EXEC_OUTPUT);
    for (k, v) in &request.env {
        exec = exec.env(k, v);
    }
    if let Some(user) = request.user {
        exec = exec.user(user);
    }
    if let Some(dir) = request.workdir {
        exec = exec.workdir(dir);
    }
    if let Some(input) = request.stdin {
        exec = exec.stdin(input);
    }
    let line = exec.command_line();
    tracing::debug!(plugin = %state.manifest.id, container = container.name(), command = %line, "plugin exec");
    // The core's exec has its own timeout; this one also covers reaching the engine.
    match tokio::time::timeout(timeout + Duration::from_secs(1), container.exec(exec)).await {
        Ok(Ok(out)) => Ok(ExecOutput {
            exit_code: out.exit_code,
            stdout: out.stdout,
            stderr: out.stderr,
        }),
        Ok(Err(e)) => Err(core_error(e)),
        Err(_) => Err(HostError::Timeout(format!(
            "exec `{line}` did not finish within {timeout:?}"
        ))),
    }
}

pub(crate) async fn tcp_connect(
    state: &mut HostState,
    port: u16,
    timeout_ms: u32,
) -> wasmtime::Result<Result<Resource<TcpConn>, HostError>> {
    let started = Instant::now();
    let connected = connect_here(state, port, timeout_ms).await;
    charge(state, started);
    match connected {
        Ok(conn) => {
            let resource = state.table.push(conn)?;
            state.open_streams += 1;
            Ok(Ok(resource))
        }
        Err(e) => Ok(Err(e)),
    }
}

async fn connect_here(
    state: &mut HostState,
    port: u16,
    timeout_ms: u32,
) -> Result<TcpConn, HostError> {
    let container = own_container(state, "tcp-connect")?;
    if !state.manifest.capabilities.tcp.contains(&port) {
        return Err(denied(
            state,
            format!(
                "tcp port {port} is not declared in the manifest of plugin `{}` (it declares {})",
                state.manifest.id, state.manifest.capabilities
            ),
        ));
    }
    if state.open_streams >= state.limits.max_tcp_streams {
        return Err(denied(
            state,
            format!(
                "more than {} open TCP connections",
                state.limits.max_tcp_streams
            ),
        ));
    }
    let host_port = container.host_port(port).map_err(|_| {
        HostError::Invalid(format!(
            "container port {port} is not published (add it to the spec's ports)"
        ))
    })?;
    let timeout = capped(state, Some(timeout_ms));
    let address = (container.host().to_string(), host_port);
    // Connected on Seaworthy's runtime, so the stream is registered with its reactor and keeps
    // working for a fixture shared by tests whose own runtimes come and go.
    let connect =
        async move { tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await };
    match seaworthy::runtime::run(connect).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(TcpConn { stream, port })
        }
        Ok(Err(e)) => Err(HostError::Io(format!(
            "connect to container port {port}: {e}"
        ))),
        Err(_) => Err(HostError::Timeout(format!(
            "connect to container port {port} within {timeout:?}"
        ))),
    }
}

pub(crate) async fn tcp_send(
    state: &mut HostState,
    stream: &Resource<TcpConn>,
    data: &[u8],
) -> wasmtime::Result<Result<(), HostError>> {
    let timeout = state.limits.host_call_timeout;
    let started = Instant::now();
    let conn = state.table.get_mut(stream)?;
    let port = conn.port;
    let result = match tokio::time::timeout(timeout, conn.stream.write_all(data)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Err(HostError::Closed)
        }
        Ok(Err(e)) => Err(HostError::Io(format!("send to container port {port}: {e}"))),
        Err(_) => Err(HostError::Timeout(format!(
            "send to container port {port} within {timeout:?}"
        ))),
    };
    charge(state, started);
    Ok(result)
}

pub(crate) async fn tcp_receive(
    state: &mut HostState,
    stream: &Resource<TcpConn>,
    max: u32,
    timeout_ms: u32,
) -> wasmtime::Result<Result<Vec<u8>, HostError>> {
    let timeout = capped(state, Some(timeout_ms));
    let started = Instant::now();
    let conn = state.table.get_mut(stream)?;
    let port = conn.port;
    let mut buf = vec![0u8; (max as usize).clamp(1, MAX_TCP_READ)];
    let result = match tokio::time::timeout(timeout, conn.stream.read(&mut buf)).await {
        Ok(Ok(n)) => {
            buf.truncate(n);
            Ok(buf)
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Err(HostError::Closed),
        Ok(Err(e)) => Err(HostError::Io(format!(
            "receive from container port {port}: {e}"
        ))),
        Err(_) => Err(HostError::Timeout(format!(
            "nothing received from container port {port} within {timeout:?}"
        ))),
    };
    charge(state, started);
    Ok(result)
}

pub(crate) fn tcp_drop(state: &mut HostState, stream: Resource<TcpConn>) -> wasmtime::Result<()> {
    state.table.delete(stream)?;
    state.open_streams = state.open_streams.saturating_sub(1);
    Ok(())
}

pub(crate) async fn http(
    state: &mut HostState,
    request: HttpRequest,
) -> Result<HttpResponse, HostError> {
    let started = Instant::now();
    let out = http_here(state, request).await;
    charge(state, started);
    out
}

async fn http_here(state: &mut HostState, request: HttpRequest) -> Result<HttpResponse, HostError> {
    let container = own_container(state, "http")?;
    let port = request.port;
    if !state.manifest.capabilities.http.contains(&port) {
        return Err(denied(
            state,
            format!(
                "http to port {port} is not declared in the manifest of plugin `{}` (it declares {})",
                state.manifest.id, state.manifest.capabilities
            ),
        ));
    }
    let method = seaworthy::reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| HostError::Invalid(format!("bad HTTP method {:?}", request.method)))?;
    if !request.path.starts_with('/') {
        return Err(HostError::Invalid(format!(
            "the path {:?} must start with `/`",
            request.path
        )));
    }
    // Redirects are handed to the plugin as they came, never followed: a `Location` may point
    // anywhere (the host's loopback, another container), and the capability is this port only.
    // One client per port for the instance's life, so its connections are kept and reused (a
    // reset of several requests pays one connection, as a native client's pool would).
    let client = match state.http_clients.get(&port) {
        Some(client) => client.clone(),
        None => {
            let client = container
                .http_with_redirects(port, seaworthy::reqwest::redirect::Policy::none())
                .map_err(|_| {
                    HostError::Invalid(format!(
                        "container port {port} is not published (add it to the spec's ports)"
                    ))
                })?;
            state.http_clients.insert(port, client.clone());
            client
        }
    };
    let timeout = capped(state, request.timeout_ms);
    let mut builder = client.request(method, &request.path).timeout(timeout);
    for (k, v) in &request.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    if !request.body.is_empty() {
        builder = builder.body(request.body);
    }
    let (method, path) = (request.method, request.path);
    let what = format!("HTTP {method} {path}");
    let exchange = async move {
        let mut response = builder
            .send()
            .await
            .map_err(|e| HostError::Io(format!("HTTP {method} {path}: {e}")))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| HostError::Io(format!("HTTP body: {e}")))?
        {
            if body.len() + chunk.len() > MAX_HTTP_BODY {
                return Err(HostError::Invalid(format!(
                    "the response body is larger than {MAX_HTTP_BODY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    };
    // On Seaworthy's runtime, where the client's pooled connections live: they keep working for a
    // fixture shared by tests whose own runtimes come and go.
    match seaworthy::runtime::run(tokio::time::timeout(timeout, exchange)).await {
        Ok(result) => result,
        Err(_) => Err(HostError::Timeout(format!("{what} within {timeout:?}"))),
    }
}

/// The host's follower of the container's log, for `container-log-since`: a task on Seaworthy's
/// runtime reads the engine's log stream from the container's first line on and keeps the
/// newest lines, numbered from 0, waking the calls that wait for a line. One per instance,
/// started by its first call; the task stops when the instance is dropped.
pub(crate) struct LogFollower {
    shared: Arc<Followed>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LogFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the follower has read, shared with its task.
#[derive(Default)]
struct Followed {
    state: std::sync::Mutex<FollowedLines>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct FollowedLines {
    /// The number of `lines[0]`.
    first: u64,
    lines: std::collections::VecDeque<LogLine>,
    bytes: usize,
    /// Why the stream ended (the container stopped, or the engine failed), once it has.
    ended: Option<String>,
}

impl FollowedLines {
    fn push(&mut self, line: LogLine) {
        self.bytes += line.text.len();
        self.lines.push_back(line);
        while self.lines.len() > FOLLOWED_LINES || self.bytes > FOLLOWED_BYTES {
            match self.lines.pop_front() {
                Some(old) => {
                    self.bytes -= old.text.len();
                    self.first += 1;
                }
                None => break,
            }
        }
    }

    /// The lines from `from` on (at most [`MAX_LOG_LINES`] and [`MAX_LOG_BYTES`]), and whether
    /// one of them contains `until`.
    fn since(&self, from: u64, until: Option<&str>) -> (LogChunk, bool) {
        let first = from.max(self.first);
        let skip = usize::try_from(first - self.first).unwrap_or(usize::MAX);
        let mut lines = Vec::new();
        let mut bytes = 0;
        let mut found = until.is_none();
        for line in self.lines.iter().skip(skip) {
            if lines.len() >= MAX_LOG_LINES as usize || bytes + line.text.len() > MAX_LOG_BYTES {
                // The rest is for the next call; a match in it counts as found, so that
                // the caller reads on instead of waiting.
                found = found || until.is_some_and(|u| line.text.contains(u));
                if found {
                    break;
                }
                continue;
            }
            found = found || until.is_some_and(|u| line.text.contains(u));
            bytes += line.text.len();
            lines.push(line.clone());
        }
        (LogChunk { first, lines }, found)
    }
}

impl LogFollower {
    fn start(container: &seaworthy::Container) -> LogFollower {
        use futures_util::StreamExt;

        let shared = Arc::new(Followed::default());
        let mut stream = container.log_stream(seaworthy::LogOptions::follow());
        let feed = shared.clone();
        let task = seaworthy::runtime::spawn(async move {
            let ended = loop {
                match stream.next().await {
                    Some(Ok(line)) => {
                        let line = LogLine {
                            source: match line.stream {
                                seaworthy::LogStream::Stdout => LogSource::Stdout,
                                seaworthy::LogStream::Stderr => LogSource::Stderr,
                            },
                            text: clip(&line.text, MAX_LOG_LINE),
                        };
                        if let Ok(mut state) = feed.state.lock() {
                            state.push(line);
                        }
                    }
                    Some(Err(e)) => break format!("reading the container's log failed: {e}"),
                    None => break "the container's log ended (the container stopped)".to_string(),
                }
                feed.changed.notify_waiters();
            };
            if let Ok(mut state) = feed.state.lock() {
                state.ended = Some(ended);
            }
            feed.changed.notify_waiters();
        });
        LogFollower { shared, task }
    }
}

pub(crate) async fn container_log_since(
    state: &mut HostState,
    from: u64,
    until: Option<String>,
    timeout_ms: u32,
) -> Result<LogChunk, HostError> {
    let started = Instant::now();
    let out = log_since_here(state, from, until, timeout_ms).await;
    charge(state, started);
    out
}

async fn log_since_here(
    state: &mut HostState,
    from: u64,
    until: Option<String>,
    timeout_ms: u32,
) -> Result<LogChunk, HostError> {
    let container = own_container(state, "container-log-since")?;
    let timeout = capped(state, Some(timeout_ms));
    let shared = state
        .log_follower
        .get_or_insert_with(|| LogFollower::start(&container))
        .shared
        .clone();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Registered before the lines are looked at, so a line added in between wakes it.
        let changed = shared.changed.notified();
        let ended = {
            let lines = shared
                .state
                .lock()
                .map_err(|_| HostError::Io("the log follower failed".into()))?;
            let (chunk, found) = lines.since(from, until.as_deref());
            if found {
                return Ok(chunk);
            }
            lines.ended.clone()
        };
        if let Some(why) = ended {
            return Err(HostError::Io(format!(
                "no line of the container's log contains {:?}: {why}",
                until.unwrap_or_default()
            )));
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return Err(HostError::Timeout(format!(
                "no line of the container's log contained {:?} within {timeout:?}",
                until.unwrap_or_default()
            )));
        }
    }
}

pub(crate) async fn container_logs(
    state: &mut HostState,
    tail: Option<u32>,
) -> Result<Vec<LogLine>, HostError> {
    let started = Instant::now();
    let out = container_logs_here(state, tail).await;
    charge(state, started);
    out
}

async fn container_logs_here(
    state: &mut HostState,
    tail: Option<u32>,
) -> Result<Vec<LogLine>, HostError> {
    use futures_util::StreamExt;

    let container = own_container(state, "container-logs")?;
    let timeout = state.limits.host_call_timeout;
    // Only the tail is read (the engine seeks from the end), whatever the log's size.
    let wanted = tail.unwrap_or(MAX_LOG_LINES).min(MAX_LOG_LINES);
    let mut stream = container.log_stream(seaworthy::LogOptions {
        tail: Some(wanted as usize),
        ..Default::default()
    });
    let read = async {
        let mut lines = std::collections::VecDeque::new();
        let mut bytes = 0usize;
        while let Some(line) = stream.next().await {
            let line = line.map_err(core_error)?;
            let text = clip(&line.text, MAX_LOG_LINE);
            bytes += text.len();
            lines.push_back(LogLine {
                source: match line.stream {
                    seaworthy::LogStream::Stdout => LogSource::Stdout,
                    seaworthy::LogStream::Stderr => LogSource::Stderr,
                },
                text,
            });
            while bytes > MAX_LOG_BYTES {
                match lines.pop_front() {
                    Some(dropped) => bytes -= dropped.text.len(),
                    None => break,
                }
            }
        }
        Ok(lines.into())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(HostError::Timeout(format!(
            "reading the logs within {timeout:?}"
        ))),
    }
}

pub(crate) async fn sleep(state: &mut HostState, ms: u32) {
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(u64::from(ms)).min(MAX_SLEEP)).await;
    charge(state, started);
}

pub(crate) fn log(state: &mut HostState, level: Level, message: &str) {
    let Some(dropped) = state.log_rate.take() else {
        return;
    };
    let plugin = state.manifest.id.as_str();
    if dropped > 0 {
        tracing::warn!(
            plugin,
            "{dropped} log lines of this plugin were dropped (over {LOG_PER_SECOND} lines a second)"
        );
    }
    let message = clip(message, MAX_LOG_MESSAGE);
    match level {
        Level::Trace => tracing::trace!(plugin, "{message}"),
        Level::Debug => tracing::debug!(plugin, "{message}"),
        Level::Info => tracing::info!(plugin, "{message}"),
        Level::Warn => tracing::warn!(plugin, "{message}"),
        Level::Error => tracing::error!(plugin, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_flood_is_cut_to_the_rate_and_counted() {
        let mut rate = LogRate::default();
        let start = rate.last;
        // 100 000 lines within the same instant: the burst passes.
        let passed = (0..100_000)
            .filter(|_| rate.take_at(start).is_some())
            .count();
        assert_eq!(passed, LOG_BURST as usize);
        assert_eq!(rate.dropped, 100_000 - LOG_BURST as u64);
        // A second later, the rate's worth passes, the first carrying the count dropped.
        let later = start + Duration::from_secs(1);
        assert_eq!(rate.take_at(later), Some(100_000 - LOG_BURST as u64));
        let passed = 1 + (0..1000).filter(|_| rate.take_at(later).is_some()).count();
        assert_eq!(passed, LOG_PER_SECOND as usize);
    }

    #[test]
    fn text_is_cut_at_a_character_boundary_with_the_count() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééé", 3), "é... (4 more bytes cut)");
    }

    #[test]
    fn denials_keep_a_few_and_count_all() {
        let mut denials = Denials::default();
        for i in 0..1000 {
            denials.record(&format!("call {i}"));
        }
        assert_eq!(denials.kept.len(), KEPT_DENIALS);
        assert_eq!(denials.total, 1000);
        denials.clear();
        assert_eq!((denials.kept.len(), denials.total), (0, 0));
    }
}
