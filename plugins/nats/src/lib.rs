//! A Seaworthy fixture plugin for NATS with JetStream. It speaks the NATS client protocol (text
//! lines over the host's `tcp-connect`, capability `tcp = [4222]`) and JetStream's API, which is
//! request/reply on `$JS.API.>` subjects with JSON bodies.
//!
//! Configuration (optional):
//!
//! | key     | default     | meaning                                                        |
//! |---------|-------------|----------------------------------------------------------------|
//! | `image` | `nats:2.10` | image whose entrypoint is the NATS server (substitution applies) |
//!
//! The server runs with JetStream on (`--jetstream --store_dir /data`).
//!
//! Readiness: the server's INFO, a PING answered by PONG, and `$JS.API.INFO` answered without an
//! error (JetStream is up).
//!
//! Clean, back to the baseline, which is a server without JetStream state: every stream is
//! deleted (`$JS.API.STREAM.NAMES`, then one `$JS.API.STREAM.DELETE.<name>` per stream, all
//! sent at once), over a connection the plugin keeps from one call to the next (a connection
//! the server has closed meanwhile, idle past its pings, is replaced and the call made again
//! on the new one). KV buckets (streams `KV_<bucket>`) and object stores (`OBJ_<bucket>`) are
//! streams, and a stream's consumers (durable or not) are deleted with it. Core NATS keeps no
//! state of its own: subscriptions end with their connections.
//!
//! Isolation: 64 namespaces `seaworthy_<slot>`; a test keeps to its namespace by naming its
//! streams, KV buckets and object stores `<namespace>_...` and its subjects `<namespace>.>`.
//! Release deletes the streams named `<namespace>_*`, `KV_<namespace>_*` and
//! `OBJ_<namespace>_*`. The server does not enforce it (one account): a stream capturing `>`
//! would take every test's messages.

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "../../wit/0.1.0",
});

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host::{self, HostError, TcpStream};
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, Isolated, LogWait, PluginMetadata, Wait,
};
use serde_json::Value;

/// The NATS client port.
const PORT: u16 = 4222;
/// Per host call.
const TIMEOUT_MS: u32 = 5_000;
/// The default image.
const IMAGE: &str = "nats:2.10";
/// How many isolated namespaces there are.
const SLOTS: u32 = 64;

struct Nats;

fn namespace(slot: u32) -> String {
    format!("seaworthy_{slot}")
}

fn failed(what: &str, error: HostError) -> FixtureError {
    match error {
        HostError::Closed => {
            FixtureError::Failed(format!("{what}: the server closed the connection"))
        }
        other => FixtureError::Host(other),
    }
}

/// A reply: the message's headers (raw, `NATS/1.0 503` for no responders) and payload.
struct Reply {
    reply_to: String,
    headers: Vec<u8>,
    payload: Vec<u8>,
}

/// A client connection.
struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// The inbox prefix of this connection's requests (unique: it holds the server's client id).
    inbox: String,
    next: u64,
}

impl Client {
    /// Connects, reads the INFO, sends CONNECT and a PING, waits for the PONG, subscribes to
    /// the connection's inbox.
    fn connect() -> Result<Self, FixtureError> {
        let stream = host::tcp_connect(PORT, TIMEOUT_MS).map_err(|e| failed("connect", e))?;
        let mut client = Client {
            stream,
            buffer: Vec::new(),
            inbox: String::new(),
            next: 0,
        };
        let info = client.line()?;
        let info = info.strip_prefix("INFO ").ok_or_else(|| {
            FixtureError::Failed(format!("the server greeted with {info:?}, not INFO"))
        })?;
        let info: Value = serde_json::from_str(info)
            .map_err(|e| FixtureError::Failed(format!("the server's INFO: {e}")))?;
        let id = info["client_id"].as_u64().unwrap_or(0);
        client.inbox = format!("_INBOX.seaworthy.{id}");
        let connect = concat!(
            r#"CONNECT {"verbose":false,"pedantic":false,"lang":"seaworthy-plugin","#,
            r#""version":"0.1.0","protocol":1,"headers":true,"no_responders":true}"#,
            "\r\n"
        );
        let request = format!("{connect}SUB {}.* 1\r\nPING\r\n", client.inbox);
        client.send(request.as_bytes())?;
        loop {
            match client.line()?.as_str() {
                "PONG" => return Ok(client),
                "PING" => client.send(b"PONG\r\n")?,
                "+OK" => {}
                other if other.starts_with("-ERR") => {
                    return Err(FixtureError::Failed(format!("the server answered {other}")))
                }
                _ => {}
            }
        }
    }

    fn send(&self, data: &[u8]) -> Result<(), FixtureError> {
        self.stream.send(data).map_err(|e| failed("send", e))
    }

    fn fill(&mut self) -> Result<(), FixtureError> {
        let chunk = self
            .stream
            .receive(64 << 10, TIMEOUT_MS)
            .map_err(|e| failed("receive", e))?;
        if chunk.is_empty() {
            return Err(FixtureError::Failed(
                "the server closed the connection".into(),
            ));
        }
        self.buffer.extend_from_slice(&chunk);
        Ok(())
    }

    /// The next protocol line, without its CRLF.
    fn line(&mut self) -> Result<String, FixtureError> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                self.buffer.drain(..end + 2);
                return Ok(line);
            }
            self.fill()?;
        }
    }

    /// The next `n` bytes and the CRLF after them.
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, FixtureError> {
        while self.buffer.len() < n + 2 {
            self.fill()?;
        }
        let data = self.buffer[..n].to_vec();
        self.buffer.drain(..n + 2);
        Ok(data)
    }

    /// The next message delivered to the connection (answering the server's PINGs meanwhile).
    fn message(&mut self) -> Result<Reply, FixtureError> {
        loop {
            let line = self.line()?;
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            let number = |word: Option<&&str>| -> Result<usize, FixtureError> {
                word.and_then(|w| w.parse().ok())
                    .ok_or_else(|| FixtureError::Failed(format!("a malformed line: {line:?}")))
            };
            match words.first().copied() {
                Some("MSG") => {
                    let len = number(words.last())?;
                    let payload = self.bytes(len)?;
                    return Ok(Reply {
                        reply_to: words.get(1).unwrap_or(&"").to_string(),
                        headers: Vec::new(),
                        payload,
                    });
                }
                Some("HMSG") => {
                    let total = number(words.last())?;
                    let header_len = number(words.get(words.len().wrapping_sub(2)))?;
                    let mut data = self.bytes(total)?;
                    let payload = data.split_off(header_len.min(data.len()));
                    return Ok(Reply {
                        reply_to: words.get(1).unwrap_or(&"").to_string(),
                        headers: data,
                        payload,
                    });
                }
                Some("PING") => self.send(b"PONG\r\n")?,
                Some("-ERR") => {
                    return Err(FixtureError::Failed(format!("the server answered {line}")))
                }
                _ => {}
            }
        }
    }

    /// Sends every request at once, then returns their JSON answers in the same order.
    fn requests(&mut self, requests: &[(String, String)]) -> Result<Vec<Value>, FixtureError> {
        let first = self.next;
        let mut out = Vec::new();
        for (subject, body) in requests {
            self.next += 1;
            out.extend_from_slice(
                format!(
                    "PUB {subject} {}.{} {}\r\n{body}\r\n",
                    self.inbox,
                    self.next,
                    body.len()
                )
                .as_bytes(),
            );
        }
        self.send(&out)?;
        let mut answers: Vec<Option<Value>> = vec![None; requests.len()];
        let mut missing = requests.len();
        while missing > 0 {
            let reply = self.message()?;
            let Some(index) = reply
                .reply_to
                .rsplit('.')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .and_then(|n| n.checked_sub(first + 1))
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n < requests.len())
            else {
                continue; // an answer to an earlier request of this connection
            };
            if reply.payload.is_empty() && status(&reply.headers) == Some(503) {
                return Err(FixtureError::NotReady(format!(
                    "no responders for {}: JetStream is not enabled or not up",
                    requests[index].0
                )));
            }
            let value = serde_json::from_slice(&reply.payload).map_err(|e| {
                FixtureError::Failed(format!("the answer to {}: {e}", requests[index].0))
            })?;
            if answers[index].replace(value).is_none() {
                missing -= 1;
            }
        }
        Ok(answers.into_iter().flatten().collect())
    }

    fn request(&mut self, subject: &str, body: &str) -> Result<Value, FixtureError> {
        let mut answers = self.requests(&[(subject.to_string(), body.to_string())])?;
        answers
            .pop()
            .ok_or_else(|| FixtureError::Failed(format!("no answer to {subject}")))
    }
}

/// The status code of a `NATS/1.0 <code>` header block.
fn status(headers: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(headers);
    text.lines()
        .next()?
        .strip_prefix("NATS/1.0")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Fails with the JetStream API's error, if the answer is one.
fn api_error(subject: &str, answer: &Value) -> Result<(), FixtureError> {
    match answer.get("error") {
        None | Some(Value::Null) => Ok(()),
        Some(error) => Err(FixtureError::Failed(format!(
            "{subject}: {} (code {}, err_code {})",
            error["description"].as_str().unwrap_or("?"),
            error["code"],
            error["err_code"]
        ))),
    }
}

/// Every stream's name.
fn stream_names(client: &mut Client) -> Result<Vec<String>, FixtureError> {
    let mut names = Vec::new();
    loop {
        let subject = "$JS.API.STREAM.NAMES";
        let answer = client.request(subject, &format!(r#"{{"offset":{}}}"#, names.len()))?;
        api_error(subject, &answer)?;
        let page: Vec<String> = answer["streams"]
            .as_array()
            .map(|streams| {
                streams
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let total = answer["total"].as_u64().unwrap_or(0) as usize;
        let done = page.is_empty();
        names.extend(page);
        if done || names.len() >= total {
            return Ok(names);
        }
    }
}

thread_local! {
    /// The connection kept between calls (the plugin's instance lives as long as its fixture;
    /// after a trap the host starts a fresh one, without it).
    static KEPT: std::cell::RefCell<Option<Client>> = const { std::cell::RefCell::new(None) };
}

/// Runs `work` on the kept connection, or a new one; when it fails on a kept connection (the
/// server may have closed it), once more on a new one. The connection is kept when `work`
/// succeeds.
fn with_client<T>(
    mut work: impl FnMut(&mut Client) -> Result<T, FixtureError>,
) -> Result<T, FixtureError> {
    if let Some(mut client) = KEPT.with(|kept| kept.borrow_mut().take()) {
        if let Ok(out) = work(&mut client) {
            KEPT.with(|kept| *kept.borrow_mut() = Some(client));
            return Ok(out);
        }
    }
    let mut client = Client::connect()?;
    let out = work(&mut client)?;
    KEPT.with(|kept| *kept.borrow_mut() = Some(client));
    Ok(out)
}

/// Deletes the streams for which `doomed` holds, all requests at once.
fn delete_streams(doomed: impl Fn(&str) -> bool) -> Result<(), FixtureError> {
    with_client(|client| delete_streams_on(client, &doomed))
}

fn delete_streams_on(
    client: &mut Client,
    doomed: &impl Fn(&str) -> bool,
) -> Result<(), FixtureError> {
    let requests: Vec<(String, String)> = stream_names(client)?
        .into_iter()
        .filter(|name| doomed(name))
        .map(|name| (format!("$JS.API.STREAM.DELETE.{name}"), String::new()))
        .collect();
    if requests.is_empty() {
        return Ok(());
    }
    for ((subject, _), answer) in requests.iter().zip(client.requests(&requests)?) {
        // A stream deleted meanwhile (by its test, a concurrent release) is fine.
        if answer["error"]["err_code"].as_u64() == Some(10059) {
            continue;
        }
        api_error(subject, &answer)?;
    }
    Ok(())
}

impl Guest for Nats {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "nats".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "NATS with JetStream; clean() deletes the streams (KV and object buckets, consumers) over the NATS protocol".into(),
        }
    }

    fn definition(config: Config) -> Result<ContainerSpec, FixtureError> {
        let mut image = IMAGE;
        for (key, value) in &config {
            match key.as_str() {
                "image" => image = value,
                _ => {
                    return Err(FixtureError::InvalidConfig(format!(
                        "unknown key `{key}` (known: image)"
                    )))
                }
            }
        }
        Ok(ContainerSpec {
            image: image.into(),
            env: Vec::new(),
            cmd: Some(vec![
                "--jetstream".into(),
                "--store_dir".into(),
                "/data".into(),
                "--port".into(),
                PORT.to_string(),
            ]),
            entrypoint: None,
            user: None,
            ports: vec![PORT],
            mounts: Vec::new(),
            waits: vec![Wait::Log(LogWait {
                pattern: "Server is ready".into(),
                times: 1,
            })],
            startup_timeout_ms: None,
        })
    }

    fn ready(_config: Config) -> Result<bool, FixtureError> {
        let answer = Client::connect().and_then(|mut c| c.request("$JS.API.INFO", ""));
        match answer {
            Ok(info) => Ok(info.get("error").is_none()),
            Err(FixtureError::Host(HostError::Denied(why))) => {
                Err(FixtureError::Host(HostError::Denied(why)))
            }
            Err(_) => Ok(false),
        }
    }

    fn clean(_config: Config) -> Result<(), FixtureError> {
        delete_streams(|_| true)
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        Some(ConnectionInfo {
            scheme: "nats".into(),
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

    fn release(_config: Config, slot: u32) -> Result<(), FixtureError> {
        let prefix = format!("{}_", namespace(slot));
        delete_streams(|name| {
            let bare = name
                .strip_prefix("KV_")
                .or_else(|| name.strip_prefix("OBJ_"))
                .unwrap_or(name);
            name.starts_with(&prefix) || bare.starts_with(&prefix)
        })
    }
}

export!(Nats);
