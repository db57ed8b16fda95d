//! Suite `reuse`: doing less at startup. A PostgreSQL fixture whose baseline is cached across
//! runs, or whose container is reused from an earlier run, against the same fixture built from
//! nothing; an edit-and-test loop of `cargo test` runs.
//!
//! The fixture is what the issue describes: 40 migration files (tables, indexes, a few PL/pgSQL
//! functions) and 10,000 seed rows, applied with `with_migrations`.
//!
//! * `postgres.first_ready`: from `start()` to a fixture at its baseline (connected, its clean
//!   prepared), with the baseline cache warm (the image built before the timed runs), against the
//!   same definition with the cache off: `initdb`, start, every migration, the seed, the baseline
//!   template. Both sides hand out the same fixture: the seed rows are checked after each start
//!   (untimed). Each started fixture is dropped (its removal runs in the background, untimed).
//! * `postgres.first_handout_reused`: with reuse on, a later run's first hand-out
//!   (`Shared::fresh()` of a new `Shared`, as in a new process): the container an earlier run
//!   left (with a row written into it) is found by its key, checked, cleaned and handed out;
//!   against a run's first hand-out without reuse (the fixture started). Before each sample the
//!   state file naming the run that took the container last is removed, so the sample sees
//!   what a new `cargo test` sees (another run's container: attach, then the take-over clean),
//!   not this process's own run. The process's session (engine connection, once per process
//!   whatever the fixtures) is not part of either. The started side's fixture is removed after
//!   each of its samples, untimed and waited for, so no sample shares the machine with the
//!   removal of the one before (a later run does not).
//! * `loop20`: a 20-test crate run twice with `cargo test`, the second run's wall time against
//!   the first's (see [`loop20`]).
//! * `rabbitmq.first_ready`: the same as `postgres.first_ready` for a RabbitMQ fixture whose init steps import definitions
//!   (see [`rabbitmq`]).
//!
//! `cargo bench -p seaworthy-compare --bench reuse` (needs `cargo xtask images`); the cached
//! images live in a namespace of the run's own and are removed at the end.
//! `SEAWORTHY_BENCH_ONLY=postgres.first_handout_reused` measures only the results named
//! (comma-separated: `postgres.first_ready`, `postgres.first_handout_reused`, `loop20`,
//! `rabbitmq.first_ready`); the suite's JSON report then holds only those, so keep it for
//! tracing one result, not for the record. `RUST_LOG=seaworthy=debug,seaworthy_postgres=debug`
//! prints the library's events with their times on stderr.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::OnceLock;

use seaworthy::baseline_cache::{self, BaselineCache, PruneOptions};
use seaworthy::reuse::{self, ReuseGcOptions};
use seaworthy::{ContainerFixtureDefinition, FixtureDefinition, Session, Shared};
use seaworthy_benchkit::{Suite, Target};
use seaworthy_postgres::Postgres;

#[path = "reuse/loop20.rs"]
mod loop20;
#[path = "reuse/rabbitmq.rs"]
mod rabbitmq;

const RUNS: usize = 10;
const MIGRATIONS: usize = 40;
const SEED_ROWS: i64 = 10_000;

/// Writes the 40 migrations: 36 tables with an index each, 3 functions, and the seed.
fn write_migrations(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the migrations directory");
    for i in 1..=MIGRATIONS - 4 {
        let sql = format!(
            "CREATE TABLE t{i:02} (id bigserial PRIMARY KEY, owner_id bigint, name text NOT NULL, \
             amount numeric(12, 2) DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now());\n\
             CREATE INDEX t{i:02}_owner ON t{i:02} (owner_id, created_at);\n"
        );
        std::fs::write(dir.join(format!("{i:03}_t{i:02}.sql")), sql).expect("write a migration");
    }
    for (n, i) in (MIGRATIONS - 3..MIGRATIONS).enumerate() {
        let sql = format!(
            "CREATE FUNCTION total_{n}(owner bigint) RETURNS numeric LANGUAGE plpgsql AS $$\n\
             BEGIN RETURN (SELECT coalesce(sum(amount), 0) FROM t01 WHERE owner_id = owner) + {n}; END $$;\n"
        );
        std::fs::write(dir.join(format!("{i:03}_function_{n}.sql")), sql)
            .expect("write a migration");
    }
    let seed = format!(
        "INSERT INTO t01 (owner_id, name, amount) \
         SELECT g % 100, 'row ' || g, g / 100.0 FROM generate_series(1, {SEED_ROWS}) AS g;\n"
    );
    std::fs::write(dir.join(format!("{MIGRATIONS:03}_seed.sql")), seed).expect("write the seed");
}

/// Starts `def`, checks the seed is there (untimed), drops it; returns the time to a fixture.
async fn first_ready(def: &Postgres) -> Duration {
    let t = Instant::now();
    let pg = def.start().await.expect("a PostgreSQL fixture");
    let elapsed = t.elapsed();
    let client = pg.client().await.expect("client");
    let rows: i64 = client
        .query_one("SELECT count(*) FROM t01", &[])
        .await
        .expect("count the seed")
        .get(0);
    assert_eq!(rows, SEED_ROWS, "the fixture does not hold the seed rows");
    drop(client);
    drop(pg);
    elapsed
}

/// Removes every cached image of `namespace`.
async fn remove_cached(namespace: &str) {
    let session = Session::global().await.expect("the global session");
    let options = PruneOptions {
        namespace: Some(namespace.to_string()),
        all: true,
        ..Default::default()
    };
    let (_, errors) = baseline_cache::prune(session.engine(), &options)
        .await
        .expect("list the cached images");
    assert!(errors.is_empty(), "cached images not removed: {errors:?}");
}

/// Warms the cache before the timed runs: `first_start` (the first start of the cached
/// definition) builds the image. Returns how long that took, which it prints naming `what`.
fn build_cache(suite: &Suite, what: &str, first_start: impl Future) -> Duration {
    let built = suite.block_on(async {
        let t = Instant::now();
        first_start.await;
        t.elapsed()
    });
    eprintln!("  ({what} was built in {built:.2?})");
    built
}

/// After a group's timed runs: waits for their fixtures' removals, then removes the cached
/// images of `namespace`.
fn remove_cached_after_runs(suite: &Suite, namespace: &str) {
    suite.block_on(async {
        let session = Session::global().await.expect("the global session");
        session.wait_for_background_removals(Duration::from_secs(60));
        remove_cached(namespace).await;
    });
}

/// Removes the reused containers labelled `GROUP_LABEL=group`; returns how many there were.
async fn remove_reused(group: &str) -> usize {
    let session = Session::global().await.expect("the global session");
    let options = ReuseGcOptions {
        all: true,
        labels: vec![(GROUP_LABEL.to_string(), group.to_string())],
        ..Default::default()
    };
    let (removed, errors) = reuse::collect(session.engine(), &options)
        .await
        .expect("list the reused containers");
    assert!(
        errors.is_empty(),
        "reused containers not removed: {errors:?}"
    );
    removed.len()
}

/// The definition of `postgres.first_handout_reused` (set once in `main`).
static REUSED: OnceLock<Postgres> = OnceLock::new();

fn reused() -> Postgres {
    REUSED.get().expect("the reused definition").clone()
}

/// The label by which the reused containers of a run of the suite are removed at the end.
const GROUP_LABEL: &str = "io.seaworthy.bench.group";

/// The state file in which reuse records the run that took the reused container of `def`
/// last (`<state dir>/reuse-<hash of the key>.run`): a process of that run takes the container
/// as it is, any other run cleans it first.
fn taken_by_file(def: &Postgres) -> std::path::PathBuf {
    let hash = seaworthy::kit::key_hash(&ContainerFixtureDefinition::key(def));
    seaworthy::gc::state_dir().join(format!("reuse-{hash}.run"))
}

/// A later run's first hand-out of a reused fixture: a new `Shared` (as a new process has),
/// whose `fresh()` finds the container the earlier run left, checks it, cleans it (the earlier
/// run left a row, written untimed before) and hands it out. The file naming this process's run
/// as the last to take it is removed first (untimed), so the take-over is a later run's.
async fn first_handout_reused() -> Duration {
    let dirty = Shared::per_run(reused);
    dirty
        .fresh()
        .await
        .expect("the reused fixture")
        .client()
        .await
        .expect("client")
        .batch_execute("INSERT INTO t02 (name) VALUES ('left by the last run')")
        .await
        .expect("dirty the fixture");
    drop(dirty);
    // A later run has another run id: remove the record of this one, as if it had ended. (The
    // file must be there: if reuse stops writing it here, this bench must be told, not fooled.)
    let taken_by = taken_by_file(&reused());
    std::fs::remove_file(&taken_by).unwrap_or_else(|e| {
        panic!(
            "remove {} (the reused fixture's last run): {e}",
            taken_by.display()
        )
    });
    let run = Shared::per_run(reused);
    let t = Instant::now();
    let pg = run.fresh().await.expect("the reused fixture");
    let elapsed = t.elapsed();
    let rows: i64 = pg
        .client()
        .await
        .expect("client")
        .query_one("SELECT count(*) FROM t02", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 0, "the reused fixture was not cleaned");
    elapsed
}

/// A run's first hand-out without reuse: the fixture is started.
async fn first_handout_started() -> Duration {
    let run = Shared::per_process(|| REUSED.get().expect("defined").clone().with_reuse(false));
    let t = Instant::now();
    let pg = run.fresh().await.expect("a started fixture");
    let elapsed = t.elapsed();
    drop(pg);
    drop(run);
    // Untimed: the started fixture's removal runs in the background; the next sample (of either
    // side) does not share the machine with it, as a later run does not.
    let session = Session::global().await.expect("the global session");
    session.wait_for_background_removals(Duration::from_secs(60));
    elapsed
}

/// Whether the result `name` is measured (`SEAWORTHY_BENCH_ONLY` names those that are).
fn wanted(name: &str) -> bool {
    std::env::var("SEAWORTHY_BENCH_ONLY")
        .ok()
        .is_none_or(|only| only.split(',').any(|o| o.trim() == name))
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut suite = Suite::new("reuse");
    let namespace = format!("bench-reuse-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("sw-{namespace}"));
    write_migrations(&dir);
    if wanted("postgres.first_ready") {
        first_ready_group(&mut suite, &dir, &namespace);
    }
    if wanted("postgres.first_handout_reused") {
        first_handout_reused_group(&mut suite, &dir);
    }
    if wanted("loop20") {
        loop20::loop20(&mut suite, &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Full runs only: the broker's cache build and two starts add most of a minute to the
    // smoke run under `cargo test`, and seaworthy-rabbitmq's baseline_cache test covers the cache.
    if suite.is_full() && wanted("rabbitmq.first_ready") {
        rabbitmq::first_ready_group(&mut suite);
    }
    suite.finish();
}

/// `postgres.first_ready`: the cached baseline's start against a start from nothing.
fn first_ready_group(suite: &mut Suite, dir: &Path, namespace: &str) {
    let cold = Postgres::default()
        .with_database("bench")
        .with_migrations(dir)
        .with_baseline_cache(BaselineCache::off());
    let warm = cold
        .clone()
        .with_baseline_cache(BaselineCache::on().with_namespace(namespace));
    let built = build_cache(suite, "the cached baseline", first_ready(&warm));
    let (warm, cold) = (&warm, &cold);
    suite.compare(
        "postgres.first_ready",
        "the same fixture with no cache (initdb, 40 migrations, 10,000 seed rows)",
        RUNS,
        || first_ready(warm),
        || first_ready(cold),
    );
    suite.target(Target::RatioAtMost(0.3));
    suite.annotate("cache_build_ms", built.as_secs_f64() * 1000.0);
    remove_cached_after_runs(suite, namespace);
}

/// `postgres.first_handout_reused`: a later run's first hand-out of a reused fixture against a
/// run's first hand-out of a started one.
fn first_handout_reused_group(suite: &mut Suite, dir: &Path) {
    let group = format!("reuse-{}", std::process::id());
    let definition = Postgres::default()
        .with_database("bench")
        .with_migrations(dir)
        .with_baseline_cache(BaselineCache::off())
        .with_container(|c| c.with_label(GROUP_LABEL, group.clone()))
        .with_reuse(true);
    REUSED.set(definition).expect("set once");
    // The earlier run: creates the reused fixture (untimed).
    suite.block_on(async {
        drop(
            Shared::per_run(reused)
                .fresh()
                .await
                .expect("the reused fixture"),
        );
    });
    suite.compare(
        "postgres.first_handout_reused",
        "a run's first hand-out without reuse (the fixture started: initdb, 40 migrations, 10,000 seed rows)",
        RUNS,
        first_handout_reused,
        first_handout_started,
    );
    suite.target(Target::MedianAtMostMs(50.0));
    suite.block_on(async {
        let session = Session::global().await.expect("the global session");
        session.wait_for_background_removals(Duration::from_secs(60));
        assert_eq!(remove_reused(&group).await, 1, "one reused container");
    });
}
