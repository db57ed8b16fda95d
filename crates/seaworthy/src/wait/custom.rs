//! Checks of the caller's own, retried every 50 ms until they return `Ok(true)`: on the
//! container's address and published ports ([`Wait::custom`]), or on the container itself
//! ([`Wait::custom_container`]: exec, logs, files).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{Checking, Condition, Impossible, Wait, PROBE_INTERVAL};
use crate::container::{Container, Inner};
use crate::error::Result;
use crate::spec::Protocol;

/// A check supplied by the caller (for example a fixture's protocol-level readiness check): it is
/// called every 50 ms until it returns `Ok(true)`; `Err` fails the wait at once.
pub type CustomCheck =
    Arc<dyn Fn(CheckTarget) -> Pin<Box<dyn Future<Output = Result<bool>> + Send>> + Send + Sync>;

/// A check of the caller's own on the container itself.
type ContainerCheck =
    Arc<dyn Fn(Container) -> Pin<Box<dyn Future<Output = Result<bool>> + Send>> + Send + Sync>;

/// What a custom check may use to reach the container.
#[derive(Debug, Clone)]
pub struct CheckTarget {
    /// The container's engine name.
    pub name: String,
    /// The host at which published ports are reached.
    pub host: String,
    /// Published TCP ports: container port -> host port.
    pub ports: HashMap<u16, u16>,
}

/// The address and published TCP ports of `inner`'s container.
pub(super) fn target(inner: &Inner) -> CheckTarget {
    let ports = inner
        .ports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|((_, proto), _)| *proto == Protocol::Tcp)
        .map(|((p, _), h)| (*p, *h))
        .collect();
    CheckTarget {
        name: inner.name.clone(),
        host: inner.session.engine().host().to_string(),
        ports,
    }
}

enum Check {
    /// Given the container's address and ports.
    Target(CustomCheck),
    /// Given a handle to the container.
    Container(ContainerCheck),
}

struct Custom {
    description: String,
    check: Check,
}

impl Wait {
    /// A check of your own, retried every 50 ms until it returns `Ok(true)`; `Err` fails the wait
    /// at once. It is given the container's address and published ports ([`CheckTarget`]).
    pub fn custom<F, Fut>(description: impl Into<String>, check: F) -> Wait
    where
        F: Fn(CheckTarget) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool>> + Send + 'static,
    {
        Wait::on(Custom {
            description: description.into(),
            check: Check::Target(Arc::new(move |t| Box::pin(check(t)))),
        })
    }

    /// A check of your own on the container itself, retried every 50 ms until it returns
    /// `Ok(true)`; `Err` fails the wait at once. It is given a handle to the container, so it
    /// can exec in it, read its log or its files. The handle does not own the container:
    /// dropping it removes nothing.
    ///
    /// ```no_run
    /// use seaworthy::{ContainerDefinition, Exec, Wait};
    ///
    /// # async fn demo() -> seaworthy::Result<()> {
    /// let ready = Wait::custom_container("the app wrote its config", |c| async move {
    ///     let out = c.exec(Exec::new(["cat", "/tmp/app.conf"])).await?;
    ///     Ok(out.exit_code == 0 && out.stdout_text().contains("port="))
    /// });
    /// let app = ContainerDefinition::new("seaworthy-test/busybox")
    ///     .with_cmd(["sh", "-c", "sleep 1; echo port=80 > /tmp/app.conf; exec sleep 600"])
    ///     .with_wait(ready)
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn custom_container<F, Fut>(description: impl Into<String>, check: F) -> Wait
    where
        F: Fn(Container) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool>> + Send + 'static,
    {
        Wait::on(Custom {
            description: description.into(),
            check: Check::Container(Arc::new(move |c| Box::pin(check(c)))),
        })
    }
}

impl Condition for Custom {
    fn check<'a>(&'a self, inner: &'a Arc<Inner>) -> Checking<'a> {
        Box::pin(async move {
            loop {
                let answer = match &self.check {
                    Check::Target(check) => check(target(inner)).await,
                    Check::Container(check) => check(Container::view(inner.clone())).await,
                };
                match answer {
                    Ok(true) => return Ok(()),
                    Ok(false) => tokio::time::sleep(PROBE_INTERVAL).await,
                    Err(e) => return Err(Impossible(format!("because the check failed: {e}"))),
                }
            }
        })
    }

    fn needs_ports(&self) -> bool {
        true
    }
}

impl fmt::Display for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}
