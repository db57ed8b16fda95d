//! Test plugin `hog`: allocates memory without bound. Config `when` = `definition` or `clean` (default) says which call misbehaves.

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "../../../wit/0.1.0",
});

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, Isolated, PluginMetadata,
};

struct Plugin;

fn when(config: &Config) -> &str {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == "when")
        .map_or("clean", |(_, v)| v.as_str())
}

/// A container that only sleeps: these plugins misbehave, they serve nothing.
fn spec() -> ContainerSpec {
    ContainerSpec {
        image: "busybox".into(),
        env: Vec::new(),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        entrypoint: None,
        user: None,
        ports: Vec::new(),
        mounts: Vec::new(),
        waits: Vec::new(),
        startup_timeout_ms: None,
    }
}

fn misbehave() -> FixtureError {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the memory is really used.
        kept.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
}

impl Guest for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "hog".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "allocates memory without bound".into(),
        }
    }

    fn definition(config: Config) -> Result<ContainerSpec, FixtureError> {
        if when(&config) == "definition" {
            return Err(misbehave());
        }
        Ok(spec())
    }

    fn clean(config: Config) -> Result<(), FixtureError> {
        if when(&config) == "clean" {
            return Err(misbehave());
        }
        Ok(())
    }

    fn ready(_config: Config) -> Result<bool, FixtureError> {
        Ok(true)
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        None
    }

    fn isolation_slots(_config: Config) -> u32 {
        0
    }

    fn isolate(_config: Config, _slot: u32) -> Result<Isolated, FixtureError> {
        Err(FixtureError::Failed("no isolation".into()))
    }

    fn release(_config: Config, _slot: u32) -> Result<(), FixtureError> {
        Ok(())
    }
}

export!(Plugin);
