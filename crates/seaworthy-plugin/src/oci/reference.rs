//! Plugin references: `registry[:port]/namespace/name[:tag][@sha256:digest]`, as for images,
//! except that the registry must be named (there is no default registry for plugins).

use std::fmt;

use crate::error::{PluginError, Result};

/// A plugin's place in an OCI registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Whether `host` (a registry, `host[:port]`) is on this machine: `localhost`, `127.x.y.z` or
/// `[::1]`. Such registries are spoken to over plain HTTP by default.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `digest` is a well-formed sha256 digest (`sha256:` and 64 lowercase hex digits).
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

fn valid_component(part: &str) -> bool {
    // Lowercase letters and digits, separated by `.`, `_`, `__` or dashes (as the distribution
    // spec's repository names); not starting or ending with a separator.
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Reference {
    /// Whether `text` is shaped like a reference rather than a plugin id: it has a `/` and its
    /// first part names a registry host (has a `.` or a `:`, or is `localhost`). Plugin ids
    /// never contain `/`.
    pub fn looks_like(text: &str) -> bool {
        match text.split_once('/') {
            Some((host, rest)) => {
                !rest.is_empty()
                    && (host.contains('.') || host.contains(':') || host == "localhost")
            }
            None => false,
        }
    }

    /// Parses `registry[:port]/repository[:tag][@sha256:digest]`. Without a tag or a digest,
    /// the tag is `latest`.
    pub fn parse(text: &str) -> Result<Reference> {
        let invalid = |reason: &str| PluginError::Reference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                if !is_sha256_digest(digest) {
                    return Err(invalid(
                        "the digest must be sha256: followed by 64 lowercase hex digits",
                    ));
                }
                (name, Some(digest.to_string()))
            }
            None => (text, None),
        };
        let (registry, path) = name.split_once('/').ok_or_else(|| {
            invalid("expected registry/namespace/name[:tag] (the registry must be named)")
        })?;
        if !Reference::looks_like(name) {
            return Err(invalid(
                "the first part must be a registry host: it needs a `.` or a `:port`, or be `localhost`",
            ));
        }
        if registry.is_empty()
            || !registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(invalid(
                "the registry host has characters a host name cannot have",
            ));
        }
        // A `:` after the last `/` starts the tag.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => {
                if !valid_tag(tag) {
                    return Err(invalid(
                        "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
                    ));
                }
                (repo, Some(tag.to_string()))
            }
            _ => (path, None),
        };
        if !repository.split('/').all(valid_component) {
            return Err(invalid(
                "repository parts are lowercase letters and digits, separated by `.`, `_` or `-`",
            ));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The registry, `host[:port]`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository inside the registry (`namespace/name`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest, if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The host the distribution API is served on (Docker Hub's `docker.io` is served on
    /// `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" || self.registry == "index.docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// The same repository and tag, pinned to `digest`.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// The reference without its digest (the name a lockfile entry is keyed by when a tag is
    /// present).
    pub fn without_digest(&self) -> Reference {
        Reference {
            digest: None,
            tag: self.tag.clone().or_else(|| Some("latest".into())),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = PluginError;
    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_repository_tag_and_digest() {
        let r = Reference::parse("127.0.0.1:5000/ns/memcached:0.1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "ns/memcached");
        assert_eq!(r.tag(), Some("0.1"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.to_string(), "127.0.0.1:5000/ns/memcached:0.1");

        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("ghcr.io/acme/kv@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), d);

        let r = Reference::parse("localhost/kv").unwrap();
        assert_eq!(r.tag(), Some("latest"));
    }

    #[test]
    fn refuses_what_is_not_a_reference() {
        for bad in [
            "memcached",
            "ns/memcached:0.1",
            "ghcr.io/Acme/kv:1",
            "ghcr.io/acme/kv:-x",
            "ghcr.io/acme/kv@sha256:abc",
            "ghcr.io/",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(!Reference::looks_like("memcached"));
        assert!(Reference::looks_like("registry.example.com/ns/kv:1"));
    }

    #[test]
    fn knows_loopback_registries() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("ghcr.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
