//! [`StackFixture`]: a whole stack as one fixture, cleaned by restoring every member's baseline.

use crate::container::Container;
use crate::error::{Error, Result};
use crate::fixture::{ConnectionInfo, Fixture, FixtureDefinition};
use crate::session::Session;
use crate::snapshot::{Consistency, Snapshot, SnapshotOptions};
use crate::stack::{Stack, StackDefinition};

/// A stack used as a fixture, in every scope: started for one test, shared per process with
/// [`Shared::per_process`](crate::Shared::per_process), or shared by every process of the test
/// run with [`Shared::per_run`](crate::Shared::per_run). It is returned to its baseline by
/// `clean()`, which restores a snapshot of every member taken when the stack first became ready —
/// concurrently, each keeping its name, aliases and host ports, so the members still reach each
/// other. [`Fixture::container`] is the *primary* member, the one tests talk to.
///
/// Shared per run, the whole stack — members, networks, volumes and baseline snapshots — belongs
/// to the run: the first process starts it under a cross-process lock, the others find every
/// member by its labels (a stack with a member gone or stopped is removed and started afresh),
/// and the reaper removes it all once the test runner is gone.
#[derive(Debug, Clone)]
pub struct StackFixture {
    definition: StackDefinition,
    primary: String,
}

impl StackFixture {
    /// A fixture of `definition`, whose member `primary` is the one [`Fixture::container`] returns.
    pub fn new(definition: StackDefinition, primary: impl Into<String>) -> Self {
        StackFixture {
            definition,
            primary: primary.into(),
        }
    }
}

/// A started [`StackFixture`].
#[derive(Debug)]
pub struct RunningStack {
    kind: String,
    stack: Stack,
    primary: usize,
    baselines: Vec<(String, Snapshot)>,
}

impl RunningStack {
    /// The stack, for its other members.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }
}

impl Drop for RunningStack {
    fn drop(&mut self) {
        // The members' baselines go with the stack, unless it is the run's (other processes
        // restore them).
        for (_, baseline) in &self.baselines {
            if !self.container().is_kept() {
                baseline.discard(self.stack.session());
            }
        }
    }
}

impl Fixture for RunningStack {
    type Error = Error;

    fn kind(&self) -> &str {
        &self.kind
    }

    fn container(&self) -> &Container {
        // The index was found among the stack's members when it started; members never go away.
        let (_, container) = self
            .stack
            .containers()
            .nth(self.primary)
            .expect("the primary member exists for the stack's lifetime");
        container
    }

    async fn clean(&self) -> Result<()> {
        let restores = self.baselines.iter().map(|(member, snapshot)| async move {
            let container = self.stack.container(member)?;
            container
                .restore(snapshot)
                .await
                .map_err(|e| Error::Container {
                    container: container.name().to_string(),
                    reason: format!(
                        "{} fixture: restoring member {member} failed: {e}",
                        self.kind
                    ),
                })
        });
        futures_util::future::try_join_all(restores)
            .await
            .map(|_| ())
    }

    fn connection(&self) -> ConnectionInfo {
        let c = self.container();
        ConnectionInfo::new("tcp", c.host(), c.first_published_port().unwrap_or(0))
    }
}

impl FixtureDefinition for StackFixture {
    type Fixture = RunningStack;

    fn key(&self) -> String {
        format!("stack:{}:{:?}", self.primary, self.definition)
    }

    fn validate(&self) -> Result<()> {
        self.check_primary()
    }

    async fn start_in(&self, session: &Session) -> Result<RunningStack> {
        self.check_primary()?;
        let stack = self.definition.clone().start_in(session).await?;
        let snapshots = stack.containers().map(|(name, container)| async move {
            container
                .snapshot("baseline")
                .await
                .map(|snapshot| (name.to_string(), snapshot))
        });
        let baselines = futures_util::future::try_join_all(snapshots).await?;
        Ok(self.running(stack, baselines))
    }

    async fn share_per_run(&self, session: &Session) -> Result<RunningStack> {
        self.check_primary()?;
        let hash = crate::shared::key_hash(&self.key());
        let lock = crate::shared::run_lock(session, &hash).await?;
        let result = async {
            let stack = self.definition.clone().share_per_run(session, hash).await?;
            // Each member's baseline is taken once for the run, by the process that starts it.
            let snapshots = stack.containers().map(|(name, container)| async move {
                let options = SnapshotOptions {
                    consistency: Consistency::Paused,
                    keep: false,
                };
                crate::snapshot::run_baseline(container, options)
                    .await
                    .map(|snapshot| (name.to_string(), snapshot))
            });
            let baselines = futures_util::future::try_join_all(snapshots).await?;
            Ok(self.running(stack, baselines))
        }
        .await;
        drop(lock);
        result
    }
}

impl StackFixture {
    fn check_primary(&self) -> Result<()> {
        match self.definition.member(&self.primary) {
            Some(_) => Ok(()),
            None => Err(Error::invalid(
                "stack fixture",
                &self.primary,
                format!(
                    "stack {} has no member of that name",
                    self.definition.name()
                ),
            )),
        }
    }

    fn running(&self, stack: Stack, baselines: Vec<(String, Snapshot)>) -> RunningStack {
        let primary = stack
            .containers()
            .position(|(name, _)| name == self.primary)
            .unwrap_or_default();
        RunningStack {
            kind: self.definition.name().to_string(),
            stack,
            primary,
            baselines,
        }
    }
}
