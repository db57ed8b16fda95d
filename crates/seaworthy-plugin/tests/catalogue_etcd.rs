//! The etcd plugin against the real server: keys and leases back to the exact baseline (a test
//! per kind of state), and eight parallel tests in their own key prefixes. The test talks to
//! etcd through its HTTP/JSON gateway with reqwest, as a user without a gRPC client would.

mod catalogue;
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use catalogue::etcd::Gateway;
use seaworthy::{Fixture, Shared};
use seaworthy_plugin::{Grants, PluginFixtureDefinition, PluginHost};
use serde_json::json;

fn host() -> PluginHost {
    catalogue::host("etcd", Grants::new().http(2379))
}

/// The baseline: two keys.
fn etcd() -> PluginFixtureDefinition {
    host()
        .load("etcd")
        .expect("the etcd plugin loads")
        .fixture([("key.config/mode", "baseline"), ("key.config/zone", "eu")])
        .expect("an etcd definition")
}

static ETCD: Shared<PluginFixtureDefinition> = Shared::per_process(etcd);

fn baseline() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("config/mode".to_string(), "baseline".to_string()),
        ("config/zone".to_string(), "eu".to_string()),
    ])
}

async fn fresh() -> Result<(
    seaworthy::ExclusiveGuard<seaworthy_plugin::PluginFixture>,
    Gateway,
)> {
    let fixture = ETCD.fresh().await?;
    assert_eq!(fixture.connection().scheme, "http");
    let gateway = Gateway::new(&fixture.container().address(2379)?);
    assert_eq!(
        gateway.keys("").await?,
        baseline(),
        "the fixture starts at the baseline"
    );
    assert!(gateway.leases().await?.is_empty());
    Ok((fixture, gateway))
}

#[tokio::test]
async fn etcd_clean_puts_keys_back_to_the_baseline() -> Result<()> {
    let (fixture, gateway) = fresh().await?;
    // Keys added before, between and after the baseline's, one changed, one deleted.
    for key in [
        "a",
        "config/m",
        "config/mode0",
        "config/n",
        "zzz",
        "\u{7f}end",
    ] {
        gateway.put(key, "test", None).await?;
    }
    gateway.put("config/mode", "changed", None).await?;
    gateway
        .call(
            "kv/deleterange",
            json!({"key": BASE64.encode("config/zone")}),
        )
        .await?;
    assert_eq!(gateway.keys("").await?.len(), 7);
    fixture.clean().await?;
    assert_eq!(gateway.keys("").await?, baseline());
    Ok(())
}

#[tokio::test]
async fn etcd_clean_revokes_leases_and_their_keys() -> Result<()> {
    let (fixture, gateway) = fresh().await?;
    let lease = gateway.grant(600).await?;
    gateway
        .put("session/worker-1", "alive", Some(&lease))
        .await?;
    // A baseline key attached to a lease by the test: back, without the lease.
    gateway.put("config/mode", "leased", Some(&lease)).await?;
    gateway.grant(600).await?; // a lease without keys
    assert_eq!(gateway.leases().await?.len(), 2);
    fixture.clean().await?;
    assert!(gateway.leases().await?.is_empty());
    assert_eq!(gateway.keys("").await?, baseline());
    let range = gateway
        .call("kv/range", json!({"key": BASE64.encode("config/mode")}))
        .await?;
    assert!(
        range["kvs"][0].get("lease").is_none(),
        "the baseline key kept the test's lease: {range}"
    );
    Ok(())
}

#[tokio::test]
async fn etcd_isolates_eight_parallel_tests_by_key_prefix() -> Result<()> {
    let namespaces = catalogue::eight_parallel(|n| async move {
        let isolated = ETCD.isolated().await?;
        let ns = isolated.namespace().to_string();
        let address = isolated.fixture().container().address(2379)?;
        let gateway = Gateway::new(&address);
        let prefix = format!("{ns}/");
        ensure!(
            gateway.keys(&prefix).await?.is_empty(),
            "{ns}: keys left by an earlier holder"
        );
        let lease = gateway.grant(600).await?;
        let mut mine = BTreeMap::new();
        for i in 0..=n {
            let key = format!("{prefix}k{i}");
            gateway.put(&key, &format!("{n}"), Some(&lease)).await?;
            mine.insert(key, n.to_string());
        }
        gateway.put(&format!("{prefix}plain"), "x", None).await?;
        mine.insert(format!("{prefix}plain"), "x".to_string());
        ensure!(
            gateway.keys(&prefix).await? == mine,
            "{ns} sees keys of another test"
        );
        Ok((ns, address))
    })
    .await;

    // Released in the background: the prefixes' keys and their leases are gone, the baseline
    // is untouched.
    let gateway = Gateway::new(&namespaces[0].1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.keys("").await? != baseline() || !gateway.leases().await?.is_empty() {
        assert!(
            Instant::now() < deadline,
            "not released: {:?}, leases {:?}",
            gateway.keys("").await?,
            gateway.leases().await?
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test]
async fn etcd_refuses_an_unknown_key() {
    let error = host()
        .load("etcd")
        .unwrap()
        .fixture([("colour", "blue")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("plugin `etcd`"), "{error}");
    assert!(error.contains("unknown key `colour`"), "{error}");
}
