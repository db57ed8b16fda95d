//! A `SnapshotFixture`'s setup cached across runs: the container as the setup left it kept in an
//! image, used by the next start without running the setup again, and rebuilt when the setup's
//! version changes. The images live in a namespace of the test's own, removed at the end.

use seaworthy_testkit as common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{assert_cache_labels, image_of, CacheNamespace};
use seaworthy::baseline_cache::BaselineCache;
use seaworthy::{ContainerDefinition, Fixture, FixtureDefinition, SnapshotFixture, Wait};

const PAGE: &str = "/usr/share/nginx/html/seeded.html";

/// nginx with a setup that writes a page holding the time it ran (counted in `runs`).
fn web(namespace: &str, version: &str, runs: &Arc<AtomicUsize>) -> SnapshotFixture {
    let runs = runs.clone();
    SnapshotFixture::new(
        ContainerDefinition::new("seaworthy-test/nginx")
            .with_port(80)
            .with_wait(Wait::http(80, "/health")),
    )
    .with_setup(version, move |container| {
        runs.fetch_add(1, Ordering::SeqCst);
        async move {
            let stamp = format!("{:?}", std::time::SystemTime::now());
            container.write_file(PAGE, stamp, 0o644).await?;
            Ok(())
        }
    })
    .with_baseline_cache(BaselineCache::on().with_namespace(namespace))
}

async fn page(web: &impl Fixture) -> anyhow::Result<String> {
    Ok(String::from_utf8(web.container().read_file(PAGE).await?)?)
}

#[tokio::test]
async fn a_snapshot_fixture_s_setup_is_cached_and_a_new_version_builds_anew() -> anyhow::Result<()>
{
    let ns = CacheNamespace::new("snapshot-setup");
    let runs = Arc::new(AtomicUsize::new(0));
    let first = web(&ns.name, "pages v1", &runs).start().await?;
    let seeded = page(&first).await?;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let images = ns.images().await?;
    assert_eq!(images.len(), 1, "{images:?}");
    assert_cache_labels(&images[0], "snapshot").await?;
    assert_eq!(
        image_of(&first).await?,
        images[0].id,
        "started from the cache"
    );
    drop(first);

    // The next start skips the setup: the page is the first start's; clean returns to it.
    let second = web(&ns.name, "pages v1", &runs).start().await?;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "setup skipped");
    assert_eq!(image_of(&second).await?, images[0].id);
    assert_eq!(page(&second).await?, seeded);
    second.container().write_file(PAGE, "dirty", 0o644).await?;
    second.clean().await?;
    assert_eq!(page(&second).await?, seeded);
    drop(second);

    // A new version of the setup: a new key, a new image, the setup runs again.
    let third = web(&ns.name, "pages v2", &runs).start().await?;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_ne!(page(&third).await?, seeded);
    let images = ns.images().await?;
    assert_eq!(images.len(), 2, "{images:?}");
    assert_eq!(image_of(&third).await?, images[0].id, "the newest image");
    Ok(())
}

/// Without the cache the setup runs at each start, once per container, before the baseline:
/// clean returns to what it left.
#[tokio::test]
async fn a_setup_runs_once_per_container_before_the_baseline() -> anyhow::Result<()> {
    let runs = Arc::new(AtomicUsize::new(0));
    let web = web("unused", "pages v1", &runs)
        .with_baseline_cache(BaselineCache::off())
        .start()
        .await?;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let seeded = page(&web).await?;
    web.container().write_file(PAGE, "dirty", 0o644).await?;
    web.clean().await?;
    assert_eq!(page(&web).await?, seeded);
    Ok(())
}
