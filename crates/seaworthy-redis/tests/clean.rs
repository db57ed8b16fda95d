//! `clean()` against a real Redis: every part of the baseline comes back.

use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use seaworthy::{Fixture, FixtureDefinition};
use seaworthy_redis::Redis;

#[tokio::test]
async fn clean_restores_keys_scripts_functions_subscribers_config_and_users() -> anyhow::Result<()>
{
    let redis = Redis::new().start().await?;
    let baseline = redis.config("*").await?;
    assert_eq!(&baseline, redis.baseline_config());
    let mut conn = redis.connection_manager();

    // Keys in db 0 and db 5.
    let _: () = conn.set("user:1", "ada").await?;
    let mut db5 = redis.connection_manager_for(5).await?;
    let _: () = db5.set("session:9", "x").await?;
    // A script and a function.
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return 1")
        .query_async(&mut conn)
        .await?;
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=testlib\nredis.register_function('one', function() return 1 end)")
        .query_async(&mut conn)
        .await?;
    // A subscriber.
    let mut subscriber = redis.client().get_async_pubsub().await?;
    subscriber.subscribe("news").await?;
    assert_eq!(subscribers(&mut conn, "news").await?, 1);
    // Configuration, including an alias pair (replica-read-only / slave-read-only).
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .arg("hz")
        .arg("50")
        .arg("notify-keyspace-events")
        .arg("KEA")
        .arg("replica-read-only")
        .arg("no")
        .query_async(&mut conn)
        .await?;
    // A user.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("alice")
        .arg("on")
        .arg(">wonderland")
        .arg("~app:*")
        .arg("+@read")
        .query_async(&mut conn)
        .await?;
    assert_ne!(redis.config("*").await?, baseline);

    redis.clean().await?;

    assert!(redis.keys("*", 0).await?.is_empty(), "db 0 is empty");
    assert!(redis.keys("*", 5).await?.is_empty(), "db 5 is empty");
    assert!(
        redis.info().await?.keyspace().is_empty(),
        "no database has keys"
    );
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .query_async(&mut conn)
        .await?;
    assert_eq!(exists, [0], "the script is forgotten");
    let functions: Vec<redis::Value> = redis::cmd("FUNCTION")
        .arg("LIST")
        .query_async(&mut conn)
        .await?;
    assert!(functions.is_empty(), "no function library is left");
    assert_eq!(
        subscribers(&mut conn, "news").await?,
        0,
        "the subscriber is gone"
    );
    let mut messages = subscriber.into_on_message();
    let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await?;
    assert!(next.is_none(), "the subscriber's connection was closed");
    assert_eq!(
        redis.config("*").await?,
        baseline,
        "every configuration parameter is back"
    );
    let users: Vec<String> = redis::cmd("ACL")
        .arg("USERS")
        .query_async(&mut conn)
        .await?;
    assert_eq!(users, ["default"]);

    // The fixture's own connection survived, and a second clean has nothing to do.
    let _: () = conn.set("after", 1).await?;
    redis.clean().await?;
    assert!(redis.keys("*", 0).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn clean_restores_a_password_and_the_default_user() -> anyhow::Result<()> {
    let redis = Redis::new().with_password("s3cret pass").start().await?;
    let info = redis.connection();
    assert_eq!(info.scheme, "redis");
    assert_eq!(info.password(), Some("s3cret pass"));
    assert!(
        !info.to_string().contains("s3cret"),
        "Display hides the password: {info}"
    );
    assert!(
        !format!("{info:?}").contains("s3cret"),
        "Debug hides the password"
    );
    assert!(info.url().contains("s3cret%20pass"));

    // A client without the password is refused; the fixture's client is not.
    let anonymous = redis::Client::open(format!("redis://{}:{}/0", info.host, info.port))?;
    let mut anonymous = anonymous.get_multiplexed_async_connection().await?;
    let refused: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut anonymous).await;
    assert!(refused.is_err());

    let mut conn = redis.connection_manager();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("changed")
        .query_async(&mut conn)
        .await?;
    redis.clean().await?;
    assert_eq!(
        redis
            .config("requirepass")
            .await?
            .get("requirepass")
            .map(String::as_str),
        Some("s3cret pass")
    );
    let mut with_password = redis::Client::open(info.url())?
        .get_multiplexed_async_connection()
        .await?;
    let pong: String = redis::cmd("PING").query_async(&mut with_password).await?;
    assert_eq!(pong, "PONG");
    Ok(())
}

async fn subscribers(
    conn: &mut redis::aio::ConnectionManager,
    channel: &str,
) -> redis::RedisResult<i64> {
    let counts: std::collections::BTreeMap<String, i64> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(conn)
        .await?;
    Ok(counts.get(channel).copied().unwrap_or(0))
}

/// An invalid definition is refused before anything is created; a customised container
/// (`with_container`) reaches the engine; a fixture error met through the core's traits is an
/// `Error::Fixture` whose source is this crate's error, caused by the client's.
#[tokio::test]
async fn invalid_definitions_create_nothing_customisations_apply_and_errors_keep_their_chain(
) -> anyhow::Result<()> {
    use std::error::Error as _;
    let session = seaworthy::Session::global().await?;
    let since = std::time::SystemTime::now() - Duration::from_secs(1);
    let label = seaworthy_testkit::test_label("redis-definition");
    let (key, value) = label.split_once('=').unwrap();
    let labelled =
        |r: Redis| r.with_container(|c| c.with_label(key, value).with_env("SW_CUSTOM", "yes"));
    for (redis, kind, input) in [
        (Redis::new().with_password(""), "redis password", ""),
        (Redis::new().with_databases(0), "redis --databases", "0"),
    ] {
        let err: seaworthy::Error = labelled(redis).start().await.unwrap_err().into();
        seaworthy_testkit::assert_invalid(&err, kind, input);
    }
    assert_eq!(
        seaworthy_testkit::created_containers(&session, &label, since).await?,
        Vec::<String>::new(),
        "an invalid definition created a container"
    );
    let redis = labelled(Redis::new()).start().await?;
    seaworthy_testkit::assert_label_and_env(redis.container(), &label, "SW_CUSTOM=yes").await?;
    // The server gone, clean() fails with the client's error behind the fixture's.
    redis.container().stop(Duration::ZERO).await?;
    let err: seaworthy::Error =
        tokio::time::timeout(Duration::from_secs(30), Fixture::clean(&redis))
            .await?
            .unwrap_err()
            .into();
    let own: &seaworthy_redis::Error =
        seaworthy_testkit::fixture_source(&err, "redis", redis.container().name());
    assert!(
        own.source()
            .is_some_and(|s| s.downcast_ref::<redis::RedisError>().is_some()),
        "{own:?}"
    );
    Ok(())
}
