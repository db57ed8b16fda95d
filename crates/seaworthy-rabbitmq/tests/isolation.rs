//! Isolation against a real RabbitMQ: parallel tests, each in a vhost of its own, in one broker.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use seaworthy::{Isolation, Shared};
use seaworthy_rabbitmq::lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use seaworthy_rabbitmq::lapin::types::FieldTable;
use seaworthy_rabbitmq::lapin::{BasicProperties, ExchangeKind};
use seaworthy_rabbitmq::RabbitMq;

/// Shared by every test process of the run: under nextest (a process per test) the tests below
/// use one broker, each in the vhost of its slot.
static RABBIT: Shared<RabbitMq> = Shared::per_run(RabbitMq::new);

/// What one test does: declare the same queue, exchange and binding as every other test, publish
/// `id + 1` messages carrying its id, then check that it sees exactly its own.
async fn use_a_vhost(id: usize, barrier: Option<Arc<Barrier>>) -> anyhow::Result<String> {
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
    for _ in 0..=id {
        let confirm = channel
            .basic_publish(
                "events".into(),
                "job".into(),
                BasicPublishOptions::default(),
                id.to_string().as_bytes(),
                BasicProperties::default(),
            )
            .await?
            .await?;
        assert!(confirm.is_ack());
    }
    match barrier {
        // Every test has published before any counts.
        Some(barrier) => tokio::task::spawn_blocking(move || barrier.wait())
            .await
            .map(drop)?,
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
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (10..18)
        .map(|id| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(use_a_vhost(id, Some(barrier)))
            })
        })
        .collect();
    let mut vhosts: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("test thread").expect("test"))
        .collect();
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
