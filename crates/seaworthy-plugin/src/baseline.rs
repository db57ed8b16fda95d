//! The baseline cache for plugin fixtures: the container as its first boot left it, kept in an
//! image (see [`seaworthy::baseline_cache`]).
//!
//! A plugin has no init function: its fixture's initialisation is the first boot of the
//! container its `definition` describes (a service creating its data directory and its users, a
//! plugin's `ready` putting the configured baseline in place), up to the first `ready` that
//! answers true. That is what the cache keeps. A plugin cannot say where its service keeps its
//! data, so every volume of the container (the image's `VOLUME`s and the spec's volumes) is
//! archived with the container's layer.

use std::sync::Arc;

use seaworthy::baseline_cache::{BaselineCache, CachedBaseline, InitDigest};

use crate::fixture::PluginFixtureDefinition;

impl PluginFixtureDefinition {
    /// Sets the [baseline cache](seaworthy::baseline_cache) of this definition (as
    /// `SEAWORTHY_BASELINE_CACHE` says when not set): with `BaselineCache::on()`, the first start
    /// boots the container, waits for the spec's waits and the plugin's `ready`, then stops the
    /// container cleanly (its stop signal; it must exit with code 0) and commits it, with the
    /// content of every volume it has, to an image labelled with a cache key. Later starts with
    /// the same key (later runs, other processes) create the container from that image, so the
    /// service finds its data directory as the first boot left it and skips that work; the waits
    /// and `ready` still run, as they say when the service is up.
    ///
    /// The key covers the plugin component (a hash of its wasm bytes: a rebuilt plugin builds a
    /// new image), its WIT version, the configuration, the whole container spec the plugin
    /// returned and the id of the image it names, and the content of every
    /// [input](BaselineCache::with_input) added. A plugin reads no files (its sandbox has none),
    /// so a configuration naming a file the *service* reads must add it as an input. A spec with
    /// a tmpfs mount is not cached (its content cannot be committed; a log line says so).
    ///
    /// The cache keeps only what the first boot does: `clean` must return the service to that
    /// state (the WIT's "baseline"), as it does for every fixture of a plugin.
    ///
    /// ```no_run
    /// use seaworthy::baseline_cache::BaselineCache;
    /// use seaworthy_plugin::PluginFixtureDefinition;
    ///
    /// let etcd = PluginFixtureDefinition::load("etcd", [("key.config/mode", "baseline")])
    ///     .expect("the etcd plugin")
    ///     .with_baseline_cache(BaselineCache::on());
    /// ```
    pub fn with_baseline_cache(mut self, cache: BaselineCache) -> Self {
        self.cache = cache;
        self
    }

    /// The baseline cache setting.
    pub fn baseline_cache(&self) -> &BaselineCache {
        &self.cache
    }

    /// The cached baseline image this definition starts from, when it was made by the cache
    /// (`None` for a definition made from a plugin).
    pub fn cached_image(&self) -> Option<&str> {
        self.cached_image.as_deref()
    }
}

impl CachedBaseline for PluginFixtureDefinition {
    fn baseline_cache(&self) -> &BaselineCache {
        &self.cache
    }

    fn cache_kind(&self) -> &'static str {
        "plugin"
    }

    fn cache_identity(&self) -> String {
        format!("plugin {}", self.plugin().id())
    }

    fn hash_init(&self, digest: &mut InitDigest) -> seaworthy::Result<()> {
        let plugin = self.plugin();
        digest.add("component", plugin.component_digest().as_bytes());
        digest.add("wit", plugin.wit_version().as_str().as_bytes());
        for (key, value) in self.config() {
            digest.add(key, value.as_bytes());
        }
        digest.add("spec", format!("{:?}", self.spec).as_bytes());
        Ok(())
    }

    fn state_dirs(&self) -> Vec<String> {
        // Every mount of the spec: a tmpfs among them makes the core refuse (and say so).
        self.spec.mounts.iter().map(|m| m.target.clone()).collect()
    }

    fn with_cached_image(&self, image: &str) -> Self {
        let mut def = self.clone();
        def.cached_image = Some(Arc::from(image));
        def.cache = BaselineCache::off();
        def
    }

    fn caches_every_volume(&self) -> bool {
        true
    }
}
