//! Image references, parsed the way the docker CLI reads them.
//!
//! `redis` means `redis:latest`; `redis:7` keeps its tag; `127.0.0.1:5000/team/app:1.2` names a
//! registry (a first component with a `.` or a `:`, or `localhost`); `app@sha256:…` pins a digest.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The longest name (registry and repository path) the distribution spec allows.
const MAX_NAME: usize = 255;

/// The longest input looked at: a name at the limit, a tag at its limit of 128 and a digest with
/// room for a long algorithm and a 512-bit hex value.
const MAX_INPUT: usize = MAX_NAME + 1 + 128 + 1 + 256;

/// A parsed image reference: `[registry/]repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference; a reference without tag or digest gets the tag `latest`.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: &str| Error::invalid("image reference", input, reason);
        if input.is_empty() {
            return Err(bad("it is empty"));
        }
        // The distribution spec limits the name (registry and repository) to 255 characters;
        // the tag (128 at most) and the digest do not count. This bound only keeps a huge
        // input from being scanned: no valid reference comes near it.
        if input.len() > MAX_INPUT {
            return Err(bad(&format!("it is longer than {MAX_INPUT} characters")));
        }
        if input.chars().any(|c| c.is_whitespace()) {
            return Err(bad("it contains white space"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let (algo, hex) = digest
                    .split_once(':')
                    .ok_or_else(|| bad("a digest must look like sha256:<hex>"))?;
                let algo_ok = !algo.is_empty()
                    && algo.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c)
                    });
                let hex_ok = hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit());
                if !algo_ok || !hex_ok {
                    return Err(bad(
                        "a digest must look like sha256:<at least 32 hex digits>",
                    ));
                }
                (rest, Some(digest.to_string()))
            }
            None => (input, None),
        };
        // The tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if tag.is_empty() {
                    return Err(bad("the tag after ':' is empty"));
                }
                if tag.len() > 128 {
                    return Err(bad("the tag is longer than 128 characters"));
                }
                let first_ok = tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                if !first_ok
                    || !tag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                {
                    return Err(bad(&format!(
                        "the tag {tag:?} may hold only letters, digits, '_', '.' and '-' and must not start with '.' or '-'"
                    )));
                }
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(bad("the repository name is empty"));
        }
        if name.len() > MAX_NAME {
            return Err(bad(&format!(
                "the name (registry and repository) is {} characters long, more than {MAX_NAME}",
                name.len()
            )));
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let registry = if parts.len() > 1
            && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
        {
            let registry = parts.remove(0);
            let (host, port) = match registry.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (registry, None),
            };
            // A host name or IPv4 address, or an IPv6 address in brackets (`[::1]:5000`).
            let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                Some(v6) => {
                    !v6.is_empty()
                        && v6
                            .chars()
                            .all(|c| c.is_ascii_hexdigit() || ":.".contains(c))
                }
                None => {
                    !host.is_empty()
                        && host
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
                }
            };
            if !host_ok {
                return Err(bad(&format!(
                    "the registry host {host:?} is not a host name"
                )));
            }
            if let Some(port) = port {
                if port.parse::<u16>().is_err() {
                    return Err(bad(&format!(
                        "the registry port {port:?} is not a port number"
                    )));
                }
            }
            Some(registry.to_string())
        } else {
            None
        };
        for part in &parts {
            if !valid_path_component(part) {
                return Err(bad(&format!(
                    "the path component {part:?} must be lowercase letters and digits, separated by '.', '_', '__' or '-'"
                )));
            }
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(ImageRef {
            registry,
            repository: parts.join("/"),
            tag,
            digest,
        })
    }

    /// The registry host (and port), when the reference names one.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// The repository path without registry (`library/redis` is written `redis`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag; `latest` when the reference had neither tag nor digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), when pinned.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository` without tag or digest, as the engine's pull API takes it.
    pub fn name(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.repository),
            None => self.repository.clone(),
        }
    }
}

fn valid_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or one or more '-'.
        match b {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i >= bytes.len() || !alnum(bytes[i]) {
            return false;
        }
    }
    true
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ImageRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_the_tag_like_the_cli() {
        assert_eq!(
            ImageRef::parse("redis").unwrap().to_string(),
            "redis:latest"
        );
        assert_eq!(ImageRef::parse("redis:7").unwrap().to_string(), "redis:7");
        let r = ImageRef::parse("127.0.0.1:5000/team/app:1.2").unwrap();
        assert_eq!(r.registry(), Some("127.0.0.1:5000"));
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("1.2"));
        let r = ImageRef::parse("localhost/app").unwrap();
        assert_eq!(r.registry(), Some("localhost"));
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let r = ImageRef::parse(&format!("app@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(d));
        assert_eq!(
            ImageRef::parse("seaworthy-test/busybox")
                .unwrap()
                .to_string(),
            "seaworthy-test/busybox:latest"
        );
    }

    #[test]
    fn refuses_malformed_references_with_the_reason() {
        for (input, needle) in [
            ("", "empty"),
            ("Redis", "lowercase"),
            ("redis:", "tag after ':' is empty"),
            ("redis:-x", "tag"),
            ("a//b", "path component"),
            ("app@sha256:zz", "digest"),
            ("host:99999/app", "port"),
            ("re dis", "white space"),
        ] {
            let err = ImageRef::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
            assert!(err.contains(&format!("{input:?}")), "{err}");
        }
    }

    #[test]
    fn limits_the_name_not_the_tag_or_digest() {
        let name = "a".repeat(255);
        let tagged = format!("{name}:{}", "t".repeat(128));
        assert_eq!(ImageRef::parse(&tagged).unwrap().to_string(), tagged);
        let long = "a".repeat(256);
        let err = ImageRef::parse(&format!("{long}:1"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 255"), "{err}");
        let huge = "a".repeat(100_000);
        assert!(ImageRef::parse(&huge).is_err());
    }
}
