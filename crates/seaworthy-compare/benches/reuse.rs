//! Suite `reuse`: starting a PostgreSQL fixture whose baseline is cached across runs, against the
//! same fixture built from nothing.
//!
//! The fixture is what the issue describes: 40 migration files (tables, indexes, a few PL/pgSQL
//! functions) and 10,000 seed rows, applied with `with_migrations`.
//!
//! * `postgres.first_ready`: from `start()` to a fixture at its baseline (connected, its clean
//!   prepared), with the baseline cache warm (the image built before the timed runs), against the
//!   same definition with the cache off: `initdb`, start, every migration, the seed, the baseline
//!   template. Both sides hand out the same fixture: the seed rows are checked after each start
//!   (untimed). Each started fixture is dropped (its removal runs in the background, untimed).
//! * `rabbitmq.first_ready`: the same for a RabbitMQ fixture whose init steps import definitions
//!   (see [`rabbitmq`]).
//!
//! `cargo bench -p seaworthy-compare --bench reuse` (needs `cargo xtask images`); the cached
//! images live in a namespace of the run's own and are removed at the end.

use std::path::Path;
use std::time::{Duration, Instant};

use seaworthy::baseline_cache::{self, BaselineCache, PruneOptions};
use seaworthy::{FixtureDefinition, Session};
use seaworthy_benchkit::{Suite, Target};
use seaworthy_postgres::Postgres;

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

fn main() {
    let mut suite = Suite::new("reuse");
    let namespace = format!("bench-reuse-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("sw-{namespace}"));
    write_migrations(&dir);
    let cold = Postgres::default()
        .with_database("bench")
        .with_migrations(&dir)
        .with_baseline_cache(BaselineCache::off());
    let warm = cold
        .clone()
        .with_baseline_cache(BaselineCache::on().with_namespace(&namespace));
    // The cache is warm before the timed runs: the first start builds the image.
    let built = suite.block_on(async {
        let t = Instant::now();
        first_ready(&warm).await;
        t.elapsed()
    });
    eprintln!("  (the cached baseline was built in {built:.2?})");
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
    suite.block_on(async {
        let session = Session::global().await.expect("the global session");
        session.wait_for_background_removals(Duration::from_secs(60));
        let options = PruneOptions {
            namespace: Some(namespace.clone()),
            all: true,
            ..Default::default()
        };
        let (_, errors) = baseline_cache::prune(session.engine(), &options)
            .await
            .expect("list the cached images");
        assert!(errors.is_empty(), "cached images not removed: {errors:?}");
    });
    let _ = std::fs::remove_dir_all(&dir);
    rabbitmq::first_ready_group(&mut suite);
    suite.finish();
}
