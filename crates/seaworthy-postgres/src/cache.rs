//! The baseline cache for PostgreSQL: the data directory after the init steps, kept in an image
//! (see [`seaworthy::baseline_cache`]), and migrations read from a directory.

use std::path::{Path, PathBuf};

use seaworthy::baseline_cache::{BaselineCache, CachedBaseline, InitDigest};

use crate::definition::{InitStep, Postgres, DATA_DIR};
use crate::error::{BoxError, Result};

impl Postgres {
    /// Sets the [baseline cache](seaworthy::baseline_cache) of this definition:
    /// `BaselineCache::on()` keeps the database as the init steps left it (migrations, seed data)
    /// in an image after the first start, so later runs start from it and skip the init steps;
    /// the key covers the image's id, the whole definition and the content of every init step
    /// (and of every [migrations directory](Self::with_migrations) and
    /// [input](BaselineCache::with_input)). `SEAWORTHY_BASELINE_CACHE=off` bypasses it for one run.
    /// Inputs added before (by [`with_migrations`](Self::with_migrations)) are kept.
    ///
    /// ```no_run
    /// use seaworthy::baseline_cache::BaselineCache;
    /// use seaworthy_postgres::Postgres;
    ///
    /// let pg = Postgres::default()
    ///     .with_migrations("migrations")
    ///     .with_baseline_cache(BaselineCache::on());
    /// ```
    pub fn with_baseline_cache(mut self, cache: BaselineCache) -> Self {
        let inputs = self.cache.inputs().to_vec();
        self.cache = inputs
            .into_iter()
            .fold(cache, |cache, input| cache.with_input(input));
        self
    }

    /// The baseline cache setting.
    pub fn baseline_cache(&self) -> &BaselineCache {
        &self.cache
    }

    /// Adds an init step that runs every `*.sql` file of `dir`, in file name order (`001_users.sql`,
    /// `002_orders.sql`...), each as one batch. The directory is read when the step runs; its
    /// files' content is part of the [baseline cache](Self::with_baseline_cache)'s key, so a
    /// migration edited in place builds a new cached baseline. A file that fails names itself in
    /// the error.
    pub fn with_migrations(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.cache = self.cache.clone().with_input(dir.clone());
        let name = format!("migrations {}", dir.display());
        self.with_init(name, move |ctx| {
            let dir = dir.clone();
            async move {
                for file in migration_files(&dir)? {
                    let sql = std::fs::read_to_string(&file)
                        .map_err(|e| format!("read migration {}: {e}", file.display()))?;
                    ctx.client
                        .batch_execute(&sql)
                        .await
                        .map_err(|e| format!("migration {} failed: {e}", file.display()))?;
                }
                Ok(())
            }
        })
    }
}

/// The `*.sql` files of `dir`, in name order.
fn migration_files(dir: &Path) -> std::result::Result<Vec<PathBuf>, BoxError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("read the migrations directory {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("read the migrations directory {}: {e}", dir.display()))?
            .path();
        if path.is_file() && path.extension().is_some_and(|e| e == "sql") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

impl CachedBaseline for Postgres {
    fn baseline_cache(&self) -> &BaselineCache {
        &self.cache
    }

    fn cache_kind(&self) -> &'static str {
        "postgres"
    }

    fn cache_identity(&self) -> String {
        format!("postgres {}@{}", self.database, self.user)
    }

    fn hash_init(&self, digest: &mut InitDigest) -> seaworthy::Result<()> {
        for (i, step) in self.init.iter().enumerate() {
            match step {
                InitStep::Sql(sql) => digest.add("sql", sql.as_bytes()),
                // A closure's code cannot be read: its name stands for it, and the files it
                // reads are inputs (with_migrations adds its directory).
                InitStep::Closure { .. } => digest.add("closure", step.name(i).as_bytes()),
            }
        }
        Ok(())
    }

    fn state_dirs(&self) -> Vec<String> {
        vec![DATA_DIR.to_string()]
    }

    fn with_cached_image(&self, image: &str) -> Self {
        let mut def = self.clone();
        def.container = def.container.with_image(image);
        def.cache = BaselineCache::off();
        def
    }
}

/// Makes sure the cached definition is what the fixture's start uses.
pub(crate) async fn prepare(def: &Postgres, session: &seaworthy::Session) -> Result<Postgres> {
    Ok(seaworthy::baseline_cache::prepare(def, session).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seaworthy::ContainerFixtureDefinition;

    #[test]
    fn migrations_are_inputs_and_survive_a_cache_setting() {
        let pg = Postgres::default()
            .with_migrations("db/migrations")
            .with_baseline_cache(BaselineCache::on().with_namespace("x"));
        assert_eq!(
            pg.baseline_cache().inputs(),
            [PathBuf::from("db/migrations")]
        );
        assert!(
            pg.baseline_cache().is_active() || std::env::var("SEAWORTHY_BASELINE_CACHE").is_ok()
        );
        let cached = CachedBaseline::with_cached_image(&pg, "sha256:abc");
        assert_eq!(cached.image(), "sha256:abc");
        assert!(!cached.baseline_cache().is_active());
        assert_ne!(
            ContainerFixtureDefinition::key(&pg),
            ContainerFixtureDefinition::key(&cached)
        );
    }
}
