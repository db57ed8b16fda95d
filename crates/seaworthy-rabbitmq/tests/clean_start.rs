//! Tests start clean by construction: a test that dirties the shared RabbitMQ and then fails
//! hands nothing to the next one, in either order (threads or nextest's processes: the fixture
//! is shared per run).

use seaworthy::Shared;
use seaworthy_rabbitmq::lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use seaworthy_rabbitmq::lapin::types::FieldTable;
use seaworthy_rabbitmq::lapin::ExchangeKind;
use seaworthy_rabbitmq::{RabbitMq, RabbitMqFixture};

static BROKER: Shared<RabbitMq> = Shared::per_run(RabbitMq::new);

async fn dirty(broker: &RabbitMqFixture) {
    let channel = broker.channel().await.unwrap();
    channel
        .queue_declare(
            "left-behind".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .exchange_declare(
            "left-behind-exchange".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    broker
        .management()
        .create_vhost("left-behind-vhost")
        .await
        .unwrap();
}

async fn assert_baseline(broker: &RabbitMqFixture) -> anyhow::Result<()> {
    let queues = broker.management().queues(None).await?;
    anyhow::ensure!(queues.is_empty(), "queues: {queues:?}");
    let exchanges = broker.management().exchanges(None).await?;
    anyhow::ensure!(
        exchanges
            .iter()
            .all(|e| e.name.is_empty() || e.name.starts_with("amq.")),
        "exchanges: {exchanges:?}"
    );
    let vhosts: Vec<String> = broker.vhosts().await?.into_iter().map(|v| v.name).collect();
    anyhow::ensure!(vhosts == ["/"], "vhosts: {vhosts:?}");
    Ok(())
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn rabbitmq_1_dirties_then_panics(broker: &RabbitMqFixture) {
    dirty(broker).await;
    panic!("deliberately, after dirtying the fixture");
}

#[seaworthy::test]
async fn rabbitmq_2_starts_at_the_baseline(broker: &RabbitMqFixture) -> anyhow::Result<()> {
    assert_baseline(broker).await
}

#[seaworthy::test]
async fn rabbitmq_3_starts_at_the_baseline(broker: &RabbitMqFixture) -> anyhow::Result<()> {
    assert_baseline(broker).await
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn rabbitmq_4_dirties_then_panics(broker: &RabbitMqFixture) {
    dirty(broker).await;
    panic!("deliberately, after dirtying the fixture");
}
