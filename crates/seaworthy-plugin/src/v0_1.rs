//! Host side of `seaworthy:fixture@0.1.x`: the bindings of the newest 0.1 release (the folder
//! `wit/0.1.1`) run the components of every 0.1 release.
//!
//! 0.1.1 only adds to 0.1.0 (`container-log-since`, `log-chunk`), and wasmtime resolves names
//! semver-compatibly: a component's import of `seaworthy:fixture/host@0.1.0` is served by the
//! linker's `host@0.1.1` (the functions it imports have the same types), and its export
//! `fixture@0.1.0` is found under the bindings' `fixture@0.1.1`. So one module serves both, and
//! its generated types are the ones the host logic ([`crate::host_api`]) is written against,
//! re-exported as [`crate::latest`]. A release that changes a type (0.2.0) gets a module of its
//! own that converts to the newest types and forwards.

wasmtime::component::bindgen!({
    world: "fixture-plugin",
    path: "../../wit/0.1.1",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "seaworthy:fixture/host.tcp-stream": crate::host_api::TcpConn,
    },
});

use wasmtime::component::Resource;

use self::seaworthy::fixture::host::{
    ExecOutput, ExecRequest, HostError, HttpRequest, HttpResponse, Level, LogChunk, LogLine,
};
use crate::host_api::{self, TcpConn};
use crate::instance::HostState;

impl self::seaworthy::fixture::types::Host for HostState {}

impl self::seaworthy::fixture::host::Host for HostState {
    async fn exec(
        &mut self,
        request: ExecRequest,
    ) -> wasmtime::Result<Result<ExecOutput, HostError>> {
        let out = host_api::exec(self, request).await;
        host_api::check_denials(self)?;
        Ok(out)
    }

    async fn tcp_connect(
        &mut self,
        port: u16,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Resource<TcpConn>, HostError>> {
        let out = host_api::tcp_connect(self, port, timeout_ms).await?;
        host_api::check_denials(self)?;
        Ok(out)
    }

    async fn http(
        &mut self,
        request: HttpRequest,
    ) -> wasmtime::Result<Result<HttpResponse, HostError>> {
        let out = host_api::http(self, request).await;
        host_api::check_denials(self)?;
        Ok(out)
    }

    async fn container_logs(
        &mut self,
        tail: Option<u32>,
    ) -> wasmtime::Result<Result<Vec<LogLine>, HostError>> {
        let out = host_api::container_logs(self, tail).await;
        host_api::check_denials(self)?;
        Ok(out)
    }

    async fn container_log_since(
        &mut self,
        from: u64,
        until: Option<String>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<LogChunk, HostError>> {
        let out = host_api::container_log_since(self, from, until, timeout_ms).await;
        host_api::check_denials(self)?;
        Ok(out)
    }

    async fn sleep(&mut self, ms: u32) -> wasmtime::Result<()> {
        host_api::sleep(self, ms).await;
        Ok(())
    }

    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        host_api::log(self, level, &message);
        Ok(())
    }
}

impl self::seaworthy::fixture::host::HostTcpStream for HostState {
    async fn send(
        &mut self,
        stream: Resource<TcpConn>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), HostError>> {
        host_api::tcp_send(self, &stream, &data).await
    }

    async fn receive(
        &mut self,
        stream: Resource<TcpConn>,
        max: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, HostError>> {
        host_api::tcp_receive(self, &stream, max, timeout_ms).await
    }

    async fn drop(&mut self, stream: Resource<TcpConn>) -> wasmtime::Result<()> {
        host_api::tcp_drop(self, stream)
    }
}
