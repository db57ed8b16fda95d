//! Helpers of the container-structure-test compatibility suites (`cst_compat.rs`,
//! `cst_flags.rs`): a scratch directory per test and the built binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A directory of its own for one test's files, removed when dropped.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("sw-cst-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    /// Writes `name` (parent directories created); returns its path.
    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) -> String {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        path.display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `seaworthy` binary with `args`.
pub fn seaworthy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seaworthy"))
        .args(args)
        .output()
        .expect("run seaworthy")
}

/// The `seaworthy` binary run in `home` with an environment of its own under it: no Docker
/// config, a private OCI store, compile cache and lockfile, and no registry credentials, config
/// file or locked mode taken from the caller's environment (the plugin suites).
pub fn seaworthy_in(home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_seaworthy"));
    command
        .args(args)
        .current_dir(home)
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("SEAWORTHY_OCI_CACHE", home.join("oci"))
        .env("SEAWORTHY_PLUGIN_CACHE", home.join("compiled"))
        .env("SEAWORTHY_LOCKFILE", home.join("seaworthy.lock"))
        .env_remove("SEAWORTHY_REGISTRY_USERNAME")
        .env_remove("SEAWORTHY_REGISTRY_PASSWORD")
        .env_remove("SEAWORTHY_CONFIG")
        .env_remove("SEAWORTHY_LOCKED");
    command
}

/// The JSON report on the standard output of `out`.
pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The errors of the result named `name`, a line each.
pub fn errors_in(report: &Value, name: &str) -> String {
    let result = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result {name:?}"));
    errors_of_result(result)
}

/// The errors of one result, a line each.
pub fn errors_of_result(result: &Value) -> String {
    result["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
