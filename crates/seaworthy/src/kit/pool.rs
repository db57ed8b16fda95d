//! [`NamespacePool`]: namespaces made ahead of time, one checked out per test.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Step<N, E> = Arc<dyn Fn(N) -> BoxFuture<Result<N, E>> + Send + Sync>;
type Make<N, E> = Arc<dyn Fn(u64) -> BoxFuture<Result<N, E>> + Send + Sync>;

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
///   again) and stderr says which namespace it is.
///
/// The pool does not hold the fixture: [`Shared::isolated`](crate::Shared::isolated) does, so
/// the whole server is not cleaned while a lease lives.
pub struct NamespacePool<N, E = crate::Error> {
    inner: Arc<Inner<N, E>>,
}

struct Inner<N, E> {
    what: String,
    free: Mutex<VecDeque<N>>,
    released: Notify,
    reset: Step<N, E>,
    make: Option<Make<N, E>>,
    made: std::sync::atomic::AtomicU64,
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
        NamespacePool {
            inner: Arc::new(Inner {
                what: what.into(),
                free: Mutex::new(VecDeque::new()),
                released: Notify::new(),
                reset: Arc::new(move |n| Box::pin(reset(n))),
                make: None,
                made: std::sync::atomic::AtomicU64::new(0),
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
            if let Some(namespace) = self.inner.lock().pop_front() {
                return Ok(self.lease(namespace));
            }
            if let Some(make) = &self.inner.make {
                let n = self
                    .inner
                    .made
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(self.lease(make(n).await?));
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

    fn lease(&self, namespace: N) -> Lease<N, E> {
        Lease {
            namespace: Some(namespace),
            pool: self.inner.clone(),
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
}

/// A namespace checked out of a [`NamespacePool`] for one test: it dereferences to the
/// namespace, and goes back to the pool (after the pool's reset) when dropped.
pub struct Lease<N: fmt::Debug + Send + 'static, E: fmt::Display + Send + 'static = crate::Error> {
    namespace: Option<N>,
    pool: Arc<Inner<N, E>>,
}

impl<N: fmt::Debug + Send + 'static, E: fmt::Display + Send + 'static> Lease<N, E> {
    /// Resets the namespace and puts it back now, waiting for it: the reset's error is returned
    /// (the namespace is then dropped, not handed out again).
    pub async fn release(mut self) -> Result<(), E> {
        let Some(namespace) = self.namespace.take() else {
            return Ok(());
        };
        let pool = self.pool.clone();
        let reset = pool.reset.clone();
        let namespace = crate::runtime::run(reset(namespace)).await?;
        pool.give_back(namespace);
        Ok(())
    }

    /// Keeps the namespace as it is, out of the pool for good (for inspection after a failure);
    /// returns it.
    pub fn keep(mut self) -> Option<N> {
        self.namespace.take()
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
        if std::thread::panicking() && crate::identity::keep_on_failure() {
            eprintln!(
                "seaworthy: keeping the failed test's {} {namespace:?} as it was left (SEAWORTHY_KEEP_ON_FAILURE)",
                self.pool.what
            );
            return;
        }
        let pool = self.pool.clone();
        crate::runtime::spawn(async move {
            let reset = pool.reset.clone();
            match reset(namespace).await {
                Ok(namespace) => pool.give_back(namespace),
                Err(e) => {
                    tracing::warn!(what = %pool.what, error = %e, "a namespace could not be reset; it is not handed out again")
                }
            }
        });
    }
}
