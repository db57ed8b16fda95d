//! Suite `reset` (PostgreSQL part): resetting a database between tests, against what the Python
//! Seaworthy did (the CLI tools, through `docker exec`).
//!
//! * `postgres.clean`: `clean()` after a test touched 1,000 rows of a 20-table schema, against
//!   `dropdb --force` + `createdb` run in the container (the reset alone: the exec side does not
//!   re-create the schema).
//! * `postgres.isolated`: checking out an isolated database (pool refilled between runs, as it is
//!   between tests), against `createdb -T <template>` run in the container.
//! * `postgres.restart`: `docker restart` until the server answers `SELECT 1` (reference).
//! * `postgres.clean_objects`, `postgres.clean_database` (reference): `clean()` after a test
//!   created a table and a role, and after it altered a baseline table.
//!
//! `cargo bench -p seaworthy-postgres --bench reset` (needs `cargo xtask images`).

use std::time::{Duration, Instant};

use seaworthy::Exec;
use seaworthy_benchkit::Suite;
use seaworthy_postgres::{CleanPath, Postgres, PostgresFixture};

const TABLES: usize = 20;
const ROWS_PER_TABLE: usize = 50;
const RUNS: usize = 30;

fn schema() -> String {
    (0..TABLES)
        .map(|i| {
            format!(
                "CREATE TABLE t{i:02} (id serial PRIMARY KEY, name text NOT NULL, n int NOT NULL DEFAULT 0, \
                 created timestamptz NOT NULL DEFAULT now());\n"
            )
        })
        .collect()
}

/// What a test does between two cleans: 1,000 rows over the 20 tables.
async fn touch_rows(pg: &PostgresFixture) {
    let client = pg.client().await.expect("client");
    let sql: String = (0..TABLES)
        .map(|i| {
            format!("INSERT INTO t{i:02} (name, n) SELECT 'row ' || g, g FROM generate_series(1, {ROWS_PER_TABLE}) g;\n")
        })
        .collect();
    client.batch_execute(&sql).await.expect("touch rows");
}

async fn exec_ok(pg: &PostgresFixture, argv: &[&str]) {
    let out = pg
        .container()
        .exec(Exec::new(argv.iter().copied()).user("postgres"))
        .await
        .expect("exec");
    assert!(out.success(), "{argv:?}: {}", out.stderr_text());
}

/// Waits until the pool holds `size` databases again (between runs, outside the timing).
async fn wait_for_pool(pg: &PostgresFixture, size: i64) {
    let client = pg.client().await.expect("client");
    let prefix = format!("{}_pool_", pg.database());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)",
                &[&prefix],
            )
            .await
            .expect("count the pool")
            .get(0);
        if n >= size || Instant::now() > deadline {
            return;
        }
        seaworthy::runtime::run(tokio::time::sleep(Duration::from_millis(20))).await;
    }
}

fn main() {
    let mut suite = Suite::new("reset");
    let pool_size = 4;
    let pg = suite
        .block_on(
            Postgres::default()
                .with_init_sql(schema())
                // The exec side's database belongs to the baseline, so clean() leaves it alone.
                .with_init("exec side database", |ctx| async move {
                    ctx.client
                        .batch_execute("CREATE DATABASE exec_side")
                        .await?;
                    Ok(())
                })
                .with_pool_size(pool_size)
                .start(),
        )
        .expect("a PostgreSQL fixture (cargo xtask images)");
    let pg = &pg;
    let user = pg.user().to_string();
    let template = pg.template_database().to_string();
    suite.block_on(async {
        // Warm up both sides.
        touch_rows(pg).await;
        pg.clean().await.expect("clean");
        drop(pg.isolated_database().await.expect("isolated"));
        wait_for_pool(pg, pool_size as i64).await;
    });

    suite.compare(
        "postgres.clean",
        "docker exec dropdb --force + createdb",
        RUNS,
        || async move {
            touch_rows(pg).await;
            let t = Instant::now();
            let report = pg.clean().await.expect("clean");
            let elapsed = t.elapsed();
            assert_eq!(report.path, CleanPath::Data);
            elapsed
        },
        || {
            let user = user.clone();
            async move {
                touch_rows(pg).await;
                let t = Instant::now();
                exec_ok(pg, &["dropdb", "-U", &user, "--force", "exec_side"]).await;
                exec_ok(pg, &["createdb", "-U", &user, "exec_side"]).await;
                t.elapsed()
            }
        },
    );
    suite.annotate("tables", TABLES as u64);
    suite.annotate("rows_touched", (TABLES * ROWS_PER_TABLE) as u64);

    let mut n = 0;
    suite.compare(
        "postgres.isolated",
        "docker exec createdb -T <template>",
        RUNS,
        || async move {
            wait_for_pool(pg, pool_size as i64).await;
            let t = Instant::now();
            let db = pg.isolated_database().await.expect("isolated database");
            let elapsed = t.elapsed();
            db.release().await.expect("release");
            elapsed
        },
        || {
            n += 1;
            let (user, template) = (user.clone(), template.clone());
            async move {
                let name = format!("exec_iso_{n}");
                let t = Instant::now();
                exec_ok(pg, &["createdb", "-U", &user, "-T", &template, &name]).await;
                let elapsed = t.elapsed();
                exec_ok(pg, &["dropdb", "-U", &user, "--force", &name]).await;
                elapsed
            }
        },
    );
    suite.annotate("pool_size", pool_size as u64);

    suite.measure("postgres.clean_objects", RUNS, || async move {
        let client = pg.client().await.expect("client");
        client
            .batch_execute("CREATE TABLE scratch (id serial PRIMARY KEY); CREATE ROLE scratch_role; INSERT INTO t00 (name) VALUES ('x');")
            .await
            .expect("create objects");
        let t = Instant::now();
        let report = pg.clean().await.expect("clean");
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
        let report = pg.clean().await.expect("clean");
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
