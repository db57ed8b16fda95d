//! A TCP connection to a published port that the server inside accepts (the engine's userland
//! proxy, which accepts on the host even when nothing listens inside, told apart), probed every
//! 50 ms.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::custom::target;
use super::{Checking, Condition, Impossible, Wait, PROBE_INTERVAL};
use crate::container::{inspect_here, Inner};

struct Tcp {
    port: u16,
}

impl Wait {
    /// A TCP connection to `port` accepted by the server in the container.
    pub fn tcp(port: u16) -> Wait {
        Wait::on(Tcp { port })
    }
}

impl Condition for Tcp {
    fn check<'a>(&'a self, inner: &'a Arc<Inner>) -> Checking<'a> {
        Box::pin(check_tcp(inner, self.port))
    }

    fn needs_ports(&self) -> bool {
        true
    }
}

impl fmt::Display for Tcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TCP port {} accepting connections", self.port)
    }
}

async fn check_tcp(inner: &Inner, port: u16) -> Result<(), Impossible> {
    let Some(host_port) = target(inner).ports.get(&port).copied() else {
        return Err(Impossible(format!(
            "because port {port} is not published (add with_port({port}))"
        )));
    };
    let address = crate::engine::host_with_port(inner.session.engine().host(), host_port);
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await {
            // The engine's userland proxy accepts on the host even when nothing listens inside, then
            // closes at once: an immediate EOF means "not yet". Silence or data means accepted.
            use tokio::io::AsyncReadExt;
            let mut byte = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await {
                Ok(Ok(1..)) => return Ok(()),
                // The proxy is silent too while it tries to reach a container that just went
                // away: silence counts only from a running container.
                Err(_) => {
                    let info = inspect_here(inner)
                        .await
                        .map_err(|e| Impossible(format!("because {e}")))?;
                    if info.state.and_then(|s| s.running) == Some(true) {
                        return Ok(());
                    }
                    return Err(Impossible("because the container is not running".into()));
                }
                Ok(Ok(0)) | Ok(Err(_)) => {}
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}
