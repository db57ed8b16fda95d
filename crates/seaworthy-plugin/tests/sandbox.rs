//! Misbehaving plugins (built from `plugins/testdata/`): each fails with a clear error naming
//! the plugin, within its limits, and the host and the other fixtures keep working.

mod common;

use std::time::{Duration, Instant};

use seaworthy::{Fixture, FixtureDefinition};
use seaworthy_plugin::{Grants, PluginError, PluginFixtureDefinition, PluginHost};

use common::{assert_healthy_plugin_still_works, elapsed_under, while_healthy_cleans};

fn misbehaving(id: &str, when: &str) -> seaworthy_plugin::Result<PluginFixtureDefinition> {
    common::host().load(id)?.fixture([("when", when)])
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_its_cpu_deadline() {
    // In definition(): no container involved.
    let started = Instant::now();
    let error = misbehaving("spin", "definition").unwrap_err();
    assert!(matches!(error, PluginError::Deadline { .. }), "{error:?}");
    elapsed_under(started, Duration::from_secs(10));

    // In clean(), on a started fixture, while another fixture keeps cleaning.
    let spin = misbehaving("spin", "clean")
        .unwrap()
        .start()
        .await
        .expect("the spin plugin's container");
    let common::Meanwhile {
        outcome: spun,
        elapsed,
        slowest_clean: others,
    } = while_healthy_cleans(spin.clean()).await;
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
    // The instance was discarded; the next call gets a fresh one.
    assert!(spin.check_ready().await.expect("a fresh instance answers"));
    assert_healthy_plugin_still_works().await;
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_limit() {
    let hog = misbehaving("hog", "clean").unwrap().start().await.unwrap();
    let started = Instant::now();
    let error = hog.try_clean().await.unwrap_err();
    elapsed_under(started, Duration::from_secs(10));
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
    let lying = common::scratch("future-wit-lying");
    common::plugin_copy("future-wit", &lying, None, |m| {
        m.replace("wit = \"0.2.0\"", "wit = \"0.1.0\"")
    });
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
    let honest = common::scratch("overreach-honest");
    common::plugin_copy("overreach", &honest, None, |m| {
        m.replace("tcp = [11211, 22]", "tcp = [11211]")
    });
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

/// The lines of the `escape` plugin's sandbox report in an error message: (attempt, outcome).
fn sandbox_report(message: &str) -> Vec<(&str, &str)> {
    message
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| l.split_once(": "))
        .collect()
}

/// Asserts that the report in `error` comes from `call` of plugin `escape`, covers every
/// attempt in `expected`, and that each attempt failed or found nothing.
fn assert_nothing_escaped(error: &PluginError, call: &str, expected: &[String]) {
    let message = error.to_string();
    eprintln!("{message}");
    assert!(
        message.starts_with(&format!(
            "plugin `escape`: {call}() failed: sandbox report:"
        )),
        "{message}"
    );
    let report = sandbox_report(&message);
    for what in expected {
        assert!(
            report.iter().any(|(w, _)| w == what),
            "`{what}` was not attempted:\n{message}"
        );
    }
    for (what, outcome) in &report {
        assert!(
            *outcome == "empty" || outcome.starts_with("failed: "),
            "the sandbox let `{what}` through ({outcome}):\n{message}"
        );
    }
}

#[tokio::test]
async fn wasi_reaches_no_files_environment_network_or_docker_socket() {
    // What a plugin could reach on this machine if WASI were open: a TCP listener, a UDP
    // socket and a file of this test, the machine's files and the Docker socket.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let dir = common::scratch("escape");
    let secret = std::fs::canonicalize(&dir).unwrap().join("secret.txt");
    std::fs::write(&secret, "the host's secret").unwrap();
    let tcp = listener.local_addr().unwrap().to_string();
    let udp_to = udp.local_addr().unwrap().to_string();
    let file = secret.display().to_string();
    let config = vec![
        ("tcp", tcp.clone()),
        ("udp", udp_to.clone()),
        ("file", file.clone()),
    ];
    let expected: Vec<String> = [
        "environment variables",
        "arguments",
        "read /etc/passwd",
        &format!("read {file}"),
        "list /",
        "list .",
        "write /tmp/seaworthy-escape",
        "stat /var/run/docker.sock",
        "open /var/run/docker.sock",
        &format!("tcp connect {tcp}"),
        "tcp connect 127.0.0.1:2375",
        "tcp listen 0.0.0.0:0",
        &format!("udp send to {udp_to}"),
        "resolve localhost",
    ]
    .map(String::from)
    .into();

    let plugin = common::host().load("escape").unwrap();
    // In definition(), before any container exists.
    let mut in_definition = config.clone();
    in_definition.push(("when", "definition".into()));
    let error = plugin.fixture(in_definition).unwrap_err();
    assert_nothing_escaped(&error, "definition", &expected);

    // In clean(), with the plugin's container running and its TCP port granted.
    let fixture = plugin
        .fixture(config)
        .unwrap()
        .start()
        .await
        .expect("the escape plugin's container");
    let error = fixture.try_clean().await.unwrap_err();
    assert_nothing_escaped(&error, "clean", &expected);
    assert!(!error.to_string().contains("the host's secret"), "{error}");

    // Nothing arrived on this side either.
    assert_eq!(
        listener.accept().map(|(_, from)| from).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "a plugin connected to this test's listener"
    );
    let mut buf = [0u8; 64];
    assert_eq!(
        udp.recv_from(&mut buf)
            .map(|(_, from)| from)
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::WouldBlock,
        "a plugin sent a datagram to this test's socket"
    );
    assert!(!std::path::Path::new("/tmp/seaworthy-escape").exists());
    assert!(fixture
        .check_ready()
        .await
        .expect("the plugin still answers"));
    assert_healthy_plugin_still_works().await;
}

#[tokio::test]
async fn a_host_call_that_never_returns_fails_at_the_host_call_timeout() {
    // Longer than the CPU deadline of 2 s: time spent in host calls does not count against it.
    let limit = Duration::from_secs(3);
    let limits = common::host()
        .limits()
        .clone()
        .with_host_call_timeout(limit)
        // If the host call were not cut off, the call would fail here instead, not hang.
        .with_call_timeout(Duration::from_secs(20));
    // The container's busybox `nc` accepts connections and never answers; the plugin asks to
    // wait for an answer for 50 days.
    let fixture = common::host()
        .load("escape")
        .unwrap()
        .fixture([("try", "silent-tcp")])
        .unwrap()
        .with_limits(limits)
        .start()
        .await
        .expect("the escape plugin's container");
    for _ in 0..2 {
        let started = Instant::now();
        let error = fixture.try_clean().await.unwrap_err();
        let elapsed = started.elapsed();
        let message = error.to_string();
        eprintln!("{message}");
        assert!(
            matches!(&error, PluginError::Failed { plugin, call: "clean", .. } if plugin == "escape"),
            "{error:?}"
        );
        assert!(
            message.contains(
                "plugin `escape`: clean() failed: host call failed: timed out: \
                 nothing received from container port 7000 within 3s"
            ),
            "{message}"
        );
        assert!(
            elapsed >= limit && elapsed < limit + Duration::from_secs(5),
            "the host call was cut off after {elapsed:?}"
        );
    }
    // The instance survived its timed-out host calls, and the host keeps working.
    assert!(fixture
        .check_ready()
        .await
        .expect("the plugin still answers"));
    assert_healthy_plugin_still_works().await;
}
