//! Suite `reset.rabbitmq`: `clean()` of a broker holding 20 queues (10 messages each), 10
//! exchanges and 20 bindings in the default virtual host, against the best reset a user would
//! write through the management API, and against what the Python Seaworthy does as an extra row.
//!
//! * `rabbitmq.clean`: against deleting the virtual host `/` and re-creating it with its
//!   definitions through the management API (`DELETE` and `PUT /api/vhosts/%2F`, the user's
//!   permissions, `POST /api/definitions/%2F` with the definitions recorded while it was clean,
//!   then waiting until the virtual host runs).
//! * `rabbitmq.clean.vs_exec`: against `rabbitmqctl eval 'rabbit:stop(), rabbit_mnesia:reset(),
//!   rabbit:start().'` by docker exec (the Python Seaworthy; it wipes far more than `clean()`
//!   does, users and every virtual host, and takes seconds: 10 runs).
//! * `rabbitmq.restart` (reference): stop, start, AMQP greeting and management API.
//!
//! Each side has a broker of its own (same definition), populated before every run (untimed) and
//! checked after it: no queue, no exchange but the predeclared ones, no binding in `/`.
//! `cargo bench -p seaworthy-rabbitmq --bench reset` (needs `cargo xtask images`); results in
//! `target/seaworthy-bench/reset.rabbitmq.json`.

use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use seaworthy::{ContainerFixtureDefinition, Exec, Fixture, FixtureDefinition};
use seaworthy_benchkit::{Suite, Target};
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
const EXEC_RUNS: usize = 10;
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

/// Checks `/` holds no queue, no exchange but the predeclared ones and no binding.
async fn assert_empty(rabbit: &RabbitMqFixture) {
    for _ in 0..100 {
        let listed = async {
            let queues = rabbit.queues("/").await?;
            let exchanges = rabbit.exchanges("/").await?;
            let bindings = rabbit.bindings("/").await?;
            Ok::<_, seaworthy_rabbitmq::Error>((queues, exchanges, bindings))
        };
        match listed.await {
            Ok((queues, exchanges, bindings)) => {
                assert!(queues.is_empty(), "the reset left {} queues", queues.len());
                let left: Vec<_> = exchanges.iter().filter(|e| !e.is_predeclared()).collect();
                assert!(left.is_empty(), "the reset left exchanges {left:?}");
                assert!(bindings.is_empty(), "the reset left bindings {bindings:?}");
                return;
            }
            // The management API restarts with the broker after rabbitmqctl's reset, and the
            // virtual host may still be coming up.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the management API did not answer");
}

/// Populates the broker (untimed), times `clean()`, checks `/` is empty (untimed).
async fn timed_clean(rabbit: &RabbitMqFixture) -> Duration {
    populate(rabbit).await;
    let t = Instant::now();
    rabbit.clean().await.expect("clean");
    let elapsed = t.elapsed();
    assert_empty(rabbit).await;
    elapsed
}

/// A user's reset through the management API: the virtual host `/` deleted and re-created with
/// the user's permissions and the definitions it had when clean, then waited for until it runs.
async fn recreate_vhost(rabbit: &RabbitMqFixture, definitions: &serde_json::Value) {
    let api = rabbit.management();
    let user = rabbit.definition().user();
    api.delete("/api/vhosts/%2F")
        .await
        .expect("delete the vhost");
    api.put("/api/vhosts/%2F", &serde_json::json!({}))
        .await
        .expect("create the vhost");
    api.put(
        &format!("/api/permissions/%2F/{user}"),
        &serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}),
    )
    .await
    .expect("the user's permissions");
    api.post("/api/definitions/%2F", definitions)
        .await
        .expect("load the definitions");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info: serde_json::Value = api.get("/api/vhosts/%2F").await.expect("the vhost");
        let running = info
            .get("cluster_state")
            .and_then(|s| s.as_object())
            .is_none_or(|nodes| nodes.values().all(|state| state == "running"));
        if running {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the vhost did not run within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn main() {
    let mut suite = Suite::new("reset.rabbitmq");
    let definition = RabbitMq::new();
    let (measured, baseline) = suite.block_on(async {
        let (a, b) = tokio::join!(definition.start(), definition.start());
        (
            a.expect("a RabbitMQ fixture (cargo xtask images)"),
            b.expect("a second RabbitMQ fixture"),
        )
    });
    // The definitions of `/` while it is clean, for the management API side.
    let definitions: serde_json::Value = suite
        .block_on(baseline.management().get("/api/definitions/%2F"))
        .expect("the definitions of /");
    // Warm up both paths.
    suite.block_on(async {
        populate(&measured).await;
        measured.clean().await.expect("clean");
        populate(&baseline).await;
        recreate_vhost(&baseline, &definitions).await;
        assert_empty(&baseline).await;
    });

    let (a, b, definitions) = (&measured, &baseline, &definitions);
    suite.compare(
        "rabbitmq.clean",
        "vhost / deleted and re-created with its permissions and definitions (management API)",
        RUNS,
        move || timed_clean(a),
        move || async move {
            populate(b).await;
            let t = Instant::now();
            recreate_vhost(b, definitions).await;
            let elapsed = t.elapsed();
            assert_empty(b).await;
            elapsed
        },
    );
    suite.target(Target::MedianAtMostMs(150.0));
    suite.annotate("queues", QUEUES);
    suite.annotate("exchanges", EXCHANGES);
    suite.annotate("bindings", QUEUES);
    suite.annotate("messages", QUEUES * MESSAGES_PER_QUEUE);

    suite.compare(
        "rabbitmq.clean.vs_exec",
        "rabbitmqctl eval stop/reset/start by docker exec (the Python Seaworthy)",
        EXEC_RUNS,
        move || timed_clean(a),
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
