//! The baseline cache against the real broker: the broker as its init steps left it (definitions
//! and a closure's queues and users) kept in an image, used by the next start without running
//! the init steps again, rebuilt when a definitions file's content changes, and never taken from
//! a build that was killed.
//!
//! Each test keeps its images in a namespace of its own and removes them at the end, also when
//! it fails (the suite's leak check counts every image labelled `io.seaworthy.managed=true`).

use seaworthy_testkit as common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_cache_labels, image_of, CacheNamespace};
use seaworthy::baseline_cache::BaselineCache;
use seaworthy::{Fixture, FixtureDefinition};
use seaworthy_rabbitmq::lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use seaworthy_rabbitmq::lapin::BasicProperties;
use seaworthy_rabbitmq::{BoxError, InitContext, RabbitMq, RabbitMqFixture};

const CHILD: &str = "a_process_starting_a_cached_rabbitmq";
const CHILD_DEADLINE: Duration = Duration::from_secs(180);

fn definitions(queue: &str) -> String {
    format!(
        r#"{{
        "users": [{{"name": "app", "password_hash": "", "tags": "monitoring"}}],
        "vhosts": [{{"name": "orders"}}],
        "permissions": [{{"user": "app", "vhost": "orders",
                          "configure": ".*", "write": ".*", "read": ".*"}}],
        "queues": [{{"name": "{queue}", "vhost": "orders", "durable": true,
                     "auto_delete": false, "arguments": {{}}}}]
    }}"#
    )
}

/// The definition every process of a test starts: a definitions file, a closure declaring a
/// durable and a transient queue (and, in a child told to, stopping for good: to be killed
/// mid-build), the cache on in `namespace`. `runs` counts the closure's runs.
fn rabbit(namespace: &str, file: &Path, runs: &Arc<AtomicUsize>) -> RabbitMq {
    let runs = runs.clone();
    RabbitMq::new()
        .with_definitions_file(file)
        .with_init("queues v1", move |ctx| {
            runs.fetch_add(1, Ordering::SeqCst);
            declare_queues(ctx)
        })
        .with_baseline_cache(BaselineCache::on().with_namespace(namespace))
}

async fn declare_queues(ctx: InitContext) -> Result<(), BoxError> {
    if std::env::var("SW_CACHE_HOLD").is_ok() {
        common::report(&["initialising"]);
        tokio::time::sleep(Duration::from_secs(300)).await;
    }
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let channel = &ctx.channel;
    channel
        .queue_declare("jobs".into(), durable, Default::default())
        .await?;
    channel
        .queue_declare("scratch".into(), Default::default(), Default::default())
        .await?;
    // A persistent message in the durable queue: kept by the broker's shutdown, so a start from
    // the cached image has it, as a start without the cache does.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .basic_publish(
            "".into(),
            "jobs".into(),
            BasicPublishOptions::default(),
            b"first job",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await?
        .await?;
    Ok(())
}

fn definitions_file(ns: &CacheNamespace, queue: &str) -> PathBuf {
    let file = std::env::temp_dir().join(format!("sw-{}.json", ns.name));
    std::fs::write(&file, definitions(queue)).expect("write the definitions file");
    file
}

async fn queues(rabbit: &RabbitMqFixture) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = rabbit
        .management()
        .queues(None)
        .await?
        .into_iter()
        .map(|q| format!("{}:{}", q.vhost, q.name))
        .collect();
    names.sort();
    Ok(names)
}

/// The volumes mounted in the fixture's container.
async fn volumes_of(rabbit: &RabbitMqFixture) -> anyhow::Result<Vec<String>> {
    Ok(rabbit
        .container()
        .inspect()
        .await?
        .mounts
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.typ.as_deref() == Some("volume"))
        .filter_map(|m| m.destination)
        .collect())
}

async fn users(rabbit: &RabbitMqFixture) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = rabbit.users().await?.into_iter().map(|u| u.name).collect();
    names.sort();
    Ok(names)
}

/// The cached baseline has the init steps' queues, vhost and user, is used by the next start
/// (the closure did not run again; its transient queue is declared again), clean returns to it,
/// and a definitions file changed in place builds a new image.
#[tokio::test]
async fn a_cached_broker_has_the_init_steps_work_and_a_changed_file_builds_a_new_one(
) -> anyhow::Result<()> {
    let ns = CacheNamespace::new("rabbit");
    let file = definitions_file(&ns, "invoices");
    let expected = ["/:jobs", "/:scratch", "orders:invoices"];
    let runs = Arc::new(AtomicUsize::new(0));
    let first = rabbit(&ns.name, &file, &runs).start().await?;
    assert_eq!(queues(&first).await?, expected);
    assert_eq!(users(&first).await?, ["app", "guest"]);
    assert_eq!(
        first.message_count("jobs").await?,
        1,
        "the init step's message"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let images = ns.images().await?;
    assert_eq!(images.len(), 1, "{images:?}");
    assert_cache_labels(&images[0], "rabbitmq").await?;
    assert_eq!(
        image_of(&first).await?,
        images[0].id,
        "started from the cache"
    );
    drop(first);

    let second = rabbit(&ns.name, &file, &runs).start().await?;
    assert_eq!(image_of(&second).await?, images[0].id);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "init skipped");
    assert_eq!(queues(&second).await?, expected);
    assert_eq!(users(&second).await?, ["app", "guest"]);
    assert_eq!(
        second.message_count("jobs").await?,
        1,
        "the init step's message"
    );
    // The database is in the container's own layer (the image carries it): the container has
    // no volume to be filled with a copy of it.
    assert_eq!(volumes_of(&second).await?, Vec::<String>::new());
    // A normal fixture: clean returns to the cached baseline.
    second.management().delete_vhost("orders").await?;
    second.management().delete_user("app").await?;
    second.clean().await?;
    assert_eq!(queues(&second).await?, expected);
    assert_eq!(users(&second).await?, ["app", "guest"]);
    drop(second);

    // Same file, other content: a new key, a new image.
    std::fs::write(&file, definitions("refunds"))?;
    let third = rabbit(&ns.name, &file, &runs).start().await?;
    assert_eq!(
        queues(&third).await?,
        ["/:jobs", "/:scratch", "orders:refunds"]
    );
    let images = ns.images().await?;
    assert_eq!(images.len(), 2, "{images:?}");
    assert_ne!(images[0].key, images[1].key);
    assert_eq!(image_of(&third).await?, images[0].id, "the newest image");
    let _ = std::fs::remove_file(&file);
    Ok(())
}

/// A process killed while it builds the cached baseline leaves nothing the next one uses: the
/// next start runs the init steps and builds a complete image of its own.
#[tokio::test]
async fn a_build_killed_midway_is_not_used() -> anyhow::Result<()> {
    let ns = CacheNamespace::new("rabbit-killed");
    let file = definitions_file(&ns, "invoices");
    let run = common::ChildRun::new();
    let param = format!("{}|{}", ns.name, file.display());
    let mut child = run.spawn(
        "the build that dies",
        CHILD,
        &param,
        &[("SW_CACHE_HOLD", "1".to_string())],
    );
    assert_eq!(child.read_ids(CHILD_DEADLINE).await, ["initialising"]);
    child.kill().await;
    run.remove().await?;
    assert!(ns.images().await?.is_empty(), "nothing cached yet");
    let runs = Arc::new(AtomicUsize::new(0));
    let rabbit = rabbit(&ns.name, &file, &runs).start().await?;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the init steps ran");
    assert_eq!(
        queues(&rabbit).await?,
        ["/:jobs", "/:scratch", "orders:invoices"]
    );
    let images = ns.images().await?;
    assert_eq!(images.len(), 1, "{images:?}");
    assert_cache_labels(&images[0], "rabbitmq").await?;
    assert_eq!(image_of(&rabbit).await?, images[0].id);
    let _ = std::fs::remove_file(&file);
    Ok(())
}

/// The child process of the test above: starts the namespace's definition, reports the image its
/// container runs, and waits for the parent.
#[tokio::test]
#[ignore = "run by the tests above as a child process"]
async fn a_process_starting_a_cached_rabbitmq() -> anyhow::Result<()> {
    let Some(param) = common::param() else {
        return Ok(());
    };
    let (namespace, file) = param
        .split_once('|')
        .ok_or_else(|| anyhow::anyhow!("bad parameter {param}"))?;
    let runs = Arc::new(AtomicUsize::new(0));
    let rabbit = rabbit(namespace, Path::new(file), &runs).start().await?;
    common::report(&[&image_of(&rabbit).await?]);
    common::wait_for_parent(CHILD_DEADLINE).await?;
    Ok(())
}
