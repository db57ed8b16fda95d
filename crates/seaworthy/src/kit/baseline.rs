//! [`Baseline`]: a fixture's baseline, kept in its container.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::container::Container;

/// Where a native fixture keeps its baseline: a JSON file in its container, so the baseline
/// lives exactly as long as the state it describes, and every process of a test run that
/// attaches to a shared container restores the same one (taken before any test changed it).
///
/// ```no_run
/// # async fn demo(container: seaworthy::Container) -> seaworthy::Result<()> {
/// use seaworthy::kit::Baseline;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Settings { max_memory: String }
///
/// let baseline: Settings = Baseline::new("/tmp/.seaworthy-myservice-baseline.json")
///     .load_or_record(&container, || async {
///         // Read what clean() must put back, through the service's protocol.
///         Ok::<_, seaworthy::Error>(Settings { max_memory: "64m".into() })
///     })
///     .await?;
/// # let _ = baseline; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Baseline {
    path: String,
}

/// What a [`Baseline::load_or_revise`] step decided about the stored baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision<T> {
    /// The stored baseline holds: it is used as it is (nothing is written).
    Kept(T),
    /// A baseline recorded anew, or the stored one completed: stored in the container, then used.
    Store(T),
}

impl Baseline {
    /// A baseline kept at `path` in the container (a file no test would touch; the container's
    /// own user must be able to write it: `/tmp/…` works in most images).
    pub fn new(path: impl Into<String>) -> Self {
        Baseline { path: path.into() }
    }

    /// Where the baseline is kept in the container.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The container's baseline: the one stored in it when there is one, else what `record`
    /// returns, stored for the processes that attach later. Both happen under the run's
    /// cross-process lock for this container, so a process attaching while another records
    /// waits for it and loads its baseline (two recordings never race, and none is taken after a
    /// test began to change the service).
    ///
    /// A stored baseline that cannot be read or parsed (written by another version of the
    /// fixture) is recorded again; a baseline that cannot be stored only costs later processes
    /// a recording of their own (logged). `record` errors are returned as they are.
    ///
    /// This is the one place where a fixture's baseline comes into being: a cache of baselines
    /// (kept across runs, keyed by the definition) belongs here.
    pub async fn load_or_record<T, E, F, Fut>(
        &self,
        container: &Container,
        record: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<crate::Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.load_valid_or_record(container, || async { Ok(true) }, record)
            .await
    }

    /// [`load_or_record`](Self::load_or_record) for a baseline that describes state the
    /// container can lose while the file stays (a data directory on a tmpfs, emptied by a
    /// restart of the container): a stored baseline is used only when `still_valid` says the
    /// state is there (PostgreSQL: its template database exists), else it is recorded again.
    /// `still_valid` runs under the same lock, so processes attaching at once record once.
    pub async fn load_valid_or_record<T, E, V, VFut, F, Fut>(
        &self,
        container: &Container,
        still_valid: V,
        record: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<crate::Error>,
        V: FnOnce() -> VFut,
        VFut: Future<Output = Result<bool, E>>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.load_or_revise(container, |stored| async move {
            if let Some(stored) = stored {
                if still_valid().await? {
                    return Ok(Revision::Kept(stored));
                }
                tracing::info!(
                    container = container.name(),
                    path = self.path,
                    "the state a stored baseline describes is gone; recording it again"
                );
            }
            Ok(Revision::Store(record().await?))
        })
        .await
    }

    /// The most general form: under the run's cross-process lock for this container, `revise`
    /// gets the stored baseline (`None` when there is none, or it cannot be read or parsed) and
    /// decides: [`Revision::Kept`] uses it as it is, [`Revision::Store`] stores what it returns
    /// (recorded anew, or the stored one completed) for the processes that attach later. For a
    /// record some of whose parts can go stale on their own (PostgreSQL: the clean function
    /// compiled from the template, rebuilt when the template may have been changed by hand)
    /// while the rest stays good. `revise` errors are returned as they are, and nothing is
    /// stored.
    pub async fn load_or_revise<T, E, F, Fut>(
        &self,
        container: &Container,
        revise: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<crate::Error>,
        F: FnOnce(Option<T>) -> Fut,
        Fut: Future<Output = Result<Revision<T>, E>>,
    {
        let lock = crate::state::lock_file(
            format!("baseline-{}.lock", crate::kit::key_hash(&container.id())),
            "fixture baseline",
        )
        .await?;
        let stored = self.load(container).await;
        let result = match revise(stored).await {
            Ok(Revision::Kept(baseline)) => Ok(baseline),
            Ok(Revision::Store(baseline)) => {
                self.store(container, &baseline).await;
                Ok(baseline)
            }
            Err(e) => Err(e),
        };
        drop(lock);
        result
    }

    /// The stored baseline, if the container has a readable one.
    async fn load<T: DeserializeOwned>(&self, container: &Container) -> Option<T> {
        match container.read_file(&self.path).await {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(stored) => Some(stored),
                Err(e) => {
                    tracing::warn!(container = container.name(), path = self.path, error = %e, "unreadable baseline file; recording a new one");
                    None
                }
            },
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                tracing::warn!(container = container.name(), path = self.path, error = %e, "cannot read the baseline file; recording a new one");
                None
            }
        }
    }

    async fn store<T: Serialize>(&self, container: &Container, baseline: &T) {
        let stored = match serde_json::to_vec(baseline) {
            Ok(json) => container.write_file(&self.path, json, 0o600).await,
            Err(e) => Err(crate::Error::invalid(
                "fixture baseline",
                &self.path,
                format!("cannot be serialised: {e}"),
            )),
        };
        if let Err(e) = stored {
            // Only processes attaching later to the same container miss it.
            tracing::warn!(container = container.name(), path = self.path, error = %e, "cannot keep the baseline in the container");
        }
    }
}
