//! Suite `reset`, RabbitMQ part: `clean()` of a broker holding 20 queues (10 messages each), 10
//! exchanges and 20 bindings, against what the Python Seaworthy does (`rabbitmqctl eval
//! 'rabbit:stop(), rabbit_mnesia:reset(), rabbit:start().'` by docker exec), and a container
//! restart until ready as a reference figure.
//!
//! `cargo bench -p seaworthy-rabbitmq --bench reset` (needs `cargo xtask images`). Results are
//! merged into `target/seaworthy-bench/reset.json` with the other fixtures'. The baseline takes
//! seconds per run: the 30 runs take a few minutes.

use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use seaworthy::{Exec, Fixture, FixtureDefinition};
use seaworthy_benchkit::Suite;
use seaworthy_rabbitmq::lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use seaworthy_rabbitmq::lapin::types::FieldTable;
use seaworthy_rabbitmq::lapin::{BasicProperties, ExchangeKind};
use seaworthy_rabbitmq::{RabbitMq, RabbitMqFixture};

const QUEUES: usize = 20;
const EXCHANGES: usize = 10;
const MESSAGES_PER_QUEUE: usize = 10;
const RUNS: usize = 30;
const RESET_ERL: &str = "rabbit:stop(), rabbit_mnesia:reset(), rabbit:start().";

/// Declares the queues, exchanges and bindings and fills the queues (outside the timing).
async fn populate(rabbit: &RabbitMqFixture) {
    // After a reset by rabbitmqctl the broker may take a moment to accept connections again.
    let mut attempt = 0;
    let channel = loop {
        match rabbit.channel().await {
            Ok(channel) => break channel,
            Err(_) if attempt < 100 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no channel: {e}"),
        }
    };
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    for e in 0..EXCHANGES {
        channel
            .exchange_declare(
                format!("exchange-{e}").into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("exchange.declare");
    }
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for q in 0..QUEUES {
        channel
            .queue_declare(format!("queue-{q}").into(), durable, FieldTable::default())
            .await
            .expect("queue.declare");
        channel
            .queue_bind(
                format!("queue-{q}").into(),
                format!("exchange-{}", q % EXCHANGES).into(),
                format!("key.{q}.#").into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("queue.bind");
    }
    try_join_all((0..QUEUES * MESSAGES_PER_QUEUE).map(|i| {
        let channel = channel.clone();
        async move {
            channel
                .basic_publish(
                    "".into(),
                    format!("queue-{}", i % QUEUES).into(),
                    BasicPublishOptions::default(),
                    b"message",
                    BasicProperties::default(),
                )
                .await?
                .await
        }
    }))
    .await
    .expect("publish");
}

async fn assert_empty(rabbit: &RabbitMqFixture) {
    for _ in 0..100 {
        match rabbit.queues("/").await {
            Ok(queues) if queues.is_empty() => return,
            Ok(queues) => panic!("the reset left {} queues", queues.len()),
            // The management API restarts with the broker after rabbitmqctl's reset.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the management API did not come back");
}

fn main() {
    let mut suite = Suite::new("reset");
    let definition = RabbitMq::new();
    let (measured, baseline) = suite.block_on(async {
        let (a, b) = tokio::join!(definition.start(), definition.start());
        (
            a.expect("a RabbitMQ fixture (cargo xtask images)"),
            b.expect("a second RabbitMQ fixture"),
        )
    });
    // Warm up both paths.
    suite.block_on(async {
        populate(&measured).await;
        measured.clean().await.expect("clean");
        populate(&baseline).await;
        let out = baseline
            .container()
            .exec(Exec::new(["rabbitmqctl", "-q", "eval", RESET_ERL]))
            .await
            .expect("rabbitmqctl");
        assert!(out.success(), "rabbitmqctl eval: {}", out.stderr_text());
        assert_empty(&baseline).await;
    });

    let (a, b) = (&measured, &baseline);
    suite.compare(
        "rabbitmq.clean",
        "rabbitmqctl eval stop/reset/start by docker exec",
        RUNS,
        move || async move {
            populate(a).await;
            let t = Instant::now();
            a.clean().await.expect("clean");
            let elapsed = t.elapsed();
            assert_empty(a).await;
            elapsed
        },
        move || async move {
            populate(b).await;
            let t = Instant::now();
            let out = b
                .container()
                .exec(
                    Exec::new(["rabbitmqctl", "-q", "eval", RESET_ERL])
                        .timeout(Duration::from_secs(120)),
                )
                .await
                .expect("docker exec rabbitmqctl");
            let elapsed = t.elapsed();
            assert!(out.success(), "rabbitmqctl eval: {}", out.stderr_text());
            assert_empty(b).await;
            elapsed
        },
    );
    suite.annotate("queues", QUEUES);
    suite.annotate("exchanges", EXCHANGES);
    suite.annotate("bindings", QUEUES);
    suite.annotate("messages", QUEUES * MESSAGES_PER_QUEUE);
    drop((measured, baseline));

    // Restart (stop, start, wait for AMQP and the management API) of a plain container.
    let container = suite
        .block_on(definition.container_definition().start())
        .expect("a RabbitMQ container");
    let ready = definition.readiness();
    let (container, ready) = (&container, &ready);
    suite.measure("rabbitmq.restart", 5, move || async move {
        let t = Instant::now();
        container.stop(Duration::from_secs(30)).await.expect("stop");
        container.start().await.expect("start");
        container
            .wait_for(ready, Duration::from_secs(120))
            .await
            .expect("ready after restart");
        t.elapsed()
    });
    suite.annotate(
        "note",
        "stop + start + AMQP greeting and management API; 5 runs (each takes seconds)",
    );
    suite.finish();
}
