//! Test plugin `future-wit`: built against `seaworthy:fixture@0.2.0` (a copy of 0.1.0 with one
//! more function), which the host must refuse before compiling it.

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "wit",
});

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, Isolated, PluginMetadata,
};

struct Plugin;

impl Guest for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "future-wit".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "built for seaworthy:fixture@0.2.0".into(),
        }
    }

    fn definition(_config: Config) -> Result<ContainerSpec, FixtureError> {
        Err(FixtureError::Failed("never called".into()))
    }

    fn ready(_config: Config) -> Result<bool, FixtureError> {
        Ok(true)
    }

    fn clean(_config: Config) -> Result<(), FixtureError> {
        Ok(())
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

    fn snapshot(_config: Config) -> Result<String, FixtureError> {
        Ok(String::new())
    }
}

export!(Plugin);
