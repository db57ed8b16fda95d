//! The connection to a Docker Engine API endpoint.

use std::time::Duration;

use bollard::Docker;

use crate::error::{Error, Result};

/// The default endpoint when `DOCKER_HOST` is not set.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// How long one engine request may take before the client gives up (streams are not limited by it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// One handle to a Docker Engine API endpoint, with the API version negotiated.
///
/// `DOCKER_HOST` selects the endpoint (`unix://` or `tcp://`/`http://`); the API version is the
/// lower of the client's and the engine's (Docker 20.10 speaks 1.41). Published ports are reached at
/// [`Engine::host`]: the host of a `tcp://` endpoint, `127.0.0.1` for a local socket, or
/// `SEAWORTHY_HOST` when set (for example inside a container that talks to the host's engine).
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: String,
    host: String,
    api_version: String,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("endpoint", &self.endpoint)
            .field("host", &self.host)
            .field("api_version", &self.api_version)
            .finish()
    }
}

impl Engine {
    /// Connects to the endpoint named by `DOCKER_HOST`, or the local socket.
    pub async fn connect() -> Result<Engine> {
        let endpoint = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        Engine::connect_to(&endpoint).await
    }

    /// Connects to `endpoint` (`unix:///path`, `tcp://host:port` or `http://host:port`) and
    /// negotiates the API version.
    pub async fn connect_to(endpoint: &str) -> Result<Engine> {
        let unavailable = |source| Error::EngineUnavailable {
            host: endpoint.to_string(),
            source,
        };
        let docker = if let Some(path) = endpoint.strip_prefix("unix://") {
            Docker::connect_with_unix(
                path,
                REQUEST_TIMEOUT.as_secs(),
                bollard::API_DEFAULT_VERSION,
            )
        } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
            Docker::connect_with_http(
                endpoint,
                REQUEST_TIMEOUT.as_secs(),
                bollard::API_DEFAULT_VERSION,
            )
        } else {
            Docker::connect_with_host(endpoint)
        }
        .map_err(unavailable)?;
        let docker = docker.negotiate_version().await.map_err(unavailable)?;
        let api_version = docker.client_version().to_string();
        let host = std::env::var("SEAWORTHY_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| host_of(endpoint));
        tracing::debug!(endpoint, %api_version, host, "connected to the Docker engine");
        Ok(Engine {
            docker,
            endpoint: endpoint.to_string(),
            host,
            api_version,
        })
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
}

/// The host that reaches ports published by the engine at `endpoint`.
fn host_of(endpoint: &str) -> String {
    for scheme in ["tcp://", "http://", "https://"] {
        if let Some(rest) = endpoint.strip_prefix(scheme) {
            let authority = rest.split('/').next().unwrap_or(rest);
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
    }
}
