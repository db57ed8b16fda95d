//! Networks and volumes as first-class handles, owned by the session like containers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};

use crate::error::{Error, Result};
use crate::runtime::on_runtime;
use crate::session::{ResourceKind, Session};

/// Describes a network.
#[derive(Debug, Clone)]
pub struct NetworkDefinition {
    common: Common,
    driver: String,
    internal: bool,
}

impl NetworkDefinition {
    /// A bridge network; the engine name is namespaced (`sw-<run>-<process>-NAME`).
    pub fn new(name: impl Into<String>) -> Self {
        NetworkDefinition {
            common: Common::new(name.into()),
            driver: "bridge".into(),
            internal: false,
        }
    }

    /// The name given in [`new`](Self::new) (the engine name adds the session's namespace).
    pub fn name(&self) -> &str {
        &self.common.name
    }

    /// Makes the network one of a group's (a stack's); see [`Common::join`].
    pub(crate) fn in_group(mut self, group: &str, labels: &[(&str, &str)], run: bool) -> Self {
        self.common.join(group, labels, run);
        self
    }

    /// Uses another driver.
    pub fn driver(mut self, driver: impl Into<String>) -> Self {
        self.driver = driver.into();
        self
    }

    /// Cuts the network off from the outside (no route out of it).
    pub fn internal(mut self, internal: bool) -> Self {
        self.internal = internal;
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.common.labels.insert(key.into(), value.into());
        self
    }

    /// Creates the network in the global session.
    pub async fn create(self) -> Result<Network> {
        self.create_in(&Session::global().await?).await
    }

    /// Creates the network in `session`.
    pub async fn create_in(self, session: &Session) -> Result<Network> {
        let session = session.clone();
        on_runtime(async move {
            let (name, labels) = self.common.engine_name_and_labels(&session);
            let created = session
                .engine()
                .docker()
                .create_network(NetworkCreateRequest {
                    name: name.clone(),
                    driver: Some(self.driver.clone()),
                    internal: Some(self.internal),
                    labels: Some(labels),
                    ..Default::default()
                })
                .await
                .map_err(|e| Error::docker(format!("create network {name}"), e))?;
            let owned = Owned::created(
                session,
                ResourceKind::Network,
                created.id,
                name,
                self.common.run_scoped,
            );
            Ok(Network(owned))
        })
        .await
    }
}

/// A network created by Seaworthy, removed when dropped (after the containers on it).
#[derive(Debug)]
pub struct Network(Owned);

impl Network {
    /// The engine name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The engine id.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// A handle to the run's network `name` (id `id`) that another process created: dropping it
    /// removes nothing.
    pub(crate) fn attached(session: &Session, id: String, name: String) -> Network {
        Network(Owned::attached(session, ResourceKind::Network, id, name))
    }

    /// Removes the network now (waiting for containers still on it to go).
    pub async fn remove(self) -> Result<()> {
        self.0.remove().await
    }
}

/// Describes a volume.
#[derive(Debug, Clone)]
pub struct VolumeDefinition {
    common: Common,
    driver: Option<String>,
    driver_opts: HashMap<String, String>,
}

impl VolumeDefinition {
    /// A local volume; the engine name is namespaced (`sw-<run>-<process>-NAME`).
    pub fn new(name: impl Into<String>) -> Self {
        VolumeDefinition {
            common: Common::new(name.into()),
            driver: None,
            driver_opts: HashMap::new(),
        }
    }

    /// The name given in [`new`](Self::new) (the engine name adds the session's namespace).
    pub fn name(&self) -> &str {
        &self.common.name
    }

    /// Makes the volume one of a group's (a stack's); see [`Common::join`].
    pub(crate) fn in_group(mut self, group: &str, labels: &[(&str, &str)], run: bool) -> Self {
        self.common.join(group, labels, run);
        self
    }

    /// Uses another volume driver.
    pub fn driver(mut self, driver: impl Into<String>) -> Self {
        self.driver = Some(driver.into());
        self
    }

    /// Sets a driver option (`docker volume create -o KEY=VALUE`). With the default `local`
    /// driver, `type`, `device` and `o` mount a filesystem of your choice, for example a size-
    /// limited tmpfs: `type=tmpfs`, `device=tmpfs`, `o=size=64m`.
    pub fn driver_opt(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.driver_opts.insert(key.into(), value.into());
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.common.labels.insert(key.into(), value.into());
        self
    }

    /// Creates the volume in the global session.
    pub async fn create(self) -> Result<Volume> {
        self.create_in(&Session::global().await?).await
    }

    /// Creates the volume in `session`.
    pub async fn create_in(self, session: &Session) -> Result<Volume> {
        let session = session.clone();
        on_runtime(async move {
            let (name, labels) = self.common.engine_name_and_labels(&session);
            session
                .engine()
                .docker()
                .create_volume(VolumeCreateRequest {
                    name: Some(name.clone()),
                    driver: self.driver.clone(),
                    driver_opts: (!self.driver_opts.is_empty()).then(|| self.driver_opts.clone()),
                    labels: Some(labels),
                    ..Default::default()
                })
                .await
                .map_err(|e| Error::docker(format!("create volume {name}"), e))?;
            let id = name.clone();
            let owned = Owned::created(
                session,
                ResourceKind::Volume,
                id,
                name,
                self.common.run_scoped,
            );
            Ok(Volume(owned))
        })
        .await
    }
}

/// A volume created by Seaworthy, removed when dropped (after the containers using it).
#[derive(Debug)]
pub struct Volume(Owned);

impl Volume {
    /// The engine name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// A handle to the run's volume `name` that another process created: dropping it removes
    /// nothing.
    pub(crate) fn attached(session: &Session, name: String) -> Volume {
        Volume(Owned::attached(
            session,
            ResourceKind::Volume,
            name.clone(),
            name,
        ))
    }

    /// Removes the volume now (waiting for containers using it to go).
    pub async fn remove(self) -> Result<()> {
        self.0.remove().await
    }
}

/// What network and volume definitions have alike: the name the user gave, labels, and whether
/// the resource is the run's.
#[derive(Debug, Clone)]
struct Common {
    name: String,
    labels: HashMap<String, String>,
    /// Shared by the test run: named in the run's namespace, owned by no process.
    run_scoped: bool,
}

impl Common {
    fn new(name: String) -> Common {
        Common {
            name,
            labels: HashMap::new(),
            run_scoped: false,
        }
    }

    /// Makes the resource one of the group `group`'s (a stack's, whose id it is): named
    /// `<group>-NAME`, carrying `labels`, and with `run` the test run's (a stack shared per run):
    /// named in the run's namespace, labelled as the run's, and left in place by its handle; the
    /// reaper removes it when the run is over.
    fn join(&mut self, group: &str, labels: &[(&str, &str)], run: bool) {
        self.name = format!("{group}-{}", self.name);
        self.labels
            .extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.run_scoped |= run;
    }

    /// The engine name (namespaced: the session's, or the run's) and every label: the user's
    /// and those saying who owns it, the session (this process) or the test run.
    fn engine_name_and_labels(&self, session: &Session) -> (String, HashMap<String, String>) {
        let (name, owner) = if self.run_scoped {
            (
                format!("{}-{}", session.run_namespace(), self.name),
                session.run_labels(),
            )
        } else {
            (session.scoped_name(&self.name), session.labels())
        };
        let mut labels = self.labels.clone();
        labels.extend(owner);
        (name, labels)
    }
}

/// What network and volume handles have alike: an engine resource that is removed when the
/// handle drops, unless it is the run's or another process's.
#[derive(Debug)]
struct Owned {
    session: Session,
    kind: ResourceKind,
    id: String,
    name: String,
    removed: AtomicBool,
}

impl Owned {
    /// A resource this session created: tracked by the session and removed on drop, unless it
    /// is the run's (`run_scoped`; the reaper removes it when the run is over).
    fn created(
        session: Session,
        kind: ResourceKind,
        id: String,
        name: String,
        run_scoped: bool,
    ) -> Owned {
        if !run_scoped {
            session.track(kind, &id, &name);
        }
        Owned {
            session,
            kind,
            id,
            name,
            removed: AtomicBool::new(run_scoped),
        }
    }

    /// A resource of the run that another process created: dropping it removes nothing.
    fn attached(session: &Session, kind: ResourceKind, id: String, name: String) -> Owned {
        Owned {
            session: session.clone(),
            kind,
            id,
            name,
            removed: AtomicBool::new(true),
        }
    }

    /// Removes the resource now (waiting for the containers using it to go).
    async fn remove(self) -> Result<()> {
        self.removed.store(true, Ordering::SeqCst);
        self.session
            .remove_resource(self.kind, self.id.clone(), self.name.clone())
            .await
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if !self.removed.swap(true, Ordering::SeqCst) {
            self.session
                .remove_in_background(self.kind, self.id.clone(), self.name.clone());
        }
    }
}
