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
    ExecOutput, ExecRequest, HostError, HttpRequest, HttpResponse, Level, LogLine, LogSource,
};

/// The largest HTTP response body handed to a plugin.
const MAX_HTTP_BODY: usize = 8 << 20;
/// The largest single TCP read.
const MAX_TCP_READ: usize = 64 << 10;
/// The longest a plugin may sleep per call.
const MAX_SLEEP: Duration = Duration::from_secs(10);
/// The longest message a plugin may log.
const MAX_LOG_MESSAGE: usize = 4096;

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
    tracing::warn!(plugin = %state.manifest.id, denied = %what, "plugin host call denied");
    state.denials.push(what.clone());
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
    let mut exec = seaworthy::Exec::new(request.argv).timeout(timeout);
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
    let client = container.http(port).map_err(|_| {
        HostError::Invalid(format!(
            "container port {port} is not published (add it to the spec's ports)"
        ))
    })?;
    let timeout = capped(state, request.timeout_ms);
    let mut builder = client.request(method, &request.path).timeout(timeout);
    for (k, v) in &request.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    if !request.body.is_empty() {
        builder = builder.body(request.body);
    }
    let exchange = async {
        let mut response = builder
            .send()
            .await
            .map_err(|e| HostError::Io(format!("HTTP {} {}: {e}", request.method, request.path)))?;
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
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(HostError::Timeout(format!(
            "HTTP {} {} within {timeout:?}",
            request.method, request.path
        ))),
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
    let container = own_container(state, "container-logs")?;
    let timeout = state.limits.host_call_timeout;
    let logs = match tokio::time::timeout(timeout, container.logs()).await {
        Ok(Ok(logs)) => logs,
        Ok(Err(e)) => return Err(core_error(e)),
        Err(_) => {
            return Err(HostError::Timeout(format!(
                "reading the logs within {timeout:?}"
            )))
        }
    };
    let skip = tail.map_or(0, |t| logs.lines.len().saturating_sub(t as usize));
    Ok(logs
        .lines
        .into_iter()
        .skip(skip)
        .map(|l| LogLine {
            source: match l.stream {
                seaworthy::LogStream::Stdout => LogSource::Stdout,
                seaworthy::LogStream::Stderr => LogSource::Stderr,
            },
            text: l.text,
        })
        .collect())
}

pub(crate) async fn sleep(state: &mut HostState, ms: u32) {
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(u64::from(ms)).min(MAX_SLEEP)).await;
    charge(state, started);
}

pub(crate) fn log(state: &mut HostState, level: Level, message: &str) {
    let mut end = message.len().min(MAX_LOG_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let message = &message[..end];
    let plugin = state.manifest.id.as_str();
    match level {
        Level::Trace => tracing::trace!(plugin, "{message}"),
        Level::Debug => tracing::debug!(plugin, "{message}"),
        Level::Info => tracing::info!(plugin, "{message}"),
        Level::Warn => tracing::warn!(plugin, "{message}"),
        Level::Error => tracing::error!(plugin, "{message}"),
    }
}
