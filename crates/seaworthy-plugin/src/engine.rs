//! The process-wide wasmtime engine and its epoch clock.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine};

use crate::error::PluginError;

/// How often the epoch advances: the granularity of CPU deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The engine shared by every plugin host in the process: compiled components and the compile
/// cache key depend on its configuration, so there is exactly one. A background thread advances
/// its epoch every [`EPOCH_TICK`].
pub(crate) fn engine() -> Result<&'static Engine, PluginError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| e.to_string())?;
        let ticking = engine.weak();
        std::thread::Builder::new()
            .name("seaworthy-plugin-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                match ticking.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            })
            .map_err(|e| format!("cannot start the epoch thread: {e}"))?;
        Ok(engine)
    });
    engine.as_ref().map_err(|reason| PluginError::Engine {
        plugin: "-".into(),
        action: "start",
        reason: reason.clone(),
    })
}
