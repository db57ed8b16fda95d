//! Suite `reset.postgres`: resetting a PostgreSQL database between tests, against the best a user
//! without Seaworthy would write over SQL, and against what the Python Seaworthy did (the CLI
//! tools through `docker exec`) as extra rows.
//!
//! Every side resets a database a test really touched: before each run (untimed) 1,000 rows go
//! into the 20 tables of the database that side resets, and nothing else touches it. The
//! baselines run on a second fixture of the same definition (same image, settings and template;
//! no pool), so that `clean()` of the first never sees their databases and their `CREATE
//! DATABASE … TEMPLATE` never races the first's pool refills for its template.
//!
//! * `postgres.clean`: `clean()` of the fixture's database, against `DROP DATABASE … WITH
//!   (FORCE)` + `CREATE DATABASE … TEMPLATE <the fixture's template>` over an open connection
//!   (the headline: the same end state, schema and baseline rows back).
//! * `postgres.clean.vs_truncate`: the same `clean()`, against a user sharing one container and
//!   truncating: `TRUNCATE <the 20 tables> RESTART IDENTITY CASCADE` over an open connection
//!   (cheaper than a full reset: it leaves any other object a test created).
//! * `postgres.clean.vs_exec`: against `dropdb --force` + `createdb -T <template>` by docker exec.
//! * `postgres.isolated`: checking out an isolated database with the pool refilled, against
//!   `CREATE DATABASE … TEMPLATE` over SQL; `postgres.isolated.vs_exec`: against `createdb -T` by
//!   docker exec.
//! * `postgres.isolated.empty_pool`: the checkout of a fixture with no pool (it clones on the
//!   spot), against the same `CREATE DATABASE … TEMPLATE` over SQL.
//! * `postgres.pool_refill`: after a checkout, the time until the pool holds its size again (one
//!   clone made in the background).
//! * `postgres.clean_objects`, `postgres.clean_database`, `postgres.restart` (reference):
//!   `clean()` after a test created a table and a role, after it altered a baseline table, and
//!   `docker restart` until the server answers `SELECT 1`.
//!
//! `cargo bench -p seaworthy-postgres --bench reset` (needs `cargo xtask images`).

use std::time::{Duration, Instant};

use seaworthy::{Exec, Fixture, FixtureDefinition};
use seaworthy_benchkit::{Suite, Target};
use seaworthy_postgres::tokio_postgres::{self, Client};
use seaworthy_postgres::{CleanPath, Postgres, PostgresFixture};

mod reset_load;
use reset_load::{schema, touch_rows, ROWS_PER_TABLE, TABLES};

const RUNS: usize = 30;
const POOL_SIZE: usize = 4;
/// The databases the baselines reset (created from the fixture's template at setup).
const SQL_SIDE: &str = "sql_side";
const TRUNCATE_SIDE: &str = "truncate_side";
const EXEC_SIDE: &str = "exec_side";

/// A client of `database` on the fixture's server.
async fn client_of(pg: &PostgresFixture, database: &str) -> Client {
    let mut config = pg.config().expect("config");
    config.dbname(database);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {database}: {e}"));
    tokio::spawn(connection);
    client
}

/// Checks a reset database is empty again, sequences restarted.
async fn assert_reset(client: &Client) {
    for i in [0, TABLES - 1] {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM t{i:02}"), &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, 0, "t{i:02} still holds rows after the reset");
    }
    let id: i32 = client
        .query_one("INSERT INTO t00 (name) VALUES ('probe') RETURNING id", &[])
        .await
        .expect("probe the sequence")
        .get(0);
    assert_eq!(id, 1, "the sequence was not restarted");
    client
        .batch_execute("TRUNCATE t00 RESTART IDENTITY")
        .await
        .expect("remove the probe");
}

async fn exec_ok(pg: &PostgresFixture, argv: &[&str]) {
    let out = pg
        .container()
        .exec(Exec::new(argv.iter().copied()).user("postgres"))
        .await
        .expect("exec");
    assert!(out.success(), "{argv:?}: {}", out.stderr_text());
}

/// The number of databases in the pool of `pg`.
async fn pool_count(admin: &Client, pg: &PostgresFixture) -> i64 {
    let prefix = format!("{}_pool_", pg.database());
    admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)",
            &[&prefix],
        )
        .await
        .expect("count the pool")
        .get(0)
}

/// Waits until the pool holds `POOL_SIZE` databases again; returns how long that took.
async fn wait_for_pool(admin: &Client, pg: &PostgresFixture) -> Duration {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    while pool_count(admin, pg).await < POOL_SIZE as i64 {
        assert!(
            Instant::now() < deadline,
            "the pool did not refill within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

/// Touches 1,000 rows (untimed) and times `clean()`.
async fn timed_clean(pg: &PostgresFixture) -> Duration {
    touch_rows(&pg.client().await.expect("client")).await;
    let t = Instant::now();
    pg.clean().await.expect("clean");
    t.elapsed()
}

/// Times the checkout of an isolated database with the pool full, then releases it and waits
/// (untimed) until the pool is full again: the refill's clone must not run during the
/// baseline's turn.
async fn timed_checkout(pg: &PostgresFixture, admin: &Client) -> Duration {
    wait_for_pool(admin, pg).await;
    let t = Instant::now();
    let db = pg.isolated_database().await.expect("isolated database");
    let elapsed = t.elapsed();
    db.release().await.expect("release");
    wait_for_pool(admin, pg).await;
    elapsed
}

/// Times `CREATE DATABASE name TEMPLATE template` over `admin` (a user's clone), then drops the
/// database (untimed).
async fn timed_sql_clone(admin: &Client, name: String, template: &str) -> Duration {
    let t = Instant::now();
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .await
        .expect("create database");
    let elapsed = t.elapsed();
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop database");
    elapsed
}

/// `DROP DATABASE … WITH (FORCE)` + `CREATE DATABASE … TEMPLATE` over `admin`: a user's full reset.
async fn recreate(admin: &Client, database: &str, template: &str) {
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .await
        .expect("drop database");
    admin
        .batch_execute(&format!("CREATE DATABASE {database} TEMPLATE {template}"))
        .await
        .expect("create database from the template");
}

fn main() {
    let mut suite = Suite::new("reset.postgres");
    let (pg, pg0) = suite.block_on(async {
        let with_pool = Postgres::default()
            .with_init_sql(schema())
            .with_pool_size(POOL_SIZE);
        let without_pool = with_pool.clone().with_pool_size(0);
        let (a, b) = tokio::join!(with_pool.start(), without_pool.start());
        (
            a.expect("a PostgreSQL fixture (cargo xtask images)"),
            b.expect("a second PostgreSQL fixture, without a pool"),
        )
    });
    // `base` holds the baselines' databases.
    let (pg, base) = (&pg, &pg0);
    let user = base.user().to_string();
    let template = base.template_database().to_string();
    let (admin, pg_admin) = suite.block_on(async {
        let admin = client_of(base, "postgres").await;
        for side in [SQL_SIDE, TRUNCATE_SIDE, EXEC_SIDE] {
            recreate(&admin, side, &template).await;
        }
        (admin, client_of(pg, "postgres").await)
    });
    let (admin, pg_admin) = (&admin, &pg_admin);
    let template = template.as_str();
    suite.block_on(async {
        // Warm up the fixture's paths.
        touch_rows(&pg.client().await.expect("client")).await;
        pg.clean().await.expect("clean");
        drop(pg.isolated_database().await.expect("isolated"));
        wait_for_pool(pg_admin, pg).await;
    });

    suite.compare(
        "postgres.clean",
        "DROP DATABASE … WITH (FORCE) + CREATE DATABASE … TEMPLATE over SQL",
        RUNS,
        || async move {
            touch_rows(&pg.client().await.expect("client")).await;
            let t = Instant::now();
            let report = pg.clean_with_report().await.expect("clean");
            let elapsed = t.elapsed();
            assert_eq!(report.path, CleanPath::Data);
            assert_reset(&pg.client().await.expect("client")).await;
            elapsed
        },
        || async move {
            touch_rows(&client_of(base, SQL_SIDE).await).await;
            let t = Instant::now();
            recreate(admin, SQL_SIDE, template).await;
            let elapsed = t.elapsed();
            assert_reset(&client_of(base, SQL_SIDE).await).await;
            elapsed
        },
    );
    suite.target(Target::MedianAtMostMs(15.0));
    suite.annotate("tables", TABLES as u64);
    suite.annotate("rows_touched", (TABLES * ROWS_PER_TABLE) as u64);

    let truncate = suite.block_on(client_of(base, TRUNCATE_SIDE));
    let truncate = &truncate;
    let tables: Vec<String> = (0..TABLES).map(|i| format!("t{i:02}")).collect();
    let truncate_sql = format!("TRUNCATE {} RESTART IDENTITY CASCADE", tables.join(", "));
    let truncate_sql = truncate_sql.as_str();
    suite.compare(
        "postgres.clean.vs_truncate",
        "TRUNCATE … RESTART IDENTITY CASCADE of the 20 tables over SQL (one shared container)",
        RUNS,
        || timed_clean(pg),
        || async move {
            touch_rows(truncate).await;
            let t = Instant::now();
            truncate
                .batch_execute(truncate_sql)
                .await
                .expect("truncate");
            let elapsed = t.elapsed();
            assert_reset(truncate).await;
            elapsed
        },
    );
    suite.annotate(
        "note",
        "TRUNCATE resets only the rows of the tables it names; clean() also finds and undoes new objects",
    );

    suite.compare(
        "postgres.clean.vs_exec",
        "docker exec dropdb --force + createdb -T <template> (the Python Seaworthy)",
        RUNS,
        || timed_clean(pg),
        || {
            let user = user.clone();
            async move {
                touch_rows(&client_of(base, EXEC_SIDE).await).await;
                let t = Instant::now();
                exec_ok(base, &["dropdb", "-U", &user, "--force", EXEC_SIDE]).await;
                exec_ok(base, &["createdb", "-U", &user, "-T", template, EXEC_SIDE]).await;
                let elapsed = t.elapsed();
                assert_reset(&client_of(base, EXEC_SIDE).await).await;
                elapsed
            }
        },
    );

    let mut n = 0;
    suite.compare(
        "postgres.isolated",
        "CREATE DATABASE … TEMPLATE over SQL",
        RUNS,
        || timed_checkout(pg, pg_admin),
        || {
            n += 1;
            timed_sql_clone(admin, format!("sql_iso_{n}"), template)
        },
    );
    suite.target(Target::MedianAtMostMs(5.0));
    suite.annotate("pool_size", POOL_SIZE as u64);

    let mut n = 0;
    suite.compare(
        "postgres.isolated.vs_exec",
        "docker exec createdb -T <template> (the Python Seaworthy)",
        RUNS,
        || timed_checkout(pg, pg_admin),
        || {
            n += 1;
            let user = user.clone();
            async move {
                let name = format!("exec_iso_{n}");
                let t = Instant::now();
                exec_ok(base, &["createdb", "-U", &user, "-T", template, &name]).await;
                let elapsed = t.elapsed();
                exec_ok(base, &["dropdb", "-U", &user, "--force", &name]).await;
                elapsed
            }
        },
    );

    let mut n = 0;
    suite.compare(
        "postgres.isolated.empty_pool",
        "CREATE DATABASE … TEMPLATE over SQL",
        RUNS,
        || async move {
            let t = Instant::now();
            let db = base.isolated_database().await.expect("isolated database");
            let elapsed = t.elapsed();
            db.release().await.expect("release");
            elapsed
        },
        || {
            n += 1;
            timed_sql_clone(admin, format!("sql_iso0_{n}"), template)
        },
    );
    suite.annotate("pool_size", 0);

    suite.measure("postgres.pool_refill", RUNS, || async move {
        wait_for_pool(pg_admin, pg).await;
        let db = pg.isolated_database().await.expect("isolated database");
        let took = wait_for_pool(pg_admin, pg).await;
        db.release().await.expect("release");
        took
    });
    suite.annotate(
        "note",
        "from a checkout's return until the pool holds its size again (polled every 2 ms)",
    );

    suite.measure("postgres.clean_objects", RUNS, || async move {
        let client = pg.client().await.expect("client");
        client
            .batch_execute("CREATE TABLE scratch (id serial PRIMARY KEY); CREATE ROLE scratch_role; INSERT INTO t00 (name) VALUES ('x');")
            .await
            .expect("create objects");
        let t = Instant::now();
        let report = pg.clean_with_report().await.expect("clean");
        let elapsed = t.elapsed();
        assert_eq!(report.path, CleanPath::Objects);
        elapsed
    });

    suite.measure("postgres.clean_database", RUNS, || async move {
        let client = pg.client().await.expect("client");
        client
            .batch_execute("ALTER TABLE t00 ADD COLUMN extra int;")
            .await
            .expect("alter");
        let t = Instant::now();
        let report = pg.clean_with_report().await.expect("clean");
        let elapsed = t.elapsed();
        assert_eq!(report.path, CleanPath::Database);
        elapsed
    });

    suite.measure("postgres.restart", RUNS, || async move {
        let container = pg.container();
        let t = Instant::now();
        let (session, id) = (container.session().clone(), container.id());
        seaworthy::runtime::run(async move {
            session
                .engine()
                .docker()
                .restart_container(&id, None)
                .await
                .expect("docker restart");
        })
        .await;
        container.refresh().await.expect("ports after restart");
        // Ready when the server answers a query again.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(client) = pg.client().await {
                if client.simple_query("SELECT 1").await.is_ok() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not come back");
            seaworthy::runtime::run(tokio::time::sleep(Duration::from_millis(20))).await;
        }
        t.elapsed()
    });
    suite.block_on(async { pg.clean().await.expect("clean after the restarts") });
    suite.finish();
}
