//! A client of etcd's HTTP/JSON gateway (base64 keys and values), as a user without a gRPC
//! client would write it: shared by the etcd plugin's test binaries.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

/// A client of the gateway.
pub struct Gateway {
    http: reqwest::Client,
    base: String,
}

impl Gateway {
    pub fn new(address: &str) -> Gateway {
        Gateway {
            http: reqwest::Client::new(),
            base: format!("http://{address}/v3"),
        }
    }

    pub async fn call(&self, path: &str, body: Value) -> Result<Value> {
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        let status = response.status();
        let answer: Value = response.json().await?;
        ensure!(status.is_success(), "{path}: {status} {answer}");
        Ok(answer)
    }

    pub async fn put(&self, key: &str, value: &str, lease: Option<&Value>) -> Result<()> {
        let mut body = json!({"key": BASE64.encode(key), "value": BASE64.encode(value)});
        if let Some(lease) = lease {
            body["lease"] = lease.clone();
        }
        self.call("kv/put", body).await?;
        Ok(())
    }

    /// The keys and values under `prefix` (all keys for "").
    pub async fn keys(&self, prefix: &str) -> Result<BTreeMap<String, String>> {
        let (key, end) = if prefix.is_empty() {
            (vec![0u8], vec![0u8])
        } else {
            let mut end = prefix.as_bytes().to_vec();
            *end.last_mut().unwrap() += 1;
            (prefix.as_bytes().to_vec(), end)
        };
        let answer = self
            .call(
                "kv/range",
                json!({"key": BASE64.encode(key), "range_end": BASE64.encode(end)}),
            )
            .await?;
        let text = |v: &Value| String::from_utf8(BASE64.decode(v.as_str().unwrap_or("")).unwrap());
        let mut found = BTreeMap::new();
        for kv in answer["kvs"].as_array().into_iter().flatten() {
            found.insert(text(&kv["key"])?, text(&kv["value"])?);
        }
        Ok(found)
    }

    pub async fn grant(&self, ttl: u64) -> Result<Value> {
        Ok(self.call("lease/grant", json!({"TTL": ttl})).await?["ID"].clone())
    }

    pub async fn leases(&self) -> Result<Vec<Value>> {
        let answer = self.call("lease/leases", json!({})).await?;
        Ok(answer["leases"]
            .as_array()
            .map(|l| l.iter().map(|lease| lease["ID"].clone()).collect())
            .unwrap_or_default())
    }
}
