//! Engines over SSH: each connection to the engine is one `ssh … docker system dial-stdio`
//! process, a direct child of this process, whose standard input and output carry the Engine
//! API's HTTP.
//!
//! No SSH master process (`ssh -M`, `ControlPersist`) is started: a master forks into the
//! background and outlives the process that started it unless something closes it, and a test
//! process often ends without dropping its engine (a static fixture, `std::process::exit`, a
//! killed test). Here each `ssh` ends with its connection, and at the latest with this process:
//! a dropped connection kills its `ssh`, and when this process ends, however it ends, the
//! kernel closes the pipe that is the `ssh`'s standard input, which ends the remote
//! `dial-stdio`, its channel and the `ssh` with it. Idle connections are kept in the client's
//! pool and reused, as for every other transport.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bollard::{BollardRequest, ClientVersion, Docker};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::oneshot;

/// How long `ssh` may take to reach the host (its `ConnectTimeout`).
const CONNECT_TIMEOUT_SECS: u32 = 30;

/// How much of what `ssh` says on its standard error is kept for an error message.
const STDERR_KEPT: usize = 4096;

/// The parts of an `ssh://[user@]host[:port][/…]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    pub(crate) user: Option<String>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

impl Destination {
    /// Parses `endpoint`; the error says what is wrong with it.
    pub(crate) fn parse(endpoint: &str) -> std::result::Result<Destination, String> {
        let rest = endpoint
            .strip_prefix("ssh://")
            .ok_or_else(|| format!("{endpoint} is not an ssh:// endpoint"))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, hp)) => (Some(user.to_string()), hp),
            None => (None, authority),
        };
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            // [v6 address] or [v6 address]:port
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("{endpoint}: unclosed [ in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("{endpoint}: unexpected {after:?} after the host")),
            };
            (host, port)
        } else {
            match host_port.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{endpoint} names no host (ssh://USER@HOST[:PORT])"));
        }
        if user.as_deref() == Some("") {
            return Err(format!("{endpoint} has an empty user name"));
        }
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("{endpoint}: {p:?} is not a port number"))
            })
            .transpose()?;
        Ok(Destination {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// The arguments of the `ssh` that runs `docker system dial-stdio` there, with `key` as the
    /// only identity when given.
    fn ssh_args(&self, key: Option<&Path>) -> Vec<String> {
        let mut args: Vec<String> = [
            "-T",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            // What the Docker CLI's and bollard's SSH transports do with a host seen first.
            "StrictHostKeyChecking=accept-new",
        ]
        .map(String::from)
        .into();
        args.extend([
            "-o".into(),
            format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}"),
        ]);
        if let Some(key) = key {
            args.extend([
                "-o".into(),
                "IdentitiesOnly=yes".into(),
                "-i".into(),
                key.display().to_string(),
            ]);
        }
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        args.extend(["--", &self.host, "docker", "system", "dial-stdio"].map(String::from));
        args
    }
}

/// A bollard client for the engine behind `endpoint` (`ssh://[user@]host[:port]`), reached
/// with `key` when given, else with SSH's own configuration (agent, `~/.ssh/config`).
pub(crate) fn docker(
    endpoint: &str,
    key: Option<&Path>,
    timeout_secs: u64,
    version: &ClientVersion,
) -> std::result::Result<Docker, String> {
    let destination = Destination::parse(endpoint)?;
    let connector = Connector {
        args: Arc::new(destination.ssh_args(key)),
        shown: Arc::from(endpoint),
    };
    let client = Arc::new(Client::builder(TokioExecutor::new()).build(connector));
    Docker::connect_with_custom_transport(
        move |request: BollardRequest| {
            let client = Arc::clone(&client);
            async move { client.request(request).await.map_err(transport_error) }
        },
        Some(endpoint),
        timeout_secs,
        version,
    )
    .map_err(|e| e.to_string())
}

/// A transport failure as one message with its causes (`client error (SendRequest): the SSH
/// connection to … ended before the engine answered: Permission denied (publickey).`): the
/// reason ssh gave is deep in the chain, and error messages show only the top.
fn transport_error(e: hyper_util::client::legacy::Error) -> bollard::errors::Error {
    let first = std::error::Error::source(&e);
    // The kind of the deepest I/O error in the chain.
    let kind = std::iter::successors(first, |c| c.source())
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .last()
        .map_or(io::ErrorKind::Other, io::Error::kind);
    let text = crate::error::with_causes(e.to_string(), first);
    bollard::errors::Error::IOError {
        err: io::Error::new(kind, text),
    }
}

/// Opens connections: one `ssh` child process each.
#[derive(Clone)]
struct Connector {
    args: Arc<Vec<String>>,
    /// The endpoint, for error messages.
    shown: Arc<str>,
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = TokioIo<SshPipe>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<SshPipe>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let args = Arc::clone(&self.args);
        let shown = Arc::clone(&self.shown);
        Box::pin(async move { SshPipe::spawn(&args, shown).map(TokioIo::new) })
    }
}

/// One connection: the `ssh` child and its pipes.
pub(crate) struct SshPipe {
    /// Killed when the connection is dropped (`kill_on_drop`).
    _child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    /// What `ssh` said on its standard error, once it closed it.
    said: Option<oneshot::Receiver<String>>,
    /// Whether the engine has sent anything yet.
    answered: bool,
    shown: Arc<str>,
}

impl SshPipe {
    fn spawn(args: &[String], shown: Arc<str>) -> io::Result<SshPipe> {
        let mut child = tokio::process::Command::new("ssh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot run ssh for {shown} (the SSH transport runs the OpenSSH client, \
                         which must be on PATH): {e}"
                    ),
                )
            })?;
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(io::Error::other("ssh started without its pipes"));
        };
        // Drains standard error for as long as ssh runs (it must never block on a full pipe),
        // keeping the end of it for the error of a connection that ends unanswered.
        let (tell, said) = oneshot::channel();
        tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut chunk = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > STDERR_KEPT {
                    kept.drain(..kept.len() - STDERR_KEPT);
                }
            }
            let _ = tell.send(String::from_utf8_lossy(&kept).trim().to_string());
        });
        Ok(SshPipe {
            _child: child,
            stdin: Some(stdin),
            stdout,
            said: Some(said),
            answered: false,
            shown,
        })
    }

    fn stdin(&mut self) -> io::Result<Pin<&mut ChildStdin>> {
        self.stdin
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::ErrorKind::BrokenPipe.into())
    }
}

impl AsyncRead for SshPipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.answered {
            if let Some(said) = this.said.as_mut() {
                let before = buf.filled().len();
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                ready!(Pin::new(&mut this.stdout).poll_read(cx, buf))?;
                if buf.filled().len() > before {
                    this.answered = true;
                    return Poll::Ready(Ok(()));
                }
                // The connection ended before the engine said anything: what ssh said is the
                // reason (refused key, unknown host, no docker there...).
                let text = ready!(Pin::new(said).poll(cx)).unwrap_or_default();
                this.said = None;
                if text.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!(
                        "the SSH connection to {} ended before the engine answered: {text}",
                        this.shown
                    ),
                )));
            }
        }
        Pin::new(&mut this.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stdin()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stdin()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stdin
            .as_ref()
            .is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stdin()?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.stdin()?.poll_shutdown(cx))?;
        // Closing the pipe is what tells the remote end that this side is done writing.
        this.stdin = None;
        Poll::Ready(Ok(()))
    }
}

impl Connection for SshPipe {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Destination;

    #[test]
    fn ssh_endpoints_name_user_host_and_port() {
        let d = Destination::parse("ssh://ci@build-7:2222").unwrap();
        assert_eq!(
            d,
            Destination {
                user: Some("ci".into()),
                host: "build-7".into(),
                port: Some(2222),
            }
        );
        let d = Destination::parse("ssh://build-7").unwrap();
        assert_eq!((d.user, d.port), (None, None));
        let d = Destination::parse("ssh://ci@[fd00::7]:22/").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("fd00::7", Some(22)));
        assert!(Destination::parse("ssh://ci@build-7:ssh")
            .unwrap_err()
            .contains("not a port number"));
        assert!(Destination::parse("ssh://ci@")
            .unwrap_err()
            .contains("names no host"));
    }

    #[test]
    fn ssh_runs_dial_stdio_with_only_the_given_key() {
        let d = Destination::parse("ssh://ci@build-7:2222").unwrap();
        let args = d.ssh_args(Some(std::path::Path::new("/keys/id")));
        let joined = args.join(" ");
        assert!(
            joined.contains("-o IdentitiesOnly=yes -i /keys/id"),
            "{joined}"
        );
        assert!(joined.contains("-l ci -p 2222"), "{joined}");
        assert!(
            joined.ends_with("-- build-7 docker system dial-stdio"),
            "{joined}"
        );
        assert!(
            !joined.contains("ControlMaster") && !joined.contains(" -M"),
            "{joined}"
        );
    }
}
