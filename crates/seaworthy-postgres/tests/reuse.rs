//! Reuse across runs against the real engine: a PostgreSQL fixture shared per run with reuse on
//! outlives its run; the next run finds it, cleans it and hands it out; two runs at once take
//! turns on it; a definition with other init steps never gets it; a dead one is replaced; gc
//! removes idle ones and honours the cap.
//!
//! Each "run" is a child process with a run id of its own (what a `cargo test` is). Every
//! container of the test carries a label of the test's own, by which it is removed at the end,
//! also when the test fails.

use seaworthy_testkit as common;

use std::time::Duration;

use seaworthy::reuse::{self, ReuseGcOptions};
use seaworthy::{Session, Shared};
use seaworthy_postgres::Postgres;

const CHILD: &str = "a_run_using_a_reused_postgres";
const CHILD_DEADLINE: Duration = Duration::from_secs(120);
const GROUP: &str = "io.seaworthy.test.reuse-group";

/// The definition of the child runs: `group|table` in the child's parameter.
fn definition() -> Postgres {
    let param = common::param().unwrap_or_default();
    let (group, table) = param.split_once('|').unwrap_or(("none", "t"));
    let group = group.to_string();
    Postgres::default()
        .with_database("reused")
        .with_init_sql(format!("CREATE TABLE {table} (id int)"))
        .with_pool_size(0)
        .with_container(|c| c.with_label(GROUP, group))
        .with_reuse(true)
}

static DB: Shared<Postgres> = Shared::per_run(definition);

/// Removes the group's reused containers when dropped (at the end of the test, or when it fails).
struct Group(String);

impl Group {
    fn options(&self) -> ReuseGcOptions {
        ReuseGcOptions {
            labels: vec![(GROUP.to_string(), self.0.clone())],
            ..Default::default()
        }
    }

    async fn list(&self) -> anyhow::Result<Vec<reuse::ReusedContainer>> {
        let session = Session::global().await?;
        Ok(reuse::list(session.engine(), &[(GROUP, &self.0)]).await?)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let options = ReuseGcOptions {
            all: true,
            ..self.options()
        };
        common::remove_on_drop("reused containers", move |session| async move {
            reuse::collect(session.engine(), &options).await
        });
    }
}

/// One run: a child process of a run of its own takes the fixture, reports its container and
/// the rows it found, leaves a row behind, and exits; then the run's own resources are removed
/// (what the reaper does when a run ends).
async fn run(param: &str) -> anyhow::Result<(String, String)> {
    let run = common::ChildRun::new();
    let mut child = run.spawn("a run", CHILD, param, &[]);
    let ids = child.read_ids(CHILD_DEADLINE).await;
    child.proceed().await;
    child.expect_success(CHILD_DEADLINE).await;
    run.remove().await?;
    Ok((ids[0].clone(), ids[1].clone()))
}

/// Two runs at once: each child holds the fixture until told to go on, so they take turns.
async fn two_runs_at_once(param: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut handles = Vec::new();
    for _ in 0..2 {
        let param = param.to_string();
        handles.push(tokio::spawn(async move { run(&param).await }));
    }
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await??);
    }
    Ok(out)
}

/// The second run gets the first run's container, cleaned (the row the first run left is gone);
/// two runs at once both get it, one after the other, each clean; a definition with other init steps gets a container of its own; a container found dead is
/// replaced; everything is labelled; gc keeps fixtures used within the idle time, removes the
/// least recently used beyond the cap, and the idle ones.
#[tokio::test]
async fn reuse_hands_out_a_cleaned_fixture_never_across_keys_and_gc_removes_idle_ones(
) -> anyhow::Result<()> {
    let group = Group(format!("g{}", std::process::id()));
    let param = format!("{}|t", group.0);

    let (first, rows) = run(&param).await?;
    assert_eq!(rows, "0");
    let (second, rows) = run(&param).await?;
    assert_eq!(
        second, first,
        "the second run reuses the first run's container"
    );
    assert_eq!(rows, "0", "the row the first run left was cleaned");

    // Two runs at once take turns on the one container: the second finds what the first
    // left and cleans it.
    for (id, rows) in two_runs_at_once(&param).await? {
        assert_eq!(id, first, "both runs reuse the container");
        assert_eq!(rows, "0", "each run finds it clean");
    }
    assert_eq!(group.list().await?.len(), 1, "one container for the key");

    // Labelled: managed, owned by no process nor run (the runs' exits left it).
    let session = Session::global().await?;
    let docker = session.engine().docker();
    let info = docker.inspect_container(&first, None).await?;
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels["io.seaworthy.managed"], "true");
    assert_eq!(
        labels["io.seaworthy.owner"],
        seaworthy::session::OWNER_REUSE
    );
    assert!(labels.contains_key(reuse::LABEL_REUSE_KEY));

    // Other init steps: another key, another container; the first one stays.
    let (other, rows) = run(&format!("{}|u", group.0)).await?;
    assert_ne!(other, first, "never shared across keys");
    assert_eq!(rows, "0");
    assert_eq!(group.list().await?.len(), 2);

    // A reused container found dead is refused, removed and replaced.
    docker.kill_container(&first, None).await?;
    let (replaced, _) = run(&param).await?;
    assert_ne!(replaced, first);
    let ids: Vec<String> = group.list().await?.into_iter().map(|c| c.id).collect();
    assert!(!ids.contains(&first), "{ids:?}");

    // gc: used within the idle time, both stay; a cap of one keeps the most recently used
    // (`replaced`); an idle time of zero removes the rest.
    let keep = ReuseGcOptions {
        idle: Some(Duration::from_secs(3600)),
        ..group.options()
    };
    let (removed, errors) = reuse::collect(session.engine(), &keep).await?;
    assert!(
        errors.is_empty() && removed.is_empty(),
        "{removed:?} {errors:?}"
    );
    let capped = ReuseGcOptions {
        max_count: Some(1),
        ..keep
    };
    let (removed, errors) = reuse::collect(session.engine(), &capped).await?;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].id, other, "the least recently used goes");
    let idle = ReuseGcOptions {
        idle: Some(Duration::ZERO),
        ..group.options()
    };
    let (removed, _) = reuse::collect(session.engine(), &idle).await?;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].id, replaced);
    assert!(group.list().await?.is_empty());
    Ok(())
}

/// The child of the test above: one run's use of the reused fixture.
#[tokio::test]
#[ignore = "run by the test above as a child process"]
async fn a_run_using_a_reused_postgres() -> anyhow::Result<()> {
    let Some(param) = common::param() else {
        return Ok(());
    };
    let table = param.split_once('|').map(|(_, t)| t).unwrap_or("t");
    let pg = DB.fresh().await?;
    let client = pg.client().await?;
    let rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .get(0);
    // Left behind for the next run, which must not see it.
    client
        .execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .await?;
    common::report(&[&pg.container().id(), &rows.to_string()]);
    common::wait_for_parent(CHILD_DEADLINE).await?;
    Ok(())
}

/// The definition of the host copy test: a seeded table, reused across runs.
fn copied() -> Postgres {
    Postgres::default()
        .with_database("copied")
        .with_init_sql("CREATE TABLE seeded (id int); INSERT INTO seeded VALUES (1), (2)")
        .with_pool_size(0)
        .with_container(|c| c.with_label(GROUP, format!("copy{}", std::process::id())))
        .with_reuse(true)
}

/// The host copy of the reused container `id`'s baseline record: its path and its JSON.
fn host_copy(id: &str) -> anyhow::Result<(std::path::PathBuf, serde_json::Value)> {
    let prefix = format!("baseline-copy-{}-", seaworthy::kit::key_hash(id));
    for entry in std::fs::read_dir(seaworthy::gc::state_dir())? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let json = serde_json::from_slice(&std::fs::read(entry.path())?)?;
            return Ok((entry.path(), json));
        }
    }
    anyhow::bail!("no host copy of the baseline record of {id}")
}

/// Takes the fixture as a new process of the run would (a new `Shared`: it attaches, reading
/// the baseline record), writes a row into the seeded table, then takes it `fresh()`; returns
/// how many rows the seeded table has after that hand-out's clean, which follows the record
/// the attach used.
async fn rows_after_a_clean() -> anyhow::Result<i64> {
    let shared = Shared::per_run(copied);
    shared
        .exclusive()
        .await?
        .client()
        .await?
        .execute("INSERT INTO seeded VALUES (99)", &[])
        .await?;
    let pg = shared.fresh().await?;
    let rows = pg
        .client()
        .await?
        .query_one("SELECT count(*) FROM seeded", &[])
        .await?
        .get(0);
    Ok(rows)
}

/// A reused container's baseline record is read from a copy on the host when the server says
/// its baseline is the one the copy was taken from, and from the container otherwise: a copy
/// taken before the record changed (the template was changed by hand and read again), or
/// before the container was restarted, is not trusted.
#[tokio::test]
async fn a_host_copy_of_the_baseline_record_is_trusted_only_for_the_state_it_was_taken_from(
) -> anyhow::Result<()> {
    let group = Group(format!("copy{}", std::process::id()));
    let first = Shared::per_run(copied);
    let pg = first.fresh().await?;
    let id = pg.container().id();
    // Kept when the container was created.
    let (path, stale) = host_copy(&id)?;
    assert_eq!(stale["container"], id.as_str());

    // The template changed by hand (a third seed row): the next attach reads it again and
    // records a new baseline.
    let mut config = pg.config()?;
    drop(pg);
    drop(first);
    config.dbname("postgres");
    let (maint, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    maint
        .batch_execute("ALTER DATABASE copied_baseline WITH ALLOW_CONNECTIONS true")
        .await?;
    config.dbname("copied_baseline");
    let (template, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    template
        .execute("INSERT INTO seeded VALUES (3)", &[])
        .await?;
    drop(template);
    assert_eq!(rows_after_a_clean().await?, 3, "the new baseline");
    let (_, current) = host_copy(&id)?;
    assert_ne!(current["stamp"], stale["stamp"]);

    // The copy taken before the record changed is not trusted.
    std::fs::write(&path, serde_json::to_vec(&stale)?)?;
    assert_eq!(rows_after_a_clean().await?, 3, "a stale copy was used");

    // The old record under the current stamp is trusted (so a copy is what an attach uses):
    // its clean puts the old baseline's two rows back.
    let mut poisoned = stale.clone();
    poisoned["stamp"] = current["stamp"].clone();
    std::fs::write(&path, serde_json::to_vec(&poisoned)?)?;
    assert_eq!(rows_after_a_clean().await?, 2, "the copy was not used");

    // After a restart of the container, the same copy is not trusted.
    std::fs::write(&path, serde_json::to_vec(&poisoned)?)?;
    let session = Session::global().await?;
    session
        .engine()
        .docker()
        .restart_container(&id, None)
        .await?;
    assert_eq!(
        rows_after_a_clean().await?,
        3,
        "a copy from before the restart was used"
    );
    let (_, restarted) = host_copy(&id)?;
    assert_ne!(restarted["stamp"], current["stamp"]);
    drop(group);
    Ok(())
}
