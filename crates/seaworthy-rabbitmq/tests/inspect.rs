//! Inspection helpers, connection info and readiness against a real RabbitMQ.

use std::time::Duration;

use seaworthy::{Fixture, FixtureDefinition};
use seaworthy_rabbitmq::lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use seaworthy_rabbitmq::lapin::types::FieldTable;
use seaworthy_rabbitmq::lapin::{BasicProperties, ExchangeKind};
use seaworthy_rabbitmq::RabbitMq;
use serde_json::json;

#[tokio::test]
async fn listings_describe_vhosts_queues_exchanges_bindings_users_and_policies(
) -> anyhow::Result<()> {
    let rabbit = RabbitMq::new()
        .with_user("app", "s3cret pass")
        .start()
        .await?;
    assert_eq!(rabbit.kind(), "rabbitmq");

    // Connection info: complete URLs for clients, passwords hidden when printed.
    let amqp = rabbit.connection();
    assert_eq!(
        (
            amqp.scheme.as_str(),
            amqp.user.as_deref(),
            amqp.path.as_deref()
        ),
        ("amqp", Some("app"), Some("/"))
    );
    assert!(amqp.url().ends_with("/%2F") && amqp.url().contains("s3cret%20pass"));
    for shown in [
        amqp.to_string(),
        format!("{amqp:?}"),
        rabbit.management_info().to_string(),
        format!("{rabbit:?}"),
    ] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    let channel = rabbit.channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    for queue in ["b-queue", "a-queue"] {
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    channel
        .exchange_declare(
            "events".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            "a-queue".into(),
            "events".into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for _ in 0..3 {
        channel
            .basic_publish(
                "events".into(),
                "".into(),
                BasicPublishOptions::default(),
                b"hi",
                BasicProperties::default(),
            )
            .await?
            .await?;
    }
    rabbit
        .management()
        .put(
            "/api/policies/%2F/ttl",
            &json!({"pattern": "^a-", "definition": {"message-ttl": 60000}, "apply-to": "queues"}),
        )
        .await?;

    let vhosts = rabbit.vhosts().await?;
    assert_eq!(vhosts.len(), 1);
    assert_eq!(vhosts[0].name, "/");
    let users = rabbit.users().await?;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name, "app");
    assert!(users[0].tags.contains(&"administrator".to_string()));

    let names: Vec<String> = rabbit
        .queues("/")
        .await?
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["a-queue", "b-queue"], "sorted by name");
    assert_eq!(
        rabbit.message_count("a-queue").await?,
        3,
        "exact, over AMQP"
    );
    // The management API's counters follow within the statistics interval.
    let mut counted = 0;
    for _ in 0..100 {
        counted = rabbit
            .queues("/")
            .await?
            .iter()
            .find(|q| q.name == "a-queue")
            .map_or(0, |q| q.messages);
        if counted == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counted, 3, "the management API counts the messages");

    let exchanges = rabbit.exchanges("/").await?;
    let events = exchanges
        .iter()
        .find(|e| e.name == "events")
        .expect("the events exchange");
    assert_eq!(events.kind, "fanout");
    assert!(!events.is_predeclared());
    assert!(exchanges
        .iter()
        .any(|e| e.name == "amq.topic" && e.is_predeclared()));

    let bindings: Vec<(String, String)> = rabbit
        .bindings("/")
        .await?
        .into_iter()
        .filter(|b| !b.is_implicit())
        .map(|b| (b.source, b.destination))
        .collect();
    assert_eq!(bindings, [("events".to_string(), "a-queue".to_string())]);

    let policies = rabbit.policies().await?;
    assert_eq!(policies.len(), 1);
    assert_eq!(
        (policies[0].name.as_str(), policies[0].apply_to.as_str()),
        ("ttl", "queues")
    );

    // A missing queue is an error that names the fixture.
    let missing = rabbit
        .message_count("no-such-queue")
        .await
        .expect_err("no such queue");
    assert!(
        missing.to_string().contains(rabbit.container().name()),
        "{missing}"
    );
    Ok(())
}

/// An invalid definition is refused before anything is created; a customised container
/// (`with_container`) reaches the engine; a fixture error converted into Seaworthy's is an
/// `Error::Fixture` whose source is this crate's error (with the management API's status).
#[tokio::test]
async fn invalid_definitions_create_nothing_customisations_apply_and_errors_keep_their_chain(
) -> anyhow::Result<()> {
    let session = seaworthy::Session::global().await?;
    let since = std::time::SystemTime::now() - Duration::from_secs(1);
    let label = seaworthy_testkit::test_label("rabbitmq-definition");
    let (key, value) = label.split_once('=').unwrap();
    let labelled =
        |r: RabbitMq| r.with_container(|c| c.with_label(key, value).with_env("SW_CUSTOM", "yes"));
    for (rabbit, kind, input) in [
        (
            RabbitMq::new().with_user("a:b", "pw"),
            "rabbitmq user",
            "a:b",
        ),
        (
            RabbitMq::new().with_config("log.console"),
            "rabbitmq configuration line",
            "log.console",
        ),
    ] {
        let err: seaworthy::Error = labelled(rabbit).start().await.unwrap_err().into();
        seaworthy_testkit::assert_invalid(&err, kind, input);
    }
    assert_eq!(
        seaworthy_testkit::created_containers(&session, &label, since).await?,
        Vec::<String>::new(),
        "an invalid definition created a container"
    );
    let rabbit = labelled(RabbitMq::new()).start().await?;
    seaworthy_testkit::assert_label_and_env(rabbit.container(), &label, "SW_CUSTOM=yes").await?;
    let own = rabbit
        .management()
        .get::<serde_json::Value>("/api/no-such-thing")
        .await
        .unwrap_err();
    assert_eq!(own.status(), Some(404), "{own}");
    let err = seaworthy::Error::from(own);
    let own: &seaworthy_rabbitmq::Error =
        seaworthy_testkit::fixture_source(&err, "rabbitmq", rabbit.container().name());
    assert_eq!(own.status(), Some(404));
    Ok(())
}
