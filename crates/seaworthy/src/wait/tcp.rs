//! A TCP port that the server in the container accepts connections on, probed every 50 ms.
//!
//! Where this process reaches the container's own address (a rootful engine on this machine, the
//! container's network bridged here), the probe connects to `container-address:port`: refused
//! means nothing listens yet, accepted means the server does. No port proxy stands in between.
//!
//! Elsewhere (a remote or rootless engine, a network this machine does not route to, found by
//! trying: a direct connection that gets no answer or "unreachable" gives up on the direct way for
//! the rest of the wait), the probe connects to the published port, where the engine's userland
//! proxy may accept even when nothing listens inside, then close once it finds nothing behind it.
//! There data means accepted and a close means "not yet"; silence is ambiguous (a silent server,
//! or a proxy slow to close on a loaded machine), so it counts only when it holds on two
//! connections, the first silent for twice the silence window and the second for the window,
//! and still holds on both once the engine has said that the container runs (a request that
//! takes its own time: a remote engine's round trip, an SSH channel's). The window is 50 ms plus
//! two round trips to the engine's host (the time a connection took: a close cannot come back
//! sooner), or four times the slowest close seen from the proxy if longer, up to 2 s.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::custom::target;
use super::{Checking, Condition, Impossible, Wait, PROBE_INTERVAL};
use crate::container::{inspect_here, Inner};

/// How long a connection to the container's own address may take before that address counts as
/// unreachable from here (on a bridge of this machine the answer takes microseconds).
const DIRECT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The shortest silence that counts, on each of the two connections to the published port.
const MIN_SILENCE: Duration = Duration::from_millis(50);
/// The longest silence asked for, however slow the proxy or the way to it.
const MAX_SILENCE: Duration = Duration::from_secs(2);
/// How many times the slowest close seen from the proxy the silence must last.
const SILENCE_PER_CLOSE: u32 = 4;

struct Tcp {
    port: u16,
}

impl Wait {
    /// A TCP connection to `port` (which must be published) accepted by the server in the
    /// container.
    ///
    /// On an engine of this machine whose container addresses this process reaches (a rootful
    /// Docker or Podman on a local socket or a loopback endpoint), the server's own accept is
    /// probed at the container's address. Elsewhere the published port is probed, telling the
    /// engine's port proxy (which accepts even when nothing listens inside) from the server: data,
    /// or two overlapping connections that stay open (at least 100 ms) and are still open once
    /// the engine has said that the container runs.
    pub fn tcp(port: u16) -> Wait {
        Wait::on(Tcp { port })
    }
}

impl Condition for Tcp {
    fn check<'a>(&'a self, inner: &'a Arc<Inner>) -> Checking<'a> {
        Box::pin(check_tcp(inner, self.port))
    }

    fn needs_ports(&self) -> bool {
        true
    }
}

impl fmt::Display for Tcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TCP port {} accepting connections", self.port)
    }
}

async fn check_tcp(inner: &Inner, port: u16) -> Result<(), Impossible> {
    let Some(host_port) = target(inner).ports.get(&port).copied() else {
        return Err(Impossible(format!(
            "because port {port} is not published (add with_port({port}))"
        )));
    };
    let published = crate::engine::host_with_port(inner.session.engine().host(), host_port);
    // While the container's address is looked up (an engine request), a server that speaks
    // first through the published port is ready already: data comes only from the server.
    let mut direct = tokio::select! {
        direct = direct_address(inner, port) => direct?,
        () = greeted(&published) => return Ok(()),
    };
    let mut proxy = ProxyProbe::new(published);
    loop {
        match direct {
            Some(address) => match connect_direct(address).await {
                Direct::Listening => return Ok(()),
                Direct::Refused => {}
                Direct::Unreachable(why) => {
                    tracing::debug!(
                        container = %inner.name,
                        %address,
                        why,
                        "the container's address is not reachable from here: probing the \
                         published port"
                    );
                    direct = None;
                    continue;
                }
            },
            None => match proxy.probe().await {
                Heard::Data => return Ok(()),
                Heard::Silence => match proxy.confirm(running(inner)).await? {
                    Heard::Closed(_) => {}
                    Heard::Data | Heard::Silence => return Ok(()),
                },
                Heard::Closed(_) => {}
            },
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// Resolves once a connection to `address` receives data, probing every 50 ms; pending for as
/// long as connections are refused, closed or silent.
async fn greeted(address: &str) {
    loop {
        if let Some((mut stream, opened, _)) = connect(address).await {
            if listen(&mut stream, opened, Instant::now() + MAX_SILENCE).await == Heard::Data {
                return;
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// `Ok` when the container is running: the proxy is silent too while it tries to reach a
/// container that just went away, so silence counts only from a running container.
async fn running(inner: &Inner) -> Result<(), Impossible> {
    let info = inspect_here(inner)
        .await
        .map_err(|e| Impossible(format!("because {e}")))?;
    if info.state.and_then(|s| s.running) == Some(true) {
        Ok(())
    } else {
        Err(Impossible("because the container is not running".into()))
    }
}

/// The container's own address with `port`, when this process should reach it: the engine is on
/// this machine (see [`engine_here`]) and one of the container's networks has its gateway here.
async fn direct_address(inner: &Inner, port: u16) -> Result<Option<SocketAddr>, Impossible> {
    if !engine_here(inner.session.engine().endpoint()) {
        return Ok(None);
    }
    let info = inspect_here(inner)
        .await
        .map_err(|e| Impossible(format!("because {e}")))?;
    let networks = info
        .network_settings
        .and_then(|s| s.networks)
        .unwrap_or_default();
    Ok(networks
        .values()
        .find_map(|n| {
            bridged_here(n.ip_address.as_deref(), n.gateway.as_deref()).or_else(|| {
                bridged_here(n.global_ipv6_address.as_deref(), n.ipv6_gateway.as_deref())
            })
        })
        .map(|ip| SocketAddr::new(ip, port)))
}

/// Whether the engine at `endpoint` runs on this machine with its networks in the host's network
/// namespace: a Unix socket owned by root (a rootless Docker's or Podman's socket, Docker
/// Desktop's and the other VMs' sockets belong to the user, and their container networks are not
/// the host's), or a TCP endpoint on a loopback address.
fn engine_here(endpoint: &str) -> bool {
    if let Some(path) = endpoint.strip_prefix("unix://") {
        use std::os::unix::fs::MetadataExt;
        return std::fs::metadata(path).is_ok_and(|m| m.uid() == 0);
    }
    ["tcp://", "http://", "https://"]
        .iter()
        .find_map(|scheme| endpoint.strip_prefix(scheme))
        .is_some_and(|rest| loopback_authority(rest.split('/').next().unwrap_or(rest)))
}

/// Whether the host of `authority` (`host[:port]`, `[v6][:port]`) is a loopback address.
fn loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.split(':').next().unwrap_or(authority),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// `ip` when the network with gateway `gateway` is bridged here: its gateway is one of this
/// network namespace's own addresses (binding to it succeeds only then).
fn bridged_here(ip: Option<&str>, gateway: Option<&str>) -> Option<IpAddr> {
    let ip = ip?.parse::<IpAddr>().ok()?;
    let gateway = gateway?.parse::<IpAddr>().ok()?;
    std::net::UdpSocket::bind(SocketAddr::new(gateway, 0)).ok()?;
    Some(ip)
}

/// What a connection to the container's own address found.
enum Direct {
    /// The server accepted.
    Listening,
    /// Refused: nothing listens there yet.
    Refused,
    /// No answer, or "unreachable": this process does not reach the container's address.
    Unreachable(String),
}

async fn connect_direct(address: SocketAddr) -> Direct {
    match tokio::time::timeout(DIRECT_CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(_)) => Direct::Listening,
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Direct::Refused
        }
        Ok(Err(e)) => Direct::Unreachable(e.to_string()),
        Err(_) => Direct::Unreachable(format!("no answer within {DIRECT_CONNECT_TIMEOUT:?}")),
    }
}

/// Probes of a published port, through the engine's userland proxy when it has one.
struct ProxyProbe {
    /// `host:port` of the published port.
    address: String,
    /// The slowest close seen from the proxy (nothing listening behind it yet).
    slowest_close: Duration,
    /// The connections of the last probe, when they were silent: with when each was opened.
    silent: Vec<(TcpStream, Instant)>,
}

/// What a probe of the published port heard.
#[derive(Debug, PartialEq)]
enum Heard {
    /// Data: a server answers.
    Data,
    /// The connection was refused, or closed (after this long): nothing listens yet.
    Closed(Option<Duration>),
    /// Silence on two connections: a server that does not speak first, on a running container.
    Silence,
}

impl ProxyProbe {
    fn new(address: String) -> ProxyProbe {
        ProxyProbe {
            address,
            slowest_close: Duration::ZERO,
            silent: Vec::new(),
        }
    }

    /// How long a connection must stay silent to count, when connecting took `connect` (a round
    /// trip to the engine's host: a close cannot come back sooner than one more): [`MIN_SILENCE`]
    /// and two round trips, or [`SILENCE_PER_CLOSE`] times the slowest close seen, up to
    /// [`MAX_SILENCE`].
    fn window(&self, connect: Duration) -> Duration {
        (MIN_SILENCE + connect.saturating_mul(2))
            .max(self.slowest_close.saturating_mul(SILENCE_PER_CLOSE))
            .min(MAX_SILENCE)
    }

    /// Connects to the published port and listens for the silence window; when silent, connects
    /// a second time and listens to both for another window. Silent connections are kept for
    /// [`ProxyProbe::confirm`].
    async fn probe(&mut self) -> Heard {
        self.silent.clear();
        let Some((mut first, first_opened, first_took)) = connect(&self.address).await else {
            return Heard::Closed(None);
        };
        let heard = listen(
            &mut first,
            first_opened,
            first_opened + self.window(first_took),
        )
        .await;
        if heard != Heard::Silence {
            return self.learn(heard);
        }
        let Some((mut second, second_opened, second_took)) = connect(&self.address).await else {
            return Heard::Closed(None);
        };
        let until = second_opened + self.window(first_took.max(second_took));
        let (a, b) = tokio::join!(
            listen(&mut first, first_opened, until),
            listen(&mut second, second_opened, until)
        );
        match (a, b) {
            (Heard::Data, _) | (_, Heard::Data) => Heard::Data,
            (Heard::Closed(x), Heard::Closed(y)) => self.learn(Heard::Closed(x.max(y))),
            (closed @ Heard::Closed(_), _) | (_, closed @ Heard::Closed(_)) => self.learn(closed),
            (Heard::Silence, Heard::Silence) => {
                self.silent = vec![(first, first_opened), (second, second_opened)];
                Heard::Silence
            }
        }
    }

    /// After a silent probe, runs `check` (the engine asked whether the container runs) while
    /// still listening on the silent connections, then looks at them once more: a close in the
    /// meantime means the proxy was only slow (`Closed`, remembered), not a server.
    async fn confirm(
        &mut self,
        check: impl std::future::Future<Output = Result<(), Impossible>>,
    ) -> Result<Heard, Impossible> {
        let mut open = std::mem::take(&mut self.silent);
        let sound = tokio::select! {
            heard = first_sound(&mut open) => Some(heard),
            checked = check => {
                checked?;
                None
            }
        };
        let heard = match sound {
            Some(heard) => heard,
            None => tokio::time::timeout(Duration::ZERO, first_sound(&mut open))
                .await
                .unwrap_or(Heard::Silence),
        };
        Ok(self.learn(heard))
    }

    /// Remembers how slow a close was.
    fn learn(&mut self, heard: Heard) -> Heard {
        if let Heard::Closed(Some(after)) = heard {
            self.slowest_close = self.slowest_close.max(after);
        }
        heard
    }
}

/// What the first of `open` to make a sound heard (data or a close); pending while all are
/// silent.
async fn first_sound(open: &mut [(TcpStream, Instant)]) -> Heard {
    if open.is_empty() {
        return std::future::pending().await;
    }
    let listening = open.iter_mut().map(|(stream, opened)| {
        Box::pin(async move {
            loop {
                let until = Instant::now() + MAX_SILENCE;
                match listen(stream, *opened, until).await {
                    Heard::Silence => continue,
                    heard => return heard,
                }
            }
        })
    });
    futures_util::future::select_all(listening).await.0
}

/// A connection to `address`, when it is accepted: with when it was, and how long it took.
async fn connect(address: &str) -> Option<(TcpStream, Instant, Duration)> {
    let started = Instant::now();
    let stream = TcpStream::connect(address).await.ok()?;
    Some((stream, Instant::now(), started.elapsed()))
}

/// Reads one byte from `stream` (opened at `opened`) until `until`.
async fn listen(stream: &mut TcpStream, opened: Instant, until: Instant) -> Heard {
    let mut byte = [0u8; 1];
    match tokio::time::timeout_at(until.into(), stream.read(&mut byte)).await {
        Ok(Ok(1..)) => Heard::Data,
        Ok(Ok(0)) | Ok(Err(_)) => Heard::Closed(Some(opened.elapsed())),
        Err(_) => Heard::Silence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_here_are_local_sockets_of_root_and_loopback_endpoints() {
        assert!(engine_here("tcp://127.0.0.1:2376"));
        assert!(engine_here("https://localhost:2376"));
        assert!(engine_here("http://[::1]:2375"));
        assert!(!engine_here("tcp://build-7:2376"));
        assert!(!engine_here("tcp://10.0.0.5:2376"));
        assert!(!engine_here("ssh://root@127.0.0.1"));
        assert!(!engine_here("unix:///nonexistent/docker.sock"));
        // A socket owned by this test's user: root's only when the test runs as root.
        let dir = std::env::temp_dir().join(format!("sw-tcp-wait-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("engine.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        use std::os::unix::fs::MetadataExt;
        let roots = std::fs::metadata(&socket).unwrap().uid() == 0;
        assert_eq!(engine_here(&format!("unix://{}", socket.display())), roots);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_network_is_bridged_here_when_its_gateway_is_a_local_address() {
        assert_eq!(
            bridged_here(Some("127.0.0.5"), Some("127.0.0.1")),
            Some("127.0.0.5".parse().unwrap())
        );
        // TEST-NET-3: never an address of this machine.
        assert_eq!(bridged_here(Some("203.0.113.7"), Some("203.0.113.1")), None);
        assert_eq!(bridged_here(Some(""), Some("127.0.0.1")), None);
        assert_eq!(bridged_here(Some("127.0.0.5"), None), None);
    }

    /// A stand-in for the engine's port proxy on a loaded machine: until `opens`, it accepts
    /// and closes each connection `close_after` later (nothing listens behind it); from then on
    /// it relays a server that greets. Its address.
    async fn slow_proxy(close_after: Duration, opens: Instant) -> String {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if Instant::now() < opens {
                        tokio::time::sleep(close_after).await;
                    } else {
                        let _ = stream.write_all(b"hello\n").await;
                    }
                });
            }
        });
        address
    }

    #[tokio::test]
    async fn a_proxy_slow_to_close_is_not_taken_for_a_server() {
        // Closes 150 ms late: a single 50 ms silence (or two overlapping ones, 100 ms) would
        // count it as a server at once. The engine takes 200 ms to say that the container runs.
        let started = Instant::now();
        let opens = started + Duration::from_millis(2000);
        let mut probe = ProxyProbe::new(slow_proxy(Duration::from_millis(150), opens).await);
        let engine_says_running = || async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(())
        };
        loop {
            let heard = match probe.probe().await {
                Heard::Silence => probe.confirm(engine_says_running()).await.ok().unwrap(),
                heard => heard,
            };
            match heard {
                Heard::Data => break,
                Heard::Silence => {
                    panic!("silence taken for a server after {:?}", started.elapsed())
                }
                Heard::Closed(_) => tokio::time::sleep(PROBE_INTERVAL).await,
            }
        }
        assert!(Instant::now() >= opens);
        assert!(probe.slowest_close >= Duration::from_millis(150));
    }

    #[test]
    fn the_silence_window_grows_with_the_round_trip_and_the_closes_seen() {
        let mut probe = ProxyProbe::new(String::new());
        assert_eq!(probe.window(Duration::ZERO), MIN_SILENCE);
        assert_eq!(
            probe.window(Duration::from_millis(40)),
            Duration::from_millis(130)
        );
        probe.slowest_close = Duration::from_millis(70);
        assert_eq!(probe.window(Duration::ZERO), Duration::from_millis(280));
        probe.slowest_close = Duration::from_secs(5);
        assert_eq!(probe.window(Duration::ZERO), MAX_SILENCE);
    }
}
