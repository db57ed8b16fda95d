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
    name: String,
    driver: String,
    internal: bool,
    labels: HashMap<String, String>,
    /// Shared by the test run: named in the run's namespace, owned by no process.
    run_scoped: bool,
}

impl NetworkDefinition {
    /// A bridge network; the engine name is namespaced (`sw-<run>-<process>-NAME`).
    pub fn new(name: impl Into<String>) -> Self {
        NetworkDefinition {
            name: name.into(),
            driver: "bridge".into(),
            internal: false,
            labels: HashMap::new(),
            run_scoped: false,
        }
    }

    /// The name given in [`new`](Self::new) (the engine name adds the session's namespace).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Replaces the name (a stack prefixes its networks' names with the stack's id).
    pub(crate) fn renamed(mut self, name: String) -> Self {
        self.name = name;
        self
    }

    /// Makes the network the test run's (a stack shared per run): named in the run's namespace,
    /// labelled as the run's, and left in place by its handle; the reaper removes it when the
    /// run is over.
    pub(crate) fn run_scoped(mut self) -> Self {
        self.run_scoped = true;
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
        self.labels.insert(key.into(), value.into());
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
            let (name, owner_labels) = names_and_labels(&session, &self.name, self.run_scoped);
            let mut labels = self.labels.clone();
            labels.extend(owner_labels);
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
            if !self.run_scoped {
                session.track(ResourceKind::Network, &created.id, &name);
            }
            Ok(Network {
                session,
                id: created.id,
                name,
                removed: AtomicBool::new(self.run_scoped),
            })
        })
        .await
    }
}

/// A network created by Seaworthy, removed when dropped (after the containers on it).
#[derive(Debug)]
pub struct Network {
    session: Session,
    id: String,
    name: String,
    removed: AtomicBool,
}

impl Network {
    /// The engine name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The engine id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A handle to the run's network `name` (id `id`) that another process created: dropping it
    /// removes nothing.
    pub(crate) fn attached(session: &Session, id: String, name: String) -> Network {
        Network {
            session: session.clone(),
            id,
            name,
            removed: AtomicBool::new(true),
        }
    }

    /// Removes the network now (waiting for containers still on it to go).
    pub async fn remove(self) -> Result<()> {
        self.removed.store(true, Ordering::SeqCst);
        self.session
            .remove_resource(ResourceKind::Network, self.id.clone(), self.name.clone())
            .await
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if !self.removed.swap(true, Ordering::SeqCst) {
            self.session.remove_in_background(
                ResourceKind::Network,
                self.id.clone(),
                self.name.clone(),
            );
        }
    }
}

/// Describes a volume.
#[derive(Debug, Clone)]
pub struct VolumeDefinition {
    name: String,
    driver: Option<String>,
    driver_opts: HashMap<String, String>,
    labels: HashMap<String, String>,
    /// Shared by the test run: named in the run's namespace, owned by no process.
    run_scoped: bool,
}

impl VolumeDefinition {
    /// A local volume; the engine name is namespaced (`sw-<run>-<process>-NAME`).
    pub fn new(name: impl Into<String>) -> Self {
        VolumeDefinition {
            name: name.into(),
            driver: None,
            driver_opts: HashMap::new(),
            labels: HashMap::new(),
            run_scoped: false,
        }
    }

    /// The name given in [`new`](Self::new) (the engine name adds the session's namespace).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Replaces the name (a stack prefixes its volumes' names with the stack's id).
    pub(crate) fn renamed(mut self, name: String) -> Self {
        self.name = name;
        self
    }

    /// Makes the volume the test run's; see [`NetworkDefinition::run_scoped`].
    pub(crate) fn run_scoped(mut self) -> Self {
        self.run_scoped = true;
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
        self.labels.insert(key.into(), value.into());
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
            let (name, owner_labels) = names_and_labels(&session, &self.name, self.run_scoped);
            let mut labels = self.labels.clone();
            labels.extend(owner_labels);
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
            if !self.run_scoped {
                session.track(ResourceKind::Volume, &name, &name);
            }
            Ok(Volume {
                session,
                name,
                removed: AtomicBool::new(self.run_scoped),
            })
        })
        .await
    }
}

/// A volume created by Seaworthy, removed when dropped (after the containers using it).
#[derive(Debug)]
pub struct Volume {
    session: Session,
    name: String,
    removed: AtomicBool,
}

impl Volume {
    /// The engine name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle to the run's volume `name` that another process created: dropping it removes
    /// nothing.
    pub(crate) fn attached(session: &Session, name: String) -> Volume {
        Volume {
            session: session.clone(),
            name,
            removed: AtomicBool::new(true),
        }
    }

    /// Removes the volume now (waiting for containers using it to go).
    pub async fn remove(self) -> Result<()> {
        self.removed.store(true, Ordering::SeqCst);
        self.session
            .remove_resource(ResourceKind::Volume, self.name.clone(), self.name.clone())
            .await
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        if !self.removed.swap(true, Ordering::SeqCst) {
            self.session.remove_in_background(
                ResourceKind::Volume,
                self.name.clone(),
                self.name.clone(),
            );
        }
    }
}

/// The engine name for a network or volume the user calls `name`, and the labels saying who owns
/// it: the session (this process), or the test run.
fn names_and_labels(
    session: &Session,
    name: &str,
    run_scoped: bool,
) -> (String, HashMap<String, String>) {
    if run_scoped {
        (
            format!("{}-{name}", session.run_namespace()),
            session.run_labels(),
        )
    } else {
        (session.scoped_name(name), session.labels())
    }
}
