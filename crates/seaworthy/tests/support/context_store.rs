//! Docker contexts written the way `docker context create` stores them, for tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The SHA-256 of `text` in hex, by `sha256sum` (coreutils), so that tests do not share the
/// library's code for the context store's directory names.
pub fn sha256_hex(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Stores context `name` with endpoint `host` in the Docker config directory `config`, with
/// the TLS material of `tls` (a directory with ca.pem, cert.pem, key.pem) if given. Returns the
/// context's TLS directory.
pub fn store_context(config: &Path, name: &str, host: &str, tls: Option<&Path>) -> PathBuf {
    let id = sha256_hex(name);
    let meta = config.join("contexts/meta").join(&id);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
        ),
    )
    .unwrap();
    let tls_dir = config.join("contexts/tls").join(&id).join("docker");
    if let Some(from) = tls {
        std::fs::create_dir_all(&tls_dir).unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::copy(from.join(f), tls_dir.join(f)).unwrap();
        }
    }
    tls_dir
}
