//! Pulling an image that is not present locally, from a registry on 127.0.0.1 (Debian's
//! docker-registry, started by the test), with concurrent starts pulling once.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use seaworthy::bollard::query_parameters::{EventsOptions, PushImageOptions, TagImageOptions};
use seaworthy::{ContainerDefinition, Session, Wait};

/// A registry process and the image tag it holds, removed when dropped.
struct Registry {
    child: Child,
    dir: std::path::PathBuf,
    image: Option<String>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(image) = &self.image {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_registry() -> (Registry, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir =
        std::env::temp_dir().join(format!("seaworthy-registry-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "docker-registry must be installed (apt-get install docker-registry; .ci/run does)",
        );
    let registry = Registry {
        child,
        dir,
        image: None,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the registry did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (registry, port)
}

/// Pushes the busybox test image to `registry` as `NAME:t<pid>` and removes it locally, so that
/// starting it pulls; returns the reference.
async fn push_and_forget(registry: &mut Registry, port: u16, name: &str) -> String {
    let docker = Session::global().await.unwrap().engine().docker().clone();
    let repo = format!("127.0.0.1:{port}/seaworthy-test/{name}");
    let tag = format!("t{}", std::process::id());
    let reference = format!("{repo}:{tag}");
    registry.image = Some(reference.clone());
    docker
        .tag_image(
            common::BUSYBOX,
            Some(TagImageOptions {
                repo: Some(repo.clone()),
                tag: Some(tag.clone()),
            }),
        )
        .await
        .unwrap();
    let mut push = docker.push_image(
        &repo,
        Some(PushImageOptions {
            tag: Some(tag.clone()),
            ..Default::default()
        }),
        None,
    );
    while let Some(step) = push.next().await {
        let step = step.unwrap();
        assert!(step.error_detail.is_none(), "{step:?}");
    }
    docker
        .remove_image(
            &reference,
            None::<seaworthy::bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .unwrap();
    assert!(docker.inspect_image(&reference).await.is_err());
    reference
}

/// The current time in whole seconds, moved by `offset`, as the events API takes it.
fn seconds_from_now(offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now + offset).to_string()
}

/// How many times the engine pulled `reference` since `since` (whole seconds).
async fn pulls_of(reference: &str, since: String) -> usize {
    let docker = Session::global().await.unwrap().engine().docker().clone();
    let events: Vec<_> = docker
        .events(Some(EventsOptions {
            since: Some(since),
            until: Some(seconds_from_now(1)),
            filters: Some(std::collections::HashMap::from([
                ("type".to_string(), vec!["image".to_string()]),
                ("event".to_string(), vec!["pull".to_string()]),
            ])),
        }))
        .collect()
        .await;
    events
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.actor.as_ref().and_then(|a| a.id.as_deref()) == Some(reference))
        .count()
}

fn pulled(reference: &str) -> ContainerDefinition {
    ContainerDefinition::new(reference)
        .with_cmd(["sh", "-c", "echo pulled; exec sleep 3600"])
        .with_wait(Wait::log("^pulled$"))
}

#[tokio::test]
async fn a_missing_image_is_pulled_once_for_two_concurrent_starts() {
    let (mut registry, port) = start_registry();
    let reference = push_and_forget(&mut registry, port, "pullme").await;
    let since = seconds_from_now(-1);
    let (a, b) = tokio::join!(pulled(&reference).start(), pulled(&reference).start());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.id(), b.id());
    let pulls = pulls_of(&reference, since).await;
    assert_eq!(pulls, 1, "the image was pulled {pulls} times");
    a.remove().await.unwrap();
    b.remove().await.unwrap();
}

#[tokio::test]
async fn two_sessions_of_one_process_pull_a_missing_image_once() {
    let (mut registry, port) = start_registry();
    let reference = push_and_forget(&mut registry, port, "pullme-sessions").await;
    let first = Session::global().await.unwrap();
    let second = Session::connect_to(first.engine().endpoint())
        .await
        .unwrap();
    assert_ne!(first.namespace(), second.namespace());
    let since = seconds_from_now(-1);
    let (a, b) = tokio::join!(
        pulled(&reference).start_in(&first),
        pulled(&reference).start_in(&second)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let pulls = pulls_of(&reference, since).await;
    assert_eq!(pulls, 1, "the image was pulled {pulls} times");
    a.remove().await.unwrap();
    b.remove().await.unwrap();
    assert!(second.teardown().await.is_empty());
}

/// A "registry" that accepts connections and never answers, until dropped.
struct SilentRegistry {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentRegistry {
    fn start() -> SilentRegistry {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (accepted, stop) = (accepted.clone(), stop.clone());
            move || {
                let mut held = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                            held.push(stream);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
        });
        SilentRegistry {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn a_stalled_pull_fails_within_the_startup_timeout_naming_the_image() {
    let registry = SilentRegistry::start();
    let reference = format!("127.0.0.1:{}/seaworthy-test/stalled:1", registry.port);
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = ContainerDefinition::new(reference.clone())
        .with_startup_timeout(timeout)
        .start()
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        registry.accepted.load(Ordering::SeqCst) > 0,
        "the engine never reached the registry: {err}"
    );
    assert!(
        elapsed < timeout + Duration::from_secs(2),
        "start() took {elapsed:?} with a startup timeout of {timeout:?}: {err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&reference) && text.contains("startup timeout"),
        "{text}"
    );
}

#[tokio::test]
async fn pulling_from_a_registry_that_lacks_the_image_names_it() {
    let (_registry, port) = start_registry();
    let reference = format!("127.0.0.1:{port}/seaworthy-test/absent:1");
    let err = ContainerDefinition::new(reference.clone())
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&reference) && err.contains("pull failed"),
        "{err}"
    );
}
