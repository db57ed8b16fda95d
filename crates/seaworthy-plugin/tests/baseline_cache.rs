//! The baseline cache of a plugin fixture against the real engine, with the etcd plugin (on the
//! local `seaworthy-test/etcd` image, whose data directory is an image `VOLUME`): the first start
//! with the cache on commits the container its first boot left (etcd's data directory, and the
//! baseline keys the plugin's `ready` put there), the next start runs that image with that data,
//! a changed configuration or a rebuilt plugin builds a new image, and with the cache off nothing
//! is committed.
//!
//! Each test keeps its images in a namespace of its own, removed when it ends, also when it fails
//! (the suite's leak check counts every image labelled `io.seaworthy.managed=true`).

mod catalogue;
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use catalogue::etcd::Gateway;
use seaworthy::baseline_cache::{self, BaselineCache, PruneOptions};
use seaworthy::{Fixture, FixtureDefinition, Session};
use seaworthy_plugin::{Grants, PluginFixture, PluginFixtureDefinition, PluginHost};
use seaworthy_testkit::{assert_cache_labels, image_of, CacheNamespace};
use serde_json::json;

/// A host seeing the plugins in `dir`, granting etcd its gateway port.
fn host(dir: &Path) -> PluginHost {
    PluginHost::builder()
        .search_dir(dir)
        .cache_dir(common::cache_dir("baseline-cache"))
        .grant("etcd", Grants::new().http(2379))
        .build()
        .expect("a plugin host")
}

/// The etcd plugin with a baseline of two keys, the second `config/zone = zone`.
fn etcd(dir: &Path, zone: &str, cache: BaselineCache) -> PluginFixtureDefinition {
    host(dir)
        .load("etcd")
        .expect("the etcd plugin loads")
        .fixture([("key.config/mode", "baseline"), ("key.config/zone", zone)])
        .expect("an etcd definition")
        .with_baseline_cache(cache)
}

fn baseline(zone: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("config/mode".to_string(), "baseline".to_string()),
        ("config/zone".to_string(), zone.to_string()),
    ])
}

/// The library's log lines (`tracing`, info) of this test binary, in order: a global subscriber
/// (the cache logs from Seaworthy's own runtime threads) writing into a buffer.
fn log() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        tracing_subscriber::fmt()
            .with_env_filter("seaworthy=info")
            .with_ansi(false)
            .with_writer(move || LogWriter(log))
            .init();
        log
    })
}

struct LogWriter(&'static Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Takes the log lines written since the last call that mention the etcd plugin's baseline.
fn cache_lines() -> Vec<String> {
    let text = String::from_utf8(std::mem::take(&mut *log().lock().unwrap())).unwrap();
    text.lines()
        .filter(|l| l.contains("plugin etcd") && l.contains("cached baseline"))
        .map(String::from)
        .collect()
}

/// Fails unless exactly one of `lines` contains `what`.
fn assert_logged(lines: &[String], what: &str) {
    let found = lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(found, 1, "one line with {what:?} in {lines:#?}");
}

/// A client of the fixture's HTTP/JSON gateway.
fn gateway(etcd: &PluginFixture) -> Result<Gateway> {
    Ok(Gateway::new(&etcd.container().address(2379)?))
}

/// The raft term of the member: every boot of a single member elects it again, one term on.
/// A member that found the data of an earlier boot is past the term a fresh one starts in.
async fn raft_term(etcd: &PluginFixture) -> Result<u64> {
    let status = gateway(etcd)?.call("maintenance/status", json!({})).await?;
    status["raftTerm"]
        .as_str()
        .context("a raft term")?
        .parse()
        .context("a raft term")
}

/// The fixture answers with exactly its baseline, and returns to it after a test's write.
async fn assert_baseline(etcd: &PluginFixture, zone: &str) -> Result<()> {
    let gateway = gateway(etcd)?;
    assert_eq!(gateway.keys("").await?, baseline(zone));
    gateway.put("scratch", "x", None).await?;
    etcd.clean().await?;
    assert_eq!(gateway.keys("").await?, baseline(zone));
    Ok(())
}

/// The id of the image `reference`.
async fn image_id(reference: &str) -> Result<String> {
    let session = Session::global().await?;
    let info = session.engine().docker().inspect_image(reference).await?;
    info.id.context("an image id")
}

/// With the cache on: the first start builds one labelled image and runs from it, the next one
/// runs the same image; both found the first boot's data (a later raft term than a fresh
/// member's) and are at their baseline; a changed configuration builds a new image, and a
/// rebuilt plugin (other wasm bytes) another; pruning the namespace removes them all.
#[tokio::test]
async fn a_second_start_runs_the_cached_first_boot_and_a_new_key_builds_a_new_image() -> Result<()>
{
    let ns = CacheNamespace::new("plugin-etcd");
    let dir = common::plugins();
    let cache = || BaselineCache::on().with_namespace(&ns.name);
    cache_lines();
    let fresh = etcd(&dir, "eu", BaselineCache::off()).start().await?;
    let fresh_term = raft_term(&fresh).await?;
    drop(fresh);

    let first = etcd(&dir, "eu", cache()).start().await?;
    let images = ns.images().await?;
    assert_eq!(images.len(), 1, "{images:?}");
    assert_cache_labels(&images[0], "plugin").await?;
    let lines = cache_lines();
    assert_logged(&lines, "no cached baseline yet: building one");
    assert_logged(&lines, "cached baseline built");
    assert_eq!(images[0].identity, "plugin etcd");
    assert_eq!(
        image_of(&first).await?,
        images[0].id,
        "started from the cache"
    );
    let first_term = raft_term(&first).await?;
    assert!(
        first_term > fresh_term,
        "the member found the first boot's data: term {first_term}, a fresh member's {fresh_term}"
    );
    assert_baseline(&first, "eu").await?;
    drop(first);

    let started = Instant::now();
    let second = etcd(&dir, "eu", cache()).start().await?;
    let warm = started.elapsed();
    assert_eq!(image_of(&second).await?, images[0].id);
    assert_eq!(ns.images().await?.len(), 1, "no new image for the same key");
    let lines = cache_lines();
    assert_logged(&lines, "cached baseline used");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(
        raft_term(&second).await?,
        first_term,
        "the same data as the first"
    );
    assert_baseline(&second, "eu").await?;
    drop(second);
    eprintln!("warm start from the cached baseline: {warm:?}");

    let third = etcd(&dir, "us", cache()).start().await?;
    let images = ns.images().await?;
    assert_eq!(images.len(), 2, "a changed configuration: {images:?}");
    let lines = cache_lines();
    assert_logged(
        &lines,
        "cached baseline invalidated: the definition changed, the init steps or the files they read changed",
    );
    assert_logged(&lines, "cached baseline built");
    assert_eq!(image_of(&third).await?, images[0].id, "the newest image");
    assert_baseline(&third, "us").await?;
    drop(third);

    // The same plugin with other wasm bytes (a custom section added: what a rebuild does to the
    // digest) is a new key.
    let rebuilt = common::scratch("baseline-cache-rebuilt").join("etcd");
    let mut wasm = std::fs::read(dir.join("etcd/plugin.wasm"))?;
    wasm.extend_from_slice(&[0, 8, 7]);
    wasm.extend_from_slice(b"rebuilt");
    common::plugin_copy("etcd", &rebuilt, Some(&wasm), |m| m);
    let other = etcd(rebuilt.parent().context("a parent")?, "us", cache());
    let fourth = other.start().await?;
    let images = ns.images().await?;
    assert_eq!(images.len(), 3, "a rebuilt plugin: {images:?}");
    assert_eq!(image_of(&fourth).await?, images[0].id);
    drop(fourth);

    let session = Session::global().await?;
    session.wait_for_background_removals(Duration::from_secs(30));
    let options = PruneOptions {
        namespace: Some(ns.name.clone()),
        all: true,
        ..Default::default()
    };
    let (removed, errors) = baseline_cache::prune(session.engine(), &options).await?;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(removed.len(), 3);
    assert!(ns.images().await?.is_empty());
    Ok(())
}

/// The key (no engine needed): the same for the same plugin and configuration, another for
/// another configuration (its definition and init parts) or another base image id.
#[test]
fn the_key_covers_the_configuration_and_the_image() -> Result<()> {
    let dir = common::plugins();
    let key = |zone: &str, image: &str| {
        baseline_cache::cache_key(&etcd(&dir, zone, BaselineCache::on()), image)
    };
    let eu = key("eu", "sha256:base")?;
    assert_eq!(eu, key("eu", "sha256:base")?, "stable");
    let us = key("us", "sha256:base")?;
    assert_ne!(eu.key, us.key);
    assert_ne!(eu.definition, us.definition);
    assert_ne!(eu.init, us.init);
    assert_eq!(eu.image, us.image);
    let other = key("eu", "sha256:other")?;
    assert_ne!(eu.key, other.key);
    assert_eq!(eu.init, other.init);
    Ok(())
}

/// With the cache off the fixture runs the plugin's image as it is and nothing is committed.
#[tokio::test]
async fn with_the_cache_off_nothing_is_committed() -> Result<()> {
    let ns = CacheNamespace::new("plugin-etcd-off");
    let dir = common::plugins();
    let definition = etcd(&dir, "eu", BaselineCache::off().with_namespace(&ns.name));
    let etcd_image = image_id("seaworthy-test/etcd").await?;
    let fixture = definition.start().await?;
    assert_eq!(image_of(&fixture).await?, etcd_image);
    assert_baseline(&fixture, "eu").await?;
    drop(fixture);
    assert!(ns.images().await?.is_empty());
    Ok(())
}

/// The warm start against the cold one (`--ignored --nocapture` prints medians): `runs` starts of
/// each, until the fixture is handed out; the cold side has the cache off, the warm side starts
/// from the cached image built before the runs.
#[tokio::test]
#[ignore = "a timing, run by hand"]
async fn warm_start_against_cold() -> Result<()> {
    let ns = CacheNamespace::new("plugin-etcd-timing");
    let dir = common::plugins();
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let cold = etcd(&dir, "eu", BaselineCache::off());
    let warm = etcd(&dir, "eu", BaselineCache::on().with_namespace(&ns.name));
    drop(warm.start().await?); // builds the image
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (side, definition) in [&cold, &warm].into_iter().enumerate() {
            let started = Instant::now();
            let fixture = definition.start().await?;
            times[side].push(started.elapsed());
            drop(fixture);
        }
    }
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let (cold, warm) = (median(&mut times[0]), median(&mut times[1]));
    eprintln!(
        "etcd plugin, {runs} runs a side: cold {cold:?}, warm {warm:?}, warm/cold {:.3}",
        warm.as_secs_f64() / cold.as_secs_f64()
    );
    Ok(())
}
