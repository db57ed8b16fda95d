//! The one error type of the plugin host. Every variant names the plugin (its manifest `id`)
//! or the file at fault, so a failing test explains itself.

use std::path::PathBuf;
use std::time::Duration;

/// A result with [`PluginError`].
pub type Result<T, E = PluginError> = std::result::Result<T, E>;

/// Everything that can go wrong while finding, loading or running a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// A manifest (`seaworthy-plugin.toml`) could not be read or is invalid.
    #[error("plugin manifest {}: {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// No plugin with this id was found on the search path.
    #[error("no plugin `{id}` found in {searched} (set SEAWORTHY_PLUGIN_PATH or `[plugins] path` in seaworthy.toml)")]
    NotFound {
        /// The id asked for.
        id: String,
        /// The directories searched, joined for display.
        searched: String,
    },

    /// Two plugins on the search path have the same id: neither is loaded (the first would
    /// shadow the second, and receive the grants meant for it).
    #[error("two plugins have the id `{id}`: {} and {}; remove one from the search path, or load one by path with `PluginHost::load_from`", first.display(), second.display())]
    Shadowed {
        /// The id.
        id: String,
        /// The manifest found first.
        first: PathBuf,
        /// The manifest found next.
        second: PathBuf,
    },

    /// The plugin targets a version of the `seaworthy:fixture` WIT package this host does not
    /// implement. Detected before the component is compiled.
    #[error("plugin `{plugin}` targets seaworthy:fixture@{found} ({declared_in}); this host supports {supported}")]
    UnsupportedWit {
        /// The plugin's id.
        plugin: String,
        /// The version it targets.
        found: String,
        /// Where the version was read: `its manifest` or `its component`.
        declared_in: &'static str,
        /// The versions this host supports, joined for display.
        supported: String,
    },

    /// The manifest and the component disagree about the WIT version.
    #[error("plugin `{plugin}`: its manifest says seaworthy:fixture@{manifest} but its component was built against @{component}")]
    WitMismatch {
        /// The plugin's id.
        plugin: String,
        /// The version in the manifest.
        manifest: String,
        /// The version the component imports or exports.
        component: String,
    },

    /// The plugin declares a capability the user did not grant.
    #[error("plugin `{plugin}` asks for {capability}, which is not granted (grant it in [plugins.grants.{plugin}] of seaworthy.toml, with `--grant` on the command line, or with `Grants` in code)")]
    NotGranted {
        /// The plugin's id.
        plugin: String,
        /// The capabilities asked for and not granted (`tcp port 22`, `exec`), joined.
        capability: String,
    },

    /// The wasm file is not a usable fixture component.
    #[error("plugin `{plugin}`: {} is not a usable fixture component: {reason}", path.display())]
    InvalidComponent {
        /// The plugin's id.
        plugin: String,
        /// The wasm file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// A call into the plugin ran longer than its CPU deadline (an endless loop?).
    #[error("plugin `{plugin}`: {call}() ran wasm code for longer than its deadline of {deadline:?} and was stopped; its instance was discarded")]
    Deadline {
        /// The plugin's id.
        plugin: String,
        /// The fixture function called.
        call: &'static str,
        /// The CPU deadline per call.
        deadline: Duration,
    },

    /// A call into the plugin (or its instantiation) tried to grow its linear memory, counted
    /// over all its memories, past the limit.
    #[error("plugin `{plugin}`: {call}() tried to grow its linear memory to {requested} bytes in total, over its limit of {limit} bytes; its instance was discarded")]
    Memory {
        /// The plugin's id.
        plugin: String,
        /// The fixture function called.
        call: &'static str,
        /// The limit in bytes.
        limit: usize,
        /// The total size (over all its memories) it would have had.
        requested: usize,
    },

    /// A call into the plugin (or its instantiation) would have created more instances,
    /// memories, tables or table elements than its [`Limits`](crate::Limits) allow.
    #[error("plugin `{plugin}`: {call}() exceeded its resource limits: {reason}; its instance was discarded")]
    Resources {
        /// The plugin's id.
        plugin: String,
        /// The fixture function called (or `instantiate`).
        call: &'static str,
        /// Which limit, and by how much.
        reason: String,
    },

    /// A call into the plugin trapped (a panic, an out-of-bounds access...).
    #[error(
        "plugin `{plugin}`: {call}() trapped: {reason}; its instance was discarded{}",
        stderr_suffix(stderr)
    )]
    Trap {
        /// The plugin's id.
        plugin: String,
        /// The fixture function called.
        call: &'static str,
        /// The trap.
        reason: String,
        /// The end of what the plugin wrote to stderr (a panic message).
        stderr: String,
    },

    /// A call into the plugin, host calls included, did not return in time.
    #[error(
        "plugin `{plugin}`: {call}() did not return within {timeout:?}; its instance was discarded"
    )]
    Timeout {
        /// The plugin's id.
        plugin: String,
        /// The fixture function called.
        call: &'static str,
        /// The wall-clock limit per call.
        timeout: Duration,
    },

    /// The plugin reported an error (including a host call it was denied).
    #[error("plugin `{plugin}`: {call}() failed: {message}")]
    Failed {
        /// The plugin's id.
        plugin: String,
        /// The fixture function called.
        call: &'static str,
        /// What the plugin said, with the host's denials if there were any.
        message: String,
    },

    /// The plugin does not support what was asked (isolation).
    #[error("plugin `{plugin}` does not support {what}")]
    Unsupported {
        /// The plugin's id.
        plugin: String,
        /// What it does not support.
        what: &'static str,
    },

    /// Starting or using the plugin's container failed.
    #[error("plugin `{plugin}`: {source}")]
    Container {
        /// The plugin's id.
        plugin: String,
        /// The core error (a failed wait carries the container's log tail).
        #[source]
        source: Box<seaworthy::Error>,
    },

    /// A fixture's call (attach, clean, isolate) failed in `container`: the plugin's error, as
    /// the source of the core's [`seaworthy::Error::Fixture`] (so its message names the
    /// container).
    #[error("container {container}: {source}")]
    InContainer {
        /// The fixture's container.
        container: String,
        /// The plugin's error.
        #[source]
        source: Box<PluginError>,
    },

    /// The wasm engine failed in a way that is not the plugin's fault.
    #[error("plugin `{plugin}`: the wasm engine failed to {action}: {reason}")]
    Engine {
        /// The plugin's id (or `-` when no plugin was involved).
        plugin: String,
        /// What was being done.
        action: &'static str,
        /// The engine's message.
        reason: String,
    },

    /// A plugin reference (`registry/namespace/name:tag`) could not be parsed.
    #[error("invalid plugin reference {reference:?}: {reason}")]
    Reference {
        /// The text given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Talking to an OCI registry failed (unreachable, an unexpected answer, a timeout).
    #[error("registry {registry}: {action} failed: {reason}")]
    Registry {
        /// The registry host (`host[:port]`).
        registry: String,
        /// What was being done, naming the reference or blob.
        action: String,
        /// Why it failed.
        reason: String,
    },

    /// The registry refused the credentials, or asked for credentials and there were none.
    #[error("registry {registry}: authentication failed (HTTP {status}) while trying to {action}: {reason}")]
    AuthFailed {
        /// The registry host (`host[:port]`).
        registry: String,
        /// The HTTP status the registry answered (401 or 403).
        status: u16,
        /// What was being done.
        action: String,
        /// Which credentials were tried, and what to do.
        reason: String,
    },

    /// Bytes fetched from a registry or read from the cache do not match the digest that
    /// names them (the descriptor's, or the one pinned in `seaworthy.lock`): the plugin is refused.
    #[error("plugin {reference}: {what} does not match its digest: expected {expected}, got {actual}; refused")]
    Integrity {
        /// The plugin reference.
        reference: String,
        /// What did not match (`the component`, `the OCI manifest`...), and where it came from.
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },

    /// An OCI artifact is not a Seaworthy plugin (wrong media types, missing layers).
    #[error("plugin {reference}: {reason}")]
    Artifact {
        /// The plugin reference.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The lockfile (`seaworthy.lock`) could not be read or written, or does not allow what was
    /// asked.
    #[error("lockfile {}: {reason}", path.display())]
    Lockfile {
        /// The lockfile.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A local I/O error (reading a manifest or a component, building plugins).
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("\n--- plugin stderr ---\n{trimmed}")
    }
}

impl PluginError {
    /// The plugin's id, when the error is about one plugin.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            PluginError::UnsupportedWit { plugin, .. }
            | PluginError::WitMismatch { plugin, .. }
            | PluginError::NotGranted { plugin, .. }
            | PluginError::InvalidComponent { plugin, .. }
            | PluginError::Deadline { plugin, .. }
            | PluginError::Memory { plugin, .. }
            | PluginError::Resources { plugin, .. }
            | PluginError::Trap { plugin, .. }
            | PluginError::Timeout { plugin, .. }
            | PluginError::Failed { plugin, .. }
            | PluginError::Unsupported { plugin, .. }
            | PluginError::Container { plugin, .. }
            | PluginError::Engine { plugin, .. } => Some(plugin),
            PluginError::InContainer { source, .. } => source.plugin(),
            PluginError::NotFound { id, .. } | PluginError::Shadowed { id, .. } => Some(id),
            PluginError::Manifest { .. }
            | PluginError::Io { .. }
            | PluginError::Reference { .. }
            | PluginError::Registry { .. }
            | PluginError::AuthFailed { .. }
            | PluginError::Integrity { .. }
            | PluginError::Artifact { .. }
            | PluginError::Lockfile { .. } => None,
        }
    }

    /// Whether the plugin's instance was discarded (a trap, a deadline, the memory limit or a
    /// timeout): the next call starts a fresh one.
    pub fn discarded_instance(&self) -> bool {
        match self {
            PluginError::InContainer { source, .. } => source.discarded_instance(),
            other => matches!(
                other,
                PluginError::Deadline { .. }
                    | PluginError::Memory { .. }
                    | PluginError::Resources { .. }
                    | PluginError::Trap { .. }
                    | PluginError::Timeout { .. }
            ),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        PluginError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// This error as the core crate's error, for the [`Fixture`](seaworthy::Fixture) contract:
    /// a container error stays what it was; anything else becomes
    /// [`seaworthy::Error::Fixture`] naming the plugin (its id), the container and the action,
    /// its source a [`PluginError::InContainer`] around this error (downcast it to a
    /// `PluginError` to branch on it), like the errors of the other fixture crates.
    pub(crate) fn into_core(self, plugin: &str, container: &str, action: &str) -> seaworthy::Error {
        match self {
            PluginError::Container { source, .. } => *source,
            other => seaworthy::Error::fixture(
                plugin,
                container,
                action,
                PluginError::InContainer {
                    container: container.to_string(),
                    source: Box::new(other),
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_error_reaches_the_core_with_its_source_chain() {
        let error = PluginError::Manifest {
            path: "plugins/x/seaworthy-plugin.toml".into(),
            reason: "no id".into(),
        };
        let message = error.to_string();
        let core = error.into_core("x", "sw-run-x", "clean");
        assert_eq!(core.to_string(), format!("container sw-run-x: {message}"));
        match &core {
            seaworthy::Error::Fixture {
                fixture,
                container,
                action,
                source,
            } => {
                assert_eq!((fixture.as_str(), container.as_str()), ("x", "sw-run-x"));
                assert_eq!(action, "clean");
                let Some(PluginError::InContainer { source, .. }) =
                    source.downcast_ref::<PluginError>()
                else {
                    panic!("{source:?}")
                };
                assert!(matches!(**source, PluginError::Manifest { .. }));
            }
            other => panic!("{other:?}"),
        }
        // A container error stays the core's own.
        let inner = seaworthy::Error::Container {
            container: "c".into(),
            reason: "gone".into(),
        };
        let wrapped = PluginError::Container {
            plugin: "x".into(),
            source: Box::new(inner),
        };
        assert!(matches!(
            wrapped.into_core("x", "c", "clean"),
            seaworthy::Error::Container { .. }
        ));
    }
}
