//! [`Sleeper`]: the smallest fixture there is — a busybox that sleeps, with a scratch directory
//! that `clean()` empties. Used to test the fixture machinery (shared scopes replacing dead
//! containers, the engine restarting) without a real service's start-up time.

use seaworthy::{
    ConnectionInfo, Container, ContainerDefinition, ContainerFixtureDefinition, Error, Exec,
    Fixture, Wait,
};

/// The busybox test image (built by `cargo xtask images`).
pub const BUSYBOX: &str = "seaworthy-test/busybox";

/// The directory a sleeper's tests write to; `clean()` empties it.
const SCRATCH: &str = "/scratch";

/// Defines a sleeping busybox fixture.
#[derive(Debug, Clone, Default)]
pub struct Sleeper;

impl ContainerFixtureDefinition for Sleeper {
    type Fixture = SleeperFixture;

    fn key(&self) -> String {
        "seaworthy-compare/sleeper".into()
    }

    fn container_definition(&self) -> ContainerDefinition {
        ContainerDefinition::new(BUSYBOX)
            .with_cmd([
                "sh",
                "-c",
                &format!("mkdir -p {SCRATCH}; echo ready; exec sleep 3600"),
            ])
            .with_wait(Wait::log("^ready$"))
    }

    async fn attach(&self, container: Container) -> seaworthy::Result<SleeperFixture> {
        Ok(SleeperFixture { container })
    }
}

/// A started [`Sleeper`].
#[derive(Debug)]
pub struct SleeperFixture {
    container: Container,
}

impl SleeperFixture {
    /// Creates `name` in the scratch directory.
    pub async fn touch(&self, name: &str) -> seaworthy::Result<()> {
        let out = self
            .container
            .exec(Exec::new(["touch", &format!("{SCRATCH}/{name}")]))
            .await?;
        check(&self.container, "touch", out)
    }

    /// The names in the scratch directory, sorted.
    pub async fn scratch(&self) -> seaworthy::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .container
            .list_dir(SCRATCH)
            .await?
            .into_iter()
            .map(|m| m.name)
            .collect();
        names.sort();
        Ok(names)
    }
}

fn check(container: &Container, what: &str, out: seaworthy::ExecOutput) -> seaworthy::Result<()> {
    if out.success() {
        Ok(())
    } else {
        Err(Error::Container {
            container: container.name().to_string(),
            reason: format!(
                "{what} exited with code {}: {}",
                out.exit_code,
                out.stderr_text().trim()
            ),
        })
    }
}

impl Fixture for SleeperFixture {
    type Error = seaworthy::Error;

    fn kind(&self) -> &str {
        "sleeper"
    }

    fn container(&self) -> &Container {
        &self.container
    }

    async fn clean(&self) -> seaworthy::Result<()> {
        let out = self
            .container
            .exec(Exec::shell(format!("rm -rf {SCRATCH}/* {SCRATCH}/.[!.]*")))
            .await?;
        check(&self.container, "clean", out)
    }

    fn connection(&self) -> ConnectionInfo {
        ConnectionInfo::new("exec", self.container.host(), 0).with_path(self.container.name())
    }
}
