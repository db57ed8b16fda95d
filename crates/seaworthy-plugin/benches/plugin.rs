//! Suite `plugin`: loading a plugin (compiling it, or from the compile cache), and a plugin
//! fixture's clean() against the same reset done natively.
//!
//! `cargo bench -p seaworthy-plugin --bench plugin` (needs `cargo xtask images` and the
//! wasm32-wasip2 target; the plugins are built by the bench itself).
//!
//! * `load_cold`: a new host without a compile cache loads the memcached plugin: manifest,
//!   checks, compile, link.
//! * `load_cached`: a new host loads it again with the cache warm, as in a later run: the same,
//!   minus the compile: the cache entry's identity record (written once its whole artifact had
//!   verified) is checked against the open file, and the file is mapped. Target: median ≤ 5 ms.
//!
//! The search path holds the memcached plugin alone (a load reads every manifest on it).
//! * `memcached.clean_vs_native`: the memcached plugin fixture's clean() (`flush_all` sent by
//!   the plugin through the host's TCP capability, on a kept connection), against the same
//!   `flush_all\r\n` sent natively with a tokio TcpStream kept open to the same container.
//!   Target ratio ≤ 1.3.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use seaworthy::{Fixture, FixtureDefinition};
use seaworthy_benchkit::{target_dir, Suite, Target};
use seaworthy_plugin::{Grants, LoadOutcome, PluginHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn host(cache: Option<&PathBuf>, search: &PathBuf) -> PluginHost {
    let builder = PluginHost::builder()
        .search_dir(search)
        .grant("memcached", Grants::new().tcp(11211));
    match cache {
        Some(dir) => builder.cache_dir(dir),
        None => builder.no_cache(),
    }
    .build()
    .expect("a plugin host")
}

async fn native_flush(stream: &mut tokio::net::TcpStream) {
    stream
        .write_all(b"flush_all\r\n")
        .await
        .expect("send flush_all");
    let mut answer = [0u8; 16];
    let mut n = 0;
    while !answer[..n].ends_with(b"\r\n") {
        let read = stream
            .read(&mut answer[n..])
            .await
            .expect("read the answer");
        assert!(read > 0, "memcached closed the connection");
        n += read;
    }
    assert_eq!(&answer[..n], b"OK\r\n");
}

fn main() {
    let mut suite = Suite::new("plugin");
    let target = target_dir();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = seaworthy_plugin::workspace::build(repo.join("plugins"), &target)
        .expect("the plugins build");
    // A search path holding the memcached plugin alone, whatever else the workspace builds: a
    // load reads every manifest on the path (to refuse shadowed ids), so the figures compare
    // over time only with the same path.
    let search = target.join("seaworthy-bench").join("plugin-search");
    let _ = std::fs::remove_dir_all(&search);
    let memcached = built
        .iter()
        .find(|p| p.id == "memcached")
        .expect("the memcached plugin is built");
    let dir = search.join("memcached");
    std::fs::create_dir_all(&dir).expect("the search directory");
    for file in std::fs::read_dir(&memcached.dir).expect("the built plugin") {
        let file = file.expect("the built plugin");
        std::fs::copy(file.path(), dir.join(file.file_name())).expect("copy the plugin");
    }
    let cache = target.join("seaworthy-bench").join("plugin-cache");
    let _ = std::fs::remove_dir_all(&cache);

    // Warm-up: the engine, the linker, the file system cache; and fills the compile cache.
    let first = host(Some(&cache), &search)
        .load("memcached")
        .expect("the memcached plugin loads");
    assert_eq!(first.load_outcome(), LoadOutcome::Compiled);

    suite.measure("load_cold", 10, || {
        let search = search.clone();
        async move {
            let host = host(None, &search);
            let started = Instant::now();
            let plugin = host.load("memcached").expect("load");
            let elapsed = started.elapsed();
            assert_eq!(plugin.load_outcome(), LoadOutcome::Compiled);
            elapsed
        }
    });
    // A compile cache entry is trusted without reading it once its identity is recorded, which
    // waits until the entry has not changed for a second (as in any later run): one load after
    // that records it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    host(Some(&cache), &search)
        .load("memcached")
        .expect("the memcached plugin loads");
    suite.measure("load_cached", 50, || {
        let (search, cache) = (search.clone(), cache.clone());
        async move {
            let host = host(Some(&cache), &search);
            let started = Instant::now();
            let plugin = host.load("memcached").expect("load");
            let elapsed = started.elapsed();
            assert_eq!(
                plugin.load_outcome(),
                LoadOutcome::DiskCache,
                "a second load must not recompile"
            );
            elapsed
        }
    });
    suite.target(Target::MedianAtMostMs(5.0));

    let fixture = suite.block_on(async {
        first
            .fixture([("memory-mb", "16")])
            .expect("a definition")
            .start()
            .await
            .expect("memcached starts")
    });
    let address = fixture.container().address(11211).expect("published port");
    let mut native = suite.block_on(async {
        let stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
    });
    // Warm both paths (the plugin opens its connection on its first call).
    suite.block_on(async {
        for _ in 0..20 {
            fixture.clean().await.expect("clean");
            native_flush(&mut native).await;
        }
    });
    let native = std::sync::Arc::new(tokio::sync::Mutex::new(native));
    suite.compare(
        "memcached.clean_vs_native",
        "native tokio flush_all",
        300,
        || {
            let fixture = &fixture;
            async move {
                let started = Instant::now();
                fixture.clean().await.expect("the plugin's clean");
                started.elapsed()
            }
        },
        || {
            let native = native.clone();
            async move {
                let mut stream = native.lock().await;
                let started = Instant::now();
                native_flush(&mut stream).await;
                started.elapsed()
            }
        },
    );
    suite.target(Target::RatioAtMost(1.3));
    drop(fixture);
    suite.block_on(async {
        if let Ok(session) = seaworthy::Session::global().await {
            session.wait_for_background_removals(Duration::from_secs(30));
        }
    });
    let _ = std::fs::remove_dir_all(&cache);
    suite.finish();
}
