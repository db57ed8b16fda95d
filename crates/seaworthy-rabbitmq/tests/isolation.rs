//! Isolation against a real RabbitMQ: parallel tests, each in a vhost of its own, in one broker.

use seaworthy_testkit as common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use seaworthy::{ConnectionInfo, Isolation, Shared};
use seaworthy_rabbitmq::lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use seaworthy_rabbitmq::lapin::types::FieldTable;
use seaworthy_rabbitmq::lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use seaworthy_rabbitmq::management::encode;
use seaworthy_rabbitmq::RabbitMq;

/// Shared by every test process of the run: under nextest (a process per test) the tests below
/// use one broker, each in the vhost of its slot.
static RABBIT: Shared<RabbitMq> = Shared::per_run(RabbitMq::new);

/// What one test does: declare the same queue, exchange and binding as every other test, publish
/// `id + 1` messages carrying its id, then check that it sees exactly its own.
async fn use_a_vhost(
    id: usize,
    barrier: Option<Arc<tokio::sync::Barrier>>,
) -> anyhow::Result<String> {
    let shared = RABBIT.get().await?;
    let rabbit = shared.isolate().await?;
    assert!(
        rabbit.queues().await?.is_empty(),
        "test {id} starts with an empty vhost"
    );
    assert!(rabbit
        .connection_info()
        .to_string()
        .ends_with(&format!("/{}", rabbit.vhost())));
    let channel = jobs_channel(&rabbit).await?;
    channel
        .exchange_declare(
            "events".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            "jobs".into(),
            "events".into(),
            "job".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    publish_confirmed(&channel, "events", "job", &id.to_string(), id as u32 + 1).await?;
    match barrier {
        // Every test has published before any counts; a test that failed before it got here
        // makes the others give up after a minute instead of waiting for ever.
        Some(barrier) => tokio::time::timeout(Duration::from_secs(60), barrier.wait())
            .await
            .map(drop)
            .map_err(|_| {
                anyhow::anyhow!("test {id}: the other tests did not all publish within 60 s")
            })?,
        None => tokio::time::sleep(Duration::from_millis(100)).await,
    }
    assert_eq!(
        rabbit.message_count("jobs").await?,
        id as u32 + 1,
        "test {id} counts its own messages"
    );
    let message = channel
        .basic_get("jobs".into(), BasicGetOptions { no_ack: true })
        .await?
        .expect("a message");
    assert_eq!(
        String::from_utf8_lossy(&message.delivery.data),
        id.to_string()
    );
    let queues: Vec<String> = rabbit.queues().await?.into_iter().map(|q| q.name).collect();
    assert_eq!(queues, ["jobs"]);
    let bindings: Vec<String> = rabbit
        .bindings()
        .await?
        .into_iter()
        .filter(|b| !b.is_implicit())
        .map(|b| format!("{}->{}:{}", b.source, b.destination, b.routing_key))
        .collect();
    assert_eq!(bindings, ["events->jobs:job"]);
    Ok(rabbit.vhost().to_string())
}

/// A channel in publisher-confirm mode on `rabbit`'s vhost, with the queue `jobs` declared.
async fn jobs_channel(
    rabbit: &seaworthy_rabbitmq::IsolatedRabbitMq,
) -> anyhow::Result<seaworthy_rabbitmq::lapin::Channel> {
    let channel = rabbit.channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .queue_declare(
            "jobs".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(channel)
}

/// Publishes `count` messages carrying `body` to `exchange` with `routing_key`, each confirmed.
async fn publish_confirmed(
    channel: &seaworthy_rabbitmq::lapin::Channel,
    exchange: &str,
    routing_key: &str,
    body: &str,
    count: u32,
) -> anyhow::Result<()> {
    for _ in 0..count {
        let confirm = channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await?
            .await?;
        anyhow::ensure!(confirm.is_ack(), "a publish of {body:?} was not confirmed");
    }
    Ok(())
}

macro_rules! isolated_tests {
    ($($name:ident = $id:expr),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() -> anyhow::Result<()> {
            use_a_vhost($id, None).await.map(drop)
        }
    )*};
}

isolated_tests!(
    isolated_test_1 = 1,
    isolated_test_2 = 2,
    isolated_test_3 = 3,
    isolated_test_4 = 4,
    isolated_test_5 = 5,
    isolated_test_6 = 6,
    isolated_test_7 = 7,
    isolated_test_8 = 8,
);

/// Eight tests at once, each on its own thread and runtime (as `#[tokio::test]`s are), all
/// holding their vhost at the same time; the vhosts are gone afterwards.
#[test]
fn eight_concurrent_tests_share_one_broker_without_interfering() {
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut vhosts: Vec<String> =
        common::run_on_threads(10..18, move |id| use_a_vhost(id, Some(barrier.clone())));
    vhosts.sort();
    vhosts.dedup();
    assert_eq!(vhosts.len(), 8, "eight different vhosts: {vhosts:?}");

    // Dropped guards delete their vhosts.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let rabbit = RABBIT.get().await.expect("fixture");
        for _ in 0..100 {
            let left: Vec<String> = rabbit
                .vhosts()
                .await
                .expect("vhosts")
                .into_iter()
                .map(|v| v.name)
                .filter(|v| vhosts.contains(v))
                .collect();
            if left.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the isolated vhosts were not deleted");
    });
}

// How the run's processes key their vhosts under nextest. Each test below re-runs this binary as
// child processes with `NEXTEST_TEST_GLOBAL_SLOT` set (setting it in this multithreaded process
// would be unsound); the children of a test form a run of their own, sharing one broker through
// `RABBIT`, which the test looks into from outside.

/// How long a child may take for each step (the first one starts the run's broker).
const CHILD_DEADLINE: Duration = Duration::from_secs(180);

/// The child test of [`nextest_slots_key_the_vhosts`], run as cargo-nextest runs a test: takes
/// the vhost of its slot, checks that it starts empty, declares `jobs` and publishes as many
/// messages as its parameter says, shows the parent its vhost and the broker
/// (`ID=VHOST AMQP-HOST AMQP-PORT MANAGEMENT-URL`), and once told to go on checks that it counts
/// its own messages alone; then waits for the vhost to be deleted with its guard.
#[tokio::test]
#[ignore = "a child process of nextest_slots_key_the_vhosts"]
async fn a_test_process_in_a_nextest_slot() -> anyhow::Result<()> {
    let Some(count) = common::param() else {
        return Ok(());
    };
    let count: u32 = count.parse()?;
    let shared = RABBIT.get().await?;
    let rabbit = shared.isolate().await?;
    let vhost = rabbit.vhost().to_string();
    let queues = rabbit.queues().await?;
    anyhow::ensure!(
        queues.is_empty(),
        "{vhost} starts with the queues {queues:?}"
    );
    let channel = jobs_channel(&rabbit).await?;
    publish_confirmed(&channel, "", "jobs", &vhost, count).await?;
    let amqp = rabbit.connection_info();
    common::report(&[
        &vhost,
        &amqp.host,
        &amqp.port.to_string(),
        rabbit.management().base_url(),
    ]);
    common::wait_for_parent(CHILD_DEADLINE).await?;
    let counted = rabbit.message_count("jobs").await?;
    anyhow::ensure!(
        counted == count,
        "{vhost} counts {counted} messages, not {count}"
    );
    drop(channel);
    drop(rabbit);
    // Deleted in the background: wait for it before the process ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.vhosts().await?.iter().any(|v| v.name == vhost) {
        anyhow::ensure!(Instant::now() < deadline, "{vhost} was not deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The children's broker, seen from this process as `RabbitMq::new()`'s user.
struct Broker {
    amqp: ConnectionInfo,
    management: String,
}

impl Broker {
    /// The broker of the child that printed `ids`.
    fn of(ids: &[String]) -> anyhow::Result<Broker> {
        let definition = RabbitMq::new();
        Ok(Broker {
            amqp: ConnectionInfo::new("amqp", ids[1].clone(), ids[2].parse()?)
                .with_credentials(definition.user(), Some(definition.password().to_string())),
            management: ids[3].clone(),
        })
    }

    /// The messages ready in queue `jobs` of `vhost`, asked of the queue over AMQP.
    async fn jobs_in(&self, vhost: &str) -> anyhow::Result<u32> {
        let url = self.amqp.clone().with_path(vhost).url();
        let connection = Connection::connect(&url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let declared = channel
            .queue_declare(
                "jobs".into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel.close(200, "done".into()).await?;
        connection.close(200, "done".into()).await?;
        Ok(declared.message_count())
    }

    /// The names listed by the management API at `path` (`/api/vhosts`, `/api/queues/VHOST`).
    async fn names(&self, path: &str) -> anyhow::Result<Vec<String>> {
        let definition = RabbitMq::new();
        let listed: Vec<serde_json::Value> = seaworthy::reqwest::Client::new()
            .get(format!("{}{path}", self.management))
            .basic_auth(definition.user(), Some(definition.password()))
            .timeout(Duration::from_secs(10))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut names: Vec<String> = listed
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }
}

const CHILD: &str = "a_test_process_in_a_nextest_slot";

/// Under cargo-nextest, a test's vhost is named for its slot (`seaworthy-slot<N>`), and two
/// slots never see each other's queues or messages.
#[tokio::test]
async fn nextest_slots_key_the_vhosts() -> anyhow::Result<()> {
    let run = common::ChildRun::new();
    let slots = [0, 1];
    let counts = [3, 5];
    let mut children: Vec<_> = slots
        .iter()
        .zip(counts)
        .map(|(slot, count)| {
            run.spawn(
                &format!("slot {slot}"),
                CHILD,
                &count.to_string(),
                &[("NEXTEST_TEST_GLOBAL_SLOT", slot.to_string())],
            )
        })
        .collect();
    let mut reported = Vec::new();
    for child in &mut children {
        reported.push(child.read_ids(CHILD_DEADLINE).await);
    }
    let broker = Broker::of(&reported[0])?;
    let vhosts: Vec<&str> = reported.iter().map(|ids| ids[0].as_str()).collect();
    assert_eq!(vhosts, ["seaworthy-slot0", "seaworthy-slot1"]);
    // Seen from outside while both hold their vhosts: the same queue name, each with its own
    // messages.
    for (vhost, count) in vhosts.iter().zip(counts) {
        let queues = broker
            .names(&format!("/api/queues/{}", encode(vhost)))
            .await?;
        assert_eq!(queues, ["jobs"], "{vhost}");
        assert_eq!(broker.jobs_in(vhost).await?, count, "{vhost}");
    }
    for child in &mut children {
        child.proceed().await;
    }
    for child in children {
        child.expect_success(CHILD_DEADLINE).await;
    }
    assert_eq!(broker.names("/api/vhosts").await?, ["/"], "deleted");
    run.remove().await
}

/// Under cargo-nextest, a test process killed before its vhost was deleted leaves it behind; the
/// next test of the same slot gets the vhost of that name afresh, empty.
#[tokio::test]
async fn a_vhost_left_by_a_dead_test_is_emptied_for_the_next_test_of_its_slot() -> anyhow::Result<()>
{
    let run = common::ChildRun::new();
    let slot = [("NEXTEST_TEST_GLOBAL_SLOT", "3".to_string())];
    let mut dead = run.spawn("the test that dies", CHILD, "4", &slot);
    let reported = dead.read_ids(CHILD_DEADLINE).await;
    assert_eq!(reported[0], "seaworthy-slot3");
    let broker = Broker::of(&reported)?;
    dead.kill().await;
    assert_eq!(
        broker.jobs_in("seaworthy-slot3").await?,
        4,
        "a killed test cannot delete its vhost"
    );
    // The next test checks that it starts with no queue, then publishes 2 messages.
    let mut next = run.spawn("the next test", CHILD, "2", &slot);
    assert_eq!(next.read_ids(CHILD_DEADLINE).await[0], "seaworthy-slot3");
    assert_eq!(broker.jobs_in("seaworthy-slot3").await?, 2, "not 4 + 2");
    next.proceed().await;
    next.expect_success(CHILD_DEADLINE).await;
    assert_eq!(broker.names("/api/vhosts").await?, ["/"], "deleted");
    run.remove().await
}

/// A guard dropped by a failing test (while its thread panics): with `keep` (the child below
/// runs with `SEAWORTHY_KEEP_ON_FAILURE=1`), its vhost stays with what the test declared in it;
/// without, it is deleted.
async fn a_failed_tests_vhost(keep: bool) -> anyhow::Result<()> {
    let shared = RABBIT.get().await?;
    let rabbit = shared.isolate().await?;
    let vhost = rabbit.vhost().to_string();
    rabbit
        .channel()
        .await?
        .queue_declare(
            "left".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    common::drop_in_a_failing_test(rabbit);
    let exists = || async { anyhow::Ok(shared.vhosts().await?.iter().any(|v| v.name == vhost)) };
    let kept = async {
        anyhow::ensure!(exists().await?, "vhost {vhost} was kept");
        let queues: Vec<String> = shared
            .queues(&vhost)
            .await?
            .into_iter()
            .map(|q| q.name)
            .collect();
        anyhow::ensure!(queues == ["left"], "{queues:?}");
        Ok(())
    };
    let deleted = || async { Ok(!exists().await?) };
    let what = format!("vhost {vhost}");
    common::assert_kept_or_released(keep, &what, kept, deleted, Duration::from_secs(10)).await
}

common::keep_on_failure_tests!(
    /// `SEAWORTHY_KEEP_ON_FAILURE=1` keeps the vhost of a failed test as it was left (as
    /// PostgreSQL keeps its database); without it, the vhost is released.
    keep_on_failure_keeps_a_failed_tests_vhost,
    a_failing_test_with_keep_on_failure,
    a_failed_tests_vhost,
    CHILD_DEADLINE,
);
