//! The baseline cache for PostgreSQL: the data directory after the init steps, kept in an image
//! (see [`seaworthy::baseline_cache`]), and migrations read from a directory.

use std::path::PathBuf;

use seaworthy::baseline_cache::{BaselineCache, CachedBaseline, InitDigest};
use seaworthy::kit::migrations::{line_of, read_migrations, Dialect, Layout, Migration, Statement};

use seaworthy::ContainerDefinition;

use crate::definition::{InitStep, Postgres, DATA_DIR};
use crate::error::{BoxError, Result};

/// Where the data directory lives when the baseline cache is on: outside the image's `VOLUME`
/// ([`DATA_DIR`]), in the container's own layer, so the cached image carries it in its layers
/// and a start reads it in place (a volume is filled with a copy of the image's content at
/// every start: ~50 MB for a database with a few dozen tables). Part of the key (`PGDATA`).
pub(crate) const CACHED_DATA_DIR: &str = "/var/lib/seaworthy/postgres";

/// Whether the container's data directory moves to [`CACHED_DATA_DIR`]: the cache is on, the
/// data is not on a tmpfs, and the customisation did not choose a `PGDATA` of its own.
fn relocates_data(def: &Postgres) -> bool {
    def.cache.is_active() && !def.tmpfs && def.container.env_value("PGDATA").is_none()
}

/// The container with its data directory where the cache wants it (see [`CACHED_DATA_DIR`]).
fn place_data(def: &Postgres, container: ContainerDefinition) -> ContainerDefinition {
    if relocates_data(def) {
        container.with_env("PGDATA", CACHED_DATA_DIR)
    } else {
        container
    }
}

/// Label of a reused container: the digest of the init steps' content and of the files they
/// read, so that a migration edited in place never reuses a container built by the old one
/// (the definition's key names closures and directories, not what they read).
pub(crate) const LABEL_REUSE_INIT: &str = "io.seaworthy.reuse.init";

/// What the baseline cache and reuse add to the container: the data directory's place, and the
/// init steps' digest when the fixture is reused across runs.
pub(crate) fn for_reuse_and_cache(
    def: &Postgres,
    container: ContainerDefinition,
) -> ContainerDefinition {
    let container = place_data(def, container);
    if !container.reuses() {
        return container;
    }
    let mut digest = InitDigest::default();
    let content = def.hash_init(&mut digest).and_then(|()| {
        for input in def.cache.inputs() {
            digest.add_path(input)?;
        }
        Ok(digest.finish())
    });
    // An input that cannot be read fails the init step that reads it; until then it is not
    // the content of any container.
    let value = content.unwrap_or_else(|e| format!("unreadable: {e}"));
    container.with_label(LABEL_REUSE_INIT, value)
}

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
        self.cache = cache.keeping_inputs_of(&self.cache);
        self
    }

    /// Keeps the container of this fixture, when it is shared per run
    /// ([`seaworthy::Shared::per_run`]), for the next run to reuse (see [`seaworthy::reuse`]):
    /// the next run finds it by its key (the whole definition, and the content of every init
    /// step and migration file), checks it is alive, cleans it and hands it out, skipping the
    /// start. `SEAWORTHY_REUSE=on` does the same for every definition that does not say,
    /// `SEAWORTHY_REUSE=off` turns it off for a run. `seaworthy gc` removes reused containers
    /// idle for longer than `SEAWORTHY_REUSE_IDLE` (24 hours by default).
    ///
    /// ```no_run
    /// use seaworthy::Shared;
    /// use seaworthy_postgres::Postgres;
    ///
    /// static DB: Shared<Postgres> =
    ///     Shared::per_run(|| Postgres::default().with_migrations("migrations").with_reuse(true));
    /// ```
    pub fn with_reuse(mut self, reuse: bool) -> Self {
        self.container = self.container.with_reuse(reuse);
        self
    }

    /// The baseline cache setting.
    pub fn baseline_cache(&self) -> &BaselineCache {
        &self.cache
    }

    /// Adds an init step that runs the migrations of `dir`, a migrations directory as your
    /// migration tool made it: the up part of each migration, in version order (as numbers:
    /// `2` before `10`), each file as one batch (one transaction), never a down part.
    ///
    /// | Tool | Files | Runs |
    /// |---|---|---|
    /// | sqlx, numbered files | `20220101000000_init.sql`, `001_users.sql` | the file |
    /// | sqlx (reversible), golang-migrate | `1_init.up.sql` + `1_init.down.sql` | `.up.sql` |
    /// | diesel | `2021-01-01-000000_users/up.sql` + `down.sql` | `up.sql` |
    /// | refinery, Flyway | `V1__init.sql`, `V1.1__x.sql`; Flyway's `R__views.sql`, undo `U1__x.sql` | `V` (refinery's `U` too), then `R` by name; never an undo |
    /// | dbmate | `20200101120000_x.sql` with `-- migrate:up` / `-- migrate:down` | the up section |
    /// | goose | `00001_x.sql` with `-- +goose Up` / `-- +goose Down` | the up section |
    ///
    /// Two migrations with the same version, or a file without a version among versioned
    /// ones, are an error naming the files (a directory where no file has a version runs in
    /// name order); see [`seaworthy::kit::migrations`] for every rule. A migration marked to run
    /// outside a transaction (sqlx's `-- no-transaction`, goose's `-- +goose NO TRANSACTION`,
    /// dbmate's `transaction:false`, diesel's `run_in_transaction = false`) runs statement by
    /// statement, so `CREATE INDEX CONCURRENTLY` works; as Flyway does, a Flyway migration with
    /// a statement that cannot run in a transaction runs so without being marked. A migration
    /// that fails names its file and line in the error.
    ///
    /// The directory is read when the step runs; the content of every file below it is part of
    /// the [baseline cache](Self::with_baseline_cache)'s key, so a migration edited in place
    /// builds a new cached baseline.
    pub fn with_migrations(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.cache = self.cache.clone().with_input(dir.clone());
        let name = format!("migrations {}", dir.display());
        self.with_init(name, move |ctx| {
            let dir = dir.clone();
            async move {
                for migration in read_migrations(&dir)? {
                    run_migration(&ctx.client, &migration).await?;
                }
                Ok(())
            }
        })
    }
}

/// Runs one migration: as one batch (one implicit transaction), or statement by statement when
/// it asks to run outside a transaction.
async fn run_migration(
    client: &tokio_postgres::Client,
    migration: &Migration,
) -> std::result::Result<(), BoxError> {
    if migration.transaction {
        match client.batch_execute(&migration.sql).await {
            Ok(()) => return Ok(()),
            // Flyway runs a migration with a statement that cannot run in a transaction
            // (`CREATE INDEX CONCURRENTLY`) outside one: the batch was rolled back as a whole,
            // so it runs again statement by statement.
            Err(e) if outside_transaction(&e) && is_flyway(migration) => {}
            Err(e) => {
                let statement = match e.as_db_error().and_then(|d| d.position()) {
                    Some(_) => None,
                    None => failing_statement(client, migration, &e).await,
                };
                return Err(migration_failed(migration, statement.as_ref(), &e));
            }
        }
    }
    for statement in migration.statements(Dialect::Postgres) {
        client
            .batch_execute(&statement.sql)
            .await
            .map_err(|e| migration_failed(migration, Some(&statement), &e))?;
    }
    Ok(())
}

/// The statement of `migration` that failed, when its batch failed without saying where (an
/// error the server finds while running, not parsing): found by running the statements one by
/// one in a transaction that is rolled back, and kept only when it fails with the batch's
/// SQLSTATE. Only on the way to an error: the fixture's start fails anyway.
async fn failing_statement(
    client: &tokio_postgres::Client,
    migration: &Migration,
    error: &tokio_postgres::Error,
) -> Option<Statement> {
    let code = error.code()?.clone();
    client.batch_execute("BEGIN").await.ok()?;
    let mut found = None;
    for statement in migration.statements(Dialect::Postgres) {
        if let Err(e) = client.batch_execute(&statement.sql).await {
            if e.code() == Some(&code) {
                found = Some(statement);
            }
            break;
        }
    }
    let _ = client.batch_execute("ROLLBACK").await;
    found
}

/// SQLSTATE of "cannot run inside a transaction block" (`CREATE INDEX CONCURRENTLY`...).
const ACTIVE_SQL_TRANSACTION: &str = "25001";

/// Whether `error` says a statement cannot run inside a transaction block.
fn outside_transaction(error: &tokio_postgres::Error) -> bool {
    error
        .as_db_error()
        .is_some_and(|d| d.code().code() == ACTIVE_SQL_TRANSACTION)
}

fn is_flyway(migration: &Migration) -> bool {
    matches!(
        migration.layout,
        Layout::Flyway | Layout::FlywayBaseline | Layout::FlywayRepeatable
    )
}

/// The error of a failed migration: its file and line (from the server's error position when it
/// gives one), the server's message, and what to do when the statement cannot run in a
/// transaction.
fn migration_failed(
    migration: &Migration,
    statement: Option<&Statement>,
    error: &tokio_postgres::Error,
) -> BoxError {
    let db = error.as_db_error();
    let position = match db.and_then(|d| d.position()) {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
        _ => None,
    };
    let line = match (statement, position) {
        (None, Some(p)) => Some(migration.line_of(p)),
        (Some(s), Some(p)) => Some(s.line + line_of(&s.sql, p) - 1),
        (Some(s), None) => Some(s.line),
        (None, None) => None,
    };
    let place = match line {
        Some(line) => format!("{}:{line}", migration.name()),
        None => migration.name(),
    };
    let message = match db {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => seaworthy::kit::error_chain(error),
    };
    let mut text = format!("migration {place} failed: {message}");
    if outside_transaction(error) {
        text.push_str(
            " (the file runs as one transaction: mark it to run outside one, as its tool \
             does: `-- no-transaction` as sqlx's first line, `-- +goose NO TRANSACTION`, \
             dbmate's `-- migrate:up transaction:false`, diesel's `run_in_transaction = false`)",
        );
    }
    text.into()
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
        let dir = match self.container.env_value("PGDATA") {
            Some(dir) => dir,
            None if relocates_data(self) => CACHED_DATA_DIR,
            None => DATA_DIR,
        };
        vec![dir.to_string()]
    }

    fn with_cached_image(&self, image: &str) -> Self {
        let mut def = self.clone();
        def.container = place_data(self, def.container).with_image(image);
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
        if pg.baseline_cache().is_active() {
            // The data directory is in the image's layers, where the build left it.
            for def in [&pg, &cached] {
                let container = def.container_definition();
                assert_eq!(container.env_value("PGDATA"), Some(CACHED_DATA_DIR));
            }
            assert_eq!(pg.state_dirs(), [CACHED_DATA_DIR]);
            let own = pg
                .clone()
                .with_container(|c| c.with_env("PGDATA", "/data/pg"));
            assert_eq!(own.state_dirs(), ["/data/pg"]);
            assert_eq!(
                own.container_definition().env_value("PGDATA"),
                Some("/data/pg")
            );
        }
        assert!(!cached.baseline_cache().is_active());
        assert_ne!(
            ContainerFixtureDefinition::key(&pg),
            ContainerFixtureDefinition::key(&cached)
        );
    }
}
