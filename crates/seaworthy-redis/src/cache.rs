//! The baseline cache for Redis: the data the init steps left (an RDB file saved after them),
//! kept in an image (see [`seaworthy::baseline_cache`]).

use seaworthy::baseline_cache::{BaselineCache, CachedBaseline, InitDigest};

use crate::definition::{Redis, CACHED_DATA_DIR};

impl Redis {
    /// Sets the [baseline cache](seaworthy::baseline_cache) of this definition:
    /// `BaselineCache::on()` keeps the server as its init steps left it in an image after the
    /// first start, so later runs start from it and skip the init steps. The data is saved
    /// (`SAVE`) after the init steps into an RDB file under `/var/lib/seaworthy/redis`, in the
    /// container's own layer (outside the image's `/data` volume), and the container is stopped
    /// cleanly before it is committed; a start from the cached image loads that file.
    ///
    /// The key covers the image's id, the whole definition and the content of every init step
    /// (and of every [seed file](Self::with_seed_file) and [input](BaselineCache::with_input));
    /// an init closure counts by its name. `SEAWORTHY_BASELINE_CACHE=off` bypasses it for one
    /// run. Inputs added before (by [`with_seed_file`](Self::with_seed_file)) are kept.
    ///
    /// What an RDB file does not hold is put back when a start from the cached image hands the
    /// server out, as [`clean`](seaworthy::Fixture::clean) would: configuration set and users
    /// created by the init steps, and the keys' time to live (an RDB keeps expiry times, which
    /// a later run may have passed; the baseline keeps the time each key had left).
    ///
    /// ```no_run
    /// use seaworthy::baseline_cache::BaselineCache;
    /// use seaworthy_redis::Redis;
    ///
    /// let redis = Redis::new()
    ///     .with_seed_file("tests/seed.redis")
    ///     .with_baseline_cache(BaselineCache::on());
    /// ```
    pub fn with_baseline_cache(mut self, cache: BaselineCache) -> Self {
        self.cache = cache.keeping_inputs_of(&self.cache);
        self
    }

    /// The baseline cache setting.
    pub fn baseline_cache(&self) -> &BaselineCache {
        &self.cache
    }
}

impl CachedBaseline for Redis {
    fn baseline_cache(&self) -> &BaselineCache {
        &self.cache
    }

    fn cache_kind(&self) -> &'static str {
        "redis"
    }

    fn cache_identity(&self) -> String {
        "redis".to_string()
    }

    fn hash_init(&self, digest: &mut InitDigest) -> seaworthy::Result<()> {
        seaworthy::kit::hash_init_steps(&self.init, digest);
        Ok(())
    }

    fn state_dirs(&self) -> Vec<String> {
        vec![CACHED_DATA_DIR.to_string()]
    }

    fn with_cached_image(&self, image: &str) -> Self {
        let mut def = self.clone().with_container(|c| c.with_image(image));
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
    fn a_cached_definition_loads_its_saved_data() {
        let seeded = Redis::new()
            .with_seed_commands("SET a 1")
            .with_baseline_cache(BaselineCache::on().with_namespace("x"));
        let cached = CachedBaseline::with_cached_image(&seeded, "sha256:abc");
        assert_eq!(cached.image(), "sha256:abc");
        assert!(!cached.baseline_cache().is_active());
        for def in [&seeded, &cached] {
            if def.persistent() {
                let cmd = def.command();
                assert!(
                    cmd.windows(2).any(|w| w == ["--dir", CACHED_DATA_DIR]),
                    "{cmd:?}"
                );
            }
        }
        assert_ne!(
            ContainerFixtureDefinition::key(&seeded),
            ContainerFixtureDefinition::key(&cached)
        );
    }

    #[test]
    fn seed_files_are_inputs_hashed_by_content() {
        let file = std::env::temp_dir().join(format!("sw-redis-seed-{}.redis", std::process::id()));
        std::fs::write(&file, "SET a 1").unwrap();
        let def = Redis::new()
            .with_seed_file(&file)
            .with_baseline_cache(BaselineCache::on());
        assert_eq!(def.baseline_cache().inputs(), std::slice::from_ref(&file));
        let key = |def: &Redis| seaworthy::baseline_cache::cache_key(def, "sha256:x").unwrap();
        let before = key(&def);
        std::fs::write(&file, "SET a 2").unwrap();
        assert_ne!(before.init, key(&def).init);
        let other = Redis::new()
            .with_seed_commands("SET a 1")
            .with_baseline_cache(BaselineCache::on());
        let changed = Redis::new()
            .with_seed_commands("SET a 2")
            .with_baseline_cache(BaselineCache::on());
        assert_ne!(key(&other).init, key(&changed).init);
        std::fs::remove_file(&file).unwrap();
    }
}
