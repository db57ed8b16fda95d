//! Misbehaving plugins (built from `plugins/testdata/`): each fails with a clear error naming
//! the plugin, within its limits, and the host and the other fixtures keep working.

mod common;

use std::time::{Duration, Instant};

use seaworthy::{Fixture, FixtureDefinition, Shared};
use seaworthy_plugin::{Grants, PluginError, PluginFixtureDefinition, PluginHost, MANIFEST_FILE};

fn memcached_definition() -> PluginFixtureDefinition {
    common::host()
        .load("memcached")
        .unwrap()
        .fixture([("memory-mb", "16")])
        .unwrap()
}

/// A healthy plugin fixture, shared by the tests of this binary.
static HEALTHY: Shared<PluginFixtureDefinition> = Shared::per_process(memcached_definition);

/// The healthy fixture still starts, takes writes and cleans.
async fn assert_healthy_plugin_still_works() {
    // Exclusive: the tests of this file run in parallel and all write and clean this fixture.
    let fixture = HEALTHY.exclusive().await.expect("the healthy fixture");
    let address = fixture.container().address(11211).unwrap();
    common::memcached(&address, "set alive 0 0 1\r\n1\r\n", |l| l == "STORED").await;
    fixture
        .clean()
        .await
        .expect("the healthy plugin still cleans");
    assert_eq!(
        common::memcached(&address, "get alive\r\n", |l| l == "END").await,
        "END\r\n"
    );
}

fn misbehaving(id: &str, when: &str) -> seaworthy_plugin::Result<PluginFixtureDefinition> {
    common::host().load(id)?.fixture([("when", when)])
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_its_cpu_deadline() {
    // In definition(): no container involved.
    let started = Instant::now();
    let error = misbehaving("spin", "definition").unwrap_err();
    assert!(matches!(error, PluginError::Deadline { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );

    // In clean(), on a started fixture, while another fixture keeps cleaning.
    let spin = misbehaving("spin", "clean")
        .unwrap()
        .start()
        .await
        .expect("the spin plugin's container");
    let healthy = HEALTHY.get().await.unwrap();
    let started = Instant::now();
    let (spun, others) = tokio::join!(spin.clean(), async {
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            let t = Instant::now();
            healthy
                .clean()
                .await
                .expect("a healthy clean while the spin plugin loops");
            slowest = slowest.max(t.elapsed());
        }
        slowest
    });
    let elapsed = started.elapsed();
    let message = spun.unwrap_err().to_string();
    eprintln!("{message}");
    assert!(
        message.contains("plugin `spin`") && message.contains("deadline of 2s"),
        "{message}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "the loop ran for {elapsed:?}"
    );
    assert!(
        others < Duration::from_secs(1),
        "a healthy clean took {others:?} while the loop ran"
    );
    drop(healthy);
    // The instance was discarded; the next call gets a fresh one.
    assert!(spin.check_ready().await.expect("a fresh instance answers"));
    assert_healthy_plugin_still_works().await;
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_limit() {
    let hog = misbehaving("hog", "clean").unwrap().start().await.unwrap();
    let started = Instant::now();
    let error = hog.try_clean().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    match &error {
        PluginError::Memory {
            plugin,
            limit,
            requested,
            ..
        } => {
            assert_eq!(plugin, "hog");
            assert_eq!(*limit, 32 << 20);
            assert!(requested > limit);
        }
        other => panic!("expected a memory-limit error, got {other:?}"),
    }
    let message = hog.clean().await.unwrap_err().to_string();
    eprintln!("{message}");
    assert!(
        message.contains("plugin `hog`") && message.contains("over its limit of 33554432 bytes"),
        "{message}"
    );
    assert!(hog.check_ready().await.unwrap());
    assert_healthy_plugin_still_works().await;
}

#[tokio::test]
async fn a_trap_discards_only_that_instance() {
    let error = misbehaving("trap", "definition").unwrap_err();
    assert!(matches!(error, PluginError::Trap { .. }), "{error:?}");

    let trap = misbehaving("trap", "clean").unwrap().start().await.unwrap();
    let message = trap.clean().await.unwrap_err().to_string();
    eprintln!("{message}");
    assert!(
        message.contains("plugin `trap`: clean() trapped"),
        "{message}"
    );
    assert!(
        message.contains("panicked on purpose"),
        "the panic message is missing: {message}"
    );
    assert!(message.contains(trap.container().name()), "{message}");
    // A fresh instance serves the next call, on the same fixture; and it traps again, alone.
    assert!(trap.check_ready().await.unwrap());
    assert!(trap.try_clean().await.unwrap_err().discarded_instance());
    assert_healthy_plugin_still_works().await;
}

#[tokio::test]
async fn an_unsupported_wit_version_is_refused_before_compiling() {
    let cache = common::cache_dir("future-wit");
    let _ = std::fs::remove_dir_all(&cache);
    let host = PluginHost::builder()
        .search_dir(common::plugins())
        .cache_dir(&cache)
        .build()
        .unwrap();
    let error = host.load("future-wit").unwrap_err();
    assert!(
        matches!(
            error,
            PluginError::UnsupportedWit {
                declared_in: "its manifest",
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("plugin `future-wit` targets seaworthy:fixture@0.2.0")
            && message.contains("supports 0.1.0"),
        "{message}"
    );

    // A manifest that lies about the version is caught by reading the component itself.
    let lying = common::target()
        .join("seaworthy-plugin-tests")
        .join("future-wit-lying");
    std::fs::create_dir_all(&lying).unwrap();
    let original = common::plugins().join("future-wit");
    std::fs::copy(original.join("plugin.wasm"), lying.join("plugin.wasm")).unwrap();
    let manifest = std::fs::read_to_string(original.join(MANIFEST_FILE))
        .unwrap()
        .replace("wit = \"0.2.0\"", "wit = \"0.1.0\"");
    std::fs::write(lying.join(MANIFEST_FILE), manifest).unwrap();
    let error = host.load_from(&lying).unwrap_err();
    assert!(
        matches!(
            error,
            PluginError::UnsupportedWit {
                declared_in: "its component",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        !cache.exists() || std::fs::read_dir(&cache).unwrap().next().is_none(),
        "something was compiled"
    );
    assert_healthy_plugin_still_works().await;
}

#[tokio::test]
async fn a_capability_that_is_not_granted_is_refused() {
    // The manifest asks for TCP port 22 besides 11211; only 11211 is granted.
    let host = PluginHost::builder()
        .search_dir(common::plugins())
        .cache_dir(common::cache_dir("shared"))
        .grant("overreach", Grants::new().tcp(11211))
        .build()
        .unwrap();
    let message = host.load("overreach").unwrap_err().to_string();
    assert!(
        message.contains("plugin `overreach` asks for tcp port 22, which is not granted"),
        "{message}"
    );
    assert!(PluginHost::builder()
        .search_dir(common::plugins())
        .build()
        .unwrap()
        .load("overreach")
        .is_err());

    // With a manifest that declares only 11211, each undeclared call is denied at run time.
    let honest = common::target()
        .join("seaworthy-plugin-tests")
        .join("overreach-honest");
    std::fs::create_dir_all(&honest).unwrap();
    let original = common::plugins().join("overreach");
    std::fs::copy(original.join("plugin.wasm"), honest.join("plugin.wasm")).unwrap();
    let manifest = std::fs::read_to_string(original.join(MANIFEST_FILE))
        .unwrap()
        .replace("tcp = [11211, 22]", "tcp = [11211]");
    std::fs::write(honest.join(MANIFEST_FILE), manifest).unwrap();
    let plugin = host
        .load_from(&honest)
        .expect("the honest manifest is granted");
    let fixture = plugin
        .fixture([("try", "tcp")])
        .unwrap()
        .start()
        .await
        .unwrap();
    let message = fixture.clean().await.unwrap_err().to_string();
    assert!(
        message
            .contains("denied: tcp port 22 is not declared in the manifest of plugin `overreach`"),
        "{message}"
    );
    for (what, needle) in [
        ("exec", "exec is not declared"),
        ("http", "http to port 11211 is not declared"),
    ] {
        let fixture = plugin.fixture([("try", what)]).unwrap();
        let runner = fixture.start().await.unwrap();
        let message = runner.clean().await.unwrap_err().to_string();
        assert!(message.contains(needle), "{what}: {message}");
    }
    assert_healthy_plugin_still_works().await;
}
