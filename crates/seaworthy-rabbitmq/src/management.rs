//! [`Management`]: a client of RabbitMQ's management HTTP API, and what it lists.
//!
//! AMQP 0-9-1 cannot list queues, exchanges or bindings, nor create virtual hosts or users: the
//! management API can. Every request runs on Seaworthy's runtime, so the client's pooled
//! connections outlive any one test's runtime.
//!
//! Counters (`messages`, `consumers`) come from the broker's statistics, which queues publish
//! every `collect_statistics_interval` (the fixture sets 500 ms; RabbitMQ's default is 5 s): a
//! message published a moment ago may not be counted yet. For an exact count ask the queue
//! itself, over AMQP: [`RabbitMqFixture::message_count`](crate::RabbitMqFixture::message_count).

use std::fmt;

use seaworthy::reqwest::{self, Method};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A virtual host (`GET /api/vhosts`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct VHostInfo {
    /// Its name (`/` is the default one).
    pub name: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Its tags.
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
    /// The queue type declared by default (`classic`, `quorum`; `undefined` when not set).
    #[serde(default)]
    pub default_queue_type: Option<String>,
}

/// A queue and its counters (`GET /api/queues`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct QueueInfo {
    /// Its name.
    pub name: String,
    /// Its virtual host.
    pub vhost: String,
    /// Messages ready plus unacknowledged (from the statistics; see the [module docs](self)).
    #[serde(default)]
    pub messages: u64,
    /// Messages ready for delivery.
    #[serde(default)]
    pub messages_ready: u64,
    /// Messages delivered and not yet acknowledged.
    #[serde(default)]
    pub messages_unacknowledged: u64,
    /// Consumers.
    #[serde(default)]
    pub consumers: u64,
    /// Whether it survives a broker restart.
    #[serde(default)]
    pub durable: bool,
    /// Whether it is deleted when its last consumer goes.
    #[serde(default)]
    pub auto_delete: bool,
    /// Whether it belongs to one connection.
    #[serde(default)]
    pub exclusive: bool,
    /// `classic`, `quorum` or `stream`.
    #[serde(default, rename = "type")]
    pub queue_type: Option<String>,
    /// Its arguments (`x-max-length`...).
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// An exchange (`GET /api/exchanges`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ExchangeInfo {
    /// Its name (empty for the default exchange).
    pub name: String,
    /// Its virtual host.
    pub vhost: String,
    /// `direct`, `fanout`, `topic`, `headers`...
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether it survives a broker restart.
    #[serde(default)]
    pub durable: bool,
    /// Whether it is deleted when its last binding goes.
    #[serde(default)]
    pub auto_delete: bool,
    /// Whether clients cannot publish to it.
    #[serde(default)]
    pub internal: bool,
    /// Its arguments.
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

impl ExchangeInfo {
    /// Whether the broker declares it in every virtual host (the default exchange and `amq.*`).
    pub fn is_predeclared(&self) -> bool {
        self.name.is_empty() || self.name.starts_with("amq.")
    }
}

/// A binding (`GET /api/bindings`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct BindingInfo {
    /// The exchange messages come from (empty for the default exchange).
    pub source: String,
    /// Its virtual host.
    pub vhost: String,
    /// The queue or exchange messages go to.
    pub destination: String,
    /// `queue` or `exchange`.
    pub destination_type: String,
    /// The routing key.
    #[serde(default)]
    pub routing_key: String,
    /// Its arguments.
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

impl BindingInfo {
    /// Whether the broker made it: every queue is bound to the default exchange by its name.
    pub fn is_implicit(&self) -> bool {
        self.source.is_empty()
    }
}

/// A user (`GET /api/users`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct UserInfo {
    /// Its name.
    pub name: String,
    /// Its tags (`administrator`, `management`...).
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
}

/// A policy (`GET /api/policies`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct PolicyInfo {
    /// Its name.
    pub name: String,
    /// Its virtual host.
    pub vhost: String,
    /// The regular expression of the names it applies to.
    pub pattern: String,
    /// `queues`, `exchanges` or `all`.
    #[serde(rename = "apply-to", default)]
    pub apply_to: String,
    /// What it sets (`{"max-length": 10}`).
    #[serde(default)]
    pub definition: Map<String, Value>,
    /// Its priority.
    #[serde(default)]
    pub priority: i64,
}

/// A user's permissions in a virtual host (regular expressions of resource names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Permission {
    /// The user.
    pub user: String,
    /// The virtual host.
    pub vhost: String,
    /// Resources the user may declare and delete.
    pub configure: String,
    /// Resources the user may publish to.
    pub write: String,
    /// Resources the user may consume from.
    pub read: String,
}

impl Permission {
    /// Every permission on every resource (`.*`).
    pub fn full(user: impl Into<String>, vhost: impl Into<String>) -> Self {
        Permission {
            user: user.into(),
            vhost: vhost.into(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        }
    }
}

/// Tags arrive as a list (3.9 and later) or as one comma-separated string (before).
fn tags<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    })
}

/// A client of the management HTTP API of one broker, authenticated as the fixture's user.
/// Cheap to clone.
#[derive(Clone)]
pub struct Management {
    container: String,
    client: reqwest::Client,
    base: String,
    user: String,
    password: String,
}

impl fmt::Debug for Management {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Management")
            .field("container", &self.container)
            .field("base", &self.base)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Management {
    pub(crate) fn new(
        container: &str,
        base: String,
        user: &str,
        password: &str,
    ) -> Result<Management> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|source| Error::Http {
                container: container.to_string(),
                action: "build the management API client".into(),
                source,
            })?;
        Ok(Management {
            container: container.to_string(),
            client,
            base,
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    /// `http://host:port` of the management API.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The user it authenticates as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Sends a request to `path` (`/api/...`, segments already encoded with [`encode`]) and
    /// returns the status and body, whatever the status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Vec<u8>)> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password));
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = seaworthy::runtime::run(async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body.to_vec()))
        })
        .await;
        answer.map_err(|source| Error::Http {
            container: self.container.clone(),
            action: format!("{method} {path}"),
            source,
        })
    }

    /// Sends a request and fails unless the status is 2xx (or, with `allow_missing`, 404).
    async fn expect_success(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        allow_missing: bool,
    ) -> Result<Vec<u8>> {
        let (status, answer) = self.send(method.clone(), path, body).await?;
        if (200..300).contains(&status) || (allow_missing && status == 404) {
            return Ok(answer);
        }
        let mut text = String::from_utf8_lossy(&answer).into_owned();
        if status == 401 {
            text.push_str(&format!(
                " (did a test delete user {} or change its password or tags? the fixture needs them; clean() restores them)",
                self.user
            ));
        }
        Err(Error::Status {
            container: self.container.clone(),
            action: format!("{method} {path}"),
            status,
            body: text,
        })
    }

    /// `GET path`, its JSON answer read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let body = self.expect_success(Method::GET, path, None, false).await?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::fixture(
                &self.container,
                format!("GET {path}: unexpected answer from the management API: {e}"),
            )
        })
    }

    /// `GET path` for a list of named objects. An object the broker is deleting (a virtual host,
    /// with its queues and exchanges) can be listed for a moment without its `name`: such entries
    /// are left out, since the object is going; any other entry that does not fit `T` is an error.
    pub(crate) async fn get_named<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let entries: Vec<Value> = self.get(path).await?;
        entries
            .into_iter()
            .filter(|entry| entry.get("name").is_some())
            .map(|entry| {
                serde_json::from_value(entry).map_err(|e| {
                    Error::fixture(
                        &self.container,
                        format!("GET {path}: unexpected answer from the management API: {e}"),
                    )
                })
            })
            .collect()
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<()> {
        self.expect_success(Method::PUT, path, Some(body), false)
            .await
            .map(drop)
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<()> {
        self.expect_success(Method::POST, path, Some(body), false)
            .await
            .map(drop)
    }

    /// `DELETE path`; a resource that is already gone is not an error.
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.expect_success(Method::DELETE, path, None, true)
            .await
            .map(drop)
    }

    /// `GET /api/overview`: versions, totals, listeners.
    pub async fn overview(&self) -> Result<Value> {
        self.get("/api/overview").await
    }

    /// `GET /api/definitions`: users, vhosts, permissions, policies, parameters, queues,
    /// exchanges and bindings, as RabbitMQ exports them.
    pub async fn definitions(&self) -> Result<Value> {
        self.get("/api/definitions").await
    }

    /// The virtual hosts, sorted by name.
    pub async fn vhosts(&self) -> Result<Vec<VHostInfo>> {
        let mut v: Vec<VHostInfo> = self.get_named("/api/vhosts").await?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// The queues of `vhost` (of every virtual host with `None`), with their counters, sorted.
    pub async fn queues(&self, vhost: Option<&str>) -> Result<Vec<QueueInfo>> {
        let mut v: Vec<QueueInfo> = self.get_named(&scoped("/api/queues", vhost)).await?;
        v.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
        Ok(v)
    }

    /// The exchanges of `vhost` (of every virtual host with `None`), predeclared ones included
    /// (see [`ExchangeInfo::is_predeclared`]), sorted.
    pub async fn exchanges(&self, vhost: Option<&str>) -> Result<Vec<ExchangeInfo>> {
        let mut v: Vec<ExchangeInfo> = self.get_named(&scoped("/api/exchanges", vhost)).await?;
        v.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
        Ok(v)
    }

    /// The bindings of `vhost` (of every virtual host with `None`), implicit ones included (see
    /// [`BindingInfo::is_implicit`]), sorted.
    pub async fn bindings(&self, vhost: Option<&str>) -> Result<Vec<BindingInfo>> {
        let mut v: Vec<BindingInfo> = self.get(&scoped("/api/bindings", vhost)).await?;
        v.sort_by(|a, b| {
            (&a.vhost, &a.source, &a.destination, &a.routing_key).cmp(&(
                &b.vhost,
                &b.source,
                &b.destination,
                &b.routing_key,
            ))
        });
        Ok(v)
    }

    /// The users, sorted by name.
    pub async fn users(&self) -> Result<Vec<UserInfo>> {
        let mut v: Vec<UserInfo> = self.get_named("/api/users").await?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// The policies of `vhost` (of every virtual host with `None`), sorted.
    pub async fn policies(&self, vhost: Option<&str>) -> Result<Vec<PolicyInfo>> {
        let mut v: Vec<PolicyInfo> = self.get_named(&scoped("/api/policies", vhost)).await?;
        v.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
        Ok(v)
    }

    /// Every user's permissions in every virtual host.
    pub async fn permissions(&self) -> Result<Vec<Permission>> {
        self.get("/api/permissions").await
    }

    /// Creates virtual host `name` (nothing happens if it exists).
    pub async fn create_vhost(&self, name: &str) -> Result<()> {
        self.put(
            &format!("/api/vhosts/{}", encode(name)),
            &Value::Object(Map::new()),
        )
        .await
    }

    /// Deletes virtual host `name` with everything in it, closing its connections.
    pub async fn delete_vhost(&self, name: &str) -> Result<()> {
        self.delete(&format!("/api/vhosts/{}", encode(name))).await
    }

    /// Sets a user's permissions in a virtual host.
    pub async fn set_permissions(&self, permission: &Permission) -> Result<()> {
        let body = serde_json::json!({
            "configure": permission.configure,
            "write": permission.write,
            "read": permission.read,
        });
        self.put(
            &format!(
                "/api/permissions/{}/{}",
                encode(&permission.vhost),
                encode(&permission.user)
            ),
            &body,
        )
        .await
    }

    /// Deletes user `name` (and its permissions).
    pub async fn delete_user(&self, name: &str) -> Result<()> {
        self.delete(&format!("/api/users/{}", encode(name))).await
    }
}

/// `base` or `base/VHOST`.
fn scoped(base: &str, vhost: Option<&str>) -> String {
    match vhost {
        Some(v) => format!("{base}/{}", encode(v)),
        None => base.to_string(),
    }
}

/// Percent-encodes a path segment (a vhost, a user, a queue name): everything but RFC 3986's
/// unreserved characters, so `/` becomes `%2F`.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode("/"), "%2F");
        assert_eq!(encode("my vhost"), "my%20vhost");
        assert_eq!(encode("sw-1.a_b~"), "sw-1.a_b~");
        assert_eq!(scoped("/api/queues", Some("/")), "/api/queues/%2F");
        assert_eq!(scoped("/api/queues", None), "/api/queues");
    }

    #[test]
    fn tags_are_read_in_both_forms() {
        let new: UserInfo =
            serde_json::from_str(r#"{"name":"a","tags":["administrator","x"]}"#).unwrap();
        let old: UserInfo =
            serde_json::from_str(r#"{"name":"a","tags":"administrator, x"}"#).unwrap();
        assert_eq!(new, old);
        assert_eq!(new.tags, ["administrator", "x"]);
    }

    #[test]
    fn queues_without_statistics_yet_count_zero() {
        let q: QueueInfo =
            serde_json::from_str(r#"{"name":"q","vhost":"/","durable":true}"#).unwrap();
        assert_eq!((q.messages, q.consumers, q.durable), (0, 0, true));
    }
}
