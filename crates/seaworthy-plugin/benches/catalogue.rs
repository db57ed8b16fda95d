//! Suite `catalogue`: what resetting each fixture of the catalogue costs against the other ways
//! a user would reset the same state. One suite for the native MariaDB fixture and the plugins
//! (etcd, Mosquitto, NATS), each part described in its module:
//!
//! * `mariadb.clean` (≤ 25 ms), `mariadb.isolated` (≤ 10 ms), `mariadb.isolated_refill` (the
//!   pool's background work per checkout);
//! * for each plugin `<name>.clean_vs_native` (against a native client doing the same reset from
//!   the test process; ratio ≤ 1.3) and `<name>.clean_vs_recreate` (against starting a new
//!   fixture; ratio ≤ 0.05).
//!
//! `cargo bench -p seaworthy-plugin --bench catalogue` (needs `cargo xtask images` and the
//! wasm32-wasip2 target; the plugins are built by the bench itself); results in
//! `target/seaworthy-bench/catalogue.json`. `SEAWORTHY_CATALOGUE_ONLY=mosquitto,nats` runs only
//! the parts named (`mariadb`, `etcd`, `mosquitto`, `nats`), for a quick look: its JSON then
//! holds only those results, so the documented numbers come from a run of all.

use std::time::{Duration, Instant};

use seaworthy::{Fixture, FixtureDefinition};
use seaworthy_benchkit::{target_dir, Suite, Target};
use seaworthy_plugin::{Grants, PluginFixture, PluginFixtureDefinition, PluginHost};

#[path = "catalogue/etcd.rs"]
mod etcd;
#[path = "catalogue/mariadb.rs"]
mod mariadb;
#[path = "catalogue/mosquitto.rs"]
mod mosquitto;
#[path = "catalogue/nats.rs"]
mod nats;

fn main() {
    let mut suite = Suite::new("catalogue");
    let only = std::env::var("SEAWORTHY_CATALOGUE_ONLY").ok();
    let wanted = |part: &str| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|p| p.trim() == part))
    };
    if wanted("mariadb") {
        mariadb::run(&mut suite);
    }

    let target = target_dir();
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    seaworthy_plugin::workspace::build(repo.join("plugins"), &target).expect("the plugins build");
    let host = PluginHost::builder()
        .search_dir(target.join("seaworthy-plugins"))
        .cache_dir(
            target
                .join("seaworthy-bench")
                .join("catalogue-plugin-cache"),
        )
        .grant("etcd", Grants::new().http(2379))
        .grant("mosquitto", Grants::new().tcp(1883))
        .grant("nats", Grants::new().tcp(4222))
        .build()
        .expect("a plugin host");
    if wanted("etcd") {
        etcd::run(&mut suite, &host);
    }
    if wanted("mosquitto") {
        mosquitto::run(&mut suite, &host);
    }
    if wanted("nats") {
        nats::run(&mut suite, &host);
    }

    suite.block_on(async {
        if let Ok(session) = seaworthy::Session::global().await {
            session.wait_for_background_removals(Duration::from_secs(30));
        }
    });
    suite.finish();
}

/// A plugin's state as the test process sees it through a native client.
trait Store {
    /// Writes the state every run starts from (not timed).
    async fn dirty(&self);
    /// What the plugin's clean() does, from the test process.
    async fn native_clean(&self);
    /// Fails unless the store is at the baseline.
    async fn assert_baseline(&self);
}

/// Loads plugin `id`, starts a fixture of it with `config`, has `native` make the native
/// client of it (and name it), then [`compare_plugin`] with `runs` runs.
fn bench_plugin<S: Store>(
    suite: &mut Suite,
    host: &PluginHost,
    id: &str,
    config: impl IntoIterator<Item = (String, String)>,
    runs: usize,
    native: impl FnOnce(&mut Suite, &PluginFixture) -> (&'static str, S),
) {
    let definition: PluginFixtureDefinition = host
        .load(id)
        .unwrap_or_else(|e| panic!("the {id} plugin loads: {e}"))
        .fixture(config)
        .unwrap_or_else(|e| panic!("a {id} definition: {e}"));
    let fixture = suite
        .block_on(definition.start())
        .unwrap_or_else(|e| panic!("{id} starts: {e}"));
    let (label, store) = native(suite, &fixture);
    compare_plugin(suite, id, label, runs, &definition, &fixture, &store);
    drop(fixture);
}

/// `<name>.clean_vs_native` (ratio ≤ 1.3, `runs` runs) and `<name>.clean_vs_recreate` (ratio ≤
/// 0.05, 10 runs) of the plugin fixture `fixture` started from `definition`, after warming
/// both paths and checking that each reaches the baseline. The recreated fixture's removal is
/// not counted, which favours the baseline.
fn compare_plugin<S: Store>(
    suite: &mut Suite,
    name: &str,
    native: &str,
    runs: usize,
    definition: &PluginFixtureDefinition,
    fixture: &PluginFixture,
    store: &S,
) {
    let plugin_clean = || async {
        store.dirty().await;
        let started = Instant::now();
        fixture.clean().await.expect("the plugin's clean");
        started.elapsed()
    };
    suite.block_on(async {
        for _ in 0..3 {
            store.dirty().await;
            fixture.clean().await.expect("the plugin's clean");
            store.assert_baseline().await;
            store.dirty().await;
            store.native_clean().await;
            store.assert_baseline().await;
        }
    });
    suite.compare(
        &format!("{name}.clean_vs_native"),
        native,
        runs,
        plugin_clean,
        || async {
            store.dirty().await;
            let started = Instant::now();
            store.native_clean().await;
            started.elapsed()
        },
    );
    suite.target(Target::RatioAtMost(1.3));
    suite.compare(
        &format!("{name}.clean_vs_recreate"),
        &format!("a new {name} fixture started from the definition"),
        10,
        plugin_clean,
        || async {
            let started = Instant::now();
            let fresh = definition.start().await.expect("a new fixture");
            let elapsed = started.elapsed();
            drop(fresh);
            elapsed
        },
    );
    suite.target(Target::RatioAtMost(0.05));
    suite.block_on(store.assert_baseline());
}
