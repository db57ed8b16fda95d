//! Malformed plugins, as properties: whatever bytes sit where a plugin's component should be
//! (anything at all, a real component cut short or with bits flipped, core modules that are not
//! components), loading refuses them with an error naming the plugin, and the component file when
//! the bytes are at fault; nothing panics or hangs. A flipped bit that leaves a loadable
//! component must not break the host either: its code runs under the usual limits.
//!
//! Case counts are bounded so this binary runs in about a minute in a debug build.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use seaworthy_plugin::{Limits, PluginError, PluginHost, MANIFEST_FILE};

/// The id of every plugin made here.
const ID: &str = "malformed";

/// A plugin directory of its own for `test`, whose manifest points at `plugin.wasm`.
fn plugin_dir(test: &str) -> PathBuf {
    let dir = common::target()
        .join("seaworthy-plugin-malformed")
        .join(test);
    std::fs::create_dir_all(&dir).expect("a plugin directory");
    std::fs::write(
        dir.join(MANIFEST_FILE),
        format!("id = \"{ID}\"\nversion = \"0.1.0\"\nwit = \"0.1.0\"\nwasm = \"plugin.wasm\"\n"),
    )
    .expect("the manifest");
    dir
}

/// A host that compiles every time (no cache to fill with fuzzed components), with tight limits.
fn host() -> PluginHost {
    PluginHost::builder()
        .no_cache()
        .limits(
            Limits::default()
                .with_cpu_per_call(Duration::from_secs(1))
                .with_call_timeout(Duration::from_secs(5))
                .with_memory_bytes(16 << 20),
        )
        .build()
        .expect("a plugin host")
}

/// A real component: the `trap` test plugin (it needs no capabilities).
fn real_component() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        std::fs::read(common::plugins().join("trap").join("plugin.wasm")).expect("the trap plugin")
    })
}

/// The smallest valid core module: one function, exported as `run`.
const CORE_MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: () -> ()
    0x03, 0x02, 0x01, 0x00, // functions: one of type 0
    0x07, 0x07, 0x01, 0x03, b'r', b'u', b'n', 0x00, 0x00, // export "run" = function 0
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: no locals, end
];

/// Writes `bytes` as the plugin's component and loads it: a refusal must name the plugin (and
/// the component file, when the bytes are at fault); a component that loads must answer its
/// metadata or fail naming the plugin. Returns whether it loaded.
fn load(host: &PluginHost, dir: &Path, bytes: &[u8]) -> Result<bool, TestCaseError> {
    let wasm = dir.join("plugin.wasm");
    std::fs::write(&wasm, bytes).expect("the component file");
    let started = Instant::now();
    let outcome = host.load_from(dir);
    prop_assert!(
        started.elapsed() < Duration::from_secs(30),
        "loading {} bytes took {:?}",
        bytes.len(),
        started.elapsed()
    );
    let error = match outcome {
        Ok(plugin) => match plugin.metadata() {
            Ok(_) => return Ok(true),
            Err(e) => e,
        },
        Err(e) => e,
    };
    let message = error.to_string();
    prop_assert_eq!(error.plugin(), Some(ID), "{}", message);
    prop_assert!(message.contains(&format!("`{ID}`")), "{}", message);
    if let PluginError::InvalidComponent { path, .. } = &error {
        prop_assert_eq!(path, &wasm);
        prop_assert!(message.contains(&wasm.display().to_string()), "{}", message);
    }
    Ok(false)
}

/// Asserts `bytes` are refused, not loaded.
fn refused(host: &PluginHost, dir: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(!load(host, dir, bytes)?, "{} bytes loaded", bytes.len());
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_are_refused(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2048),
            // With the magic of a component or a module in front, the parser gets further.
            proptest::collection::vec(any::<u8>(), 0..2048)
                .prop_map(|tail| [b"\0asm\x0d\0\x01\0".as_slice(), &tail].concat()),
            proptest::collection::vec(any::<u8>(), 0..2048)
                .prop_map(|tail| [b"\0asm\x01\0\0\0".as_slice(), &tail].concat()),
        ],
    ) {
        thread_local!(static HOST: PluginHost = host());
        let dir = plugin_dir("arbitrary");
        HOST.with(|host| refused(host, &dir, &bytes))?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn a_real_component_cut_short_is_refused(fraction in 0.0f64..1.0) {
        let real = real_component();
        let cut = (real.len() as f64 * fraction) as usize;
        let dir = plugin_dir("truncated");
        refused(&host(), &dir, &real[..cut])?;
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn a_real_component_with_flipped_bits_is_refused_or_runs_within_its_limits(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let mut bytes = real_component().to_vec();
        let len = bytes.len();
        for (at, bit) in &flips {
            bytes[at.index(len)] ^= 1 << bit;
        }
        let dir = plugin_dir("flipped");
        // Flips in names, custom sections or data may leave a component that loads: then it
        // ran its metadata call within the limits, or failed naming the plugin.
        load(&host(), &dir, &bytes)?;
    }
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn core_modules_are_refused_as_not_components(
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let dir = plugin_dir("core");
        let host = host();
        let extended = [CORE_MODULE, &tail].concat();
        for bytes in [CORE_MODULE, extended.as_slice()] {
            std::fs::write(dir.join("plugin.wasm"), bytes).expect("the component file");
            let error = host.load_from(&dir).expect_err("a core module is not a plugin");
            let message = error.to_string();
            prop_assert!(
                matches!(error, PluginError::InvalidComponent { .. })
                    && message.contains(&format!("`{ID}`"))
                    && message.contains("core wasm module, not a component"),
                "{}",
                message
            );
        }
    }
}

#[test]
fn the_real_component_loads_with_this_manifest() {
    // The properties above mean something only if the unbroken component loads and runs.
    let dir = plugin_dir("intact");
    std::fs::write(dir.join("plugin.wasm"), real_component()).unwrap();
    let plugin = host().load_from(&dir).expect("the trap component loads");
    assert_eq!(plugin.id(), ID);
    plugin.metadata().expect("its metadata");
}
