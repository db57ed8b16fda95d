//! Suite `catalogue_plugins` (the plugin part of the `catalogue` benchmarks): a catalogue
//! plugin's clean() against the other ways a user would reset the same state.
//!
//! `cargo bench -p seaworthy-plugin --bench catalogue` (needs `cargo xtask images` and the
//! wasm32-wasip2 target; the plugins are built by the bench itself); results in
//! `target/seaworthy-bench/catalogue_plugins.json`.
//!
//! Each run first dirties the store the same way (not timed): 20 keys written, 2 leases granted
//! with 5 keys each, a baseline key changed. Then:
//!
//! * `etcd.clean_vs_native`: the etcd plugin's clean() (every lease revoked, one transaction
//!   putting the keys back to the two-key baseline, through the host's HTTP capability) against
//!   the same requests sent from the test process with reqwest over a kept connection pool to
//!   the gateway. Target ratio ≤ 1.3.
//! * `etcd.clean_vs_recreate`: the same clean() against starting a new etcd fixture from the
//!   definition (container created, started, healthy, ready, baseline written); the old
//!   container's removal is not counted, which favours the baseline. Target ratio ≤ 0.05.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use seaworthy::{Fixture, FixtureDefinition};
use seaworthy_benchkit::{target_dir, Suite, Target};
use seaworthy_plugin::{Grants, PluginFixtureDefinition, PluginHost};
use serde_json::{json, Value};

/// The baseline: two keys.
const BASELINE: [(&str, &str); 2] = [("config/mode", "baseline"), ("config/zone", "eu")];

/// A client of etcd's HTTP/JSON gateway.
#[derive(Clone)]
struct Gateway {
    http: reqwest::Client,
    base: String,
}

impl Gateway {
    async fn call(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("the gateway answers");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("JSON")
    }

    /// Writes the state every run starts from.
    async fn dirty(&self) {
        for i in 0..20 {
            self.put(&format!("app/key-{i:02}"), "value", None).await;
        }
        for lease in 0..2 {
            let id = self.call("lease/grant", json!({"TTL": 600})).await["ID"].clone();
            for i in 0..5 {
                self.put(&format!("session/{lease}/{i}"), "alive", Some(&id))
                    .await;
            }
        }
        self.put("config/mode", "changed", None).await;
    }

    async fn put(&self, key: &str, value: &str, lease: Option<&Value>) {
        let mut body = json!({"key": BASE64.encode(key), "value": BASE64.encode(value)});
        if let Some(lease) = lease {
            body["lease"] = lease.clone();
        }
        self.call("kv/put", body).await;
    }

    /// What the plugin's clean() does, from the test process: every lease revoked, then one
    /// transaction deleting the ranges around the baseline's keys and putting them back.
    async fn native_clean(&self) {
        let leases = self.call("lease/leases", json!({})).await;
        for lease in leases["leases"].as_array().into_iter().flatten() {
            self.call("lease/revoke", json!({"ID": lease["ID"]})).await;
        }
        let mut ops = Vec::new();
        let mut from = vec![0u8];
        for (key, value) in BASELINE {
            ops.push(json!({"request_delete_range": {
                "key": BASE64.encode(&from), "range_end": BASE64.encode(key)}}));
            ops.push(json!({"request_put": {
                "key": BASE64.encode(key), "value": BASE64.encode(value)}}));
            from = [key.as_bytes(), &[0]].concat();
        }
        ops.push(json!({"request_delete_range": {
            "key": BASE64.encode(&from), "range_end": BASE64.encode([0u8])}}));
        self.call("kv/txn", json!({ "success": ops })).await;
    }

    /// Fails unless the store holds exactly the baseline and no lease.
    async fn assert_baseline(&self) {
        let range = self
            .call(
                "kv/range",
                json!({"key": BASE64.encode([0u8]), "range_end": BASE64.encode([0u8])}),
            )
            .await;
        let keys: Vec<(String, String)> = range["kvs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|kv| {
                let text = |v: &Value| {
                    String::from_utf8(BASE64.decode(v.as_str().unwrap()).unwrap()).unwrap()
                };
                (text(&kv["key"]), text(&kv["value"]))
            })
            .collect();
        let expected: Vec<(String, String)> = BASELINE
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(keys, expected, "not at the baseline");
        let leases = self.call("lease/leases", json!({})).await;
        assert!(leases["leases"].as_array().is_none_or(Vec::is_empty));
    }
}

/// Dirties the store, then times the plugin's clean().
async fn plugin_clean(fixture: &seaworthy_plugin::PluginFixture, gateway: Gateway) -> Duration {
    gateway.dirty().await;
    let started = Instant::now();
    fixture.clean().await.expect("the plugin's clean");
    started.elapsed()
}

fn main() {
    let mut suite = Suite::new("catalogue_plugins");
    let target = target_dir();
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    seaworthy_plugin::workspace::build(repo.join("plugins"), &target).expect("the plugins build");
    let host = PluginHost::builder()
        .search_dir(target.join("seaworthy-plugins"))
        .cache_dir(
            target
                .join("seaworthy-bench")
                .join("catalogue-plugin-cache"),
        )
        .grant("etcd", Grants::new().http(2379))
        .build()
        .expect("a plugin host");
    let definition: PluginFixtureDefinition = host
        .load("etcd")
        .expect("the etcd plugin loads")
        .fixture(BASELINE.map(|(k, v)| (format!("key.{k}"), v.to_string())))
        .expect("an etcd definition");

    let fixture = suite.block_on(definition.start()).expect("etcd starts");
    let gateway = Gateway {
        http: reqwest::Client::new(),
        base: format!(
            "http://{}/v3",
            fixture.container().address(2379).expect("published port")
        ),
    };
    // Warm both paths and check that each reaches the baseline.
    suite.block_on(async {
        for _ in 0..5 {
            gateway.dirty().await;
            fixture.clean().await.expect("the plugin's clean");
            gateway.assert_baseline().await;
            gateway.dirty().await;
            gateway.native_clean().await;
            gateway.assert_baseline().await;
        }
    });

    suite.compare(
        "etcd.clean_vs_native",
        "the same requests from the test process (reqwest)",
        100,
        || plugin_clean(&fixture, gateway.clone()),
        || {
            let gateway = gateway.clone();
            async move {
                gateway.dirty().await;
                let started = Instant::now();
                gateway.native_clean().await;
                started.elapsed()
            }
        },
    );
    suite.target(Target::RatioAtMost(1.3));

    suite.compare(
        "etcd.clean_vs_recreate",
        "a new etcd fixture started from the definition",
        10,
        || plugin_clean(&fixture, gateway.clone()),
        || {
            let definition = definition.clone();
            async move {
                let started = Instant::now();
                let fresh = definition.start().await.expect("a new etcd");
                let elapsed = started.elapsed();
                drop(fresh);
                elapsed
            }
        },
    );
    suite.target(Target::RatioAtMost(0.05));

    suite.block_on(async { gateway.assert_baseline().await });
    drop(fixture);
    suite.block_on(async {
        if let Ok(session) = seaworthy::Session::global().await {
            session.wait_for_background_removals(Duration::from_secs(30));
        }
    });
    suite.finish();
}
