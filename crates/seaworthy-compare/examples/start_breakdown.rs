//! Where a busybox start-to-ready goes: Seaworthy on its session network and on the engine's
//! default bridge, the bare engine calls on each, and testcontainers — alternating, medians; then
//! the same for 8 containers started concurrently. (An unnamed container, like these, starts on
//! the default bridge unless the session network already exists; this example creates it first
//! and picks each side's network explicitly.)
//!
//! `cargo run --release -p seaworthy-compare --example start_breakdown [RUNS]`
//! (`RUST_LOG=seaworthy=debug` adds the library's own timings per step).

// The bare engine calls of the core's benchmarks, the same code measured here.
#[path = "../../seaworthy/benches/common/mod.rs"]
mod bare_calls;

use std::time::{Duration, Instant};

use bare_calls::{IMAGE, SCRIPT};
use seaworthy::{ContainerDefinition, Session, Wait};
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

fn seaworthy(session_network: bool) -> ContainerDefinition {
    let def = ContainerDefinition::new(IMAGE)
        .with_cmd(["sh", "-c", SCRIPT])
        .with_wait(Wait::log("^ready$"));
    if session_network {
        def.on_session_network()
    } else {
        def.without_session_network()
    }
}

/// create, start, follow the log until `ready`; on `network` or the default bridge.
async fn bare(session: &Session, network: Option<&str>) -> (Duration, String) {
    let t = Instant::now();
    let id = bare_calls::bare_start(session, network, None).await;
    (t.elapsed(), id)
}

async fn remove(session: &Session, id: &str) {
    bare_calls::bare_remove(session, id).await;
}

fn median(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    // RUST_LOG=seaworthy=debug shows the library's timings of each step.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let session = Session::global().await.expect("an engine");
    let network = session.network_name().await.expect("session network");
    let names = [
        "seaworthy, session network",
        "seaworthy, default bridge",
        "bare engine, session network",
        "bare engine, default bridge",
        "testcontainers 0.28 (default bridge)",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for run in 0..=runs {
        for k in 0..names.len() {
            // Rotate the order each run so no side always goes first.
            let which = (k + run) % names.len();
            let took = match which {
                0 | 1 => {
                    let t = Instant::now();
                    let c = seaworthy(which == 0).start().await.expect("start");
                    let took = t.elapsed();
                    c.remove().await.expect("remove");
                    took
                }
                2 | 3 => {
                    let net = (which == 2).then_some(network.as_str());
                    let (took, id) = bare(&session, net).await;
                    remove(&session, &id).await;
                    took
                }
                _ => {
                    let t = Instant::now();
                    let c = GenericImage::new("seaworthy-test/busybox", "latest")
                        .with_wait_for(WaitFor::message_on_stdout("ready"))
                        .with_cmd(["sh", "-c", SCRIPT])
                        .start()
                        .await
                        .expect("start");
                    let took = t.elapsed();
                    c.rm().await.expect("remove");
                    took
                }
            };
            // Run 0 warms everything up and is not counted.
            if run > 0 {
                samples[which].push(took);
            }
        }
    }
    for (name, s) in names.iter().zip(samples.iter_mut()) {
        println!("{name:<40} {:>8.1} ms (median of {runs})", median(s));
    }

    let names = [
        "8 concurrent: seaworthy, session network",
        "8 concurrent: seaworthy, default bridge",
        "8 concurrent: testcontainers 0.28",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let runs8 = runs.div_ceil(2);
    for run in 0..=runs8 {
        for k in 0..names.len() {
            let which = (k + run) % names.len();
            let t = Instant::now();
            if which < 2 {
                let started = futures_util::future::try_join_all(
                    (0..8).map(|_| seaworthy(which == 0).start()),
                )
                .await
                .expect("start 8");
                let took = t.elapsed();
                futures_util::future::try_join_all(started.into_iter().map(|c| c.remove()))
                    .await
                    .expect("remove 8");
                if run > 0 {
                    samples[which].push(took);
                }
            } else {
                let started = futures_util::future::try_join_all((0..8).map(|_| {
                    GenericImage::new("seaworthy-test/busybox", "latest")
                        .with_wait_for(WaitFor::message_on_stdout("ready"))
                        .with_cmd(["sh", "-c", SCRIPT])
                        .start()
                }))
                .await
                .expect("start 8");
                let took = t.elapsed();
                futures_util::future::try_join_all(started.into_iter().map(|c| c.rm()))
                    .await
                    .expect("remove 8");
                if run > 0 {
                    samples[which].push(took);
                }
            }
        }
    }
    for (name, s) in names.iter().zip(samples.iter_mut()) {
        println!("{name:<40} {:>8.1} ms (median of {runs8})", median(s));
    }
    session.teardown().await;
}
