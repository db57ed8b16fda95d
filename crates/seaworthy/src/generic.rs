//! [`SnapshotFixture`]: any image as a fixture, cleaned by restoring a baseline snapshot.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::baseline_cache::{BaselineCache, CachedBaseline, InitDigest};
use crate::container::Container;
use crate::definition::ContainerDefinition;
use crate::error::{Error, Result};
use crate::fixture::{ConnectionInfo, ContainerFixtureDefinition, Fixture};
use crate::session::Session;
use crate::snapshot::{Consistency, Snapshot, SnapshotOptions};

/// The error a setup closure returns: any error (`?` converts it).
pub type SetupError = Box<dyn std::error::Error + Send + Sync>;

type SetupFn = Arc<
    dyn Fn(Container) -> Pin<Box<dyn Future<Output = Result<(), SetupError>> + Send>> + Send + Sync,
>;

/// Where a container records that its setup ran (and which version), so it runs once per
/// container, and a start from a cached image knows it ran.
const SETUP_MARKER: &str = "/.seaworthy-setup.json";

/// A [`SnapshotFixture`]'s setup: its version and the closure.
#[derive(Clone)]
struct Setup {
    version: String,
    run: SetupFn,
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A fixture for any image that has no protocol-level reset: `clean()` restores the snapshot taken
/// when the container first became ready (see [`Container::restore`] for what is kept: name,
/// aliases, host ports).
///
/// ```no_run
/// # async fn demo() -> seaworthy::Result<()> {
/// use seaworthy::{ContainerDefinition, Fixture, FixtureDefinition, SnapshotFixture, Wait};
/// let web = SnapshotFixture::new(
///     ContainerDefinition::new("seaworthy-test/nginx").with_port(80).with_wait(Wait::http(80, "/health")),
/// )
/// .start()
/// .await?;
/// web.container().write_file("/usr/share/nginx/html/extra.html", "x", 0o644).await?;
/// web.clean().await?; // extra.html is gone again
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SnapshotFixture {
    definition: ContainerDefinition,
    consistency: Consistency,
    kind: String,
    standby: bool,
    setup: Option<Setup>,
    cache: BaselineCache,
    state_dirs: Vec<String>,
    from_cache: bool,
}

impl SnapshotFixture {
    /// A fixture running `definition`, with a crash-consistent (paused) baseline.
    pub fn new(definition: ContainerDefinition) -> Self {
        let kind = definition
            .image()
            .rsplit('/')
            .next()
            .unwrap_or("container")
            .to_string();
        SnapshotFixture {
            definition,
            consistency: Consistency::Paused,
            kind,
            standby: false,
            setup: None,
            cache: BaselineCache::from_env(),
            state_dirs: Vec::new(),
            from_cache: false,
        }
    }

    /// Prepares the container before its baseline snapshot is taken (writes files, runs
    /// commands through [`Container::exec`], calls the service): the closure gets the started
    /// container (a handle that removes nothing when dropped) and runs once per container, so
    /// every [`clean`](Fixture::clean) returns to the state it left.
    ///
    /// `version` identifies the setup: a closure's code cannot be hashed, so this string stands
    /// for it in the definition's [key](crate::FixtureDefinition::key) and in the
    /// [baseline cache](Self::with_baseline_cache)'s. Change it (`"seed v2"`) whenever the
    /// closure changes what it does, or a cached baseline built by the old code is used; add the
    /// files it reads with [`BaselineCache::with_input`], so their content is in the key too.
    ///
    /// ```no_run
    /// use seaworthy::{ContainerDefinition, SnapshotFixture, Wait};
    /// let web = SnapshotFixture::new(
    ///     ContainerDefinition::new("seaworthy-test/nginx").with_port(80).with_wait(Wait::http(80, "/health")),
    /// )
    /// .with_setup("pages v1", |container| async move {
    ///     container.write_file("/usr/share/nginx/html/about.html", "about", 0o644).await?;
    ///     Ok(())
    /// });
    /// ```
    pub fn with_setup<F, Fut>(mut self, version: impl Into<String>, setup: F) -> Self
    where
        F: Fn(Container) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), SetupError>> + Send + 'static,
    {
        let run: SetupFn = Arc::new(move |container| Box::pin(setup(container)));
        self.setup = Some(Setup {
            version: version.into(),
            run,
        });
        self
    }

    /// Sets the [baseline cache](crate::baseline_cache) of a fixture with a
    /// [setup](Self::with_setup): `BaselineCache::on()` keeps the container as its setup left it
    /// in an image after the first start (stopped with its stop signal, which must end it with
    /// exit code 0), so later runs start from that image and skip the setup. The key covers the
    /// image's id, the whole definition and the setup's `version` (and the content of every
    /// [input](BaselineCache::with_input)). A fixture without a setup has nothing to cache.
    /// Data the setup writes into a volume is kept only in the directories named with
    /// [`with_state_dir`](Self::with_state_dir) (an image holds no volume).
    pub fn with_baseline_cache(mut self, cache: BaselineCache) -> Self {
        self.cache = cache;
        self
    }

    /// Adds a directory that the setup writes into and that is a volume of the image (a
    /// `VOLUME` of its Dockerfile, or a volume mount): its content is archived into the cached
    /// image. Directories of the container's own filesystem need no declaring.
    pub fn with_state_dir(mut self, dir: impl Into<String>) -> Self {
        self.state_dirs.push(dir.into());
        self
    }

    /// Keeps a warm standby of the baseline, so `clean()` is a swap (see
    /// [`standby`](crate::standby): the published ports are then served by a proxy in this
    /// process). Not for fixtures shared per run (the proxy lives in one process).
    pub fn with_standby(mut self, standby: bool) -> Self {
        self.standby = standby;
        self
    }

    /// Chooses how the baseline snapshot is made consistent.
    pub fn with_consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }

    /// Names the fixture in messages (default: the image's last path component).
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }
}

/// A started [`SnapshotFixture`].
#[derive(Debug)]
pub struct GenericFixture {
    kind: String,
    container: Container,
    baseline: Snapshot,
}

impl GenericFixture {
    /// The baseline snapshot that `clean()` restores.
    pub fn baseline(&self) -> &Snapshot {
        &self.baseline
    }
}

impl Fixture for GenericFixture {
    type Error = Error;

    fn kind(&self) -> &str {
        &self.kind
    }

    fn container(&self) -> &Container {
        &self.container
    }

    async fn clean(&self) -> Result<()> {
        self.container
            .restore(&self.baseline)
            .await
            .map_err(|e| Error::Container {
                container: self.container.name().to_string(),
                reason: format!(
                    "{} fixture: restoring the baseline snapshot failed: {e}",
                    self.kind
                ),
            })
    }

    fn connection(&self) -> ConnectionInfo {
        let port = self.container.first_published_port().unwrap_or(0);
        ConnectionInfo::new("tcp", self.container.host(), port)
    }
}

impl ContainerFixtureDefinition for SnapshotFixture {
    type Fixture = GenericFixture;

    fn key(&self) -> String {
        let setup = self.setup.as_ref().map(|s| s.version.as_str());
        format!(
            "snapshot:{:?}:{}:{:?}:setup={setup:?}:from_cache={}",
            self.consistency, self.standby, self.definition, self.from_cache
        )
    }

    fn container_definition(&self) -> ContainerDefinition {
        self.definition.clone()
    }

    async fn attach(&self, container: Container) -> Result<GenericFixture> {
        // A start from a cached image holds what the setup did (and its marker).
        if let Some(setup) = self.setup.as_ref().filter(|_| !self.from_cache) {
            crate::kit::Baseline::new(SETUP_MARKER)
                .load_or_record(&container, || async {
                    let view = Container::view(container.inner.clone());
                    (setup.run)(view).await.map_err(|e| Error::Container {
                        container: container.name().to_string(),
                        reason: format!(
                            "{} fixture: setup `{}` failed: {e}",
                            self.kind, setup.version
                        ),
                    })?;
                    Ok::<_, Error>(setup.version.clone())
                })
                .await?;
        }
        let options = SnapshotOptions {
            consistency: self.consistency,
            keep: false,
        };
        let baseline = if container.is_kept() {
            // Shared by the run: every process must restore the same baseline, taken once.
            crate::snapshot::run_baseline(&container, options).await?
        } else {
            container.snapshot_with("baseline", options).await?
        };
        if self.standby && !container.is_kept() {
            container.enable_standby(&baseline).await?;
        }
        Ok(GenericFixture {
            kind: self.kind.clone(),
            container,
            baseline,
        })
    }

    async fn prepare(&self, session: &Session) -> Result<SnapshotFixture> {
        if self.setup.is_none() {
            return Ok(self.clone());
        }
        crate::baseline_cache::prepare(self, session).await
    }
}

impl CachedBaseline for SnapshotFixture {
    fn baseline_cache(&self) -> &BaselineCache {
        &self.cache
    }

    fn cache_kind(&self) -> &'static str {
        "snapshot"
    }

    fn cache_identity(&self) -> String {
        format!("snapshot {} ({})", self.kind, self.definition.image())
    }

    fn hash_init(&self, digest: &mut InitDigest) -> Result<()> {
        if let Some(setup) = &self.setup {
            digest.add("setup", setup.version.as_bytes());
        }
        Ok(())
    }

    fn state_dirs(&self) -> Vec<String> {
        self.state_dirs.clone()
    }

    fn with_cached_image(&self, image: &str) -> Self {
        let mut def = self.clone();
        def.definition = def.definition.with_image(image);
        def.cache = BaselineCache::off();
        def.from_cache = true;
        def
    }
}

impl Drop for GenericFixture {
    fn drop(&mut self) {
        // The baseline goes with the fixture, unless the container is the run's (other processes
        // restore it) or kept.
        if !self.container.is_kept() {
            self.baseline.discard(self.container.session());
        }
    }
}
