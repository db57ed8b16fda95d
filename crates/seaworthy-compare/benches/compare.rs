//! Suite `compare`: Seaworthy (the measured side) against testcontainers-rs (the baseline) on the
//! same local images with equivalent waits, alternating in one run.
//!
//! `cargo bench -p seaworthy-compare --bench compare` (needs `cargo xtask images`; no registry is
//! used: testcontainers only pulls when creating a container answers 404, and the images are
//! local). Results:
//!
//! * `start_busybox`: start-to-ready of busybox printing `ready` (a log wait on both sides).
//! * `start_redis`: redis with its port published, ready at "Ready to accept connections".
//! * `start_postgres`: postgres with its port published, ready at the second "database system is
//!   ready to accept connections" (the first comes from the image's socket-only init server; the
//!   second is the real server, listening on TCP). A query is run after each start, untimed, to
//!   check that both waits really mean "accepts TCP queries".
//! * `teardown`: from letting go of a container until it is gone from the engine, on both sides
//!   (Seaworthy's drop hands the removal to a background task: timed until that task is done and
//!   the engine no longer knows the container; testcontainers' drop blocks until removed).
//! * `teardown.test_waits`: what the test itself waits for when it lets go of the container (the
//!   drop returning), the same containers.
//! * `start8_concurrent`: 8 busybox containers started concurrently, until all are ready.
//! * `suite20_postgres`: a 20-test suite against PostgreSQL, each test inserting rows and
//!   querying them, from the first start until the last container is gone (teardown timed on
//!   both sides): Seaworthy starts one `seaworthy-postgres` fixture and cleans it between tests;
//!   testcontainers starts a fresh container per test.
//! * `suite20_postgres.vs_shared_truncate`: the same Seaworthy suite, against a testcontainers
//!   user who shares one container and runs `TRUNCATE items RESTART IDENTITY` between tests.
//!
//! Under `cargo test --all-targets` each result runs once (and the suite with 2 tests) as a smoke
//! test.

use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use seaworthy::{ContainerDefinition, Fixture, FixtureDefinition, Session, Wait};
use seaworthy_benchkit::{Suite, Target};
use seaworthy_compare::leaks;
use seaworthy_postgres::Postgres;
use testcontainers::core::wait::LogWaitStrategy;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};

const BUSYBOX: &str = "seaworthy-test/busybox";
const REDIS: &str = "seaworthy-test/redis";
const POSTGRES: &str = "seaworthy-test/postgres";
const TAG: &str = "latest";

const BUSYBOX_SCRIPT: &str = "echo ready; exec sleep 3600";
const REDIS_READY: &str = "Ready to accept connections";
const PG_READY: &str = "database system is ready to accept connections";
const PG_PASSWORD: &str = "postgres";
/// The non-durable settings `seaworthy-postgres` uses, given to every PostgreSQL of the suite.
const PG_COMMAND: [&str; 7] = seaworthy_testkit::postgres::DURABILITY_OFF;
const PG_SCHEMA: &str = "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)";
const BASELINE: &str = "testcontainers 0.28";

/// Seaworthy's definitions.
mod sw {
    use super::*;

    pub fn busybox() -> ContainerDefinition {
        ContainerDefinition::new(format!("{BUSYBOX}:{TAG}"))
            .with_cmd(["sh", "-c", BUSYBOX_SCRIPT])
            .with_wait(Wait::log("^ready$"))
    }

    pub fn redis() -> ContainerDefinition {
        ContainerDefinition::new(format!("{REDIS}:{TAG}"))
            .with_port(6379)
            .with_wait(Wait::log(REDIS_READY))
    }

    pub fn postgres() -> ContainerDefinition {
        ContainerDefinition::new(format!("{POSTGRES}:{TAG}"))
            .with_env("POSTGRES_PASSWORD", PG_PASSWORD)
            .with_cmd(PG_COMMAND)
            .with_port(5432)
            .with_wait(Wait::log_times(PG_READY, 2))
    }

    pub fn postgres_fixture() -> Postgres {
        Postgres::default()
            .with_container(|c| c.with_image(format!("{POSTGRES}:{TAG}")))
            .with_password(PG_PASSWORD)
            .with_init_sql(PG_SCHEMA)
            // The suite takes turns on one database: no pre-cloned databases for isolation.
            .with_pool_size(0)
    }
}

/// testcontainers' requests for the same containers.
mod tc {
    use super::*;

    pub fn busybox() -> ContainerRequest<GenericImage> {
        GenericImage::new(BUSYBOX, TAG)
            .with_wait_for(WaitFor::message_on_stdout("ready"))
            .with_cmd(["sh", "-c", BUSYBOX_SCRIPT])
    }

    pub fn redis() -> ContainerRequest<GenericImage> {
        GenericImage::new(REDIS, TAG)
            .with_exposed_port(6379.tcp())
            .with_wait_for(WaitFor::message_on_stdout(REDIS_READY))
            .into()
    }

    pub fn postgres() -> ContainerRequest<GenericImage> {
        GenericImage::new(POSTGRES, TAG)
            .with_exposed_port(5432.tcp())
            .with_wait_for(WaitFor::log(
                LogWaitStrategy::stdout_or_stderr(PG_READY).with_times(2),
            ))
            .with_env_var("POSTGRES_PASSWORD", PG_PASSWORD)
            .with_cmd(PG_COMMAND)
    }
}

/// Runs `SELECT 1` over TCP: checks that a wait really meant "accepts queries".
async fn query_postgres(port: u16) {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres password={PG_PASSWORD} dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("postgres accepts a TCP connection once ready");
    let task = tokio::spawn(connection);
    let row = client
        .query_one("SELECT 1", &[])
        .await
        .expect("postgres answers a query once ready");
    assert_eq!(row.get::<_, i32>(0), 1);
    drop(client);
    let _ = task.await;
}

/// Sends `PING` over TCP and expects `+PONG`.
async fn ping_redis(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("redis accepts a TCP connection once ready");
    stream.write_all(b"PING\r\n").await.expect("send PING");
    let mut answer = [0u8; 7];
    stream
        .read_exact(&mut answer)
        .await
        .expect("redis answers PING");
    assert_eq!(&answer, b"+PONG\r\n");
}

/// One "test" of the suite: inserts ten rows and checks it sees exactly those (so the database
/// was clean, sequence included).
async fn one_test(client: &tokio_postgres::Client) {
    client
        .execute(
            "INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 10) g",
            &[],
        )
        .await
        .expect("insert rows");
    let row = client
        .query_one("SELECT count(*), max(id) FROM items", &[])
        .await
        .expect("query rows");
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i32>(1)),
        (10, 10),
        "each test starts from an empty table with its sequence restarted"
    );
}

/// Connects to the testcontainers PostgreSQL, retrying for up to 10 s as a user's helper would:
/// on a busy machine a connection right after the log line can be dropped mid-handshake.
async fn tc_postgres_client(port: u16) -> tokio_postgres::Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={port} user=postgres password={PG_PASSWORD} dbname=postgres"
            ),
            tokio_postgres::NoTls,
        )
        .await
        {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                return client;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("connect to the testcontainers postgres: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("connect to the testcontainers postgres: {e}"),
        }
    }
}

/// Seaworthy's suite: one fixture, cleaned between tests.
async fn seaworthy_suite(tests: usize) -> Duration {
    let started = Instant::now();
    let pg = sw::postgres_fixture()
        .start()
        .await
        .expect("start the postgres fixture");
    for _ in 0..tests {
        let client = pg.client().await.expect("connect to the fixture");
        one_test(&client).await;
        drop(client);
        Fixture::clean(&pg).await.expect("clean the fixture");
    }
    let session = pg.container().session().clone();
    let name = pg.container().name().to_string();
    drop(pg);
    // Until the container is gone, as testcontainers' drop waits for.
    settle(&session, &[name]).await;
    started.elapsed()
}

/// testcontainers' suite: a fresh container per test.
async fn testcontainers_suite(tests: usize) -> Duration {
    let started = Instant::now();
    for _ in 0..tests {
        let container = tc::postgres().start().await.expect("start postgres");
        let port = container
            .get_host_port_ipv4(5432.tcp())
            .await
            .expect("postgres port");
        let client = tc_postgres_client(port).await;
        client
            .batch_execute(PG_SCHEMA)
            .await
            .expect("create the schema");
        one_test(&client).await;
        drop(client);
        drop(container);
    }
    started.elapsed()
}

/// testcontainers' suite as a user who shares one container writes it: one container, the table
/// created once, `TRUNCATE … RESTART IDENTITY` between tests.
async fn testcontainers_shared_suite(tests: usize) -> Duration {
    let started = Instant::now();
    let container = tc::postgres().start().await.expect("start postgres");
    let port = container
        .get_host_port_ipv4(5432.tcp())
        .await
        .expect("postgres port");
    let client = tc_postgres_client(port).await;
    client
        .batch_execute(PG_SCHEMA)
        .await
        .expect("create the schema");
    for _ in 0..tests {
        one_test(&client).await;
        client
            .batch_execute("TRUNCATE items RESTART IDENTITY")
            .await
            .expect("truncate");
    }
    drop(client);
    drop(container);
    started.elapsed()
}

/// Where Seaworthy's teardown timing stops.
#[derive(Clone, Copy)]
enum Until {
    /// When the drop returns (what the test waits for).
    DropReturns,
    /// When the background removal is done and the engine no longer knows the container.
    Gone,
}

/// Starts a busybox (untimed), drops it, and times until `until`; the container is checked gone
/// before returning either way.
async fn sw_teardown(session: Session, until: Until) -> Duration {
    let c = sw::busybox().start().await.expect("start busybox");
    let name = c.name().to_string();
    let t = Instant::now();
    drop(c);
    let returned = t.elapsed();
    settle(&session, std::slice::from_ref(&name)).await;
    match until {
        Until::DropReturns => returned,
        Until::Gone => t.elapsed(),
    }
}

/// Starts a busybox with testcontainers (untimed) and times its drop, which returns once the
/// container is removed (checked after, untimed).
async fn tc_teardown(session: Session) -> Duration {
    let c = tc::busybox()
        .start()
        .await
        .expect("start busybox (testcontainers)");
    let id = c.id().to_string();
    let t = Instant::now();
    drop(c);
    let d = t.elapsed();
    assert_gone(&session, &id).await;
    d
}

/// Checks the engine no longer knows the container `id` (untimed, after testcontainers' drop).
async fn assert_gone(session: &Session, id: &str) {
    assert!(
        !leaks::container_exists(session, id).await.expect("inspect"),
        "testcontainers' container {id} is still there after its drop returned"
    );
}

/// Removes what a Seaworthy run left (untimed) and checks it is gone.
async fn settle(session: &Session, names: &[String]) {
    assert!(
        leaks::removals_done(session, Duration::from_secs(60)).await,
        "background removals did not finish within 60 s"
    );
    for name in names {
        assert!(
            !leaks::container_exists(session, name)
                .await
                .expect("inspect"),
            "container {name} is still there after its handle was dropped"
        );
    }
}

fn drop_all<T>(containers: Vec<ContainerAsync<T>>)
where
    T: testcontainers::Image,
{
    for c in containers {
        drop(c);
    }
}

fn main() {
    let mut suite = Suite::new("compare");
    let session = suite.block_on(Session::global()).expect("a Docker engine");

    // Warm up both sides on every image: image metadata, the session network, testcontainers'
    // client, the page cache.
    suite.block_on(async {
        for def in [sw::busybox(), sw::redis(), sw::postgres()] {
            def.start()
                .await
                .expect("warm-up start")
                .remove()
                .await
                .expect("warm-up remove");
        }
        for req in [tc::busybox(), tc::redis(), tc::postgres()] {
            req.start()
                .await
                .expect("warm-up start (testcontainers)")
                .rm()
                .await
                .expect("warm-up remove (testcontainers)");
        }
    });

    // --- start_busybox -------------------------------------------------------------------------
    suite.compare(
        "start_busybox",
        BASELINE,
        20,
        || {
            let session = session.clone();
            async move {
                let t = Instant::now();
                let c = sw::busybox().start().await.expect("start busybox");
                let d = t.elapsed();
                let name = c.name().to_string();
                drop(c);
                settle(&session, &[name]).await;
                d
            }
        },
        || async move {
            let t = Instant::now();
            let c = tc::busybox()
                .start()
                .await
                .expect("start busybox (testcontainers)");
            let d = t.elapsed();
            drop(c);
            d
        },
    );
    suite.target(Target::RatioAtMost(1.0));

    // --- start_redis ---------------------------------------------------------------------------
    suite.compare(
        "start_redis",
        BASELINE,
        20,
        || {
            let session = session.clone();
            async move {
                let t = Instant::now();
                let c = sw::redis().start().await.expect("start redis");
                let d = t.elapsed();
                ping_redis(c.host_port(6379).expect("redis port")).await;
                let name = c.name().to_string();
                drop(c);
                settle(&session, &[name]).await;
                d
            }
        },
        || async move {
            let t = Instant::now();
            let c = tc::redis()
                .start()
                .await
                .expect("start redis (testcontainers)");
            let d = t.elapsed();
            ping_redis(c.get_host_port_ipv4(6379.tcp()).await.expect("port")).await;
            drop(c);
            d
        },
    );
    suite.target(Target::RatioAtMost(1.0));

    // --- start_postgres ------------------------------------------------------------------------
    suite.compare(
        "start_postgres",
        BASELINE,
        12,
        || {
            let session = session.clone();
            async move {
                let t = Instant::now();
                let c = sw::postgres().start().await.expect("start postgres");
                let d = t.elapsed();
                query_postgres(c.host_port(5432).expect("postgres port")).await;
                let name = c.name().to_string();
                drop(c);
                settle(&session, &[name]).await;
                d
            }
        },
        || async move {
            let t = Instant::now();
            let c = tc::postgres()
                .start()
                .await
                .expect("start postgres (testcontainers)");
            let d = t.elapsed();
            query_postgres(c.get_host_port_ipv4(5432.tcp()).await.expect("port")).await;
            drop(c);
            d
        },
    );
    suite.target(Target::RatioAtMost(1.0));

    // --- teardown ------------------------------------------------------------------------------
    // Until the container is gone, on both sides: the headline.
    suite.compare(
        "teardown",
        BASELINE,
        20,
        || sw_teardown(session.clone(), Until::Gone),
        || tc_teardown(session.clone()),
    );
    suite.target(Target::RatioAtMost(1.0));
    suite.annotate(
        "note",
        "drop until the engine no longer knows the container, both sides",
    );

    // What the test waits for: the drop returning.
    suite.compare(
        "teardown.test_waits",
        BASELINE,
        20,
        || sw_teardown(session.clone(), Until::DropReturns),
        || tc_teardown(session.clone()),
    );
    suite.target(Target::RatioAtMost(0.5));
    suite.annotate(
        "note",
        "drop until it returns: Seaworthy's removal goes on in the background (see teardown)",
    );

    // --- start8_concurrent ---------------------------------------------------------------------
    suite.compare(
        "start8_concurrent",
        BASELINE,
        10,
        || {
            let session = session.clone();
            async move {
                let t = Instant::now();
                let started = try_join_all((0..8).map(|_| sw::busybox().start()))
                    .await
                    .expect("start 8 busybox");
                let d = t.elapsed();
                let names: Vec<String> = started.iter().map(|c| c.name().to_string()).collect();
                drop(started);
                settle(&session, &names).await;
                d
            }
        },
        || async move {
            let t = Instant::now();
            let started = try_join_all((0..8).map(|_| tc::busybox().start()))
                .await
                .expect("start 8 busybox (testcontainers)");
            let d = t.elapsed();
            drop_all(started);
            d
        },
    );
    suite.target(Target::RatioAtMost(1.0));

    // --- suite20_postgres ----------------------------------------------------------------------
    let tests = if suite.is_full() { 20 } else { 2 };
    suite.compare(
        "suite20_postgres",
        "testcontainers 0.28, a container per test",
        10,
        || seaworthy_suite(tests),
        || testcontainers_suite(tests),
    );
    suite.target(Target::RatioAtMost(0.1));
    suite.annotate("tests", tests);

    suite.compare(
        "suite20_postgres.vs_shared_truncate",
        "testcontainers 0.28, one shared container, TRUNCATE … RESTART IDENTITY between tests",
        10,
        || seaworthy_suite(tests),
        || testcontainers_shared_suite(tests),
    );
    suite.target(Target::RatioAtMost(1.0));
    suite.annotate("tests", tests);

    // Nothing may be left: Seaworthy's session, and every container testcontainers labelled.
    suite.block_on(async {
        if let Err(left) = leaks::close_session(&session).await {
            panic!("Seaworthy left resources behind:\n{left}");
        }
        let docker = testcontainers::core::client::docker_client_instance()
            .await
            .expect("testcontainers' client");
        let left = docker
            .list_containers(Some(
                testcontainers::bollard::query_parameters::ListContainersOptions {
                    all: true,
                    filters: Some(std::collections::HashMap::from([(
                        "label".to_string(),
                        vec!["org.testcontainers.managed-by=testcontainers".to_string()],
                    )])),
                    ..Default::default()
                },
            ))
            .await
            .expect("list testcontainers' containers");
        assert!(left.is_empty(), "testcontainers left {left:?}");
    });
    suite.finish();
}
