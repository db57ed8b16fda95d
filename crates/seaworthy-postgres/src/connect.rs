//! Connections: every socket is opened, and every connection task runs, on Seaworthy's runtime,
//! so a client keeps working whichever runtime uses it (each `#[tokio::test]` has its own, and
//! a fixture shared in a static outlives them all).

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait between attempts while the server is not up yet.
const RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// A client configuration for `user@host:port/database`.
pub(crate) fn config(host: &str, port: u16, user: &str, password: &str, database: &str) -> Config {
    let mut config = Config::new();
    config
        .host(host)
        .port(port)
        .user(user)
        .password(password)
        .dbname(database)
        .application_name("seaworthy")
        .connect_timeout(CONNECT_TIMEOUT);
    config
}

/// Connects, and runs the connection task on Seaworthy's runtime.
pub(crate) async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let config = config.clone();
    seaworthy::runtime::run(async move {
        let (client, connection) = config.connect(NoTls).await?;
        seaworthy::runtime::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
        });
        Ok(client)
    })
    .await
}

/// Whether an error means "the server is not accepting connections yet".
pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            *code == SqlState::CANNOT_CONNECT_NOW || *code == SqlState::TOO_MANY_CONNECTIONS
        }
        // No SQLSTATE: refused, reset, closed during start-up.
        None => true,
    }
}

/// Whether an error means the credentials are wrong (retrying will not help).
pub(crate) fn is_refusal(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(code) if *code == SqlState::INVALID_PASSWORD
        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        || *code == SqlState::INVALID_CATALOG_NAME)
}

/// The outcome of one readiness probe.
pub(crate) enum Probe {
    Ready,
    NotYet,
    Refused(String),
}

/// Connects and runs `SELECT 1` once.
pub(crate) async fn probe(config: &Config) -> Probe {
    let attempt = async {
        let client = connect(config).await?;
        client.simple_query("SELECT 1").await?;
        Ok::<(), tokio_postgres::Error>(())
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(())) => Probe::Ready,
        Ok(Err(e)) if is_refusal(&e) => Probe::Refused(crate::error::describe(&e)),
        Ok(Err(_)) | Err(_) => Probe::NotYet,
    }
}

/// Connects, retrying while the server is starting, until `deadline` (on Seaworthy's runtime,
/// whose timers work whatever runtime the caller has).
pub(crate) async fn connect_until(
    config: &Config,
    deadline: Instant,
) -> Result<Client, tokio_postgres::Error> {
    let config = config.clone();
    seaworthy::runtime::run(async move {
        loop {
            match connect(&config).await {
                Ok(client) => return Ok(client),
                Err(e) if is_transient(&e) && Instant::now() + RETRY_INTERVAL < deadline => {
                    tracing::trace!(error = %e, "postgres not accepting connections yet");
                    tokio::time::sleep(RETRY_INTERVAL).await;
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await
}
