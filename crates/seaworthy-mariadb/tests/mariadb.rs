//! The MariaDB fixture against a real server: every kind of state clean() restores, isolation
//! under eight parallel tests, keep-on-failure, the image's contract and invalid definitions.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use seaworthy::{Fixture, FixtureDefinition, Shared};
use seaworthy_mariadb::{CleanPath, MariaDb, MariaDbFixture, SharedMariaDb};
use seaworthy_testkit as common;

fn mariadb() -> MariaDb {
    MariaDb::default().with_init_sql(include_str!("schema.sql"))
}

/// Taken alone (`fresh`) by the clean tests, one after the other.
static DB: Shared<MariaDb> = Shared::per_process(mariadb);
/// Shared by the isolation tests, which run in parallel on it.
static ISO: Shared<MariaDb> = Shared::per_process(mariadb);

async fn rows(conn: &mut Conn, sql: &str) -> anyhow::Result<Vec<String>> {
    let rows: Vec<mysql_async::Row> = conn.query(sql).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (0..r.len())
                .map(|i| match r.as_ref(i) {
                    Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                    Some(mysql_async::Value::NULL) | None => "NULL".into(),
                    Some(v) => v.as_sql(true),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect())
}

/// What a test sees of the baseline: rows of every table, the next ids, the objects.
async fn state(db: &MariaDbFixture) -> anyhow::Result<Vec<String>> {
    let mut conn = db.conn().await?;
    let mut all = Vec::new();
    for sql in [
        "SELECT * FROM users ORDER BY id",
        "SELECT * FROM orders ORDER BY id",
        "SELECT * FROM audit ORDER BY id",
        "SELECT * FROM settings ORDER BY k",
        "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'test' ORDER BY 1",
        "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'test' ORDER BY 1, ORDINAL_POSITION",
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'test' ORDER BY 1",
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'test' ORDER BY 1",
    ] {
        all.push(format!("-- {sql}"));
        all.extend(rows(&mut conn, sql).await?);
    }
    all.extend(db.list_databases().await?);
    all.extend(db.list_users().await?);
    Ok(all)
}

/// The baseline as a fresh fixture shows it (cleaned at hand-out).
async fn baseline(db: &MariaDbFixture) -> anyhow::Result<Vec<String>> {
    db.clean_with_report().await?;
    state(db).await
}

#[tokio::test]
async fn clean_restores_changed_rows_and_auto_increment_counters() -> anyhow::Result<()> {
    let db = DB.fresh().await?;
    let before = baseline(&db).await?;
    let mut conn = db.conn().await?;
    conn.query_drop(
        "UPDATE users SET email = 'changed' WHERE id = 1; DELETE FROM orders WHERE id = 2; \
         INSERT INTO users (name) VALUES ('eve'), ('mallory'); DELETE FROM users WHERE name = 'mallory'; \
         UPDATE settings SET v = 'prod'",
    )
    .await?;
    assert_ne!(state(&db).await?, before);
    drop(conn);
    let report = db.clean_with_report().await?;
    assert_eq!(report.path, CleanPath::Data);
    assert!(report.tables_restored >= 4, "{report:?}");
    assert_eq!(state(&db).await?, before);
    // The counter is back: the next user gets id 3 again.
    let mut conn = db.conn().await?;
    conn.query_drop("INSERT INTO users (name) VALUES ('next')")
        .await?;
    assert_eq!(conn.last_insert_id(), Some(3));
    // Nothing changed: nothing is restored.
    db.clean_with_report().await?;
    let report = db.clean_with_report().await?;
    assert_eq!((report.tables_restored, report.server_restored), (0, false));
    Ok(())
}

/// The changes a cheap "did this table change?" check could miss: the row count unchanged
/// (values swapped between rows, NULL turned into ''), a counter moved with no row left, a
/// counter moved by DDL alone. Each one alone is seen and undone.
#[tokio::test]
async fn clean_sees_changes_that_keep_the_row_count_and_moved_counters() -> anyhow::Result<()> {
    let db = DB.fresh().await?;
    let before = baseline(&db).await?;
    for change in [
        "UPDATE users SET name = IF(id = 1, 'grace', 'ada') WHERE id IN (1, 2)",
        "UPDATE users SET email = '' WHERE id = 2",
        "UPDATE orders SET total = total + 0.01 WHERE id = 1",
        "INSERT INTO orders (user_id, total) VALUES (1, 1); DELETE FROM orders WHERE id > 2",
        "ALTER TABLE audit AUTO_INCREMENT = 1000",
    ] {
        let mut conn = db.conn().await?;
        conn.query_drop(change).await?;
        drop(conn);
        assert_ne!(state(&db).await?, before, "{change} changed nothing");
        let report = db.clean_with_report().await?;
        assert_eq!(report.path, CleanPath::Data, "{change}");
        assert_eq!(state(&db).await?, before, "after {change}");
    }
    let mut conn = db.conn().await?;
    conn.query_drop("INSERT INTO orders (user_id, total) VALUES (2, 5)")
        .await?;
    assert_eq!(conn.last_insert_id(), Some(3));
    Ok(())
}

#[tokio::test]
async fn clean_drops_new_objects_and_restores_dropped_and_altered_ones() -> anyhow::Result<()> {
    let db = DB.fresh().await?;
    let before = baseline(&db).await?;
    let mut conn = db.conn().await?;
    conn.query_drop(
        "CREATE TABLE extra (id INT PRIMARY KEY); INSERT INTO extra VALUES (1); \
         DROP TABLE orders; ALTER TABLE users ADD COLUMN age INT; \
         DROP VIEW user_names; CREATE VIEW extra_view AS SELECT 1 AS one; \
         DROP PROCEDURE add_user; CREATE FUNCTION f() RETURNS INT RETURN 1; \
         DROP TRIGGER users_audit; SELECT NEXTVAL(tickets); SELECT NEXTVAL(tickets)",
    )
    .await?;
    drop(conn);
    let report = db.clean_with_report().await?;
    assert_eq!(report.path, CleanPath::Objects);
    assert_eq!(state(&db).await?, before);
    assert_eq!(
        db.list_tables().await?,
        ["audit", "orders", "settings", "users"]
    );
    // The objects work as at the baseline: the view, the procedure, the trigger, the sequence.
    let mut conn = db.conn().await?;
    conn.query_drop("CALL add_user('new')").await?;
    assert_eq!(
        rows(&mut conn, "SELECT note FROM audit").await?,
        ["new user new"]
    );
    assert_eq!(
        rows(&mut conn, "SELECT COUNT(*) FROM user_names").await?,
        ["3"]
    );
    assert_eq!(rows(&mut conn, "SELECT NEXTVAL(tickets)").await?, ["100"]);
    Ok(())
}

#[tokio::test]
async fn clean_drops_new_databases_and_users_and_restores_grants() -> anyhow::Result<()> {
    let db = DB.fresh().await?;
    let before = baseline(&db).await?;
    let users = db.list_users().await?;
    let mut conn = db.conn().await?;
    conn.query_drop(
        "CREATE DATABASE scratch; CREATE TABLE scratch.t (id INT); \
         CREATE USER 'eve'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON test.* TO 'eve'@'%'; \
         CREATE ROLE reader",
    )
    .await?;
    assert!(db.list_databases().await?.contains(&"scratch".to_string()));
    assert!(db.list_users().await?.contains(&"eve@%".to_string()));
    drop(conn);
    let report = db.clean_with_report().await?;
    assert!(report.server_restored, "{report:?}");
    assert_eq!(db.list_databases().await?, ["test"]);
    assert_eq!(db.list_users().await?, users);
    assert_eq!(state(&db).await?, before);
    Ok(())
}

#[tokio::test]
async fn clean_ends_an_open_transaction_instead_of_waiting_for_it() -> anyhow::Result<()> {
    let db = DB.fresh().await?;
    let before = baseline(&db).await?;
    let mut conn = db.conn().await?;
    conn.query_drop("START TRANSACTION; UPDATE users SET name = 'locked'; INSERT INTO orders (user_id, total) VALUES (1, 1)")
        .await?;
    let started = Instant::now();
    db.clean_with_report().await?;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(state(&db).await?, before);
    assert!(
        conn.query_drop("SELECT 1").await.is_err(),
        "the test's session was ended"
    );
    Ok(())
}

/// `#[seaworthy::test]`-style hand-outs: whatever a test leaves, the next one starts at the
/// baseline (the clean runs at hand-out).
#[tokio::test]
async fn a_test_that_fails_never_hands_its_rows_to_the_next() -> anyhow::Result<()> {
    {
        let db = DB.fresh().await?;
        let mut conn = db.conn().await?;
        conn.query_drop("DELETE FROM orders; DELETE FROM users")
            .await?;
        db.mark_failed();
    }
    let db = DB.fresh().await?;
    let mut conn = db.conn().await?;
    assert_eq!(rows(&mut conn, "SELECT COUNT(*) FROM users").await?, ["2"]);
    Ok(())
}

/// What one isolated test does: write rows of its own and read back only those.
async fn use_an_isolated_database(
    id: usize,
    barrier: Option<Arc<Barrier>>,
) -> anyhow::Result<String> {
    let iso = ISO.isolated_database().await?;
    let mut conn = iso.conn().await?;
    assert_eq!(
        rows(&mut conn, "SELECT name FROM users ORDER BY id").await?,
        ["ada", "grace"],
        "test {id} starts at the baseline"
    );
    for k in 0..20 {
        conn.query_drop(format!("INSERT INTO users (name) VALUES ('t{id}-{k}')"))
            .await?;
    }
    conn.query_drop(format!("CREATE TABLE own_{id} (x INT)"))
        .await?;
    if let Some(barrier) = barrier {
        tokio::task::spawn_blocking(move || barrier.wait()).await?;
    }
    let names = rows(&mut conn, "SELECT name FROM users WHERE id > 2").await?;
    assert_eq!(names.len(), 20, "test {id} sees its 20 rows and no others");
    assert!(names.iter().all(|n| n.starts_with(&format!("t{id}-"))));
    // The trigger of the clone writes the clone's audit table.
    assert_eq!(rows(&mut conn, "SELECT COUNT(*) FROM audit").await?, ["20"]);
    let mut tables = iso.list_tables().await?;
    tables.sort();
    assert!(
        tables.contains(&format!("own_{id}")) && tables.len() == 5,
        "{tables:?}"
    );
    Ok(iso.name().to_string())
}

/// Eight tests at once, each on its own thread and runtime (as `#[tokio::test]`s are), all
/// holding their database at the same time.
#[test]
fn eight_parallel_isolated_tests_see_only_their_own_rows() {
    let barrier = Arc::new(Barrier::new(8));
    let mut names: Vec<String> = common::run_on_threads(1..=8, move |id| {
        use_an_isolated_database(id, Some(barrier.clone()))
    });
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 8, "eight different databases: {names:?}");
    // Released: the databases are dropped in the background.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = ISO.get().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut conn = db.conn().await.unwrap();
            let left = rows(
                &mut conn,
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA",
            )
            .await
            .unwrap();
            if !names.iter().any(|n| left.contains(n)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "isolated databases left: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The fixture's own database was never touched.
        let mut conn = db.conn().await.unwrap();
        assert_eq!(
            rows(&mut conn, "SELECT COUNT(*) FROM users").await.unwrap(),
            ["2"]
        );
    });
}

#[tokio::test]
async fn an_isolated_database_is_a_full_copy_of_the_baseline() -> anyhow::Result<()> {
    let iso = ISO.isolated_database().await?;
    let mut conn = iso.conn().await?;
    conn.query_drop("INSERT INTO users (name) VALUES ('x')")
        .await?;
    assert_eq!(
        conn.last_insert_id(),
        Some(3),
        "the counter is the baseline's"
    );
    conn.query_drop("CALL add_user('y')").await?;
    assert_eq!(
        rows(&mut conn, "SELECT COUNT(*) FROM user_names").await?,
        ["4"]
    );
    assert_eq!(rows(&mut conn, "SELECT NEXTVAL(tickets)").await?, ["100"]);
    assert_eq!(
        rows(&mut conn, "SELECT v_upper FROM settings").await?,
        ["TEST"]
    );
    Ok(())
}

const CHILD_DEADLINE: Duration = Duration::from_secs(180);

/// An isolated database dropped by a failing test: kept with `keep` (the child runs with
/// `SEAWORTHY_KEEP_ON_FAILURE=1`), dropped without.
async fn a_failed_tests_database(keep: bool) -> anyhow::Result<()> {
    let db = mariadb().with_pool_size(0).start().await?;
    let iso = db.isolated_database().await?;
    let name = iso.name().to_string();
    common::drop_in_a_failing_test(iso);
    let exists = || async {
        let mut conn = db.conn().await?;
        let found = rows(&mut conn, &format!("SHOW DATABASES LIKE '{name}'")).await?;
        Ok::<bool, anyhow::Error>(!found.is_empty())
    };
    let kept = async {
        anyhow::ensure!(exists().await?, "kept");
        Ok(())
    };
    let dropped = || async { Ok(!exists().await?) };
    common::assert_kept_or_released(keep, "the database", kept, dropped, Duration::from_secs(10))
        .await
}

common::keep_on_failure_tests!(
    /// `SEAWORTHY_KEEP_ON_FAILURE=1` keeps the isolated database of a failed test; without it,
    /// the database is dropped.
    keep_on_failure_keeps_a_failed_tests_database,
    a_failing_test_with_keep_on_failure,
    a_failed_tests_database,
    CHILD_DEADLINE,
);

/// The image's contract: an application user (`MARIADB_USER`), an init script in
/// /docker-entrypoint-initdb.d (part of the baseline), a customised container; an invalid
/// definition is refused before any container exists.
#[tokio::test]
async fn the_image_contract_and_invalid_definitions() -> anyhow::Result<()> {
    let session = seaworthy::Session::global().await?;
    let since = std::time::SystemTime::now() - Duration::from_secs(1);
    let label = common::test_label("mariadb-definition");
    let (key, value) = label.split_once('=').unwrap();
    let labelled = |m: MariaDb| m.with_container(|c| c.with_label(key, value));
    for (def, kind, input) in [
        (
            MariaDb::new().with_database("mysql"),
            "mariadb database name",
            "mysql",
        ),
        (
            MariaDb::new().with_root_password(""),
            "mariadb root password",
            "",
        ),
        (
            MariaDb::new().with_user("root", "x"),
            "mariadb user",
            "root",
        ),
    ] {
        let err: seaworthy::Error = labelled(def).start().await.unwrap_err().into();
        common::assert_invalid(&err, kind, input);
    }
    assert_eq!(
        common::created_containers(&session, &label, since).await?,
        Vec::<String>::new(),
        "an invalid definition created a container"
    );
    let db = labelled(
        MariaDb::new()
            .with_database("app")
            .with_user("app", "app-secret")
            .with_container(|c| {
                c.with_file(
                    "/docker-entrypoint-initdb.d/10-schema.sql",
                    "CREATE TABLE seeded (id INT); INSERT INTO seeded VALUES (7);",
                    0o644,
                )
            }),
    )
    .start()
    .await?;
    let opts = mysql_async::OptsBuilder::from_opts(db.opts()?)
        .user(Some("app"))
        .pass(Some("app-secret"));
    let mut conn = Conn::new(opts).await?;
    assert_eq!(rows(&mut conn, "SELECT id FROM seeded").await?, ["7"]);
    conn.query_drop("DELETE FROM seeded").await?;
    drop(conn);
    db.clean_with_report().await?;
    let mut conn = db.conn().await?;
    assert_eq!(
        rows(&mut conn, "SELECT id FROM seeded").await?,
        ["7"],
        "the init script is the baseline"
    );
    assert!(db.list_users().await?.contains(&"app@%".to_string()));
    // Through the core's trait, errors keep their chain: a stopped server fails the clean.
    db.container().stop(Duration::ZERO).await?;
    let err = tokio::time::timeout(Duration::from_secs(60), Fixture::clean(&db))
        .await?
        .unwrap_err();
    assert!(
        matches!(err, seaworthy_mariadb::Error::Query { .. }),
        "{err}"
    );
    Ok(())
}
