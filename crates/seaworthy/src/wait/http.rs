//! An HTTP GET of a path on a published port answering a status (any 2xx by default), probed
//! every 50 ms.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::custom::target;
use super::{Checking, Condition, Impossible, Wait, PROBE_INTERVAL};
use crate::container::Inner;

struct Http {
    port: u16,
    path: String,
    status: Option<u16>,
}

impl Wait {
    /// An HTTP GET of `path` on `port` answering any 2xx status.
    pub fn http(port: u16, path: impl Into<String>) -> Wait {
        Wait::on(Http {
            port,
            path: path.into(),
            status: None,
        })
    }

    /// An HTTP GET of `path` on `port` answering exactly `status`.
    pub fn http_status(port: u16, path: impl Into<String>, status: u16) -> Wait {
        Wait::on(Http {
            port,
            path: path.into(),
            status: Some(status),
        })
    }
}

impl Condition for Http {
    fn check<'a>(&'a self, inner: &'a Arc<Inner>) -> Checking<'a> {
        Box::pin(check_http(inner, self.port, &self.path, self.status))
    }

    fn needs_ports(&self) -> bool {
        true
    }
}

impl fmt::Display for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (port, path) = (self.port, &self.path);
        match self.status {
            Some(s) => write!(f, "HTTP GET {path} on port {port} answering {s}"),
            None => write!(f, "HTTP GET {path} on port {port} answering 2xx"),
        }
    }
}

async fn check_http(
    inner: &Inner,
    port: u16,
    path: &str,
    status: Option<u16>,
) -> Result<(), Impossible> {
    let Some(host_port) = target(inner).ports.get(&port).copied() else {
        return Err(Impossible(format!(
            "because port {port} is not published (add with_port({port}))"
        )));
    };
    let url = format!(
        "http://{}/{}",
        crate::engine::host_with_port(inner.session.engine().host(), host_port),
        path.trim_start_matches('/')
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| Impossible(format!("because no HTTP client could be built: {e}")))?;
    loop {
        if let Ok(response) = client.get(&url).send().await {
            let got = response.status().as_u16();
            let ok = match status {
                Some(s) => got == s,
                None => (200..300).contains(&got),
            };
            if ok {
                return Ok(());
            }
            tracing::trace!(url, got, "HTTP wait: not yet");
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}
