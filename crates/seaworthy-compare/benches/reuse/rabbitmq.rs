//! The `rabbitmq.first_ready` group of the `reuse` suite: starting a RabbitMQ fixture whose
//! baseline is cached across runs, against the same fixture with no cache.
//!
//! The fixture's init steps import definitions (what `rabbitmqctl export_definitions` writes):
//! 4 virtual hosts, 3 users with their permissions, 40 durable queues, 8 exchanges, 40 bindings
//! and a policy. From `start()` to a fixture at its baseline (ready, connected, its baseline
//! recorded or loaded), with the cache warm (the image built before the timed runs: a boot of a
//! node whose database is in the image's layers, its baseline file loaded, what a shutdown drops
//! declared again), against the same definition with the cache off (its database on a tmpfs, as
//! by default): the broker's first boot (its database created, its feature flags enabled, the
//! default user and vhost), the definitions' import, the baseline's recording. The boot itself
//! (the Erlang VM, loading RabbitMQ's modules) is most of both; 8 runs a side, alternated, as
//! the spread of a boot is wide on a busy machine. Both sides hand out the same
//! broker: the queues are counted after each start (untimed). Each started fixture is dropped
//! (its removal runs in the background, untimed).

use std::time::{Duration, Instant};

use seaworthy::baseline_cache::BaselineCache;
use seaworthy::FixtureDefinition;
use seaworthy_benchkit::Suite;
use seaworthy_rabbitmq::RabbitMq;

const RUNS: usize = 8;
const VHOSTS: usize = 4;
const QUEUES_PER_VHOST: usize = 10;

/// The definitions the init step imports.
fn definitions() -> String {
    let mut vhosts = Vec::new();
    let mut permissions = Vec::new();
    let mut queues = Vec::new();
    let mut exchanges = Vec::new();
    let mut bindings = Vec::new();
    let users: Vec<String> = ["orders", "billing", "audit"]
        .iter()
        .map(|u| format!(r#"{{"name": "{u}", "password_hash": "", "tags": ""}}"#))
        .collect();
    for v in 0..VHOSTS {
        vhosts.push(format!(r#"{{"name": "app-{v}"}}"#));
        for user in ["guest", "orders", "billing", "audit"] {
            permissions.push(format!(
                r#"{{"user": "{user}", "vhost": "app-{v}", "configure": ".*", "write": ".*", "read": ".*"}}"#
            ));
        }
        for e in 0..2 {
            exchanges.push(format!(
                r#"{{"name": "events-{e}", "vhost": "app-{v}", "type": "topic", "durable": true, "auto_delete": false, "internal": false, "arguments": {{}}}}"#
            ));
        }
        for q in 0..QUEUES_PER_VHOST {
            queues.push(format!(
                r#"{{"name": "jobs-{q}", "vhost": "app-{v}", "durable": true, "auto_delete": false, "arguments": {{"x-max-length": 10000}}}}"#
            ));
            bindings.push(format!(
                r#"{{"source": "events-{}", "vhost": "app-{v}", "destination": "jobs-{q}", "destination_type": "queue", "routing_key": "job.{q}.#", "arguments": {{}}}}"#,
                q % 2
            ));
        }
    }
    let policy = r#"{"vhost": "app-0", "name": "ttl", "pattern": "^jobs-", "apply-to": "queues", "definition": {"message-ttl": 60000}, "priority": 0}"#;
    format!(
        r#"{{"users": [{}], "vhosts": [{}], "permissions": [{}], "queues": [{}], "exchanges": [{}], "bindings": [{}], "policies": [{policy}]}}"#,
        users.join(","),
        vhosts.join(","),
        permissions.join(","),
        queues.join(","),
        exchanges.join(","),
        bindings.join(",")
    )
}

/// Starts `def`, checks the queues are there (untimed), drops it; returns the time to a fixture.
async fn first_ready(def: &RabbitMq) -> Duration {
    let t = Instant::now();
    let rabbit = def.start().await.expect("a RabbitMQ fixture");
    let elapsed = t.elapsed();
    let queues = rabbit.management().queues(None).await.expect("list queues");
    assert_eq!(
        queues.len(),
        VHOSTS * QUEUES_PER_VHOST,
        "the fixture does not hold the init steps' queues"
    );
    drop(rabbit);
    elapsed
}

/// Adds `rabbitmq.first_ready` to `suite` (no target: the issue asks for the figure).
pub fn first_ready_group(suite: &mut Suite) {
    let namespace = format!("bench-reuse-rabbitmq-{}", std::process::id());
    let cold = RabbitMq::new()
        .with_definitions(definitions())
        .with_baseline_cache(BaselineCache::off());
    let warm = cold
        .clone()
        .with_baseline_cache(BaselineCache::on().with_namespace(&namespace));
    let built = crate::build_cache(suite, "the cached RabbitMQ baseline", first_ready(&warm));
    let (warm, cold) = (&warm, &cold);
    suite.compare(
        "rabbitmq.first_ready",
        "the same fixture with no cache (first boot, definitions imported: 4 vhosts, 3 users, 40 queues, 8 exchanges, 40 bindings, a policy)",
        RUNS,
        || first_ready(warm),
        || first_ready(cold),
    );
    suite.annotate("rabbitmq_cache_build_ms", built.as_secs_f64() * 1000.0);
    crate::remove_cached_after_runs(suite, &namespace);
}
