//! `clean()` against a real RabbitMQ: every part of the baseline comes back.

use futures_util::future::try_join_all;
use seaworthy::{Fixture, Shared};
use seaworthy_rabbitmq::lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use seaworthy_rabbitmq::lapin::types::FieldTable;
use seaworthy_rabbitmq::lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use seaworthy_rabbitmq::{RabbitMq, RabbitMqFixture};
use serde_json::{json, Value};

static RABBIT: Shared<RabbitMq> = Shared::per_process(RabbitMq::new);

/// What a test would compare: everything `clean()` promises to restore, read through the API.
async fn snapshot(rabbit: &RabbitMqFixture) -> anyhow::Result<Value> {
    let m = rabbit.management();
    let mut definitions = m.definitions().await?;
    for key in [
        "rabbit_version",
        "rabbitmq_version",
        "product_name",
        "product_version",
    ] {
        definitions.as_object_mut().map(|d| d.remove(key));
    }
    Ok(json!({
        "definitions": definitions,
        "vhosts": format!("{:?}", rabbit.vhosts().await?),
        "queues": format!("{:?}", m.queues(None).await?),
        "exchanges": format!("{:?}", m.exchanges(None).await?),
        "bindings": format!("{:?}", m.bindings(None).await?),
        "users": format!("{:?}", rabbit.users().await?),
        "policies": format!("{:?}", rabbit.policies().await?),
    }))
}

#[tokio::test]
async fn clean_removes_queues_messages_exchanges_bindings_policies_vhosts_and_users(
) -> anyhow::Result<()> {
    let rabbit = RABBIT.exclusive().await?;
    rabbit.clean().await?;
    let baseline = snapshot(&rabbit).await?;
    let m = rabbit.management();

    // A queue with 1,000 messages, an exchange and a binding.
    let channel = rabbit.channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare("orders".into(), durable, FieldTable::default())
        .await?;
    let confirms = try_join_all((0..1000).map(|i| {
        let channel = channel.clone();
        async move {
            let payload = format!("order {i}");
            channel
                .basic_publish(
                    "".into(),
                    "orders".into(),
                    BasicPublishOptions::default(),
                    payload.as_bytes(),
                    BasicProperties::default(),
                )
                .await?
                .await
        }
    }))
    .await?;
    assert!(confirms.iter().all(|c| c.is_ack()));
    assert_eq!(rabbit.message_count("orders").await?, 1000);
    channel
        .exchange_declare(
            "events".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            "orders".into(),
            "events".into(),
            "order.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // A connection left open with an exclusive queue.
    let consumer = rabbit.amqp_connection().await?;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    consumer
        .create_channel()
        .await?
        .queue_declare("".into(), exclusive, FieldTable::default())
        .await?;
    // A policy, a new vhost with a queue, a new user with permissions, a vhost limit.
    m.put(
        "/api/policies/%2F/cap",
        &json!({"pattern": "^orders$", "definition": {"max-length": 5000}, "apply-to": "queues"}),
    )
    .await?;
    m.put("/api/vhosts/tenant-a", &json!({})).await?;
    m.put("/api/queues/tenant-a/inbox", &json!({"durable": true}))
        .await?;
    m.put(
        "/api/users/alice",
        &json!({"password": "wonderland", "tags": "management"}),
    )
    .await?;
    m.put(
        "/api/permissions/%2F/alice",
        &json!({"configure": ".*", "write": ".*", "read": ".*"}),
    )
    .await?;
    m.put("/api/vhost-limits/%2F/max-queues", &json!({"value": 100}))
        .await?;
    assert_ne!(snapshot(&rabbit).await?, baseline);

    rabbit.clean().await?;

    assert!(
        rabbit.queues("/").await?.is_empty(),
        "no queue is left, nor its messages"
    );
    assert!(
        rabbit
            .exchanges("/")
            .await?
            .iter()
            .all(|e| e.is_predeclared()),
        "only the predeclared exchanges"
    );
    assert!(rabbit.bindings("/").await?.is_empty(), "no binding is left");
    assert!(rabbit.policies().await?.is_empty(), "no policy is left");
    let vhosts: Vec<String> = rabbit.vhosts().await?.into_iter().map(|v| v.name).collect();
    assert_eq!(vhosts, ["/"]);
    let users: Vec<String> = rabbit.users().await?.into_iter().map(|u| u.name).collect();
    assert_eq!(users, ["guest"]);
    assert_eq!(
        snapshot(&rabbit).await?,
        baseline,
        "the whole baseline is back"
    );

    // The default vhost works again, through the fixture's (reconnected) channel.
    declare_and_clean_again(&rabbit, &baseline).await
}

#[tokio::test]
async fn clean_restores_the_default_user_permissions_and_parameters() -> anyhow::Result<()> {
    let rabbit = RABBIT.exclusive().await?;
    rabbit.clean().await?;
    let baseline = snapshot(&rabbit).await?;
    let m = rabbit.management();

    m.put(
        "/api/permissions/%2F/guest",
        &json!({"configure": "^$", "write": "^$", "read": ".*"}),
    )
    .await?;
    m.put(
        "/api/topic-permissions/%2F/guest",
        &json!({"exchange": "amq.topic", "write": "^a", "read": ".*"}),
    )
    .await?;
    m.put(
        "/api/global-parameters/cluster_name",
        &json!({"name": "cluster_name", "value": "renamed"}),
    )
    .await?;
    m.put(
        "/api/user-limits/guest/max-channels",
        &json!({"value": 500}),
    )
    .await?;
    m.put(
        "/api/vhosts/%2F",
        &json!({"description": "changed by a test", "tags": "x"}),
    )
    .await?;
    assert_ne!(snapshot(&rabbit).await?, baseline);

    rabbit.clean().await?;

    assert_eq!(
        snapshot(&rabbit).await?,
        baseline,
        "permissions, parameters, limits and metadata are back"
    );
    let vhost = rabbit.vhosts().await?.remove(0);
    assert_eq!(vhost.description.as_deref(), Some("Default virtual host"));
    Ok(())
}

#[tokio::test]
async fn clean_of_a_broker_at_its_baseline_changes_nothing() -> anyhow::Result<()> {
    let rabbit = RABBIT.exclusive().await?;
    rabbit.clean().await?;
    let before = snapshot(&rabbit).await?;
    let channel = rabbit.channel().await?;
    rabbit.clean().await?;
    assert_eq!(snapshot(&rabbit).await?, before);
    assert!(
        channel.status().connected(),
        "nothing to undo: the fixture's connection stays open"
    );
    Ok(())
}

/// Whether the fixture's user can open an AMQP connection to the default vhost with `password`.
async fn can_connect(rabbit: &RabbitMqFixture, password: &str) -> bool {
    let info = Fixture::connection(rabbit);
    let user = info.user.clone().unwrap_or_default();
    let info = info.with_credentials(user, Some(password.into()));
    match Connection::connect(&info.url(), ConnectionProperties::default()).await {
        Ok(connection) => {
            let _ = connection.close(200, "done".into()).await;
            true
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn clean_restores_the_default_vhost_and_user_after_a_test_deleted_them() -> anyhow::Result<()>
{
    let rabbit = RABBIT.exclusive().await?;
    rabbit.clean().await?;
    let baseline = snapshot(&rabbit).await?;
    let m = rabbit.management();
    assert!(can_connect(&rabbit, "guest").await);

    m.delete_vhost("/").await?;
    m.delete_user("guest").await?;
    // The fixture's own user is gone: nothing can log in with it any more.
    assert!(!can_connect(&rabbit, "guest").await);
    assert_eq!(
        m.vhosts().await.map_err(|e| e.status()).err(),
        Some(Some(401))
    );

    rabbit.clean().await?;

    let vhosts: Vec<String> = rabbit.vhosts().await?.into_iter().map(|v| v.name).collect();
    assert_eq!(vhosts, ["/"]);
    let users: Vec<String> = rabbit.users().await?.into_iter().map(|u| u.name).collect();
    assert_eq!(users, ["guest"]);
    assert_eq!(
        snapshot(&rabbit).await?,
        baseline,
        "the vhost, the user (password hash, tags) and its permissions are back"
    );
    assert!(
        can_connect(&rabbit, "guest").await,
        "guest logs in with its own password again"
    );
    // The default vhost works again, through the fixture's (reconnected) channel.
    declare_and_clean_again(&rabbit, &baseline).await
}

#[tokio::test]
async fn clean_restores_the_default_users_password_and_tags() -> anyhow::Result<()> {
    let rabbit = RABBIT.exclusive().await?;
    rabbit.clean().await?;
    let baseline = snapshot(&rabbit).await?;
    let m = rabbit.management();

    m.put(
        "/api/users/guest",
        &json!({"password": "changed by a test", "tags": "monitoring"}),
    )
    .await?;
    assert!(can_connect(&rabbit, "changed by a test").await);
    assert!(!can_connect(&rabbit, "guest").await);

    rabbit.clean().await?;

    assert_eq!(snapshot(&rabbit).await?, baseline);
    let guest = rabbit.users().await?.remove(0);
    assert_eq!(
        (guest.name.as_str(), guest.tags.as_slice()),
        ("guest", ["administrator".to_string()].as_slice())
    );
    assert!(
        can_connect(&rabbit, "guest").await,
        "the original password works"
    );
    assert!(
        !can_connect(&rabbit, "changed by a test").await,
        "the test's does not"
    );
    Ok(())
}

/// Declares a queue through the fixture's channel (in the default vhost), then cleans and
/// checks that the baseline `baseline` is back.
async fn declare_and_clean_again(rabbit: &RabbitMqFixture, baseline: &Value) -> anyhow::Result<()> {
    rabbit
        .channel()
        .await?
        .queue_declare(
            "after".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    assert_eq!(rabbit.message_count("after").await?, 0);
    rabbit.clean().await?;
    assert_eq!(&snapshot(rabbit).await?, baseline);
    Ok(())
}
