//! [`RabbitMqFixture`]: a started broker, its clients, inspection helpers and `clean()`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::try_join_all;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use seaworthy::{ConnectionInfo, Container, Exec, Fixture, Isolation};
use serde_json::Value;

use crate::baseline::{AfterRestart, Plan, State, BASELINE_PATH};
use crate::definition::{InitContext, InitStep, RabbitMq, AMQP_PORT, MANAGEMENT_PORT};
use crate::error::{Error, Result};
use crate::isolation::IsolatedRabbitMq;
use crate::management::{
    BindingInfo, ExchangeInfo, Management, PolicyInfo, QueueInfo, UserInfo, VHostInfo,
};

/// A running RabbitMQ: the container, an AMQP connection, a management API client, and the
/// baseline [`clean`](Fixture::clean) returns to.
///
/// AMQP connections and HTTP requests run on Seaworthy's runtime, so one fixture serves tests
/// that each run on their own runtime (every `#[tokio::test]` does), for example from a
/// [`Shared`](seaworthy::Shared) static.
pub struct RabbitMqFixture {
    definition: RabbitMq,
    container: Container,
    amqp: Arc<AmqpLink>,
    management: Management,
    management_info: ConnectionInfo,
    baseline: Arc<State>,
    pub(crate) vhosts_made: AtomicU64,
}

impl fmt::Debug for RabbitMqFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitMqFixture")
            .field("container", &self.container.name())
            .field("amqp", &self.amqp.info)
            .field("management", &self.management_info)
            .finish()
    }
}

impl RabbitMqFixture {
    /// Connects to the broker in `container` and records (or reads) its baseline.
    pub(crate) async fn attach(
        definition: RabbitMq,
        container: Container,
    ) -> Result<RabbitMqFixture> {
        let name = container.name().to_string();
        let host = container.host().to_string();
        let amqp_info = ConnectionInfo::new("amqp", host.clone(), container.host_port(AMQP_PORT)?)
            .with_credentials(definition.user(), Some(definition.password().to_string()))
            .with_path("/");
        let management_info =
            ConnectionInfo::new("http", host, container.host_port(MANAGEMENT_PORT)?)
                .with_credentials(definition.user(), Some(definition.password().to_string()));
        let base =
            ConnectionInfo::new("http", management_info.host.clone(), management_info.port).url();
        let management = Management::new(&name, base, definition.user(), definition.password())?;
        let amqp = Arc::new(AmqpLink::new(&name, amqp_info, "/"));
        // The first connection proves that the user can log in over AMQP.
        amqp.channel().await?;
        let baseline = seaworthy::kit::Baseline::new(BASELINE_PATH)
            .load_or_record(&container, || async {
                // A cached image holds what the init steps built (and normally the baseline
                // file too): they never run twice on one database.
                if !definition.from_cache {
                    run_init(&definition, &name, &management, &amqp).await?;
                }
                State::read(&management).await
            })
            .await?;
        tracing::debug!(container = %name, vhosts = baseline.vhosts.len(), "attached to RabbitMQ");
        let fixture = RabbitMqFixture {
            definition,
            container,
            amqp,
            management,
            management_info,
            baseline: Arc::new(baseline),
            vhosts_made: AtomicU64::new(0),
        };
        if fixture.definition.from_cache {
            // What a shutdown does not keep (transient queues and exchanges) is declared
            // again: the broker is handed out at its baseline.
            fixture.restore_after_restart().await?;
        }
        Ok(fixture)
    }

    /// The definition this fixture was started from.
    pub fn definition(&self) -> &RabbitMq {
        &self.definition
    }

    /// A client of the management HTTP API, authenticated as the default user.
    pub fn management(&self) -> &Management {
        &self.management
    }

    /// How to reach the management HTTP API (`http://user:***@host:port`).
    pub fn management_info(&self) -> ConnectionInfo {
        self.management_info.clone()
    }

    /// A new AMQP connection to the default virtual host, its tasks on Seaworthy's runtime.
    pub async fn amqp_connection(&self) -> Result<lapin::Connection> {
        self.amqp.connect().await
    }

    /// A new channel on the fixture's AMQP connection to the default virtual host (connected
    /// again if [`clean`](Fixture::clean) or the broker closed it).
    pub async fn channel(&self) -> Result<lapin::Channel> {
        self.amqp.channel().await
    }

    /// The number of messages ready in `queue` of the default virtual host, exactly, asked of the
    /// queue over AMQP (the management API's counters lag by up to the statistics interval).
    pub async fn message_count(&self, queue: &str) -> Result<u32> {
        self.amqp.message_count(queue).await
    }

    /// The virtual hosts.
    pub async fn vhosts(&self) -> Result<Vec<VHostInfo>> {
        self.management.vhosts().await
    }

    /// The queues of `vhost`, with their message counts (see [`Management`] on their freshness).
    pub async fn queues(&self, vhost: &str) -> Result<Vec<QueueInfo>> {
        self.management.queues(Some(vhost)).await
    }

    /// The exchanges of `vhost`, the predeclared ones included.
    pub async fn exchanges(&self, vhost: &str) -> Result<Vec<ExchangeInfo>> {
        self.management.exchanges(Some(vhost)).await
    }

    /// The bindings of `vhost`, the implicit ones (default exchange) included.
    pub async fn bindings(&self, vhost: &str) -> Result<Vec<BindingInfo>> {
        self.management.bindings(Some(vhost)).await
    }

    /// The users.
    pub async fn users(&self) -> Result<Vec<UserInfo>> {
        self.management.users().await
    }

    /// The policies of every virtual host.
    pub async fn policies(&self) -> Result<Vec<PolicyInfo>> {
        self.management.policies(None).await
    }

    pub(crate) fn container_name(&self) -> &str {
        self.container.name()
    }

    pub(crate) fn amqp_info(&self) -> &ConnectionInfo {
        &self.amqp.info
    }

    /// Takes a broker started from a cached image (its baseline, after a clean shutdown) back to
    /// its baseline: declares again what the shutdown dropped, and only that, unless the broker
    /// differs otherwise (then it is cleaned). A clean would re-create every virtual host that
    /// has queues (their messages may have changed), which a broker that has not served any
    /// test yet does not need.
    async fn restore_after_restart(&self) -> Result<()> {
        let started = Instant::now();
        let now = State::read(&self.management).await?;
        match AfterRestart::between(&self.baseline, &now) {
            AfterRestart::AtBaseline => {}
            AfterRestart::Lacks(definitions) => {
                self.management
                    .post("/api/definitions", &definitions)
                    .await?;
            }
            AfterRestart::Differs => {
                tracing::debug!(
                    container = self.container.name(),
                    "rabbitmq started from its cached baseline differs from it; cleaning"
                );
                return self.reset().await;
            }
        }
        tracing::debug!(container = self.container.name(), elapsed = ?started.elapsed(), "rabbitmq started from its cached baseline");
        Ok(())
    }

    /// Reads the broker's state and undoes what differs from the baseline.
    async fn reset(&self) -> Result<()> {
        let started = Instant::now();
        let now = match State::read(&self.management).await {
            Err(e) if e.status() == Some(401) => {
                // A test deleted the fixture's user, or changed its password or tags: the
                // management API is shut to the fixture until the user can log in again.
                self.restore_login().await?;
                State::read(&self.management).await?
            }
            read => read?,
        };
        let plan = Plan::between(&self.baseline, &now);
        if plan.is_empty() {
            tracing::debug!(container = self.container.name(), elapsed = ?started.elapsed(), "rabbitmq already at its baseline");
            return Ok(());
        }
        let vhost = &self.amqp.vhost;
        if plan.delete_vhosts.contains(vhost)
            || plan
                .create_vhosts
                .iter()
                .any(|(path, _)| *path == vhost_path(vhost))
        {
            // The broker closes connections to a deleted vhost; connect afresh next time.
            self.amqp.forget().await;
        }
        execute(&self.management, plan).await?;
        tracing::debug!(container = self.container.name(), elapsed = ?started.elapsed(), "rabbitmq clean");
        Ok(())
    }

    /// Lets the fixture's user log in to the management API again, with `rabbitmqctl` in the
    /// container (the one way in that needs no user): creates it, or sets its password back,
    /// with the definition's password and the `administrator` tag. The plan made afterwards
    /// restores the rest exactly as the baseline has it: password hash, tags, limits,
    /// permissions.
    async fn restore_login(&self) -> Result<()> {
        let user = self.definition.user();
        tracing::debug!(
            container = self.container.name(),
            user,
            "restoring the fixture's user with rabbitmqctl"
        );
        // The user and password go through the environment, so that neither the shell nor an
        // error message (which quotes the command line) sees them.
        let script = r#"
            rabbitmqctl -q add_user -- "$SW_USER" "$SW_PASSWORD" 2>/dev/null ||
                rabbitmqctl -q change_password -- "$SW_USER" "$SW_PASSWORD" || exit
            rabbitmqctl -q set_user_tags -- "$SW_USER" administrator
        "#;
        let exec = Exec::shell(script)
            .user("rabbitmq")
            .env("HOME", "/var/lib/rabbitmq")
            .env("SW_USER", user)
            .env("SW_PASSWORD", self.definition.password())
            .timeout(std::time::Duration::from_secs(60));
        let out = self.container.exec(exec).await?;
        if !out.success() {
            return Err(Error::fixture(
                self.container.name(),
                format!(
                    "clean: the management API refuses user {user} (deleted, or its password or tags changed by a test), \
                     and restoring it with rabbitmqctl failed with exit code {}: {}",
                    out.exit_code,
                    out.stderr_text().trim()
                ),
            ));
        }
        Ok(())
    }
}

/// The management API path of virtual host `vhost`.
fn vhost_path(vhost: &str) -> String {
    format!("/api/vhosts/{}", crate::management::encode(vhost))
}

/// One management API call of a plan.
enum Call<'a> {
    Delete(&'a str),
    Put(&'a str, &'a Value),
    Post(&'a str, &'a Value),
}

async fn run_all(management: &Management, calls: Vec<Call<'_>>) -> Result<()> {
    try_join_all(calls.into_iter().map(|call| async move {
        match call {
            Call::Delete(path) => management.delete(path).await,
            Call::Put(path, body) => management.put(path, body).await,
            Call::Post(path, body) => management.post(path, body).await,
        }
    }))
    .await
    .map(drop)
}

/// Runs a plan's phases in order, each phase's calls concurrently.
async fn execute(management: &Management, plan: Plan) -> Result<()> {
    let vhost_paths: Vec<String> = plan.delete_vhosts.iter().map(|v| vhost_path(v)).collect();
    let user_paths: Vec<String> = plan
        .delete_users
        .iter()
        .map(|u| format!("/api/users/{}", crate::management::encode(u)))
        .collect();
    let mut phase1: Vec<Call> = vhost_paths.iter().map(|p| Call::Delete(p)).collect();
    phase1.extend(user_paths.iter().map(|p| Call::Delete(p)));
    phase1.extend(plan.put_users.iter().map(|(p, b)| Call::Put(p, b)));
    phase1.extend(
        plan.delete_global_parameters
            .iter()
            .map(|p| Call::Delete(p)),
    );
    phase1.extend(
        plan.put_global_parameters
            .iter()
            .map(|(p, b)| Call::Put(p, b)),
    );
    run_all(management, phase1).await?;

    run_all(
        management,
        plan.create_vhosts
            .iter()
            .map(|(p, b)| Call::Put(p, b))
            .collect(),
    )
    .await?;

    let mut phase3: Vec<Call> = plan
        .put_permissions
        .iter()
        .map(|(p, b)| Call::Put(p, b))
        .collect();
    phase3.extend(plan.delete_permissions.iter().map(|p| Call::Delete(p)));
    phase3.extend(
        plan.topic_permissions
            .iter()
            .filter_map(|t| t.delete.as_deref().map(Call::Delete)),
    );
    phase3.extend(plan.delete_user_limits.iter().map(|p| Call::Delete(p)));
    phase3.extend(plan.put_user_limits.iter().map(|(p, b)| Call::Put(p, b)));
    if let Some(import) = &plan.import {
        phase3.push(Call::Post("/api/definitions", import));
    }
    phase3.extend(
        plan.put_operator_policies
            .iter()
            .map(|(p, b)| Call::Put(p, b)),
    );
    run_all(management, phase3).await?;

    // Topic permissions go back after the old ones of the same user and vhost are gone.
    let phase4: Vec<Call> = plan
        .topic_permissions
        .iter()
        .flat_map(|t| t.puts.iter().map(|(p, b)| Call::Put(p, b)))
        .collect();
    run_all(management, phase4).await
}

/// Runs the definition's init steps in order; an error names the step.
async fn run_init(
    definition: &RabbitMq,
    container: &str,
    management: &Management,
    amqp: &AmqpLink,
) -> Result<()> {
    for (i, step) in definition.init.iter().enumerate() {
        let failed = |reason: String| {
            Error::fixture(
                container,
                format!("init step `{}` failed: {reason}", step.name(i)),
            )
        };
        let definitions = match step {
            InitStep::Definitions(json) => json.clone(),
            InitStep::DefinitionsFile(path) => std::fs::read_to_string(path)
                .map_err(|e| failed(format!("read {}: {e}", path.display())))?,
            InitStep::Closure { run, .. } => {
                let ctx = InitContext {
                    management: management.clone(),
                    channel: amqp.channel().await?,
                    amqp: amqp.info.clone(),
                };
                run(ctx).await.map_err(|e| failed(e.to_string()))?;
                continue;
            }
        };
        let body: Value = serde_json::from_str(&definitions)
            .map_err(|e| failed(format!("the definitions are not JSON: {e}")))?;
        management
            .post("/api/definitions", &body)
            .await
            .map_err(|e| failed(e.to_string()))?;
    }
    Ok(())
}

/// An AMQP connection to one virtual host, opened on first use and again when it was closed.
pub(crate) struct AmqpLink {
    container: String,
    pub(crate) info: ConnectionInfo,
    pub(crate) vhost: String,
    connection: tokio::sync::Mutex<Option<lapin::Connection>>,
}

impl AmqpLink {
    pub(crate) fn new(container: &str, info: ConnectionInfo, vhost: &str) -> AmqpLink {
        AmqpLink {
            container: container.to_string(),
            info,
            vhost: vhost.to_string(),
            connection: tokio::sync::Mutex::new(None),
        }
    }

    /// A new connection, its tasks on Seaworthy's runtime.
    pub(crate) async fn connect(&self) -> Result<lapin::Connection> {
        let url = self.info.url();
        let properties =
            lapin::ConnectionProperties::default().with_connection_name("seaworthy".into());
        seaworthy::runtime::run(async move { lapin::Connection::connect(&url, properties).await })
            .await
            .map_err(|e| {
                Error::amqp(
                    &self.container,
                    format!("connect to vhost {}", self.vhost),
                    e,
                )
            })
    }

    /// A channel on the shared connection.
    pub(crate) async fn channel(&self) -> Result<lapin::Channel> {
        let mut shared = self.connection.lock().await;
        if let Some(connection) = shared.as_ref().filter(|c| c.status().connected()) {
            match connection.create_channel().await {
                Ok(channel) => return Ok(channel),
                Err(e) => {
                    tracing::debug!(container = %self.container, error = %e, "reconnecting to RabbitMQ")
                }
            }
        }
        let connection = self.connect().await?;
        let channel = connection.create_channel().await.map_err(|e| {
            Error::amqp(
                &self.container,
                format!("open a channel in vhost {}", self.vhost),
                e,
            )
        })?;
        *shared = Some(connection);
        Ok(channel)
    }

    /// Drops the shared connection (its vhost is about to go).
    pub(crate) async fn forget(&self) {
        self.connection.lock().await.take();
    }

    /// Messages ready in `queue`, from a passive `queue.declare` on a channel of its own.
    pub(crate) async fn message_count(&self, queue: &str) -> Result<u32> {
        let channel = self.channel().await?;
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| {
                Error::amqp(
                    &self.container,
                    format!(
                        "count the messages of queue {queue} in vhost {}",
                        self.vhost
                    ),
                    e,
                )
            })?;
        let count = declared.message_count();
        if let Err(e) = channel.close(200, "done".into()).await {
            tracing::debug!(container = %self.container, error = %e, "closing a channel");
        }
        Ok(count)
    }
}

impl Fixture for RabbitMqFixture {
    type Error = crate::Error;

    fn kind(&self) -> &str {
        "rabbitmq"
    }

    fn container(&self) -> &Container {
        &self.container
    }

    /// Returns the broker to its baseline through the management API: reads its state (four
    /// concurrent requests), then, only where it differs from the baseline, deletes virtual hosts
    /// and users the test created, deletes and re-creates each baseline virtual host whose
    /// contents changed (queues and their messages, exchanges, bindings, policies, parameters and
    /// connections all go with it) and gives it back its metadata, permissions and baseline
    /// objects, restores changed or deleted users (password hash, tags, limits), permissions,
    /// topic permissions and global parameters. A broker already at its baseline costs the reads.
    ///
    /// That includes the fixture's own user and the default virtual host: when a test deleted the
    /// user, or changed its password or tags, so that the management API refuses it, the user is
    /// first let in again with `rabbitmqctl` in the container (a second or two), then restored
    /// exactly.
    ///
    /// It deletes the virtual hosts handed out by [`Isolation::isolate`] too: call it from a test
    /// that has the fixture alone ([`Shared::exclusive`](seaworthy::Shared::exclusive)). Channels
    /// opened before it on the default virtual host are closed; open new ones.
    async fn clean(&self) -> Result<()> {
        self.reset().await
    }

    /// `amqp://user:password@host:port/%2F` (the default virtual host).
    fn connection(&self) -> ConnectionInfo {
        self.amqp.info.clone()
    }
}

impl Isolation for RabbitMqFixture {
    type Isolated = IsolatedRabbitMq;

    /// A virtual host of its own for one test (see the [`isolation`](crate::isolation) module).
    async fn isolate(&self) -> Result<IsolatedRabbitMq> {
        IsolatedRabbitMq::create(self, self.vhosts_made.fetch_add(1, Ordering::Relaxed)).await
    }
}
