//! The catalogue's plugins the whole way from a registry into a test, as a community plugin
//! would go: the shipped Mosquitto, NATS and etcd plugins (built as CI builds them) pushed to
//! the private registry `.ci/engines` starts (Debian's docker-registry with TLS and htpasswd on
//! 10.214.0.1:5443), then a user with a clean plugin cache, a `seaworthy.lock` and the
//! credentials `docker login` writes installs each by reference and uses it like any fixture:
//! starts it, writes state with an ordinary client, cleans, and sees the baseline again.

mod common;
#[path = "common/registry.rs"]
mod registry;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use async_nats::jetstream;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use futures_util::TryStreamExt;
use registry::TempDir;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use seaworthy::{Fixture, FixtureDefinition};
use seaworthy_plugin::oci::{self, Credentials, Lockfile, OciConfig};
use seaworthy_plugin::{Grants, PluginFixture, PluginHost};
use serde_json::{json, Value};

/// The private registry of `.ci/engines`, its user, and where its password and CA are kept.
const REGISTRY: &str = "10.214.0.1:5443";
const USER: &str = "seaworthy";
const PASSWORD_FILE: &str = "/var/lib/seaworthy-ci/registry/password";
const CA_FILE: &str = "/var/lib/seaworthy-ci/tls/ca/ca.pem";
/// Per host call of the test's own clients.
const WAIT: Duration = Duration::from_secs(10);

fn reference(id: &str) -> String {
    format!("{REGISTRY}/seaworthy-catalogue/{id}:0.1")
}

fn ci_file(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| {
            panic!("{path}: {e}: the private registry is set up by `bash .ci/engines start`")
        })
}

#[tokio::test]
async fn shipped_plugins_install_from_a_registry_by_reference_and_work_as_fixtures() -> Result<()> {
    // The registry's certificate is signed by the CI's CA: it joins the platform's roots the way
    // a user's private CA would (rustls-native-certs reads SSL_CERT_FILE). This binary holds
    // this one test, so no other thread reads the environment meanwhile.
    ci_file(CA_FILE);
    std::env::set_var("SSL_CERT_FILE", CA_FILE);
    let password = ci_file(PASSWORD_FILE);

    // The publisher (CI): the built plugins pushed with the registry's credentials.
    let built = common::plugins();
    let publisher = TempDir::new("catalogue-publisher");
    let publish = OciConfig::default()
        .cache_dir(publisher.path().join("cache"))
        .no_lockfile()
        .docker_config(publisher.path().join("no-docker-config.json"))
        .credentials(Credentials::new(USER, &password));
    let mut pushed = BTreeMap::new();
    for id in ["mosquitto", "nats", "etcd"] {
        let artifact = oci::push(&built.join(id), &reference(id), &publish)
            .await
            .with_context(|| format!("push {id}"))?;
        pushed.insert(id, artifact.component_digest);
    }

    // The user: a clean cache, a lockfile to come, the credentials `docker login` wrote.
    let user = TempDir::new("catalogue-user");
    let docker_config = user.path().join("docker-config.json");
    let auth = BASE64.encode(format!("{USER}:{password}"));
    std::fs::write(
        &docker_config,
        format!(r#"{{"auths": {{"{REGISTRY}": {{"auth": "{auth}"}}}}}}"#),
    )?;
    let lockfile = user.path().join("seaworthy.lock");
    let host = PluginHost::builder()
        .cache_dir(user.path().join("compiled"))
        .oci(
            OciConfig::default()
                .cache_dir(user.path().join("plugins"))
                .lockfile(&lockfile)
                .docker_config(&docker_config),
        )
        .grant("mosquitto", Grants::new().tcp(1883))
        .grant("nats", Grants::new().tcp(4222))
        .grant("etcd", Grants::new().http(2379))
        .build()?;
    let load = |id: &str, config: Vec<(String, String)>| -> Result<_> {
        let plugin = host
            .load(&reference(id))
            .with_context(|| format!("install and load {}", reference(id)))?;
        ensure!(plugin.id() == id, "{} is {}", reference(id), plugin.id());
        Ok(plugin.fixture(config)?)
    };
    let mosquitto = load(
        "mosquitto",
        vec![("retained.config/mode".into(), "baseline".into())],
    )?;
    let nats = load("nats", Vec::new())?;
    let etcd = load("etcd", vec![("key.config/mode".into(), "baseline".into())])?;
    let lock = Lockfile::load(&lockfile)?;
    for (id, component) in &pushed {
        let entry = lock
            .get(&reference(id))
            .with_context(|| format!("{} pinned in seaworthy.lock", reference(id)))?;
        assert_eq!(&entry.component, component, "{id}");
    }

    // Each like any fixture, the three at once.
    let (mosquitto, nats, etcd) = tokio::join!(
        async { use_mosquitto(&mosquitto.start().await?).await },
        async { use_nats(&nats.start().await?).await },
        async { use_etcd(&etcd.start().await?).await },
    );
    mosquitto.context("mosquitto")?;
    nats.context("nats")?;
    etcd.context("etcd")?;
    Ok(())
}

/// A retained message of the test's and the baseline's changed; clean() puts them back.
async fn use_mosquitto(fixture: &PluginFixture) -> Result<()> {
    let container = fixture.container();
    let (host, port) = (container.host().to_string(), container.host_port(1883)?);
    let mut writer = mqtt(&host, port, "writer").await?;
    writer
        .0
        .publish("app/state", QoS::AtLeastOnce, true, "dirty")
        .await?;
    writer
        .0
        .publish("config/mode", QoS::AtLeastOnce, true, "changed")
        .await?;
    let mut acked = 0;
    until(&mut writer.1, |event| {
        acked += usize::from(matches!(event, Event::Incoming(Packet::PubAck(_))));
        acked == 2
    })
    .await?;
    let baseline = BTreeMap::from([("config/mode".to_string(), b"baseline".to_vec())]);
    ensure!(retained(&host, port, "check-1").await? != baseline);
    fixture.clean().await?;
    assert_eq!(retained(&host, port, "check-2").await?, baseline);
    Ok(())
}

/// A connected MQTT client (clean session).
async fn mqtt(host: &str, port: u16, id: &str) -> Result<(AsyncClient, EventLoop)> {
    let mut options = MqttOptions::new(id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 16);
    until(&mut events, |event| {
        matches!(event, Event::Incoming(Packet::ConnAck(_)))
    })
    .await?;
    Ok((client, events))
}

/// Polls `events` until `done` holds for one.
async fn until(events: &mut EventLoop, mut done: impl FnMut(&Event) -> bool) -> Result<()> {
    tokio::time::timeout(WAIT, async {
        loop {
            if done(&events.poll().await?) {
                return Ok::<_, anyhow::Error>(());
            }
        }
    })
    .await
    .context("the broker did not answer in time")?
}

/// The retained messages a subscriber to `#` gets, up to a marker published after subscribing.
async fn retained(host: &str, port: u16, id: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    let (client, mut events) = mqtt(host, port, id).await?;
    let marker = format!("test-marker/{id}");
    client.subscribe("#", QoS::AtMostOnce).await?;
    client
        .publish(marker.as_str(), QoS::AtMostOnce, false, "")
        .await?;
    let mut retained = BTreeMap::new();
    until(&mut events, |event| match event {
        Event::Incoming(Packet::Publish(p)) if p.topic == marker => true,
        Event::Incoming(Packet::Publish(p)) if p.retain => {
            retained.insert(p.topic.clone(), p.payload.to_vec());
            false
        }
        _ => false,
    })
    .await?;
    Ok(retained)
}

/// A stream with a message; clean() leaves no stream.
async fn use_nats(fixture: &PluginFixture) -> Result<()> {
    let address = fixture.container().address(4222)?;
    let js = jetstream::new(async_nats::connect(format!("nats://{address}")).await?);
    js.create_stream(jetstream::stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        ..Default::default()
    })
    .await?;
    js.publish("orders.1", "order".into()).await?.await?;
    let names = |js: jetstream::Context| async move {
        js.stream_names().try_collect::<Vec<String>>().await
    };
    assert_eq!(names(js.clone()).await?, ["ORDERS"]);
    fixture.clean().await?;
    assert!(names(js).await?.is_empty(), "clean() left a stream");
    Ok(())
}

/// A key of the test's and the baseline's key changed, through the HTTP/JSON gateway; clean()
/// puts the baseline back.
async fn use_etcd(fixture: &PluginFixture) -> Result<()> {
    let base = format!("http://{}/v3", fixture.container().address(2379)?);
    let http = reqwest::Client::new();
    let call = |path: &str, body: Value| {
        let request = http
            .post(format!("{base}/{path}"))
            .json(&body)
            .timeout(WAIT);
        async move {
            let response = request.send().await?.error_for_status()?;
            Ok::<Value, anyhow::Error>(response.json().await?)
        }
    };
    for (key, value) in [("app/state", "dirty"), ("config/mode", "changed")] {
        call(
            "kv/put",
            json!({"key": BASE64.encode(key), "value": BASE64.encode(value)}),
        )
        .await?;
    }
    let everything = json!({"key": BASE64.encode([0u8]), "range_end": BASE64.encode([0u8])});
    let keys = |range: Value| -> Result<BTreeMap<String, String>> {
        let decode = |v: &Value| -> Result<String> {
            Ok(String::from_utf8(
                BASE64.decode(v.as_str().context("base64 text")?)?,
            )?)
        };
        range["kvs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|kv| Ok((decode(&kv["key"])?, decode(&kv["value"])?)))
            .collect()
    };
    ensure!(keys(call("kv/range", everything.clone()).await?)?.len() == 2);
    fixture.clean().await?;
    assert_eq!(
        keys(call("kv/range", everything).await?)?,
        BTreeMap::from([("config/mode".to_string(), "baseline".to_string())])
    );
    Ok(())
}
