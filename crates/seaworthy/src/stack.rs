//! Stacks: containers, networks and volumes started together, in the order their dependencies ask.
//!
//! A [`StackDefinition`] names its members ([`StackMember`]: a [`ContainerDefinition`] plus how it
//! relates to the others), and the networks and volumes they share. Starting it
//! ([`StackDefinition::start_in`]) follows this model:
//!
//! 1. **Validate** — unknown members, networks or volumes, dependency cycles and invalid names are
//!    errors before anything is created.
//! 2. **Networks and volumes** — created first, in parallel. Every member joins the stack's own
//!    `default` network unless it names networks of its own; on each network it is reachable by its
//!    member name. Stacks never share a network, so two stacks (or two tests) may both have a `db`.
//! 3. **Members** — each member waits for its dependencies' conditions ([`DependsOn`]), then is
//!    created, started and waited on (its definition's [`Wait`], under its startup timeout). Members
//!    whose dependencies are met start at once, so independent branches start in parallel.
//! 4. **Failure** — the first failure stops the members still waiting, removes everything the stack
//!    created (dependents before their dependencies, then networks and volumes), and is returned as
//!    [`Error::Stack`](crate::Error::Stack) naming the member; a failed wait carries the member's log tail.
//!
//! The running [`Stack`] hands out each member as a [`Container`](crate::Container) (exec, logs,
//! files, HTTP). [`Stack::remove`] tears down in reverse dependency order; dropping the handle
//! removes everything in the background. Every resource carries the session's labels plus
//! [`LABEL_STACK`] (the stack's id) and, on containers, [`LABEL_STACK_MEMBER`].
//!
//! Three multi-container patterns are built in:
//! - **sidecar** — [`StackMember::with_network_of`] shares another member's network namespace: the
//!   sidecar reaches it on `localhost`;
//! - **shared volume** — [`StackDefinition::with_volume`] declares a volume that several members mount
//!   with [`StackMember::with_volume`];
//! - **ambassador** — [`StackMember::ambassador_for`] puts a proxy in front of a member: the proxy
//!   answers to the member's name, the member itself to `NAME-origin`, where the proxy forwards.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use seaworthy::{ContainerDefinition, DependsOn, Healthcheck, StackDefinition, StackMember, Wait};
//! let stack = StackDefinition::new("shop")
//!     .with_member(StackMember::new(
//!         "db",
//!         ContainerDefinition::new("postgres:16")
//!             .with_env("POSTGRES_PASSWORD", "secret")
//!             .with_healthcheck(Healthcheck::shell("pg_isready -h 127.0.0.1")),
//!     ))
//!     .with_member(
//!         StackMember::new("web", ContainerDefinition::new("shop:latest").with_port(8080))
//!             .depends_on("db", DependsOn::Healthy)
//!             .with_wait(Wait::http(8080, "/health")),
//!     )
//!     .start()
//!     .await?;
//! let body = stack.container("web")?.http(8080)?.get("/").send().await?.text().await?;
//! # let _ = body;
//! stack.remove().await?;
//! # Ok(()) }
//! ```

use std::fmt;

use crate::build::ImageBuild;
use crate::definition::ContainerDefinition;
use crate::error::Result;
use crate::network::{NetworkDefinition, VolumeDefinition};
use crate::session::Session;
use crate::wait::Wait;

pub(crate) mod compose_fields;
pub(crate) mod compose_service;
pub(crate) mod compose_text;
mod plan;
mod run;

pub(crate) use plan::Plan;

pub use run::Stack;

/// Label carrying the id of the stack a resource belongs to (`NAME-1a2b`).
pub const LABEL_STACK: &str = "io.seaworthy.stack";
/// Label carrying a container's member name in its stack.
pub const LABEL_STACK_MEMBER: &str = "io.seaworthy.stack.member";
/// The network every member joins unless it names its own networks.
pub const DEFAULT_NETWORK: &str = "default";
/// What a member fronted by an ambassador answers to: `NAME` + this suffix.
pub const ORIGIN_SUFFIX: &str = "-origin";

/// What a member waits for before it is created: a condition on one of its dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DependsOn {
    /// The dependency's container was started (compose's `service_started`).
    Started,
    /// The dependency's own wait holds ([`ContainerDefinition::with_wait`]); a dependency without
    /// a wait is ready once started.
    Ready,
    /// The dependency's healthcheck reports healthy (compose's `service_healthy`).
    Healthy,
    /// The dependency exited with code 0 (compose's `service_completed_successfully`), as a
    /// migration or seeding job does.
    CompletedSuccessfully,
}

impl fmt::Display for DependsOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DependsOn::Started => "started",
            DependsOn::Ready => "ready",
            DependsOn::Healthy => "healthy",
            DependsOn::CompletedSuccessfully => "completed successfully",
        })
    }
}

/// A mount of a stack volume into a member.
#[derive(Debug, Clone)]
pub(crate) struct VolumeUse {
    pub(crate) volume: String,
    pub(crate) target: String,
    pub(crate) read_only: bool,
}

/// One container of a stack: its definition, and how it relates to the other members.
///
/// The member's name is its identity in the stack: other members reach it by that name on every
/// stack network it joins, [`Stack::container`] finds it by it, and errors name it. The engine name
/// of its container is namespaced (`sw-<run>-<process>-<stack id>-NAME`); a name given with
/// [`ContainerDefinition::with_name`] is replaced, and aliases given with
/// [`ContainerDefinition::with_alias`] apply on every stack network the member joins.
#[derive(Debug, Clone)]
pub struct StackMember {
    pub(crate) name: String,
    pub(crate) definition: ContainerDefinition,
    pub(crate) depends_on: Vec<(String, DependsOn)>,
    pub(crate) networks: Vec<(String, Vec<String>)>,
    pub(crate) volumes: Vec<VolumeUse>,
    pub(crate) network_of: Option<String>,
    pub(crate) ambassador_for: Option<String>,
    pub(crate) build: Option<ImageBuild>,
}

impl StackMember {
    /// A member called `name`, run from `definition`.
    pub fn new(name: impl Into<String>, definition: ContainerDefinition) -> Self {
        StackMember {
            name: name.into(),
            definition,
            depends_on: Vec::new(),
            networks: Vec::new(),
            volumes: Vec::new(),
            network_of: None,
            ambassador_for: None,
            build: None,
        }
    }

    /// The member's name in the stack.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The member's container definition.
    pub fn definition(&self) -> &ContainerDefinition {
        &self.definition
    }

    /// Changes the container definition (`|d| d.with_env("LOG", "debug")`).
    pub fn configure(mut self, f: impl FnOnce(ContainerDefinition) -> ContainerDefinition) -> Self {
        self.definition = f(self.definition);
        self
    }

    /// Sets the condition that makes this member ready (see [`ContainerDefinition::with_wait`]).
    pub fn with_wait(self, wait: Wait) -> Self {
        self.configure(|d| d.with_wait(wait))
    }

    /// Creates this member only once `member` meets `condition`.
    pub fn depends_on(mut self, member: impl Into<String>, condition: DependsOn) -> Self {
        self.depends_on.push((member.into(), condition));
        self
    }

    /// Mounts the stack volume `volume` (declared with [`StackDefinition::with_volume`]) at `target`.
    pub fn with_volume(
        mut self,
        volume: impl Into<String>,
        target: impl Into<String>,
        read_only: bool,
    ) -> Self {
        self.volumes.push(VolumeUse {
            volume: volume.into(),
            target: target.into(),
            read_only,
        });
        self
    }

    /// Joins the stack network `network` (declared with [`StackDefinition::with_network`], or
    /// [`DEFAULT_NETWORK`]) with extra `aliases` besides the member's name. A member that names
    /// networks joins only those.
    pub fn with_network<I, S>(mut self, network: impl Into<String>, aliases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.networks.push((
            network.into(),
            aliases.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Makes this member a sidecar of `member`: it shares that member's network namespace (each
    /// reaches the other on `localhost`) and joins no network of its own. It is created once
    /// `member` has started.
    pub fn with_network_of(mut self, member: impl Into<String>) -> Self {
        self.network_of = Some(member.into());
        self
    }

    /// Makes this member an ambassador in front of `member`: on the networks this member joins it
    /// answers to `member`'s name, so everyone who reaches `member` by name reaches this proxy
    /// instead, while `member` itself answers to `member-origin` ([`ORIGIN_SUFFIX`]), where the
    /// proxy forwards. It is created once `member` has started.
    pub fn ambassador_for(mut self, member: impl Into<String>) -> Self {
        self.ambassador_for = Some(member.into());
        self
    }

    /// Builds the image at start (after the member's dependencies are met, in parallel with other
    /// members' builds) and runs the built image instead of the definition's. Builds are cached by
    /// content and belong to the session, which removes them at teardown, not to the stack.
    pub fn with_build(mut self, build: ImageBuild) -> Self {
        self.build = Some(build);
        self
    }

    /// Dependencies, explicit and implied (a sidecar needs its host, an ambassador its origin).
    fn all_dependencies(&self) -> Vec<(&str, DependsOn)> {
        let mut deps: Vec<(&str, DependsOn)> = self
            .depends_on
            .iter()
            .map(|(m, c)| (m.as_str(), *c))
            .collect();
        for implied in [&self.network_of, &self.ambassador_for]
            .into_iter()
            .flatten()
        {
            if !deps.iter().any(|(m, _)| m == implied) {
                deps.push((implied.as_str(), DependsOn::Started));
            }
        }
        deps
    }
}

/// Describes a stack: members, and the networks and volumes they share. Each member starts once
/// its dependencies meet their [`DependsOn`] conditions (independent members in parallel), and
/// the stack is removed in reverse dependency order.
#[derive(Debug, Clone)]
pub struct StackDefinition {
    pub(crate) name: String,
    pub(crate) members: Vec<StackMember>,
    pub(crate) networks: Vec<NetworkDefinition>,
    pub(crate) volumes: Vec<VolumeDefinition>,
    invalid: Option<String>,
}

impl StackDefinition {
    /// An empty stack called `name` (letters, digits, `_`, `.`, `-`). Its id, in names and labels,
    /// is `name` plus a random suffix, so the same definition can run several times at once.
    pub fn new(name: impl Into<String>) -> Self {
        StackDefinition {
            name: name.into(),
            members: Vec::new(),
            networks: Vec::new(),
            volumes: Vec::new(),
            invalid: None,
        }
    }

    /// The stack's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a member.
    pub fn with_member(mut self, member: StackMember) -> Self {
        self.members.push(member);
        self
    }

    /// Adds a member called `name` with no relation to the others (short for
    /// `with_member(StackMember::new(name, definition))`).
    pub fn with_container(self, name: impl Into<String>, definition: ContainerDefinition) -> Self {
        self.with_member(StackMember::new(name, definition))
    }

    /// Declares a network members can join by its name ([`StackMember::with_network`]). A network
    /// named [`DEFAULT_NETWORK`] configures the default network.
    pub fn with_network(mut self, network: NetworkDefinition) -> Self {
        self.networks.push(network);
        self
    }

    /// Declares a volume members can mount by its name ([`StackMember::with_volume`]).
    pub fn with_volume(mut self, volume: VolumeDefinition) -> Self {
        self.volumes.push(volume);
        self
    }

    /// The members, in the order they were added.
    pub fn members(&self) -> &[StackMember] {
        &self.members
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> Option<&StackMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Changes the member called `name` (`|m| m.with_wait(Wait::http(80, "/"))`). An unknown name
    /// is reported by [`validate`](Self::validate) and [`start_in`](Self::start_in).
    pub fn configure(mut self, name: &str, f: impl FnOnce(StackMember) -> StackMember) -> Self {
        match self.members.iter().position(|m| m.name == name) {
            Some(i) => {
                let member = self.members.remove(i);
                self.members.insert(i, f(member));
            }
            None if self.invalid.is_none() => {
                self.invalid = Some(format!(
                    "configure names an unknown member {name:?} (members: {})",
                    self.member_list()
                ));
            }
            None => {}
        }
        self
    }

    fn member_list(&self) -> String {
        let names: Vec<&str> = self.members.iter().map(|m| m.name.as_str()).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// Checks names, references and the dependency graph without touching the engine.
    pub fn validate(&self) -> Result<()> {
        self.plan().map(|_| ())
    }

    /// Starts the stack in the global session; see [`start_in`](Self::start_in).
    pub async fn start(self) -> Result<Stack> {
        let session = Session::global().await?;
        self.start_in(&session).await
    }

    /// Validates the stack, then creates its networks and volumes, then starts its members along
    /// their dependencies, independent ones in parallel, and returns once every member is ready.
    ///
    /// On failure, everything created is removed first, and the error is an
    /// [`Error::Stack`](crate::Error::Stack)
    /// naming the member (or network, or volume) at fault; invalid stacks (cycles, unknown names)
    /// fail with [`Error::Invalid`](crate::Error::Invalid) before anything is created.
    pub async fn start_in(self, session: &Session) -> Result<Stack> {
        let plan = self.plan()?;
        run::start(self.name, plan, session.clone()).await
    }

    /// The stack the test run shares under the fixture hash `hash` (found, or started as the
    /// run's); the caller holds the run's lock for `hash`.
    pub(crate) async fn share_per_run(self, session: &Session, hash: String) -> Result<Stack> {
        let plan = self.plan()?;
        run::share_per_run(self.name, plan, session.clone(), hash).await
    }
}
