//! A Seaworthy fixture plugin for etcd, spoken to only through its HTTP/JSON gateway (the
//! gRPC API mapped to `POST /v3/<service>/<call>` with JSON bodies and base64 keys and values)
//! with the host's `http` capability on port 2379: no TCP protocol of its own.
//!
//! Configuration (all optional):
//!
//! | key          | default                                | meaning                                  |
//! |--------------|----------------------------------------|------------------------------------------|
//! | `image`      | `gcr.io/etcd-development/etcd:v3.5.17` | image with `etcd` on its path (substitution applies) |
//! | `key.<name>` | none                                   | a key of the baseline: `<name>` holds this value (no lease) after every `clean()` |
//!
//! Readiness: `/health` answers 200, then a `/v3/kv/range` answers without an error. On a store
//! never written to (revision 1: the fixture's start) the baseline's keys are put then, as the
//! host hands a just-started fixture out without a `clean()`.
//!
//! Clean, back to the baseline:
//! * **leases**: every lease (`/v3/lease/leases`) is revoked (`/v3/lease/revoke`), which also
//!   deletes the keys attached to it;
//! * **keys**: one transaction (`/v3/kv/txn`) deletes every range between the baseline's keys
//!   and puts each baseline key's value, so the store holds exactly the baseline (etcd refuses
//!   a delete and a put of the same key in one transaction, hence the ranges around them). The
//!   revision moves forward: a clean is a write, and old revisions stay readable until etcd
//!   compacts them.
//! * **watches** are streams of a client's own gRPC connection: they end with it, and etcd has
//!   no call to list or cancel another client's watches, so there is nothing a fixture could (or
//!   must) clean; a test that leaves a client running keeps its watches until it drops it.
//!
//! Users, roles and authentication are not touched (the fixture never enables auth).
//!
//! Isolation: 64 namespaces `seaworthy-<slot>`; a test keeps to its namespace by starting its
//! keys with `<namespace>/`. Release revokes the leases whose keys all lie under that prefix
//! (a lease is etcd-wide; one without keys is left alone, it may be another test's) and
//! deletes the prefix's keys, putting back baseline keys under it. etcd does not enforce it.

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "../../wit/0.1.0",
});

use std::collections::BTreeMap;

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host::{self, HostError, HttpRequest};
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, HttpWait, Isolated, PluginMetadata, Wait,
};
use serde_json::{json, Value};

/// The client port (gRPC and the HTTP/JSON gateway).
const PORT: u16 = 2379;
/// Per request.
const TIMEOUT_MS: u32 = 10_000;
/// The default image.
const IMAGE: &str = "gcr.io/etcd-development/etcd:v3.5.17";
/// How many isolated namespaces there are.
const SLOTS: u32 = 64;
/// The prefix of the configuration keys naming baseline keys.
const KEY: &str = "key.";

struct Etcd;

fn namespace(slot: u32) -> String {
    format!("seaworthy-{slot}")
}

/// The baseline's keys (`key.<name>` configuration keys).
fn baseline(config: &Config) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, FixtureError> {
    let mut keys = BTreeMap::new();
    for (key, value) in config {
        if let Some(name) = key.strip_prefix(KEY) {
            if name.is_empty() {
                return Err(FixtureError::InvalidConfig(format!(
                    "`{key}`: the key's name is empty"
                )));
            }
            keys.insert(name.as_bytes().to_vec(), value.as_bytes().to_vec());
        }
    }
    Ok(keys)
}

// --- base64 (the gateway's encoding of bytes) -----------------------------------------------------

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut n) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = bits << 6 | value;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

// --- the gateway ----------------------------------------------------------------------------------

/// `POST /v3/<call>` with a JSON body; the JSON answer, or the gateway's error.
fn call(path: &str, body: &Value) -> Result<Value, FixtureError> {
    let response = host::http(&HttpRequest {
        method: "POST".into(),
        port: PORT,
        path: format!("/v3/{path}"),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
        timeout_ms: Some(TIMEOUT_MS),
    })
    .map_err(FixtureError::Host)?;
    let answer: Value = serde_json::from_slice(&response.body).map_err(|e| {
        FixtureError::Failed(format!(
            "/v3/{path} answered {} with no JSON ({e}): {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        ))
    })?;
    if response.status != 200 || answer.get("error").is_some() {
        let message = answer["message"]
            .as_str()
            .or_else(|| answer["error"].as_str())
            .unwrap_or("?");
        return Err(FixtureError::Failed(format!(
            "/v3/{path} answered {}: {message}",
            response.status
        )));
    }
    Ok(answer)
}

/// Every lease's ID (as the gateway writes int64s: strings).
fn leases() -> Result<Vec<Value>, FixtureError> {
    let answer = call("lease/leases", &json!({}))?;
    Ok(answer["leases"]
        .as_array()
        .map(|l| l.iter().map(|lease| lease["ID"].clone()).collect())
        .unwrap_or_default())
}

fn revoke(id: &Value) -> Result<(), FixtureError> {
    match call("lease/revoke", &json!({ "ID": id })) {
        // Expired or revoked meanwhile.
        Err(FixtureError::Failed(m)) if m.contains("lease not found") => Ok(()),
        other => other.map(drop),
    }
}

/// The keys attached to lease `id`.
fn lease_keys(id: &Value) -> Result<Vec<Vec<u8>>, FixtureError> {
    let answer = call("lease/timetolive", &json!({ "ID": id, "keys": true }))?;
    Ok(answer["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.as_str().and_then(unbase64))
                .collect()
        })
        .unwrap_or_default())
}

/// The first key after every key starting with `prefix` (etcd's `range_end` for a prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

/// Puts the keys in `[start, end)` back to `baseline` (its keys in that range) in one
/// transaction: deletes of the ranges around the baseline's keys, then puts of them. An empty
/// `end` means up to the last key.
fn reset_range(
    start: &[u8],
    end: &[u8],
    baseline: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), FixtureError> {
    let mut ops = Vec::new();
    let mut from = start.to_vec();
    let delete = |from: &[u8], to: &[u8]| json!({"request_delete_range": {"key": base64(from), "range_end": base64(to)}});
    for (key, value) in baseline {
        if key.as_slice() > from.as_slice() {
            ops.push(delete(&from, key));
        }
        ops.push(json!({"request_put": {"key": base64(key), "value": base64(value)}}));
        from = key.clone();
        from.push(0);
    }
    // A range_end of "\0" means "to the last key".
    let to = if end.is_empty() {
        vec![0]
    } else {
        end.to_vec()
    };
    if end.is_empty() || from.as_slice() < end {
        ops.push(delete(&from, &to));
    }
    call("kv/txn", &json!({ "success": ops }))?;
    Ok(())
}

impl Guest for Etcd {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "etcd".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "etcd; clean() revokes the leases and puts the keys back to the baseline through the HTTP/JSON gateway".into(),
        }
    }

    fn definition(config: Config) -> Result<ContainerSpec, FixtureError> {
        for (key, _) in &config {
            if key != "image" && !key.starts_with(KEY) {
                return Err(FixtureError::InvalidConfig(format!(
                    "unknown key `{key}` (known: image, key.<name>)"
                )));
            }
        }
        baseline(&config)?;
        let image = config
            .iter()
            .rev()
            .find(|(k, _)| k == "image")
            .map_or(IMAGE, |(_, v)| v.as_str());
        Ok(ContainerSpec {
            image: image.into(),
            env: Vec::new(),
            cmd: Some(
                [
                    "etcd",
                    "--listen-client-urls",
                    "http://0.0.0.0:2379",
                    "--advertise-client-urls",
                    "http://127.0.0.1:2379",
                ]
                .map(String::from)
                .to_vec(),
            ),
            entrypoint: None,
            user: None,
            ports: vec![PORT],
            mounts: Vec::new(),
            waits: vec![Wait::Http(HttpWait {
                port: PORT,
                path: "/health".into(),
                status: Some(200),
            })],
            startup_timeout_ms: None,
        })
    }

    fn ready(config: Config) -> Result<bool, FixtureError> {
        match call(
            "kv/range",
            &json!({"key": base64(b"\0"), "count_only": true}),
        ) {
            // Revision 1: nothing was ever written, this is the fixture's start. The host hands
            // a fixture out as it started, so the baseline's keys are put now (and only now: a
            // later readiness check must not touch a test's data).
            Ok(answer) if answer["header"]["revision"].as_str() == Some("1") => {
                let baseline = baseline(&config)?;
                if !baseline.is_empty() {
                    reset_range(&[0], &[], &baseline)?;
                }
                Ok(true)
            }
            Ok(_) => Ok(true),
            Err(FixtureError::Host(HostError::Denied(why))) => {
                Err(FixtureError::Host(HostError::Denied(why)))
            }
            Err(_) => Ok(false),
        }
    }

    fn clean(config: Config) -> Result<(), FixtureError> {
        let baseline = baseline(&config)?;
        for id in leases()? {
            revoke(&id)?;
        }
        reset_range(&[0], &[], &baseline)
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        Some(ConnectionInfo {
            scheme: "http".into(),
            port: PORT,
            user: None,
            password: None,
            path: None,
            params: Vec::new(),
        })
    }

    fn isolation_slots(_config: Config) -> u32 {
        SLOTS
    }

    fn isolate(_config: Config, slot: u32) -> Result<Isolated, FixtureError> {
        if slot >= SLOTS {
            return Err(FixtureError::Failed(format!(
                "no namespace for slot {slot}"
            )));
        }
        Ok(Isolated {
            namespace: namespace(slot),
            connection: None,
        })
    }

    fn release(config: Config, slot: u32) -> Result<(), FixtureError> {
        let prefix = format!("{}/", namespace(slot)).into_bytes();
        for id in leases()? {
            let keys = lease_keys(&id)?;
            if !keys.is_empty() && keys.iter().all(|k| k.starts_with(&prefix)) {
                revoke(&id)?;
            }
        }
        let baseline = baseline(&config)?
            .into_iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .collect();
        reset_range(&prefix, &prefix_end(&prefix), &baseline)
    }
}

export!(Etcd);
