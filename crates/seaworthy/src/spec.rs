//! Short forms for mounts, ports and environment entries, parsed with errors that name the input.
//!
//! Mounts: `data:/var/lib/x` (a volume owned by the session), `data:/var/lib/x:ro`, `/host/dir:/in`
//! and `./relative:/in` (binds). Ports: `80`, `53/udp`, `8080:80` (fixed host port),
//! `127.0.0.1:8080:80/tcp`. Environment: `KEY=value`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Where a mount's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A named volume. Short-form names are session volumes: created on first use with the session's
    /// labels and a namespaced engine name, removed with the session.
    Volume(String),
    /// A volume created by the engine with exactly this name (not namespaced, not created here).
    ExternalVolume(String),
    /// A host path.
    Bind(PathBuf),
    /// A fresh anonymous volume, created by the engine and removed with the container.
    Anonymous,
    /// A tmpfs of at most `size_bytes` (engine default when `None`).
    Tmpfs {
        /// Size limit in bytes.
        size_bytes: Option<i64>,
    },
}

/// A mount of a volume, host path or tmpfs into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// What is mounted.
    pub source: MountSource,
    /// Absolute path inside the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

impl MountSpec {
    /// Parses the short form `source:/target[:ro|:rw]`.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: String| Error::invalid("mount", input, reason);
        let parts: Vec<&str> = input.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [s, t] => (*s, *t, None),
            [s, t, m] => (*s, *t, Some(*m)),
            _ => {
                return Err(bad(
                    "expected SOURCE:TARGET or SOURCE:TARGET:ro (a volume name or host path, then an absolute path)".into(),
                ))
            }
        };
        let read_only = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => return Err(bad(format!("unknown mode {other:?}: use ro or rw"))),
        };
        if source.is_empty() {
            return Err(bad("the source (volume name or host path) is empty".into()));
        }
        if !target.starts_with('/') {
            return Err(bad(format!(
                "the target {target:?} must be an absolute path"
            )));
        }
        let source = if source.starts_with('/') {
            MountSource::Bind(PathBuf::from(source))
        } else if source.starts_with("./") || source.starts_with("../") || source == "." {
            let cwd = std::env::current_dir()
                .map_err(|e| bad(format!("cannot resolve the relative host path: {e}")))?;
            MountSource::Bind(cwd.join(source))
        } else {
            let ok = source
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && source
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(bad(format!(
                    "the volume name {source:?} may hold only letters, digits, '_', '.' and '-' (host paths start with '/' or './')"
                )));
            }
            MountSource::Volume(source.to_string())
        };
        Ok(MountSpec {
            source,
            target: target.to_string(),
            read_only,
        })
    }

    /// A tmpfs at `target`.
    pub fn tmpfs(target: impl Into<String>) -> Self {
        MountSpec {
            source: MountSource::Tmpfs { size_bytes: None },
            target: target.into(),
            read_only: false,
        }
    }
}

impl FromStr for MountSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        MountSpec::parse(s)
    }
}

/// A port protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// A container port to publish: on a random host port by default, or a fixed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The port inside the container.
    pub container_port: u16,
    /// Its protocol.
    pub protocol: Protocol,
    /// A fixed host port; `None` lets the engine choose a free one.
    pub host_port: Option<u16>,
    /// The host address to bind (all addresses when `None`).
    pub host_ip: Option<String>,
}

impl PortSpec {
    /// A TCP port published on a random host port.
    pub fn tcp(port: u16) -> Self {
        PortSpec {
            container_port: port,
            protocol: Protocol::Tcp,
            host_port: None,
            host_ip: None,
        }
    }

    /// Parses `80`, `53/udp`, `8080:80`, `127.0.0.1:8080:80/tcp` or `127.0.0.1::80`.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: String| Error::invalid("port", input, reason);
        let (rest, protocol) = match input.rsplit_once('/') {
            Some((rest, "tcp")) => (rest, Protocol::Tcp),
            Some((rest, "udp")) => (rest, Protocol::Udp),
            Some((rest, "sctp")) => (rest, Protocol::Sctp),
            Some((_, other)) => {
                return Err(bad(format!(
                    "unknown protocol {other:?}: use tcp, udp or sctp"
                )))
            }
            None => (input, Protocol::Tcp),
        };
        let port = |s: &str, what: &str| -> Result<u16> {
            match s.parse::<u16>() {
                Ok(0) | Err(_) => Err(bad(format!(
                    "the {what} {s:?} is not a port number (1-65535)"
                ))),
                Ok(p) => Ok(p),
            }
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (host_ip, host_port, container_port) = match parts.as_slice() {
            [c] => (None, None, port(c, "container port")?),
            [h, c] => (
                None,
                Some(port(h, "host port")?),
                port(c, "container port")?,
            ),
            [ip, h, c] => {
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(bad(format!("the host address {ip:?} is not an IP address")));
                }
                let host_port = if h.is_empty() {
                    None
                } else {
                    Some(port(h, "host port")?)
                };
                (Some(ip.to_string()), host_port, port(c, "container port")?)
            }
            _ => {
                return Err(bad(
                    "expected PORT, HOST:PORT or IP:HOST:PORT, with an optional /tcp or /udp"
                        .into(),
                ))
            }
        };
        Ok(PortSpec {
            container_port,
            protocol,
            host_port,
            host_ip,
        })
    }

    /// The engine's key for this port, `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }
}

impl FromStr for PortSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PortSpec::parse(s)
    }
}

impl From<u16> for PortSpec {
    fn from(port: u16) -> Self {
        PortSpec::tcp(port)
    }
}

/// Parses an environment entry `KEY=value` (the value may be empty or hold `=`).
pub fn parse_env(input: &str) -> Result<(String, String)> {
    let (k, v) = input
        .split_once('=')
        .ok_or_else(|| Error::invalid("environment entry", input, "expected KEY=value"))?;
    if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c == '\0') || v.contains('\0') {
        return Err(Error::invalid(
            "environment entry",
            input,
            "the key must be non-empty without white space, and no NUL byte may appear",
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mount_short_forms() {
        let m = MountSpec::parse("data:/var/lib/x:ro").unwrap();
        assert_eq!(m.source, MountSource::Volume("data".into()));
        assert_eq!(m.target, "/var/lib/x");
        assert!(m.read_only);
        let m = MountSpec::parse("/host:/path").unwrap();
        assert_eq!(m.source, MountSource::Bind("/host".into()));
        assert!(!m.read_only);
        assert!(
            matches!(MountSpec::parse("./here:/x").unwrap().source, MountSource::Bind(p) if p.is_absolute())
        );
        for bad in [
            "data",
            "data:relative",
            "data:/x:rx",
            ":/x",
            "da ta:/x",
            "a:b:c:d",
        ] {
            let e = MountSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn parses_ports() {
        assert_eq!(PortSpec::parse("80").unwrap(), PortSpec::tcp(80));
        let p = PortSpec::parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (Some(8080), 80, Protocol::Udp)
        );
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(PortSpec::parse("8080:80").unwrap().host_port, Some(8080));
        for bad in ["0", "70000", "80/icmp", "x:80", "a.b:1:2", "1:2:3:4", ""] {
            let e = PortSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains("invalid port"), "{e}");
        }
    }

    #[test]
    fn parses_env() {
        assert_eq!(parse_env("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_env("A=").unwrap(), ("A".into(), "".into()));
        assert!(parse_env("A").is_err());
        assert!(parse_env("=x").is_err());
    }
}
