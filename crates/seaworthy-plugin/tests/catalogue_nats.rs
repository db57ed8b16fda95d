//! The NATS (JetStream) plugin against the real server: each kind of JetStream state its
//! `clean()` covers (streams and their messages, consumers, KV buckets, object stores) back to
//! the baseline, a server without JetStream state, and eight parallel tests in their own
//! namespaces.
//!
//! The test's client is written here against the NATS protocol and JetStream's API subjects
//! (what the `nats` CLI and the client libraries send), apart from the plugin's.

mod catalogue;
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use seaworthy::{Fixture, Shared};
use seaworthy_plugin::{Grants, PluginFixtureDefinition, PluginHost};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn host() -> PluginHost {
    catalogue::host("nats", Grants::new().tcp(4222))
}

fn nats() -> PluginFixtureDefinition {
    host()
        .load("nats")
        .expect("the nats plugin loads")
        .fixture(Vec::<(String, String)>::new())
        .expect("a nats definition")
}

static NATS: Shared<PluginFixtureDefinition> = Shared::per_process(nats);

/// A minimal NATS client: request/reply over one inbox subscription.
struct Client {
    stream: BufReader<TcpStream>,
    inbox: String,
    next: u64,
}

impl Client {
    async fn connect(address: &str) -> Result<Client> {
        static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
        let mut stream = BufReader::new(TcpStream::connect(address).await?);
        let mut info = String::new();
        stream.read_line(&mut info).await?;
        ensure!(info.starts_with("INFO "), "greeted with {info:?}");
        let inbox = format!(
            "_INBOX.test.{}.{}",
            std::process::id(),
            CONNECTIONS.fetch_add(1, Ordering::SeqCst)
        );
        let hello = format!(
            "CONNECT {}\r\nSUB {inbox}.* 1\r\nPING\r\n",
            json!({"verbose": false, "protocol": 1, "headers": true, "no_responders": true})
        );
        stream.get_mut().write_all(hello.as_bytes()).await?;
        let mut client = Client {
            stream,
            inbox,
            next: 0,
        };
        while client.line().await? != "PONG" {}
        Ok(client)
    }

    async fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read_line(&mut line))
            .await
            .context("nothing from the server within 5 s")??;
        ensure!(n > 0, "the server closed the connection");
        Ok(line.trim_end().to_string())
    }

    /// Publishes `body` to `subject` with a reply subject and returns the reply's JSON.
    async fn request(&mut self, subject: &str, body: &[u8]) -> Result<Value> {
        self.next += 1;
        let reply = format!("{}.{}", self.inbox, self.next);
        let mut out = format!("PUB {subject} {reply} {}\r\n", body.len()).into_bytes();
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
        self.stream.get_mut().write_all(&out).await?;
        loop {
            let line = self.line().await?;
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.first().copied() {
                Some("MSG") | Some("HMSG") => {
                    let total: usize = words.last().unwrap().parse()?;
                    let headers: usize = if words[0] == "HMSG" {
                        words[words.len() - 2].parse()?
                    } else {
                        0
                    };
                    let mut data = vec![0; total + 2];
                    self.stream.read_exact(&mut data).await?;
                    if words[1] != reply {
                        continue;
                    }
                    let payload = &data[headers..total];
                    if payload.is_empty() {
                        bail!(
                            "{subject}: an empty answer ({})",
                            String::from_utf8_lossy(&data[..headers]).trim()
                        );
                    }
                    return Ok(serde_json::from_slice(payload)?);
                }
                Some("PING") => self.stream.get_mut().write_all(b"PONG\r\n").await?,
                Some("-ERR") => bail!("{line}"),
                _ => {}
            }
        }
    }

    /// A JetStream API call that must succeed.
    async fn api(&mut self, subject: &str, body: Value) -> Result<Value> {
        let answer = self.request(subject, body.to_string().as_bytes()).await?;
        ensure!(answer.get("error").is_none(), "{subject}: {answer}");
        Ok(answer)
    }

    /// The names of every stream.
    async fn streams(&mut self) -> Result<Vec<String>> {
        let answer = self.api("$JS.API.STREAM.NAMES", json!({})).await?;
        Ok(serde_json::from_value(answer["streams"].clone()).unwrap_or_default())
    }

    /// The account's JetStream usage: (streams, consumers).
    async fn usage(&mut self) -> Result<(u64, u64)> {
        let info = self.api("$JS.API.INFO", json!({})).await?;
        Ok((
            info["streams"].as_u64().unwrap_or(u64::MAX),
            info["consumers"].as_u64().unwrap_or(u64::MAX),
        ))
    }

    async fn create_stream(&mut self, name: &str, config: Value) -> Result<()> {
        let mut config = config;
        config["name"] = json!(name);
        config["storage"] = json!("file");
        self.api(&format!("$JS.API.STREAM.CREATE.{name}"), config)
            .await?;
        Ok(())
    }

    /// Publishes to a stream's subject and waits for JetStream's ack.
    async fn publish(&mut self, subject: &str, payload: &str) -> Result<()> {
        let ack = self.request(subject, payload.as_bytes()).await?;
        ensure!(ack.get("seq").is_some(), "no ack for {subject}: {ack}");
        Ok(())
    }
}

/// A fresh fixture (this test's alone, at its baseline) and a client of it, checked empty.
async fn fresh() -> Result<(
    seaworthy::ExclusiveGuard<seaworthy_plugin::PluginFixture>,
    Client,
)> {
    let fixture = NATS.fresh().await?;
    assert_eq!(fixture.connection().scheme, "nats");
    let mut client = Client::connect(&fixture.container().address(4222)?).await?;
    assert_eq!(client.usage().await?, (0, 0), "the baseline has no state");
    Ok((fixture, client))
}

#[tokio::test]
async fn nats_clean_deletes_streams_and_their_messages() -> Result<()> {
    let (fixture, mut client) = fresh().await?;
    client
        .create_stream("orders", json!({"subjects": ["orders.>"]}))
        .await?;
    client
        .create_stream(
            "audit",
            json!({"subjects": ["audit"], "retention": "workqueue"}),
        )
        .await?;
    for i in 0..10 {
        client.publish("orders.new", &format!("order {i}")).await?;
    }
    let info = client.api("$JS.API.STREAM.INFO.orders", json!({})).await?;
    assert_eq!(info["state"]["messages"], 10);
    fixture.clean().await?;
    assert!(client.streams().await?.is_empty());
    assert_eq!(client.usage().await?, (0, 0));
    // The subjects are free again: nothing captures a publish (no responders).
    let error = client.publish("orders.new", "late").await.unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");
    Ok(())
}

#[tokio::test]
async fn nats_clean_deletes_consumers() -> Result<()> {
    let (fixture, mut client) = fresh().await?;
    client
        .create_stream("jobs", json!({"subjects": ["jobs.>"]}))
        .await?;
    client
        .api(
            "$JS.API.CONSUMER.DURABLE.CREATE.jobs.worker",
            json!({"stream_name": "jobs", "config": {"durable_name": "worker", "ack_policy": "explicit"}}),
        )
        .await?;
    client
        .api(
            "$JS.API.CONSUMER.CREATE.jobs",
            json!({"stream_name": "jobs", "config": {"ack_policy": "none", "inactive_threshold": 60_000_000_000u64}}),
        )
        .await?;
    assert_eq!(client.usage().await?, (1, 2));
    fixture.clean().await?;
    assert_eq!(client.usage().await?, (0, 0));
    let info = client
        .request("$JS.API.CONSUMER.INFO.jobs.worker", b"")
        .await?;
    assert!(info.get("error").is_some(), "{info}");
    Ok(())
}

#[tokio::test]
async fn nats_clean_deletes_kv_buckets() -> Result<()> {
    let (fixture, mut client) = fresh().await?;
    // A KV bucket as the client libraries make one: stream KV_<bucket> on $KV.<bucket>.>.
    client
        .create_stream(
            "KV_settings",
            json!({"subjects": ["$KV.settings.>"], "max_msgs_per_subject": 1,
                   "allow_rollup_hdrs": true, "deny_delete": true, "discard": "new"}),
        )
        .await?;
    client.publish("$KV.settings.mode", "fast").await?;
    let got = client
        .api(
            "$JS.API.STREAM.MSG.GET.KV_settings",
            json!({"last_by_subj": "$KV.settings.mode"}),
        )
        .await?;
    assert!(got["message"]["data"].is_string(), "{got}");
    fixture.clean().await?;
    let gone = client
        .request(
            "$JS.API.STREAM.MSG.GET.KV_settings",
            json!({"last_by_subj": "$KV.settings.mode"})
                .to_string()
                .as_bytes(),
        )
        .await?;
    assert_eq!(gone["error"]["err_code"], 10059, "{gone}");
    assert_eq!(client.usage().await?, (0, 0));
    Ok(())
}

#[tokio::test]
async fn nats_clean_deletes_object_stores() -> Result<()> {
    let (fixture, mut client) = fresh().await?;
    // An object store: stream OBJ_<bucket> with chunks on $O.<bucket>.C.> and metadata on
    // $O.<bucket>.M.>.
    client
        .create_stream(
            "OBJ_files",
            json!({"subjects": ["$O.files.C.>", "$O.files.M.>"], "allow_rollup_hdrs": true,
                   "discard": "new"}),
        )
        .await?;
    client.publish("$O.files.C.nuid1", "chunk").await?;
    client.publish("$O.files.M.cmVwb3J0", "{}").await?;
    assert_eq!(client.streams().await?, ["OBJ_files"]);
    fixture.clean().await?;
    assert!(client.streams().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn nats_isolates_eight_parallel_tests_by_name_and_subject_prefix() -> Result<()> {
    let namespaces = catalogue::eight_parallel(|n| async move {
        let isolated = NATS.isolated().await?;
        let ns = isolated.namespace().to_string();
        let address = isolated.fixture().container().address(4222)?;
        let mut client = Client::connect(&address).await?;
        let mine = client
            .api(
                "$JS.API.STREAM.NAMES",
                json!({"subject": format!("{ns}.>")}),
            )
            .await?;
        ensure!(
            mine["total"] == 0,
            "{ns}: streams left by an earlier holder: {mine}"
        );
        let stream = format!("{ns}_orders");
        client
            .create_stream(&stream, json!({"subjects": [format!("{ns}.orders.>")]}))
            .await?;
        client
            .create_stream(
                &format!("KV_{ns}_settings"),
                json!({"subjects": [format!("$KV.{ns}_settings.>")], "max_msgs_per_subject": 1}),
            )
            .await?;
        for i in 0..=n {
            client
                .publish(&format!("{ns}.orders.new"), &format!("{n}.{i}"))
                .await?;
        }
        let info = client
            .api(&format!("$JS.API.STREAM.INFO.{stream}"), json!({}))
            .await?;
        ensure!(
            info["state"]["messages"] == n + 1,
            "{ns}: its stream holds {} messages, not its own {}",
            info["state"]["messages"],
            n + 1
        );
        Ok((ns, address))
    })
    .await;

    // Released in the background: each namespace's streams are deleted.
    let mut client = Client::connect(&namespaces[0].1).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = client
            .streams()
            .await?
            .into_iter()
            .filter(|s| namespaces.iter().any(|(ns, _)| s.contains(ns.as_str())))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "not released: {left:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
