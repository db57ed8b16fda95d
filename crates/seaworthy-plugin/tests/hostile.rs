//! A hostile publisher's plugin (`plugins/testdata/hostile`, and components the tests change):
//! each attack ends in a clear error naming the plugin, within the documented limits of time and
//! memory (memory measured as this process's peak RSS growth), while a healthy fixture in the
//! same process keeps cleaning.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use seaworthy::FixtureDefinition;
use seaworthy_plugin::{
    Grants, LoadOutcome, PluginError, PluginFixture, PluginHost, MANIFEST_FILE,
};

use common::{assert_healthy_plugin_still_works, elapsed_under, while_healthy_cleans};

/// [`common::scratch`] for a test of this file.
fn scratch(name: &str) -> PathBuf {
    common::scratch(&format!("hostile-{name}"))
}

/// A copy of the built hostile plugin in `dir`, with `component` as its wasm and `edit` applied
/// to its manifest.
fn plugin_copy(dir: &Path, component: &[u8], edit: impl Fn(String) -> String) {
    common::plugin_copy("hostile", dir, Some(component), edit);
}

/// This process's resident memory now (`VmRSS`), in bytes.
fn rss() -> u64 {
    status_kib("VmRSS:") << 10
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Runs `attack` and returns its result with the growth of this process's peak RSS over its
/// RSS before (the peak is reset first: `/proc/self/clear_refs`).
async fn peak_growth<T>(attack: impl std::future::Future<Output = T>) -> (T, u64) {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let before = rss();
    let out = attack.await;
    let peak = status_kib("VmHWM:") << 10;
    (out, peak.saturating_sub(before))
}

async fn hostile(config: &[(&str, &str)]) -> PluginFixture {
    common::host()
        .load("hostile")
        .unwrap()
        .fixture(config.iter().copied())
        .unwrap()
        .start()
        .await
        .expect("the hostile plugin's container")
}

fn hostile_wasm() -> Vec<u8> {
    std::fs::read(common::plugins().join("hostile").join("plugin.wasm")).unwrap()
}

// --- Component surgery: extra core modules and instances added to a built component. ---

fn leb_u32(mut v: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn leb_i32(mut v: i32, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

fn section(id: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb_u32(payload.len() as u32, out);
    out.extend_from_slice(payload);
}

/// A core module with one memory of `pages` 64 KiB pages, all touched by its start function
/// (so each instance costs that much resident memory); with `pages` 0, an empty module.
fn memory_module(pages: u32) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    if pages == 0 {
        return m;
    }
    section(1, &[1, 0x60, 0, 0], &mut m); // type () -> ()
    section(3, &[1, 0], &mut m); // one function of type 0
    let mut memory = vec![1, 0];
    leb_u32(pages, &mut memory);
    section(5, &memory, &mut m);
    section(8, &[0], &mut m); // start: function 0
    let mut body = vec![1, 1, 0x7f]; // one i32 local: the address
    body.extend_from_slice(&[0x03, 0x40]); // loop
    body.extend_from_slice(&[0x20, 0, 0x41, 1, 0x3a, 0, 0]); // i32.store8 [addr] = 1
    body.extend_from_slice(&[0x20, 0, 0x41]); // addr + 4096: every page of the host's
    leb_i32(4096, &mut body);
    body.extend_from_slice(&[0x6a, 0x22, 0, 0x41]); // tee addr; < size
    leb_i32((pages * 65536) as i32, &mut body);
    body.extend_from_slice(&[0x49, 0x0d, 0, 0x0b, 0x0b]); // lt_u; br_if loop; end; end
    let mut code = vec![1];
    leb_u32(body.len() as u32, &mut code);
    code.extend_from_slice(&body);
    section(10, &code, &mut m);
    m
}

/// `component` with `module` added and instantiated `count` times at the end of its top level.
fn with_instances(component: &[u8], module: &[u8], count: u32) -> Vec<u8> {
    use wasmtime::wasmparser::{Parser, Payload};
    let mut depth = 0;
    let mut modules = 0u32;
    for payload in Parser::new(0).parse_all(component) {
        match payload.unwrap() {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ModuleSection { .. } if depth == 1 => modules += 1,
            _ => {}
        }
    }
    let mut out = component.to_vec();
    section(1, module, &mut out);
    let mut instances = Vec::new();
    leb_u32(count, &mut instances);
    for _ in 0..count {
        instances.push(0); // instantiate
        leb_u32(modules, &mut instances); // the module just added
        instances.push(0); // no arguments
    }
    section(2, &instances, &mut out);
    out
}

// --- 1. One budget per plugin instance. ---

#[tokio::test]
async fn many_memories_share_one_budget_and_counts_are_capped() {
    // Sixteen extra modules, each with a 16 MiB memory it touches in full: 256 MiB if each
    // memory had its own cap. The test host's budget is 32 MiB for the instance as a whole.
    let dir = scratch("memories");
    let many_memories = with_instances(&hostile_wasm(), &memory_module(256), 16);
    plugin_copy(&dir.join("memories"), &many_memories, |m| m);
    let plugin = common::host().load_from(&dir.join("memories")).unwrap();
    let started = Instant::now();
    let (error, growth) =
        peak_growth(async { plugin.fixture([("attack", "none")]).unwrap_err() }).await;
    elapsed_under(started, Duration::from_secs(10));
    eprintln!("{error} (peak RSS growth {} MiB)", growth >> 20);
    match &error {
        PluginError::Memory {
            plugin,
            limit,
            requested,
            call,
        } => {
            assert_eq!(plugin, "hostile");
            assert_eq!(*call, "instantiate");
            assert_eq!(*limit, 32 << 20);
            assert!(requested > limit);
        }
        other => panic!("expected the memory budget, got {other:?}"),
    }
    assert!(
        growth < 80 << 20,
        "the process grew by {} MiB for a plugin with a 32 MiB budget",
        growth >> 20
    );

    // A hundred memoryless instances: over the count of 32.
    let many_instances = with_instances(&hostile_wasm(), &memory_module(0), 100);
    plugin_copy(&dir.join("instances"), &many_instances, |m| m);
    let plugin = common::host().load_from(&dir.join("instances")).unwrap();
    let error = plugin.fixture([("attack", "none")]).unwrap_err();
    let message = error.to_string();
    eprintln!("{message}");
    assert!(
        matches!(&error, PluginError::Resources { plugin, .. } if plugin == "hostile"),
        "{error:?}"
    );
    assert!(message.contains("instance"), "{message}");

    // Within the counts, the same component works.
    let few = with_instances(&hostile_wasm(), &memory_module(0), 4);
    plugin_copy(&dir.join("few"), &few, |m| m);
    common::host()
        .load_from(&dir.join("few"))
        .unwrap()
        .fixture([("attack", "none")])
        .expect("four extra instances are within the limits");
    assert_healthy_plugin_still_works().await;
}

// --- 2. Bounded work after a call, and bounded text. ---

#[tokio::test]
async fn a_flood_of_denied_calls_is_stopped_and_its_error_cut() {
    // A million denied host calls, then a 20 MB error: stopped at the denial limit.
    let plugin = common::host().load("hostile").unwrap();
    let started = Instant::now();
    let error = plugin
        .fixture([
            ("attack", "denied-loop"),
            ("when", "definition"),
            ("error-bytes", "20000000"),
        ])
        .unwrap_err();
    elapsed_under(started, Duration::from_secs(5));
    let message = error.to_string();
    eprintln!("{message}");
    assert!(
        matches!(&error, PluginError::Resources { plugin, call: "definition", .. } if plugin == "hostile"),
        "{error:?}"
    );
    assert!(
        message.contains("denied more than 256 host calls"),
        "{message}"
    );

    // The same in clean(), while the healthy fixture keeps cleaning.
    let fixture = hostile(&[("attack", "denied-loop"), ("error-bytes", "20000000")]).await;
    let attacked = while_healthy_cleans(fixture.try_clean()).await;
    assert!(
        attacked.elapsed < Duration::from_secs(5),
        "took {:?}",
        attacked.elapsed
    );
    assert!(
        attacked.slowest_clean < Duration::from_secs(1),
        "a healthy clean took {:?}",
        attacked.slowest_clean
    );
    let error = attacked.outcome.unwrap_err();
    assert!(matches!(&error, PluginError::Resources { .. }), "{error:?}");

    // Under the denial limit, a 20 MB error comes back cut, with the denials it had.
    let fixture = hostile(&[
        ("attack", "denied-loop"),
        ("count", "200"),
        ("error-bytes", "20000000"),
    ])
    .await;
    let started = Instant::now();
    let message = fixture.try_clean().await.unwrap_err().to_string();
    elapsed_under(started, Duration::from_secs(5));
    assert!(
        message.starts_with("plugin `hostile`: clean() failed: xxx"),
        "{}",
        &message[..200]
    );
    assert!(message.contains("more bytes cut"), "not cut");
    assert!(message.len() < 32 << 10, "{} bytes of error", message.len());
    assert!(
        message.contains("the host denied: tcp port 9 is not declared"),
        "{}",
        &message[message.len() - 400..]
    );
    assert_healthy_plugin_still_works().await;
}

// --- 3. Capabilities that cannot be steered elsewhere. ---

#[tokio::test]
async fn an_http_redirect_is_handed_back_not_followed() {
    // A service of the host's, on its loopback: what a redirect would reach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let location = format!("http://{}/secret", listener.local_addr().unwrap());
    let fixture = hostile(&[("attack", "redirect"), ("location", &location)]).await;
    let message = fixture.try_clean().await.unwrap_err().to_string();
    eprintln!("{message}");
    assert!(
        message.contains(&format!(
            "got status 307 location Some({location:?}) body \"\""
        )),
        "{message}"
    );
    assert_eq!(
        listener.accept().map(|(_, from)| from).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the host followed the redirect to its own loopback"
    );
    assert_healthy_plugin_still_works().await;
}

#[tokio::test]
async fn exec_output_is_capped() {
    let fixture = hostile(&[("attack", "exec-flood")]).await;
    let started = Instant::now();
    let (error, growth) = peak_growth(fixture.try_clean()).await;
    elapsed_under(started, Duration::from_secs(20));
    let message = error.unwrap_err().to_string();
    eprintln!("{message} (peak RSS growth {} MiB)", growth >> 20);
    assert!(
        message.starts_with("plugin `hostile`: clean() failed: host call failed:")
            && message.contains("exec `cat /dev/zero` wrote more than 8388608 bytes of output"),
        "{message}"
    );
    assert!(
        growth < 96 << 20,
        "the process grew by {} MiB",
        growth >> 20
    );
    assert_healthy_plugin_still_works().await;
}

#[tokio::test]
async fn the_log_tail_is_the_tail() {
    let fixture = hostile(&[("attack", "log-tail"), ("count", "20000")]).await;
    let message = fixture.try_clean().await.unwrap_err().to_string();
    assert!(message.ends_with("got lines [\"last-line\"]"), "{message}");
}

#[tokio::test]
async fn a_startup_timeout_is_capped_by_the_host() {
    // The plugin asks for u32::MAX ms (49 days) and is never ready.
    let limits = common::host()
        .limits()
        .clone()
        .with_max_startup(Duration::from_secs(2));
    let definition = common::host()
        .load("hostile")
        .unwrap()
        .fixture([("attack", "never-ready")])
        .unwrap()
        .with_limits(limits);
    let started = Instant::now();
    let message = definition.start().await.unwrap_err().to_string();
    eprintln!("{message}");
    elapsed_under(started, Duration::from_secs(15));
    assert!(
        message.contains("plugin `hostile`: ready() failed")
            && message.contains("not ready within 2s"),
        "{message}"
    );
}

#[tokio::test]
async fn an_oversized_container_spec_is_refused_quickly() {
    let plugin = common::host().load("hostile").unwrap();
    let started = Instant::now();
    let error = plugin.fixture([("attack", "huge-spec")]).unwrap_err();
    elapsed_under(started, Duration::from_secs(5));
    let message = error.to_string();
    assert!(
        message.contains("plugin `hostile`: definition() failed: the container spec has 65535 ports, over the host's limit of 256"),
        "{message}"
    );
}

// --- 4. Plugin files and registries. ---

#[tokio::test]
async fn a_plugin_file_that_is_a_device_or_a_fifo_is_refused() {
    let dir = scratch("files");
    let host = common::host();
    // The component is a symlink to /dev/zero.
    let zero = dir.join("zero");
    plugin_copy(&zero, b"", |m| m);
    std::fs::remove_file(zero.join("plugin.wasm")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", zero.join("plugin.wasm")).unwrap();
    // The component, and in another plugin the manifest, are FIFOs nobody writes to.
    let fifo = dir.join("fifo");
    plugin_copy(&fifo, b"", |m| m);
    std::fs::remove_file(fifo.join("plugin.wasm")).unwrap();
    let mkfifo = |path: &Path| {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    };
    mkfifo(&fifo.join("plugin.wasm"));
    let fifo_manifest = dir.join("fifo-manifest");
    std::fs::create_dir_all(&fifo_manifest).unwrap();
    mkfifo(&fifo_manifest.join(MANIFEST_FILE));

    let started = Instant::now();
    for (plugin, needle) in [
        (&zero, "character device"),
        (&fifo, "FIFO"),
        (&fifo_manifest, "FIFO"),
    ] {
        let message = host.load_from(plugin).unwrap_err().to_string();
        assert!(message.contains(needle), "{message}");
        let inspect = seaworthy_plugin::cli::inspect(&seaworthy_plugin::cli::InspectArgs {
            plugin: plugin.display().to_string(),
            dirs: Vec::new(),
        });
        let message = inspect.unwrap_err().to_string();
        assert!(message.contains(needle), "inspect: {message}");
    }
    elapsed_under(started, Duration::from_secs(5));
}

/// A registry that means harm: it answers every manifest request with `manifest` and records
/// the paths asked for.
fn hostile_registry(manifest: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request).into_owned();
            let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
            record.lock().unwrap().push(path.clone());
            let (status, body) = if path.contains("/manifests/") {
                ("200 OK", manifest.clone())
            } else if path == "/v2/" {
                ("200 OK", "{}".to_string())
            } else {
                ("404 Not Found", String::new())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (address, asked)
}

#[tokio::test]
async fn registry_digests_are_checked_before_any_use() {
    let good = format!("sha256:{}", "a".repeat(64));
    for bad in [
        "sha256:../../../../../../dev/zero",
        "sha256:/dev/zero",
        "md5:abc",
    ] {
        for (config_digest, layer_digest) in [(bad, good.as_str()), (good.as_str(), bad)] {
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": config_digest, "size": 2},
                "layers": [
                    {"mediaType": "application/wasm", "digest": layer_digest, "size": 10},
                    {"mediaType": "application/vnd.seaworthy.plugin.manifest.v1+toml", "digest": good, "size": 10},
                ],
            })
            .to_string();
            let (registry, asked) = hostile_registry(manifest);
            let store = scratch("oci-store");
            let config = seaworthy_plugin::oci::OciConfig::default()
                .insecure(registry.clone())
                .cache_dir(&store)
                .no_lockfile()
                .timeout(Duration::from_secs(5));
            let started = Instant::now();
            let error = seaworthy_plugin::oci::install(&format!("{registry}/acme/evil:1"), &config)
                .await
                .unwrap_err();
            elapsed_under(started, Duration::from_secs(5));
            let message = error.to_string();
            eprintln!("{message}");
            assert!(
                message.contains("is not `sha256:` and 64 lowercase hex digits"),
                "{message}"
            );
            let asked = asked.lock().unwrap().clone();
            assert!(
                !asked.iter().any(|p| p.contains("/blobs/")),
                "a blob was asked for: {asked:?}"
            );
        }
    }
}

// --- 5. The compile cache. ---

#[tokio::test]
async fn a_planted_compiled_artifact_is_not_loaded() {
    let cache = scratch("cache");
    let entries = || -> Vec<PathBuf> {
        let mut e: Vec<PathBuf> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect();
        e.sort();
        e
    };
    let host = || {
        common::shipped_grants(PluginHost::builder())
            .search_dir(common::plugins())
            .cache_dir(&cache)
            .build()
            .unwrap()
    };
    assert_eq!(
        host().load("hostile").unwrap().load_outcome(),
        LoadOutcome::Compiled
    );
    let hostile_entry = entries().pop().unwrap();
    assert_eq!(
        host().load("hostile").unwrap().load_outcome(),
        LoadOutcome::DiskCache
    );
    host().load("memcached").unwrap();
    let memcached_entry = entries().into_iter().find(|e| e != &hostile_entry).unwrap();

    // Another plugin's artifact planted under hostile's key: refused, recompiled.
    std::fs::copy(&memcached_entry, &hostile_entry).unwrap();
    let plugin = host().load("hostile").unwrap();
    assert_eq!(plugin.load_outcome(), LoadOutcome::Compiled);
    assert_eq!(plugin.metadata().unwrap().id, "hostile");
    // A raw artifact (what wasmtime itself writes), without this user's tag: refused.
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    let raw = wasmtime::Engine::new(&config)
        .unwrap()
        .precompile_component(&hostile_wasm())
        .unwrap();
    std::fs::write(&hostile_entry, raw).unwrap();
    assert_eq!(
        host().load("hostile").unwrap().load_outcome(),
        LoadOutcome::Compiled
    );
    // A project's seaworthy.toml cannot place the cache.
    let project = scratch("project");
    std::fs::write(
        project.join("seaworthy.toml"),
        format!("[plugins]\ncache = {:?}\n", cache.display().to_string()),
    )
    .unwrap();
    let from_project = {
        let _guard = ENV.lock().unwrap();
        std::env::set_var("SEAWORTHY_CONFIG", project.join("seaworthy.toml"));
        let host = PluginHost::builder()
            .from_environment()
            .unwrap()
            .build()
            .unwrap();
        std::env::remove_var("SEAWORTHY_CONFIG");
        host
    };
    assert_ne!(from_project.cache_dir(), Some(cache.as_path()));
}

/// Serializes the tests that set environment variables.
static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

// --- 6. Identity. ---

#[tokio::test]
async fn identity_is_checked() {
    let dir = scratch("identity");
    // The same id twice on the search path: refused, naming both.
    plugin_copy(&dir.join("a").join("hostile"), &hostile_wasm(), |m| m);
    plugin_copy(&dir.join("b").join("hostile"), &hostile_wasm(), |m| m);
    let host = PluginHost::builder()
        .search_dir(dir.join("a"))
        .search_dir(dir.join("b"))
        .grant("hostile", Grants::new().http(80).exec())
        .build()
        .unwrap();
    let message = host.load("hostile").unwrap_err().to_string();
    assert!(
        message.contains("two plugins have the id `hostile`")
            && message.contains(
                &dir.join("a")
                    .join("hostile")
                    .join(MANIFEST_FILE)
                    .display()
                    .to_string()
            )
            && message.contains(
                &dir.join("b")
                    .join("hostile")
                    .join(MANIFEST_FILE)
                    .display()
                    .to_string()
            ),
        "{message}"
    );
    // A manifest that claims another id (to get that id's grants) than the code says.
    plugin_copy(&dir.join("impostor"), &hostile_wasm(), |m| {
        m.replace("id = \"hostile\"", "id = \"memcached\"")
            .replace("exec = true", "")
            .replace("http = [80]", "tcp = [11211]")
    });
    let plugin = common::host().load_from(&dir.join("impostor")).unwrap();
    let message = plugin
        .fixture([("attack", "none")])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("its manifest says id `memcached` but its metadata() says \"hostile\""),
        "{message}"
    );
}
