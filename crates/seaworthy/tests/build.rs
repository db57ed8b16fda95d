//! Image builds: context archives, build arguments, targets, labels, the content-hash cache,
//! failures that show the build output, and removal with the session.

mod common;

use std::path::{Path, PathBuf};

use seaworthy::session::{LABEL_MANAGED, LABEL_SESSION};
use seaworthy::{Error, ImageBuild, Session, LABEL_BUILD_HASH};

const BUSYBOX: &str = "seaworthy-test/busybox";

/// A fresh context directory under the system temp dir, removed on drop.
struct Context(PathBuf);

impl Context {
    fn new(files: &[(&str, &str)]) -> Context {
        let dir = std::env::temp_dir().join(format!(
            "seaworthy-build-{}-{:08x}",
            std::process::id(),
            rand_u32()
        ));
        for (path, contents) in files {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, contents).unwrap();
        }
        Context(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A number that differs between calls and between runs.
fn rand_u32() -> u32 {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

async fn image_exists(session: &Session, reference: &str) -> bool {
    match session.engine().docker().inspect_image(reference).await {
        Ok(_) => true,
        Err(seaworthy::bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }) => false,
        Err(e) => panic!("inspect image {reference}: {e}"),
    }
}

const MULTI_STAGE: &str = "\
FROM seaworthy-test/busybox AS base
ARG GREETING=unset
RUN echo \"$GREETING\" > /greeting
COPY app/ /app/
FROM base AS broken
RUN echo this stage must not be built && exit 1
";

#[tokio::test]
async fn builds_a_context_with_build_args_target_labels_and_dockerignore() {
    let ctx = Context::new(&[
        ("Dockerfile", MULTI_STAGE),
        ("app/hello.txt", "hello from the context\n"),
        ("app/debug.log", "ignored\n"),
        (".dockerignore", "**/*.log\n"),
    ]);
    let session = common::own_session().await;
    let image = ImageBuild::new(ctx.path())
        .with_build_arg("GREETING", "bonjour")
        .with_target("base")
        .with_label("org.example.purpose", "build-test")
        .build_in(&session)
        .await
        .unwrap();
    assert!(!image.was_cached());
    assert!(image.is_owned());
    assert!(
        image
            .reference()
            .starts_with("seaworthy-build/seaworthy-build-"),
        "default tag names the context directory: {}",
        image.reference()
    );

    let info = session
        .engine()
        .docker()
        .inspect_image(image.reference())
        .await
        .unwrap();
    let labels = info.config.unwrap().labels.unwrap();
    assert_eq!(labels[LABEL_MANAGED], "true");
    assert_eq!(labels[LABEL_SESSION], session.run_id());
    assert_eq!(labels[LABEL_BUILD_HASH], image.content_hash());
    assert_eq!(labels["org.example.purpose"], "build-test");

    let c = image
        .definition()
        .with_cmd(["sleep", "60"])
        .create_in(&session)
        .await
        .unwrap();
    assert_eq!(c.read_file_text("/greeting").await.unwrap(), "bonjour\n");
    assert_eq!(
        c.read_file_text("/app/hello.txt").await.unwrap(),
        "hello from the context\n"
    );
    assert!(
        !c.file_exists("/app/debug.log").await.unwrap(),
        ".dockerignore keeps it out of the context"
    );
    c.remove().await.unwrap();
    assert!(session.teardown().await.is_empty());
    assert!(!image_exists(&session, image.reference()).await);
}

#[tokio::test]
async fn an_unchanged_context_is_not_built_again() {
    let ctx = Context::new(&[
        (
            "Dockerfile",
            "FROM seaworthy-test/busybox\nCOPY data.txt /data.txt\n",
        ),
        ("data.txt", "one\n"),
    ]);
    let session = common::own_session().await;
    let first = ImageBuild::new(ctx.path())
        .build_in(&session)
        .await
        .unwrap();
    let again = ImageBuild::new(ctx.path())
        .with_tag("seaworthy-build/same-content:again")
        .build_in(&session)
        .await
        .unwrap();
    assert!(again.was_cached(), "same content hash: no build");
    assert!(
        !again.is_owned(),
        "the cache hit belongs to whoever built it"
    );
    assert_eq!(again.id(), first.id());
    assert_eq!(again.content_hash(), first.content_hash());
    assert!(image_exists(&session, "seaworthy-build/same-content:again").await);

    // Touching a file without changing it keeps the cache; changing it rebuilds.
    let file = std::fs::File::options()
        .write(true)
        .open(ctx.path().join("data.txt"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now()).unwrap();
    drop(file);
    let touched = ImageBuild::new(ctx.path())
        .build_in(&session)
        .await
        .unwrap();
    assert!(touched.was_cached());
    std::fs::write(ctx.path().join("data.txt"), "two\n").unwrap();
    let changed = ImageBuild::new(ctx.path())
        .build_in(&session)
        .await
        .unwrap();
    assert!(!changed.was_cached());
    assert_ne!(changed.id(), first.id());
    assert_ne!(changed.reference(), first.reference());

    assert!(session.teardown().await.is_empty());
    for reference in [
        first.reference(),
        changed.reference(),
        "seaworthy-build/same-content:again",
    ] {
        assert!(!image_exists(&session, reference).await, "{reference} left");
    }
}

#[tokio::test]
async fn a_failed_build_names_the_dockerfile_and_shows_the_build_output() {
    let ctx = Context::new(&[(
        "build/App.Dockerfile",
        "FROM seaworthy-test/busybox\nRUN echo compiling the-widget && echo 'widget.c:3: error' >&2 && exit 3\n",
    )]);
    let session = common::own_session().await;
    let err = ImageBuild::new(ctx.path())
        .with_dockerfile("build/App.Dockerfile")
        .with_tag("seaworthy-build/failing:test")
        .build_in(&session)
        .await
        .unwrap_err();
    let text = err.to_string();
    match &err {
        Error::Build {
            image,
            dockerfile,
            reason,
            log_tail,
        } => {
            assert_eq!(image, "seaworthy-build/failing:test");
            assert!(dockerfile.ends_with("build/App.Dockerfile"), "{dockerfile}");
            assert!(reason.contains("returned a non-zero code: 3"), "{reason}");
            let tail = log_tail.join("\n");
            assert!(tail.contains("compiling the-widget"), "{tail}");
            assert!(tail.contains("widget.c:3: error"), "{tail}");
        }
        other => panic!("expected a build error, got {other:?}"),
    }
    assert!(
        text.contains("App.Dockerfile") && text.contains("the-widget"),
        "{text}"
    );
    assert!(!image_exists(&session, "seaworthy-build/failing:test").await);

    // A missing Dockerfile is named too.
    let err = ImageBuild::new(ctx.path())
        .build_in(&session)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Dockerfile") && err.contains("does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn inline_dockerfiles_and_kept_images() {
    let session = common::own_session().await;
    let marker = format!("kept-{}", std::process::id());
    let image = ImageBuild::inline(format!(
        "FROM {BUSYBOX}\nLABEL org.example.marker={marker}\nENV MARKER={marker}\n"
    ))
    .build_in(&session)
    .await
    .unwrap();
    assert!(image.reference().starts_with("seaworthy-build/inline:"));
    let reference = image.keep();
    assert!(session.teardown().await.is_empty());
    assert!(
        image_exists(&session, &reference).await,
        "a kept image survives teardown"
    );
    // The next build of the same Dockerfile finds it.
    let again = ImageBuild::inline(format!(
        "FROM {BUSYBOX}\nLABEL org.example.marker={marker}\nENV MARKER={marker}\n"
    ))
    .build_in(&session)
    .await
    .unwrap();
    assert!(again.was_cached());
    // Clean up by hand: kept means nobody removes it.
    session
        .engine()
        .docker()
        .remove_image(
            &reference,
            Some(seaworthy::bollard::query_parameters::RemoveImageOptions {
                force: true,
                ..Default::default()
            }),
            None,
        )
        .await
        .unwrap();
    assert!(!image_exists(&session, &reference).await);
}
