//! Connections: every socket is opened on Seaworthy's runtime, so a connection keeps working
//! whichever runtime uses it (each `#[tokio::test]` has its own, and a fixture shared in a
//! static outlives them all).

use std::time::{Duration, Instant};

use mysql_async::{Conn, Opts, OptsBuilder};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait between attempts while the server is not up yet.
const RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// Client options for `user@host:port/database` over TCP (never the server's Unix socket, which
/// the client would otherwise switch to for a local host).
pub(crate) fn opts(host: &str, port: u16, user: &str, password: &str, database: &str) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(if database.is_empty() {
            None
        } else {
            Some(database)
        })
        .prefer_socket(false)
        .into()
}

/// Connects on Seaworthy's runtime, under the connect timeout.
pub(crate) async fn connect(opts: &Opts) -> Result<Conn, mysql_async::Error> {
    let opts = opts.clone();
    seaworthy::runtime::run(async move {
        match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
            Ok(result) => result,
            Err(_) => Err(mysql_async::Error::Io(mysql_async::IoError::Io(
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            ))),
        }
    })
    .await
}

/// Whether an error means the credentials or the database are wrong (retrying will not help):
/// access denied (1044, 1045, 1698), unknown database (1049).
pub(crate) fn is_refusal(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if matches!(s.code, 1044 | 1045 | 1049 | 1698))
}

/// The outcome of one readiness probe.
pub(crate) enum Probe {
    Ready,
    NotYet,
    Refused(String),
}

/// Connects and runs `SELECT 1` once.
pub(crate) async fn probe(opts: &Opts) -> Probe {
    use mysql_async::prelude::Queryable;
    let attempt = async {
        let mut conn = connect(opts).await?;
        conn.query_drop("SELECT 1").await?;
        conn.disconnect().await?;
        Ok::<(), mysql_async::Error>(())
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(())) => Probe::Ready,
        Ok(Err(e)) if is_refusal(&e) => Probe::Refused(crate::error::describe(&e)),
        Ok(Err(_)) | Err(_) => Probe::NotYet,
    }
}

/// Connects, retrying while the server is starting, until `deadline`.
pub(crate) async fn connect_until(
    opts: &Opts,
    deadline: Instant,
) -> Result<Conn, mysql_async::Error> {
    let opts = opts.clone();
    seaworthy::runtime::run(async move {
        loop {
            match connect(&opts).await {
                Ok(conn) => return Ok(conn),
                Err(e) if !is_refusal(&e) && Instant::now() + RETRY_INTERVAL < deadline => {
                    tracing::trace!(error = %e, "mariadb not accepting connections yet");
                    tokio::time::sleep(RETRY_INTERVAL).await;
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await
}
