//! Per-test isolation for plugin fixtures: the plugin hands out numbered namespaces
//! (`isolation-slots`, `isolate`, `release`); the host hands each to one test at a time.

use std::sync::Arc;
use std::time::Duration;

use seaworthy::kit::{Lease, NamespacePool};
use seaworthy::{ConnectionInfo, Isolation};

use crate::error::{PluginError, Result};
use crate::fixture::{connection_of, here_or_on_runtime, Config, PluginFixture};
use crate::instance::{Call, Reply, Runner};

/// How long `isolate` waits for a namespace while all are in use.
const ISOLATE_WAIT: Duration = Duration::from_secs(300);

/// Namespaces handed out by `isolate`: the plugin's slot numbers, in the kit's pool.
pub(crate) struct SlotPool {
    pub(crate) total: u32,
    pool: NamespacePool<u32>,
}

impl SlotPool {
    /// The `total` slots of the plugin run by `runner`; a slot given back is released (reset) by
    /// the plugin first, and handed out again even when that fails (logged).
    pub(crate) fn new(total: u32, runner: Arc<Runner>, config: Config) -> SlotPool {
        let pool = NamespacePool::new("isolated namespace", move |slot: u32| {
            let (runner, config) = (runner.clone(), config.clone());
            async move {
                let outcome = match runner.call(Call::Release(slot), &config).await {
                    Ok(Reply::Unit(Ok(()))) => Ok(()),
                    Ok(Reply::Unit(Err(e))) => Err(runner.failed(Call::Release(slot), &e).await),
                    Ok(_) => Err(runner.mismatch(Call::Release(slot))),
                    Err(e) => Err(e),
                };
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, slot, "releasing an isolated namespace failed; it is handed out again anyway");
                }
                Ok(slot)
            }
        })
        .with_checkout_timeout(ISOLATE_WAIT);
        for slot in 0..total {
            pool.add(slot);
        }
        SlotPool { total, pool }
    }
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
            let lease = slots
                .pool
                .checkout()
                .await
                .map_err(|e| PluginError::Failed {
                    plugin: plugin.clone(),
                    call: "isolate",
                    message: e.to_string(),
                })?;
            let slot = *lease;
            // A slot the plugin could not isolate goes back without a release.
            let isolated = match runner.call(Call::Isolate(slot), &config).await {
                Ok(Reply::Isolated(Ok(i))) => i,
                Ok(Reply::Isolated(Err(e))) => {
                    slots.pool.add(lease.keep().unwrap_or(slot));
                    return Err(runner.failed(Call::Isolate(slot), &e).await);
                }
                Ok(_) => {
                    slots.pool.add(lease.keep().unwrap_or(slot));
                    return Err(runner.mismatch(Call::Isolate(slot)));
                }
                Err(e) => {
                    slots.pool.add(lease.keep().unwrap_or(slot));
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
                _lease: lease,
            })
        })
        .await
    }
}

impl Isolation for PluginFixture {
    type Isolated = PluginIsolated;

    async fn isolate(&self) -> seaworthy::Result<PluginIsolated> {
        self.try_isolate().await.map_err(|e| {
            e.into_core(
                self.definition.plugin().id(),
                self.container.name(),
                "isolate",
            )
        })
    }
}

/// A namespace checked out for one test. Dropping it asks the plugin to release (reset) the
/// namespace, in the background on Seaworthy's runtime, and then hands it to the next test; a
/// test that fails with `SEAWORTHY_KEEP_ON_FAILURE=1` keeps it as it was left.
pub struct PluginIsolated {
    namespace: String,
    connection: ConnectionInfo,
    /// Dropped last: the plugin releases the slot after the test let go of it.
    _lease: Lease<u32>,
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
