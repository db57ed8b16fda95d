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

    /// Parses `registry[:port]/repository[:tag][@sha256:digest]`, by the image reference
    /// grammar of the core crate ([`seaworthy::ImageRef`]) plus two rules of its own: the
    /// registry must be named, and a digest must be sha256. Without a tag or a digest, the tag
    /// is `latest`.
    pub fn parse(text: &str) -> Result<Reference> {
        let invalid = |reason: &str| PluginError::Reference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let name = text.split_once('@').map_or(text, |(name, _)| name);
        if !name.contains('/') {
            return Err(invalid(
                "expected registry/namespace/name[:tag] (the registry must be named)",
            ));
        }
        if !Reference::looks_like(name) {
            return Err(invalid(
                "the first part must be a registry host: it needs a `.` or a `:port`, or be `localhost`",
            ));
        }
        let image = seaworthy::ImageRef::parse(text).map_err(|e| match e {
            seaworthy::Error::Invalid { reason, .. } => invalid(&reason),
            other => invalid(&other.to_string()),
        })?;
        let registry = image.registry().ok_or_else(|| {
            invalid("expected registry/namespace/name[:tag] (the registry must be named)")
        })?;
        if let Some(digest) = image.digest() {
            if !is_sha256_digest(digest) {
                return Err(invalid(
                    "the digest must be sha256: followed by 64 lowercase hex digits",
                ));
            }
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: image.repository().to_string(),
            tag: image.tag().map(str::to_string),
            digest: image.digest().map(str::to_string),
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
        // An IPv6 registry in brackets.
        let r = Reference::parse("[::1]:5000/ns/kv:1").unwrap();
        assert_eq!((r.registry(), r.repository()), ("[::1]:5000", "ns/kv"));
        assert!(Reference::parse("[zz]:5000/ns/kv:1").is_err());
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
