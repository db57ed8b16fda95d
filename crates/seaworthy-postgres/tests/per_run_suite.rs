//! Example: one PostgreSQL container for a whole test run, across processes.
//!
//! `cargo nextest run` runs every test in a process of its own, so a per-process fixture would
//! start one container per test. `Shared::per_run` starts one for the run: the first test
//! process creates it (under a cross-process lock) and records the baseline; the others find it
//! by its labels and attach. Each test takes an isolated database; under nextest its name is
//! keyed by `NEXTEST_TEST_GLOBAL_SLOT`. The container belongs to no test process: Seaworthy's
//! reaper removes it once the test runner has exited.
//!
//! The same file works under `cargo test` (one process, one container).

use seaworthy_testkit as common;

use std::time::{Duration, Instant};

use seaworthy::Shared;
use seaworthy_postgres::tokio_postgres::{Client, Config, NoTls};
use seaworthy_postgres::{Postgres, SharedPostgres};

fn postgres() -> Postgres {
    Postgres::default().with_database("ledger").with_init_sql(
        "CREATE TABLE entries (id bigserial PRIMARY KEY, amount_cents bigint NOT NULL)",
    )
}

static PG: Shared<Postgres> = Shared::per_run(postgres);

#[tokio::test]
async fn writes_an_entry() -> anyhow::Result<()> {
    let db = PG.isolated_database().await?;
    let client = db.client().await?;
    client
        .execute("INSERT INTO entries (amount_cents) VALUES (100)", &[])
        .await?;
    let total: i64 = client
        .query_one("SELECT sum(amount_cents)::bigint FROM entries", &[])
        .await?
        .get(0);
    assert_eq!(total, 100);
    Ok(())
}

#[tokio::test]
async fn sees_only_its_own_entries() -> anyhow::Result<()> {
    let db = PG.isolated_database().await?;
    let client = db.client().await?;
    client
        .execute("INSERT INTO entries (amount_cents) VALUES (-5)", &[])
        .await?;
    let count: i64 = client
        .query_one("SELECT count(*) FROM entries", &[])
        .await?
        .get(0);
    assert_eq!(count, 1);
    Ok(())
}

#[tokio::test]
async fn the_container_is_shared_by_the_run() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    let labels = pg
        .container()
        .inspect()
        .await?
        .config
        .and_then(|c| c.labels)
        .unwrap_or_default();
    assert_eq!(
        labels.get("io.seaworthy.owner").map(String::as_str),
        Some("run")
    );
    assert_eq!(
        labels.get("io.seaworthy.managed").map(String::as_str),
        Some("true")
    );
    Ok(())
}

// Not part of the example: how the run's processes key their databases under nextest. Each test
// below re-runs this binary as child processes with `NEXTEST_TEST_GLOBAL_SLOT` set (setting it in
// this multithreaded process would be unsound); the children of a test form a run of their own,
// sharing one container through `PG`, which the test looks into from outside.

/// How long a child may take for each step (the first one starts the run's container).
const CHILD_DEADLINE: Duration = Duration::from_secs(90);

/// The superuser's password: `postgres()` keeps `Postgres`'s default.
const PASSWORD: &str = "postgres";

/// The child test of [`nextest_slots_key_the_databases`], run as cargo-nextest runs a test:
/// checks out a database, adds an entry of its parameter's amount, shows the parent its database
/// (`ID=NAME HOST PORT`), and once told to go on checks that it sees its own entry alone, then
/// releases the database (a child killed while it waits leaves the database behind, as a
/// crashed test would).
#[tokio::test]
#[ignore = "a child process of nextest_slots_key_the_databases"]
async fn a_test_process_in_a_nextest_slot() -> anyhow::Result<()> {
    let Some(amount) = common::param() else {
        return Ok(());
    };
    let amount: i64 = amount.parse()?;
    let db = PG.isolated_database().await?;
    let client = db.client().await?;
    client
        .execute("INSERT INTO entries (amount_cents) VALUES ($1)", &[&amount])
        .await?;
    let at = db.connection();
    common::report(&[db.name(), &at.host, &at.port.to_string()]);
    common::wait_for_parent(CHILD_DEADLINE).await?;
    let amounts: Vec<i64> = client
        .query("SELECT amount_cents FROM entries", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    anyhow::ensure!(
        amounts == [amount],
        "{} sees the entries {amounts:?}",
        db.name()
    );
    drop(client);
    db.release().await?;
    Ok(())
}

/// The children's server, seen from this process.
struct Server {
    host: String,
    port: u16,
}

impl Server {
    /// Where the child that printed `ids` (`NAME HOST PORT`) has its database.
    fn of(ids: &[String]) -> anyhow::Result<Server> {
        Ok(Server {
            host: ids[1].clone(),
            port: ids[2].parse()?,
        })
    }

    /// A client of database `name`.
    async fn client(&self, name: &str) -> anyhow::Result<Client> {
        let (client, connection) = Config::new()
            .host(&self.host)
            .port(self.port)
            .user("postgres")
            .password(PASSWORD)
            .dbname(name)
            .connect(NoTls)
            .await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// The entries of database `name`.
    async fn entries_of(&self, name: &str) -> anyhow::Result<Vec<i64>> {
        Ok(self
            .client(name)
            .await?
            .query("SELECT amount_cents FROM entries ORDER BY id", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// Which of `names` exist.
    async fn existing(&self, names: &[&str]) -> anyhow::Result<Vec<String>> {
        Ok(self
            .client("postgres")
            .await?
            .query(
                "SELECT datname::text FROM pg_database WHERE datname = ANY($1) ORDER BY 1",
                &[&names],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// Waits up to 20 s until exactly `wanted` of `names` exist.
    async fn wait_for(&self, names: &[&str], wanted: &[&str]) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.existing(names).await?;
            if now == wanted {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "of the databases {names:?}, {now:?} exist, not {wanted:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

const CHILD: &str = "a_test_process_in_a_nextest_slot";

/// Under cargo-nextest, a test's database is named for its slot (`ledger_iso_s<slot>_…`), and
/// two slots never see each other's rows.
#[tokio::test]
async fn nextest_slots_key_the_databases() -> anyhow::Result<()> {
    let run = common::ChildRun::new();
    let slots = [0, 1];
    let mut children: Vec<_> = slots
        .iter()
        .map(|slot| {
            run.spawn(
                &format!("slot {slot}"),
                CHILD,
                &(100 + slot).to_string(),
                &[("NEXTEST_TEST_GLOBAL_SLOT", slot.to_string())],
            )
        })
        .collect();
    let mut reported = Vec::new();
    for child in &mut children {
        reported.push(child.read_ids(CHILD_DEADLINE).await);
    }
    let server = Server::of(&reported[0])?;
    let names: Vec<&str> = reported.iter().map(|ids| ids[0].as_str()).collect();
    for (slot, name) in slots.iter().zip(&names) {
        assert!(
            name.starts_with(&format!("ledger_iso_s{slot}_")),
            "slot {slot} got database {name}"
        );
    }
    // Seen from outside while both hold their databases: each has its own entry alone.
    for (slot, name) in slots.iter().zip(&names) {
        assert_eq!(server.entries_of(name).await?, [100 + slot], "{name}");
    }
    for child in &mut children {
        child.proceed().await;
    }
    for child in children {
        child.expect_success(CHILD_DEADLINE).await;
    }
    assert!(
        server.existing(&names).await?.is_empty(),
        "released: {names:?}"
    );
    run.remove().await
}

/// Under cargo-nextest, a test process killed before its database was dropped leaves it behind;
/// the next test of the same slot drops it.
#[tokio::test]
async fn a_database_left_by_a_dead_test_is_reclaimed_by_the_next_test_of_its_slot(
) -> anyhow::Result<()> {
    let run = common::ChildRun::new();
    let slot = [("NEXTEST_TEST_GLOBAL_SLOT", "3".to_string())];
    let mut dead = run.spawn("the test that dies", CHILD, "7", &slot);
    let reported = dead.read_ids(CHILD_DEADLINE).await;
    let server = Server::of(&reported)?;
    let stale = reported[0].clone();
    dead.kill().await;
    assert_eq!(
        server.existing(&[&stale]).await?,
        [stale.as_str()],
        "a killed test cannot drop its database"
    );
    assert_eq!(server.entries_of(&stale).await?, [7]);

    let mut next = run.spawn("the next test", CHILD, "8", &slot);
    let fresh = next.read_ids(CHILD_DEADLINE).await.remove(0);
    assert_ne!(fresh, stale);
    assert!(fresh.starts_with("ledger_iso_s3_"), "{fresh}");
    // Dropped in the background of the next test's checkout, while that test goes on.
    server.wait_for(&[&stale, &fresh], &[&fresh]).await?;
    assert_eq!(server.entries_of(&fresh).await?, [8]);
    next.proceed().await;
    next.expect_success(CHILD_DEADLINE).await;
    assert!(server.existing(&[&stale, &fresh]).await?.is_empty());
    run.remove().await
}
