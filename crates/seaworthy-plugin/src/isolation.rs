//! Per-test isolation for plugin fixtures: the plugin hands out numbered namespaces
//! (`isolation-slots`, `isolate`, `release`); the host hands each to one test at a time.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seaworthy::{ConnectionInfo, Isolation};

use crate::error::{PluginError, Result};
use crate::fixture::{connection_of, here_or_on_runtime, Config, PluginFixture};
use crate::instance::{Call, Reply, Runner};

/// How long `isolate` waits for a namespace while all are in use.
const ISOLATE_WAIT: Duration = Duration::from_secs(300);

/// Namespaces handed out by `isolate`: a permit per slot, and the free slots.
pub(crate) struct SlotPool {
    pub(crate) total: u32,
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
    pub(crate) free: Mutex<BTreeSet<u32>>,
}

impl PluginFixture {
    /// How many tests can hold an isolated namespace at once (0: isolation not supported).
    pub fn isolation_slots(&self) -> u32 {
        self.slots.total
    }

    /// Checks out a namespace (waiting while all are in use), returning the plugin's own error.
    pub async fn try_isolate(&self) -> Result<PluginIsolated> {
        let runner = self.runner.clone();
        let config = self.definition.config.clone();
        let slots = self.slots.clone();
        let container = self.container.clone();
        let fallback = self.connection.clone();
        here_or_on_runtime(async move {
            let plugin = runner.plugin_id().to_string();
            if slots.total == 0 {
                return Err(PluginError::Unsupported {
                    plugin,
                    what: "isolation",
                });
            }
            let permit = tokio::time::timeout(ISOLATE_WAIT, slots.permits.clone().acquire_owned())
                .await
                .map_err(|_| PluginError::Failed {
                    plugin: plugin.clone(),
                    call: "isolate",
                    message: format!("no isolated namespace became free within {ISOLATE_WAIT:?}"),
                })?
                .map_err(|_| runner.mismatch(Call::Isolate(0)))?;
            let slot = slots
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_first()
                .ok_or_else(|| runner.mismatch(Call::Isolate(0)))?;
            let give_back = |slots: &SlotPool| {
                slots
                    .free
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(slot);
            };
            let isolated = match runner.call(Call::Isolate(slot), &config).await {
                Ok(Reply::Isolated(Ok(i))) => i,
                Ok(Reply::Isolated(Err(e))) => {
                    give_back(&slots);
                    return Err(runner.failed(Call::Isolate(slot), &e).await);
                }
                Ok(_) => {
                    give_back(&slots);
                    return Err(runner.mismatch(Call::Isolate(slot)));
                }
                Err(e) => {
                    give_back(&slots);
                    return Err(e);
                }
            };
            let connection = match isolated.connection {
                Some(c) => connection_of(&plugin, &container, c)?,
                None => fallback,
            };
            Ok(PluginIsolated {
                namespace: isolated.namespace,
                connection,
                slot,
                release: Some(Release {
                    runner,
                    config,
                    slots,
                    _permit: permit,
                }),
            })
        })
        .await
    }
}

impl Isolation for PluginFixture {
    type Isolated = PluginIsolated;

    async fn isolate(&self) -> seaworthy::Result<PluginIsolated> {
        self.try_isolate()
            .await
            .map_err(|e| e.into_core(self.container.name()))
    }
}

struct Release {
    runner: Arc<Runner>,
    config: Config,
    slots: Arc<SlotPool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// A namespace checked out for one test. Dropping it asks the plugin to release (reset) the
/// namespace, in the background, and then hands it to the next test.
pub struct PluginIsolated {
    namespace: String,
    connection: ConnectionInfo,
    slot: u32,
    release: Option<Release>,
}

impl std::fmt::Debug for PluginIsolated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginIsolated")
            .field("namespace", &self.namespace)
            .field("connection", &self.connection)
            .finish()
    }
}

impl PluginIsolated {
    /// The namespace's name (a database, a db index...).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// How to reach the namespace.
    pub fn connection(&self) -> &ConnectionInfo {
        &self.connection
    }
}

impl Drop for PluginIsolated {
    fn drop(&mut self) {
        let Some(release) = self.release.take() else {
            return;
        };
        let slot = self.slot;
        seaworthy::runtime::spawn(async move {
            let outcome = match release
                .runner
                .call(Call::Release(slot), &release.config)
                .await
            {
                Ok(Reply::Unit(Ok(()))) => Ok(()),
                Ok(Reply::Unit(Err(e))) => {
                    Err(release.runner.failed(Call::Release(slot), &e).await)
                }
                Ok(_) => Err(release.runner.mismatch(Call::Release(slot))),
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %e, slot, "releasing an isolated namespace failed; it is handed out again anyway");
            }
            release
                .slots
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(slot);
            drop(release);
        });
    }
}
