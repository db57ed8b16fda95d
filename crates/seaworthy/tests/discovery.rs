//! Engine discovery: the documented order, Docker contexts, rootless and desktop sockets, and the
//! error that lists every place looked at. Each test builds its own home, runtime directory,
//! Docker config and system root in a temporary directory, with symlinks to the real engine's
//! socket where an engine should answer; the process environment is not touched.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use seaworthy::engine::{Discovery, Source};

#[path = "support/context_store.rs"]
mod context_store;
use seaworthy::Error;

const REAL_SOCKET: &str = "/var/run/docker.sock";

/// A temporary directory removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Temp {
        let dir = std::env::temp_dir().join(format!(
            "sw-discovery-{name}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Temp(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// A symlink at `rel` to the real engine's socket.
    fn engine_socket(&self, rel: &str) -> PathBuf {
        let at = self.path(rel);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(REAL_SOCKET, &at).unwrap();
        at
    }

    /// A socket file at `rel` that nobody listens on any more.
    fn dead_socket(&self, rel: &str) -> PathBuf {
        let at = self.path(rel);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        drop(UnixListener::bind(&at).unwrap());
        at
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let at = self.path(rel);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(&at, text).unwrap();
        at
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// A search that sees only `t`: its home, its runtime dir, its system root.
fn isolated(t: &Temp) -> Discovery {
    std::fs::create_dir_all(t.path("home")).unwrap();
    std::fs::create_dir_all(t.path("run/user/1000")).unwrap();
    Discovery::new()
        .system_root(t.path("root"))
        .var("HOME", Some(t.path("home").to_str().unwrap()))
        .unwrap()
        .var(
            "XDG_RUNTIME_DIR",
            Some(t.path("run/user/1000").to_str().unwrap()),
        )
        .unwrap()
}

/// Stores context `name` with endpoint `host` in the Docker config dir `config`.
fn store_context(config: &Path, name: &str, host: &str) {
    context_store::store_context(config, name, host, None);
}

/// The source of a known socket.
fn known(what: &'static str) -> Source {
    Source::KnownSocket { what }
}

/// How `discovery` found its engine.
async fn source_of(discovery: Discovery) -> Source {
    discovery.connect().await.unwrap().source().clone()
}

fn not_found(result: seaworthy::Result<seaworthy::Engine>) -> (String, Vec<String>) {
    match result {
        Err(e @ Error::EngineNotFound { .. }) => {
            let text = e.to_string();
            let Error::EngineNotFound { tried, .. } = e else {
                unreachable!()
            };
            (text, tried.iter().map(|t| t.place.clone()).collect())
        }
        Err(other) => panic!("expected EngineNotFound, got {other}"),
        Ok(engine) => panic!("expected no engine, found {engine:?}"),
    }
}

#[tokio::test]
async fn nothing_answers_and_the_error_lists_every_place_in_order() {
    let t = Temp::new("none");
    t.dead_socket("root/var/run/docker.sock");
    let (text, places) = not_found(isolated(&t).connect().await);
    assert_eq!(
        places,
        [
            "DOCKER_HOST",
            "Docker context",
            "seaworthy.toml [engine]",
            "the standard socket",
            "rootless Docker",
            "Docker Desktop",
            "Docker Desktop",
            "Colima",
            "Rancher Desktop",
            "OrbStack",
            "Podman (rootful)",
            "Podman (rootless)",
        ]
    );
    assert!(text.starts_with("no Docker engine answered"), "{text}");
    assert!(text.contains("1. DOCKER_HOST: not set"), "{text}");
    // The dead standard socket was pinged: the error says why it failed, not just "missing".
    let standard = t.path("root/var/run/docker.sock");
    let line = text
        .lines()
        .find(|l| l.contains("the standard socket"))
        .unwrap();
    assert!(
        line.contains(&format!("unix://{}", standard.display())),
        "{line}"
    );
    assert!(!line.contains("no such socket"), "{line}");
    let rootless = text
        .lines()
        .find(|l| l.contains("rootless Docker"))
        .unwrap();
    assert!(
        rootless.contains(&format!(
            "(unix://{}): no such socket",
            t.path("run/user/1000/docker.sock").display()
        )),
        "{rootless}"
    );
    assert!(text.contains(".docker/run/docker.sock"), "{text}");
    assert!(text.contains("root/run/podman/podman.sock"), "{text}");
    assert!(text.contains("run/user/1000/podman/podman.sock"), "{text}");
    assert!(text.contains("seaworthy doctor"), "{text}");
    eprintln!("{text}");
}

#[tokio::test]
async fn the_first_known_socket_that_answers_wins() {
    let t = Temp::new("order");
    // The standard socket is dead, rootless Docker's and Podman's answer: rootless comes first.
    t.dead_socket("root/var/run/docker.sock");
    let rootless = t.engine_socket("run/user/1000/docker.sock");
    t.engine_socket("root/run/podman/podman.sock");
    let engine = isolated(&t).connect().await.unwrap();
    assert_eq!(engine.source(), &known("rootless Docker"));
    assert_eq!(engine.endpoint(), format!("unix://{}", rootless.display()));
    assert_eq!(engine.host(), "127.0.0.1");
    engine.docker().ping().await.unwrap();

    // With the standard socket answering, it comes before all the others.
    std::fs::remove_file(t.path("root/var/run/docker.sock")).unwrap();
    t.engine_socket("root/var/run/docker.sock");
    assert_eq!(source_of(isolated(&t)).await, known("the standard socket"));
}

#[tokio::test]
async fn desktop_and_podman_sockets_are_found() {
    let t = Temp::new("desktop");
    t.engine_socket("home/.docker/run/docker.sock");
    assert_eq!(source_of(isolated(&t)).await, known("Docker Desktop"));

    let t = Temp::new("podman");
    t.engine_socket("run/user/1000/podman/podman.sock");
    assert_eq!(source_of(isolated(&t)).await, known("Podman (rootless)"));
    // Without XDG_RUNTIME_DIR, the runtime dir is /run/user/UID under the system root.
    let uid = unsafe_free_uid();
    let t = Temp::new("xdg");
    t.engine_socket(&format!("root/run/user/{uid}/docker.sock"));
    assert_eq!(
        source_of(isolated(&t).var("XDG_RUNTIME_DIR", None).unwrap()).await,
        known("rootless Docker")
    );
}

/// This process's uid, from `id -u`.
fn unsafe_free_uid() -> String {
    let out = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn the_current_context_of_the_docker_config_is_used() {
    let t = Temp::new("context");
    // A standard socket answers too: the context comes first.
    t.engine_socket("root/var/run/docker.sock");
    let ctx_socket = t.engine_socket("ctx/docker.sock");
    let config = t.path("home/.docker");
    store_context(
        &config,
        "colima",
        &format!("unix://{}", ctx_socket.display()),
    );
    t.write(
        "home/.docker/config.json",
        r#"{"currentContext": "colima"}"#,
    );
    let engine = isolated(&t).connect().await.unwrap();
    assert_eq!(
        engine.endpoint(),
        format!("unix://{}", ctx_socket.display())
    );
    match engine.source() {
        Source::Context { name, selected_by } => {
            assert_eq!(name, "colima");
            assert!(selected_by.contains("config.json"), "{selected_by}");
        }
        other => panic!("found through {other}"),
    }

    // DOCKER_CONTEXT wins over currentContext, and DOCKER_CONFIG moves the config directory.
    let other_config = t.path("elsewhere");
    let other_socket = t.engine_socket("ctx2/docker.sock");
    store_context(
        &other_config,
        "rd",
        &format!("unix://{}", other_socket.display()),
    );
    assert_eq!(
        source_of(
            isolated(&t)
                .var("DOCKER_CONFIG", Some(other_config.to_str().unwrap()))
                .unwrap()
                .var("DOCKER_CONTEXT", Some("rd"))
                .unwrap()
        )
        .await,
        Source::Context {
            name: "rd".into(),
            selected_by: "DOCKER_CONTEXT".into()
        }
    );

    // DOCKER_HOST wins over both.
    assert_eq!(
        source_of(
            isolated(&t)
                .var("DOCKER_CONTEXT", Some("rd"))
                .unwrap()
                .var("DOCKER_HOST", Some(&format!("unix://{REAL_SOCKET}")))
                .unwrap()
        )
        .await,
        Source::DockerHost
    );

    // The context "default" names no engine: the search goes on to the known sockets.
    assert_eq!(
        source_of(isolated(&t).var("DOCKER_CONTEXT", Some("default")).unwrap()).await,
        known("the standard socket")
    );
}

#[tokio::test]
async fn a_configured_engine_that_does_not_answer_is_not_replaced_by_another() {
    let t = Temp::new("configured");
    t.engine_socket("root/var/run/docker.sock");
    let dead = t.dead_socket("dead.sock");
    let (text, places) = not_found(
        isolated(&t)
            .var("DOCKER_HOST", Some(&format!("unix://{}", dead.display())))
            .unwrap()
            .connect()
            .await,
    );
    assert_eq!(places, ["DOCKER_HOST"]);
    assert!(
        text.starts_with("the Docker engine named by DOCKER_HOST did not answer"),
        "{text}"
    );
    assert!(text.contains(&dead.display().to_string()), "{text}");

    // A context that does not exist is named, with the place where it was looked for.
    t.write("home/.docker/config.json", r#"{"currentContext": "gone"}"#);
    let (text, places) = not_found(isolated(&t).connect().await);
    assert_eq!(places[0], "DOCKER_HOST");
    assert!(
        places[1].starts_with("Docker context \"gone\""),
        "{places:?}"
    );
    assert!(text.contains("no such context"), "{text}");
    assert!(text.contains("contexts/meta/"), "{text}");

    // A config.json that is not JSON is named.
    t.write("home/.docker/config.json", "{not json");
    let (text, _) = not_found(
        isolated(&t)
            .system_root(t.path("nothing-here"))
            .connect()
            .await,
    );
    assert!(text.contains("config.json"), "{text}");
    assert!(text.contains("invalid Docker config file"), "{text}");
}

#[tokio::test]
async fn seaworthy_toml_names_the_engine() {
    let t = Temp::new("toml");
    let socket = t.engine_socket("sock/engine.sock");
    t.write(
        "project/seaworthy.toml",
        &format!("[engine]\nhost = \"unix://{}\"\n", socket.display()),
    );
    std::fs::create_dir_all(t.path("project/crates/app")).unwrap();
    let engine = isolated(&t)
        .config_search_from(Some(t.path("project/crates/app")))
        .connect()
        .await
        .unwrap();
    assert_eq!(
        engine.source(),
        &Source::ConfigFile {
            path: t.path("project/seaworthy.toml")
        }
    );

    // A misspelt key is refused with the file and the key named.
    let bad = t.write("bad.toml", "[engine]\nhots = \"unix:///x\"\n");
    let (text, _) = not_found(
        isolated(&t)
            .var("SEAWORTHY_CONFIG", Some(bad.to_str().unwrap()))
            .unwrap()
            .connect()
            .await,
    );
    assert!(text.contains("engine.hots is not a setting"), "{text}");
    assert!(text.contains("bad.toml"), "{text}");

    // TLS material that is missing is named.
    let tls = t.write(
        "tls.toml",
        "[engine]\nhost = \"tcp://127.0.0.1:1\"\ncert_path = \"certs\"\n",
    );
    let (text, _) = not_found(
        isolated(&t)
            .var("SEAWORTHY_CONFIG", Some(tls.to_str().unwrap()))
            .unwrap()
            .connect()
            .await,
    );
    assert!(
        text.contains(&format!("{} is missing", t.path("certs/ca.pem").display())),
        "{text}"
    );
}

#[test]
fn only_the_variables_discovery_reads_can_be_set() {
    let err = Discovery::new().var("DOCKER_HOSTS", Some("x")).unwrap_err();
    assert!(err.to_string().contains("DOCKER_HOSTS"), "{err}");
}
