//! What the test plugins under `testdata/` share: macros, included by each with
//! `#[macro_use] #[path = "../../common.rs"] mod common;` (a file, not a crate: the WIT bindings
//! are generated in each plugin, and the macros expand there).

/// The `Guest` methods of a plugin without isolation (inside its `impl Guest for Plugin`): no
/// slots, and `isolate` fails saying so.
#[allow(unused_macros)]
macro_rules! no_isolation {
    () => {
        fn isolation_slots(_config: crate::seaworthy::fixture::types::Config) -> u32 {
            0
        }

        fn isolate(
            _config: crate::seaworthy::fixture::types::Config,
            _slot: u32,
        ) -> Result<
            crate::seaworthy::fixture::types::Isolated,
            crate::seaworthy::fixture::types::FixtureError,
        > {
            Err(crate::seaworthy::fixture::types::FixtureError::Failed(
                "no isolation".into(),
            ))
        }

        fn release(
            _config: crate::seaworthy::fixture::types::Config,
            _slot: u32,
        ) -> Result<(), crate::seaworthy::fixture::types::FixtureError> {
            Ok(())
        }
    };
}

/// A whole misbehaving plugin (`hog`, `spin`, `trap`), with the id and description given: its
/// container only sleeps, and the call the config's `when` names (`definition` or `clean`, the
/// default) misbehaves as the crate's `fn misbehave() -> FixtureError` does.
#[allow(unused_macros)]
macro_rules! misbehaving_plugin {
    ($id:literal, $description:literal) => {
        wit_bindgen::generate!({
            world: "fixture-plugin",
            path: "../../../wit/0.1.0",
        });

        use exports::seaworthy::fixture::fixture::Guest;
        use seaworthy::fixture::types::{
            Config, ConnectionInfo, ContainerSpec, FixtureError, PluginMetadata,
        };

        struct Plugin;

        /// The call that misbehaves: the config's `when`, `clean` when it has none.
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

        impl Guest for Plugin {
            fn metadata() -> PluginMetadata {
                PluginMetadata {
                    id: $id.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    description: $description.into(),
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

            no_isolation!();
        }

        export!(Plugin);
    };
}
