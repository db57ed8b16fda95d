//! The Mosquitto (MQTT) plugin against the real broker: each kind of state its `clean()` covers
//! (retained messages, persistent sessions with their subscriptions and queued messages) put
//! back to the exact baseline, and eight parallel tests in their own namespaces.
//!
//! The test's MQTT client is written here against the MQTT 3.1.1 specification (a few packets),
//! apart from the plugin's: what the broker tells an ordinary client is what is checked.

mod catalogue;
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use seaworthy::{Fixture, Shared};
use seaworthy_plugin::{
    Grants, PluginFixtureDefinition, PluginHost, WitVersion, SUPPORTED_WIT_VERSIONS,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The baseline: one retained message.
const BASELINE_TOPIC: &str = "config/mode";
const BASELINE_PAYLOAD: &str = "baseline";

fn host() -> PluginHost {
    catalogue::host("mosquitto", Grants::new().tcp(1883))
}

fn mosquitto() -> PluginFixtureDefinition {
    host()
        .load("mosquitto")
        .expect("the mosquitto plugin loads")
        .fixture([(
            format!("retained.{BASELINE_TOPIC}"),
            BASELINE_PAYLOAD.to_string(),
        )])
        .expect("a mosquitto definition")
}

static MOSQUITTO: Shared<PluginFixtureDefinition> = Shared::per_process(mosquitto);

/// A message a client received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    topic: String,
    payload: String,
    retain: bool,
}

/// A minimal MQTT 3.1.1 client.
struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
    next_id: u16,
}

fn encode(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            return out.into_iter().chain(body.iter().copied()).collect();
        }
    }
}

fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

impl Client {
    /// Connects as `id`; returns the client and the CONNACK's session-present flag.
    async fn connect(address: &str, id: &str, clean_session: bool) -> Result<(Client, bool)> {
        Client::connect_with_will(address, id, clean_session, None).await
    }

    /// Connects as `id` with `will` (a topic and payload, published retained when the broker
    /// drops the connection without a DISCONNECT), if any.
    async fn connect_with_will(
        address: &str,
        id: &str,
        clean_session: bool,
        will: Option<(&str, &str)>,
    ) -> Result<(Client, bool)> {
        let stream = TcpStream::connect(address).await?;
        let mut client = Client {
            stream,
            buffer: Vec::new(),
            next_id: 1,
        };
        let mut body = string("MQTT");
        let mut flags = if clean_session { 0x02 } else { 0 };
        if will.is_some() {
            flags |= 0x04 | 0x20; // a will, retained, QoS 0
        }
        body.extend_from_slice(&[4, flags, 0, 60]);
        body.extend(string(id));
        if let Some((topic, payload)) = will {
            body.extend(string(topic));
            body.extend(string(payload));
        }
        client.stream.write_all(&encode(0x10, &body)).await?;
        let (first, body) = client.packet().await?;
        ensure!(
            first == 0x20 && body.len() == 2,
            "not a CONNACK: {first:#x}"
        );
        ensure!(body[1] == 0, "connection of `{id}` refused: {}", body[1]);
        Ok((client, body[0] & 1 == 1))
    }

    async fn packet(&mut self) -> Result<(u8, Vec<u8>)> {
        loop {
            let mut len = 0usize;
            let mut header = None;
            for (i, b) in self.buffer.iter().skip(1).take(4).enumerate() {
                len |= usize::from(b & 0x7F) << (7 * i);
                if b & 0x80 == 0 {
                    header = Some(i + 2);
                    break;
                }
            }
            if let Some(start) = header.filter(|s| self.buffer.len() >= s + len) {
                let first = self.buffer[0];
                let body = self.buffer[start..start + len].to_vec();
                self.buffer.drain(..start + len);
                return Ok((first, body));
            }
            let mut chunk = [0u8; 16 << 10];
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
                .await
                .context("the broker sent nothing within 5 s")??;
            if n == 0 {
                bail!("the broker closed the connection");
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    fn id(&mut self) -> [u8; 2] {
        self.next_id += 1;
        self.next_id.to_be_bytes()
    }

    async fn subscribe(&mut self, filter: &str, qos: u8) -> Result<()> {
        let mut body = self.id().to_vec();
        body.extend(string(filter));
        body.push(qos);
        self.stream.write_all(&encode(0x82, &body)).await?;
        loop {
            let (first, body) = self.packet().await?;
            if first == 0x90 {
                ensure!(body.get(2).is_some_and(|c| *c < 0x80), "SUBACK refused");
                return Ok(());
            }
        }
    }

    /// Publishes (QoS 0 or 1; for QoS 1, waits for the PUBACK).
    async fn publish(&mut self, topic: &str, payload: &str, qos: u8, retain: bool) -> Result<()> {
        let mut body = string(topic);
        if qos > 0 {
            body.extend_from_slice(&self.id());
        }
        body.extend_from_slice(payload.as_bytes());
        let first = 0x30 | (qos << 1) | u8::from(retain);
        self.stream.write_all(&encode(first, &body)).await?;
        if qos > 0 {
            while self.packet().await?.0 != 0x40 {}
        }
        Ok(())
    }

    /// Sends PINGREQ and returns the messages received up to the PINGRESP (acknowledged).
    async fn ping(&mut self) -> Result<Vec<Message>> {
        self.stream.write_all(&[0xC0, 0]).await?;
        let mut messages = Vec::new();
        loop {
            let (first, body) = self.packet().await?;
            match first & 0xF0 {
                0xD0 => return Ok(messages),
                0x30 => {
                    let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                    let topic = String::from_utf8(body[2..2 + len].to_vec())?;
                    let qos = (first >> 1) & 3;
                    let mut at = 2 + len;
                    if qos > 0 {
                        let id = [body[at], body[at + 1]];
                        at += 2;
                        self.stream.write_all(&encode(0x40, &id)).await?;
                    }
                    messages.push(Message {
                        topic,
                        payload: String::from_utf8(body[at..].to_vec())?,
                        retain: first & 1 == 1,
                    });
                }
                _ => {}
            }
        }
    }

    async fn disconnect(mut self) -> Result<()> {
        self.stream.write_all(&[0xE0, 0]).await?;
        Ok(())
    }
}

/// The retained messages under `filter`, as a new subscriber gets them.
async fn retained(address: &str, filter: &str) -> Result<BTreeMap<String, String>> {
    let (mut client, _) = Client::connect(address, "", true).await?;
    client.subscribe(filter, 0).await?;
    let found = client
        .ping()
        .await?
        .into_iter()
        .filter(|m| m.retain)
        .map(|m| (m.topic, m.payload))
        .collect();
    client.disconnect().await?;
    Ok(found)
}

fn baseline() -> BTreeMap<String, String> {
    BTreeMap::from([(BASELINE_TOPIC.to_string(), BASELINE_PAYLOAD.to_string())])
}

#[tokio::test]
async fn mosquitto_clean_puts_retained_messages_back_to_the_baseline() -> Result<()> {
    let fixture = MOSQUITTO.fresh().await?;
    assert_eq!(fixture.connection().scheme, "mqtt");
    let address = fixture.container().address(1883)?;
    assert_eq!(
        retained(&address, "#").await?,
        baseline(),
        "a fresh fixture holds the baseline"
    );

    // New retained topics (QoS 0 and 1, deep and shallow), the baseline's overwritten...
    let (mut client, _) = Client::connect(&address, "writer", true).await?;
    client.publish("sensors/1/temp", "21.5", 1, true).await?;
    client.publish("top", "x", 0, true).await?;
    client
        .publish(BASELINE_TOPIC, "changed by the test", 1, true)
        .await?;
    client.ping().await?;
    let dirty = retained(&address, "#").await?;
    assert_eq!(dirty.len(), 3, "{dirty:?}");
    fixture.clean().await?;
    assert_eq!(retained(&address, "#").await?, baseline());

    // ... and the baseline's deleted (an empty retained message).
    client.publish(BASELINE_TOPIC, "", 1, true).await?;
    client.ping().await?;
    assert!(retained(&address, "#").await?.is_empty());
    fixture.clean().await?;
    assert_eq!(retained(&address, "#").await?, baseline());
    client.disconnect().await?;
    Ok(())
}

#[tokio::test]
async fn mosquitto_clean_discards_persistent_sessions_their_subscriptions_and_queues() -> Result<()>
{
    let fixture = MOSQUITTO.fresh().await?;
    let address = fixture.container().address(1883)?;

    // A persistent session with a QoS 1 subscription, offline, with a message queued for it.
    let (mut keeper, present) = Client::connect(&address, "keeper", false).await?;
    assert!(!present);
    keeper.subscribe("jobs/#", 1).await?;
    keeper.disconnect().await?;
    let (mut publisher, _) = Client::connect(&address, "publisher", true).await?;
    publisher.publish("jobs/1", "queued", 1, false).await?;
    // A second persistent client still connected at clean time.
    let (mut online, _) = Client::connect(&address, "online-worker", false).await?;
    online.subscribe("jobs/#", 1).await?;
    online.ping().await?;

    fixture.clean().await?;

    for id in ["keeper", "online-worker"] {
        let (mut client, present) = Client::connect(&address, id, false).await?;
        assert!(!present, "the session of `{id}` survived clean()");
        let queued = client.ping().await?;
        assert!(queued.is_empty(), "`{id}` still got {queued:?}");
        // No subscription either: a new message on the old filter does not reach it.
        publisher.publish("jobs/2", "after", 1, false).await?;
        publisher.ping().await?;
        let got = client.ping().await?;
        assert!(got.is_empty(), "`{id}` is still subscribed: {got:?}");
        client.disconnect().await?;
    }
    // The baseline is untouched by the session clean-up, and the clients' sessions made above
    // are removed by the next clean (the one of the next fresh()).
    assert_eq!(retained(&address, "#").await?, baseline());
    publisher.disconnect().await?;
    Ok(())
}

#[tokio::test]
async fn mosquitto_clean_removes_the_retained_will_of_a_session_it_takes_over() -> Result<()> {
    let fixture = MOSQUITTO.fresh().await?;
    let address = fixture.container().address(1883)?;
    // A persistent client still connected at clean time, with a retained will: discarding its
    // session takes the connection over, and the broker publishes the will.
    let (mut online, _) = Client::connect_with_will(
        &address,
        "will-keeper",
        false,
        Some(("status/will-keeper", "gone")),
    )
    .await?;
    online.subscribe("jobs/#", 1).await?;
    online.ping().await?;
    assert_eq!(retained(&address, "#").await?, baseline());

    fixture.clean().await?;

    assert_eq!(
        retained(&address, "#").await?,
        baseline(),
        "the will published by the take-over was left behind"
    );
    let (client, present) = Client::connect(&address, "will-keeper", false).await?;
    assert!(!present, "the session of `will-keeper` survived clean()");
    client.disconnect().await?;
    drop(online);
    Ok(())
}

#[tokio::test]
async fn mosquitto_clean_discards_a_session_behind_many_later_connections() -> Result<()> {
    let fixture = MOSQUITTO.fresh().await?;
    let address = fixture.container().address(1883)?;
    fixture.clean().await?;
    // A persistent session, then many connections (three log lines each, 180 lines): clean()
    // must still find the session among them in the broker's log.
    let (mut early, _) = Client::connect(&address, "early-worker", false).await?;
    early.subscribe("jobs/#", 1).await?;
    early.disconnect().await?;
    for i in 0..60 {
        Client::connect(&address, &format!("passer-{i}"), true)
            .await?
            .0
            .disconnect()
            .await?;
    }

    fixture.clean().await?;

    let (client, present) = Client::connect(&address, "early-worker", false).await?;
    assert!(!present, "the session of `early-worker` survived clean()");
    client.disconnect().await?;
    Client::connect(&address, "early-worker", true)
        .await?
        .0
        .disconnect()
        .await?;
    Ok(())
}

#[tokio::test]
async fn mosquitto_isolates_eight_parallel_tests_by_topic_and_client_prefix() -> Result<()> {
    let namespaces = catalogue::eight_parallel(|n| async move {
        let isolated = MOSQUITTO.isolated().await?;
        let ns = isolated.namespace().to_string();
        let address = isolated.fixture().container().address(1883)?;
        // A persistent subscriber and retained state, all under the namespace.
        let (mut sub, present) =
            Client::connect(&address, &format!("{ns}/subscriber"), false).await?;
        ensure!(!present, "{ns}: a session left by an earlier holder");
        sub.subscribe(&format!("{ns}/#"), 1).await?;
        let (mut publisher, _) = Client::connect(&address, &format!("{ns}/p"), true).await?;
        publisher
            .publish(&format!("{ns}/state"), &format!("test {n}"), 1, true)
            .await?;
        for i in 0..5 {
            publisher
                .publish(&format!("{ns}/events"), &format!("{n}.{i}"), 1, false)
                .await?;
        }
        publisher.ping().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut got = sub.ping().await?;
        got.extend(sub.ping().await?);
        let expected: Vec<String> = std::iter::once(format!("test {n}"))
            .chain((0..5).map(|i| format!("{n}.{i}")))
            .collect();
        let payloads: Vec<String> = got.iter().map(|m| m.payload.clone()).collect();
        ensure!(
            payloads == expected,
            "{ns} saw {got:?}, expected only its own {expected:?}"
        );
        ensure!(
            retained(&address, &format!("{ns}/#")).await?
                == BTreeMap::from([(format!("{ns}/state"), format!("test {n}"))]),
            "{ns}: retained state of another test"
        );
        sub.disconnect().await?;
        publisher.disconnect().await?;
        Ok((ns, address))
    })
    .await;

    // Released in the background: each namespace's retained messages and sessions are gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    for (ns, address) in &namespaces {
        while !retained(address, &format!("{ns}/#")).await?.is_empty() {
            assert!(Instant::now() < deadline, "{ns} was not released");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let id = format!("{ns}/subscriber");
        let (client, present) = Client::connect(address, &id, false).await?;
        assert!(!present, "{ns}: the session survived the release");
        client.disconnect().await?;
        // The check made a session: gone again with a clean-session connection.
        Client::connect(address, &id, true)
            .await?
            .0
            .disconnect()
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn mosquitto_refuses_a_bad_baseline_naming_the_key() {
    let error = host()
        .load("mosquitto")
        .unwrap()
        .fixture([("retained.sensors/#", "1")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("plugin `mosquitto`"), "{error}");
    assert!(error.contains("`retained.sensors/#`"), "{error}");
    let error = host()
        .load("mosquitto")
        .unwrap()
        .fixture([("colour", "blue")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown key `colour`"), "{error}");
}

#[test]
fn one_host_runs_plugins_of_wit_0_1_0_and_0_1_1() {
    // Mosquitto targets 0.1.1 (it follows the broker's log); NATS stays on 0.1.0. Both load in
    // the same host (the 0.1.0 component is linked against the 0.1.1 host interface), and
    // NATS runs against its server in `catalogue_nats.rs`.
    let host = PluginHost::builder()
        .search_dir(common::plugins())
        .cache_dir(common::cache_dir("catalogue-wit-versions"))
        .grant("mosquitto", Grants::new().tcp(1883))
        .grant("nats", Grants::new().tcp(4222))
        .build()
        .expect("a plugin host");
    let mosquitto = host.load("mosquitto").expect("the mosquitto plugin loads");
    assert_eq!(mosquitto.wit_version(), WitVersion::V0_1_1);
    let nats = host.load("nats").expect("the nats plugin loads");
    assert_eq!(nats.wit_version(), WitVersion::V0_1_0);
    assert_eq!(SUPPORTED_WIT_VERSIONS, ["0.1.0", "0.1.1"]);
}
