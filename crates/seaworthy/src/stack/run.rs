//! Starting a validated stack along its dependency graph, and tearing it down in reverse.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use futures_util::future::join_all;
use tokio::sync::watch;

use super::{DependsOn, Plan, DEFAULT_NETWORK, LABEL_STACK, LABEL_STACK_MEMBER, ORIGIN_SUFFIX};
use crate::container::Container;
use crate::definition::ContainerDefinition;
use crate::error::{Error, Result};
use crate::network::{Network, Volume};
use crate::runtime::on_runtime;
use crate::session::{ResourceKind, Session, LABEL_FIXTURE, LABEL_OWNER, LABEL_SESSION, OWNER_RUN};
use crate::wait::Wait;

/// A running stack: its members' containers, networks and volumes, owned together.
///
/// [`Stack::remove`] removes everything in reverse dependency order (dependents first, then their
/// dependencies, then networks and volumes) and reports failures; dropping the handle removes
/// everything in the background, and the session removes what is left at process exit.
#[derive(Debug)]
pub struct Stack {
    // Dropped in this order: containers before the networks and volumes they use.
    members: Vec<Running>,
    networks: Vec<(String, Network)>,
    volumes: Vec<(String, Volume)>,
    id: String,
    name: String,
    session: Session,
}

#[derive(Debug)]
struct Running {
    name: String,
    level: usize,
    container: Arc<Container>,
}

impl Stack {
    /// The stack's id: its name and a random suffix (`shop-1a2b`), the value of [`LABEL_STACK`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stack's name, as defined.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The session that owns the stack's resources.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The labels every resource of this stack carries (the session's plus [`LABEL_STACK`]): a
    /// filter for finding them in the engine.
    pub fn labels(&self) -> HashMap<String, String> {
        let mut labels = self.session.labels();
        labels.insert(LABEL_STACK.into(), self.id.clone());
        labels
    }

    /// The container of member `member`, for exec, logs, files and HTTP.
    pub fn container(&self, member: &str) -> Result<&Container> {
        self.members
            .iter()
            .find(|m| m.name == member)
            .map(|m| &*m.container)
            .ok_or_else(|| Error::Invalid {
                kind: "stack member",
                input: member.to_string(),
                reason: format!(
                    "stack {} has no such member (members: {})",
                    self.id,
                    self.members
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// Every member's name and container, in the order they were created.
    pub fn containers(&self) -> impl Iterator<Item = (&str, &Container)> {
        self.members
            .iter()
            .map(|m| (m.name.as_str(), &*m.container))
    }

    /// The stack network called `name` (including [`DEFAULT_NETWORK`] when a member uses it).
    pub fn network(&self, name: &str) -> Result<&Network> {
        find(&self.networks, name, "stack network", &self.id)
    }

    /// The stack volume called `name`.
    pub fn volume(&self, name: &str) -> Result<&Volume> {
        find(&self.volumes, name, "stack volume", &self.id)
    }

    /// Removes every member (dependents before their dependencies, independent ones in
    /// parallel), then the networks and volumes, and waits until they are gone. Every removal is
    /// attempted; the first failure is returned.
    pub async fn remove(mut self) -> Result<()> {
        match self.teardown().await.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn teardown(&mut self) -> Vec<Error> {
        let started = Instant::now();
        let mut errors = Vec::new();
        let mut by_level: BTreeMap<usize, Vec<Running>> = BTreeMap::new();
        for m in std::mem::take(&mut self.members) {
            by_level.entry(m.level).or_default().push(m);
        }
        for (_, members) in by_level.into_iter().rev() {
            let removals = members.into_iter().map(|m| async move {
                match Arc::try_unwrap(m.container) {
                    Ok(c) => c.remove().await,
                    // Still shared (cannot happen once start returned): removed when the last
                    // handle drops.
                    Err(_) => Ok(()),
                }
            });
            errors.extend(join_all(removals).await.into_iter().filter_map(|r| r.err()));
        }
        let networks = std::mem::take(&mut self.networks)
            .into_iter()
            .map(|(_, n)| n.remove());
        let volumes = std::mem::take(&mut self.volumes)
            .into_iter()
            .map(|(_, v)| v.remove());
        let (n, v) = futures_util::join!(join_all(networks), join_all(volumes));
        errors.extend(n.into_iter().chain(v).filter_map(|r| r.err()));
        tracing::debug!(stack = %self.id, elapsed = ?started.elapsed(), errors = errors.len(), "stack removed");
        errors
    }
}

fn find<'a, T>(
    items: &'a [(String, T)],
    name: &str,
    kind: &'static str,
    id: &str,
) -> Result<&'a T> {
    items
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| Error::Invalid {
            kind,
            input: name.to_string(),
            reason: format!("stack {id} has none by this name"),
        })
}

/// Starts `plan` as stack `name` in `session` (on the library's runtime).
pub(crate) async fn start(name: String, plan: Plan, session: Session) -> Result<Stack> {
    on_runtime(async move { start_here(name, plan, session, None).await }).await
}

/// The stack of `plan` that the test run shares under the fixture hash `hash`: found among the
/// run's resources when another process started it (every member running), or started as the
/// run's. The caller holds the run's lock for `hash`.
pub(crate) async fn share_per_run(
    name: String,
    plan: Plan,
    session: Session,
    hash: String,
) -> Result<Stack> {
    on_runtime(async move {
        if let Some(stack) = attach_shared(&name, &plan, &session, &hash).await? {
            return Ok(stack);
        }
        start_here(name, plan, session, Some(&hash)).await
    })
    .await
}

/// The id of the stack `name` shared by the run under the fixture hash `hash`.
fn shared_id(name: &str, hash: &str) -> String {
    format!("{name}-{}", &hash[..8.min(hash.len())])
}

/// Finds the run's stack for `hash`: `None` when no process started it yet, or when part of it
/// is gone or stopped (what is left is then removed, to be started afresh).
async fn attach_shared(
    name: &str,
    plan: &Plan,
    session: &Session,
    hash: &str,
) -> Result<Option<Stack>> {
    let found = crate::gc::list_labelled(
        session.engine(),
        &[
            (LABEL_SESSION, session.run_id()),
            (LABEL_OWNER, OWNER_RUN),
            (LABEL_FIXTURE, hash),
        ],
    )
    .await?;
    if found.is_empty() {
        return Ok(None);
    }
    let id = shared_id(name, hash);
    let engine_name = |local: &str| format!("{}-{id}-{local}", session.run_namespace());
    let of_kind = |kind: ResourceKind, name: &str| {
        found
            .iter()
            .find(|r| r.kind == kind && r.name == name)
            .cloned()
    };
    let mut stack = Stack {
        members: Vec::new(),
        networks: Vec::new(),
        volumes: Vec::new(),
        id: id.clone(),
        name: name.to_string(),
        session: session.clone(),
    };
    let mut complete = true;
    for n in &plan.networks {
        match of_kind(ResourceKind::Network, &engine_name(n.name())) {
            Some(r) => stack.networks.push((
                n.name().to_string(),
                Network::attached(session, r.id, r.name),
            )),
            None => complete = false,
        }
    }
    for v in &plan.volumes {
        match of_kind(ResourceKind::Volume, &engine_name(v.name())) {
            Some(r) => stack
                .volumes
                .push((v.name().to_string(), Volume::attached(session, r.name))),
            None => complete = false,
        }
    }
    let member_ids: Vec<Option<String>> = plan
        .members
        .iter()
        .map(|m| {
            found
                .iter()
                .find(|r| {
                    r.kind == ResourceKind::Container
                        && r.labels.get(LABEL_STACK_MEMBER) == Some(&m.name)
                })
                .map(|r| r.id.clone())
        })
        .collect();
    complete &= member_ids.iter().all(Option::is_some);
    if complete {
        // Attached level by level, so a sidecar's host is there for its definition.
        let mut order: Vec<usize> = (0..plan.members.len()).collect();
        order.sort_by_key(|&i| plan.levels[i]);
        let mut attached: Vec<Option<Arc<Container>>> = vec![None; plan.members.len()];
        {
            let run = Run::new(&id, session, plan, &stack, Some(hash));
            for &i in &order {
                let host = plan.members[i].network_of.as_ref().and_then(|host| {
                    let h = plan.members.iter().position(|m| &m.name == host)?;
                    attached[h].clone()
                });
                if plan.members[i].network_of.is_some() && host.is_none() {
                    complete = false;
                    break;
                }
                let def = run.definition(i, host.as_deref());
                let Some(container_id) = &member_ids[i] else {
                    complete = false;
                    break;
                };
                let container = Container::attach(session, container_id, def).await?;
                if !container.is_running().await.unwrap_or(false) {
                    complete = false;
                    break;
                }
                attached[i] = Some(Arc::new(container));
            }
        }
        if complete {
            for i in order {
                if let Some(container) = attached[i].take() {
                    stack.members.push(Running {
                        name: plan.members[i].name.clone(),
                        level: plan.levels[i],
                        container,
                    });
                }
            }
            tracing::debug!(stack = %stack.id, "attached to the run's shared stack");
            return Ok(Some(stack));
        }
    }
    // Part of it is gone: remove the rest (and its baselines) and start again.
    eprintln!("seaworthy: the run's shared stack {id} is incomplete or stopped; replacing it");
    for r in found.iter().filter(|r| r.kind == ResourceKind::Container) {
        crate::snapshot::forget_run_baseline(&r.name);
    }
    drop(stack);
    let mut report = crate::gc::GcReport::default();
    crate::gc::remove_all(session.engine(), found, &mut report).await;
    match report.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

async fn start_here(
    name: String,
    plan: Plan,
    session: Session,
    shared: Option<&str>,
) -> Result<Stack> {
    let id = match shared {
        Some(hash) => shared_id(&name, hash),
        None => format!("{name}-{:04x}", rand::random::<u16>()),
    };
    let started = Instant::now();
    let mut stack = Stack {
        members: Vec::new(),
        networks: Vec::new(),
        volumes: Vec::new(),
        id: id.clone(),
        name,
        session: session.clone(),
    };
    let fail = |kind: &'static str, member: String, source: Error| Error::Stack {
        stack: id.clone(),
        kind,
        member,
        source: Box::new(source),
    };

    // Networks and volumes first, all in parallel.
    // Named `<stack id>-NAME`, labelled with the stack, and the run's when the stack is.
    let mut labels = vec![(LABEL_STACK, id.as_str())];
    labels.extend(shared.map(|hash| (LABEL_FIXTURE, hash)));
    let networks = plan.networks.iter().map(|n| {
        let def = n.clone().in_group(&id, &labels, shared.is_some());
        let session = session.clone();
        async move { (n.name().to_string(), def.create_in(&session).await) }
    });
    let volumes = plan.volumes.iter().map(|v| {
        let def = v.clone().in_group(&id, &labels, shared.is_some());
        let session = session.clone();
        async move { (v.name().to_string(), def.create_in(&session).await) }
    });
    let (networks, volumes) = futures_util::join!(join_all(networks), join_all(volumes));
    let mut failure = None;
    for (local, created) in networks {
        match created {
            Ok(n) => stack.networks.push((local, n)),
            Err(e) => failure = failure.or(Some(fail("network", local, e))),
        }
    }
    for (local, created) in volumes {
        match created {
            Ok(v) => stack.volumes.push((local, v)),
            Err(e) => failure = failure.or(Some(fail("volume", local, e))),
        }
    }
    if let Some(e) = failure {
        return Err(abandon(stack, e).await);
    }

    // Then the members, each as soon as its dependencies allow.
    let run = Run::new(&id, &session, &plan, &stack, shared);
    join_all((0..plan.members.len()).map(|i| run.member(i))).await;
    let Run {
        containers,
        created,
        failures,
        ..
    } = run;
    let mut containers: Vec<Option<Arc<Container>>> =
        containers.into_iter().map(|c| c.into_inner()).collect();
    for i in created.into_inner().unwrap_or_else(|e| e.into_inner()) {
        if let Some(container) = containers[i].take() {
            stack.members.push(Running {
                name: plan.members[i].name.clone(),
                level: plan.levels[i],
                container,
            });
        }
    }
    let first = failures
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .next();
    if let Some((i, e)) = first {
        return Err(abandon(stack, fail("member", plan.members[i].name.clone(), e)).await);
    }
    tracing::debug!(stack = %stack.id, members = stack.members.len(), elapsed = ?started.elapsed(), "stack ready");
    Ok(stack)
}

/// Removes what a failed start created (unless the session keeps resources), then returns `error`.
async fn abandon(mut stack: Stack, error: Error) -> Error {
    tracing::debug!(stack = %stack.id, error = %error, "stack start failed; removing what was created");
    if !stack.session.keeps_resources() {
        for e in stack.teardown().await {
            tracing::warn!(stack = %stack.id, error = %e, "removing part of a stack whose start failed");
        }
    }
    error
}

/// Where a member is in its start.
#[derive(Debug, Clone, Copy)]
enum Status {
    Pending,
    /// Started; its startup deadline bounds the waits of members that depend on it.
    Started(Instant),
    Ready(Instant),
    /// It failed, or will not start because something else failed.
    Failed,
}

/// The shared state of one stack start.
struct Run<'a> {
    id: &'a str,
    session: &'a Session,
    plan: &'a Plan,
    networks: HashMap<&'a str, &'a Network>,
    volumes: HashMap<&'a str, &'a Volume>,
    /// Member names fronted by an ambassador -> the ambassador's index.
    fronted: HashMap<&'a str, usize>,
    status: Vec<watch::Sender<Status>>,
    containers: Vec<OnceLock<Arc<Container>>>,
    /// Member indexes in the order their containers were created.
    created: Mutex<Vec<usize>>,
    /// Set on the first failure: members still waiting give up.
    abort: watch::Sender<bool>,
    /// Failures in the order they happened: (member index, error).
    failures: Mutex<Vec<(usize, Error)>>,
    /// The fixture hash of a stack shared by the run: its members are the run's.
    shared: Option<&'a str>,
}

impl<'a> Run<'a> {
    fn new(
        id: &'a str,
        session: &'a Session,
        plan: &'a Plan,
        stack: &'a Stack,
        shared: Option<&'a str>,
    ) -> Self {
        let n = plan.members.len();
        Run {
            id,
            session,
            plan,
            networks: stack
                .networks
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .collect(),
            volumes: stack.volumes.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            fronted: plan
                .members
                .iter()
                .enumerate()
                .filter_map(|(i, m)| Some((m.ambassador_for.as_deref()?, i)))
                .collect(),
            status: (0..n).map(|_| watch::channel(Status::Pending).0).collect(),
            containers: (0..n).map(|_| OnceLock::new()).collect(),
            created: Mutex::new(Vec::new()),
            abort: watch::channel(false).0,
            failures: Mutex::new(Vec::new()),
            shared,
        }
    }

    fn aborted(&self) -> bool {
        *self.abort.borrow()
    }

    /// Runs `fut` unless the start is (or becomes) aborted.
    async fn unless_aborted<F: Future>(&self, fut: F) -> Option<F::Output> {
        let mut abort = self.abort.subscribe();
        tokio::select! {
            biased;
            _ = abort.wait_for(|a| *a) => None,
            out = fut => Some(out),
        }
    }

    fn fail(&self, i: usize, error: Error) {
        tracing::debug!(stack = %self.id, member = %self.plan.members[i].name, error = %error, "stack member failed");
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((i, error));
        self.status[i].send_replace(Status::Failed);
        self.abort.send_replace(true);
    }

    fn give_up(&self, i: usize) {
        self.status[i].send_replace(Status::Failed);
    }

    /// Waits for member `i`'s dependencies, then creates, starts and waits for it.
    async fn member(&self, i: usize) {
        let member = &self.plan.members[i];
        let deps = join_all(
            self.plan.deps[i]
                .iter()
                .map(|&(d, c)| self.satisfy(i, d, c)),
        )
        .await;
        if deps.contains(&false) || self.aborted() {
            return self.give_up(i);
        }
        // A sidecar's host has started (it is a dependency), so its container exists.
        let host = match &member.network_of {
            Some(host) => {
                let container = self
                    .plan
                    .members
                    .iter()
                    .position(|m| &m.name == host)
                    .and_then(|h| self.containers[h].get().cloned());
                match container {
                    Some(c) => Some(c),
                    None => return self.give_up(i),
                }
            }
            None => None,
        };
        let mut def = self.definition(i, host.as_deref());
        // A build is not bounded by the startup timeout, which starts once the image exists.
        if let Some(build) = &member.build {
            match build.clone().build_in(self.session).await {
                Ok(image) => def = def.with_image(image.reference()),
                Err(e) => return self.fail(i, e),
            }
            if self.aborted() {
                return self.give_up(i);
            }
        }
        let wait = def.wait.clone();
        let started = Instant::now();
        let deadline = started + def.startup_timeout;
        let container = match def.create_in(self.session).await {
            Ok(c) => Arc::new(c),
            Err(e) => return self.fail(i, e),
        };
        let _ = self.containers[i].set(container.clone());
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(i);
        if self.aborted() {
            return self.give_up(i);
        }
        if let Err(e) = container.start().await {
            return self.fail(i, e);
        }
        self.status[i].send_replace(Status::Started(deadline));
        tracing::debug!(stack = %self.id, member = %member.name, elapsed = ?started.elapsed(), "stack member started");
        if let Some(wait) = wait {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.unless_aborted(container.wait_for(&wait, left)).await {
                None => return self.give_up(i),
                Some(Err(e)) => return self.fail(i, e),
                Some(Ok(())) => {}
            }
        }
        self.status[i].send_replace(Status::Ready(deadline));
        tracing::debug!(stack = %self.id, member = %member.name, elapsed = ?started.elapsed(), "stack member ready");
    }

    /// Waits until member `dep` meets `condition` for member `i`; false when it never will (the
    /// failure is recorded, against `dep` when its condition failed).
    async fn satisfy(&self, i: usize, dep: usize, condition: DependsOn) -> bool {
        let mut status = self.status[dep].subscribe();
        let reached = self
            .unless_aborted(status.wait_for(|s| match s {
                Status::Pending => false,
                Status::Started(_) => condition != DependsOn::Ready,
                Status::Ready(_) | Status::Failed => true,
            }))
            .await;
        let deadline = match reached.map(|r| r.map(|s| *s)) {
            Some(Ok(Status::Started(d) | Status::Ready(d))) => d,
            _ => return false,
        };
        let check = match condition {
            DependsOn::Started | DependsOn::Ready => return true,
            DependsOn::Healthy => Wait::healthy(),
            DependsOn::CompletedSuccessfully => Wait::exit_code(0),
        };
        let Some(container) = self.containers[dep].get().cloned() else {
            return false;
        };
        tracing::debug!(stack = %self.id, member = %self.plan.members[i].name, dependency = %self.plan.members[dep].name, %condition, "waiting for a dependency");
        let left = deadline.saturating_duration_since(Instant::now());
        match self.unless_aborted(container.wait_for(&check, left)).await {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                self.fail(dep, e);
                false
            }
            None => false,
        }
    }

    /// Member `i`'s container definition, wired into the stack: namespaced name, labels, stack
    /// networks with aliases (or its host's network namespace) and stack volumes.
    fn definition(&self, i: usize, host: Option<&Container>) -> ContainerDefinition {
        let member = &self.plan.members[i];
        let name = member.name.as_str();
        let mut def = member
            .definition
            .clone()
            .with_name(format!("{}-{name}", self.id))
            .with_label(LABEL_STACK, self.id)
            .with_label(LABEL_STACK_MEMBER, name);
        if let Some(hash) = self.shared {
            def = def.with_label(LABEL_FIXTURE, hash);
            def.run_scoped = true;
        }
        for v in &member.volumes {
            if let Some(volume) = self.volumes.get(v.volume.as_str()) {
                def = def.with_volume(volume, v.target.clone(), v.read_only);
            }
        }
        if let Some(host) = host {
            return def.with_network_of(host);
        }
        if def.network_mode.is_some() {
            return def;
        }
        def = def.without_session_network();
        // The engine makes the host name a DNS alias too: a member behind an ambassador must not
        // take its own name as host name, or both would answer to it.
        let own = if self.fronted.contains_key(name) {
            format!("{name}{ORIGIN_SUFFIX}")
        } else {
            name.to_string()
        };
        if def.hostname.is_none() {
            def = def.with_hostname(own.clone());
        }
        let mut aliases = vec![own];
        aliases.extend(def.aliases.iter().cloned());
        aliases.extend(member.ambassador_for.iter().cloned());
        let default = [(DEFAULT_NETWORK.to_string(), Vec::new())];
        let joins = if member.networks.is_empty() {
            &default[..]
        } else {
            &member.networks[..]
        };
        for (network, extra) in joins {
            if let Some(n) = self.networks.get(network.as_str()) {
                def = def.with_network(n, aliases.iter().chain(extra).cloned());
            }
        }
        def
    }
}
