//! Suite `engines`: start-to-ready of busybox (create, start, log wait) through each kind of
//! endpoint — the shared engine's Unix socket, the TLS engine, the shared engine over SSH, a
//! Docker context pointing at the TLS engine, and Podman's API — against the bare bollard calls
//! a user would make through the same endpoint (the same client, so both sides pay the same
//! transport). The target is a ratio of at most 1.05 on each.
//!
//! `cargo bench -p seaworthy --bench engines` (needs `cargo xtask images` and
//! `bash .ci/engines start`). An endpoint that is not set up fails the suite with what to run.
//!
//! Both sides make the same three engine requests with the same bodies (create, start, follow
//! the log), on connections of the same client; Seaworthy names the container in the start and
//! log paths where the bare calls use its id, and asks for the log's timestamps (to tell a
//! restarted container's runs apart). Traced, Seaworthy's own work around them (the definition,
//! the session's bookkeeping, the trip to its runtime) is about 0.4 ms of the ~190 ms a busybox
//! takes to start through the Unix socket, and Podman gets no request of its own. The rest of
//! the spread is the engine's: single starts range over ±15 %, so the ratio's 95 % interval at
//! 60 runs was ±4 %, as wide as the margin the target leaves. Each endpoint is measured 150
//! times, Podman (a start of ~130 ms, where its spread is a larger share) 400 times: the
//! interval narrows with the square root of the runs. The sides alternate ABBA, and every run
//! counts.
//!
//! `SEAWORTHY_BENCH_ENDPOINTS=podman` (comma-separated) measures only the endpoints named;
//! `RUST_LOG=seaworthy=debug,bollard=debug` prints each side's engine requests with their times.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::{bare_remove, bare_start, IMAGE, SCRIPT};
use seaworthy::engine::Discovery;
use seaworthy::{ContainerDefinition, Engine, Session, Wait};
use seaworthy_benchkit::{Suite, Target};

/// Runs per endpoint, each side. A Podman start takes ~130 ms where the others take 200-360 ms,
/// and the spread of single starts is the engine's, so the faster endpoint gets more runs for an
/// interval as narrow as the others' (it narrows with the square root of the runs) in about the
/// same time. Every run counts.
fn runs(endpoint: &str) -> usize {
    match endpoint {
        "podman" => 400,
        _ => 150,
    }
}
const TLS_HOST: &str = "tcp://127.0.0.1:2376";
const TLS_CERTS: &str = "/var/lib/seaworthy-ci/tls/client";
const SSH_HOST: &str = "ssh://root@127.0.0.2";
const SSH_KEY: &str = "/var/lib/seaworthy-ci/ssh/id_ed25519";
const PODMAN: &str = "unix:///run/podman/podman.sock";

fn definition() -> ContainerDefinition {
    ContainerDefinition::new(IMAGE)
        .with_cmd(["sh", "-c", SCRIPT])
        .with_wait(Wait::log("^ready$"))
}

/// A Docker config directory whose current context is the TLS engine.
fn context_config() -> PathBuf {
    use sha2::{Digest, Sha256};
    let dir = std::env::temp_dir().join(format!("sw-bench-ctx-{}", std::process::id()));
    let id = hex::encode(Sha256::digest(b"bench-tls"));
    let meta = dir.join("contexts/meta").join(&id);
    let tls = dir.join("contexts/tls").join(&id).join("docker");
    std::fs::create_dir_all(&meta).expect("context dir");
    std::fs::create_dir_all(&tls).expect("context TLS dir");
    std::fs::write(
        meta.join("meta.json"),
        format!(r#"{{"Name":"bench-tls","Endpoints":{{"docker":{{"Host":"{TLS_HOST}"}}}}}}"#),
    )
    .expect("context meta");
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(PathBuf::from(TLS_CERTS).join(f), tls.join(f))
            .expect("TLS material (bash .ci/engines start)");
    }
    std::fs::write(dir.join("config.json"), r#"{"currentContext":"bench-tls"}"#)
        .expect("config.json");
    dir
}

fn main() {
    common::trace_from_env();
    let mut suite = Suite::new("engines");
    let context = context_config();
    let connect = |name: &str| {
        let (which, context) = (name.to_string(), context.clone());
        suite
            .block_on(seaworthy::runtime::run(async move {
                match which.as_str() {
                    "unix" => Engine::connect_to("unix:///var/run/docker.sock").await,
                    "tls" => Engine::connect_with_tls(TLS_HOST, TLS_CERTS.as_ref()).await,
                    "ssh" => Engine::connect_with_ssh_key(SSH_HOST, SSH_KEY.as_ref()).await,
                    "context" => {
                        Discovery::new()
                            .var("DOCKER_CONFIG", context.to_str())?
                            .connect()
                            .await
                    }
                    _ => Engine::connect_to(PODMAN).await,
                }
            }))
            .unwrap_or_else(|e| panic!("{name}: {e} (bash .ci/engines start sets it up)"))
    };
    // `SEAWORTHY_BENCH_ENDPOINTS=podman,unix` measures only those (to trace or compare one);
    // unset, every endpoint.
    let only = std::env::var("SEAWORTHY_BENCH_ENDPOINTS").ok();
    let endpoints: Vec<(&str, Engine)> = ["unix", "tls", "ssh", "context", "podman"]
        .into_iter()
        .filter(|name| {
            only.as_deref()
                .is_none_or(|only| only.split(',').any(|o| o.trim() == *name))
        })
        .map(|name| (name, connect(name)))
        .collect();
    let mut n = 0;
    for (name, engine) in endpoints {
        let endpoint = engine.endpoint().to_string();
        let session = Session::with_engine(engine);
        suite.compare(
            &format!("busybox.start_to_ready.{name}"),
            "bare bollard: create, start, follow log (same endpoint)",
            runs(name),
            || {
                let session = session.clone();
                async move {
                    let t = Instant::now();
                    let c = definition().start_in(&session).await.expect("start");
                    let elapsed = t.elapsed();
                    c.remove().await.expect("remove");
                    elapsed
                }
            },
            || {
                n += 1;
                let session = session.clone();
                async move {
                    let t = Instant::now();
                    let id = bare_start(&session, None, Some(n)).await;
                    let elapsed = t.elapsed();
                    bare_remove(&session, &id).await;
                    elapsed
                }
            },
        );
        suite.annotate("endpoint", endpoint);
        suite.target(Target::RatioAtMost(1.05));
        suite.block_on(session.teardown());
    }
    let _ = std::fs::remove_dir_all(&context);
    suite.finish();
}
