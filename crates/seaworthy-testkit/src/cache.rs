//! Baseline cache tests: a namespace of cached images of the test's own, removed when it drops.

use std::future::Future;
use std::time::Duration;

use seaworthy::baseline_cache::{self, CachedImage, PruneOptions};
use seaworthy::{Fixture, Session};

/// A baseline cache namespace of one test (`test-<pid>-<name>`), whose images are removed when
/// it drops, also when the test fails (declare it before the fixtures, so they are gone first).
pub struct CacheNamespace {
    /// The namespace (`BaselineCache::on().with_namespace(&ns.name)`).
    pub name: String,
}

impl CacheNamespace {
    /// A namespace for the test `test`.
    pub fn new(test: &str) -> CacheNamespace {
        CacheNamespace {
            name: format!("test-{}-{test}", std::process::id()),
        }
    }

    /// Its cached images, newest first.
    pub async fn images(&self) -> anyhow::Result<Vec<CachedImage>> {
        let session = Session::global().await?;
        Ok(baseline_cache::list(session.engine(), Some(&self.name)).await?)
    }
}

impl Drop for CacheNamespace {
    fn drop(&mut self) {
        let options = PruneOptions {
            namespace: Some(self.name.clone()),
            all: true,
            ..Default::default()
        };
        remove_on_drop("cached images", move |session| async move {
            session.wait_for_background_removals(Duration::from_secs(30));
            baseline_cache::prune(session.engine(), &options).await
        });
    }
}

/// Runs a removal from a `Drop` (the end of a test, or its unwinding when it fails) on a thread
/// and runtime of its own, since the test's runtime may be gone, and waits for it. `removal`
/// gets the global session and returns what it removed and what it could not; the latter, a
/// failed listing or a panic, is printed to stderr naming `what` (a `Drop` cannot fail).
pub fn remove_on_drop<T, F, Fut>(what: &str, removal: F)
where
    F: FnOnce(Session) -> Fut + Send + 'static,
    Fut: Future<Output = seaworthy::Result<(Vec<T>, Vec<seaworthy::Error>)>>,
{
    let removed = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let session = Session::global().await.expect("the global session");
            removal(session).await.map(|(_, errors)| errors)
        })
    })
    .join();
    match removed {
        Ok(Ok(errors)) if errors.is_empty() => {}
        Ok(Ok(errors)) => eprintln!("{what} not removed: {errors:?}"),
        Ok(Err(e)) => eprintln!("{what} not listed: {e}"),
        Err(_) => eprintln!("the removal of the {what} panicked"),
    }
}

/// The id of the image a fixture's container runs.
pub async fn image_of<F: Fixture>(fixture: &F) -> anyhow::Result<String> {
    Ok(fixture
        .container()
        .inspect()
        .await?
        .image
        .unwrap_or_default())
}

/// Checks what every cached image carries: managed, owned by the cache (not by the process that
/// built it), complete, of `kind`.
pub async fn assert_cache_labels(image: &CachedImage, kind: &str) -> anyhow::Result<()> {
    anyhow::ensure!(image.complete, "{image:?}");
    anyhow::ensure!(image.kind == kind, "{image:?}");
    let session = Session::global().await?;
    let info = session.engine().docker().inspect_image(&image.id).await?;
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    anyhow::ensure!(
        labels.get("io.seaworthy.managed").map(String::as_str) == Some("true"),
        "{labels:?}"
    );
    anyhow::ensure!(
        labels.get("io.seaworthy.owner").map(String::as_str)
            == Some(seaworthy::session::OWNER_CACHE),
        "{labels:?}"
    );
    Ok(())
}
