//! Suite `snapshot`: docker-commit snapshots of the test PostgreSQL image holding 100k rows.
//!
//! `cargo bench -p seaworthy --bench snapshot` (needs `cargo xtask images`).
//!
//! The server runs as tests run it, durability off (`synchronous_commit=off` among others), and
//! the definition declares `CHECKPOINT` as its snapshot flush: without it, a snapshot taken right
//! after the load (one transaction, whose commit's WAL the server still holds in memory) restores
//! without the `rows` table.
//!
//! * `postgres.snapshot`: a paused snapshot (the flush, then commit + archive of the data volume).
//! * `postgres.restore`: restore of that snapshot until PostgreSQL is ready again, against a fresh
//!   start-to-ready of the same image (initdb, first start) as the baseline. Before each run a
//!   test's damage is done (10,000 rows deleted, a table created, untimed); after it the rows are
//!   checked back (100,000 rows, no extra table; untimed).
//! * `postgres.restore.background`: the work a restore leaves to the background (removing the
//!   container it replaced), timed from the end of the restore until that container is gone; each
//!   run waits for it, so no restore overlaps the last one's removal.
//! * `postgres.restore_standby`: the same restore with a warm standby ready: a swap (target ≤ 50 ms).
//!   The container has no name, so it is on the default bridge and the swap moves no network
//!   endpoint. The same damage before and check after each run (untimed).
//! * `postgres.restore_standby.background`: the work the swap leaves to the background, timed from
//!   the end of the swap until the next standby is ready (what a suite whose tests are shorter
//!   than this would wait for at its next restore).
//! * `postgres.restore_standby_named`: the same for a container with a name and an alias on the
//!   session network: the swap also moves those (disconnect, connect).
//! * `postgres.restart`: `docker restart` of the same container until ready, for reference.

mod common;

use std::time::{Duration, Instant};

use seaworthy::{Container, ContainerDefinition, Exec, Wait};
use seaworthy_benchkit::{BenchResult, Suite, Target};

fn postgres() -> ContainerDefinition {
    seaworthy_testkit::postgres::durability_off(
        ContainerDefinition::new("seaworthy-test/postgres").with_env("POSTGRES_PASSWORD", "bench"),
        &[],
    )
    .with_port(5432)
    .with_wait(Wait::tcp(5432))
    .with_startup_timeout(Duration::from_secs(120))
}

/// Waits until `psql` inside the container answers (the server accepts queries).
async fn until_ready(c: &Container) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = c
            .exec(Exec::new([
                "pg_isready",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ]))
            .await
            .expect("pg_isready");
        if out.success() {
            return;
        }
        assert!(Instant::now() < deadline, "PostgreSQL did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `sql` with psql in the container and returns its unaligned output.
async fn psql(c: &Container, sql: &str) -> String {
    let out = c
        .exec(Exec::new(["psql", "-U", "postgres", "-qAt", "-c", sql]))
        .await
        .expect("psql");
    assert!(out.success(), "{sql}: {}", out.stderr_text());
    out.stdout_text().trim().to_string()
}

/// What a test does to the data before a restore: deletes rows, creates a table.
async fn damage(c: &Container) {
    psql(
        c,
        "DELETE FROM rows WHERE id <= 10000; CREATE TABLE IF NOT EXISTS scratch (id int);",
    )
    .await;
}

/// Checks the snapshot's data is back: all 100,000 rows, no table the test created.
async fn assert_restored(c: &Container, after: &str) {
    until_ready(c).await;
    assert_eq!(
        psql(
            c,
            "SELECT count(*) || ',' || (SELECT count(*) FROM pg_tables WHERE tablename = 'scratch') FROM rows"
        )
        .await,
        "100000,0",
        "after {after}: the snapshot's 100,000 rows and no scratch table"
    );
}

async fn fresh_start() -> Container {
    let c = postgres().start().await.expect("start postgres");
    until_ready(&c).await;
    c
}

/// Starts `def` and loads the 100k rows.
async fn loaded(def: ContainerDefinition) -> Container {
    let c = def.start().await.expect("start postgres");
    until_ready(&c).await;
    let out = c
        .exec(Exec::new([
            "psql",
            "-U",
            "postgres",
            "-q",
            "-c",
            "CREATE TABLE rows (id bigint PRIMARY KEY, payload text); \
             INSERT INTO rows SELECT g, md5(g::text) FROM generate_series(1, 100000) g; CHECKPOINT;",
        ]))
        .await
        .expect("load rows");
    assert!(out.success(), "{}", out.stderr_text());
    c
}

/// Adds the background work a measured step left, one sample per run of 10 (the warm-up run of a
/// full run is recorded too and left out), with a note saying what was timed.
fn push_background(
    suite: &mut Suite,
    name: &str,
    samples: &std::sync::Mutex<Vec<Duration>>,
    note: &str,
) {
    let samples = samples.lock().unwrap().clone();
    let runs = samples.len().min(if suite.is_full() { 10 } else { 1 });
    suite.push(BenchResult::from_samples(
        name,
        &samples[samples.len() - runs..],
        None,
    ));
    suite.annotate("note", note);
}

fn main() {
    // `RUST_LOG=seaworthy=debug` shows the steps of each restore (what it removed, created and
    // started, with times) on stderr.
    common::trace_from_env();
    let mut suite = Suite::new("snapshot");
    // `SEAWORTHY_BENCH_ONLY=postgres.restore` measures only the results named (comma-separated;
    // a snapshot to restore is taken untimed when `postgres.snapshot` is not among them).
    let only = std::env::var("SEAWORTHY_BENCH_ONLY").ok();
    let wanted = |name: &str| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|o| o.trim() == name))
    };
    let pg = suite.block_on(loaded(postgres()));
    let pg = std::sync::Arc::new(pg);

    let snapshot = std::sync::Arc::new(std::sync::Mutex::new(None));
    if wanted("postgres.snapshot") {
        let (pg, slot) = (pg.clone(), snapshot.clone());
        let mut n = 0;
        suite.measure("postgres.snapshot", 10, move || {
            n += 1;
            let (pg, slot) = (pg.clone(), slot.clone());
            async move {
                let t = Instant::now();
                let s = pg.snapshot(&format!("bench-{n}")).await.expect("snapshot");
                let elapsed = t.elapsed();
                *slot.lock().unwrap() = Some(s);
                elapsed
            }
        });
    } else {
        let s = suite.block_on(pg.snapshot("bench")).expect("snapshot");
        *snapshot.lock().unwrap() = Some(s);
    }
    let snapshot = snapshot.lock().unwrap().clone().expect("a snapshot");
    let snapshot_for_standby = snapshot.clone();
    if wanted("postgres.snapshot") {
        let bytes: u64 = snapshot.volumes.iter().map(|v| v.bytes).sum();
        suite.annotate("volume_bytes", bytes);
    }

    if wanted("postgres.restore") {
        let pg = pg.clone();
        let background = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = background.clone();
        suite.compare(
            "postgres.restore",
            "fresh start-to-ready of the same image",
            10,
            move || {
                let (pg, snapshot, recorded) = (pg.clone(), snapshot.clone(), recorded.clone());
                async move {
                    damage(&pg).await;
                    let t = Instant::now();
                    pg.restore(&snapshot).await.expect("restore");
                    until_ready(&pg).await;
                    let elapsed = t.elapsed();
                    // The replaced container is removed in the background: time it until gone
                    // (untimed for the restore, reported below), so no run overlaps the last.
                    let t = Instant::now();
                    let session = pg.session().clone();
                    let settled = tokio::task::spawn_blocking(move || {
                        session.wait_for_background_removals(Duration::from_secs(120))
                    })
                    .await
                    .expect("the wait for background removals");
                    assert!(
                        settled,
                        "the replaced container is still being removed after 120 s"
                    );
                    recorded.lock().unwrap().push(t.elapsed());
                    assert_restored(&pg, "the restore").await;
                    elapsed
                }
            },
            || async {
                let t = Instant::now();
                let c = fresh_start().await;
                let elapsed = t.elapsed();
                c.remove().await.expect("remove");
                elapsed
            },
        );
        suite.target(Target::RatioAtMost(1.2));
        push_background(
            &mut suite,
            "postgres.restore.background",
            &background,
            "from the end of the restore until the container it replaced is removed",
        );
    }
    if wanted("postgres.restore_standby") {
        // A warm standby of the snapshot: the restore is a swap. Each run waits (untimed) for the
        // next standby to be ready, as a test suite does between two tests.
        let pg = pg.clone();
        let snap = snapshot_for_standby.clone();
        suite.block_on(async {
            pg.enable_standby(&snap).await.expect("enable standby");
        });
        let background = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = background.clone();
        suite.measure("postgres.restore_standby", 10, move || {
            let (pg, snap, recorded) = (pg.clone(), snap.clone(), recorded.clone());
            async move {
                pg.wait_for_standby().await.expect("standby ready");
                damage(&pg).await;
                let t = Instant::now();
                pg.restore(&snap).await.expect("restore by swap");
                let swap = t.elapsed();
                let t = Instant::now();
                pg.wait_for_standby().await.expect("the next standby");
                recorded.lock().unwrap().push(t.elapsed());
                assert_restored(&pg, "the swap").await;
                swap
            }
        });
        suite.target(Target::MedianAtMostMs(50.0));
        push_background(
            &mut suite,
            "postgres.restore_standby.background",
            &background,
            "from the end of the swap until the next standby is ready",
        );
    }
    if wanted("postgres.restore_standby_named") {
        // The same swap for a container other containers reach by name: the standby also takes
        // over its name and alias on the session network (which this container creates; the
        // unnamed one above was alone on the default bridge until now).
        let named = suite.block_on(loaded(postgres().with_name("db").with_alias("database")));
        let named = std::sync::Arc::new(named);
        let snap = suite.block_on(async {
            let snap = named.snapshot("bench-named").await.expect("snapshot");
            named.enable_standby(&snap).await.expect("enable standby");
            snap
        });
        suite.measure("postgres.restore_standby_named", 10, move || {
            let (named, snap) = (named.clone(), snap.clone());
            async move {
                named.wait_for_standby().await.expect("standby ready");
                let t = Instant::now();
                named.restore(&snap).await.expect("restore by swap");
                t.elapsed()
            }
        });
    }
    if wanted("postgres.restart") {
        let pg = pg.clone();
        suite.measure("postgres.restart", 5, move || {
            let pg = pg.clone();
            async move {
                let t = Instant::now();
                pg.session()
                    .engine()
                    .docker()
                    .restart_container(
                        pg.name(),
                        None::<seaworthy::bollard::query_parameters::RestartContainerOptions>,
                    )
                    .await
                    .expect("restart");
                until_ready(&pg).await;
                t.elapsed()
            }
        });
    }
    suite.finish();
}
