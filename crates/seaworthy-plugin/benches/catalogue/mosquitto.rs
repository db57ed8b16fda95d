//! `mosquitto.*` of the `catalogue` suite. Each run first dirties the broker the same way (not
//! timed): 20 retained messages on topics of the test's, the baseline's retained message
//! changed, two persistent sessions (clean-session 0) subscribed to `jobs/#` with 5 messages
//! queued for each. Then:
//!
//! * `mosquitto.clean_vs_native`: the plugin's clean() (retained messages collected through a
//!   `#` subscription, sessions found in the broker's log and discarded, retained messages put
//!   back) against the same reset from the test process with rumqttc: subscribe to `#` and
//!   collect the retained messages up to a marker published after the subscription, discard the
//!   two sessions (the test knows their client ids: no log to read) concurrently, publish the
//!   fixes, and wait for a second marker (the broker handles a connection's packets in order).
//!   Target ratio ≤ 1.3.
//! * `mosquitto.clean_vs_recreate`: the same clean() against starting a new Mosquitto fixture
//!   from the definition. Target ratio ≤ 0.05.

use std::collections::BTreeMap;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use seaworthy::Fixture;
use seaworthy_benchkit::Suite;
use seaworthy_plugin::PluginHost;

/// The baseline: one retained message.
const BASELINE: (&str, &str) = ("config/mode", "baseline");
/// The persistent sessions a run leaves.
const SESSIONS: [&str; 2] = ["worker-0", "worker-1"];
/// Per wait on the broker.
const WAIT: Duration = Duration::from_secs(10);

/// Where the broker listens.
#[derive(Clone)]
struct Broker {
    host: String,
    port: u16,
}

/// A connected client: its handle and its event loop (polled by whoever waits).
struct Client {
    client: AsyncClient,
    events: EventLoop,
    /// Whether the broker kept a session for the client id (from the CONNACK).
    session_present: bool,
}

impl Broker {
    /// Connects `id`, waiting for the CONNACK.
    async fn connect(&self, id: &str, clean_session: bool) -> Client {
        let mut options = MqttOptions::new(id, self.host.clone(), self.port);
        options
            .set_clean_session(clean_session)
            .set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(options, 256);
        let session_present = tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::ConnAck(ack)) =
                    events.poll().await.expect("the broker answers")
                {
                    return ack.session_present;
                }
            }
        })
        .await
        .expect("a CONNACK in time");
        Client {
            client,
            events,
            session_present,
        }
    }

    /// The retained messages the broker holds, the way any client sees them.
    async fn retained(&self, own: &mut Client, marker: &str) -> BTreeMap<String, Vec<u8>> {
        own.client
            .subscribe("#", QoS::AtMostOnce)
            .await
            .expect("subscribe");
        own.client
            .publish(marker, QoS::AtMostOnce, false, "")
            .await
            .expect("publish the marker");
        let mut retained = BTreeMap::new();
        own.until(|event| match event {
            Event::Incoming(Packet::Publish(p)) if p.topic == marker => true,
            Event::Incoming(Packet::Publish(p)) if p.retain => {
                retained.insert(p.topic.clone(), p.payload.to_vec());
                false
            }
            _ => false,
        })
        .await;
        retained
    }
}

impl Client {
    /// Polls the event loop until `done` holds for an event.
    async fn until(&mut self, mut done: impl FnMut(&Event) -> bool) {
        tokio::time::timeout(WAIT, async {
            loop {
                let event = self.events.poll().await.expect("the broker answers");
                if done(&event) {
                    return;
                }
            }
        })
        .await
        .expect("the broker answered in time");
    }
}

/// Adds the `mosquitto.*` results to `suite`.
pub fn run(suite: &mut Suite, host: &PluginHost) {
    let config = [(format!("retained.{}", BASELINE.0), BASELINE.1.to_string())];
    crate::bench_plugin(suite, host, "mosquitto", config, 60, |_, fixture| {
        let container = fixture.container();
        (
            "the same reset from the test process (rumqttc)",
            Broker {
                host: container.host().to_string(),
                port: container.host_port(1883).expect("published port"),
            },
        )
    });
}

impl crate::Store for Broker {
    /// Writes the state every run starts from.
    async fn dirty(&self) {
        for id in SESSIONS {
            let mut worker = self.connect(id, false).await;
            worker
                .client
                .subscribe("jobs/#", QoS::AtLeastOnce)
                .await
                .expect("subscribe");
            worker
                .until(|event| matches!(event, Event::Incoming(Packet::SubAck(_))))
                .await;
        }
        let mut writer = self.connect("bench-writer", true).await;
        for i in 0..20 {
            writer
                .client
                .publish(format!("app/topic-{i:02}"), QoS::AtLeastOnce, true, "value")
                .await
                .expect("publish");
        }
        writer
            .client
            .publish(BASELINE.0, QoS::AtLeastOnce, true, "changed")
            .await
            .expect("publish");
        for i in 0..5 {
            writer
                .client
                .publish(format!("jobs/{i}"), QoS::AtLeastOnce, false, "job")
                .await
                .expect("publish");
        }
        let mut acked = 0;
        writer
            .until(|event| {
                if let Event::Incoming(Packet::PubAck(_)) = event {
                    acked += 1;
                }
                acked == 26
            })
            .await;
    }

    /// What the plugin's clean() does, from the test process.
    async fn native_clean(&self) {
        let own_id = format!("bench-native-{}", std::process::id());
        let retained = async {
            let mut own = self.connect(&own_id, true).await;
            let marker = format!("seaworthy-bench/{own_id}/1");
            let retained = self.retained(&mut own, &marker).await;
            let mut fixes = 0;
            for topic in retained.keys().filter(|t| t.as_str() != BASELINE.0) {
                own.client
                    .publish(topic.as_str(), QoS::AtMostOnce, true, "")
                    .await
                    .expect("clear a retained message");
                fixes += 1;
            }
            if retained.get(BASELINE.0).map(Vec::as_slice) != Some(BASELINE.1.as_bytes()) {
                own.client
                    .publish(BASELINE.0, QoS::AtMostOnce, true, BASELINE.1)
                    .await
                    .expect("put the baseline back");
                fixes += 1;
            }
            if fixes > 0 {
                let marker = format!("seaworthy-bench/{own_id}/2");
                own.client
                    .publish(marker.as_str(), QoS::AtMostOnce, false, "")
                    .await
                    .expect("publish the marker");
                own.until(
                    |event| matches!(event, Event::Incoming(Packet::Publish(p)) if p.topic == marker),
                )
                .await;
            }
        };
        let sessions = futures_util::future::join_all(SESSIONS.map(|id| async move {
            // A clean-session connection under the id discards its session.
            drop(self.connect(id, true).await);
        }));
        tokio::join!(retained, sessions);
    }

    /// Fails unless the broker holds exactly the baseline's retained message and no session.
    async fn assert_baseline(&self) {
        let mut own = self.connect("bench-check", true).await;
        let retained = self.retained(&mut own, "seaworthy-bench/check").await;
        let expected: BTreeMap<String, Vec<u8>> =
            [(BASELINE.0.to_string(), BASELINE.1.as_bytes().to_vec())].into();
        assert_eq!(retained, expected, "retained messages off the baseline");
        for id in SESSIONS {
            let worker = self.connect(id, false).await;
            assert!(!worker.session_present, "the session of {id} was kept");
            drop(worker);
            // The check's own connection left a session: discard it.
            drop(self.connect(id, true).await);
        }
    }
}
