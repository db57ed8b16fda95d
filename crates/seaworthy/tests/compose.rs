//! docker-compose files run as stacks against the real engine (no compose CLI), and the errors a
//! bad file gets before anything is created. The files live in the workspace's `tests/compose/`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use seaworthy::{Exec, ResourceKind, StackDefinition, Wait};

/// `tests/compose/NAME/compose.yaml` of the workspace.
fn compose_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/compose")
        .join(name)
        .join("compose.yaml")
}

#[tokio::test]
async fn four_services_start_serve_http_and_leave_nothing_behind() {
    let session = common::own_session().await;
    let stack = StackDefinition::from_compose_file(compose_file("four-services"))
        .unwrap()
        .start_in(&session)
        .await
        .unwrap();
    assert_eq!(stack.name(), "four-services");
    let id = stack.id().to_string();
    let mut parts = common::leftovers(&session, &id).await;
    parts.sort();
    assert_eq!(
        parts.len(),
        6,
        "4 containers, the default network, the logs volume: {parts:?}"
    );

    // HTTP through nginx to the app, which reports what PostgreSQL answered to its probe.
    let web = stack.container("web").unwrap();
    let response = web
        .http(80)
        .unwrap()
        .get("/api/status")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        "shop-app: db:5432 answered [N]\n"
    );

    // The log sidecar follows nginx's access log through the shared volume.
    let logs = stack.container("logs").unwrap();
    logs.wait_for(
        &Wait::log(r#""GET /api/status HTTP/1.1" 200"#),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    // Its volume is the tmpfs the file's driver_opts asked for.
    let out = logs
        .exec(Exec::shell("mount | grep ' /logs ' | cut -d' ' -f5"))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "tmpfs\n", "{}", out.stderr_text());

    // The app got its environment from env_file and environment, and the file-level labels.
    let app = stack.container("app").unwrap();
    let out = app
        .exec(Exec::shell(
            "echo $APP_NAME $DB_HOST $DB_PORT; pwd; mount | grep ' /tmp ' | cut -d' ' -f5",
        ))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "shop-app db 5432\n/srv\ntmpfs\n");
    assert_eq!(
        app.read_file_text("/srv/www/api/status").await.unwrap(),
        "shop-app: db:5432 answered [N]\n"
    );
    // `service_healthy`: db answered the app's very first probe, made as the app started.
    assert_eq!(
        app.read_file_text("/srv/www/api/first").await.unwrap(),
        "first probe answered [N]\n"
    );
    let labels = app.inspect().await.unwrap().config.unwrap().labels.unwrap();
    assert_eq!(labels["io.seaworthy.example"], "four-services");
    let db = stack.container("db").unwrap().inspect().await.unwrap();
    assert_eq!(db.config.unwrap().labels.unwrap()["role"], "database");
    assert_eq!(
        db.state.unwrap().health.unwrap().status,
        Some(seaworthy::bollard::models::HealthStatusEnum::HEALTHY)
    );

    stack.remove().await.unwrap();
    assert_eq!(common::leftovers(&session, &id).await, Vec::<String>::new());
    for kind in [
        ResourceKind::Container,
        ResourceKind::Network,
        ResourceKind::Volume,
    ] {
        assert_eq!(session.live_count(kind), 0, "{kind:?}");
    }
}

#[tokio::test]
async fn builds_and_completed_jobs_run_in_order() {
    let session = common::own_session().await;
    let stack = StackDefinition::from_compose_file(compose_file("build"))
        .unwrap()
        .configure("greeter", |m| m.with_wait(Wait::log("^schema v2$")))
        .start_in(&session)
        .await
        .unwrap();
    let greeter = stack.container("greeter").unwrap();
    assert_eq!(
        greeter.logs().await.unwrap().stdout(),
        "hello from a build\nschema v2"
    );
    assert!(
        greeter.image().starts_with("seaworthy-build/"),
        "{}",
        greeter.image()
    );
    let id = stack.id().to_string();
    assert!(id.starts_with("built-"), "{id}");
    stack.remove().await.unwrap();
    assert_eq!(common::leftovers(&session, &id).await, Vec::<String>::new());
}

#[test]
fn an_unsupported_key_names_the_key_and_the_service() {
    let err = StackDefinition::from_compose_file(compose_file("unsupported-key"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsupported-key/compose.yaml"), "{err}");
    assert!(
        err.contains("service \"web\"") && err.contains("key \"deploy\" is not supported"),
        "{err}"
    );
}

#[test]
fn a_yaml_syntax_error_names_the_line() {
    let err = StackDefinition::from_compose_file(compose_file("broken-yaml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken-yaml/compose.yaml"), "{err}");
    assert!(err.contains("YAML syntax error at line 8"), "{err}");
}

#[test]
fn a_dependency_cycle_is_refused_when_the_file_is_read() {
    // Loading needs no engine: the cycle is found before a stack could create anything.
    let err = StackDefinition::from_compose_file(compose_file("cycle"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cycle: api -> worker -> cache -> api"),
        "{err}"
    );
}

#[tokio::test]
async fn declared_networks_aliases_and_a_services_network_namespace() {
    let session = common::own_session().await;
    let stack = StackDefinition::from_compose_file(compose_file("networks"))
        .unwrap()
        .start_in(&session)
        .await
        .unwrap();
    let id = stack.id().to_string();
    // Fetches `url` from `member`, `tries` times 0.1 s apart while the web server comes up, each
    // try bounded to 3 s.
    let fetch = |member: &str, url: &str, tries: u32| {
        let container = stack.container(member).unwrap();
        let script = format!(
            "for i in $(seq {tries}); do timeout 3 wget -q -O - {url} && exit 0; sleep 0.1; done; exit 1"
        );
        async move { container.exec(Exec::shell(script)).await.unwrap() }
    };
    // `side` shares web's network namespace (`network_mode: service:web`): web is on localhost.
    let out = fetch("side", "http://localhost:8080/", 20).await;
    assert_eq!(out.stdout_text(), "web\n", "{}", out.stderr_text());
    // `client` shares the network `back` with web, which has the alias `api` there.
    let out = fetch("client", "http://api:8080/", 20).await;
    assert_eq!(out.stdout_text(), "web\n", "{}", out.stderr_text());
    // `outsider` is only on `front`: neither the alias nor the service name resolves there.
    for url in ["http://api:8080/", "http://web:8080/"] {
        let out = fetch("outsider", url, 1).await;
        assert!(
            !out.success(),
            "outsider reached {url}: {}",
            out.stdout_text()
        );
    }
    // Each declared network is the stack's own, and web's alias is on `back` only.
    let web = stack.container("web").unwrap().inspect().await.unwrap();
    let networks = web.network_settings.unwrap().networks.unwrap();
    let back = stack.network("back").unwrap().name().to_string();
    assert_eq!(networks.len(), 1, "{:?}", networks.keys());
    let aliases = networks[&back].aliases.clone().unwrap_or_default();
    assert!(aliases.contains(&"api".to_string()), "{aliases:?}");
    stack.remove().await.unwrap();
    assert_eq!(common::leftovers(&session, &id).await, Vec::<String>::new());
}
