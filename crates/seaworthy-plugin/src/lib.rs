//! # Seaworthy plugins
//!
//! Third-party fixtures as WebAssembly components: a plugin implements the same fixture
//! contract as the native fixtures ([`seaworthy::Fixture`]) through the versioned WIT package
//! `seaworthy:fixture` (folder `wit/` of the repository), and runs sandboxed in wasmtime.
//!
//! ## The model
//!
//! * **Manifest first.** A plugin is a directory with a `seaworthy-plugin.toml`
//!   ([`Manifest`]) and the component. The host reads the manifest and the component's WIT
//!   version *before* compiling it, and refuses a plugin whose WIT version it does not
//!   implement ([`SUPPORTED_WIT_VERSIONS`]) or which declares a capability the user did not
//!   grant ([`Grants`]), with an error naming the plugin.
//! * **Narrow capabilities.** A plugin may run commands in *its own* container, open TCP
//!   connections and send HTTP requests to *its own* container's ports, read its logs, sleep
//!   and log. Exec and each port must be declared and granted. WASI is linked with an empty
//!   context: no files, no environment, no network; the Docker engine is never reachable.
//! * **Limits.** Each call has a CPU deadline (epoch interruption, host calls excluded), a
//!   wall-clock timeout, and the instance one budget: linear memory counted over all its
//!   memories, and capped numbers of instances, memories and tables ([`Limits`], set by the
//!   user only); every host call has a timeout, and every length a plugin supplies (error text,
//!   log lines, denials) is cut. A trap, deadline or timeout discards only that fixture's
//!   instance: the error names the plugin, and the next call gets a fresh instance. The
//!   plugin guide's "Security model" says exactly what a plugin can reach.
//! * **Compiled once.** Compiled components are cached on disk where the user says (never a
//!   project file), keyed by the engine's compatibility hash and the wasm's sha256, and tagged
//!   with an HMAC under a per-user secret that is checked before an artifact is deserialized;
//!   loading a cached one takes about a millisecond.
//! * **Fixtures like any other.** [`PluginFixtureDefinition`] implements
//!   [`seaworthy::FixtureDefinition`], so plugin fixtures work per test and shared per process
//!   or per run ([`seaworthy::Shared`]), with `clean()`, connection info and optional isolation.
//!   [`PluginFixtureDefinition::with_baseline_cache`] keeps the container as its first boot left
//!   it in an image across runs ([`seaworthy::baseline_cache`]), keyed by the component's hash,
//!   its WIT version, the configuration and the whole container spec.
//!
//! ```no_run
//! use seaworthy::{Fixture, FixtureDefinition};
//! use seaworthy_plugin::{Grants, PluginHost};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let host = PluginHost::builder()
//!     .search_dir("target/seaworthy-plugins")
//!     .grant("memcached", Grants::new().tcp(11211))
//!     .build()?;
//! let memcached = host.load("memcached")?.fixture([("memory-mb", "32")])?.start().await?;
//! println!("memcached at {}", memcached.connection());
//! memcached.clean().await?; // flush_all, done by the plugin over its own TCP connection
//! # Ok(()) }
//! ```
//!
//! * **Published through OCI registries.** [`oci::push`] uploads a plugin as a wasm OCI
//!   artifact; [`oci::install`] fetches it, checks every byte's sha256, keeps it by digest and
//!   pins it in `seaworthy.lock`. [`PluginHost::load`] and [`PluginFixtureDefinition::load`] take
//!   a reference (`registry.example.com/acme/kv:0.1`) wherever they take an id. [`scaffold`]
//!   makes a new plugin crate.
//!
//! Plugins are built with `cargo build --target wasm32-wasip2` and wit-bindgen; see
//! `plugins/README.md` for the authoring guide, and [`workspace`] for building a directory of
//! plugins from tests.

#![warn(missing_docs)]

mod baseline;
mod cache;
pub mod cli;
mod engine;
mod error;
mod files;
mod fixture;
mod grants;
mod host_api;
mod instance;
mod isolation;
mod limits;
mod manifest;
pub mod oci;
mod plugin;
pub mod scaffold;
mod v0_1;
mod version;
pub mod workspace;

/// The generated bindings of the newest WIT version: the types the host logic is written
/// against. Older versions' modules convert to these (0.1.0 needs none: see [`v0_1`]).
pub(crate) mod latest {
    pub(crate) use crate::v0_1::seaworthy::fixture::{host, types};
}

pub use error::{PluginError, Result};
pub use fixture::{PluginFixture, PluginFixtureDefinition, LABEL_PLUGIN};
pub use grants::{Grants, PluginsConfig};
pub use isolation::PluginIsolated;
pub use limits::Limits;
pub use manifest::{Capabilities, Manifest, MANIFEST_FILE};
pub use plugin::{Discovered, LoadOutcome, Plugin, PluginHost, PluginHostBuilder, PluginMetadata};
pub use version::{WitVersion, SUPPORTED_WIT_VERSIONS, WIT_PACKAGE};
