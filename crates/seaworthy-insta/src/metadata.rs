//! A container's metadata, normalised for snapshots.

use std::collections::BTreeMap;
use std::time::Duration;

use seaworthy::bollard::models::ContainerInspectResponse;
use seaworthy::Container;

/// What `docker inspect` says about a container, reduced to what describes the image and its
/// configuration, with maps sorted and empty parts left out.
///
/// Volatile fields (`id`, `created`, host ports, IP addresses...) are kept so that a snapshot shows
/// they exist; the default [`Redactions`](crate::Redactions) replace their values.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerMetadata {
    /// The container id.
    pub id: String,
    /// The engine name, without the leading `/`.
    pub name: String,
    /// When the container was created.
    pub created: String,
    /// The image reference it was created from.
    pub image: String,
    /// `created`, `running`, `exited`...
    pub status: String,
    /// The exit code, once the container has exited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// The host name.
    pub hostname: String,
    /// The user the main process runs as (empty: the image's default, root).
    pub user: String,
    /// The working directory (empty: `/`).
    pub workdir: String,
    /// The entrypoint, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// The command, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Exposed ports (`80/tcp`), sorted.
    pub exposed_ports: Vec<String>,
    /// Published ports, sorted by container port.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub published_ports: Vec<PublishedPort>,
    /// Volumes declared by the image (`VOLUME`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Mounts, sorted by destination.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountMetadata>,
    /// The healthcheck, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthcheckMetadata>,
    /// The signal that stops the container, when not the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Whether it runs privileged.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// Added Linux capabilities, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Networks joined: name -> aliases and address.
    pub networks: BTreeMap<String, NetworkMetadata>,
}

/// A container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishedPort {
    /// The container port (`80/tcp`).
    pub container_port: String,
    /// The host port.
    pub host_port: String,
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MountMetadata {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The volume name or host path (empty for tmpfs).
    pub source: String,
    /// The path inside the container.
    pub destination: String,
    /// Whether it is mounted read-only.
    pub read_only: bool,
}

/// A container's healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthcheckMetadata {
    /// The test (`["CMD-SHELL", "..."]`).
    pub test: Vec<String>,
    /// Time between checks (`500ms`, `30s`), when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Time one check may take, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Failures in a row before unhealthy, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    /// Grace period after start, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
}

/// A container's membership of one network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetworkMetadata {
    /// Aliases on that network, sorted.
    pub aliases: Vec<String>,
    /// The container's IPv4 address there (once it has one: not before it starts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

impl ContainerMetadata {
    /// Inspects `container` and normalises the answer, leaving out what Seaworthy itself adds to
    /// every container: the session's labels, the alias the engine derives from the id, and the
    /// networks an unnamed container happens to be on. Such a container starts on the engine's
    /// default bridge while the session has no named container, and joins the session network
    /// once one exists, so which of the two (or both) it shows depends on what other tests ran
    /// first; both are left out (the default `bridge`, and the session network when the
    /// container has no alias there). Networks the container was given, and the session network
    /// of a named container, stay.
    pub async fn of(container: &Container) -> seaworthy::Result<ContainerMetadata> {
        let mut metadata = ContainerMetadata::from_inspect(container.inspect().await?);
        for key in container.session().labels().keys() {
            metadata.labels.remove(key);
        }
        let short_id = container.short_id();
        for network in metadata.networks.values_mut() {
            network.aliases.retain(|a| *a != short_id);
        }
        let session_network = container.session().namespace();
        metadata.networks.retain(|name, network| {
            name != "bridge" && !(name == session_network && network.aliases.is_empty())
        });
        Ok(metadata)
    }

    /// Normalises an inspect response.
    pub fn from_inspect(info: ContainerInspectResponse) -> ContainerMetadata {
        let config = info.config.unwrap_or_default();
        let host = info.host_config.unwrap_or_default();
        let state = info.state.unwrap_or_default();
        let status = state
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        let exit_code = (status == "exited").then_some(state.exit_code).flatten();

        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|entry| match entry.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (entry, String::new()),
            })
            .collect();
        let mut exposed_ports = config.exposed_ports.unwrap_or_default();
        exposed_ports.sort();
        let mut volumes = config.volumes.unwrap_or_default();
        volumes.sort();

        let mut published_ports = Vec::new();
        let network_settings = info.network_settings.unwrap_or_default();
        for (port, bindings) in network_settings.ports.unwrap_or_default() {
            // IPv4 and IPv6 bindings of one port share the host port: keep one.
            let host_port = bindings
                .unwrap_or_default()
                .into_iter()
                .filter_map(|b| b.host_port)
                .find(|p| !p.is_empty());
            if let Some(host_port) = host_port {
                published_ports.push(PublishedPort {
                    container_port: port,
                    host_port,
                });
            }
        }
        published_ports.sort_by(|a, b| a.container_port.cmp(&b.container_port));

        let mut mounts: Vec<MountMetadata> = info
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| MountMetadata {
                kind: m.typ.map(|t| t.to_string()).unwrap_or_default(),
                source: m
                    .name
                    .filter(|n| !n.is_empty())
                    .or(m.source)
                    .unwrap_or_default(),
                destination: m.destination.unwrap_or_default(),
                read_only: m.rw == Some(false),
            })
            .collect();
        mounts.sort_by(|a, b| a.destination.cmp(&b.destination));

        let healthcheck = config.healthcheck.and_then(|h| {
            let test = h.test.unwrap_or_default();
            (!test.is_empty()).then(|| HealthcheckMetadata {
                test,
                interval: h.interval.filter(|n| *n > 0).map(nanos_text),
                timeout: h.timeout.filter(|n| *n > 0).map(nanos_text),
                retries: h.retries.filter(|n| *n > 0),
                start_period: h.start_period.filter(|n| *n > 0).map(nanos_text),
            })
        });

        let networks = network_settings
            .networks
            .unwrap_or_default()
            .into_iter()
            .map(|(name, endpoint)| {
                let mut aliases = endpoint.aliases.unwrap_or_default();
                aliases.sort();
                aliases.dedup();
                (
                    name,
                    NetworkMetadata {
                        aliases,
                        ip_address: endpoint.ip_address.filter(|ip| !ip.is_empty()),
                    },
                )
            })
            .collect();

        let mut capabilities = host.cap_add.unwrap_or_default();
        capabilities.sort();

        ContainerMetadata {
            id: info.id.unwrap_or_default(),
            name: info
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            created: info.created.map(|c| c.to_string()).unwrap_or_default(),
            image: config.image.unwrap_or_default(),
            status,
            exit_code,
            hostname: config.hostname.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
            workdir: config.working_dir.unwrap_or_default(),
            entrypoint: config.entrypoint.filter(|e| !e.is_empty()),
            cmd: config.cmd.filter(|c| !c.is_empty()),
            env,
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            exposed_ports,
            published_ports,
            volumes,
            mounts,
            healthcheck,
            stop_signal: config.stop_signal.filter(|s| !s.is_empty()),
            privileged: host.privileged.unwrap_or(false),
            capabilities,
            networks,
        }
    }
}

/// Nanoseconds as a short duration: `500ms`, `30s`, `1m30s`.
fn nanos_text(nanos: i64) -> String {
    let d = Duration::from_nanos(nanos.max(0) as u64);
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_dockerfile() {
        assert_eq!(nanos_text(500_000_000), "500ms");
        assert_eq!(nanos_text(30_000_000_000), "30s");
        assert_eq!(nanos_text(90_000_000_000), "1m30s");
        assert_eq!(nanos_text(120_000_000_000), "2m");
    }
}
