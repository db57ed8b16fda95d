//! [`Baseline`]: a fixture's baseline, kept in its container.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use sha2::{Digest, Sha256};

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
        let lock = lock(container).await?;
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

    /// [`load_or_revise`](Self::load_or_revise), with a copy of the record kept on the host for
    /// a container [reused](crate::reuse) across runs, so that a later run does not read the
    /// record out of the container (an archive download from the engine, tens of milliseconds
    /// for a record of a few hundred kilobytes).
    ///
    /// `stamp` reads, through the service's protocol, what identifies the state the record
    /// describes (PostgreSQL: the server's start time and the template database's row version);
    /// `None` when the service cannot say, or the state is not as a record describes it. The
    /// copy is used only when it was taken from this container, with the stamp the service says
    /// now, and its own digest checks out; anything else (another container, a restarted
    /// server, a state changed since, a copy damaged or missing) reads the container's record and
    /// calls `revise` as [`load_or_revise`](Self::load_or_revise) does. So the stamp must change
    /// whenever a record is stored anew (the fixture's `revise` makes it so). The copy is kept
    /// (under the same lock) after each load and store; for a container that is not reused this
    /// is [`load_or_revise`](Self::load_or_revise) (nothing outlives the run to read it later).
    pub async fn load_or_revise_stamped<T, E, S, SFut, F, Fut>(
        &self,
        container: &Container,
        stamp: S,
        revise: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<crate::Error>,
        S: Fn() -> SFut,
        SFut: Future<Output = Result<Option<String>, E>>,
        F: FnOnce(Option<T>) -> Fut,
        Fut: Future<Output = Result<Revision<T>, E>>,
    {
        if !container.inner.definition.reused {
            return self.load_or_revise(container, revise).await;
        }
        let lock = lock(container).await?;
        let result = async {
            let before = stamp().await?;
            if let Some(copy) = before.as_deref().and_then(|s| self.host_copy(container, s)) {
                tracing::debug!(
                    container = container.name(),
                    path = self.path,
                    "baseline record from its host copy"
                );
                return Ok(copy);
            }
            let stored = self.load(container).await;
            match revise(stored).await? {
                Revision::Kept(baseline) => {
                    if let Some(stamp) = before {
                        self.keep_host_copy(container, &stamp, &baseline);
                    }
                    Ok(baseline)
                }
                Revision::Store(baseline) => {
                    self.store(container, &baseline).await;
                    // Storing changed the state the stamp reads: read it again (a stamp that
                    // cannot be read only costs a later run a read of the container's record).
                    if let Ok(Some(stamp)) = stamp().await {
                        self.keep_host_copy(container, &stamp, &baseline);
                    }
                    Ok(baseline)
                }
            }
        }
        .await;
        drop(lock);
        result
    }

    /// The host copy of `container`'s record, when it was taken with `stamp` and is intact.
    fn host_copy<T: DeserializeOwned>(&self, container: &Container, stamp: &str) -> Option<T> {
        let bytes = std::fs::read(crate::state::baseline_copy_file(
            &container.id(),
            &self.path,
        ))
        .ok()?;
        let copy: HostCopy = serde_json::from_slice(&bytes).ok()?;
        let intact = copy.container == container.id()
            && copy.path == self.path
            && copy.stamp == stamp
            && copy.digest == digest(&copy.record);
        if !intact {
            tracing::debug!(
                container = container.name(),
                path = self.path,
                "the host copy of the baseline record is not this state's; reading the container's"
            );
            return None;
        }
        serde_json::from_str(&copy.record).ok()
    }

    /// Keeps a copy of `baseline` on the host, for `container` in the state `stamp` names (a
    /// copy that cannot be written only costs a later run a read of the container's record).
    fn keep_host_copy<T: Serialize>(&self, container: &Container, stamp: &str, baseline: &T) {
        let Ok(record) = serde_json::to_string(baseline) else {
            return;
        };
        let copy = HostCopy {
            container: container.id(),
            path: self.path.clone(),
            stamp: stamp.to_string(),
            digest: digest(&record),
            record,
        };
        let path = crate::state::baseline_copy_file(&copy.container, &self.path);
        // Written aside, then renamed: a reader never sees half a copy.
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        let written = serde_json::to_vec(&copy)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(&partial, json))
            .and_then(|()| std::fs::rename(&partial, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            tracing::debug!(container = container.name(), error = %e, "cannot keep a host copy of the baseline record");
        }
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

/// The run's cross-process lock on `container`'s baseline.
async fn lock(container: &Container) -> crate::Result<std::fs::File> {
    crate::state::lock_file(
        format!("baseline-{}.lock", crate::kit::key_hash(&container.id())),
        "fixture baseline",
    )
    .await
}

/// A host copy of a container's baseline record (see [`Baseline::load_or_revise_stamped`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct HostCopy {
    /// The container's id.
    container: String,
    /// The record's path in the container.
    path: String,
    /// The service's stamp of the state the record describes.
    stamp: String,
    /// SHA-256 of `record`.
    digest: String,
    /// The record, as JSON.
    record: String,
}

fn digest(record: &str) -> String {
    hex::encode(Sha256::digest(record.as_bytes()))
}
