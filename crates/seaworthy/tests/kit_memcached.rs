//! The kit's worked example (`examples/memcached.rs`) against the real memcached: its clean()
//! restores the seed items, its namespaces are emptied and handed out again, its baseline is
//! loaded from the container by a second attach, and it is shared and isolated through `Shared`.

#[path = "../examples/memcached.rs"]
#[allow(dead_code)]
mod memcached;

use std::time::Duration;

use memcached::Memcached;
use seaworthy::kit::Baseline;
use seaworthy::{Fixture, FixtureDefinition, Isolation, Shared};

static CACHE: Shared<Memcached> = Shared::per_process(|| Memcached::new().with_item("motd", "hi"));

#[tokio::test]
async fn clean_restores_the_seed_items_and_removes_the_rest() -> anyhow::Result<()> {
    let cache = Memcached::new()
        .with_item("greeting", "hello")
        .start()
        .await?;
    let client = cache.client().await?;
    assert_eq!(client.get("greeting").await?.as_deref(), Some("hello"));
    client.set("scratch", "x").await?;
    client.set("greeting", "changed").await?;
    cache.clean().await?;
    assert_eq!(client.get("scratch").await?, None);
    assert_eq!(client.get("greeting").await?.as_deref(), Some("hello"));
    Ok(())
}

#[tokio::test]
async fn the_baseline_kept_in_the_container_is_loaded_not_recorded_again() -> anyhow::Result<()> {
    let cache = Memcached::new().with_item("k", "v").start().await?;
    // What a later attach (another process of the run) does: the record is in the container, so
    // the recording step does not run, whatever the server holds now.
    cache.client().await?.delete("k").await?;
    let loaded: Vec<(String, String)> = Baseline::new(memcached::BASELINE_PATH)
        .load_or_record(cache.container(), || async {
            Err::<Vec<(String, String)>, _>(seaworthy::Error::invalid(
                "test",
                "record",
                "the baseline was recorded a second time",
            ))
        })
        .await?;
    assert_eq!(loaded, [("k".to_string(), "v".to_string())]);
    // A container without a record gets one from the recording step.
    let fresh = Baseline::new("/tmp/.seaworthy-other.json")
        .load_or_record(cache.container(), || async {
            Ok::<_, seaworthy::Error>(vec![("x".to_string(), "y".to_string())])
        })
        .await?;
    assert_eq!(fresh, [("x".to_string(), "y".to_string())]);
    assert!(
        cache
            .container()
            .file_exists("/tmp/.seaworthy-other.json")
            .await?
    );
    Ok(())
}

#[tokio::test]
async fn namespaces_are_private_and_emptied_when_released() -> anyhow::Result<()> {
    let cache = Memcached::new().start().await?;
    let client = cache.client().await?;
    let a = cache.isolate().await?;
    let b = cache.isolate().await?;
    assert_ne!(*a, *b, "two live leases share a prefix");
    client.set(&format!("{}visits", *a), "1").await?;
    client.set("outside", "kept").await?;
    let released = a.clone();
    drop(a);
    // The prefix comes back emptied (the reset runs on Seaworthy's runtime).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        let lease = cache.isolate().await?;
        if *lease == released {
            break lease;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{released} never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(client.get(&format!("{}visits", *again)).await?, None);
    assert_eq!(client.get("outside").await?.as_deref(), Some("kept"));
    drop(b);
    Ok(())
}

#[tokio::test]
async fn shared_hand_outs_use_the_kit_fixture() -> anyhow::Result<()> {
    {
        let cache = CACHE.fresh().await?;
        cache.client().await?.set("left", "behind").await?;
    }
    let cache = CACHE.fresh().await?;
    let client = cache.client().await?;
    assert_eq!(client.get("left").await?, None, "fresh() did not clean");
    assert_eq!(client.get("motd").await?.as_deref(), Some("hi"));
    drop(cache);
    let namespace = CACHE.isolated().await?;
    assert!(namespace.starts_with('t'), "{}", &**namespace);
    Ok(())
}

#[tokio::test]
async fn an_invalid_key_is_refused_naming_it() {
    let err: seaworthy::Error = Memcached::new()
        .with_item("two words", "x")
        .start()
        .await
        .err()
        .expect("an invalid key was accepted");
    assert!(
        matches!(&err, seaworthy::Error::Invalid { kind: "memcached key", input, .. } if input == "two words"),
        "{err}"
    );
}
