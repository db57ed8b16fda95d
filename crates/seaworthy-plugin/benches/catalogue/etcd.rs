//! `etcd.*` of the `catalogue` suite. Each run first dirties the store the same way (not
//! timed): 20 keys written, 2 leases granted with 5 keys each, a baseline key changed. Then:
//!
//! * `etcd.clean_vs_native`: the etcd plugin's clean() (every lease revoked, one transaction
//!   putting the keys back to the two-key baseline, through the host's HTTP capability) against
//!   the same requests sent from the test process with reqwest over a kept connection pool to
//!   the gateway. Target ratio ≤ 1.3.
//! * `etcd.clean_vs_recreate`: the same clean() against starting a new etcd fixture from the
//!   definition (container created, started, healthy, ready, baseline written); the old
//!   container's removal is not counted, which favours the baseline. Target ratio ≤ 0.05.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use seaworthy::Fixture;
use seaworthy_benchkit::Suite;
use seaworthy_plugin::PluginHost;
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

    async fn put(&self, key: &str, value: &str, lease: Option<&Value>) {
        let mut body = json!({"key": BASE64.encode(key), "value": BASE64.encode(value)});
        if let Some(lease) = lease {
            body["lease"] = lease.clone();
        }
        self.call("kv/put", body).await;
    }
}

/// Adds the `etcd.*` results to `suite`.
pub fn run(suite: &mut Suite, host: &PluginHost) {
    let config = BASELINE.map(|(k, v)| (format!("key.{k}"), v.to_string()));
    crate::bench_plugin(suite, host, "etcd", config, 100, |_, fixture| {
        let address = fixture.container().address(2379).expect("published port");
        (
            "the same requests from the test process (reqwest)",
            Gateway {
                http: reqwest::Client::new(),
                base: format!("http://{address}/v3"),
            },
        )
    });
}

impl crate::Store for Gateway {
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
