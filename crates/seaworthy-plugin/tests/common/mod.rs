//! Shared by the plugin test binaries: builds the plugins under `plugins/` once per process
//! (cargo is incremental, so this is quick when nothing changed) and makes hosts that see them.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use seaworthy::{Container, Fixture, Shared};
use seaworthy_plugin::{Grants, Limits, PluginFixtureDefinition, PluginHost, MANIFEST_FILE};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The workspace's target directory.
pub fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from)
}

/// The directory holding the built plugins (`<target>/seaworthy-plugins`), built on first use.
pub fn plugins() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let built = seaworthy_plugin::workspace::build(repo().join("plugins"), target())
                .expect("the plugins build");
            assert!(built.iter().any(|p| p.id == "memcached"), "{built:?}");
            target().join("seaworthy-plugins")
        })
        .clone()
}

/// A directory for one test's files (`<target>/seaworthy-plugin-tests/<name>`), empty.
pub fn scratch(name: &str) -> PathBuf {
    let dir = target().join("seaworthy-plugin-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the built plugin `id` in `dir`: its manifest with `edit` applied, and `component`
/// as its wasm (the built component when `None`).
pub fn plugin_copy(
    id: &str,
    dir: &Path,
    component: Option<&[u8]>,
    edit: impl Fn(String) -> String,
) {
    let original = plugins().join(id);
    std::fs::create_dir_all(dir).unwrap();
    let manifest = std::fs::read_to_string(original.join(MANIFEST_FILE)).unwrap();
    std::fs::write(dir.join(MANIFEST_FILE), edit(manifest)).unwrap();
    match component {
        Some(bytes) => std::fs::write(dir.join("plugin.wasm"), bytes).unwrap(),
        None => {
            std::fs::copy(original.join("plugin.wasm"), dir.join("plugin.wasm")).unwrap();
        }
    }
}

/// Fails unless less than `limit` has passed since `started`.
pub fn elapsed_under(started: Instant, limit: Duration) {
    let elapsed = started.elapsed();
    assert!(elapsed < limit, "took {elapsed:?}, over {limit:?}");
}

/// The labels of `container`, as the engine reports them.
pub async fn labels(container: &Container) -> HashMap<String, String> {
    container
        .inspect()
        .await
        .unwrap()
        .config
        .unwrap()
        .labels
        .unwrap()
}

/// A compile cache private to this test binary (so cache tests see what they did).
pub fn cache_dir(name: &str) -> PathBuf {
    target().join("seaworthy-plugin-test-cache").join(name)
}

/// What the shipped plugins need, granted (and the test plugins that declare only what they
/// use, and the authoring guide's example).
pub fn shipped_grants(
    builder: seaworthy_plugin::PluginHostBuilder,
) -> seaworthy_plugin::PluginHostBuilder {
    builder
        .grant("memcached", Grants::new().tcp(11211))
        .grant("redis", Grants::new().exec())
        .grant("probe", Grants::new().tcp(80).http(80).exec())
        .grant("escape", Grants::new().tcp(7000))
        .grant("kv", Grants::new().tcp(6379))
        .grant("hostile", Grants::new().http(80).exec())
}

/// A host seeing the built plugins, with the shipped plugins' grants and test limits.
pub fn host() -> PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        shipped_grants(PluginHost::builder())
            .search_dir(plugins())
            .cache_dir(cache_dir("shared"))
            .limits(
                Limits::default()
                    .with_cpu_per_call(std::time::Duration::from_secs(2))
                    .with_memory_bytes(32 << 20),
            )
            .build()
            .expect("a plugin host")
    })
    .clone()
}

/// memcached's answer to `command` over a fresh connection to `address`, up to a line for which
/// `done` holds.
pub async fn memcached(address: &str, command: &str, done: fn(&str) -> bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to memcached");
    stream.write_all(command.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("receive");
        assert!(
            n > 0,
            "memcached closed the connection; got {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if text.ends_with("\r\n") && text.lines().last().is_some_and(done) {
            return text;
        }
    }
}

/// The healthy memcached fixture of the sandbox tests.
pub fn memcached_definition() -> PluginFixtureDefinition {
    host()
        .load("memcached")
        .unwrap()
        .fixture([("memory-mb", "16")])
        .unwrap()
}

/// A healthy plugin fixture, shared by the tests of this binary.
pub static HEALTHY: Shared<PluginFixtureDefinition> = Shared::per_process(memcached_definition);

/// What [`while_healthy_cleans`] saw.
pub struct Meanwhile<T> {
    /// What the attack returned.
    pub outcome: T,
    /// From the attack's start until it and the healthy cleans were all done.
    pub elapsed: Duration,
    /// The slowest of the healthy cleans.
    pub slowest_clean: Duration,
}

/// Runs `attack` while the healthy fixture (started first, outside the time measured) cleans
/// five times, each of which must succeed.
pub async fn while_healthy_cleans<T>(attack: impl std::future::Future<Output = T>) -> Meanwhile<T> {
    let healthy = HEALTHY.get().await.expect("the healthy fixture");
    let started = Instant::now();
    let (outcome, slowest_clean) = tokio::join!(attack, async {
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            let clean = Instant::now();
            healthy
                .clean()
                .await
                .expect("a healthy clean during the attack");
            slowest = slowest.max(clean.elapsed());
        }
        slowest
    });
    Meanwhile {
        outcome,
        elapsed: started.elapsed(),
        slowest_clean,
    }
}

/// The healthy fixture still starts, takes writes and cleans.
pub async fn assert_healthy_plugin_still_works() {
    // Exclusive: the tests of a binary run in parallel and all write and clean this fixture.
    let fixture = HEALTHY.exclusive().await.expect("the healthy fixture");
    let address = fixture.container().address(11211).unwrap();
    memcached(&address, "set alive 0 0 1\r\n1\r\n", |l| l == "STORED").await;
    fixture
        .clean()
        .await
        .expect("the healthy plugin still cleans");
    assert_eq!(
        memcached(&address, "get alive\r\n", |l| l == "END").await,
        "END\r\n"
    );
}
