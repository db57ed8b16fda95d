//! Wait conditions against the real engine.

mod common;

use std::time::{Duration, Instant};

use common::{sleeper, BUSYBOX};
use seaworthy::{ContainerDefinition, Healthcheck, LogPattern, LogStream, Wait};

fn script(s: &str) -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX).with_cmd(["sh", "-c", s])
}

#[tokio::test]
async fn log_lines_in_order_with_counts() {
    // The engine orders lines of stdout and stderr by the time it read them: lines written to the
    // two streams at the same moment may come in either order, so the stderr line comes a little later.
    let c = script("echo a; echo b; echo a; sleep 0.3; echo c >&2; exec sleep 3600")
        .with_wait(Wait::logs_in_order(vec![
            LogPattern::new("^a$").unwrap(),
            LogPattern::new("^b$").unwrap(),
            LogPattern::new("^a$").unwrap(),
            LogPattern::new("^c$").unwrap().on(LogStream::Stderr),
        ]))
        .start()
        .await;
    assert!(c.is_ok(), "{:?}", c.err());
}

#[tokio::test]
async fn ordered_patterns_fail_when_the_order_is_wrong() {
    let err = script("echo second; echo first; exec sleep 3600")
        .with_wait(Wait::logs_in_order(vec![
            LogPattern::new("^first$").unwrap(),
            LogPattern::new("^second$").unwrap(),
        ]))
        .with_startup_timeout(Duration::from_millis(700))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("log lines in order [/^first$/, /^second$/]"),
        "{err}"
    );
}

#[tokio::test]
async fn log_lines_in_any_order_and_times() {
    script("echo x; echo y; echo x; exec sleep 3600")
        .with_wait(Wait::logs_any_order(vec![
            LogPattern::new("^y$").unwrap(),
            LogPattern::new("^x$").unwrap().times(2),
        ]))
        .start()
        .await
        .unwrap();
    script("echo ready; echo ready; exec sleep 3600")
        .with_wait(Wait::log_times("ready", 2))
        .start()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_timed_out_wait_names_the_condition_and_carries_the_log_tail() {
    let started = Instant::now();
    let err =
        script("for i in 1 2 3; do echo line-$i; done; sleep 0.3; echo oops >&2; exec sleep 3600")
            .with_name("slow")
            .with_wait(Wait::log("^never$"))
            // The timeout also covers the create and start, which take most of a second when
            // the test binary's other tests start containers at the same time: leave the wait
            // long enough to see `oops`, printed 0.3 s after the start.
            .with_startup_timeout(Duration::from_secs(3))
            .start()
            .await
            .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(8));
    let text = err.to_string();
    assert!(
        text.contains("log lines in order [/^never$/] did not hold within"),
        "{text}"
    );
    assert!(text.contains("-slow"), "{text}");
    for needle in ["line-1", "line-3", "oops"] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    match err {
        seaworthy::Error::Wait { log_tail, .. } => {
            assert_eq!(log_tail, ["line-1", "line-2", "line-3", "oops"])
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_container_that_exits_fails_the_wait_at_once() {
    let started = Instant::now();
    let err = script("echo dying; exit 3")
        .with_wait(Wait::log("^ready$"))
        .with_startup_timeout(Duration::from_secs(30))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("exited with code 3") || err.contains("log ended"),
        "{err}"
    );
    assert!(err.contains("dying"), "{err}");
}

#[tokio::test]
async fn exit_code_waits() {
    script("exit 0")
        .with_wait(Wait::exit_code(0))
        .start()
        .await
        .unwrap();
    script("exit 4")
        .with_wait(Wait::exited())
        .start()
        .await
        .unwrap();
    let err = script("exit 2")
        .with_wait(Wait::exit_code(0))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("exit with code 0 did not hold because the container exited with code 2"),
        "{err}"
    );
}

#[tokio::test]
async fn http_and_tcp_waits() {
    let c = script("sleep 1; mkdir /www; echo ok > /www/health; exec httpd -f -p 80 -h /www")
        .with_port(80)
        .with_wait(Wait::tcp(80).and(Wait::http_status(80, "/health", 200)))
        .start()
        .await
        .unwrap();
    let status = c
        .http(80)
        .unwrap()
        .get("/health")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn tcp_wait_is_not_fooled_by_the_engine_proxy() {
    // Nothing listens on 80 inside: the wait must time out, not succeed on the proxy's accept.
    let c = sleeper().with_port(80).start().await.unwrap();
    let err = c
        .wait_for(&Wait::tcp(80), Duration::from_secs(2))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("TCP port 80 accepting connections"), "{err}");
}

/// A server on port 80 that listens only after two seconds and then greets every connection with
/// `hello` (the engine publishes the port, and its proxy accepts there, from the start).
fn late_greeter() -> ContainerDefinition {
    script("sleep 2; exec nc -ll -p 80 -e echo hello")
        .with_port(80)
        .with_wait(Wait::tcp(80))
        .with_startup_timeout(Duration::from_secs(30))
}

/// What the server at `address` sends on a new connection before closing it (nothing when the
/// engine's port proxy closes it because nothing listens inside).
async fn greeting(address: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("connect to {address}: {e}"));
    let mut said = Vec::new();
    // A reset counts as having said nothing.
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut said)).await;
    String::from_utf8_lossy(&said).into_owned()
}

/// Starts late greeters in `session`, four at once (on a loaded machine the engine's port
/// proxy may be slow to close a connection to nothing: more chances to be fooled), and connects
/// to each the moment its wait holds: each greets.
async fn late_greeters_greet_once_ready(session: &seaworthy::Session) {
    let started = Instant::now();
    let greetings = futures_util::future::join_all((0..4).map(|_| async {
        let c = late_greeter().start_in(session).await.unwrap();
        greeting(&c.address(80).unwrap()).await
    }))
    .await;
    for said in greetings {
        assert_eq!(said, "hello\n", "the wait held before the server listened");
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn a_tcp_wait_holds_only_once_the_server_listens() {
    late_greeters_greet_once_ready(&seaworthy::Session::global().await.unwrap()).await;
}

/// The shared engine reached over SSH (`bash .ci/engines start` sets it up, as for the engines
/// tests): not an engine of this process's own socket, so the TCP wait probes the published port,
/// through the engine's port proxy.
async fn ssh_session() -> seaworthy::Session {
    let host =
        std::env::var("SEAWORTHY_TEST_SSH_HOST").unwrap_or_else(|_| "ssh://root@127.0.0.2".into());
    let key = std::path::PathBuf::from(
        std::env::var("SEAWORTHY_TEST_SSH_KEY")
            .unwrap_or_else(|_| "/var/lib/seaworthy-ci/ssh/id_ed25519".into()),
    );
    if !key.is_file() {
        seaworthy_testkit::endpoint_missing(
            &format!("the SSH endpoint {host}"),
            format!("no key at {}", key.display()),
        );
    }
    let engine = seaworthy::runtime::run(async move {
        seaworthy::Engine::connect_with_ssh_key(&host, &key).await
    })
    .await
    .unwrap();
    seaworthy::Session::with_engine(engine)
}

#[tokio::test]
async fn a_tcp_wait_through_the_port_proxy_holds_only_once_the_server_listens() {
    let session = ssh_session().await;
    // A server that speaks first, one that waits for the client (HTTP), and nothing listening.
    let silent = async {
        let c = script("sleep 2; mkdir /www; echo ok > /www/health; exec httpd -f -p 80 -h /www")
            .with_port(80)
            .with_wait(Wait::tcp(80))
            .start_in(&session)
            .await
            .unwrap();
        let url = format!("http://{}/health", c.address(80).unwrap());
        let status = c.http(80).unwrap().get("/health").send().await;
        status
            .map(|r| r.status())
            .map_err(|e| format!("GET {url}: {e}"))
    };
    let nothing = async {
        let c = sleeper().with_port(80).start_in(&session).await.unwrap();
        c.wait_for(&Wait::tcp(80), Duration::from_secs(2))
            .await
            .unwrap_err()
            .to_string()
    };
    let ((), status, err) = tokio::join!(late_greeters_greet_once_ready(&session), silent, nothing);
    assert_eq!(status.unwrap(), 200);
    assert!(err.contains("TCP port 80 accepting connections"), "{err}");
    let errors = session.teardown().await;
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test]
async fn http_wait_on_an_unpublished_port_is_refused_clearly() {
    let err = sleeper()
        .with_wait(Wait::http(80, "/"))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("port 80 is not published"), "{err}");
}

#[tokio::test]
async fn healthy_running_for_and_any() {
    let started = Instant::now();
    script("exec sleep 3600")
        .with_wait(Wait::running_for(Duration::from_millis(700)))
        .start()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(700));
    let err = sleeper()
        .with_wait(Wait::healthy())
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no healthcheck"), "{err}");
    script("echo up; exec sleep 3600")
        .with_healthcheck(Healthcheck::shell("false"))
        .with_wait(Wait::any([Wait::healthy(), Wait::log("^up$")]))
        .start()
        .await
        .unwrap();
    let err = script("sleep 1; exit 1")
        .with_wait(Wait::running_for(Duration::from_secs(10)))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exited with code 1"), "{err}");
}

#[tokio::test]
async fn custom_checks_and_invalid_patterns() {
    let c = sleeper().start().await.unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    c.wait_for(
        &Wait::custom("third call succeeds", move |_| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok(n >= 2) }
        }),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    let err = c
        .wait_for(&Wait::log("(unclosed"), Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("(unclosed"), "{err}");
}

#[tokio::test]
async fn a_custom_check_gets_the_container_to_exec_in_and_read_logs() {
    // The file and the log line appear a moment after the start: the check must look inside
    // the container, again and again, until they do.
    let app = script("sleep 1; echo port=8080 > /tmp/app.conf; echo configured; exec sleep 600")
        .with_wait(Wait::custom_container(
            "the app wrote its config and said so",
            |c| async move {
                let conf = c
                    .exec(seaworthy::Exec::new(["cat", "/tmp/app.conf"]))
                    .await?;
                let said = c.logs().await?.lines.iter().any(|l| l.text == "configured");
                Ok(conf.exit_code == 0 && conf.stdout_text().contains("port=8080") && said)
            },
        ))
        .start()
        .await
        .unwrap();
    // The handles lent to the check owned nothing: the container is still there and running.
    assert_eq!(
        app.read_file_text("/tmp/app.conf").await.unwrap(),
        "port=8080\n"
    );
    assert!(app.is_running().await.unwrap());

    // An error from the check fails the wait at once, naming the check and the error.
    let started = Instant::now();
    let err = app
        .wait_for(
            &Wait::custom_container("a file that is not there", |c| async move {
                c.read_file("/nowhere").await.map(|_| true)
            }),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("a file that is not there"), "{err}");
    assert!(err.contains("the check failed"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_bad_log_regex_is_refused_before_any_container_exists() {
    let session = seaworthy::Session::global().await.unwrap();
    let since = std::time::SystemTime::now() - Duration::from_secs(1);
    let label = format!("io.seaworthy.test.bad-regex={}", std::process::id());
    let (key, value) = label.split_once('=').unwrap();
    let bad_waits = [
        (Wait::log("(unclosed"), "(unclosed"),
        (Wait::log_times("[z-a]", 2), "[z-a]"),
        (
            Wait::all([
                Wait::running_for(Duration::ZERO),
                Wait::any([Wait::healthy(), Wait::log("a{2,1}")]),
            ]),
            "a{2,1}",
        ),
    ];
    for (wait, regex) in bad_waits {
        let definition = script("echo ready; exec sleep 3600")
            .with_name("bad-regex")
            .with_label(key, value)
            .with_wait(wait);
        let err = definition.clone().validate().unwrap_err();
        assert!(
            matches!(&err, seaworthy::Error::Invalid { kind: "log pattern", input, .. } if input == regex),
            "{err}"
        );
        for err in [
            definition.clone().start().await.unwrap_err(),
            definition.create().await.unwrap_err(),
        ] {
            assert!(
                matches!(&err, seaworthy::Error::Invalid { kind: "log pattern", input, .. } if input == regex),
                "a bad regex must be refused as invalid, naming it, not fail a wait: {err}"
            );
        }
    }
    // Nothing was created, not even a container removed again after a failed wait.
    let created = seaworthy_testkit::created_containers(&session, &label, since)
        .await
        .unwrap();
    assert_eq!(created, Vec::<String>::new());
    assert_eq!(
        seaworthy_testkit::owned_containers(&session, &[&label])
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    // The same definition with a valid regex does create its container (the check can fail).
    let c = script("echo ready; exec sleep 3600")
        .with_label(key, value)
        .with_wait(Wait::log("^ready$"))
        .start()
        .await
        .unwrap();
    let created = seaworthy_testkit::created_containers(&session, &label, since)
        .await
        .unwrap();
    assert_eq!(created, vec![c.name().to_string()]);
}

/// Prints `ready` the first time it runs and `again` on every later run (a file in the
/// container remembers), then runs `then`.
fn remembers_its_runs(then: &str) -> ContainerDefinition {
    script(&format!(
        "if [ -e /ran ]; then echo again; else touch /ran; echo ready; fi; {then}"
    ))
}

#[tokio::test]
async fn a_restarted_container_is_waited_on_for_its_current_run_only() {
    let c = remembers_its_runs("exec sleep 3600")
        .with_wait(Wait::log("^ready$"))
        .start()
        .await
        .unwrap();
    // `sleep` as PID 1 ignores SIGTERM: stop kills it at once.
    c.stop(Duration::ZERO).await.unwrap();
    c.start().await.unwrap();
    let started = Instant::now();
    let err = c
        .wait_for(&Wait::log("^ready$"), Duration::from_millis(800))
        .await
        .unwrap_err();
    assert!(
        matches!(err, seaworthy::Error::Wait { .. }),
        "the first run's line passed the wait: {err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    c.wait_for(&Wait::log("^again$"), Duration::from_secs(10))
        .await
        .unwrap();
    // Counts, too, are of the current run only: one `again` per run.
    c.stop(Duration::ZERO).await.unwrap();
    c.start().await.unwrap();
    let err = c
        .wait_for(&Wait::log_times("^again$", 2), Duration::from_millis(800))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("/^again$/ x2"),
        "two runs' lines were counted as one run's: {err}"
    );
    c.wait_for(&Wait::log("^again$"), Duration::from_secs(10))
        .await
        .unwrap();
    // The whole log still holds every run.
    let logs = c.logs().await.unwrap();
    assert_eq!(logs.stdout(), "ready\nagain\nagain");
}

#[tokio::test]
async fn a_restarted_container_that_exited_is_judged_on_its_last_run() {
    let c = remembers_its_runs("exit 0")
        .with_wait(Wait::exit_code(0))
        .start()
        .await
        .unwrap();
    c.start().await.unwrap();
    c.wait_for(&Wait::exit_code(0), Duration::from_secs(10))
        .await
        .unwrap();
    let err = c
        .wait_for(&Wait::log("^ready$"), Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/^ready$/"), "{err}");
    c.wait_for(&Wait::log("^again$"), Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_log_wait_is_met_by_a_container_that_exited_at_once() {
    // Its run may end before the engine records its start: its line still counts.
    for _ in 0..3 {
        let c = script("echo done")
            .with_wait(Wait::log("^done$"))
            .start()
            .await
            .unwrap();
        c.wait_for(&Wait::log("^done$"), Duration::from_secs(5))
            .await
            .unwrap();
        c.remove().await.unwrap();
    }
}

#[tokio::test]
async fn a_failed_combined_wait_names_the_parts_that_did_not_hold() {
    let err = script("echo up; exec sleep 3600")
        .with_wait(Wait::all([
            Wait::log("^up$"),
            Wait::log("^never$"),
            Wait::running_for(Duration::from_secs(60)),
        ]))
        // The deadline counts from the create: under load a 1 s one could pass before the wait
        // has read the log once, and then no part has held yet.
        .with_startup_timeout(Duration::from_secs(5))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not held: log lines in order [/^never$/], running for 60s; held: log lines in order [/^up$/]"),
        "{err}"
    );
    // Any: none held; each says why when it knows.
    let err = sleeper()
        .with_wait(Wait::any([Wait::healthy(), Wait::log("^never$")]))
        .with_startup_timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not held: healthcheck healthy (because the container has no healthcheck"),
        "{err}"
    );
    assert!(
        err.contains("log lines in order [/^never$/]; held: none"),
        "{err}"
    );
}
