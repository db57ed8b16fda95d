//! Default redactions, and where snapshot files live.

use std::path::{Path, PathBuf};

use seaworthy::Container;

/// Text that replaces a container's id (full or short) wherever it appears.
pub const CONTAINER_ID: &str = "[container-id]";

/// The default redactions of one kind of snapshot.
///
/// Two mechanisms, both insta's own:
///
/// - *selector redactions* replace a field of the value (`.id`, `.published_ports.*`), whatever
///   its content;
/// - *filters* replace text matching a regex anywhere in the serialised snapshot, in order.
///
/// Every kind gets these filters: the container's full and short id → `[container-id]`, the
/// session's namespace (the prefix of every name Seaworthy gives) → `[namespace]`, the run id →
/// `[session]`, then any 64-digit hex hash (with or without `sha256:`) → `[hash]`, RFC 3339
/// timestamps → `[timestamp]`, and IPv4 addresses → `[ip]`.
///
/// On top of them, [`Redactions::metadata`] redacts `.id`, `.created`,
/// `.published_ports[].host_port`, `.networks.*.ip_address`, the `io.seaworthy.owner` label (when
/// a snapshot keeps the session's labels), and `.name` when the container was not given a name
/// (the engine name is then random); [`Redactions::http`] redacts
/// the `date`, `last-modified`, `etag`, `expires`, `age`, `set-cookie` and `x-request-id` headers.
/// Process snapshots leave process ids out instead of redacting them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactions {
    /// Selector redactions: `(insta selector, replacement)`.
    pub selectors: Vec<(String, String)>,
    /// Filters: `(regex, replacement)`, applied in order to the serialised snapshot.
    pub filters: Vec<(String, String)>,
}

impl Redactions {
    /// The filters every kind gets, with the container's own ids and names when given.
    pub fn common(container: Option<&Container>) -> Redactions {
        let mut filters = Vec::new();
        if let Some(c) = container {
            // An id made of digits and one `e` (say `1234e5678901`) reads as a number in YAML,
            // so the serialiser quotes it; the quoted form goes first so that the snapshot text
            // does not depend on the id the engine happened to pick.
            filters.extend(id_filters(&[c.id(), c.short_id()]));
            filters.push((escape(c.session().namespace()), "[namespace]".to_string()));
            filters.push((escape(c.session().run_id()), "[session]".to_string()));
        }
        filters.extend(
            [
                (r"\b(?:sha256:)?[0-9a-f]{64}\b", "[hash]"),
                (
                    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
                    "[timestamp]",
                ),
                (
                    r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
                    "[ip]",
                ),
            ]
            .map(|(r, s)| (r.to_string(), s.to_string())),
        );
        Redactions {
            selectors: Vec::new(),
            filters,
        }
    }

    /// The defaults of a [`ContainerMetadata`](crate::ContainerMetadata) snapshot.
    pub fn metadata(container: Option<&Container>) -> Redactions {
        let mut r = Redactions::common(container);
        for (selector, replacement) in [
            (".id", "[id]"),
            (".created", "[timestamp]"),
            (".published_ports[].host_port", "[host-port]"),
            (".networks.*.ip_address", "[ip]"),
            (
                &format!(r#".labels["{}"]"#, seaworthy::session::LABEL_OWNER),
                "[owner]",
            ),
        ] {
            r.selectors
                .push((selector.to_string(), replacement.to_string()));
        }
        if container.is_some_and(|c| c.alias().is_none()) {
            r.selectors.push((".name".into(), "[name]".into()));
        }
        r
    }

    /// The defaults of an [`ExecSnapshot`](crate::ExecSnapshot).
    pub fn exec(container: Option<&Container>) -> Redactions {
        Redactions::common(container)
    }

    /// The defaults of a [`ProcessSnapshot`](crate::ProcessSnapshot).
    pub fn processes(container: Option<&Container>) -> Redactions {
        Redactions::common(container)
    }

    /// The defaults of a [`DirSnapshot`](crate::DirSnapshot).
    pub fn dir(container: Option<&Container>) -> Redactions {
        Redactions::common(container)
    }

    /// The defaults of an [`HttpSnapshot`](crate::HttpSnapshot).
    pub fn http(container: Option<&Container>) -> Redactions {
        let mut r = Redactions::common(container);
        for header in [
            "date",
            "last-modified",
            "etag",
            "expires",
            "age",
            "set-cookie",
            "x-request-id",
        ] {
            r.selectors
                .push((format!(r#".headers["{header}"]"#), "[redacted]".to_string()));
        }
        r
    }

    /// Adds a selector redaction.
    pub fn with_selector(
        mut self,
        selector: impl Into<String>,
        replacement: impl Into<String>,
    ) -> Self {
        self.selectors.push((selector.into(), replacement.into()));
        self
    }

    /// Adds a filter.
    pub fn with_filter(mut self, regex: impl Into<String>, replacement: impl Into<String>) -> Self {
        self.filters.push((regex.into(), replacement.into()));
        self
    }

    /// Adds these redactions to `settings` (after what it already has).
    pub fn apply_to(&self, settings: &mut insta::Settings) {
        for (selector, replacement) in &self.selectors {
            settings.add_redaction(selector, replacement.as_str());
        }
        for (regex, replacement) in &self.filters {
            settings.add_filter(regex, replacement.as_str());
        }
    }
}

/// The current insta settings plus `redactions`: the settings the macros use, for your own
/// `insta::assert_*` calls (`settings_for(Redactions::exec(Some(&c))).bind(|| ...)`).
///
/// The snapshot path is left as it is; set it with [`snapshot_dir`].
pub fn settings_for(redactions: Redactions) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    redactions.apply_to(&mut settings);
    settings
}

/// [`settings_for`], with the snapshot path set to [`snapshot_dir`] unless the caller chose one.
pub(crate) fn settings_with(
    redactions: Redactions,
    manifest_dir: &str,
    package: &str,
) -> insta::Settings {
    let mut settings = settings_for(redactions);
    if settings.snapshot_path() == Path::new("snapshots") {
        settings.set_snapshot_path(snapshot_dir(manifest_dir, package));
    }
    settings
}

/// Where the snapshots of `package` (whose manifest is in `manifest_dir`) live:
/// `$SEAWORTHY_SNAPSHOT_DIR/<package>` when that variable is set, else
/// `<workspace root>/snapshots/<package>`, the workspace root being the outermost directory above
/// `manifest_dir` whose `Cargo.toml` has a `[workspace]` table (`manifest_dir` itself when none
/// has).
pub fn snapshot_dir(manifest_dir: &str, package: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("SEAWORTHY_SNAPSHOT_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join(package);
    }
    workspace_root(Path::new(manifest_dir))
        .join("snapshots")
        .join(package)
}

fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .filter(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|text| text.lines().any(|l| l.trim() == "[workspace]"))
        })
        .last()
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// Filters replacing each id, quoted or bare, with [`CONTAINER_ID`].
fn id_filters(ids: &[String]) -> Vec<(String, String)> {
    ids.iter()
        .flat_map(|id| {
            [
                (format!("\"{}\"", escape(id)), CONTAINER_ID.to_string()),
                (escape(id), CONTAINER_ID.to_string()),
            ]
        })
        .collect()
}

/// `text` as a regex matching itself.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_live_at_the_workspace_root() {
        let dir = snapshot_dir(env!("CARGO_MANIFEST_DIR"), "seaworthy-insta");
        assert!(
            dir.ends_with("snapshots/seaworthy-insta"),
            "{}",
            dir.display()
        );
        let root = dir.parent().and_then(Path::parent).unwrap();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
        assert!(!dir.starts_with(env!("CARGO_MANIFEST_DIR")));
    }

    #[test]
    fn escaped_text_matches_itself_only() {
        let pattern = regex::Regex::new(&format!("^{}$", escape("sw-1a2b.c+d"))).unwrap();
        assert!(pattern.is_match("sw-1a2b.c+d"));
        assert!(!pattern.is_match("sw-1a2bxc+d"));
    }

    #[test]
    fn an_id_that_yaml_quotes_redacts_like_any_other() {
        let apply = |id: &str, text: &str| {
            id_filters(&[id.to_string()]).iter().fold(
                text.to_string(),
                |out, (regex, replacement)| {
                    regex::Regex::new(regex)
                        .unwrap()
                        .replace_all(&out, replacement.as_str())
                        .into_owned()
                },
            )
        };
        let numeric = "1234e5678901";
        // insta's YAML writer quotes a scalar that would read back as a number.
        let quoted = format!("hostname: \"{numeric}\"\n");
        let plain = "hostname: abcdef123456\n";
        assert_eq!(apply(numeric, &quoted), apply("abcdef123456", plain));
        assert_eq!(apply("abcdef123456", plain), "hostname: [container-id]\n");
    }

    #[test]
    fn the_generic_filters_catch_hashes_timestamps_and_addresses() {
        let filters = Redactions::common(None).filters;
        let apply = |text: &str| {
            filters
                .iter()
                .fold(text.to_string(), |out, (regex, replacement)| {
                    regex::Regex::new(regex)
                        .unwrap()
                        .replace_all(&out, replacement.as_str())
                        .into_owned()
                })
        };
        let hash = "a".repeat(64);
        assert_eq!(apply(&format!("sha256:{hash}")), "[hash]");
        assert_eq!(apply("at 2024-05-01T10:20:30.123456789Z"), "at [timestamp]");
        assert_eq!(apply("inet 172.17.0.2/16"), "inet [ip]/16");
        assert_eq!(apply("nginx/1.22.1"), "nginx/1.22.1");
    }
}
