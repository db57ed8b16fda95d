//! The plugin authoring guide (`plugins/README.md`): its example is the crate
//! `plugins/examples/kv`, quoted as it is, built for wasm32-wasip2 with the other plugins, and it
//! works as the guide says against a real Redis.

mod common;

use std::time::Duration;

use seaworthy::{Fixture, FixtureDefinition};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The example crate.
fn example() -> std::path::PathBuf {
    common::repo().join("plugins").join("examples").join("kv")
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The fenced code blocks of a Markdown text: (info string, body).
fn code_blocks(markdown: &str) -> Vec<(&str, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(&str, String)> = None;
    for line in markdown.lines() {
        match (open.take(), line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim(), String::new())),
            (Some(block), Some("")) => blocks.push(block),
            (Some((info, mut body)), _) => {
                body.push_str(line);
                body.push('\n');
                open = Some((info, body));
            }
            (None, None) => {}
        }
    }
    blocks
}

#[test]
fn the_guide_quotes_the_example_plugin_as_it_is() {
    let guide_path = common::repo().join("plugins").join("README.md");
    let guide = read(&guide_path);
    let blocks = code_blocks(&guide);
    for (info, file) in [("rust", "src/lib.rs"), ("toml", "seaworthy-plugin.toml")] {
        let source = read(&example().join(file));
        assert!(
            blocks.iter().any(|(i, body)| *i == info && *body == source),
            "{} does not quote plugins/examples/kv/{file} as it is: paste the file into the guide",
            guide_path.display()
        );
    }
    // The guide's Cargo.toml asks for the wit-bindgen the example is built with.
    let workspace = read(&common::repo().join("plugins").join("Cargo.toml"));
    let wit_bindgen = workspace
        .lines()
        .find(|l| l.starts_with("wit-bindgen = "))
        .expect("plugins/Cargo.toml names wit-bindgen");
    assert!(
        blocks
            .iter()
            .any(|(i, body)| *i == "toml" && body.lines().any(|l| l == wit_bindgen)),
        "the guide's Cargo.toml does not have `{wit_bindgen}`"
    );
}

/// The first line of Redis's answer to the inline `command`, over a fresh connection.
async fn redis(address: &str, command: &str) -> String {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(command.as_bytes()).await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        std::io::Result::Ok(String::from_utf8_lossy(&answer).trim_end().to_string())
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| panic!("Redis at {address} did not answer {command:?} within 5s"))
        .unwrap_or_else(|e| panic!("{command:?} to Redis at {address}: {e}"))
}

#[tokio::test]
async fn the_guide_example_loads_and_cleans_a_real_redis() {
    // common::host() sees target/seaworthy-plugins, where the build laid out `kv`, and grants
    // it TCP port 6379, as the guide's seaworthy.toml does.
    let built = common::plugins().join("kv");
    assert!(built.join("plugin.wasm").is_file(), "{}", built.display());
    let plugin = common::host()
        .load("kv")
        .expect("the guide's example loads");
    let metadata = plugin.metadata().expect("the example's metadata");
    assert_eq!(
        (metadata.id.as_str(), metadata.version.as_str()),
        ("kv", "0.1.0")
    );

    let kv = plugin
        .fixture([("image", "redis:7")])
        .expect("the example's definition")
        .start()
        .await
        .expect("the example starts Redis and finds it ready");
    let connection = kv.connection();
    assert_eq!(connection.scheme, "redis");
    assert_eq!(connection.port, kv.container().host_port(6379).unwrap());
    let address = format!("{}:{}", connection.host, connection.port);
    assert_eq!(redis(&address, "SET greeting hello\r\n").await, "+OK");
    assert_eq!(redis(&address, "EXISTS greeting\r\n").await, ":1");

    kv.clean().await.expect("the example's clean()");
    assert_eq!(
        redis(&address, "EXISTS greeting\r\n").await,
        ":0",
        "the key survived clean()"
    );
    assert_eq!(redis(&address, "SET after 1\r\n").await, "+OK");
    assert!(kv.check_ready().await.expect("the example's ready()"));
}
