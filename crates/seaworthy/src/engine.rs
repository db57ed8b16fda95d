//! The connection to a Docker Engine API endpoint, and how Seaworthy finds it.
//!
//! [`Engine::connect`] searches in a documented order (see [`Discovery`]): `DOCKER_HOST`, the
//! Docker context, `seaworthy.toml`'s `[engine]`, then the known sockets of Docker, rootless
//! Docker, Docker Desktop, Colima, Rancher Desktop, OrbStack and Podman. Endpoints are
//! `unix://`, `tcp://`/`http://` (plain HTTP), TLS over TCP (`https://`, or `tcp://` with
//! `DOCKER_TLS_VERIFY` or a context's TLS material) and `ssh://user@host`.

pub(crate) mod client;
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
// `Engine` is public at the crate root (`seaworthy::Engine`), its one path.
pub(crate) use client::Engine;

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
