//! The `Engine` handle: one bollard client on a transport, the API version negotiated, the host
//! that reaches published ports.

use super::*;

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
