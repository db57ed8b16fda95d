//! The baseline cache against the real engine: a PostgreSQL baseline (migrations and seed rows)
//! kept in an image, found again by its key, rebuilt when a migration's content changes, built
//! once by concurrent processes, never taken from a build that was killed, and left alone by gc.
//!
//! Each test keeps its images in a namespace of its own and removes them at the end, also when it
//! fails (the suite's leak check counts every image labelled `io.seaworthy.managed=true`).

use seaworthy_testkit as common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use seaworthy::baseline_cache::{self, BaselineCache, CachedImage, PruneOptions};
use seaworthy::{Fixture, FixtureDefinition, Session};
use seaworthy_postgres::{Postgres, PostgresFixture};
use seaworthy_testkit::{image_of, CacheNamespace};

const CHILD: &str = "a_process_starting_a_cached_postgres";
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

/// A namespace of the test's own ([`common::CacheNamespace`]: its images are removed when it
/// drops, after the fixtures of the test, which were declared after it, are gone) with a
/// directory of migrations, removed with it.
struct Namespace {
    cache: CacheNamespace,
    dir: PathBuf,
}

impl Namespace {
    fn new(test: &str) -> Namespace {
        let cache = CacheNamespace::new(test);
        let dir = std::env::temp_dir().join(format!("sw-{}", cache.name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the migrations directory");
        Namespace { cache, dir }
    }

    fn write(&self, file: &str, sql: &str) {
        std::fs::write(self.dir.join(file), sql).expect("write a migration");
    }

    /// The definition every process of a test starts: the migrations of the namespace's
    /// directory, and a step that, in a child told to, stops for good (to be killed mid-build).
    fn postgres(&self) -> Postgres {
        postgres_in(&self.cache.name, &self.dir)
    }

    /// The parameter of a child process starting the namespace's definition.
    fn param(&self) -> String {
        format!("{}|{}", self.cache.name, self.dir.display())
    }

    async fn images(&self) -> anyhow::Result<Vec<CachedImage>> {
        self.cache.images().await
    }
}

fn postgres_in(namespace: &str, dir: &Path) -> Postgres {
    Postgres::default()
        .with_database("shop")
        .with_migrations(dir)
        .with_init("hold when asked", |_ctx| async move {
            if std::env::var("SW_CACHE_HOLD").is_ok() {
                common::report(&["initialising"]);
                tokio::time::sleep(Duration::from_secs(300)).await;
            }
            Ok(())
        })
        .with_baseline_cache(BaselineCache::on().with_namespace(namespace))
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // The cache namespace's images are removed after this, when the field drops.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The migration of the tests that need one table with one row.
const ONE_ROW: &str = "CREATE TABLE t (id int); INSERT INTO t VALUES (1);";

/// A namespace of the test `test` with the [`ONE_ROW`] migration, and a child process (named
/// `label`, of a run of its own) starting its definition with `env` set.
fn one_row_child(
    test: &str,
    label: &str,
    env: &[(&str, String)],
) -> (Namespace, common::ChildRun, common::ChildTest) {
    let ns = Namespace::new(test);
    ns.write("001_t.sql", ONE_ROW);
    let run = common::ChildRun::new();
    let child = run.spawn(label, CHILD, &ns.param(), env);
    (ns, run, child)
}

async fn rows(pg: &PostgresFixture, sql: &str) -> anyhow::Result<Vec<String>> {
    let client = pg.client().await?;
    Ok(client
        .query(sql, &[])
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect())
}

/// The cached baseline has the migrations' tables and seed rows, is used by the next start (the
/// seed's timestamp is the first start's: the init steps did not run again), and a migration
/// changed in place (same name, other content) builds a new image; gc leaves cached images
/// alone, prune honours a count cap.
#[tokio::test]
async fn a_cached_baseline_is_used_and_a_changed_migration_builds_a_new_one() -> anyhow::Result<()>
{
    let ns = Namespace::new("reuse");
    ns.write(
        "001_products.sql",
        "CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, seeded_at text);",
    );
    ns.write(
        "002_seed.sql",
        "INSERT INTO products (name, seeded_at) VALUES ('anchor', clock_timestamp()::text), ('rope', clock_timestamp()::text);",
    );
    let first = ns.postgres().start().await?;
    let names = rows(&first, "SELECT name FROM products ORDER BY id").await?;
    assert_eq!(names, ["anchor", "rope"]);
    let seeded = rows(&first, "SELECT seeded_at FROM products ORDER BY id").await?;
    let images = ns.images().await?;
    assert_eq!(images.len(), 1, "{images:?}");
    let cached = &images[0];
    assert!(cached.complete);
    assert_eq!(image_of(&first).await?, cached.id, "started from the cache");
    assert_eq!(cached.kind, "postgres");
    assert!(cached.built_from.contains("postgres"), "{cached:?}");

    // Labelled: managed, and owned by the cache (not by this process, whose exit leaves it).
    let session = Session::global().await?;
    let docker = session.engine().docker();
    let info = docker.inspect_image(&cached.id).await?;
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels["io.seaworthy.managed"], "true");
    assert_eq!(
        labels["io.seaworthy.owner"],
        seaworthy::session::OWNER_CACHE
    );

    // The next start skips the init steps: the seed rows are the first start's.
    let second = ns.postgres().start().await?;
    assert_eq!(image_of(&second).await?, cached.id);
    assert_eq!(
        rows(&second, "SELECT seeded_at FROM products ORDER BY id").await?,
        seeded
    );
    // The cached start is a normal fixture: clean returns to the cached baseline.
    second
        .client()
        .await?
        .batch_execute("INSERT INTO products (name) VALUES ('sail')")
        .await?;
    second.clean().await?;
    assert_eq!(
        rows(&second, "SELECT name FROM products ORDER BY id").await?,
        ["anchor", "rope"]
    );
    drop((first, second));

    // Same file name, other content: a new key, a new image.
    ns.write(
        "002_seed.sql",
        "INSERT INTO products (name, seeded_at) VALUES ('keel', clock_timestamp()::text);",
    );
    let third = ns.postgres().start().await?;
    assert_eq!(
        rows(&third, "SELECT name FROM products ORDER BY id").await?,
        ["keel"]
    );
    let images = ns.images().await?;
    assert_eq!(images.len(), 2, "{images:?}");
    assert_ne!(images[0].key, images[1].key);
    assert_eq!(image_of(&third).await?, images[0].id, "the newest image");
    drop(third);
    session.wait_for_background_removals(Duration::from_secs(30));

    // The dead-process sweep leaves cached images alone; a count cap removes the older one.
    seaworthy::gc::collect(session.engine(), Default::default()).await?;
    assert_eq!(ns.images().await?.len(), 2);
    let options = PruneOptions {
        namespace: Some(ns.cache.name.clone()),
        max_count: Some(1),
        ..Default::default()
    };
    let (removed, errors) = baseline_cache::prune(session.engine(), &options).await?;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].id, images[1].id, "the least recently used goes");
    let left = ns.images().await?;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, images[0].id);
    Ok(())
}

/// Two processes starting the same definition at once build one image, and both use it.
#[tokio::test]
async fn two_processes_at_once_build_one_image() -> anyhow::Result<()> {
    let ns = Namespace::new("concurrent");
    ns.write("001_t.sql", ONE_ROW);
    let run = common::ChildRun::new();
    let param = ns.param();
    let mut children: Vec<_> = (0..2)
        .map(|i| run.spawn(&format!("starter {i}"), CHILD, &param, &[]))
        .collect();
    let mut used = Vec::new();
    for child in &mut children {
        used.push(child.read_ids(CHILD_DEADLINE).await);
    }
    for child in &mut children {
        child.proceed().await;
    }
    for child in children {
        child.expect_success(CHILD_DEADLINE).await;
    }
    run.remove().await?;
    let images = ns.images().await?;
    assert_eq!(images.len(), 1, "{images:?}");
    for ids in &used {
        assert_eq!(ids[0], images[0].id, "both started from the one image");
    }
    Ok(())
}

/// A process killed while it builds the cached baseline leaves nothing the next one uses: the
/// next start builds a complete image of its own.
#[tokio::test]
async fn a_build_killed_midway_is_not_used() -> anyhow::Result<()> {
    let (ns, run, mut child) = one_row_child(
        "killed",
        "the build that dies",
        &[("SW_CACHE_HOLD", "1".to_string())],
    );
    assert_eq!(child.read_ids(CHILD_DEADLINE).await, ["initialising"]);
    child.kill().await;
    run.remove().await?;
    assert!(ns.images().await?.is_empty(), "nothing cached yet");
    let pg = ns.postgres().start().await?;
    assert_eq!(rows(&pg, "SELECT id::text FROM t").await?, ["1"]);
    let images = ns.images().await?;
    assert_eq!(images.len(), 1, "{images:?}");
    assert!(images[0].complete);
    assert_eq!(image_of(&pg).await?, images[0].id);
    Ok(())
}

/// `SEAWORTHY_BASELINE_CACHE=off` bypasses the cache for a run, even for a definition that turns
/// it on: the fixture starts from its own image and nothing is cached.
#[tokio::test]
async fn the_environment_switch_bypasses_the_cache() -> anyhow::Result<()> {
    let (ns, run, mut child) = one_row_child(
        "bypass",
        "a run with the cache off",
        &[("SEAWORTHY_BASELINE_CACHE", "off".to_string())],
    );
    let used = child.read_ids(CHILD_DEADLINE).await;
    child.proceed().await;
    child.expect_success(CHILD_DEADLINE).await;
    run.remove().await?;
    assert!(ns.images().await?.is_empty(), "nothing cached");
    // Under this workspace's image substitution the fixture runs the local test image.
    let session = Session::global().await?;
    let docker = session.engine().docker();
    if let Ok(Some(base)) = docker
        .inspect_image("seaworthy-test/postgres")
        .await
        .map(|i| i.id)
    {
        assert_eq!(used[0], base, "started from the plain image");
    }
    Ok(())
}

/// The child process of the tests above: starts the namespace's definition, reports the image
/// its container runs, and waits for the parent.
#[tokio::test]
#[ignore = "run by the tests above as a child process"]
async fn a_process_starting_a_cached_postgres() -> anyhow::Result<()> {
    let Some(param) = common::param() else {
        return Ok(());
    };
    let (namespace, dir) = param
        .split_once('|')
        .ok_or_else(|| anyhow::anyhow!("bad parameter {param}"))?;
    let pg = postgres_in(namespace, Path::new(dir)).start().await?;
    let image = image_of(&pg).await?;
    common::report(&[&image]);
    common::wait_for_parent(CHILD_DEADLINE).await?;
    Ok(())
}
