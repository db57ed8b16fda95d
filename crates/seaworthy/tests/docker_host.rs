//! `DOCKER_HOST=tcp://…` works: this test binary forwards a loopback TCP port to the engine's unix
//! socket and points DOCKER_HOST at it before the first session is made. (Its own binary, so the
//! environment change touches no other test.)

mod common;

use std::time::Duration;

use seaworthy::{ContainerDefinition, Exec, Session, Wait};
use tokio::net::{TcpListener, UnixStream};

async fn forward_tcp_to_engine_socket() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener.into_std().unwrap()).unwrap();
            loop {
                let (mut tcp, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut unix = UnixStream::connect("/var/run/docker.sock").await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                });
            }
        });
    });
    port
}

#[tokio::test]
async fn docker_host_tcp_reaches_the_engine() {
    let port = forward_tcp_to_engine_socket().await;
    // SAFETY: set before any other thread of this test binary reads the environment.
    unsafe { std::env::set_var("DOCKER_HOST", format!("tcp://127.0.0.1:{port}")) };
    // The endpoint is this process's own forwarder and ends with it: the reaper, which starts
    // after the process exits, can never reach it, so it gives up after 5 s instead of the
    // default 10 minutes (the process removes what it made itself, at exit).
    // SAFETY: as above.
    unsafe { std::env::set_var("SEAWORTHY_REAPER_PATIENCE", "5") };
    let session = Session::global().await.unwrap();
    assert_eq!(
        session.engine().endpoint(),
        format!("tcp://127.0.0.1:{port}")
    );
    assert_eq!(session.engine().host(), "127.0.0.1");
    let version: Vec<u32> = session
        .engine()
        .api_version()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(version >= vec![1, 41], "negotiated {version:?}");
    let c = ContainerDefinition::new(common::BUSYBOX)
        .with_cmd([
            "sh",
            "-c",
            "mkdir /w && echo tcp > /w/i && echo ready && exec httpd -f -p 80 -h /w",
        ])
        .with_port(80)
        .with_wait(Wait::log("ready").and(Wait::http(80, "/i")))
        .with_startup_timeout(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    // Exec hijacks the connection: it must work through a plain TCP endpoint too.
    assert_eq!(
        c.exec(Exec::new(["echo", "over tcp"]))
            .await
            .unwrap()
            .stdout_text(),
        "over tcp\n"
    );
    assert_eq!(
        c.http(80)
            .unwrap()
            .get("/i")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "tcp\n"
    );
    c.remove().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_engine_is_a_clear_error() {
    let err = Session::connect_to("tcp://127.0.0.1:1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot reach the Docker engine at tcp://127.0.0.1:1"),
        "{err}"
    );
    let err = Session::connect_to("unix:///nonexistent.sock")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent.sock"), "{err}");
}
