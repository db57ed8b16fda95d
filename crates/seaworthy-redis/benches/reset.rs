//! Suite `reset.redis`: `clean()` of a server holding 10,000 keys, against the best reset a user
//! would write over an open connection, and against what the Python Seaworthy does as an extra row.
//!
//! * `redis.clean`: against one pipelined round trip over an open connection doing what
//!   `clean()` resets: `CLIENT KILL TYPE pubsub`, `FLUSHALL`, `SCRIPT FLUSH`, `FUNCTION FLUSH`
//!   (`clean()` also reads the configuration and users, to restore what a test changed).
//! * `redis.clean.vs_exec`: against `redis-cli FLUSHALL` by docker exec (the Python Seaworthy).
//! * `redis.restart` (reference): stop, start and `PING` until `PONG`.
//!
//! Both sides reset the same server, refilled with the 10,000 keys before every run (untimed)
//! and checked empty after it. `cargo bench -p seaworthy-redis --bench reset` (needs `cargo
//! xtask images`); results in `target/seaworthy-bench/reset.redis.json`.

use std::time::{Duration, Instant};

use seaworthy::{ContainerFixtureDefinition, Exec, Fixture, FixtureDefinition};
use seaworthy_benchkit::{Suite, Target};
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

/// Fills the server (untimed), times `clean()`, checks it is empty (untimed).
async fn timed_clean(redis: &RedisFixture) -> Duration {
    fill(redis).await;
    let t = Instant::now();
    redis.clean().await.expect("clean");
    let elapsed = t.elapsed();
    assert_empty(redis).await;
    elapsed
}

/// A user's full reset over an open connection: one pipelined round trip.
async fn pipelined_reset(conn: &mut redis::aio::ConnectionManager) {
    let answers: Vec<redis::Value> = redis::pipe()
        .cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .cmd("FLUSHALL")
        .cmd("SCRIPT")
        .arg("FLUSH")
        .cmd("FUNCTION")
        .arg("FLUSH")
        .query_async(conn)
        .await
        .expect("the pipelined reset");
    assert_eq!(answers.len(), 4);
}

fn main() {
    let mut suite = Suite::new("reset.redis");
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
    // The user's own connection, opened once.
    let user_conn = fixture.connection_manager();
    suite.compare(
        "redis.clean",
        "CLIENT KILL TYPE pubsub + FLUSHALL + SCRIPT FLUSH + FUNCTION FLUSH, pipelined over an open connection",
        RUNS,
        move || timed_clean(fixture),
        || {
            let mut conn = user_conn.clone();
            async move {
                fill(fixture).await;
                let t = Instant::now();
                pipelined_reset(&mut conn).await;
                let elapsed = t.elapsed();
                assert_empty(fixture).await;
                elapsed
            }
        },
    );
    suite.target(Target::MedianAtMostMs(5.0));
    suite.annotate("keys", KEYS);

    suite.compare(
        "redis.clean.vs_exec",
        "redis-cli FLUSHALL by docker exec (the Python Seaworthy)",
        RUNS,
        move || timed_clean(fixture),
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
