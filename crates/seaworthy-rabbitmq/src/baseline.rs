//! The baseline a RabbitMQ fixture returns to, and the plan of management API calls that returns
//! to it.
//!
//! The baseline is the broker's definitions (users, virtual hosts, permissions, topic
//! permissions, policies, operator policies, parameters, global parameters, queues, exchanges,
//! bindings) and each virtual host's metadata, recorded when a process first attaches to the
//! container. It is kept in a file inside the container, so a process attaching later to a
//! container shared by the whole test run restores the same baseline as the first.
//!
//! [`Plan::between`] compares the baseline with what the broker has now and lists the calls that
//! undo the difference. A virtual host of the baseline whose contents changed is deleted and
//! created again (one call removes every queue, message, exchange, binding, policy and parameter
//! in it and closes its connections), then given its baseline permissions and objects back.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::management::{encode, Management, VHostInfo};

/// Where the baseline is kept inside the container.
pub(crate) const BASELINE_PATH: &str = "/tmp/seaworthy-rabbitmq-baseline.json";

/// What `GET /api/definitions` exports (the lists; versions are left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Definitions {
    #[serde(default)]
    pub(crate) users: Vec<Value>,
    #[serde(default)]
    pub(crate) vhosts: Vec<Value>,
    #[serde(default)]
    pub(crate) permissions: Vec<Value>,
    #[serde(default)]
    pub(crate) topic_permissions: Vec<Value>,
    #[serde(default)]
    pub(crate) parameters: Vec<Value>,
    #[serde(default)]
    pub(crate) global_parameters: Vec<Value>,
    #[serde(default)]
    pub(crate) policies: Vec<Value>,
    #[serde(default)]
    pub(crate) queues: Vec<Value>,
    #[serde(default)]
    pub(crate) exchanges: Vec<Value>,
    #[serde(default)]
    pub(crate) bindings: Vec<Value>,
}

/// A virtual host's metadata (not part of the export in 3.x).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VHostMeta {
    pub(crate) description: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) default_queue_type: Option<String>,
}

impl From<&VHostInfo> for VHostMeta {
    fn from(v: &VHostInfo) -> Self {
        VHostMeta {
            description: v.description.clone(),
            tags: v.tags.clone(),
            default_queue_type: v.default_queue_type.clone(),
        }
    }
}

impl VHostMeta {
    /// The body of `PUT /api/vhosts/NAME` that creates a virtual host with this metadata.
    fn body(&self) -> Value {
        let mut body = Map::new();
        if let Some(d) = &self.description {
            body.insert("description".into(), json!(d));
        }
        if !self.tags.is_empty() {
            body.insert("tags".into(), json!(self.tags.join(",")));
        }
        if let Some(t) = self
            .default_queue_type
            .as_deref()
            .filter(|t| *t != "undefined")
        {
            body.insert("default_queue_type".into(), json!(t));
        }
        Value::Object(body)
    }
}

/// The state of a broker, as far as `clean()` is concerned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) definitions: Definitions,
    /// Every virtual host, with its metadata.
    pub(crate) vhosts: BTreeMap<String, VHostMeta>,
    /// Every queue by `(vhost, name)`, exclusive ones included (the export leaves them out).
    pub(crate) queue_names: BTreeSet<(String, String)>,
    pub(crate) operator_policies: Vec<Value>,
}

#[derive(Deserialize)]
struct QueueName {
    vhost: String,
    name: String,
}

impl State {
    /// Reads the state with four concurrent requests.
    pub(crate) async fn read(management: &Management) -> crate::Result<State> {
        let (definitions, vhosts, queues, operator_policies) = tokio::join!(
            management.get::<Definitions>("/api/definitions"),
            management.vhosts(),
            management.get_named::<QueueName>("/api/queues?columns=vhost,name"),
            management.send(
                seaworthy::reqwest::Method::GET,
                "/api/operator-policies",
                None
            ),
        );
        // Operator policies appeared in 3.7; an older broker has none to restore.
        let operator_policies = match operator_policies? {
            (200, body) => serde_json::from_slice(&body).unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(State {
            definitions: definitions?,
            vhosts: vhosts?
                .iter()
                .map(|v| (v.name.clone(), VHostMeta::from(v)))
                .collect(),
            queue_names: queues?.into_iter().map(|q| (q.vhost, q.name)).collect(),
            operator_policies,
        })
    }
}

/// A management API path and the JSON body to send there.
pub(crate) type PathBody = (String, Value);

/// The topic permissions of one user in one vhost, put back: the path that deletes the current
/// ones (when there are any), then each baseline one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TopicRestore {
    pub(crate) delete: Option<String>,
    pub(crate) puts: Vec<PathBody>,
}

/// The calls that take a broker from some state back to the baseline, in three phases: each
/// phase's calls are independent of one another and run concurrently.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    /// Phase 1: virtual hosts to delete (extra ones, and baseline ones whose contents changed).
    pub(crate) delete_vhosts: Vec<String>,
    /// Phase 1: users the baseline lacks.
    pub(crate) delete_users: Vec<String>,
    /// Phase 1: (path, body) of users to create again or restore (password hash, tags).
    pub(crate) put_users: Vec<PathBody>,
    /// Phase 1: global parameters to delete, by path.
    pub(crate) delete_global_parameters: Vec<String>,
    /// Phase 1: (path, body) of global parameters to restore.
    pub(crate) put_global_parameters: Vec<PathBody>,
    /// Phase 2: (path, body) of virtual hosts to create.
    pub(crate) create_vhosts: Vec<PathBody>,
    /// Phase 3: permissions to restore, (path, body).
    pub(crate) put_permissions: Vec<PathBody>,
    /// Phase 3: permissions to delete, by path.
    pub(crate) delete_permissions: Vec<String>,
    /// Phase 3 and 4: topic permissions, per (vhost, user).
    pub(crate) topic_permissions: Vec<TopicRestore>,
    /// Phase 3: user limits to delete (paths) and to set (path, body).
    pub(crate) delete_user_limits: Vec<String>,
    /// Phase 3: user limits to set, (path, body).
    pub(crate) put_user_limits: Vec<PathBody>,
    /// Phase 3: the baseline objects of re-created virtual hosts, one `POST /api/definitions` body.
    pub(crate) import: Option<Value>,
    /// Phase 3: operator policies of re-created virtual hosts, (path, body).
    pub(crate) put_operator_policies: Vec<PathBody>,
}

impl Plan {
    /// Whether the broker is at its baseline already.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Plan::default()
    }

    /// The calls that take the broker from `now` back to `baseline`.
    pub(crate) fn between(baseline: &State, now: &State) -> Plan {
        let mut plan = Plan::default();
        let (b, n) = (&baseline.definitions, &now.definitions);

        // Virtual hosts.
        let mut recreated = BTreeSet::new();
        for (vhost, meta) in &baseline.vhosts {
            let exists = now.vhosts.get(vhost);
            let dirty = exists != Some(meta)
                || in_vhost(&b.queues, vhost).next().is_some() // their messages may have changed
                || differs(&b.queues, &n.queues, vhost)
                || names_in(&baseline.queue_names, vhost) != names_in(&now.queue_names, vhost)
                || differs(&b.exchanges, &n.exchanges, vhost)
                || differs(&b.bindings, &n.bindings, vhost)
                || differs(&b.policies, &n.policies, vhost)
                || differs(&b.parameters, &n.parameters, vhost)
                || differs(&baseline.operator_policies, &now.operator_policies, vhost);
            if dirty {
                if exists.is_some() {
                    plan.delete_vhosts.push(vhost.clone());
                }
                plan.create_vhosts
                    .push((format!("/api/vhosts/{}", encode(vhost)), meta.body()));
                recreated.insert(vhost.clone());
            }
        }
        for vhost in now
            .vhosts
            .keys()
            .filter(|v| !baseline.vhosts.contains_key(*v))
        {
            plan.delete_vhosts.push(vhost.clone());
        }
        let deleted_vhosts: BTreeSet<&str> =
            plan.delete_vhosts.iter().map(String::as_str).collect();

        // Users.
        let baseline_users = by_name(&b.users);
        let now_users = by_name(&n.users);
        for name in now_users
            .keys()
            .filter(|u| !baseline_users.contains_key(*u))
        {
            plan.delete_users.push(name.to_string());
        }
        for (name, user) in &baseline_users {
            let current = now_users.get(name);
            let same = current.is_some_and(|c| {
                ["password_hash", "hashing_algorithm", "tags"]
                    .iter()
                    .all(|k| c.get(k) == user.get(k))
            });
            if !same {
                let tags = tag_list(user.get("tags")).join(",");
                let mut body = json!({ "password_hash": user.get("password_hash").cloned().unwrap_or(json!("")), "tags": tags });
                if let Some(algorithm) = user.get("hashing_algorithm") {
                    body["hashing_algorithm"] = algorithm.clone();
                }
                plan.put_users
                    .push((format!("/api/users/{}", encode(name)), body));
            }
            // Limits: a re-created user has none.
            let empty = Map::new();
            let wanted = user
                .get("limits")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let have = current
                .and_then(|c| c.get("limits"))
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            for (limit, value) in wanted {
                if have.get(limit) != Some(value) {
                    plan.put_user_limits.push((
                        format!("/api/user-limits/{}/{}", encode(name), encode(limit)),
                        json!({ "value": value }),
                    ));
                }
            }
            for limit in have.keys().filter(|l| !wanted.contains_key(*l)) {
                plan.delete_user_limits.push(format!(
                    "/api/user-limits/{}/{}",
                    encode(name),
                    encode(limit)
                ));
            }
        }
        let deleted_users: BTreeSet<&str> = plan.delete_users.iter().map(String::as_str).collect();

        // Global parameters.
        let baseline_globals = by_name(&b.global_parameters);
        let now_globals = by_name(&n.global_parameters);
        for name in now_globals
            .keys()
            .filter(|g| !baseline_globals.contains_key(*g))
        {
            plan.delete_global_parameters
                .push(format!("/api/global-parameters/{}", encode(name)));
        }
        for (name, parameter) in &baseline_globals {
            if now_globals.get(name) != Some(parameter) {
                plan.put_global_parameters.push((
                    format!("/api/global-parameters/{}", encode(name)),
                    json!({ "name": name, "value": parameter.get("value").cloned().unwrap_or(Value::Null) }),
                ));
            }
        }

        // Permissions: what survives phase 1, against the baseline.
        let survives = |p: &&Value| {
            !deleted_vhosts.contains(field(p, "vhost")) && !deleted_users.contains(field(p, "user"))
        };
        let key = |p: &Value| (field(p, "vhost").to_string(), field(p, "user").to_string());
        let wanted: BTreeMap<_, _> = b.permissions.iter().map(|p| (key(p), p)).collect();
        let have: BTreeMap<_, _> = n
            .permissions
            .iter()
            .filter(survives)
            .map(|p| (key(p), p))
            .collect();
        for ((vhost, user), p) in &wanted {
            let same = have.get(&(vhost.clone(), user.clone())).is_some_and(|h| {
                ["configure", "write", "read"]
                    .iter()
                    .all(|k| h.get(k) == p.get(k))
            });
            if !same {
                plan.put_permissions.push((
                    format!("/api/permissions/{}/{}", encode(vhost), encode(user)),
                    json!({ "configure": p.get("configure"), "write": p.get("write"), "read": p.get("read") }),
                ));
            }
        }
        for (vhost, user) in have.keys().filter(|k| !wanted.contains_key(*k)) {
            plan.delete_permissions.push(format!(
                "/api/permissions/{}/{}",
                encode(vhost),
                encode(user)
            ));
        }

        // Topic permissions, per (vhost, user).
        let group = |list: Vec<&Value>| {
            let mut groups: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
            for p in list {
                groups.entry(key(p)).or_default().push(p.clone());
            }
            for items in groups.values_mut() {
                items.sort_by_key(|v| v.to_string());
            }
            groups
        };
        let wanted = group(b.topic_permissions.iter().collect());
        let have = group(n.topic_permissions.iter().filter(survives).collect());
        for k in wanted.keys().chain(have.keys()).collect::<BTreeSet<_>>() {
            if wanted.get(k) == have.get(k) {
                continue;
            }
            let path = format!("/api/topic-permissions/{}/{}", encode(&k.0), encode(&k.1));
            let puts = wanted
                .get(k)
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        path.clone(),
                        json!({ "exchange": p.get("exchange"), "write": p.get("write"), "read": p.get("read") }),
                    )
                })
                .collect();
            plan.topic_permissions.push(TopicRestore {
                delete: have.contains_key(k).then(|| path.clone()),
                puts,
            });
        }

        // The baseline objects of re-created virtual hosts.
        let mut import = Map::new();
        for (kind, list) in [
            ("queues", &b.queues),
            ("exchanges", &b.exchanges),
            ("bindings", &b.bindings),
            ("policies", &b.policies),
            ("parameters", &b.parameters),
        ] {
            let items: Vec<Value> = list
                .iter()
                .filter(|v| recreated.contains(field(v, "vhost")))
                .cloned()
                .collect();
            if !items.is_empty() {
                import.insert(kind.into(), Value::Array(items));
            }
        }
        if !import.is_empty() {
            plan.import = Some(Value::Object(import));
        }
        for policy in baseline
            .operator_policies
            .iter()
            .filter(|p| recreated.contains(field(p, "vhost")))
        {
            plan.put_operator_policies.push((
                format!(
                    "/api/operator-policies/{}/{}",
                    encode(field(policy, "vhost")),
                    encode(field(policy, "name"))
                ),
                policy.clone(),
            ));
        }
        plan
    }
}

/// How a broker started from a copy of its baseline (a cached image, taken after a clean
/// shutdown) differs from that baseline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AfterRestart {
    /// Not at all.
    AtBaseline,
    /// It lacks baseline objects a shutdown drops (transient queues and exchanges, bindings to
    /// them), and nothing else: one `POST /api/definitions` body declares them again.
    Lacks(Value),
    /// Otherwise: a clean ([`Plan::between`]) takes it back.
    Differs,
}

impl AfterRestart {
    /// Compares the broker's state `now` with its `baseline`.
    pub(crate) fn between(baseline: &State, now: &State) -> AfterRestart {
        let (b, n) = (&baseline.definitions, &now.definitions);
        let same = baseline.vhosts == now.vhosts
            && [
                (&b.users, &n.users),
                (&b.vhosts, &n.vhosts),
                (&b.permissions, &n.permissions),
                (&b.topic_permissions, &n.topic_permissions),
                (&b.parameters, &n.parameters),
                (&b.global_parameters, &n.global_parameters),
                (&b.policies, &n.policies),
                (&baseline.operator_policies, &now.operator_policies),
            ]
            .into_iter()
            .all(|(wanted, have)| missing(wanted, have).is_some_and(|m| m.is_empty()));
        if !same {
            return AfterRestart::Differs;
        }
        let mut lacks = Map::new();
        for (kind, wanted, have) in [
            ("exchanges", &b.exchanges, &n.exchanges),
            ("queues", &b.queues, &n.queues),
            ("bindings", &b.bindings, &n.bindings),
        ] {
            match missing(wanted, have) {
                None => return AfterRestart::Differs,
                Some(items) if items.is_empty() => {}
                Some(items) => {
                    lacks.insert(kind.into(), Value::Array(items));
                }
            }
        }
        if lacks.is_empty() {
            AfterRestart::AtBaseline
        } else {
            AfterRestart::Lacks(Value::Object(lacks))
        }
    }
}

/// The items of `wanted` that `have` lacks, when `have` holds nothing else (both compared as
/// lists of JSON values, in any order); `None` when `have` holds something `wanted` does not.
fn missing(wanted: &[Value], have: &[Value]) -> Option<Vec<Value>> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for item in have {
        *counts.entry(item.to_string()).or_default() += 1;
    }
    let mut lacking = Vec::new();
    for item in wanted {
        match counts.get_mut(&item.to_string()) {
            Some(count) if *count > 0 => *count -= 1,
            _ => lacking.push(item.clone()),
        }
    }
    counts.values().all(|c| *c == 0).then_some(lacking)
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or("")
}

fn in_vhost<'a>(list: &'a [Value], vhost: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    list.iter().filter(move |v| field(v, "vhost") == vhost)
}

/// Whether the items of `vhost` in two lists differ, in any order.
fn differs(a: &[Value], b: &[Value], vhost: &str) -> bool {
    let sorted = |list: &[Value]| {
        let mut items: Vec<String> = in_vhost(list, vhost).map(Value::to_string).collect();
        items.sort();
        items
    };
    sorted(a) != sorted(b)
}

fn names_in<'a>(names: &'a BTreeSet<(String, String)>, vhost: &str) -> BTreeSet<&'a str> {
    names
        .iter()
        .filter(|(v, _)| v == vhost)
        .map(|(_, n)| n.as_str())
        .collect()
}

fn by_name(list: &[Value]) -> BTreeMap<&str, &Value> {
    list.iter().map(|v| (field(v, "name"), v)).collect()
}

/// Tags as a list, from a list or a comma-separated string.
fn tag_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> State {
        let definitions: Definitions = serde_json::from_value(json!({
            "users": [{"name": "guest", "password_hash": "h", "hashing_algorithm": "sha256", "tags": ["administrator"], "limits": {}}],
            "vhosts": [{"name": "/"}],
            "permissions": [{"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
            "global_parameters": [{"name": "internal_cluster_id", "value": "id"}],
        }))
        .unwrap();
        State {
            definitions,
            vhosts: BTreeMap::from([(
                "/".to_string(),
                VHostMeta {
                    description: Some("Default virtual host".into()),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_to_do_at_the_baseline() {
        assert!(Plan::between(&fresh(), &fresh()).is_empty());
    }

    #[test]
    fn a_dirty_default_vhost_is_recreated_with_its_permissions() {
        let baseline = fresh();
        let mut now = fresh();
        now.definitions
            .queues
            .push(json!({"name": "q", "vhost": "/", "durable": true}));
        now.queue_names.insert(("/".into(), "q".into()));
        let plan = Plan::between(&baseline, &now);
        assert_eq!(plan.delete_vhosts, ["/"]);
        assert_eq!(
            plan.create_vhosts,
            [(
                "/api/vhosts/%2F".to_string(),
                json!({"description": "Default virtual host"})
            )]
        );
        assert_eq!(plan.put_permissions.len(), 1);
        assert_eq!(plan.put_permissions[0].0, "/api/permissions/%2F/guest");
        assert!(plan.delete_users.is_empty() && plan.import.is_none());
    }

    #[test]
    fn an_exclusive_queue_alone_makes_a_vhost_dirty() {
        let mut now = fresh();
        now.queue_names.insert(("/".into(), "amq.gen-x".into()));
        assert_eq!(Plan::between(&fresh(), &now).delete_vhosts, ["/"]);
    }

    #[test]
    fn extra_vhosts_users_and_globals_go_and_changed_users_come_back() {
        let baseline = fresh();
        let mut now = fresh();
        now.vhosts.insert("test".into(), VHostMeta::default());
        now.definitions.permissions.push(json!({"user": "guest", "vhost": "test", "configure": ".*", "write": ".*", "read": ".*"}));
        now.definitions
            .users
            .push(json!({"name": "bob", "password_hash": "b", "tags": []}));
        now.definitions.users[0]["tags"] = json!([]);
        now.definitions.users[0]["limits"] = json!({"max-connections": 1});
        now.definitions
            .global_parameters
            .push(json!({"name": "cluster_name", "value": "x"}));
        let plan = Plan::between(&baseline, &now);
        assert_eq!(plan.delete_vhosts, ["test"]);
        assert!(plan.create_vhosts.is_empty());
        assert!(
            plan.delete_permissions.is_empty(),
            "the vhost's deletion takes its permissions"
        );
        assert_eq!(plan.delete_users, ["bob"]);
        assert_eq!(plan.put_users.len(), 1);
        assert_eq!(plan.put_users[0].1["tags"], json!("administrator"));
        assert_eq!(
            plan.delete_user_limits,
            ["/api/user-limits/guest/max-connections"]
        );
        assert_eq!(
            plan.delete_global_parameters,
            ["/api/global-parameters/cluster_name"]
        );
    }

    #[test]
    fn changed_permissions_and_topic_permissions_are_restored() {
        let baseline = fresh();
        let mut now = fresh();
        now.definitions.permissions[0]["write"] = json!("^$");
        now.definitions.topic_permissions.push(json!({"user": "guest", "vhost": "/", "exchange": "amq.topic", "write": ".*", "read": ".*"}));
        let plan = Plan::between(&baseline, &now);
        assert!(plan.delete_vhosts.is_empty());
        assert_eq!(plan.put_permissions.len(), 1);
        assert_eq!(
            plan.topic_permissions,
            [TopicRestore {
                delete: Some("/api/topic-permissions/%2F/guest".to_string()),
                puts: Vec::new()
            }]
        );
    }

    #[test]
    fn a_restarted_broker_lacking_transient_objects_gets_only_those_back() {
        let mut baseline = fresh();
        let durable = json!({"name": "jobs", "vhost": "/", "durable": true});
        let transient = json!({"name": "scratch", "vhost": "/", "durable": false});
        let exchange = json!({"name": "events", "vhost": "/", "durable": false});
        let binding = json!({"source": "events", "vhost": "/", "destination": "scratch"});
        baseline.definitions.queues = vec![durable.clone(), transient.clone()];
        baseline.definitions.exchanges = vec![exchange.clone()];
        baseline.definitions.bindings = vec![binding.clone()];
        assert_eq!(
            AfterRestart::between(&baseline, &baseline),
            AfterRestart::AtBaseline
        );
        let mut now = baseline.clone();
        now.definitions.queues = vec![durable.clone()];
        now.definitions.exchanges.clear();
        now.definitions.bindings.clear();
        assert_eq!(
            AfterRestart::between(&baseline, &now),
            AfterRestart::Lacks(json!({
                "exchanges": [exchange], "queues": [transient], "bindings": [binding]
            }))
        );
        // Anything else than a loss takes a clean.
        let mut extra = now.clone();
        extra
            .definitions
            .queues
            .push(json!({"name": "other", "vhost": "/", "durable": true}));
        assert_eq!(
            AfterRestart::between(&baseline, &extra),
            AfterRestart::Differs
        );
        let mut changed = baseline.clone();
        changed.definitions.permissions[0]["write"] = json!("^$");
        assert_eq!(
            AfterRestart::between(&baseline, &changed),
            AfterRestart::Differs
        );
        let mut no_vhost = baseline.clone();
        no_vhost.vhosts.clear();
        assert_eq!(
            AfterRestart::between(&baseline, &no_vhost),
            AfterRestart::Differs
        );
    }

    #[test]
    fn baseline_objects_of_a_recreated_vhost_are_imported_again() {
        let mut baseline = fresh();
        baseline
            .definitions
            .queues
            .push(json!({"name": "seed", "vhost": "/", "durable": true}));
        baseline.queue_names.insert(("/".into(), "seed".into()));
        let plan = Plan::between(&baseline, &baseline.clone());
        assert_eq!(plan.delete_vhosts, ["/"], "its messages may have changed");
        assert_eq!(
            plan.import,
            Some(json!({"queues": [{"name": "seed", "vhost": "/", "durable": true}]}))
        );
    }
}
