//! Per-test isolation: a virtual host per test.
//!
//! [`isolate`](seaworthy::Isolation::isolate) creates a virtual host through the management API
//! and gives the fixture's user every permission in it (two calls, a few tens of milliseconds);
//! the guard's AMQP connection, channels and listings are bound to it. Queues, exchanges,
//! bindings and policies of one vhost are invisible to the others, so tests may use the same
//! names. Dropping the guard deletes the vhost with everything in it.
//!
//! Names: `seaworthy-slot<N>` under cargo-nextest (`NEXTEST_TEST_GLOBAL_SLOT`, unique among the
//! tests running at once; a vhost of that name left by a test that could not clean up is deleted
//! first), `seaworthy-<pid>-<n>` otherwise. [`clean`](seaworthy::Fixture::clean) deletes any that
//! are left. With `SEAWORTHY_KEEP_ON_FAILURE=1`, a guard dropped by a failing (panicking) test
//! keeps its vhost as the test left it, and says where it is.
//!
//! # What is isolated, and what is not
//!
//! A vhost isolates what lives in it: queues and their messages, exchanges, bindings, policies,
//! operator policies, vhost limits and per-vhost parameters (shovels, federation upstreams), and
//! the connections and channels opened to it.
//!
//! Everything else is **broker-wide**, shared by every vhost of the container at once:
//!
//! * Users, their passwords, tags and limits: the guard's connections log in as the fixture's
//!   own user, so a test that deletes it or changes its password locks every test out, and a
//!   user a test creates is seen by all.
//! * Global parameters (`cluster_name`...), feature flags, the broker's configuration and
//!   alarms (memory, disk), and anything done with `rabbitmqctl`.
//! * The management API the guard hands out ([`IsolatedRabbitMq::management`]) is the broker's
//!   whole API, authenticated as an administrator: it can reach other vhosts.
//!
//! Dropping a guard only deletes its vhost. A test that changes broker-wide state should not
//! isolate: it takes the fixture alone with [`Shared::fresh`](seaworthy::Shared::fresh) (a
//! `&RabbitMqFixture` parameter of `#[seaworthy::test]`), and the next hand-out's
//! [`clean`](seaworthy::Fixture::clean) resets the rest: users (the fixture's own included),
//! permissions, global parameters and every vhost. Take vhosts with
//! [`Shared::isolated`](seaworthy::Shared::isolated): its guard keeps the broker held, so no
//! such test cleans under an isolated one.

use std::fmt;

use seaworthy::ConnectionInfo;
use serde_json::json;

use crate::error::Result;
use crate::fixture::{AmqpLink, RabbitMqFixture};
use crate::management::{
    encode, BindingInfo, ExchangeInfo, Management, Permission, PolicyInfo, QueueInfo,
};

/// A private virtual host in a shared broker for one test, deleted when the guard drops.
///
/// ```no_run
/// use seaworthy::Shared;
/// use seaworthy_rabbitmq::RabbitMq;
///
/// static RABBIT: Shared<RabbitMq> = Shared::per_process(RabbitMq::new);
///
/// #[tokio::test]
/// async fn declares_its_queue() -> anyhow::Result<()> {
///     // The guard keeps the broker held: no test resets the whole broker while it lives.
///     let rabbit = RABBIT.isolated().await?;
///     let channel = rabbit.channel().await?;
///     channel.queue_declare("jobs".into(), Default::default(), Default::default()).await?;
///     assert_eq!(rabbit.queues().await?.len(), 1);
///     Ok(())
/// }
/// ```
pub struct IsolatedRabbitMq {
    container: String,
    vhost: String,
    management: Management,
    amqp: AmqpLink,
}

impl fmt::Debug for IsolatedRabbitMq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IsolatedRabbitMq")
            .field("container", &self.container)
            .field("vhost", &self.vhost)
            .field("connection", &self.amqp.info)
            .finish()
    }
}

impl IsolatedRabbitMq {
    /// Creates the `n`th vhost this process asks of `fixture`.
    pub(crate) async fn create(fixture: &RabbitMqFixture, n: u64) -> Result<IsolatedRabbitMq> {
        let management = fixture.management().clone();
        let vhost = match nextest_slot() {
            Some(slot) => {
                let name = if n == 0 {
                    format!("seaworthy-slot{slot}")
                } else {
                    format!("seaworthy-slot{slot}-{n}")
                };
                // Left by a test of this slot that could not clean up.
                management.delete_vhost(&name).await?;
                name
            }
            None => format!("seaworthy-{}-{n}", std::process::id()),
        };
        let body = json!({ "description": "a test's own virtual host (seaworthy isolation)" });
        let path = format!("/api/vhosts/{}", encode(&vhost));
        management.put(&path, &body).await?;
        // The broker may answer the PUT before the vhost's processes run (more so on a busy
        // machine); a connection before then is refused. Its state says when it runs (30 s at
        // most; a broker that does not report it is taken at its word).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let info: serde_json::Value = management.get(&path).await?;
            let running = match info.get("cluster_state").and_then(|s| s.as_object()) {
                Some(nodes) => nodes.values().all(|state| state == "running"),
                None => true,
            };
            if running || std::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let guard = IsolatedRabbitMq {
            container: fixture.container_name().to_string(),
            amqp: AmqpLink::new(
                fixture.container_name(),
                fixture.amqp_info().clone().with_path(vhost.clone()),
                &vhost,
            ),
            vhost,
            management,
        };
        // The guard exists from here on: a failure below deletes the vhost again.
        guard
            .management
            .set_permissions(&Permission::full(guard.management.user(), &guard.vhost))
            .await?;
        Ok(guard)
    }

    /// The virtual host's name.
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// How to connect to this test's virtual host (`amqp://user:***@host:port/VHOST`).
    pub fn connection_info(&self) -> ConnectionInfo {
        self.amqp.info.clone()
    }

    /// A new AMQP connection to this test's virtual host, its tasks on Seaworthy's runtime.
    pub async fn amqp_connection(&self) -> Result<lapin::Connection> {
        self.amqp.connect().await
    }

    /// A new channel on the guard's AMQP connection to its virtual host.
    pub async fn channel(&self) -> Result<lapin::Channel> {
        self.amqp.channel().await
    }

    /// The number of messages ready in `queue`, exactly (asked of the queue over AMQP).
    pub async fn message_count(&self, queue: &str) -> Result<u32> {
        self.amqp.message_count(queue).await
    }

    /// The management API client (authenticated as the fixture's user).
    pub fn management(&self) -> &Management {
        &self.management
    }

    /// The queues of this virtual host, with their message counts.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>> {
        self.management.queues(Some(&self.vhost)).await
    }

    /// The exchanges of this virtual host, the predeclared ones included.
    pub async fn exchanges(&self) -> Result<Vec<ExchangeInfo>> {
        self.management.exchanges(Some(&self.vhost)).await
    }

    /// The bindings of this virtual host, the implicit ones included.
    pub async fn bindings(&self) -> Result<Vec<BindingInfo>> {
        self.management.bindings(Some(&self.vhost)).await
    }

    /// The policies of this virtual host.
    pub async fn policies(&self) -> Result<Vec<PolicyInfo>> {
        self.management.policies(Some(&self.vhost)).await
    }
}

impl Drop for IsolatedRabbitMq {
    fn drop(&mut self) {
        if std::thread::panicking() && seaworthy::session::keep_on_failure() {
            // Not deleted: the vhost stays as the failed test left it (the next clean of the
            // whole broker deletes it).
            eprintln!(
                "seaworthy: the test failed; keeping RabbitMQ vhost {} for debugging (SEAWORTHY_KEEP_ON_FAILURE): {}",
                self.vhost,
                self.connection_info()
            );
            return;
        }
        let management = self.management.clone();
        let vhost = std::mem::take(&mut self.vhost);
        // On Seaworthy's runtime: the test's runtime may be shutting down.
        seaworthy::runtime::spawn(async move {
            if let Err(e) = management.delete_vhost(&vhost).await {
                tracing::warn!(vhost, error = %e, "could not delete an isolated RabbitMQ vhost");
            }
        });
    }
}

/// `NEXTEST_TEST_GLOBAL_SLOT`, when running under cargo-nextest.
fn nextest_slot() -> Option<u64> {
    std::env::var("NEXTEST_TEST_GLOBAL_SLOT").ok()?.parse().ok()
}
