//! The PostgreSQL fixture against the real engine: readiness, clean() back to the baseline,
//! isolated databases, inspection, redaction. One container is shared by the whole file; tests
//! that clean it hold it exclusively, the others share it through isolated databases.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seaworthy::{Fixture, FixtureDefinition, Isolation, Shared};
use seaworthy_postgres::{CleanPath, Postgres, PostgresFixture};
use tokio::sync::Barrier;

const PASSWORD: &str = "s3cret-pw";

fn postgres() -> Postgres {
    Postgres::default()
        .with_password(PASSWORD)
        .with_database("app")
        .with_init_sql(include_str!("schema.sql"))
}

static PG: Shared<Postgres> = Shared::per_process(postgres);

/// Everything a test could have changed, as text: rows, sequence positions, schemas, roles and
/// their attributes, privileges, types, functions, triggers, databases, settings.
async fn state(pg: &PostgresFixture) -> anyhow::Result<Vec<String>> {
    let client = pg.client().await?;
    let queries = [
        "SELECT string_agg(format('%s|%s|%s', id, name, created), ';' ORDER BY id) FROM users",
        "SELECT coalesce(string_agg(format('%s|%s', id, message), ';' ORDER BY id), '') FROM audit",
        "SELECT coalesce(string_agg(format('%s|%s|%s|%s', id, user_id, amount, note_length), ';' ORDER BY id), '') FROM orders",
        "SELECT string_agg(format('%s.%s=%s', schemaname, sequencename, coalesce(last_value::text, 'unused')), ';' ORDER BY sequencename) FROM pg_sequences",
        "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'",
        "SELECT string_agg(format('%s:%s:%s:%s', rolname, rolcanlogin, rolconnlimit, rolsuper), ',' ORDER BY rolname) FROM pg_roles WHERE rolname !~ '^pg_'",
        "SELECT coalesce(string_agg(format('%s>%s', roleid::regrole, member::regrole), ',' ORDER BY roleid, member), '') FROM pg_auth_members WHERE member::regrole::text !~ '^pg_'",
        "SELECT string_agg(format('%s:%s:%s', relname, relkind, coalesce(relacl, acldefault((CASE relkind WHEN 'S' THEN 's' ELSE 'r' END)::\"char\", relowner))), ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
        "SELECT string_agg(format('%s.%s %s', attrelid::regclass, attname, format_type(atttypid, atttypmod)), ',' ORDER BY attrelid::regclass::text, attnum) FROM pg_attribute WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r') AND attnum > 0 AND NOT attisdropped",
        "SELECT string_agg(typname, ',' ORDER BY typname) FROM pg_type WHERE typnamespace = 'public'::regnamespace",
        "SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
        "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal",
        "SELECT coalesce(string_agg(array_to_string(setconfig, ' '), ',' ORDER BY setdatabase, setrole), '') FROM pg_db_role_setting",
    ];
    let mut out = Vec::new();
    for q in queries {
        let row = client.query_one(q, &[]).await?;
        out.push(format!(
            "{q}\n  => {}",
            row.get::<_, Option<String>>(0).unwrap_or_default()
        ));
    }
    out.push(format!("databases => {:?}", pg.list_databases().await?));
    Ok(out)
}

#[tokio::test]
async fn readiness_is_checked_through_the_protocol() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    // The image prints its ready line once for the temporary init server and once for the real
    // one: by the time the fixture answers, both were printed.
    let logs = pg.container().logs().await?;
    let ready = logs
        .lines
        .iter()
        .filter(|l| l.text.contains("ready to accept connections"))
        .count();
    assert_eq!(ready, 2, "{:#?}", logs.lines);
    let client = pg.client().await?;
    let one: i32 = client.query_one("SELECT 1", &[]).await?.get(0);
    assert_eq!(one, 1);
    Ok(())
}

#[tokio::test]
async fn clean_restores_the_whole_baseline() -> anyhow::Result<()> {
    let pg = PG.exclusive().await?;
    pg.clean().await?;
    let baseline = state(&pg).await?;
    let client = pg.client().await?;
    client
        .batch_execute(
            "CREATE TABLE scratch (id serial PRIMARY KEY, v text);
             INSERT INTO scratch (v) VALUES ('x');
             CREATE SCHEMA reporting;
             CREATE TABLE reporting.daily (day date);
             CREATE TYPE mood AS ENUM ('happy', 'sad');
             CREATE FUNCTION add_one(i int) RETURNS int LANGUAGE sql AS 'SELECT i + 1';
             CREATE ROLE tester LOGIN PASSWORD 'pw';
             GRANT SELECT, INSERT ON orders TO tester;
             GRANT app_reader TO tester;
             ALTER TABLE reporting.daily OWNER TO tester;
             INSERT INTO users (name) VALUES ('linus'), ('margaret');
             UPDATE users SET name = 'ada lovelace' WHERE name = 'ada';
             DELETE FROM users WHERE name = 'grace';
             INSERT INTO orders (user_id, amount, note) VALUES (1, 9.99, 'first');",
        )
        .await?;
    assert_ne!(state(&pg).await?, baseline);
    // Another session leaves a transaction open, with uncommitted rows and a lock clean() needs.
    let other = pg.client().await?;
    other
        .batch_execute("BEGIN; INSERT INTO users (name) VALUES ('uncommitted'); LOCK TABLE audit IN ACCESS EXCLUSIVE MODE;")
        .await?;

    let report = pg.clean_with_report().await?;
    assert_eq!(report.path, CleanPath::Objects, "{report:?}");
    assert!(report.cluster_restored, "the role tester was dropped");
    assert_eq!(state(&pg).await?, baseline);
    assert!(!pg.list_roles().await?.contains(&"tester".to_string()));
    assert_eq!(pg.list_schemas().await?, ["public"]);
    assert!(
        other.simple_query("SELECT 1").await.is_err(),
        "the open transaction's session was closed"
    );

    // Sequences really start over where the baseline left them.
    let client = pg.client().await?;
    let user: i32 = client
        .query_one("INSERT INTO users (name) VALUES ('next') RETURNING id", &[])
        .await?
        .get(0);
    assert_eq!(user, 4);
    let order: i64 = client
        .query_one(
            "INSERT INTO orders (user_id, amount) VALUES (1, 1) RETURNING id",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(order, 1);
    // The trigger of the baseline still fires (it was off only while clean() restored rows).
    let audit: i64 = client
        .query_one("SELECT count(*) FROM audit", &[])
        .await?
        .get(0);
    assert_eq!(audit, 4);
    pg.clean().await?;
    assert_eq!(state(&pg).await?, baseline);
    Ok(())
}

#[tokio::test]
async fn data_only_changes_take_the_fast_path() -> anyhow::Result<()> {
    let pg = PG.exclusive().await?;
    pg.clean().await?;
    let baseline = state(&pg).await?;
    let client = pg.client().await?;
    client
        .batch_execute(
            "INSERT INTO users (name) SELECT 'user ' || i FROM generate_series(1, 500) i;
             INSERT INTO orders (user_id, amount) SELECT id, 1 FROM users;
             TRUNCATE audit;",
        )
        .await?;
    let report = pg.clean_with_report().await?;
    assert_eq!(report.path, CleanPath::Data, "{report:?}");
    assert!(!report.cluster_restored);
    assert_eq!(state(&pg).await?, baseline);
    // Nothing changed: still the fast path, and nothing to restore.
    assert_eq!(pg.clean_with_report().await?.path, CleanPath::Data);
    Ok(())
}

#[tokio::test]
async fn clean_recreates_the_database_when_a_baseline_table_was_altered() -> anyhow::Result<()> {
    let pg = PG.exclusive().await?;
    pg.clean().await?;
    let baseline = state(&pg).await?;
    let client = pg.client().await?;
    client
        .batch_execute("ALTER TABLE users ADD COLUMN email text; DROP TABLE audit CASCADE; ALTER TABLE orders RENAME TO purchases;")
        .await?;
    let report = pg.clean_with_report().await?;
    assert_eq!(report.path, CleanPath::Database, "{report:?}");
    assert_eq!(state(&pg).await?, baseline);
    // The fixture's connections survive the database being re-created.
    assert_eq!(pg.clean_with_report().await?.path, CleanPath::Data);
    Ok(())
}

#[tokio::test]
async fn cluster_changes_are_undone() -> anyhow::Result<()> {
    let pg = PG.exclusive().await?;
    pg.clean().await?;
    let baseline = state(&pg).await?;
    let client = pg.client().await?;
    client.batch_execute("CREATE DATABASE scratch_db").await?;
    client
        .batch_execute(
            "ALTER ROLE app_reader LOGIN CONNECTION LIMIT 3;
             ALTER DATABASE app SET work_mem = '8MB';
             ALTER ROLE app_reader SET statement_timeout = '5s';
             CREATE ROLE auditor;
             GRANT auditor TO app_reader;",
        )
        .await?;
    assert!(pg
        .list_databases()
        .await?
        .contains(&"scratch_db".to_string()));
    let report = pg.clean_with_report().await?;
    assert_eq!(
        report.path,
        CleanPath::Data,
        "no object of the database changed: {report:?}"
    );
    assert!(report.cluster_restored);
    assert_eq!(state(&pg).await?, baseline);
    assert!(!pg
        .list_databases()
        .await?
        .contains(&"scratch_db".to_string()));
    Ok(())
}

#[tokio::test]
async fn init_sql_baseline_survives_clean() -> anyhow::Result<()> {
    let pg = PG.exclusive().await?;
    for _ in 0..3 {
        let client = pg.client().await?;
        client
            .batch_execute(
                "DELETE FROM orders; DELETE FROM users; DROP TRIGGER users_audit ON users;",
            )
            .await?;
        pg.clean().await?;
        let client = pg.client().await?;
        let names: Vec<String> = client
            .query("SELECT name FROM users ORDER BY id", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            names,
            [
                "ada",
                "grace",
                "it's \"quoted\", {braced} \\ and (parenthesised)"
            ]
        );
        let tables: Vec<String> = pg
            .list_tables()
            .await?
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(tables, ["public.audit", "public.orders", "public.users"]);
    }
    let client = pg.client().await?;
    let reader: bool = client
        .query_one(
            "SELECT has_table_privilege('app_reader', 'users', 'SELECT')",
            &[],
        )
        .await?
        .get(0);
    assert!(reader, "the baseline's grant is still there");
    Ok(())
}

/// How long the eight tests wait for each other at the barrier: a test that fails before it
/// must not leave the others waiting for ever.
const BARRIER_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn eight_concurrent_tests_get_isolated_databases() -> anyhow::Result<()> {
    // One hold on the shared fixture for all eight: were each to take its own, a test of this
    // file waiting for the fixture exclusively could queue between two of them, and wait for the
    // first ones while the others wait for it at the barrier.
    let pg = PG.get().await?;
    let barrier = Arc::new(Barrier::new(8));
    let held = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (barrier, held, pg) = (barrier.clone(), held.clone(), (*pg).clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let db = pg.isolated_database().await?;
            let checkout = started.elapsed();
            let client = db.client().await?;
            client
                .batch_execute(&format!(
                    "INSERT INTO users (name) VALUES ('test {i}');
                     CREATE TABLE only_{i} (v int);
                     INSERT INTO only_{i} VALUES ({i});"
                ))
                .await?;
            held.lock().unwrap().push(db.name().to_string());
            // Every test has written before any reads: the eight databases are all checked out
            // now, and the last to arrive checks that they all exist at once.
            let arrived = tokio::time::timeout(BARRIER_DEADLINE, barrier.wait())
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "test {i}: the other tests did not reach the barrier within {BARRIER_DEADLINE:?}"
                    )
                })?;
            if arrived.is_leader() {
                // pg_database is shared by the whole cluster: asked from this test's own
                // database (taking another guard on PG here could queue behind a test waiting
                // for it exclusively, which waits for these eight).
                let names = held.lock().unwrap().clone();
                let live: i64 = client
                    .query_one(
                        "SELECT count(*) FROM pg_database WHERE datname = ANY($1)",
                        &[&names],
                    )
                    .await?
                    .get(0);
                anyhow::ensure!(
                    live == 8,
                    "eight isolated databases exist at once, not {live}: {names:?}"
                );
            }
            // Each sees the baseline plus its own changes, and nothing of the others'.
            let names: Vec<String> = client
                .query("SELECT name FROM users WHERE name LIKE 'test %'", &[])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            anyhow::ensure!(names == [format!("test {i}")], "test {i} sees {names:?}");
            let count: i64 = client
                .query_one("SELECT count(*) FROM users", &[])
                .await?
                .get(0);
            anyhow::ensure!(count == 4, "test {i} sees {count} users");
            let tables: Vec<String> = db
                .list_tables()
                .await?
                .iter()
                .map(|t| t.name.clone())
                .collect();
            anyhow::ensure!(
                tables == ["audit", format!("only_{i}").as_str(), "orders", "users"],
                "test {i} sees tables {tables:?}"
            );
            Ok::<_, anyhow::Error>((db.name().to_string(), checkout))
        }));
    }
    let mut names = HashSet::new();
    for task in tasks {
        let (name, checkout) = task.await??;
        eprintln!("checked out {name} in {checkout:?}");
        assert!(name.starts_with("app_iso_"), "{name}");
        names.insert(name);
    }
    assert_eq!(names.len(), 8, "every test got a database of its own");
    // Dropping the guards dropped the databases (in the background).
    let client = pg.client().await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = ANY($1)",
                &[&names.iter().collect::<Vec<_>>()],
            )
            .await?
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} isolated databases were not dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn isolated_databases_are_released_and_listed() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    let db = Isolation::isolate(&*pg).await?;
    let name = db.name().to_string();
    let client = db.client().await?;
    client
        .batch_execute(
            "CREATE SCHEMA extra; CREATE TABLE extra.t (v int); CREATE EXTENSION hstore;",
        )
        .await?;
    assert_eq!(db.list_schemas().await?, ["extra", "public"]);
    let tables: Vec<String> = db
        .list_tables()
        .await?
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(
        tables,
        ["extra.t", "public.audit", "public.orders", "public.users"]
    );
    let extensions: Vec<String> = db
        .list_extensions()
        .await?
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(extensions, ["hstore", "plpgsql"]);
    // The fixture's own database is untouched, and lists no Seaworthy databases.
    assert_eq!(pg.list_schemas().await?, ["public"]);
    assert!(
        !pg.list_databases()
            .await?
            .iter()
            .any(|d| d.starts_with("app_")),
        "{:?}",
        pg.list_databases().await?
    );
    db.release().await?;
    let admin = pg.client().await?;
    let exists: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .await?
        .get(0);
    assert!(!exists, "release() dropped {name}");
    Ok(())
}

#[tokio::test]
async fn inspection_helpers_list_the_fixture() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    let databases = pg.list_databases().await?;
    assert!(
        databases.contains(&"app".to_string()) && databases.contains(&"postgres".to_string()),
        "{databases:?}"
    );
    assert!(
        !databases.iter().any(|d| d.starts_with("template")),
        "{databases:?}"
    );
    let roles = pg.list_roles().await?;
    assert!(
        roles.contains(&"app_reader".to_string()) && roles.contains(&"postgres".to_string()),
        "{roles:?}"
    );
    assert!(!roles.iter().any(|r| r.starts_with("pg_")));
    let extensions = pg.list_extensions().await?;
    assert_eq!(extensions[0].name, "plpgsql");
    assert!(!extensions[0].version.is_empty());
    assert_eq!(pg.template_database(), "app_baseline");
    Ok(())
}

#[tokio::test]
async fn connection_info_redacts_the_password() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    let info = Fixture::connection(&*pg);
    assert_eq!(info.scheme, "postgres");
    assert_eq!(info.user.as_deref(), Some("postgres"));
    assert_eq!(info.path.as_deref(), Some("app"));
    assert_eq!(info.password(), Some(PASSWORD));
    assert!(pg.url().contains(PASSWORD), "the URL is for clients");
    for shown in [
        info.to_string(),
        format!("{info:?}"),
        format!("{:?}", *pg),
        format!("{:?}", postgres()),
    ] {
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
    assert!(
        info.to_string().starts_with("postgres://postgres:***@"),
        "{info}"
    );
    let db = pg.isolated_database().await?;
    assert!(!db.connection().to_string().contains(PASSWORD));
    assert!(!format!("{db:?}").contains(PASSWORD));
    assert!(db.url().contains(PASSWORD));
    // A client configured from the URL reaches the isolated database.
    let (client, connection) = seaworthy_postgres::tokio_postgres::connect(
        &db.url(),
        seaworthy_postgres::tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(connection);
    let current: String = client
        .query_one("SELECT current_database()::text", &[])
        .await?
        .get(0);
    assert_eq!(current, db.name());
    Ok(())
}

#[tokio::test]
async fn a_fixture_for_one_test_runs_its_init_closure_and_is_removed() -> anyhow::Result<()> {
    let pg = Postgres::default()
        .with_init_sql("CREATE TABLE kv (k text PRIMARY KEY, v text)")
        .with_init("seed kv", |ctx| async move {
            ctx.client
                .execute(
                    "INSERT INTO kv VALUES ('url', $1)",
                    &[&ctx.connection.redacted_url()],
                )
                .await?;
            Ok(())
        })
        .with_data_on_tmpfs(true)
        .start()
        .await?;
    let client = pg.client().await?;
    client
        .execute("INSERT INTO kv VALUES ('extra', 'x')", &[])
        .await?;
    pg.clean().await?;
    let client = pg.client().await?;
    let rows: Vec<(String, String)> = client
        .query("SELECT k, v FROM kv ORDER BY k", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        [(
            "url".to_string(),
            format!(
                "postgres://postgres:***@{}:{}/test",
                pg.container().host(),
                pg.container().host_port(5432)?
            )
        )]
    );
    let container = pg.container().name().to_string();
    let session = pg.container().session().clone();
    drop(client);
    drop(pg);
    let deadline = Instant::now() + Duration::from_secs(20);
    let exists = || {
        let (session, container) = (session.clone(), container.clone());
        seaworthy::runtime::run(async move {
            session
                .engine()
                .docker()
                .inspect_container(&container, None)
                .await
                .is_ok()
        })
    };
    while exists().await {
        assert!(
            Instant::now() < deadline,
            "container {container} was not removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// An invalid definition is refused before anything is created, naming the field and value, by
/// every way of starting it; a customised container (`with_container`) reaches the engine.
#[tokio::test]
async fn invalid_definitions_create_nothing_and_customisations_reach_the_container(
) -> anyhow::Result<()> {
    let session = seaworthy::Session::global().await?;
    let since = std::time::SystemTime::now() - Duration::from_secs(1);
    let label = seaworthy_testkit::test_label("postgres-definition");
    let (key, value) = label.split_once('=').unwrap();
    let labelled = |pg: Postgres| {
        pg.with_pool_size(0)
            .with_container(|c| c.with_label(key, value).with_env("SW_CUSTOM", "yes"))
    };
    let invalid = [
        (
            Postgres::default().with_database("postgres"),
            "postgres database name",
            "postgres",
        ),
        (
            Postgres::default().with_password(""),
            "postgres password",
            "",
        ),
        (
            Postgres::default().with_setting("work mem", "1MB"),
            "postgres setting name",
            "work mem",
        ),
    ];
    for (pg, kind, input) in invalid {
        let pg = labelled(pg);
        let refused = |e: &seaworthy::Error| matches!(e, seaworthy::Error::Invalid { kind: k, input: i, .. } if *k == kind && i == input);
        let err: seaworthy::Error = FixtureDefinition::start(&pg).await.unwrap_err().into();
        assert!(refused(&err), "{err}");
        match pg.start().await {
            Err(seaworthy_postgres::Error::Seaworthy(e)) => assert!(refused(&e), "{e}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        seaworthy_testkit::created_containers(&session, &label, since).await?,
        Vec::<String>::new(),
        "an invalid definition created a container"
    );
    let pg = labelled(Postgres::default()).start().await?;
    seaworthy_testkit::assert_label_and_env(pg.container(), &label, "SW_CUSTOM=yes").await?;
    assert_eq!(
        seaworthy_testkit::created_containers(&session, &label, since).await?,
        [pg.container().name()]
    );
    Ok(())
}

/// A fixture error met through the core's traits is an `Error::Fixture` whose source is this
/// crate's error (with its SQLSTATE), itself caused by the client's.
#[tokio::test]
async fn a_fixture_error_keeps_its_source_chain() -> anyhow::Result<()> {
    use std::error::Error as _;
    let pg = Postgres::default()
        .with_pool_size(0)
        .with_init_sql("SELECT no_such_column");
    let err: seaworthy::Error = pg.start().await.unwrap_err().into();
    let seaworthy::Error::Fixture { container, .. } = &err else {
        panic!("expected Error::Fixture, got {err:?}");
    };
    assert!(container.starts_with("sw-"), "{container}");
    let own: &seaworthy_postgres::Error =
        seaworthy_testkit::fixture_source(&err, "postgres", container);
    assert_eq!(own.code(), Some("42703"), "{own}");
    let client = own
        .source()
        .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
        .expect("the client's error is behind it");
    assert!(client.as_db_error().is_some(), "{client}");
    Ok(())
}

/// With durability off (the default), a commit PostgreSQL acknowledged may still be in its WAL
/// buffers when a test snapshots the container; the definition's snapshot flush (a CHECKPOINT)
/// writes it out first. The WAL writer is slowed from 200 ms to 10 s so that the commit is still
/// in memory at the snapshot every time.
#[tokio::test]
async fn a_snapshot_right_after_a_load_restores_every_row() -> anyhow::Result<()> {
    let pg = Postgres::default()
        .with_password(PASSWORD)
        .with_database("app")
        .with_setting("wal_writer_delay", "10000")
        .start()
        .await?;
    let count = |pg: &PostgresFixture| {
        let pg = pg.clone();
        async move {
            let row = pg
                .client()
                .await?
                .query_one("SELECT count(*) FROM rows", &[])
                .await?;
            anyhow::Ok(row.get::<_, i64>(0))
        }
    };
    // One simple query, one transaction, acknowledged with its commit record still in memory.
    pg.client()
        .await?
        .batch_execute(
            "CREATE TABLE rows (id bigint PRIMARY KEY, payload text); \
             INSERT INTO rows SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
        )
        .await?;
    let snapshot = pg.container().snapshot("loaded").await?;
    pg.client()
        .await?
        .batch_execute("DELETE FROM rows WHERE id <= 1000")
        .await?;
    pg.container().restore(&snapshot).await?;
    assert_eq!(count(&pg).await?, 5000, "every row after the restore");
    Ok(())
}

/// A data directory on a tmpfs is empty after the container restarts, while the baseline's
/// record in the container's /tmp stays: a record whose template database is gone is not
/// trusted, the baseline is built anew (here: a record left in a fresh container).
#[tokio::test]
async fn a_baseline_record_without_its_template_is_recorded_again() -> anyhow::Result<()> {
    use seaworthy::ContainerFixtureDefinition;
    let def = postgres().with_data_on_tmpfs(true).with_pool_size(0);
    let container = def.container_definition().start().await?;
    let stale = r#"{"max_oid":1,"schema_digest":"x","global_digest":"y","roles_sql":"","server_version":150000,"databases":[]}"#;
    container
        .write_file(
            "/tmp/.seaworthy-postgres-v1-app-baseline.json",
            stale,
            0o600,
        )
        .await?;
    let pg = ContainerFixtureDefinition::attach(&def, container).await?;
    let tables: Vec<String> = pg
        .list_tables()
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(tables.contains(&"users".to_string()), "{tables:?}");
    let client = pg.client().await?;
    client
        .execute(
            "INSERT INTO users (name) VALUES ('after the baseline')",
            &[],
        )
        .await?;
    drop(client);
    pg.clean().await?;
    let names: Vec<String> = pg
        .client()
        .await?
        .query("SELECT name FROM users", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!names.is_empty(), "the seed rows are the baseline's");
    assert!(
        !names.iter().any(|n| n == "after the baseline"),
        "{names:?}"
    );
    let db = pg.isolated_database().await?;
    assert!(db.list_tables().await?.iter().any(|t| t.name == "users"));
    Ok(())
}

/// Whether the template of database `db` allows connections.
async fn template_open(
    client: &seaworthy_postgres::tokio_postgres::Client,
    db: &str,
) -> anyhow::Result<bool> {
    Ok(client
        .query_one(
            "SELECT datallowconn FROM pg_database WHERE datname = $1",
            &[&format!("{db}_baseline")],
        )
        .await?
        .get(0))
}

/// The names in `users`, in order.
async fn user_names(pg: &PostgresFixture) -> anyhow::Result<Vec<String>> {
    Ok(pg
        .client()
        .await?
        .query("SELECT name FROM users ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// A handle that attaches to a container whose baseline is recorded (another process of the
/// run, a later run reusing it) takes the clean function from the record: the template is
/// closed to connections once read. A template opened again and changed by hand is read
/// again, so the clean returns to what it holds now.
#[tokio::test]
async fn a_template_changed_by_hand_gets_its_clean_function_compiled_again() -> anyhow::Result<()> {
    fn def() -> Postgres {
        postgres().with_database("handmade").with_pool_size(0)
    }
    const BY_HAND: &str = "added to the template by hand";
    let first = Shared::per_run(def);
    let pg = first.fresh().await?;
    let seed = user_names(&pg).await?;
    let client = pg.client().await?;
    assert!(
        !template_open(&client, "handmade").await?,
        "the template is closed once read"
    );
    client
        .batch_execute("ALTER DATABASE handmade_baseline WITH ALLOW_CONNECTIONS true")
        .await?;
    let mut config = pg.config()?;
    config.dbname("handmade_baseline");
    let (template, connection) = config
        .connect(seaworthy_postgres::tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    template
        .execute("INSERT INTO users (name) VALUES ($1)", &[&BY_HAND])
        .await?;
    drop(template);
    drop((client, pg, first));

    // A new handle on the run's container (as another process attaches).
    let second = Shared::per_run(def);
    let pg = second.fresh().await?;
    let names = user_names(&pg).await?;
    assert_eq!(names.len(), seed.len() + 1, "{names:?}");
    assert!(names.iter().any(|n| n == BY_HAND), "{names:?}");
    let client = pg.client().await?;
    assert!(
        !template_open(&client, "handmade").await?,
        "closed again once read"
    );
    drop((client, pg, second));

    // The record now holds the new clean function: a handle that attaches later uses it.
    let third = Shared::per_run(def);
    let pg = third.fresh().await?;
    pg.client()
        .await?
        .batch_execute("DELETE FROM orders; DELETE FROM users")
        .await?;
    pg.clean().await?;
    assert_eq!(user_names(&pg).await?, names);
    Ok(())
}
