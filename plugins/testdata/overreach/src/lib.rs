//! Test plugin `overreach`: runs memcached but its manifest also asks for TCP port 22, and its
//! `clean` tries to reach what config `try` names: `tcp` (port 22, the default), `exec`, or
//! `http` (port 11211). The host must refuse the plugin when port 22 is not granted, and deny
//! each call that its manifest does not declare.

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "../../../wit/0.1.0",
});

#[macro_use]
#[path = "../../common.rs"]
mod common;

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host::{self, ExecRequest, HttpRequest};
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, PluginMetadata, Wait,
};

struct Plugin;

impl Guest for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "overreach".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "asks for TCP port 22 besides memcached's 11211".into(),
        }
    }

    fn definition(_config: Config) -> Result<ContainerSpec, FixtureError> {
        Ok(ContainerSpec {
            image: "memcached:1.6".into(),
            env: Vec::new(),
            cmd: None,
            entrypoint: None,
            user: None,
            ports: vec![11211],
            mounts: Vec::new(),
            waits: vec![Wait::Tcp(11211)],
            startup_timeout_ms: None,
        })
    }

    fn ready(_config: Config) -> Result<bool, FixtureError> {
        Ok(true)
    }

    fn clean(config: Config) -> Result<(), FixtureError> {
        let what = config
            .iter()
            .rev()
            .find(|(k, _)| k == "try")
            .map_or("tcp", |(_, v)| v.as_str());
        match what {
            "exec" => host::exec(&ExecRequest {
                argv: vec!["cat".into(), "/etc/shadow".into()],
                env: Vec::new(),
                user: None,
                workdir: None,
                stdin: None,
                timeout_ms: None,
            })
            .map(|_| ())
            .map_err(FixtureError::Host),
            "http" => host::http(&HttpRequest {
                method: "GET".into(),
                port: 11211,
                path: "/".into(),
                headers: Vec::new(),
                body: Vec::new(),
                timeout_ms: None,
            })
            .map(|_| ())
            .map_err(FixtureError::Host),
            _ => host::tcp_connect(22, 1_000)
                .map(|_| ())
                .map_err(FixtureError::Host),
        }
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        None
    }

    no_isolation!();
}

export!(Plugin);
