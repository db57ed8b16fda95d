//! Load: many containers at once, and long runs of `clean()` on the native fixtures.
//!
//! * 32 containers started and removed concurrently, without error or leak (always runs).
//! * Cycles of work + `clean()` on each native fixture (PostgreSQL, Redis, RabbitMQ), with this
//!   process's memory, file descriptors and sockets, and the server's client connections, read
//!   before, half way and after: they must stay flat. Every run (CI included) does 100 cycles per
//!   fixture after 20 warm-up cycles, with the same checks; `SEAWORTHY_LOAD=1` does the full
//!   1,000 after 50 (minutes long). `cargo test -p seaworthy-compare --test load -- --nocapture`
//!   prints the figures.
//!
//! The tests of this binary take turns (a lock), so one's containers don't show in the other's
//! figures.

use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use seaworthy::{
    ContainerDefinition, Exec, Fixture, FixtureDefinition, ResourceKind, Session, Wait,
};
use seaworthy_compare::stats::ProcessStats;
use seaworthy_compare::{leaks, BUSYBOX};
use seaworthy_postgres::{Postgres, PostgresFixture};
use seaworthy_rabbitmq::{RabbitMq, RabbitMqFixture};
use seaworthy_redis::{Redis, RedisFixture};

static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Cycles and warm-up cycles per fixture: the full run with `SEAWORTHY_LOAD=1`, else the
/// reduced one.
fn cycles() -> (usize, usize) {
    if load_requested() {
        (1_000, 50)
    } else {
        (100, 20)
    }
}

#[tokio::test]
async fn thirty_two_containers_start_and_are_removed_concurrently() -> anyhow::Result<()> {
    let _turn = TURNS.lock().await;
    let session = leaks::isolated_session().await?;
    let started = Instant::now();
    let containers = futures_util::future::try_join_all((0..32).map(|i| {
        ContainerDefinition::new(BUSYBOX)
            .with_name(format!("load-{i}"))
            .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
            .with_wait(Wait::log("^ready$"))
            // 32 starts share two cores with whatever else runs: allow for it.
            .with_startup_timeout(Duration::from_secs(180))
            .start_in(&session)
    }))
    .await?;
    let ready_after = started.elapsed();
    assert_eq!(session.live_count(ResourceKind::Container), 32);
    let mut ids: Vec<String> = containers.iter().map(|c| c.id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 32, "32 distinct containers");
    // Each is up and reachable by name from another on the session network.
    let checks = containers.iter().enumerate().map(|(i, c)| {
        let peer = format!("load-{}", (i + 1) % 32);
        async move {
            c.exec(Exec::new(["ping", "-c", "1", "-W", "5", &peer]))
                .await
        }
    });
    for out in futures_util::future::try_join_all(checks).await? {
        assert!(out.success(), "{}", out.stderr_text());
    }
    let removing = Instant::now();
    futures_util::future::try_join_all(containers.into_iter().map(|c| c.remove())).await?;
    let removed_after = removing.elapsed();
    eprintln!(
        "32 containers: all ready after {ready_after:.2?}, all removed after {removed_after:.2?}"
    );
    assert_eq!(session.live_count(ResourceKind::Container), 0);
    if let Err(left) = leaks::close_session(&session).await {
        panic!("{left}");
    }
    Ok(())
}

/// Whether the long load runs are asked for.
fn load_requested() -> bool {
    std::env::var("SEAWORTHY_LOAD").is_ok_and(|v| v == "1" || v == "true")
}

/// Figures read at one point of a run.
#[derive(Debug, Clone, Copy)]
struct Reading {
    process: ProcessStats,
    server_connections: u64,
}

/// Runs `cycle` for the warm-up cycles, then for the measured ones reading figures at the start,
/// half way and at the end, and checks they are flat. Prints the figures, and returns them.
async fn measure<C, CF, S, SF>(what: &str, mut cycle: C, mut server: S) -> anyhow::Result<String>
where
    C: FnMut(usize) -> CF,
    CF: Future<Output = anyhow::Result<()>>,
    S: FnMut() -> SF,
    SF: Future<Output = anyhow::Result<u64>>,
{
    let (cycles, warm_up) = cycles();
    for i in 0..warm_up {
        cycle(i).await?;
    }
    let mut read = async || -> anyhow::Result<Reading> {
        Ok(Reading {
            process: ProcessStats::now()?,
            server_connections: server().await?,
        })
    };
    let start = read().await?;
    let started = Instant::now();
    let mut half = start;
    let mut slowest = Duration::ZERO;
    for i in 0..cycles {
        if i == cycles / 2 {
            half = read().await?;
        }
        let t = Instant::now();
        cycle(i).await?;
        slowest = slowest.max(t.elapsed());
    }
    let took = started.elapsed();
    let end = read().await?;
    let whole = end.process.since(&start.process);
    let second_half = end.process.since(&half.process);
    let mut report = String::new();
    writeln!(
        report,
        "{what}: {cycles} cycles after {warm_up} warm-up cycles in {took:.1?} ({:.1} ms each, slowest {slowest:.1?})",
        took.as_secs_f64() * 1e3 / cycles as f64
    )?;
    writeln!(report, "  before: {}", start.process)?;
    writeln!(report, "  after:  {}", end.process)?;
    writeln!(
        report,
        "  change: {whole} (second half: RSS {:+.1} MiB)",
        second_half.rss_kib as f64 / 1024.0
    )?;
    writeln!(
        report,
        "  server connections: {} before, {} half way, {} after",
        start.server_connections, half.server_connections, end.server_connections
    )?;
    // Straight to the process's stderr, past the test harness's capture: the CI log shows the
    // figures of a passing run too.
    let _ = std::io::stderr().lock().write_all(report.as_bytes());
    // A leak of one descriptor, socket or connection per cycle would show as hundreds.
    assert!(whole.open_fds <= 8, "{what}: descriptors grew\n{report}");
    assert!(whole.sockets <= 6, "{what}: sockets grew\n{report}");
    assert!(whole.threads <= 4, "{what}: threads grew\n{report}");
    assert!(
        end.server_connections <= start.server_connections + 2,
        "{what}: server connections grew\n{report}"
    );
    // Allocators settle during the first cycles; after that memory must stay flat: at most
    // 16 KiB per cycle over the second half (8 MiB over 500 cycles), and never more than the
    // 2 MiB allocator noise allowed to a short run.
    let allowed_kib = (16 * cycles as i64 / 2).max(2 * 1024);
    assert!(
        second_half.rss_kib <= allowed_kib,
        "{what}: memory grew over the second half\n{report}"
    );
    Ok(report)
}

async fn postgres_cycles(session: &Session) -> anyhow::Result<String> {
    let pg: PostgresFixture = Postgres::default()
        .with_init_sql("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")
        .with_pool_size(0)
        .start_in(session)
        .await?;
    let report = measure(
        "postgres",
        |i| {
            let pg = pg.clone();
            async move {
                let client = pg.client().await?;
                client
                    .execute(
                        "INSERT INTO items (name) SELECT $1 || g FROM generate_series(1, 10) g",
                        &[&format!("cycle {i} item ")],
                    )
                    .await?;
                let n: i64 = client
                    .query_one("SELECT count(*) FROM items", &[])
                    .await?
                    .get(0);
                anyhow::ensure!(n == 10, "cycle {i}: {n} rows: the last clean() missed some");
                drop(client);
                Fixture::clean(&pg).await?;
                Ok(())
            }
        },
        || {
            let pg = pg.clone();
            async move {
                let client = pg.client().await?;
                let n: i64 = client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                        &[],
                    )
                    .await?
                    .get(0);
                Ok(u64::try_from(n)?)
            }
        },
    )
    .await?;
    drop(pg);
    Ok(report)
}

async fn redis_cycles(session: &Session) -> anyhow::Result<String> {
    let redis: RedisFixture = Redis::new().start_in(session).await?;
    let report = measure(
        "redis",
        |i| {
            let redis = &redis;
            async move {
                let mut conn = redis.connection_manager_for(0).await?;
                for k in 0..10 {
                    let _: () = conn.set(format!("cycle:{i}:{k}"), k).await?;
                }
                let n: usize = redis::cmd("DBSIZE").query_async(&mut conn).await?;
                anyhow::ensure!(n == 10, "cycle {i}: {n} keys: the last clean() missed some");
                drop(conn);
                redis.clean().await?;
                Ok(())
            }
        },
        || {
            let redis = &redis;
            async move {
                let clients = redis.info_section("clients").await?;
                Ok(clients
                    .get("connected_clients")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(u64::MAX))
            }
        },
    )
    .await?;
    drop(redis);
    Ok(report)
}

async fn rabbitmq_cycles(session: &Session) -> anyhow::Result<String> {
    let rabbit: RabbitMqFixture = RabbitMq::new().start_in(session).await?;
    let report = measure(
        "rabbitmq",
        |i| {
            let rabbit = &rabbit;
            async move {
                let channel = rabbit.channel().await?;
                // Publisher confirms: the publish below returns once the broker has the message
                // queued, so the count that follows sees it (without them the publish is
                // fire-and-forget, and a count can come first).
                channel.confirm_select(Default::default()).await?;
                channel
                    .queue_declare("load".into(), Default::default(), Default::default())
                    .await?;
                channel
                    .basic_publish(
                        "".into(),
                        "load".into(),
                        Default::default(),
                        format!("cycle {i}").as_bytes(),
                        Default::default(),
                    )
                    .await?
                    .await?;
                let n = rabbit.message_count("load").await?;
                anyhow::ensure!(
                    n == 1,
                    "cycle {i}: {n} messages after one confirmed publish{}",
                    if n > 1 {
                        ": the last clean() missed some"
                    } else {
                        ""
                    }
                );
                drop(channel);
                rabbit.clean().await?;
                Ok(())
            }
        },
        || {
            let rabbit = &rabbit;
            async move {
                // Exact, unlike the management API's statistics, which lag. A connection of our
                // own, open while counting, proves the count sees connections at all.
                let probe = rabbit.amqp_connection().await?;
                let out = rabbit
                    .container()
                    .exec(Exec::new([
                        "rabbitmqctl",
                        "list_connections",
                        "--silent",
                        "pid",
                    ]))
                    .await?;
                anyhow::ensure!(out.success(), "rabbitmqctl: {}", out.stderr_text());
                let seen = out
                    .stdout_text()
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .count();
                anyhow::ensure!(
                    seen >= 1,
                    "rabbitmqctl lists no connection, though one is open"
                );
                probe.close(200, "done".into()).await?;
                Ok(seen as u64 - 1)
            }
        },
    )
    .await?;
    drop(rabbit);
    Ok(report)
}

/// 100 cycles per fixture in every run (CI included), 1,000 with `SEAWORTHY_LOAD=1`.
#[tokio::test]
async fn clean_cycles_of_each_native_fixture_keep_memory_descriptors_and_connections_flat(
) -> anyhow::Result<()> {
    let (cycles, warm_up) = cycles();
    let what = if load_requested() {
        "SEAWORTHY_LOAD=1: the full run"
    } else {
        "the reduced run; SEAWORTHY_LOAD=1 runs 1,000"
    };
    let _ = writeln!(
        std::io::stderr().lock(),
        "{cycles} clean() cycles per native fixture after {warm_up} warm-up cycles ({what})"
    );
    let _turn = TURNS.lock().await;
    let session = leaks::isolated_session().await?;
    // Each run prints its figures as it ends.
    postgres_cycles(&session).await?;
    redis_cycles(&session).await?;
    rabbitmq_cycles(&session).await?;
    if let Err(left) = leaks::close_session(&session).await {
        panic!("{left}");
    }
    Ok(())
}
