//! Pulling an image that is not present locally, from a registry on 127.0.0.1 (Debian's
//! docker-registry, started by the test), with concurrent starts pulling once.

mod common;

use std::process::{Child, Command, Stdio};
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

#[tokio::test]
async fn a_missing_image_is_pulled_once_for_two_concurrent_starts() {
    let (mut registry, port) = start_registry();
    let session = Session::global().await.unwrap();
    let docker = session.engine().docker().clone();
    let repo = format!("127.0.0.1:{port}/seaworthy-test/pullme");
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

    let since = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1)
    .to_string();
    let define = || {
        ContainerDefinition::new(reference.clone())
            .with_cmd(["sh", "-c", "echo pulled; exec sleep 3600"])
            .with_wait(Wait::log("^pulled$"))
    };
    let (a, b) = tokio::join!(define().start(), define().start());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.id(), b.id());

    // Count the engine's pull events for this image since the test began.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let events: Vec<_> = docker
        .events(Some(EventsOptions {
            since: Some(since),
            until: Some(until),
            filters: Some(std::collections::HashMap::from([
                ("type".to_string(), vec!["image".to_string()]),
                ("event".to_string(), vec!["pull".to_string()]),
            ])),
        }))
        .collect()
        .await;
    let pulls = events
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.actor.as_ref().and_then(|a| a.id.as_deref()) == Some(reference.as_str()))
        .count();
    assert_eq!(pulls, 1, "the image was pulled {pulls} times");
    a.remove().await.unwrap();
    b.remove().await.unwrap();
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
