//! A native fixture built on the kit: memcached, cleaned and isolated through its own text
//! protocol. The whole fixture is this file (its `main` shows it in use; the core's
//! `tests/kit_memcached.rs` runs it against the real server).
//!
//! * The definition ([`Memcached`]) is a [`ContainerFixtureDefinition`]: the container to start
//!   and how to take it over. Its seed items are the baseline.
//! * The baseline lives in the container ([`Baseline`]): the first process that attaches seeds
//!   the items and records them, under the run's lock; every later one loads the record.
//! * `clean()` is `flush_all` and the seed items set again.
//! * Isolation: each test gets a key prefix of its own from a [`NamespacePool`]; when its guard
//!   drops, the keys under the prefix are deleted (found with `lru_crawler metadump all`) and the
//!   prefix goes back to the pool.
//!
//! Run it with `cargo run -p seaworthy --example memcached`.

use std::sync::Arc;

use seaworthy::kit::{key_hash, Baseline, Lease, NamespacePool};
use seaworthy::{
    ConnectionInfo, Container, ContainerDefinition, ContainerFixtureDefinition, Fixture, Isolation,
    Wait,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const PORT: u16 = 11211;
/// Where the baseline is kept in the container.
pub const BASELINE_PATH: &str = "/tmp/.seaworthy-memcached.json";
/// How long one command may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A memcached fixture: `seaworthy-test/memcached` with seed items as its baseline.
#[derive(Clone, Debug)]
pub struct Memcached {
    container: ContainerDefinition,
    seed: Vec<(String, String)>,
}

impl Default for Memcached {
    fn default() -> Self {
        Memcached::new()
    }
}

impl Memcached {
    /// The default definition: no seed items.
    pub fn new() -> Self {
        Memcached {
            container: ContainerDefinition::new("seaworthy-test/memcached"),
            seed: Vec::new(),
        }
    }

    /// Adds an item every test starts with.
    pub fn with_item(mut self, key: &str, value: &str) -> Self {
        self.seed.push((key.into(), value.into()));
        self
    }
}

impl ContainerFixtureDefinition for Memcached {
    type Fixture = MemcachedFixture;

    fn key(&self) -> String {
        format!(
            "memcached/v1|{:?}|{}",
            self.seed,
            key_hash(&self.container.key())
        )
    }

    fn container_definition(&self) -> ContainerDefinition {
        let bad = self.seed.iter().find(|(k, _)| !valid_key(k));
        let refusal = match bad {
            Some((k, _)) => Err(seaworthy::Error::invalid(
                "memcached key",
                k,
                "must have 1 to 200 bytes, no spaces or control characters",
            )),
            None => Ok(()),
        };
        self.container
            .clone()
            .with_port(PORT)
            .with_wait(Wait::tcp(PORT))
            .refused_by(refusal)
    }

    async fn attach(&self, container: Container) -> seaworthy::Result<MemcachedFixture> {
        let address = (container.host().to_string(), container.host_port(PORT)?);
        let client = Client::connect(&address, container.name()).await?;
        let seed = self.seed.clone();
        let baseline: Vec<(String, String)> = Baseline::new(BASELINE_PATH)
            .load_or_record(&container, || async {
                for (key, value) in &seed {
                    client.set(key, value).await?;
                }
                Ok::<_, seaworthy::Error>(seed)
            })
            .await?;
        let reset_address = address.clone();
        let name = container.name().to_string();
        let prefixes = NamespacePool::new("memcached key prefix", move |prefix: String| {
            let (address, name) = (reset_address.clone(), name.clone());
            async move {
                let client = Client::connect(&address, &name).await?;
                for key in client.keys().await? {
                    if key.starts_with(&prefix) {
                        client.delete(&key).await?;
                    }
                }
                Ok(prefix)
            }
        })
        .with_make(|n| async move { Ok(format!("t{n}:")) });
        Ok(MemcachedFixture {
            container,
            client: Arc::new(client),
            baseline,
            prefixes,
            address,
        })
    }
}

/// A started memcached, at its baseline.
pub struct MemcachedFixture {
    container: Container,
    client: Arc<Client>,
    baseline: Vec<(String, String)>,
    prefixes: NamespacePool<String>,
    address: (String, u16),
}

impl MemcachedFixture {
    /// A new connection to the server.
    pub async fn client(&self) -> seaworthy::Result<Client> {
        Client::connect(&self.address, self.container.name()).await
    }
}

impl Fixture for MemcachedFixture {
    type Error = seaworthy::Error;

    fn kind(&self) -> &str {
        "memcached"
    }

    fn container(&self) -> &Container {
        &self.container
    }

    /// Every item goes (`flush_all`, namespaces too), then the seed items come back.
    async fn clean(&self) -> seaworthy::Result<()> {
        self.client.command("flush_all", "OK").await?;
        for (key, value) in &self.baseline {
            self.client.set(key, value).await?;
        }
        Ok(())
    }

    fn connection(&self) -> ConnectionInfo {
        ConnectionInfo::new("memcache", &self.address.0, self.address.1)
    }
}

impl Isolation for MemcachedFixture {
    type Isolated = Lease<String>;

    /// A key prefix of the test's own (`t0:`, `t1:`...), its keys deleted when the lease drops.
    async fn isolate(&self) -> seaworthy::Result<Lease<String>> {
        self.prefixes.checkout().await
    }
}

/// A connection speaking memcached's text protocol, one command at a time.
pub struct Client {
    stream: tokio::sync::Mutex<BufReader<TcpStream>>,
    container: String,
}

impl Client {
    async fn connect(address: &(String, u16), container: &str) -> seaworthy::Result<Client> {
        let stream = TcpStream::connect((address.0.as_str(), address.1))
            .await
            .map_err(|e| failed(container, "connect", e))?;
        Ok(Client {
            stream: tokio::sync::Mutex::new(BufReader::new(stream)),
            container: container.into(),
        })
    }

    /// Sends `line`; the answer's lines up to the one equal to `last` (within 10 s).
    async fn command(&self, line: &str, last: &str) -> seaworthy::Result<Vec<String>> {
        let mut stream = self.stream.lock().await;
        let answer = tokio::time::timeout(TIMEOUT, async {
            stream
                .get_mut()
                .write_all(format!("{line}\r\n").as_bytes())
                .await?;
            let mut lines = Vec::new();
            loop {
                let mut answer = String::new();
                if stream.read_line(&mut answer).await? == 0 {
                    return Err(std::io::Error::other("the server closed the connection"));
                }
                let answer = answer.trim_end().to_string();
                if answer == last {
                    return Ok(lines);
                }
                if is_refusal(&answer) {
                    return Err(std::io::Error::other(answer));
                }
                lines.push(answer);
            }
        });
        let command = line.lines().next().unwrap_or_default();
        answer
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
            .map_err(|e| failed(&self.container, command, e))
    }

    /// `set key value`.
    pub async fn set(&self, key: &str, value: &str) -> seaworthy::Result<()> {
        let line = format!("set {key} 0 0 {}\r\n{value}", value.len());
        self.command(&line, "STORED").await.map(|_| ())
    }

    /// The value of `key`, if it is set.
    pub async fn get(&self, key: &str) -> seaworthy::Result<Option<String>> {
        let mut stream = self.stream.lock().await;
        let answer = tokio::time::timeout(TIMEOUT, async {
            stream
                .get_mut()
                .write_all(format!("get {key}\r\n").as_bytes())
                .await?;
            let mut header = String::new();
            stream.read_line(&mut header).await?;
            let Some(size) = header
                .strip_prefix("VALUE ")
                .and_then(|h| h.split_whitespace().nth(2))
            else {
                return Ok(None); // END
            };
            let size: usize = size.parse().map_err(std::io::Error::other)?;
            let mut data = vec![0; size + 2];
            stream.read_exact(&mut data).await?;
            let mut end = String::new();
            stream.read_line(&mut end).await?;
            data.truncate(size);
            Ok(Some(String::from_utf8_lossy(&data).into_owned()))
        });
        let answer = answer
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        answer.map_err(|e: std::io::Error| failed(&self.container, &format!("get {key}"), e))
    }

    /// `delete key` (a key already gone is fine).
    pub async fn delete(&self, key: &str) -> seaworthy::Result<()> {
        match self.command(&format!("delete {key}"), "DELETED").await {
            Err(seaworthy::Error::Fixture { source, .. }) if source.to_string() == "NOT_FOUND" => {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Every key the server holds (`lru_crawler metadump all`, keys URL-decoded).
    pub async fn keys(&self) -> seaworthy::Result<Vec<String>> {
        let lines = self.command("lru_crawler metadump all", "END").await?;
        Ok(lines
            .iter()
            .filter_map(|l| l.strip_prefix("key="))
            .map(|k| url_decode(k.split(' ').next().unwrap_or_default()))
            .collect())
    }
}

fn failed(container: &str, action: &str, e: std::io::Error) -> seaworthy::Error {
    seaworthy::Error::fixture("memcached", container, action, e)
}

/// An answer that ends a command in failure.
fn is_refusal(answer: &str) -> bool {
    ["ERROR", "NOT_STORED", "EXISTS", "NOT_FOUND"].contains(&answer)
        || answer.starts_with("CLIENT_ERROR")
        || answer.starts_with("SERVER_ERROR")
}

fn valid_key(key: &str) -> bool {
    (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

fn url_decode(s: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let pair: Vec<u8> = bytes.by_ref().take(2).collect();
            match std::str::from_utf8(&pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
            {
                Some(decoded) => out.push(decoded),
                None => out.extend_from_slice(&pair),
            }
        } else {
            out.push(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use seaworthy::FixtureDefinition;
    let cache = Memcached::new()
        .with_item("greeting", "hello")
        .start()
        .await?;
    let client = cache.client().await?;
    client.set("scratch", "x").await?;
    cache.clean().await?; // scratch is gone, greeting is back
    assert_eq!(client.get("scratch").await?, None);
    assert_eq!(client.get("greeting").await?.as_deref(), Some("hello"));
    let prefix = cache.isolate().await?; // "t0:": keys under it are deleted when it drops
    client.set(&format!("{}visits", *prefix), "1").await?;
    println!(
        "memcached at {} with namespace {}",
        cache.connection(),
        *prefix
    );
    Ok(())
}
