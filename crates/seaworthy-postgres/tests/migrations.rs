//! `Postgres::with_migrations` against the real engine, with migrations directories laid out as
//! sqlx, diesel, refinery, Flyway, dbmate and goose make them (`tests/migration_dirs/`): only the
//! up parts run, in version order, a migration marked to run outside a transaction runs, and a
//! failing migration names its file and line. One container holds every layout (one
//! `with_migrations` step per directory); the failing directory has a container of its own.

use std::path::{Path, PathBuf};

use seaworthy::baseline_cache::{cache_key, BaselineCache};
use seaworthy::{FixtureDefinition, Shared};
use seaworthy_postgres::{Postgres, PostgresFixture};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/migration_dirs")
        .join(name)
}

fn every_layout() -> Postgres {
    ["sqlx", "diesel", "refinery", "flyway", "dbmate", "goose"]
        .into_iter()
        .fold(Postgres::default(), |pg, name| {
            pg.with_migrations(dir(name))
        })
}

static PG: Shared<Postgres> = Shared::per_process(every_layout);

/// The first column of every row of `sql`, as text.
async fn column(pg: &PostgresFixture, sql: &str) -> anyhow::Result<Vec<String>> {
    let client = pg.client().await?;
    Ok(client
        .query(sql, &[])
        .await?
        .iter()
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
        .collect())
}

/// The tables, indexes, views or functions (`kind` of `pg_class`, or `f` for functions) whose
/// name starts with `prefix`.
async fn objects(pg: &PostgresFixture, prefix: &str, kind: &str) -> anyhow::Result<Vec<String>> {
    let sql = if kind == "f" {
        format!("SELECT proname::text FROM pg_proc WHERE proname LIKE '{prefix}%' ORDER BY 1")
    } else {
        format!(
            "SELECT relname::text FROM pg_class WHERE relname LIKE '{prefix}%' \
             AND relkind = '{kind}' ORDER BY 1"
        )
    };
    column(pg, &sql).await
}

/// sqlx's reversible migrations: the `.up.sql` files ran (tables, seed row, the indexes of the
/// `-- no-transaction` file, built `CONCURRENTLY`), none of the `.down.sql` files did.
#[tokio::test]
async fn sqlx_reversible_migrations_leave_the_up_state_only() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    assert_eq!(
        objects(&pg, "sqlx_", "r").await?,
        ["sqlx_orders", "sqlx_users"]
    );
    assert_eq!(
        column(&pg, "SELECT email FROM sqlx_users").await?,
        ["ada@example.com"]
    );
    let indexes = objects(&pg, "sqlx_", "i").await?;
    assert!(
        indexes.contains(&"sqlx_orders_user".to_string()),
        "{indexes:?}"
    );
    assert!(
        indexes.contains(&"sqlx_users_email_lower".to_string()),
        "{indexes:?}"
    );
    Ok(())
}

/// diesel: every `<version>/up.sql` ran, in version order (the setup's functions before the
/// table that uses them, users before the posts that reference them); no `down.sql` did.
#[tokio::test]
async fn diesel_migrations_run_every_up_sql_in_order() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    assert_eq!(
        objects(&pg, "diesel_", "r").await?,
        ["diesel_posts", "diesel_users"]
    );
    assert_eq!(
        objects(&pg, "diesel_", "f").await?,
        ["diesel_manage_updated_at", "diesel_set_updated_at"]
    );
    let triggers = column(
        &pg,
        "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'diesel_posts'::regclass AND NOT tgisinternal",
    )
    .await?;
    assert_eq!(triggers, ["set_updated_at"]);
    Ok(())
}

/// refinery's `V1`..`V10`: numeric order (`V10` after `V9`, whose table it references), each
/// step once.
#[tokio::test]
async fn refinery_versions_run_in_numeric_order() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    let steps = column(
        &pg,
        "SELECT string_agg(n::text, ',' ORDER BY id) FROM refinery_steps",
    )
    .await?;
    assert_eq!(steps, ["1,2,3,4,5,6,7,8,9,10"]);
    assert_eq!(
        objects(&pg, "refinery_", "r").await?,
        ["refinery_nine", "refinery_steps", "refinery_ten"]
    );
    Ok(())
}

/// Flyway: `V1`, `V1.1`, `V2`, `V3`, then the repeatable `R__` view (which needs `V2`'s column);
/// the undo `U2` never ran (the column is there); `V3`'s concurrent indexes were built.
#[tokio::test]
async fn flyway_runs_versioned_then_repeatable_and_never_undo() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    assert_eq!(
        column(&pg, "SELECT id::text FROM flyway_blue_cars").await?,
        ["1"]
    );
    let columns = column(
        &pg,
        "SELECT string_agg(attname::text, ',' ORDER BY attnum) FROM pg_attribute \
         WHERE attrelid = 'flyway_cars'::regclass AND attnum > 0",
    )
    .await?;
    assert_eq!(columns, ["id,color,plate"]);
    // V3's `CREATE INDEX CONCURRENTLY` statements ran outside a transaction, as Flyway runs them.
    assert_eq!(
        objects(&pg, "flyway_cars_", "i").await?,
        ["flyway_cars_color", "flyway_cars_pkey", "flyway_cars_plate"]
    );
    Ok(())
}

/// dbmate and goose keep up and down in one file: only the up sections ran (the tables and rows
/// are there), goose's `StatementBegin` function and its `NO TRANSACTION` indexes too.
#[tokio::test]
async fn dbmate_and_goose_files_run_only_their_up_sections() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    assert_eq!(
        column(&pg, "SELECT name FROM dbmate_accounts ORDER BY id").await?,
        ["ada", "grace"]
    );
    assert_eq!(
        column(&pg, "SELECT format('%s:%s', body, length) FROM goose_notes").await?,
        ["hello:5"]
    );
    assert_eq!(
        objects(&pg, "goose_notes_", "i").await?,
        ["goose_notes_body", "goose_notes_length", "goose_notes_pkey"]
    );
    Ok(())
}

/// The error of starting a fixture with the migrations of the directory `name`, which must fail
/// and name `file` of it at `line`.
async fn start_error(name: &str, file: &str, line: usize) -> anyhow::Result<String> {
    let dir = dir(name);
    let error = match Postgres::default().with_migrations(&dir).start().await {
        Ok(_) => anyhow::bail!("the migrations of {} ran", dir.display()),
        Err(e) => seaworthy::kit::error_chain(&e),
    };
    let place = format!("{}:{line}", dir.join(file).display());
    anyhow::ensure!(error.contains(&place), "{place} is not in: {error}");
    Ok(error)
}

/// A migration that fails names its file and the line of the error, and the start fails.
#[tokio::test]
async fn a_failing_migration_names_its_file_and_line() -> anyhow::Result<()> {
    let error = start_error("failing", "2_broken.sql", 3).await?;
    assert!(error.contains("SELEC"), "{error}");
    Ok(())
}

/// A sqlx migration with `CREATE INDEX CONCURRENTLY` among other statements but without sqlx's
/// `-- no-transaction` fails as it does under sqlx, naming the statement's line, and the error
/// says how to mark it.
#[tokio::test]
async fn a_migration_that_cannot_run_in_a_transaction_says_how_to_mark_it() -> anyhow::Result<()> {
    let error = start_error("needs_no_transaction", "20240101000000_index.sql", 2).await?;
    assert!(error.contains("-- no-transaction"), "{error}");
    Ok(())
}

/// The baseline cache's key covers every file that runs, diesel's `up.sql` in its subdirectory
/// included: one changed in place (same name, other content) changes the key. (That a new key
/// builds a new image is `baseline_cache.rs`'s
/// `a_cached_baseline_is_used_and_a_changed_migration_builds_a_new_one`.)
#[test]
fn a_changed_migration_changes_the_cache_key() -> anyhow::Result<()> {
    let copy = std::env::temp_dir().join(format!("sw-migrations-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    copy_dir(&dir("diesel"), &copy)?;
    let pg = Postgres::default()
        .with_migrations(&copy)
        .with_baseline_cache(BaselineCache::on().with_namespace("migrations-key"));
    let before = cache_key(&pg, "sha256:image")?;
    let up = copy.join("2021-01-02-000000_create_posts/up.sql");
    let text = std::fs::read_to_string(&up)?;
    std::fs::write(&up, text.replace("title varchar", "headline varchar"))?;
    let after = cache_key(&pg, "sha256:image")?;
    std::fs::remove_dir_all(&copy)?;
    assert_ne!(before.init, after.init);
    assert_ne!(before.key, after.key);
    assert_eq!(before.definition, after.definition);
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
