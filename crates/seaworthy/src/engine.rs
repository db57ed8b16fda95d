//! The connection to a Docker Engine API endpoint, and how Seaworthy finds it.
//!
//! [`Engine::connect`] searches in a documented order (see [`Discovery`]): `DOCKER_HOST`, the
//! Docker context, `seaworthy.toml`'s `[engine]`, then the known sockets of Docker, rootless
//! Docker, Docker Desktop, Colima, Rancher Desktop, OrbStack and Podman. Endpoints are
//! `unix://`, `tcp://`/`http://` (plain HTTP), TLS over TCP (`https://`, or `tcp://` with
//! `DOCKER_TLS_VERIFY` or a context's TLS material) and `ssh://user@host`.

mod discovery;
pub(crate) mod docker_config;
mod ssh;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;

pub use crate::error::Tried;
pub use discovery::Discovery;

use crate::error::{Error, Result};

/// The standard socket, tried first among the known sockets.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// How long one engine request may take before the client gives up (streams are not limited by it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the engine may take to say whether this process runs in one of its containers.
const SELF_INSPECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The files of a TLS directory (the layout of `DOCKER_CERT_PATH` and of a context's TLS
/// material): the engine's CA, the client certificate and its key.
pub const TLS_FILES: [&str; 3] = ["ca.pem", "cert.pem", "key.pem"];

/// How an engine was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Named by the caller ([`Engine::connect_to`], [`Engine::connect_with_tls`]).
    Explicit,
    /// The `DOCKER_HOST` environment variable.
    DockerHost,
    /// A Docker context.
    Context {
        /// The context's name.
        name: String,
        /// What selected it: `DOCKER_CONTEXT`, or `currentContext in <config.json>`.
        selected_by: String,
    },
    /// The `[engine]` table of a `seaworthy.toml`.
    ConfigFile {
        /// The file.
        path: PathBuf,
    },
    /// One of the known sockets.
    KnownSocket {
        /// Whose socket it is (`the standard socket`, `rootless Docker`, `Podman (rootful)`...).
        what: &'static str,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Explicit => write!(f, "named by the caller"),
            Source::DockerHost => write!(f, "DOCKER_HOST"),
            Source::Context { name, selected_by } => {
                write!(f, "Docker context \"{name}\" (selected by {selected_by})")
            }
            Source::ConfigFile { path } => write!(f, "[engine] host in {}", path.display()),
            Source::KnownSocket { what } => write!(f, "{what}, a known socket"),
        }
    }
}

/// How Seaworthy talks to an endpoint.
#[derive(Debug, Clone)]
pub(crate) enum Transport {
    /// A Unix socket path.
    Unix(String),
    /// Plain HTTP over TCP (`tcp://` or `http://` as given).
    Http(String),
    /// TLS over TCP: the endpoint as given and the directory of `ca.pem`, `cert.pem`, `key.pem`.
    Tls(String, PathBuf),
    /// SSH (`ssh://user@host[:port]`): the engine's socket through `ssh … docker system
    /// dial-stdio` (one child process per connection, no master process), with a private key
    /// file or SSH's own configuration.
    Ssh(String, Option<PathBuf>),
}

impl Transport {
    /// The transport for `endpoint`; `tls` is the TLS directory to use for `tcp://`/`https://`,
    /// `ssh_key` the private key for `ssh://`.
    pub(crate) fn parse(
        endpoint: &str,
        tls: Option<PathBuf>,
        ssh_key: Option<PathBuf>,
    ) -> std::result::Result<Transport, String> {
        if let Some(path) = endpoint.strip_prefix("unix://") {
            return Ok(Transport::Unix(path.to_string()));
        }
        if endpoint.starts_with("https://") || (endpoint.starts_with("tcp://") && tls.is_some()) {
            return match tls {
                Some(dir) => Ok(Transport::Tls(endpoint.to_string(), dir)),
                None => Err(format!(
                    "{endpoint} needs TLS material: DOCKER_CERT_PATH (or a context's TLS \
                     directory) with {}",
                    TLS_FILES.join(", ")
                )),
            };
        }
        if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
            return Ok(Transport::Http(endpoint.to_string()));
        }
        if endpoint.starts_with("ssh://") {
            ssh::Destination::parse(endpoint)?;
            return Ok(Transport::Ssh(endpoint.to_string(), ssh_key));
        }
        Err(format!(
            "unsupported endpoint {endpoint:?}: Seaworthy speaks unix://, tcp://, http://, \
             https:// and ssh://"
        ))
    }

    /// The endpoint as given.
    pub(crate) fn endpoint(&self) -> String {
        match self {
            Transport::Unix(path) => format!("unix://{path}"),
            Transport::Http(e) | Transport::Tls(e, _) | Transport::Ssh(e, _) => e.clone(),
        }
    }

    /// The TLS directory, for a TLS transport.
    fn tls_dir(&self) -> Option<&Path> {
        match self {
            Transport::Tls(_, dir) => Some(dir),
            _ => None,
        }
    }

    /// The environment that makes [`Engine::connect_to`] in another process open this
    /// transport: the TLS material or the SSH key.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Transport::Tls(_, dir) => vec![
                ("DOCKER_TLS_VERIFY", "1".to_string()),
                ("DOCKER_CERT_PATH", dir.display().to_string()),
            ],
            Transport::Ssh(_, Some(key)) => vec![(SSH_KEY_VAR, key.display().to_string())],
            _ => Vec::new(),
        }
    }
}

/// One handle to a Docker Engine API endpoint, with the API version negotiated.
///
/// The API version is the lower of the client's and the engine's (Docker 20.10 speaks 1.41).
/// Published ports are reached at [`Engine::host`]: `SEAWORTHY_HOST` when set; else the host of
/// a `tcp://`, `https://` or `ssh://` endpoint; else, for a local socket, `127.0.0.1` — or, when
/// this process runs in a container of that same engine (its socket mounted in), the gateway of
/// the container's network, which is where the engine publishes ports.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: String,
    host: String,
    api_version: String,
    source: Source,
    tls_dir: Option<PathBuf>,
    /// Whether the engine is Podman, asked once when first needed.
    podman: std::sync::Arc<tokio::sync::OnceCell<bool>>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("endpoint", &self.endpoint)
            .field("host", &self.host)
            .field("api_version", &self.api_version)
            .field("source", &self.source)
            .field("tls_dir", &self.tls_dir)
            .finish()
    }
}

/// The variable naming the private key for `ssh://` endpoints.
pub const SSH_KEY_VAR: &str = "SEAWORTHY_SSH_KEY";

/// The transports of the endpoints this process connected to, so that the reaper (a separate
/// process given only the endpoint) reaches them the same way.
static TRANSPORTS: Mutex<Option<HashMap<String, Transport>>> = Mutex::new(None);

/// The environment that makes [`Engine::connect_to`] in another process reach `endpoint` as
/// this process does (`DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` for a TLS endpoint,
/// `SEAWORTHY_SSH_KEY` for an SSH one).
pub(crate) fn connect_env(endpoint: &str) -> Vec<(&'static str, String)> {
    let transports = TRANSPORTS.lock().unwrap_or_else(|e| e.into_inner());
    transports
        .as_ref()
        .and_then(|t| t.get(endpoint))
        .map(Transport::env)
        .unwrap_or_default()
}

impl Engine {
    /// Finds the engine in the documented order (see [`Discovery`]) and connects to it.
    pub async fn connect() -> Result<Engine> {
        Discovery::from_env().connect().await
    }

    /// Connects to `endpoint` (`unix:///path`, `tcp://host:port`, `http://host:port`,
    /// `https://host:port` or `ssh://user@host[:port]`) and negotiates the API version. A
    /// `tcp://` or `https://` endpoint uses TLS when `DOCKER_TLS_VERIFY` is set, with the
    /// material of `DOCKER_CERT_PATH` (else `~/.docker`), as the Docker CLI does; an `ssh://`
    /// endpoint uses the key file named by `SEAWORTHY_SSH_KEY`, else SSH's own configuration.
    pub async fn connect_to(endpoint: &str) -> Result<Engine> {
        let tls = std::env::var("DOCKER_TLS_VERIFY")
            .is_ok_and(|v| !v.is_empty())
            .then(env_cert_dir)
            .flatten();
        let ssh_key = std::env::var_os(SSH_KEY_VAR)
            .filter(|k| !k.is_empty())
            .map(PathBuf::from);
        let transport = Transport::parse(endpoint, tls, ssh_key)
            .map_err(|reason| Error::invalid("engine endpoint", endpoint, reason))?;
        Engine::open(transport, Source::Explicit).await
    }

    /// Connects to `endpoint` (`tcp://host:port` or `https://host:port`) over TLS, verifying
    /// the engine with `cert_dir/ca.pem` and presenting `cert_dir/cert.pem` and `key.pem`.
    pub async fn connect_with_tls(endpoint: &str, cert_dir: &Path) -> Result<Engine> {
        if !endpoint.starts_with("tcp://") && !endpoint.starts_with("https://") {
            return Err(Error::invalid(
                "engine endpoint",
                endpoint,
                "TLS needs a tcp:// or https:// endpoint",
            ));
        }
        Engine::open(
            Transport::Tls(endpoint.to_string(), cert_dir.to_path_buf()),
            Source::Explicit,
        )
        .await
    }

    /// Connects to `endpoint` (`ssh://user@host[:port]`) over SSH with the private key `key`:
    /// the engine is the one `docker system dial-stdio` reaches on that host (the Docker CLI
    /// must be installed there).
    pub async fn connect_with_ssh_key(endpoint: &str, key: &Path) -> Result<Engine> {
        if !endpoint.starts_with("ssh://") {
            return Err(Error::invalid(
                "engine endpoint",
                endpoint,
                "an SSH key needs an ssh:// endpoint",
            ));
        }
        if !key.is_file() {
            return Err(Error::invalid(
                "engine endpoint",
                endpoint,
                format!("the SSH key {} does not exist", key.display()),
            ));
        }
        Engine::open(
            Transport::Ssh(endpoint.to_string(), Some(key.to_path_buf())),
            Source::Explicit,
        )
        .await
    }

    /// Opens `transport` and negotiates the API version.
    pub(crate) async fn open(transport: Transport, source: Source) -> Result<Engine> {
        let endpoint = transport.endpoint();
        let unavailable = |source| Error::EngineUnavailable {
            host: endpoint.clone(),
            source,
        };
        let docker = match &transport {
            Transport::Unix(path) => Docker::connect_with_unix(
                path,
                REQUEST_TIMEOUT.as_secs(),
                bollard::API_DEFAULT_VERSION,
            ),
            Transport::Http(e) => Docker::connect_with_http(
                e,
                REQUEST_TIMEOUT.as_secs(),
                bollard::API_DEFAULT_VERSION,
            ),
            Transport::Tls(e, dir) => {
                let [ca, cert, key] = tls_files(&endpoint, dir)?;
                install_crypto_provider();
                Docker::connect_with_ssl(
                    e,
                    &key,
                    &cert,
                    &ca,
                    REQUEST_TIMEOUT.as_secs(),
                    bollard::API_DEFAULT_VERSION,
                )
            }
            Transport::Ssh(e, key) => Ok(ssh::docker(
                e,
                key.as_deref(),
                REQUEST_TIMEOUT.as_secs(),
                bollard::API_DEFAULT_VERSION,
            )
            .map_err(|reason| Error::invalid("engine endpoint", e, reason))?),
        }
        .map_err(unavailable)?;
        let docker = docker.negotiate_version().await.map_err(unavailable)?;
        let api_version = docker.client_version().to_string();
        let host = published_host(&docker, &transport).await;
        TRANSPORTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(endpoint.clone(), transport.clone());
        tracing::debug!(endpoint, %api_version, host, %source, "connected to the Docker engine");
        Ok(Engine {
            docker,
            endpoint,
            host,
            api_version,
            source,
            tls_dir: transport.tls_dir().map(Path::to_path_buf),
            podman: Default::default(),
        })
    }

    /// A new connection to the same endpoint made the way the reaper process makes it: from the
    /// endpoint and the environment the reaper is given (the TLS material of a TLS endpoint).
    /// `seaworthy doctor` uses it to tell whether the reaper can reach this engine.
    pub async fn reconnect(&self) -> Result<Engine> {
        let env = connect_env(&self.endpoint);
        let var = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| PathBuf::from(v))
        };
        let transport = Transport::parse(&self.endpoint, var("DOCKER_CERT_PATH"), var(SSH_KEY_VAR))
            .map_err(|reason| Error::invalid("engine endpoint", &self.endpoint, reason))?;
        Engine::open(transport, self.source.clone()).await
    }

    /// The bollard client, for anything Seaworthy does not wrap.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The endpoint this engine was reached at.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The host name or address at which published container ports are reached.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The negotiated Engine API version (`1.41` on Docker 20.10).
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// How this engine was found.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Whether the engine is Podman (its Docker-compatible API), from the components its
    /// version names; asked once. An engine that cannot say counts as Docker.
    pub async fn is_podman(&self) -> bool {
        *self
            .podman
            .get_or_init(|| async {
                match self.docker.version().await {
                    Ok(v) => v
                        .components
                        .iter()
                        .flatten()
                        .any(|c| c.name.to_lowercase().contains("podman")),
                    Err(_) => false,
                }
            })
            .await
    }

    /// The directory of the TLS material used to reach it, for a TLS endpoint.
    pub fn tls_dir(&self) -> Option<&Path> {
        self.tls_dir.as_deref()
    }
}

/// `host:port`, bracketing IPv6 addresses.
pub(crate) fn host_with_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An image id as the engine gave it, in the form image references take (`sha256:<hex>`):
/// Docker answers with the algorithm, Podman's compatible API without it, and a bare 64-digit
/// hex id would be read as a repository name.
pub(crate) fn image_id(id: String) -> String {
    if id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        format!("sha256:{id}")
    } else {
        id
    }
}

/// `DOCKER_CERT_PATH`, else `~/.docker`.
fn env_cert_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CERT_PATH")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// The CA, certificate and key of a TLS directory; an error names a missing one.
fn tls_files(endpoint: &str, dir: &Path) -> Result<[PathBuf; 3]> {
    let files = TLS_FILES.map(|f| dir.join(f));
    if let Some(missing) = files.iter().find(|f| !f.is_file()) {
        return Err(Error::invalid(
            "engine endpoint",
            endpoint,
            format!(
                "TLS material {} is missing (a TLS directory holds {}: DOCKER_CERT_PATH, a \
                 context's TLS directory or [engine] cert_path)",
                missing.display(),
                TLS_FILES.join(", ")
            ),
        ));
    }
    Ok(files)
}

/// Makes ring, the crypto provider of every rustls client in Seaworthy, the process's default
/// when none is installed yet (bollard's TLS client uses the default).
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one first: either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Where ports published by the engine behind `transport` are reached from this process.
async fn published_host(docker: &Docker, transport: &Transport) -> String {
    if let Some(host) = std::env::var("SEAWORTHY_HOST")
        .ok()
        .filter(|h| !h.is_empty())
    {
        return host;
    }
    if matches!(transport, Transport::Unix(_)) && in_container() {
        if let Some(gateway) = own_container_gateway(docker).await {
            return gateway;
        }
    }
    host_of(&transport.endpoint())
}

/// Whether this process runs in a container (Docker's or Podman's marker file).
fn in_container() -> bool {
    Path::new("/.dockerenv").exists() || Path::new("/run/.containerenv").exists()
}

/// When this process runs in a container of the engine itself (its socket mounted in), the
/// gateway of that container's network: the engine publishes ports on the host, which the
/// container reaches there. `None` when the engine does not know this container (an engine
/// running inside the same container, or another machine's).
async fn own_container_gateway(docker: &Docker) -> Option<String> {
    let hostname = std::fs::read_to_string("/etc/hostname").ok()?;
    let hostname = hostname.trim();
    if hostname.is_empty() {
        return None;
    }
    let inspect = docker.inspect_container(
        hostname,
        None::<bollard::query_parameters::InspectContainerOptions>,
    );
    let me = tokio::time::timeout(SELF_INSPECT_TIMEOUT, inspect)
        .await
        .ok()?
        .ok()?;
    let settings = me.network_settings?;
    let mode = me.host_config.and_then(|h| h.network_mode);
    if mode.as_deref() == Some("host") {
        return None;
    }
    settings
        .networks
        .into_iter()
        .flatten()
        .filter_map(|(_, n)| n.gateway)
        .find(|g| !g.is_empty())
}

/// The host that reaches ports published by the engine at `endpoint`.
fn host_of(endpoint: &str) -> String {
    for scheme in ["tcp://", "http://", "https://", "ssh://"] {
        if let Some(rest) = endpoint.strip_prefix(scheme) {
            let authority = rest.split('/').next().unwrap_or(rest);
            let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = match authority.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
                _ => authority,
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if !host.is_empty() && host != "0.0.0.0" {
                return host.to_string();
            }
        }
    }
    "127.0.0.1".to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn published_ports_are_reached_at_the_endpoint_host() {
        assert_eq!(super::host_of("unix:///var/run/docker.sock"), "127.0.0.1");
        assert_eq!(super::host_of("tcp://10.1.2.3:2375"), "10.1.2.3");
        assert_eq!(
            super::host_of("tcp://docker.example:2376/"),
            "docker.example"
        );
        assert_eq!(super::host_of("tcp://0.0.0.0:2375"), "127.0.0.1");
        assert_eq!(super::host_of("tcp://[::1]:2375"), "::1");
        assert_eq!(super::host_of("https://10.1.2.3:2376"), "10.1.2.3");
        assert_eq!(super::host_of("ssh://ci@build-7:2222"), "build-7");
        assert_eq!(super::host_of("ssh://ci@build-7"), "build-7");
    }

    #[test]
    fn image_ids_carry_their_algorithm() {
        let hex = "9f7cab1b2ceff7f332bec6a14cd852a57cf11a8384f891b51bf72957ca55f3d3";
        assert_eq!(super::image_id(hex.into()), format!("sha256:{hex}"));
        assert_eq!(
            super::image_id(format!("sha256:{hex}")),
            format!("sha256:{hex}")
        );
    }

    #[test]
    fn endpoints_choose_their_transport() {
        use super::Transport;
        let tls = Some(std::path::PathBuf::from("/certs"));
        assert!(matches!(
            Transport::parse("unix:///run/x.sock", None, None),
            Ok(Transport::Unix(p)) if p == "/run/x.sock"
        ));
        assert!(matches!(
            Transport::parse("tcp://h:2375", None, None),
            Ok(Transport::Http(_))
        ));
        assert!(matches!(
            Transport::parse("tcp://h:2376", tls.clone(), None),
            Ok(Transport::Tls(..))
        ));
        assert!(matches!(
            Transport::parse("https://h:2376", tls, None),
            Ok(Transport::Tls(..))
        ));
        assert!(Transport::parse("https://h:2376", None, None)
            .unwrap_err()
            .contains("needs TLS material"));
        assert!(matches!(
            Transport::parse("ssh://ci@build-7", None, None),
            Ok(Transport::Ssh(..))
        ));
        assert!(matches!(
            Transport::parse("ssh://ci@build-7:2222", None, None),
            Ok(Transport::Ssh(..))
        ));
        assert!(Transport::parse("ssh://ci@build-7:x", None, None)
            .unwrap_err()
            .contains("not a port number"));
        assert!(Transport::parse("npipe:////./pipe/docker", None, None)
            .unwrap_err()
            .contains("unsupported endpoint"));
    }
}
