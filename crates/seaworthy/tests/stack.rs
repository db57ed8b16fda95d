//! Stacks against the real engine: dependency order, the multi-container patterns (sidecar, shared
//! volume, ambassador), failures that remove everything, and invalid stacks refused up front.
//!
//! Each test uses a session of its own, so "nothing was created" and "nothing is left" can be
//! checked exactly while other tests run in the same process.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use seaworthy::bollard::query_parameters::ListContainersOptions;

use seaworthy::{
    ContainerDefinition, DependsOn, Error, Exec, ResourceKind, Session, StackDefinition,
    StackMember, VolumeDefinition, Wait, LABEL_STACK, LABEL_STACK_MEMBER,
};

const BUSYBOX: &str = "seaworthy-test/busybox";
const NGINX: &str = "seaworthy-test/nginx";

/// A busybox container that prints `ready`, then runs `script` (default: sleeps).
fn busybox(script: &str) -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", &format!("echo ready; {script}")])
        .with_wait(Wait::log("^ready$"))
}

/// A busybox web server answering `body` on port 8080 at `/`.
fn web_server(body: &str) -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd([
            "sh",
            "-c",
            &format!(
                "mkdir /www && echo '{body}' > /www/index.html && echo ready && exec httpd -f -p 8080 -h /www"
            ),
        ])
        .with_wait(Wait::log("^ready$"))
}

/// What `session` still owns, by kind.
fn owned(session: &Session) -> [usize; 3] {
    [
        session.live_count(ResourceKind::Container),
        session.live_count(ResourceKind::Network),
        session.live_count(ResourceKind::Volume),
    ]
}

async fn sh(container: &seaworthy::Container, script: &str) -> String {
    let out = container.exec(Exec::shell(script)).await.unwrap();
    assert!(
        out.success(),
        "{script}: exit {}: {}",
        out.exit_code,
        out.stderr_text()
    );
    out.stdout_text()
}

#[tokio::test]
async fn members_start_after_their_dependencies_and_reach_each_other_by_name() {
    let session = common::own_session().await;
    // `app` fetches from `api` the moment it starts: it only works if `api` is ready by then.
    let stack = StackDefinition::new("ordered")
        .with_container("api", web_server("hello from api"))
        .with_member(
            StackMember::new(
                "app",
                busybox("").with_cmd([
                    "sh",
                    "-c",
                    "wget -q -O /fetched http://api:8080/ && echo ready && exec sleep 3600",
                ]),
            )
            .depends_on("api", DependsOn::Ready),
        )
        .with_container("idle", busybox("exec sleep 3600"))
        .start_in(&session)
        .await
        .unwrap();

    let app = stack.container("app").unwrap();
    assert_eq!(
        app.read_file_text("/fetched").await.unwrap(),
        "hello from api\n"
    );
    assert_eq!(sh(app, "hostname").await, "app\n");
    assert!(stack
        .container("nope")
        .unwrap_err()
        .to_string()
        .contains("members: "));

    // Every member is named and labelled for the stack; the members joined the stack's own network.
    let names: Vec<&str> = stack.containers().map(|(name, _)| name).collect();
    assert_eq!(names.len(), 3);
    assert_eq!(names.last(), Some(&"app"), "app is created last: {names:?}");
    for (member, container) in stack.containers() {
        assert!(container
            .name()
            .ends_with(&format!("{}-{member}", stack.id())));
        let labels = container
            .inspect()
            .await
            .unwrap()
            .config
            .unwrap()
            .labels
            .unwrap();
        assert_eq!(labels[LABEL_STACK], stack.id());
        assert_eq!(labels[LABEL_STACK_MEMBER], member);
        assert_eq!(labels["io.seaworthy.managed"], "true");
    }
    let network = stack.network("default").unwrap().name().to_string();
    let info = app.inspect().await.unwrap();
    let networks = info.network_settings.unwrap().networks.unwrap();
    assert_eq!(networks.keys().collect::<Vec<_>>(), [&network]);

    let id = stack.id().to_string();
    assert_eq!(
        common::leftovers(&session, &id).await.len(),
        4,
        "3 containers and a network"
    );
    stack.remove().await.unwrap();
    assert_eq!(common::leftovers(&session, &id).await, Vec::<String>::new());
    assert_eq!(owned(&session), [0, 0, 0]);
}

#[tokio::test]
async fn a_job_that_must_complete_runs_before_its_dependents() {
    let session = common::own_session().await;
    let stack = StackDefinition::new("jobs")
        .with_volume(VolumeDefinition::new("state"))
        .with_member(
            StackMember::new(
                "migrate",
                ContainerDefinition::new(BUSYBOX).with_cmd([
                    "sh",
                    "-c",
                    "sleep 0.3; echo v2 > /state/schema",
                ]),
            )
            .with_volume("state", "/state", false),
        )
        .with_member(
            StackMember::new(
                "app",
                busybox("").with_cmd([
                    "sh",
                    "-c",
                    "cat /state/schema && echo ready && exec sleep 3600",
                ]),
            )
            .with_volume("state", "/state", true)
            .depends_on("migrate", DependsOn::CompletedSuccessfully),
        )
        .start_in(&session)
        .await
        .unwrap();
    let logs = stack.container("app").unwrap().logs().await.unwrap();
    assert_eq!(logs.stdout(), "v2\nready");
    stack.remove().await.unwrap();
    assert_eq!(owned(&session), [0, 0, 0]);
}

#[tokio::test]
async fn a_sidecar_reaches_its_host_on_localhost() {
    let session = common::own_session().await;
    let stack = StackDefinition::new("sidecar")
        .with_container("web", web_server("served on localhost"))
        .with_member(StackMember::new("probe", busybox("exec sleep 3600")).with_network_of("web"))
        .start_in(&session)
        .await
        .unwrap();
    let probe = stack.container("probe").unwrap();
    assert_eq!(
        sh(probe, "wget -q -O - http://127.0.0.1:8080/").await,
        "served on localhost\n"
    );
    let web_id = stack.container("web").unwrap().id();
    let mode = probe
        .inspect()
        .await
        .unwrap()
        .host_config
        .unwrap()
        .network_mode
        .unwrap();
    assert_eq!(mode, format!("container:{web_id}"));
    stack.remove().await.unwrap();
    assert_eq!(owned(&session), [0, 0, 0]);
}

#[tokio::test]
async fn members_share_a_volume() {
    let session = common::own_session().await;
    let stack = StackDefinition::new("shared")
        .with_volume(VolumeDefinition::new("spool"))
        .with_member(
            StackMember::new(
                "writer",
                busybox("").with_cmd([
                    "sh",
                    "-c",
                    "echo 'written by writer' > /spool/message && echo ready && exec sleep 3600",
                ]),
            )
            .with_volume("spool", "/spool", false),
        )
        .with_member(
            StackMember::new("reader", busybox("exec sleep 3600"))
                .with_volume("spool", "/in", true)
                .depends_on("writer", DependsOn::Ready),
        )
        .start_in(&session)
        .await
        .unwrap();
    let reader = stack.container("reader").unwrap();
    assert_eq!(
        reader.read_file_text("/in/message").await.unwrap(),
        "written by writer\n"
    );
    let out = reader
        .exec(Exec::shell("echo x > /in/other"))
        .await
        .unwrap();
    assert!(!out.success(), "the reader's mount is read-only");
    assert!(stack.volume("spool").unwrap().name().contains(stack.id()));
    stack.remove().await.unwrap();
    assert_eq!(owned(&session), [0, 0, 0]);
}

#[tokio::test]
async fn an_ambassador_answers_for_its_member() {
    let session = common::own_session().await;
    // nginx as the proxy: requests for `api` reach it, and it forwards them to `api-origin`.
    let proxy_config = r#"
error_log /dev/stderr notice;
events {}
http {
    access_log /dev/stdout;
    server {
        listen 8080;
        location / {
            proxy_pass http://api-origin:8080;
            add_header X-Ambassador nginx;
        }
    }
}
"#;
    let stack = StackDefinition::new("ambassador")
        .with_container("api", web_server("from the real api"))
        .with_member(
            StackMember::new(
                "proxy",
                ContainerDefinition::new(NGINX)
                    .with_file("/etc/nginx/nginx.conf", proxy_config, 0o644)
                    .with_wait(Wait::log("start worker process")),
            )
            .ambassador_for("api"),
        )
        .with_member(
            StackMember::new("client", busybox("exec sleep 3600"))
                .depends_on("proxy", DependsOn::Ready),
        )
        .start_in(&session)
        .await
        .unwrap();
    let client = stack.container("client").unwrap();
    let out = client
        .exec(Exec::new([
            "wget",
            "-S",
            "-q",
            "-O",
            "-",
            "http://api:8080/",
        ]))
        .await
        .unwrap();
    assert_eq!(
        out.stdout_text(),
        "from the real api\n",
        "{}",
        out.stderr_text()
    );
    assert!(
        out.stderr_text().contains("X-Ambassador: nginx"),
        "{}",
        out.stderr_text()
    );
    // The request went through the proxy, which logged it.
    stack
        .container("proxy")
        .unwrap()
        .wait_for(&Wait::log("GET / HTTP"), Duration::from_secs(5))
        .await
        .unwrap();
    stack.remove().await.unwrap();
    assert_eq!(owned(&session), [0, 0, 0]);
}

#[tokio::test]
async fn teardown_removes_dependents_before_their_dependencies() {
    use futures_util::TryStreamExt as _;
    use seaworthy::bollard::query_parameters::EventsOptions;

    let session = common::own_session().await;
    let stack = StackDefinition::new("layers")
        .with_container("db", busybox("exec sleep 3600"))
        .with_member(
            StackMember::new("app", busybox("exec sleep 3600")).depends_on("db", DependsOn::Ready),
        )
        .with_member(
            StackMember::new("client", busybox("exec sleep 3600"))
                .depends_on("app", DependsOn::Started),
        )
        .with_container("loner", busybox("exec sleep 3600"))
        .start_in(&session)
        .await
        .unwrap();
    let id = stack.id().to_string();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    stack.remove().await.unwrap();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    // The engine's record of the removals, in the order they happened.
    let events: Vec<_> = session
        .engine()
        .docker()
        .events(Some(EventsOptions {
            since: Some(since.to_string()),
            until: Some(until.to_string()),
            filters: Some(HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("event".to_string(), vec!["destroy".to_string()]),
                ("label".to_string(), vec![format!("{LABEL_STACK}={id}")]),
            ])),
        }))
        .try_collect()
        .await
        .unwrap();
    let mut removed: Vec<(i64, String)> = events
        .into_iter()
        .map(|e| {
            let member = e.actor.unwrap().attributes.unwrap()[LABEL_STACK_MEMBER].clone();
            (e.time_nano.unwrap(), member)
        })
        .collect();
    removed.sort();
    let order: Vec<&str> = removed.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(order.len(), 4, "{order:?}");
    let at = |m: &str| order.iter().position(|o| *o == m).unwrap();
    assert!(
        at("client") < at("app") && at("app") < at("db"),
        "{order:?}"
    );
    assert_eq!(common::leftovers(&session, &id).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_dependency_on_started_does_not_wait_for_ready() {
    let session = common::own_session().await;
    // `slow` is ready two seconds after it starts; `eager` only needs it started.
    let stack = StackDefinition::new("eager")
        .with_container(
            "slow",
            ContainerDefinition::new(BUSYBOX)
                .with_cmd(["sh", "-c", "sleep 2; echo ready; exec sleep 3600"])
                .with_wait(Wait::log("^ready$")),
        )
        .with_member(
            StackMember::new("eager", busybox("exec sleep 3600"))
                .depends_on("slow", DependsOn::Started),
        )
        .start_in(&session)
        .await
        .unwrap();
    let started_at = |name: &str| {
        let container = stack.container(name).unwrap();
        async move {
            let state = container.inspect().await.unwrap().state.unwrap();
            nanos(&state.started_at.unwrap())
        }
    };
    let (slow, eager) = (started_at("slow").await, started_at("eager").await);
    assert!(
        eager - slow < 1_500_000_000,
        "eager started {} ms after slow, which is ready only after 2 s",
        (eager - slow) / 1_000_000
    );
    stack.remove().await.unwrap();
}

/// Nanoseconds of the day in an engine timestamp (`2026-11-25T13:30:27.4637Z`): enough to
/// compare two instants a few seconds apart.
fn nanos(rfc3339: &str) -> i64 {
    let time = rfc3339.split_once('T').unwrap().1.trim_end_matches('Z');
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut parts = hms.split(':').map(|p| p.parse::<i64>().unwrap());
    let (h, m, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let fraction = format!("{fraction:0<9}")[..9].parse::<i64>().unwrap();
    ((h * 60 + m) * 60 + s) * 1_000_000_000 + fraction
}

#[tokio::test]
async fn a_middle_member_that_fails_is_named_and_everything_is_removed() {
    let session = common::own_session().await;
    let err = StackDefinition::new("broken")
        .with_container("db", busybox("exec sleep 3600"))
        .with_member(
            StackMember::new(
                "app",
                ContainerDefinition::new(BUSYBOX)
                    .with_cmd([
                        "sh",
                        "-c",
                        "echo 'app: cannot open /etc/app.conf' >&2; exit 3",
                    ])
                    .with_wait(Wait::log("^listening$")),
            )
            .depends_on("db", DependsOn::Ready),
        )
        .with_member(
            StackMember::new("web", busybox("exec sleep 3600")).depends_on("app", DependsOn::Ready),
        )
        .with_container("cache", busybox("exec sleep 3600"))
        .start_in(&session)
        .await
        .unwrap_err();
    let message = err.to_string();
    let Error::Stack {
        stack,
        kind,
        member,
        source,
    } = err
    else {
        panic!("expected a stack error, got {message}");
    };
    assert_eq!((kind, member.as_str()), ("member", "app"), "{message}");
    let Error::Wait { why, log_tail, .. } = *source else {
        panic!("expected a failed wait: {message}");
    };
    assert!(
        why.contains("stopped") || why.contains("exited"),
        "{message}"
    );
    assert_eq!(log_tail, ["app: cannot open /etc/app.conf"]);
    assert!(
        message.contains("stack broken-") && message.contains("member app failed"),
        "{message}"
    );
    assert_eq!(
        common::leftovers(&session, &stack).await,
        Vec::<String>::new()
    );
    assert_eq!(owned(&session), [0, 0, 0]);
}

#[tokio::test]
async fn cycles_and_unknown_references_fail_before_anything_is_created() {
    let session = common::own_session().await;
    let cycle = StackDefinition::new("cycle")
        .with_container("free", busybox("exec sleep 3600"))
        .with_member(StackMember::new("a", busybox("")).depends_on("b", DependsOn::Started))
        .with_member(StackMember::new("b", busybox("")).depends_on("c", DependsOn::Healthy))
        .with_member(StackMember::new("c", busybox("")).with_network_of("a"))
        .start_in(&session)
        .await
        .unwrap_err()
        .to_string();
    assert!(cycle.contains("cycle: a -> b -> c -> a"), "{cycle}");

    let unknown = StackDefinition::new("unknown")
        .with_container("free", busybox("exec sleep 3600"))
        .with_member(StackMember::new("app", busybox("")).depends_on("dbb", DependsOn::Healthy))
        .start_in(&session)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("member app") && unknown.contains("unknown member \"dbb\""),
        "{unknown}"
    );
    let volume = StackDefinition::new("unknown")
        .with_member(StackMember::new("app", busybox("")).with_volume("data", "/data", false))
        .start_in(&session)
        .await
        .unwrap_err()
        .to_string();
    assert!(volume.contains("undeclared volume \"data\""), "{volume}");

    // Nothing was created: no network, no volume, no container.
    assert_eq!(owned(&session), [0, 0, 0]);
    let engine_names = session
        .engine()
        .docker()
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "name".to_string(),
                vec![session.namespace().to_string()],
            )])),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(engine_names.is_empty(), "{engine_names:?}");
}

#[tokio::test]
async fn dropping_a_stack_removes_it() {
    let session = common::own_session().await;
    let stack = StackDefinition::new("dropped")
        .with_volume(VolumeDefinition::new("data"))
        .with_member(
            StackMember::new("one", busybox("exec sleep 3600")).with_volume("data", "/d", false),
        )
        .with_member(StackMember::new("two", busybox("exec sleep 3600")).with_network_of("one"))
        .start_in(&session)
        .await
        .unwrap();
    let id = stack.id().to_string();
    drop(stack);
    assert!(session.wait_for_background_removals(Duration::from_secs(30)));
    assert_eq!(common::leftovers(&session, &id).await, Vec::<String>::new());
    assert_eq!(owned(&session), [0, 0, 0]);
}

mod as_a_fixture {
    use seaworthy::{
        ContainerDefinition, Exec, Fixture, Shared, StackDefinition, StackFixture, Wait,
    };

    fn web_and_client() -> StackFixture {
        StackFixture::new(
            StackDefinition::new("fixture")
                .with_container(
                    "web",
                    ContainerDefinition::new("seaworthy-test/busybox")
                        .with_cmd([
                            "sh",
                            "-c",
                            "mkdir -p /www && echo base > /www/v && exec httpd -f -p 80 -h /www",
                        ])
                        .with_port(80)
                        .with_wait(Wait::http(80, "/v")),
                )
                .with_container(
                    "client",
                    ContainerDefinition::new("seaworthy-test/busybox")
                        .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
                        .with_wait(Wait::log("ready")),
                ),
            "web",
        )
    }

    #[tokio::test]
    async fn a_stack_fixture_for_one_test_is_cleaned_and_removed_with_its_handle() {
        use seaworthy::FixtureDefinition;

        let session = super::common::own_session().await;
        let fixture = web_and_client().start_in(&session).await.unwrap();
        let id = fixture.stack().id().to_string();
        let web = fixture.container();
        web.write_file("/www/v", "dirty\n", 0o644).await.unwrap();
        fixture.clean().await.unwrap();
        let client = fixture.stack().container("client").unwrap();
        let out = client
            .exec(Exec::new(["wget", "-q", "-O", "-", "http://web/v"]))
            .await
            .unwrap();
        assert_eq!(out.stdout_text(), "base\n", "{}", out.stderr_text());
        drop(fixture);
        assert!(session.wait_for_background_removals(std::time::Duration::from_secs(30)));
        assert_eq!(
            super::common::leftovers(&session, &id).await,
            Vec::<String>::new()
        );
        // The baselines went with it.
        assert_eq!(
            session.live_count(seaworthy::ResourceKind::Image),
            0,
            "snapshot images left"
        );
    }

    static STACK: Shared<StackFixture> = Shared::per_process(web_and_client);
    static STACK_PER_RUN: Shared<StackFixture> = Shared::per_run(web_and_client);

    #[tokio::test]
    async fn a_stack_shared_per_process_is_cleaned_as_a_whole() {
        let fixture = STACK.exclusive().await.unwrap();
        let web = fixture.container();
        let port = web.host_port(80).unwrap();
        let client = fixture.stack().container("client").unwrap();
        web.write_file("/www/v", "dirty\n", 0o644).await.unwrap();
        client.write_file("/tmp/dirty", "x", 0o644).await.unwrap();
        fixture.clean().await.unwrap();
        assert!(!client.file_exists("/tmp/dirty").await.unwrap());
        assert_eq!(web.host_port(80).unwrap(), port);
        // The members still reach each other by name after the restore.
        let out = client
            .exec(Exec::new(["wget", "-q", "-O", "-", "http://web/v"]))
            .await
            .unwrap();
        assert_eq!(out.stdout_text(), "base\n", "{}", out.stderr_text());
    }

    /// The child side of the per-run test: `SW_CHILD` is `write` or `clean`.
    #[tokio::test]
    #[ignore = "run as a child process by a_stack_is_shared_by_the_processes_of_a_run"]
    async fn child() {
        let Ok(mode) = std::env::var("SW_CHILD") else {
            return;
        };
        let fixture = STACK_PER_RUN.get().await.unwrap();
        let web = fixture.container();
        let client = fixture.stack().container("client").unwrap();
        let ids = format!("{} {}", web.id(), client.id());
        match mode.as_str() {
            "write" => {
                web.write_file("/www/v", "dirty\n", 0o644).await.unwrap();
                client.write_file("/tmp/dirty", "x", 0o644).await.unwrap();
                println!("ID={ids}");
            }
            "clean" => {
                // The stack the writers left, dirty: the same one, found by its labels.
                assert_eq!(web.read_file("/www/v").await.unwrap(), b"dirty\n");
                assert!(client.file_exists("/tmp/dirty").await.unwrap());
                fixture.clean().await.unwrap();
                assert!(!client.file_exists("/tmp/dirty").await.unwrap());
                let out = client
                    .exec(Exec::new(["wget", "-q", "-O", "-", "http://web/v"]))
                    .await
                    .unwrap();
                assert_eq!(out.stdout_text(), "base\n", "{}", out.stderr_text());
                println!("ID={ids} {} {}", web.id(), client.id());
            }
            other => panic!("unknown SW_CHILD mode {other}"),
        }
    }

    #[tokio::test]
    async fn a_stack_is_shared_by_the_processes_of_a_run() {
        use super::common::{child_command, read_ids};
        use seaworthy::gc::{list_labelled, remove_all, GcReport};
        use seaworthy::session::{LABEL_FIXTURE, LABEL_OWNER, LABEL_SESSION};
        use seaworthy::ResourceKind;

        let session = seaworthy::Session::global().await.unwrap();
        // This test plays the test runner of a run of its own.
        let run = format!("{:08x}stackrun", rand::random::<u32>());
        let spawn = |mode: &str| {
            child_command("as_a_fixture::child", mode)
                .env("SEAWORTHY_SESSION", &run)
                .spawn()
                .unwrap()
        };
        // Two processes at once: the stack is started once, by one of them.
        let mut writers = [spawn("write"), spawn("write")];
        let written: Vec<Vec<String>> = writers.iter_mut().map(read_ids).collect();
        for w in &mut writers {
            assert!(w.wait().unwrap().success());
        }
        assert_eq!(written[0], written[1]);
        // A third process, after both have exited: the stack and its baselines outlived them.
        let mut cleaner = spawn("clean");
        let ids = read_ids(&mut cleaner);
        assert!(cleaner.wait().unwrap().success());
        assert_eq!(ids[..2], written[0][..]);
        assert_ne!(
            ids[2], ids[0],
            "clean() restores the web member into a new container"
        );

        let found = list_labelled(
            session.engine(),
            &[(LABEL_SESSION, &run), (LABEL_OWNER, "run")],
        )
        .await
        .unwrap();
        let count = |kind| found.iter().filter(|r| r.kind == kind).count();
        assert_eq!(count(ResourceKind::Container), 2, "{found:?}");
        assert_eq!(count(ResourceKind::Network), 1, "{found:?}");
        assert_eq!(
            count(ResourceKind::Image),
            2,
            "the members' baselines: {found:?}"
        );
        assert!(found.iter().all(|r| r.labels.contains_key(LABEL_FIXTURE)));
        // The run is over: remove what it shared, as the reaper does once the runner is gone.
        let mut report = GcReport::default();
        remove_all(session.engine(), found, &mut report).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        seaworthy::gc::remove_run_files(&run);
        let left = list_labelled(session.engine(), &[(LABEL_SESSION, &run)])
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
        let namespace = format!("sw-{}", &run[..8]);
        let state = seaworthy::gc::state_dir();
        let files: Vec<_> = [state.clone(), state.join("snapshots")]
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(&namespace) || n.contains(&run))
            .collect();
        assert!(files.is_empty(), "{files:?}");
    }
}
