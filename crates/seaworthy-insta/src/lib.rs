//! # seaworthy-insta
//!
//! [insta](https://insta.rs) snapshots of what a container looks like, one line per assertion:
//!
//! ```no_run
//! use seaworthy::ContainerDefinition;
//! use seaworthy_insta::{
//!     assert_dir_snapshot, assert_exec_snapshot, assert_http_snapshot, assert_metadata_snapshot,
//!     assert_process_snapshot,
//! };
//!
//! # async fn demo() -> seaworthy::Result<()> {
//! let web = ContainerDefinition::new("seaworthy-test/nginx")
//!     .with_name("web")
//!     .with_port(80)
//!     .with_wait(seaworthy::Wait::http(80, "/health"))
//!     .start()
//!     .await?;
//! assert_metadata_snapshot!(web);                      // config, env, ports, mounts, labels...
//! assert_exec_snapshot!(web, ["nginx", "-v"]);         // exit code, stdout, stderr
//! assert_process_snapshot!(web);                       // the process tree
//! assert_dir_snapshot!(web, "/etc/nginx");             // entries with mode, owner, size
//! assert_http_snapshot!(web, 80, "/");                 // status, headers, body
//! # Ok(()) }
//! ```
//!
//! ## The model
//!
//! Each macro reads something from the container, turns it into a *normalised* value (sorted maps,
//! no engine noise: [`ContainerMetadata`], [`ExecSnapshot`], [`ProcessSnapshot`],
//! [`DirSnapshot`], [`HttpSnapshot`]) and hands it to `insta::assert_yaml_snapshot!` under
//! settings that:
//!
//! - store the snapshot under the workspace's top-level `snapshots/<package>/` directory (see
//!   [`snapshot_dir`]; a `snapshot_path` you bind yourself wins);
//! - redact what changes from run to run (see [`Redactions`] for the exact list): container ids
//!   and generated names, the session's namespace and run id, host ports, IP addresses,
//!   timestamps, 64-digit hashes, the owner label, and volatile HTTP headers.
//!
//! Every macro takes an optional last argument of extra redactions in insta's own syntax, which
//! apply after the defaults: `assert_metadata_snapshot!(c, { ".labels.version" => "[version]" })`.
//! Any other insta setting (filters, `sort_maps`, a snapshot path...) is bound around the calls;
//! the macros `.await`, so bind to a scope rather than through `insta::with_settings!`'s closure:
//!
//! ```no_run
//! # async fn demo(c: seaworthy::Container) {
//! use seaworthy_insta::insta;
//! let mut settings = insta::Settings::clone_current();
//! settings.add_filter(r"\d+ms", "[ms]");
//! let _bound = settings.bind_to_scope();
//! seaworthy_insta::assert_exec_snapshot!(c, ["my-tool", "--timings"]);
//! # }
//! ```
//!
//! The building blocks are public too: [`settings_for`] gives the default settings, and the
//! snapshot types can be used with any insta macro.
//!
//! Snapshots are reviewed with `cargo insta review` (or written with `INSTA_UPDATE=always`). A new
//! or different snapshot fails the test; under `CI=true` insta also writes nothing, so CI fails
//! on any snapshot that was not committed.
//!
//! The macros `.await`, so they are used inside async tests; a failure to read from the container
//! panics with the error, like a failed assertion.

#![warn(missing_docs)]

mod http;
mod metadata;
mod redact;
mod values;

pub use http::{HttpBody, HttpSnapshot};
pub use metadata::{
    ContainerMetadata, HealthcheckMetadata, MountMetadata, NetworkMetadata, PublishedPort,
};
pub use redact::{settings_for, snapshot_dir, Redactions};
pub use values::{DirEntrySnapshot, DirSnapshot, ExecSnapshot, ProcessSnapshot};

/// Re-exported so the macros (and users) reach insta through this crate.
pub use insta;

/// What can go wrong while reading a snapshot's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading from the container failed.
    #[error(transparent)]
    Seaworthy(#[from] seaworthy::Error),
    /// An HTTP request or reading its body failed.
    #[error("HTTP request failed: {0}")]
    Http(#[from] seaworthy::reqwest::Error),
}

/// Asserts a snapshot of a container's normalised metadata ([`ContainerMetadata`]).
///
/// `assert_metadata_snapshot!(container)` or, with extra redactions,
/// `assert_metadata_snapshot!(container, { ".env.VERSION" => "[version]" })`.
#[macro_export]
macro_rules! assert_metadata_snapshot {
    ($container:expr $(, { $($selector:expr => $replacement:expr),* $(,)? })? $(,)?) => {{
        let __container: &$crate::__private::Container = &$container;
        let __value = $crate::__private::unwrap_or_panic(
            "read the metadata of the container",
            $crate::ContainerMetadata::of(__container).await,
        );
        let __settings = $crate::__private::settings(
            $crate::Redactions::metadata(Some(__container)),
            env!("CARGO_MANIFEST_DIR"),
            env!("CARGO_PKG_NAME"),
            "container metadata".to_string(),
        );
        $crate::__assert_with_settings!(__settings, __value $(, [$(($selector, $replacement)),*])?);
    }};
}

/// Asserts a snapshot of a command run in a container: command line, exit code, stdout, stderr
/// ([`ExecSnapshot`]).
///
/// `assert_exec_snapshot!(container, ["cat", "/etc/os-release"])`; the second argument is anything
/// that converts into a [`seaworthy::Exec`] (`Exec::shell("...").env("A", "b")`).
#[macro_export]
macro_rules! assert_exec_snapshot {
    ($container:expr, $exec:expr $(, { $($selector:expr => $replacement:expr),* $(,)? })? $(,)?) => {{
        let __container: &$crate::__private::Container = &$container;
        let __exec: $crate::__private::Exec = ::std::convert::Into::into($exec);
        let __line = __exec.command_line();
        let __value = $crate::__private::unwrap_or_panic(
            "run the command",
            $crate::ExecSnapshot::run(__container, __exec).await,
        );
        let __settings = $crate::__private::settings(
            $crate::Redactions::exec(Some(__container)),
            env!("CARGO_MANIFEST_DIR"),
            env!("CARGO_PKG_NAME"),
            format!("exec: {__line}"),
        );
        $crate::__assert_with_settings!(__settings, __value $(, [$(($selector, $replacement)),*])?);
    }};
}

/// Asserts a snapshot of a container's process tree: users and command lines, children sorted
/// ([`ProcessSnapshot`]; process ids are left out, they change every run).
#[macro_export]
macro_rules! assert_process_snapshot {
    ($container:expr $(, { $($selector:expr => $replacement:expr),* $(,)? })? $(,)?) => {{
        let __container: &$crate::__private::Container = &$container;
        let __value = $crate::__private::unwrap_or_panic(
            "read the process tree",
            $crate::ProcessSnapshot::of(__container).await,
        );
        let __settings = $crate::__private::settings(
            $crate::Redactions::processes(Some(__container)),
            env!("CARGO_MANIFEST_DIR"),
            env!("CARGO_PKG_NAME"),
            "process tree".to_string(),
        );
        $crate::__assert_with_settings!(__settings, __value $(, [$(($selector, $replacement)),*])?);
    }};
}

/// Asserts a snapshot of a directory's entries with kind, mode, owner, size and link target
/// ([`DirSnapshot`]), read through the archive API (no `ls` needed in the image).
#[macro_export]
macro_rules! assert_dir_snapshot {
    ($container:expr, $path:expr $(, { $($selector:expr => $replacement:expr),* $(,)? })? $(,)?) => {{
        let __container: &$crate::__private::Container = &$container;
        let __path: &str = $path;
        let __value = $crate::__private::unwrap_or_panic(
            "list the directory",
            $crate::DirSnapshot::of(__container, __path).await,
        );
        let __settings = $crate::__private::settings(
            $crate::Redactions::dir(Some(__container)),
            env!("CARGO_MANIFEST_DIR"),
            env!("CARGO_PKG_NAME"),
            format!("directory {__path}"),
        );
        $crate::__assert_with_settings!(__settings, __value $(, [$(($selector, $replacement)),*])?);
    }};
}

/// Asserts a snapshot of `GET path` on a published port: status, headers and body
/// ([`HttpSnapshot`]).
///
/// All headers are kept, with volatile ones (`date`, `last-modified`, `etag`...) redacted;
/// `headers = ["content-type"]` keeps only those named. A JSON body is stored as structured YAML,
/// so redactions can reach into it (`".body.id"`).
///
/// `assert_http_snapshot!(web, 80, "/")`,
/// `assert_http_snapshot!(web, 80, "/api", headers = ["content-type"], { ".body.id" => "[id]" })`.
#[macro_export]
macro_rules! assert_http_snapshot {
    ($container:expr, $port:expr, $path:expr
        $(, headers = [$($header:expr),* $(,)?])?
        $(, { $($selector:expr => $replacement:expr),* $(,)? })? $(,)?) => {{
        let __container: &$crate::__private::Container = &$container;
        let __path: &str = $path;
        let __headers: ::std::option::Option<::std::vec::Vec<&str>> = ::std::option::Option::None
            $(.or(::std::option::Option::Some(::std::vec![$($header),*])))?;
        let __value = $crate::__private::unwrap_or_panic(
            "send the HTTP request",
            $crate::HttpSnapshot::get(__container, $port, __path, __headers.as_deref()).await,
        );
        let __settings = $crate::__private::settings(
            $crate::Redactions::http(Some(__container)),
            env!("CARGO_MANIFEST_DIR"),
            env!("CARGO_PKG_NAME"),
            format!("HTTP GET {__path}"),
        );
        $crate::__assert_with_settings!(__settings, __value $(, [$(($selector, $replacement)),*])?);
    }};
}

/// Asserts a snapshot of an HTTP response of any request (`POST`, custom headers...):
/// `assert_response_snapshot!(web.http(80)?.post("/api").json(&body).send().await?)`.
///
/// Like [`assert_http_snapshot!`], `headers = [...]` selects headers and a `{...}` block adds
/// redactions. Without a container at hand, only the generic redactions apply.
#[macro_export]
macro_rules! assert_response_snapshot {
    ($response:expr
        $(, headers = [$($header:expr),* $(,)?])?
        $(, { $($selector:expr => $replacement:expr),* $(,)? })? $(,)?) => {{
        let __headers: ::std::option::Option<::std::vec::Vec<&str>> = ::std::option::Option::None
            $(.or(::std::option::Option::Some(::std::vec![$($header),*])))?;
        let __value = $crate::__private::unwrap_or_panic(
            "read the HTTP response",
            $crate::HttpSnapshot::from_response($response, __headers.as_deref()).await,
        );
        let __settings = $crate::__private::settings(
            $crate::Redactions::http(None),
            env!("CARGO_MANIFEST_DIR"),
            env!("CARGO_PKG_NAME"),
            "HTTP response".to_string(),
        );
        $crate::__assert_with_settings!(__settings, __value $(, [$(($selector, $replacement)),*])?);
    }};
}

/// Binds `settings` (plus the caller's extra redactions) and asserts the YAML snapshot.
#[doc(hidden)]
#[macro_export]
macro_rules! __assert_with_settings {
    ($settings:expr, $value:expr $(, [$(($selector:expr, $replacement:expr)),*])?) => {{
        #[allow(unused_mut)]
        let mut __settings: $crate::insta::Settings = $settings;
        $($( __settings.add_redaction($selector, $replacement); )*)?
        __settings.bind(|| {
            $crate::insta::assert_yaml_snapshot!($value);
        });
    }};
}

/// Support for the macros; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use seaworthy::{Container, Exec};

    /// Unwraps a read for a snapshot, panicking like a failed assertion.
    #[track_caller]
    pub fn unwrap_or_panic<T, E: std::fmt::Display>(what: &str, result: Result<T, E>) -> T {
        match result {
            Ok(v) => v,
            Err(e) => panic!("seaworthy-insta: cannot {what}: {e}"),
        }
    }

    /// The settings a macro binds: the current ones, the snapshot directory (unless the caller
    /// chose one), the default redactions of the kind, and a description.
    pub fn settings(
        redactions: crate::Redactions,
        manifest_dir: &str,
        package: &str,
        description: String,
    ) -> insta::Settings {
        let mut settings = crate::redact::settings_with(redactions, manifest_dir, package);
        settings.set_description(description);
        settings.set_omit_expression(true);
        settings
    }
}
