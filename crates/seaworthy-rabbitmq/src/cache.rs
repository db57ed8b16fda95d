//! The baseline cache for RabbitMQ: the broker's database after the init steps (definitions,
//! virtual hosts, users, queues...), kept in an image (see [`seaworthy::baseline_cache`]).

use seaworthy::baseline_cache::{BaselineCache, CachedBaseline, InitDigest};

use crate::definition::{InitStep, RabbitMq};

impl RabbitMq {
    /// Sets the [baseline cache](seaworthy::baseline_cache) of this definition:
    /// `BaselineCache::on()` keeps the broker as its init steps left it (definitions, virtual
    /// hosts, users, queues) in an image after the first start, taken after a clean shutdown, so
    /// later runs start from it: they skip the init steps and the first boot's work (creating
    /// the node's database, enabling its feature flags, the default user and virtual host), and
    /// the fixture finds its baseline recorded. The broker still boots (most of a RabbitMQ
    /// start). The key covers the image's id, the whole definition and the content of every
    /// init step (and of every [definitions file](Self::with_definitions_file) and
    /// [input](BaselineCache::with_input)); an init closure counts by its name.
    /// `SEAWORTHY_BASELINE_CACHE=off` bypasses it for one run.
    ///
    /// With the cache in use, the broker keeps its database in the container's own layer, under
    /// [`CACHED_DATA_DIR`](crate::CACHED_DATA_DIR) (`RABBITMQ_MNESIA_BASE`, unless the
    /// customisation sets one) instead of a tmpfs, so the cached image carries it and a start
    /// reads it in place; its host name is [`CACHED_HOSTNAME`](crate::CACHED_HOSTNAME)
    /// (RabbitMQ keeps its data under a node name derived from the host name, which a start
    /// from the cached image must find again; a host name set with
    /// [`with_container`](Self::with_container) is replaced). What a shutdown does not keep
    /// (transient queues and exchanges, and their bindings) is declared again before a start
    /// from the cached image hands the broker out; durable queues keep the persistent messages
    /// the init steps left, as after a start without the cache.
    ///
    /// ```no_run
    /// use seaworthy::baseline_cache::BaselineCache;
    /// use seaworthy_rabbitmq::RabbitMq;
    ///
    /// let rabbit = RabbitMq::new()
    ///     .with_definitions_file("tests/rabbitmq-definitions.json")
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
}

impl CachedBaseline for RabbitMq {
    fn baseline_cache(&self) -> &BaselineCache {
        &self.cache
    }

    fn cache_kind(&self) -> &'static str {
        "rabbitmq"
    }

    fn cache_identity(&self) -> String {
        format!("rabbitmq {}", self.user())
    }

    fn hash_init(&self, digest: &mut InitDigest) -> seaworthy::Result<()> {
        for (i, step) in self.init.iter().enumerate() {
            match step {
                InitStep::Definitions(json) => digest.add("definitions", json.as_bytes()),
                InitStep::DefinitionsFile(path) => digest.add_path(path)?,
                // A closure's code cannot be read: its name stands for it, and the files it
                // reads are inputs (BaselineCache::with_input).
                InitStep::Closure { .. } => digest.add("closure", step.name(i).as_bytes()),
            }
        }
        Ok(())
    }

    fn state_dirs(&self) -> Vec<String> {
        vec![self.cached_data_dir().to_string()]
    }

    fn with_cached_image(&self, image: &str) -> Self {
        let mut def = self.clone();
        def = def.with_container(|c| c.with_image(image));
        def.cache = BaselineCache::off();
        def.from_cache = true;
        def
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seaworthy::ContainerFixtureDefinition;

    #[test]
    fn a_cached_definition_keeps_its_data_and_node_name() {
        let plain = RabbitMq::new().with_baseline_cache(BaselineCache::off());
        let cached = CachedBaseline::with_cached_image(
            &RabbitMq::new().with_baseline_cache(BaselineCache::on()),
            "sha256:abc",
        );
        assert_eq!(cached.image(), "sha256:abc");
        assert!(!cached.baseline_cache().is_active());
        let key = |def: &RabbitMq| def.container_definition().key();
        assert_ne!(key(&plain), key(&cached));
        assert_ne!(
            ContainerFixtureDefinition::key(&plain),
            ContainerFixtureDefinition::key(&cached)
        );
        let container = cached.container_definition();
        let debug = format!("{container:?}");
        assert!(debug.contains(crate::CACHED_HOSTNAME), "{debug}");
        // The database is in the container's layer, which the image carries: not in the
        // volume (a tmpfs here, as without the cache).
        assert_eq!(
            container.env_value("RABBITMQ_MNESIA_BASE"),
            Some(crate::CACHED_DATA_DIR)
        );
        assert_eq!(cached.state_dirs(), [crate::CACHED_DATA_DIR]);
        assert_eq!(
            plain
                .container_definition()
                .env_value("RABBITMQ_MNESIA_BASE"),
            None
        );
        // A database place of the customisation's is kept, and is what the image carries.
        let own = RabbitMq::new()
            .with_container(|c| c.with_env("RABBITMQ_MNESIA_BASE", "/srv/rabbit"))
            .with_baseline_cache(BaselineCache::on());
        assert_eq!(own.state_dirs(), ["/srv/rabbit"]);
        assert_eq!(
            own.container_definition().env_value("RABBITMQ_MNESIA_BASE"),
            Some("/srv/rabbit")
        );
    }

    #[test]
    fn definitions_files_are_hashed_by_content() {
        let file = std::env::temp_dir().join(format!("sw-rmq-defs-{}.json", std::process::id()));
        std::fs::write(&file, r#"{"queues": []}"#).unwrap();
        let def = RabbitMq::new().with_definitions_file(&file);
        let digest =
            |def: &RabbitMq| seaworthy::baseline_cache::cache_key(def, "sha256:x").unwrap();
        let before = digest(&def);
        std::fs::write(&file, r#"{"queues": [{"name": "q", "vhost": "/"}]}"#).unwrap();
        assert_ne!(before, digest(&def));
        std::fs::remove_file(&file).unwrap();
        let mut d = InitDigest::default();
        let missing = def.hash_init(&mut d).unwrap_err();
        assert!(missing.to_string().contains("sw-rmq-defs"), "{missing}");
    }
}
