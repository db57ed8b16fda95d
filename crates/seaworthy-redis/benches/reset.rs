//! Suite `reset`, Redis part: `clean()` of a server holding 10,000 keys against what the Python
//! Seaworthy does (`redis-cli FLUSHALL` by docker exec), and a container restart until ready as
//! a reference figure.
//!
//! `cargo bench -p seaworthy-redis --bench reset` (needs `cargo xtask images`). Results are merged
//! into `target/seaworthy-bench/reset.json` with the other fixtures'.

use std::time::{Duration, Instant};

use seaworthy::{Exec, Fixture, FixtureDefinition};
use seaworthy_benchkit::Suite;
use seaworthy_redis::redis;
use seaworthy_redis::{Redis, RedisFixture};

const KEYS: usize = 10_000;
const RUNS: usize = 30;

/// Writes `KEYS` keys into database 0 (outside the timing), in batches of 1,000 per `MSET`.
async fn fill(redis: &RedisFixture) {
    let mut conn = redis.connection_manager();
    for batch in 0..KEYS / 1000 {
        let mut mset = redis::cmd("MSET");
        for k in 0..1000 {
            mset.arg(format!("key:{batch}:{k}")).arg("value");
        }
        let _: () = mset.query_async(&mut conn).await.expect("MSET");
    }
    let size: usize = redis::cmd("DBSIZE")
        .query_async(&mut conn)
        .await
        .expect("DBSIZE");
    assert_eq!(size, KEYS);
}

async fn assert_empty(redis: &RedisFixture) {
    let mut conn = redis.connection_manager();
    let size: usize = redis::cmd("DBSIZE")
        .query_async(&mut conn)
        .await
        .expect("DBSIZE");
    assert_eq!(size, 0, "the reset left keys behind");
}

fn main() {
    let mut suite = Suite::new("reset");
    let definition = Redis::new();
    let redis = suite
        .block_on(definition.start())
        .expect("a Redis fixture (cargo xtask images)");
    // Warm up both paths.
    suite.block_on(async {
        fill(&redis).await;
        redis.clean().await.expect("clean");
        redis
            .container()
            .exec(Exec::new(["redis-cli", "FLUSHALL"]))
            .await
            .expect("redis-cli");
    });

    let fixture = &redis;
    suite.compare(
        "redis.clean",
        "redis-cli FLUSHALL by docker exec",
        RUNS,
        move || async move {
            fill(fixture).await;
            let t = Instant::now();
            fixture.clean().await.expect("clean");
            let elapsed = t.elapsed();
            assert_empty(fixture).await;
            elapsed
        },
        move || async move {
            fill(fixture).await;
            let t = Instant::now();
            let out = fixture
                .container()
                .exec(Exec::new(["redis-cli", "FLUSHALL"]))
                .await
                .expect("docker exec redis-cli");
            let elapsed = t.elapsed();
            assert_eq!(
                out.stdout_text().trim(),
                "OK",
                "redis-cli FLUSHALL: {}",
                out.stderr_text()
            );
            assert_empty(fixture).await;
            elapsed
        },
    );
    suite.annotate("keys", KEYS);
    drop(redis);

    // Restart (stop, start, wait for PONG) of a plain container from the same definition.
    let container = suite
        .block_on(definition.container_definition().start())
        .expect("a Redis container");
    let ready = definition.readiness();
    let container = &container;
    let ready = &ready;
    suite.measure("redis.restart", RUNS, move || async move {
        let t = Instant::now();
        container.stop(Duration::from_secs(10)).await.expect("stop");
        container.start().await.expect("start");
        container
            .wait_for(ready, Duration::from_secs(60))
            .await
            .expect("PONG after restart");
        t.elapsed()
    });
    suite.annotate(
        "note",
        format!("stop + start + PING until PONG; {RUNS} runs"),
    );
    suite.finish();
}
