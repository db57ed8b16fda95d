//! [`SnapshotFixture`]: any image as a fixture, cleaned by restoring a baseline snapshot.

use crate::container::Container;
use crate::definition::ContainerDefinition;
use crate::error::{Error, Result};
use crate::fixture::{ConnectionInfo, ContainerFixtureDefinition, Fixture};
use crate::snapshot::{Consistency, Snapshot, SnapshotOptions};

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
        }
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
        format!(
            "snapshot:{:?}:{}:{:?}",
            self.consistency, self.standby, self.definition
        )
    }

    fn container_definition(&self) -> ContainerDefinition {
        self.definition.clone()
    }

    async fn attach(&self, container: Container) -> Result<GenericFixture> {
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
