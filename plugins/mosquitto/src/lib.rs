//! A Seaworthy fixture plugin for the Mosquitto MQTT broker. It speaks MQTT 3.1.1 itself, a few
//! packets written and read by hand over the host's `tcp-connect` (capability `tcp = [1883]`),
//! and reads the broker's log to learn which clients asked for persistent sessions.
//!
//! Configuration (all optional):
//!
//! | key                 | default               | meaning                                        |
//! |---------------------|-----------------------|------------------------------------------------|
//! | `image`             | `eclipse-mosquitto:2` | image with `sh` and `mosquitto` (substitution applies) |
//! | `retained.<topic>`  | none                  | a retained message of the baseline: `<topic>` holds this payload after every `clean()` |
//!
//! The plugin runs the broker with a configuration of its own (written by the container's
//! command): a listener on 1883 for anonymous clients, persistence on, the log on stderr (unbuffered)
//! with connection messages, and `set_tcp_nodelay true` when the image's mosquitto is 2.0 or
//! later (without it every answer that follows unacknowledged output waits about 40 ms for the
//! client's delayed ACK; 1.x refuses the option, so it is left out there).
//!
//! Readiness: a CONNECT answered by a CONNACK accepting it. At the fixture's start (the broker's
//! log shows no other client) the baseline's retained messages are published then, as the host
//! hands a just-started fixture out without a `clean()`.
//!
//! Clean, back to the baseline:
//! * **retained messages**: the plugin subscribes to `#`, collects the retained messages the
//!   broker sends for it up to the answer to a PINGREQ sent after the SUBSCRIBE (the broker
//!   queues them before it reads the ping; CONNECT, SUBSCRIBE and PINGREQ go out together),
//!   then publishes an empty retained message to every topic that is not in the baseline and
//!   the baseline's payload to every baseline topic that is missing or differs. Topics starting
//!   with `$` are the broker's own and not touched.
//! * **persistent sessions** (and with them their subscriptions and queued messages): MQTT has no
//!   way to list sessions, so the plugin follows the broker's log (`container-log-since` of WIT
//!   0.1.1: the host's own follower of the log, no round trip to the engine per read) for
//!   `New client connected ... as <id> (p<version>, c<clean>, ...)`, reading on from where the
//!   last call stopped until the line of the plugin's own connection of this clean shows (the
//!   broker logs connections in order, so every earlier connection is in by then), and keeps
//!   the last connection of each client id. Every client id whose last connection may have left
//!   a session (a clean-session flag of 0, or MQTT 5, whose session can outlive a clean start)
//!   is connected to once more with the clean-session flag set, which discards the session, and
//!   disconnected. A client still connected under such an id is disconnected by the broker
//!   (session take-over). The host keeps the last 10,000 lines of the log: a session whose
//!   last connection is older than that when the plugin first reads the log (or after a trap,
//!   which starts a fresh instance) is missed.
//! * **wills**: a client disconnected by that take-over has its will published, which may be a
//!   retained message. So after discarding sessions the plugin subscribes to `#` again (the
//!   broker sends the retained messages again, after the fixes sent before it) and fixes what
//!   it finds once more.
//!
//! Isolation: 64 namespaces `seaworthy-<slot>`; a test keeps to its namespace by putting
//! `<namespace>/` in front of its topics and its client ids. Release clears the retained
//! messages under `<namespace>/#` and the sessions of client ids starting with `<namespace>/`.
//! The broker does not enforce it: a test subscribing to `#` sees everyone's messages.

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "../../wit/0.1.1",
});

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host::{self, HostError, TcpStream};
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, Isolated, LogWait, PluginMetadata, Wait,
};

/// The MQTT port.
const PORT: u16 = 1883;
/// Per host call.
const TIMEOUT_MS: u32 = 5_000;
/// The default image.
const IMAGE: &str = "eclipse-mosquitto:2";
/// How many isolated namespaces there are.
const SLOTS: u32 = 64;
/// How long the plugin waits for its own connection to show in the broker's log.
const LOG_WAIT_MS: u32 = 5_000;
/// The client-id prefix of the plugin's own connections.
const OWN_ID: &str = "seaworthy-plugin-";
/// The prefix of the configuration keys naming baseline retained messages.
const RETAINED: &str = "retained.";

/// The broker's configuration, written by the container's command before it starts mosquitto.
const CONFIG_LINES: &[&str] = &[
    "listener 1883 0.0.0.0",
    "allow_anonymous true",
    "persistence true",
    "persistence_location /tmp/mosquitto/",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "log_type notice",
    "log_type information",
    "log_timestamp false",
    "connection_messages true",
];

/// Added to [`CONFIG_LINES`] when the image's mosquitto is 2.0 or later (1.x refuses the option):
/// without it the broker's small writes wait on Nagle's algorithm for the client's delayed ACK,
/// about 40 ms whenever an answer follows unacknowledged output (the PINGRESP after a burst of
/// retained messages).
const NODELAY_LINE: &str = "set_tcp_nodelay true";

struct Mosquitto;

fn get<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The baseline's retained messages (`retained.<topic>` keys), checked.
fn baseline(config: &Config) -> Result<BTreeMap<String, Vec<u8>>, FixtureError> {
    let mut retained = BTreeMap::new();
    for (key, value) in config {
        let Some(topic) = key.strip_prefix(RETAINED) else {
            continue;
        };
        if topic.is_empty()
            || topic.len() > usize::from(u16::MAX)
            || topic.contains(['+', '#', '\0'])
            || topic.starts_with('$')
        {
            return Err(FixtureError::InvalidConfig(format!(
                "`{key}`: a retained message needs a topic name without wildcards (`+`, `#`) that does not start with `$`"
            )));
        }
        if value.is_empty() {
            return Err(FixtureError::InvalidConfig(format!(
                "`{key}`: the payload is empty (an empty retained message deletes one)"
            )));
        }
        retained.insert(topic.to_string(), value.as_bytes().to_vec());
    }
    Ok(retained)
}

fn namespace(slot: u32) -> String {
    format!("seaworthy-{slot}")
}

fn failed(what: &str, error: HostError) -> FixtureError {
    match error {
        HostError::Closed => {
            FixtureError::Failed(format!("{what}: the broker closed the connection"))
        }
        other => FixtureError::Host(other),
    }
}

// --- MQTT 3.1.1 packets -------------------------------------------------------------------------

const CONNACK: u8 = 0x20;
const PUBLISH: u8 = 0x30;
const SUBACK: u8 = 0x90;
const PINGRESP: u8 = 0xD0;
const PINGREQ: [u8; 2] = [0xC0, 0];
const DISCONNECT: [u8; 2] = [0xE0, 0];

/// A packet: its fixed header's first byte, the remaining-length varint, `body`.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A length-prefixed UTF-8 string.
fn put_str(body: &mut Vec<u8>, s: &str) {
    body.extend_from_slice(&(s.len() as u16).to_be_bytes());
    body.extend_from_slice(s.as_bytes());
}

/// CONNECT with the clean-session flag set, keep-alive 30 s; an empty id lets the broker pick one.
fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, "MQTT");
    body.extend_from_slice(&[4, 0x02, 0, 30]);
    put_str(&mut body, client_id);
    packet(0x10, &body)
}

fn subscribe_packet(filter: &str) -> Vec<u8> {
    let mut body = 1u16.to_be_bytes().to_vec();
    put_str(&mut body, filter);
    body.push(0); // QoS 0
    packet(0x82, &body)
}

/// A retained QoS 0 PUBLISH; an empty payload deletes the topic's retained message.
fn retain_packet(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, topic);
    body.extend_from_slice(payload);
    packet(0x31, &body)
}

/// A connection to the broker that reads whole packets.
struct Mqtt {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Mqtt {
    /// Connects as `client_id` (clean session), sending `then` right after the CONNECT, and
    /// waits for the CONNACK.
    fn connect(client_id: &str, then: &[u8]) -> Result<Self, FixtureError> {
        let mut mqtt = Self::start(client_id, then)?;
        mqtt.connack(client_id)?;
        Ok(mqtt)
    }

    /// Opens a connection and sends CONNECT as `client_id` (clean session), then `then`; the
    /// CONNACK is left for [`Mqtt::connack`].
    fn start(client_id: &str, then: &[u8]) -> Result<Self, FixtureError> {
        let stream = host::tcp_connect(PORT, TIMEOUT_MS).map_err(|e| failed("connect", e))?;
        let mut request = connect_packet(client_id);
        request.extend_from_slice(then);
        stream.send(&request).map_err(|e| failed("CONNECT", e))?;
        Ok(Mqtt {
            stream,
            buffer: Vec::new(),
        })
    }

    /// Reads the CONNACK of the connection `start` opened as `client_id`.
    fn connack(&mut self, client_id: &str) -> Result<(), FixtureError> {
        let (first, body) = self.next()?;
        match (first, body.get(1)) {
            (CONNACK, Some(0)) => Ok(()),
            (CONNACK, Some(code)) => Err(FixtureError::Failed(format!(
                "the broker refused the connection of client `{client_id}` (CONNACK return code {code})"
            ))),
            _ => Err(FixtureError::Failed(format!(
                "the broker answered CONNECT with packet type {:#04x}",
                first & 0xF0
            ))),
        }
    }

    fn send(&self, data: &[u8]) -> Result<(), FixtureError> {
        self.stream.send(data).map_err(|e| failed("send", e))
    }

    /// The next packet: its fixed header's first byte and its body.
    fn next(&mut self) -> Result<(u8, Vec<u8>), FixtureError> {
        loop {
            if let Some((start, len)) = frame(&self.buffer)? {
                if self.buffer.len() >= start + len {
                    let first = self.buffer[0];
                    let body = self.buffer[start..start + len].to_vec();
                    self.buffer.drain(..start + len);
                    return Ok((first, body));
                }
            }
            let chunk = self
                .stream
                .receive(64 << 10, TIMEOUT_MS)
                .map_err(|e| failed("receive", e))?;
            if chunk.is_empty() {
                return Err(FixtureError::Failed(
                    "the broker closed the connection".into(),
                ));
            }
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// Reads up to the PINGRESP of a PINGREQ sent before, handing every PUBLISH on the way to
    /// `publish`.
    fn pong(&mut self, mut publish: impl FnMut(u8, &[u8])) -> Result<(), FixtureError> {
        loop {
            match self.next()? {
                (PINGRESP, _) => return Ok(()),
                (SUBACK, body) if body.get(2).is_some_and(|code| code & 0x80 != 0) => {
                    return Err(FixtureError::Failed(
                        "the broker refused the subscription".into(),
                    ))
                }
                (first, body) if first & 0xF0 == PUBLISH => publish(first, &body),
                _ => {}
            }
        }
    }

    /// Reads up to the PINGRESP of a PINGREQ sent after a SUBSCRIBE: the retained messages the
    /// subscription brought (with the retain flag set; the live ones have it cleared).
    fn retained(&mut self) -> Result<BTreeMap<String, Vec<u8>>, FixtureError> {
        let mut retained = BTreeMap::new();
        self.pong(|first, body| {
            if first & 0x01 == 0x01 {
                if let Some((topic, payload)) = publish_parts(first, body) {
                    retained.insert(topic, payload);
                }
            }
        })?;
        Ok(retained)
    }

    fn disconnect(self) {
        // The broker drops the connection's (clean) session either way.
        let _ = self.stream.send(&DISCONNECT);
    }
}

/// Where the body of the packet at the start of `buffer` starts and how long it is, once the
/// remaining length is complete.
fn frame(buffer: &[u8]) -> Result<Option<(usize, usize)>, FixtureError> {
    let mut len = 0usize;
    for (i, byte) in buffer.iter().skip(1).take(4).enumerate() {
        len |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((i + 2, len)));
        }
    }
    if buffer.len() >= 5 {
        return Err(FixtureError::Failed(
            "the broker sent a malformed remaining length".into(),
        ));
    }
    Ok(None)
}

/// The topic and payload of a PUBLISH body (`first` is its fixed header's first byte).
fn publish_parts(first: u8, body: &[u8]) -> Option<(String, Vec<u8>)> {
    let len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let topic = String::from_utf8_lossy(body.get(2..2 + len)?).into_owned();
    let qos = (first >> 1) & 0x03;
    let payload_at = 2 + len + if qos > 0 { 2 } else { 0 };
    Some((topic, body.get(payload_at..)?.to_vec()))
}

// --- clean and release ---------------------------------------------------------------------------

/// What the plugin has read of the broker's log, kept from one call to the next (a fresh
/// instance starts over, as does the host's follower of the log).
struct LogRead {
    /// The number of the next line to read.
    next: u64,
    /// The client ids whose last connection read may have left a session.
    sessions: BTreeSet<String>,
}

static LOG_READ: Mutex<LogRead> = Mutex::new(LogRead {
    next: 0,
    sessions: BTreeSet::new(),
});

/// The client ids the broker's log shows with a session that may still exist, but `own_id`,
/// once the log shows the connection of `own_id` (made before: the broker logs connections in
/// order, so every earlier connection is in the log then).
fn persistent_clients(own_id: &str) -> Result<Vec<String>, FixtureError> {
    let marker = format!(" as {own_id} (p");
    let mut read = LOG_READ
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let chunk = host::container_log_since(read.next, Some(&marker), LOG_WAIT_MS).map_err(
            |e| match e {
                HostError::Timeout(_) => FixtureError::Failed(format!(
                    "the broker's log did not show the plugin's connection `{own_id}` within {LOG_WAIT_MS} ms (the plugin needs its connection messages)"
                )),
                other => FixtureError::Host(other),
            },
        )?;
        if chunk.first > read.next {
            host::log(
                host::Level::Warn,
                &format!(
                    "{} lines of the broker's log were no longer kept when read: a persistent session whose last connection was among them is not discarded",
                    chunk.first - read.next
                ),
            );
        }
        read.next = chunk.first + chunk.lines.len() as u64;
        let mut own = false;
        for line in &chunk.lines {
            own = own || line.text.contains(&marker);
            if let Some((id, persistent)) = connection_line(&line.text) {
                if persistent {
                    read.sessions.insert(id);
                } else {
                    read.sessions.remove(&id);
                }
            }
        }
        if own {
            return Ok(read
                .sessions
                .iter()
                .filter(|id| id.as_str() != own_id)
                .cloned()
                .collect());
        }
    }
}

/// Whether the broker's log shows at most one client connection (the readiness check's).
fn first_connection() -> Result<bool, FixtureError> {
    let lines = host::container_logs(None).map_err(FixtureError::Host)?;
    let connections = lines
        .iter()
        .filter(|line| connection_line(&line.text).is_some())
        .count();
    Ok(connections <= 1)
}

/// A client id no other connection uses, starting with `prefix`.
fn unique_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    format!("{prefix}{:016x}", hasher.finish())
}

/// `New client connected from <address> as <id> (p<version>, c<clean>, k<keepalive>...).`: the
/// id, and whether the connection may have left a session behind.
fn connection_line(text: &str) -> Option<(String, bool)> {
    let rest = &text[text.find("New client connected from ")?..];
    let rest = &rest[rest.find(" as ")? + 4..];
    let open = rest.rfind(" (p")?;
    let id = &rest[..open];
    let mut fields = rest[open + 2..].split(", ");
    let version = fields.next()?.strip_prefix('p')?;
    let clean = fields.next()?.strip_prefix('c')?;
    Some((id.to_string(), clean != "1" || version == "5"))
}

/// How many sessions [`discard_sessions`] discards at once (the host allows a plugin 16 open
/// connections by default; the clean's own holds one).
const DISCARD_BATCH: usize = 8;

/// Discards the sessions of `client_ids`: a clean-session connection under each id, then
/// DISCONNECT. The CONNECTs of a batch go out before any CONNACK is read, so the broker's
/// answers overlap.
fn discard_sessions(client_ids: &[&str]) -> Result<(), FixtureError> {
    for batch in client_ids.chunks(DISCARD_BATCH) {
        let started = batch
            .iter()
            .map(|id| Mqtt::start(id, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        for (id, mut mqtt) in batch.iter().zip(started) {
            mqtt.connack(id)?;
            mqtt.disconnect();
        }
    }
    Ok(())
}

/// The publishes that put the retained messages `retained` back to `baseline`.
fn fixes(retained: &BTreeMap<String, Vec<u8>>, baseline: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut fixes = Vec::new();
    for topic in retained.keys() {
        if !baseline.contains_key(topic) {
            fixes.extend(retain_packet(topic, &[]));
        }
    }
    for (topic, payload) in baseline {
        if retained.get(topic) != Some(payload) {
            fixes.extend(retain_packet(topic, payload));
        }
    }
    fixes
}

/// Puts the retained messages of `filter` (`#` or `<namespace>/#`) back to `baseline`, and
/// discards the sessions of the client ids for which `owned` holds.
fn reset(
    filter: &str,
    baseline: &BTreeMap<String, Vec<u8>>,
    owned: impl Fn(&str) -> bool,
) -> Result<(), FixtureError> {
    let own_id = unique_id(OWN_ID);
    let subscribe = subscribe_packet(filter);
    // CONNECT, SUBSCRIBE and PINGREQ at once; the answers: CONNACK, SUBACK, the retained
    // messages the subscription gets, PINGRESP.
    let mut mqtt = Mqtt::connect(&own_id, &[subscribe.as_slice(), &PINGREQ].concat())?;
    let mut fixes = fixes(&mqtt.retained()?, baseline);
    // The sessions go first: once a namespace's retained messages are gone, its sessions are.
    let sessions = persistent_clients(&own_id)?;
    let owned: Vec<&str> = sessions
        .iter()
        .map(String::as_str)
        .filter(|id| owned(id))
        .collect();
    if !owned.is_empty() {
        discard_sessions(&owned)?;
        // A client the discard took over may have had a retained will published: the fixes,
        // then the subscription again, which brings the retained messages as they are after
        // the fixes, to fix what is still off.
        fixes.extend_from_slice(&subscribe);
        fixes.extend_from_slice(&PINGREQ);
        mqtt.send(&fixes)?;
        fixes = self::fixes(&mqtt.retained()?, baseline);
    }
    if !fixes.is_empty() {
        // The broker handles a connection's packets in order: once the ping is answered, every
        // publish before it is done.
        fixes.extend_from_slice(&PINGREQ);
        mqtt.send(&fixes)?;
        mqtt.pong(|_, _| {})?;
    }
    mqtt.disconnect();
    Ok(())
}

impl Guest for Mosquitto {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "mosquitto".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "the Mosquitto MQTT broker; clean() clears retained messages and persistent sessions over MQTT 3.1.1".into(),
        }
    }

    fn definition(config: Config) -> Result<ContainerSpec, FixtureError> {
        for (key, _) in &config {
            if key != "image" && !key.starts_with(RETAINED) {
                return Err(FixtureError::InvalidConfig(format!(
                    "unknown key `{key}` (known: image, retained.<topic>)"
                )));
            }
        }
        baseline(&config)?;
        let mut script = String::from(
            "set -e; mkdir -p /tmp/mosquitto; chown mosquitto /tmp/mosquitto 2>/dev/null || true; printf '%s\\n'",
        );
        for line in CONFIG_LINES {
            script.push_str(&format!(" '{line}'"));
        }
        script.push_str(&format!(
            " > /tmp/mosquitto.conf; case \"$(mosquitto -h 2>&1 | head -n 1)\" in *'version 1.'*) ;; *) echo '{NODELAY_LINE}' >> /tmp/mosquitto.conf ;; esac; exec mosquitto -c /tmp/mosquitto.conf"
        ));
        Ok(ContainerSpec {
            image: get(&config, "image").unwrap_or(IMAGE).into(),
            env: Vec::new(),
            cmd: Some(vec!["sh".into(), "-c".into(), script]),
            entrypoint: None,
            user: None,
            ports: vec![PORT],
            mounts: Vec::new(),
            waits: vec![Wait::Log(LogWait {
                pattern: r"mosquitto version \S+ running".into(),
                times: 1,
            })],
            startup_timeout_ms: None,
        })
    }

    fn ready(config: Config) -> Result<bool, FixtureError> {
        match Mqtt::connect("", &[]) {
            Ok(mqtt) => {
                mqtt.disconnect();
                // The host hands a just-started fixture out without a clean(), so the baseline's
                // retained messages are published at the start: when the log shows no client
                // but this check's (a later readiness check must not touch a test's data).
                let baseline = baseline(&config)?;
                if !baseline.is_empty() && first_connection()? {
                    reset("#", &baseline, |_| false)?;
                }
                Ok(true)
            }
            Err(FixtureError::Host(HostError::Denied(why))) => {
                Err(FixtureError::Host(HostError::Denied(why)))
            }
            Err(_) => Ok(false),
        }
    }

    fn clean(config: Config) -> Result<(), FixtureError> {
        reset("#", &baseline(&config)?, |_| true)
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        Some(ConnectionInfo {
            scheme: "mqtt".into(),
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
        let prefix = format!("{}/", namespace(slot));
        let baseline = baseline(&config)?
            .into_iter()
            .filter(|(topic, _)| topic.starts_with(&prefix))
            .collect();
        reset(&format!("{prefix}#"), &baseline, |id| {
            id.starts_with(&prefix)
        })
    }
}

export!(Mosquitto);
