//! [`NamespacePool`]: namespaces made ahead of time, one checked out per test.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A release step: the namespace ready for the next test, or `None` when it is gone (discarded).
type Reset<N, E> = Arc<dyn Fn(N) -> BoxFuture<Result<Option<N>, E>> + Send + Sync>;
type Make<N, E> = Arc<dyn Fn(u64) -> BoxFuture<Result<N, E>> + Send + Sync>;
type Keep<N, E> = Arc<dyn Fn(N) -> BoxFuture<Result<(), E>> + Send + Sync>;
type Refill<E> = Arc<dyn Fn() -> BoxFuture<Result<(), E>> + Send + Sync>;
/// What a lease keeps alive until its namespace is released (a shared fixture's guard).
type Hold = Box<dyn Send + Sync>;

/// How long a checkout waits for a namespace by default.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(600);

/// Namespaces of one fixture (databases, db indexes, virtual hosts, key prefixes: whatever `N`
/// holds to reach one), checked out one per test.
///
/// * **Pre-made**: namespaces [`add`](Self::add)ed when the fixture attaches are handed out
///   first, at no cost to the test.
/// * **Checkout**: [`checkout`](Self::checkout) takes a free namespace; when none is free, it
///   makes one with the pool's [`with_make`](Self::with_make) step, or waits (up to a deadline,
///   10 minutes by default) for a lease to come back. Concurrent checkouts from any task never
///   get the same namespace.
/// * **Release**: dropping a [`Lease`] runs the pool's reset step on Seaworthy's runtime (the
///   test's runtime may be shutting down) and puts the namespace back when it succeeds (a
///   namespace whose reset failed is dropped, and logged). [`Lease::release`] does the same and
///   waits for it, returning the reset's error.
/// * **Keep-on-failure**: a lease dropped while its test panics, with
///   `SEAWORTHY_KEEP_ON_FAILURE=1`, is kept as the test left it (never reset, never handed out
///   again) and stderr says which namespace it is; a [`with_keep`](Self::with_keep) step records
///   it where the server's own sweeps see it.
/// * **Single use**: a pool made with [`single_use`](Self::single_use) never hands a namespace
///   out twice: a released one is discarded (a database dropped), and checkouts take namespaces
///   made for them, ahead of time ([`add`](Self::add), or a stock the fixture keeps in the server
///   and tops up with [`with_refill`](Self::with_refill)) or on the spot
///   ([`with_make`](Self::with_make)). For namespaces that cost more to empty than to make anew.
///
/// The pool does not hold the fixture: [`Shared::isolated`](crate::Shared::isolated) does, so
/// the whole server is not cleaned while a lease lives (a guard of the fixture's own can ride
/// with the lease: [`Lease::hold_until_released`]).
pub struct NamespacePool<N, E = crate::Error> {
    inner: Arc<Inner<N, E>>,
}

struct Inner<N, E> {
    what: String,
    free: Mutex<VecDeque<N>>,
    released: Notify,
    reset: Reset<N, E>,
    make: Option<Make<N, E>>,
    made: AtomicU64,
    keep: Option<Keep<N, E>>,
    refill: Option<Refill<E>>,
    /// A refill runs in this process now.
    refilling: AtomicBool,
    /// Set by a checkout that found a refill running: the refill must run again before it stops
    /// (what it last counted may predate that checkout).
    refill_again: AtomicBool,
    timeout: Duration,
}

impl<N, E> Clone for NamespacePool<N, E> {
    fn clone(&self) -> Self {
        NamespacePool {
            inner: self.inner.clone(),
        }
    }
}

impl<N, E> fmt::Debug for NamespacePool<N, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamespacePool")
            .field("what", &self.inner.what)
            .field("free", &self.inner.lock().len())
            .finish()
    }
}

impl<N, E> NamespacePool<N, E>
where
    N: fmt::Debug + Send + 'static,
    E: fmt::Display + From<crate::Error> + Send + 'static,
{
    /// An empty pool of `what` (`"redis database"`, for messages), whose namespaces go back
    /// through `reset` (empty it; it returns the namespace, ready for the next test).
    pub fn new<R, Fut>(what: impl Into<String>, reset: R) -> Self
    where
        R: Fn(N) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<N, E>> + Send + 'static,
    {
        Self::with_reset(
            what,
            Arc::new(move |n| {
                let reset = reset(n);
                Box::pin(async move { reset.await.map(Some) })
            }),
        )
    }

    /// An empty pool of `what` whose namespaces serve one test each: a released namespace goes
    /// through `discard` (drop it on the server) and is never handed out again. Checkouts take
    /// the namespaces [`add`](Self::add)ed, else make one with the [`with_make`](Self::with_make)
    /// step (which may take it from a stock kept in the server, see
    /// [`with_refill`](Self::with_refill)).
    ///
    /// ```no_run
    /// # async fn demo() -> seaworthy::Result<()> {
    /// use seaworthy::kit::NamespacePool;
    ///
    /// let databases = NamespacePool::single_use("database", |name: String| async move {
    ///     // DROP DATABASE name, through the service's protocol.
    ///     Ok::<(), seaworthy::Error>(())
    /// })
    /// .with_make(|n| async move {
    ///     let name = format!("test_{}_{n}", std::process::id());
    ///     // CREATE DATABASE name (or take one made ahead of time).
    ///     Ok(name)
    /// });
    /// let db = databases.checkout().await?; // dropped at the end of the test: discarded
    /// # drop(db); Ok(()) }
    /// ```
    pub fn single_use<D, Fut>(what: impl Into<String>, discard: D) -> Self
    where
        D: Fn(N) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        Self::with_reset(
            what,
            Arc::new(move |n| {
                let discard = discard(n);
                Box::pin(async move { discard.await.map(|()| None) })
            }),
        )
    }

    /// A [`single_use`](Self::single_use) pool of a fixture whose namespaces live in its server
    /// (databases, vhosts), with each step written as a function of the fixture's shared state
    /// `fixture` (an `Arc` of it: each call gets a clone): `discard` drops a released namespace,
    /// `make` takes one for a checkout ([`with_make`](Self::with_make)), `keep` records one kept
    /// for a failed test ([`with_keep`](Self::with_keep)), and `refill`, when the fixture keeps a
    /// stock made ahead of time, tops it up ([`with_refill`](Self::with_refill)).
    ///
    /// ```no_run
    /// # async fn demo() -> seaworthy::Result<()> {
    /// use std::sync::Arc;
    /// use seaworthy::kit::NamespacePool;
    ///
    /// struct Server { pool_size: usize }
    /// let server = Arc::new(Server { pool_size: 4 });
    /// let refill = (server.pool_size > 0).then_some(|_server: Arc<Server>| async move {
    ///     // Clone databases until the server holds `pool_size` spare ones.
    ///     Ok::<(), seaworthy::Error>(())
    /// });
    /// let databases = NamespacePool::for_server(
    ///     "database",
    ///     server,
    ///     |_server, name: String| async move { /* DROP DATABASE name */ Ok(()) },
    ///     |_server, n| async move { Ok(format!("test_{n}")) /* take a spare one, or clone */ },
    ///     |_server, name: String| async move { eprintln!("kept {name}"); Ok(()) },
    ///     refill,
    /// );
    /// let db = databases.checkout().await?;
    /// # drop(db); Ok(()) }
    /// ```
    pub fn for_server<C, D, DFut, M, MFut, K, KFut, R, RFut>(
        what: impl Into<String>,
        fixture: C,
        discard: D,
        make: M,
        keep: K,
        refill: Option<R>,
    ) -> Self
    where
        C: Clone + Send + Sync + 'static,
        D: Fn(C, N) -> DFut + Send + Sync + 'static,
        DFut: Future<Output = Result<(), E>> + Send + 'static,
        M: Fn(C, u64) -> MFut + Send + Sync + 'static,
        MFut: Future<Output = Result<N, E>> + Send + 'static,
        K: Fn(C, N) -> KFut + Send + Sync + 'static,
        KFut: Future<Output = Result<(), E>> + Send + 'static,
        R: Fn(C) -> RFut + Send + Sync + 'static,
        RFut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let (for_discard, for_make, for_keep) = (fixture.clone(), fixture.clone(), fixture.clone());
        let pool = Self::single_use(what, move |n| discard(for_discard.clone(), n))
            .with_make(move |i| make(for_make.clone(), i))
            .with_keep(move |n| keep(for_keep.clone(), n));
        match refill {
            Some(refill) => pool.with_refill(move || refill(fixture.clone())),
            None => pool,
        }
    }

    fn with_reset(what: impl Into<String>, reset: Reset<N, E>) -> Self {
        NamespacePool {
            inner: Arc::new(Inner {
                what: what.into(),
                free: Mutex::new(VecDeque::new()),
                released: Notify::new(),
                reset,
                make: None,
                made: AtomicU64::new(0),
                keep: None,
                refill: None,
                refilling: AtomicBool::new(false),
                refill_again: AtomicBool::new(false),
                timeout: CHECKOUT_TIMEOUT,
            }),
        }
    }

    /// Makes a new namespace when none is free, instead of waiting for one: `make` gets a number
    /// no other call of this pool got (for a name of its own). Call it before the pool is
    /// shared.
    pub fn with_make<M, Fut>(mut self, make: M) -> Self
    where
        M: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<N, E>> + Send + 'static,
    {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.make = Some(Arc::new(move |n| Box::pin(make(n))));
        }
        self
    }

    /// Runs `keep` (on Seaworthy's runtime) on a namespace kept for a failed test
    /// (`SEAWORTHY_KEEP_ON_FAILURE=1`), after stderr named it: record it where the fixture's own
    /// sweeps of abandoned namespaces leave it alone. Its error is logged. Call it before the
    /// pool is shared.
    pub fn with_keep<K, Fut>(mut self, keep: K) -> Self
    where
        K: Fn(N) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.keep = Some(Arc::new(move |n| Box::pin(keep(n))));
        }
        self
    }

    /// Tops up a stock of namespaces made ahead of time that the pool itself does not hold (one
    /// kept in the server, shared by every process of the run, which the
    /// [`with_make`](Self::with_make) step takes from): `refill` runs in the background on
    /// Seaworthy's runtime after each checkout, one run at a time per pool (a checkout during a
    /// run makes it run once more when it ends, since what it counted may predate that
    /// checkout). Its error is logged; the next checkout runs it again. Across processes, the
    /// step takes a lock of the server's itself. Call it before the pool is shared.
    pub fn with_refill<R, Fut>(mut self, refill: R) -> Self
    where
        R: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.refill = Some(Arc::new(move || Box::pin(refill())));
        }
        self
    }

    /// How long a checkout waits for a namespace when none is free and none can be made.
    pub fn with_checkout_timeout(mut self, timeout: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.timeout = timeout;
        }
        self
    }

    /// Adds a namespace, ready for a test (made ahead of time).
    pub fn add(&self, namespace: N) {
        self.inner.give_back(namespace);
    }

    /// How many namespaces are free now.
    pub fn free_count(&self) -> usize {
        self.inner.lock().len()
    }

    /// A namespace for one test: a free one, else a new one (with a make step), else the first
    /// one given back, waiting at most the checkout timeout.
    pub async fn checkout(&self) -> Result<Lease<N, E>, E> {
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        loop {
            let released = self.inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let free = self.inner.lock().pop_front();
            if let Some(namespace) = free {
                self.inner.request_refill();
                return Ok(self.lease(namespace));
            }
            if let Some(make) = &self.inner.make {
                let n = self.inner.made.fetch_add(1, Ordering::Relaxed);
                let namespace = make(n).await?;
                self.inner.request_refill();
                return Ok(self.lease(namespace));
            }
            tracing::debug!(what = %self.inner.what, "every namespace is taken; waiting for one");
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return Err(crate::Error::Timeout {
                    action: format!(
                        "wait for a free {} (every one is checked out by a test)",
                        self.inner.what
                    ),
                    timeout: self.inner.timeout,
                }
                .into());
            }
        }
    }

    /// The first free namespace `wanted` accepts (the one a test's slot names, say), without
    /// waiting or making one: `None` when none is free now.
    pub fn take_free(&self, mut wanted: impl FnMut(&N) -> bool) -> Option<Lease<N, E>> {
        let taken = {
            let mut free = self.inner.lock();
            let at = free.iter().position(&mut wanted)?;
            free.remove(at)
        };
        let namespace = taken?;
        self.inner.request_refill();
        Some(self.lease(namespace))
    }

    fn lease(&self, namespace: N) -> Lease<N, E> {
        Lease {
            namespace: Some(namespace),
            pool: self.inner.clone(),
            hold: None,
        }
    }
}

impl<N, E> Inner<N, E> {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<N>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn give_back(&self, namespace: N) {
        self.lock().push_back(namespace);
        self.released.notify_waiters();
    }

    /// Resets a released namespace and gives it back (or lets it go, for a single-use pool).
    async fn put_back(&self, namespace: N) -> Result<(), E> {
        if let Some(namespace) = (self.reset)(namespace).await? {
            self.give_back(namespace);
        }
        Ok(())
    }
}

impl<N: Send + 'static, E: fmt::Display + Send + 'static> Inner<N, E> {
    /// Starts the refill step in the background unless it runs already (then it runs again).
    fn request_refill(self: &Arc<Self>) {
        let Some(refill) = self.refill.clone() else {
            return;
        };
        self.refill_again.store(true, Ordering::Release);
        if self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.clone();
        crate::runtime::spawn(async move {
            loop {
                inner.refill_again.store(false, Ordering::Release);
                if let Err(e) = refill().await {
                    tracing::warn!(what = %inner.what, error = %e, "making namespaces ahead of time failed");
                }
                inner.refilling.store(false, Ordering::Release);
                // A checkout that came while the refill ran left the refill to it: run again,
                // unless another refill took over since.
                if !inner.refill_again.load(Ordering::Acquire)
                    || inner.refilling.swap(true, Ordering::AcqRel)
                {
                    break;
                }
            }
        });
    }
}

/// A namespace checked out of a [`NamespacePool`] for one test: it dereferences to the
/// namespace, and goes back to the pool (after the pool's reset) when dropped.
pub struct Lease<N: fmt::Debug + Send + 'static, E: fmt::Display + Send + 'static = crate::Error> {
    namespace: Option<N>,
    pool: Arc<Inner<N, E>>,
    hold: Option<Hold>,
}

impl<N: fmt::Debug + Send + 'static, E: fmt::Display + Send + 'static> Lease<N, E> {
    /// Resets the namespace and puts it back now, waiting for it: the reset's error is returned
    /// (the namespace is then dropped, not handed out again).
    pub async fn release(mut self) -> Result<(), E> {
        let Some(namespace) = self.namespace.take() else {
            return Ok(());
        };
        let pool = self.pool.clone();
        let hold = self.hold.take();
        let released = crate::runtime::run(async move { pool.put_back(namespace).await }).await;
        drop(hold);
        released
    }

    /// Keeps the namespace as it is, out of the pool for good (for inspection after a failure);
    /// returns it. The pool's [`with_keep`](NamespacePool::with_keep) step is not run.
    pub fn keep(mut self) -> Option<N> {
        self.namespace.take()
    }

    /// Keeps `hold` (a shared fixture's guard, so nothing cleans the whole server meanwhile)
    /// alive until the namespace is back in the pool: its reset, which runs in the background
    /// after the lease drops, finished (or the namespace was kept).
    pub fn hold_until_released(&mut self, hold: impl Send + Sync + 'static) {
        self.hold = Some(Box::new(hold));
    }
}

impl<N: fmt::Debug + Send + 'static, E: fmt::Display + Send + 'static> Deref for Lease<N, E> {
    type Target = N;
    fn deref(&self) -> &N {
        self.namespace
            .as_ref()
            .expect("a lease holds its namespace until it is dropped")
    }
}

impl<N: fmt::Debug + Send + 'static, E: fmt::Display + Send + 'static> DerefMut for Lease<N, E> {
    fn deref_mut(&mut self) -> &mut N {
        self.namespace
            .as_mut()
            .expect("a lease holds its namespace until it is dropped")
    }
}

impl<N: fmt::Debug + Send + 'static, E: fmt::Display + Send + 'static> fmt::Debug for Lease<N, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("what", &self.pool.what)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl<N: fmt::Debug + Send + 'static, E: fmt::Display + Send + 'static> Drop for Lease<N, E> {
    fn drop(&mut self) {
        let Some(namespace) = self.namespace.take() else {
            return;
        };
        let hold = self.hold.take();
        let pool = self.pool.clone();
        if std::thread::panicking() && crate::identity::keep_on_failure() {
            eprintln!(
                "seaworthy: keeping the failed test's {} {namespace:?} as it was left (SEAWORTHY_KEEP_ON_FAILURE)",
                pool.what
            );
            if let Some(keep) = pool.keep.clone() {
                crate::runtime::spawn(async move {
                    if let Err(e) = keep(namespace).await {
                        tracing::warn!(what = %pool.what, error = %e, "recording a kept namespace failed");
                    }
                    drop(hold);
                });
            }
            return;
        }
        crate::runtime::spawn(async move {
            if let Err(e) = pool.put_back(namespace).await {
                tracing::warn!(what = %pool.what, error = %e, "a namespace could not be reset; it is not handed out again");
            }
            drop(hold);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Waits (up to 5 s) until `done` holds: releases run in the background.
    async fn eventually(done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_single_use_pool_discards_released_namespaces_and_refills_after_checkouts() {
        let discarded = Arc::new(Mutex::new(Vec::new()));
        let refills = Arc::new(AtomicUsize::new(0));
        let (d, r) = (discarded.clone(), refills.clone());
        let pool = NamespacePool::single_use("database", move |name: String| {
            let d = d.clone();
            async move {
                d.lock().unwrap().push(name);
                Ok::<(), crate::Error>(())
            }
        })
        .with_make(|n| async move { Ok(format!("db{n}")) })
        .with_refill(move || {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        let (a, b) = (
            pool.checkout().await.unwrap(),
            pool.checkout().await.unwrap(),
        );
        assert_eq!((a.as_str(), b.as_str()), ("db0", "db1"));
        a.release().await.unwrap();
        assert_eq!(*discarded.lock().unwrap(), ["db0"]);
        let held = Arc::new(());
        let mut b = b;
        b.hold_until_released(held.clone());
        drop(b);
        eventually(|| discarded.lock().unwrap().len() == 2).await;
        // The hold goes only once the release finished.
        eventually(|| Arc::strong_count(&held) == 1).await;
        assert_eq!(pool.free_count(), 0, "nothing single-use goes back");
        assert_eq!(pool.checkout().await.unwrap().as_str(), "db2");
        eventually(|| refills.load(Ordering::SeqCst) >= 1).await;
    }

    #[tokio::test]
    async fn a_server_pool_runs_each_step_on_the_fixture_and_refills_only_with_a_stock() {
        #[derive(Default)]
        struct Server {
            steps: Mutex<Vec<String>>,
        }
        impl Server {
            fn log(&self, step: String) {
                self.steps.lock().unwrap().push(step);
            }
        }
        for stock in [false, true] {
            let server = Arc::new(Server::default());
            let refill = stock.then_some(|server: Arc<Server>| async move {
                server.log("refill".into());
                Ok::<(), crate::Error>(())
            });
            let pool = NamespacePool::for_server(
                "database",
                server.clone(),
                |server: Arc<Server>, name: String| async move {
                    server.log(format!("discard {name}"));
                    Ok(())
                },
                |server, n| async move {
                    server.log(format!("make {n}"));
                    Ok(format!("db{n}"))
                },
                |server, name: String| async move {
                    server.log(format!("keep {name}"));
                    Ok(())
                },
                refill,
            );
            pool.checkout().await.unwrap().release().await.unwrap();
            if stock {
                eventually(|| server.steps.lock().unwrap().len() == 3).await;
            }
            let mut steps = server.steps.lock().unwrap().clone();
            steps.sort();
            let mut expected = vec!["discard db0", "make 0"];
            if stock {
                expected.push("refill");
            }
            assert_eq!(steps, expected);
        }
    }

    #[tokio::test]
    async fn a_reset_namespace_goes_back_and_a_waiting_checkout_gets_it() {
        let pool = NamespacePool::new(
            "slot",
            |slot: u32| async move { Ok::<u32, crate::Error>(slot) },
        )
        .with_checkout_timeout(Duration::from_millis(200));
        pool.add(7);
        let lease = pool.checkout().await.unwrap();
        assert!(matches!(
            pool.checkout().await,
            Err(crate::Error::Timeout { .. })
        ));
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { *pool.checkout().await.unwrap() }
        });
        drop(lease);
        assert_eq!(waiting.await.unwrap(), 7);
    }
}
