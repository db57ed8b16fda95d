//! Plugins through a real OCI registry (Debian's docker-registry on 127.0.0.1, with and without
//! htpasswd auth): a scaffolded plugin built, pushed, installed on a clean cache and used as a
//! fixture against a real container; tampered bytes refused; the lockfile respected when a tag
//! moves; installs from the cache with the registry stopped; wrong credentials named.

mod common;
#[path = "common/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use registry::{Registry, TempDir};
use seaworthy::{Fixture, FixtureDefinition};
use seaworthy_plugin::oci::{self, Credentials, InstallSource, LockChange, Lockfile, OciConfig};
use seaworthy_plugin::{Grants, PluginError, PluginHost, LABEL_PLUGIN};

/// The scaffold's id in these tests.
const ID: &str = "kvcache";

/// `seaworthy plugin new kvcache` in a temporary directory, built for wasm32-wasip2: the plugin
/// directory (manifest and component), built once per test binary.
fn scaffolded() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let source = TempDir::new("oci-scaffold");
            let crate_dir = source.path().join(ID);
            let made = seaworthy_plugin::scaffold::new_plugin(&crate_dir, ID).expect("scaffold");
            assert!(made.files.iter().any(|f| f.ends_with("lib.rs")));
            registry::build_plugin_crate(&crate_dir)
        })
        .clone()
}

/// A clean local store and lockfile for one test.
struct Workspace {
    dir: TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        Workspace {
            dir: TempDir::new("oci-workspace"),
        }
    }

    fn lockfile(&self) -> PathBuf {
        self.dir.path().join("seaworthy.lock")
    }

    /// A config with a store of its own (`cache` names it) and this workspace's lockfile.
    fn config(&self, cache: &str) -> OciConfig {
        OciConfig::default()
            .cache_dir(self.dir.path().join(cache))
            .lockfile(self.lockfile())
            // No credentials from the machine's Docker config.
            .docker_config(self.dir.path().join("no-docker-config.json"))
    }
}

fn host(config: OciConfig) -> PluginHost {
    PluginHost::builder()
        .grant(ID, Grants::new().tcp(11211))
        .cache_dir(common::cache_dir("oci"))
        .oci(config)
        .build()
        .expect("a plugin host")
}

/// A copy of the plugin directory `dir` with its manifest's version changed: another artifact.
fn another_version(dir: &Path, into: &Path, version: &str) -> PathBuf {
    std::fs::create_dir_all(into).unwrap();
    std::fs::copy(dir.join("plugin.wasm"), into.join("plugin.wasm")).unwrap();
    let manifest = std::fs::read_to_string(dir.join("seaworthy-plugin.toml")).unwrap();
    std::fs::write(
        into.join("seaworthy-plugin.toml"),
        manifest.replace("version = \"0.1.0\"", &format!("version = \"{version}\"")),
    )
    .unwrap();
    into.to_path_buf()
}

#[tokio::test]
async fn scaffold_is_built_pushed_installed_on_a_clean_cache_and_used_as_a_fixture() {
    let plugin_dir = scaffolded();
    let registry = Registry::start(&[]);
    let reference = format!("{}/seaworthy/{ID}:0.1", registry.host());
    let publisher = Workspace::new();
    let pushed = oci::push(&plugin_dir, &reference, &publisher.config("cache"))
        .await
        .expect("push to a plain-HTTP registry on 127.0.0.1");
    assert_eq!(pushed.manifest.id, ID);
    assert_eq!(
        pushed.component_digest,
        format!(
            "sha256:{}",
            seaworthy_plugin_sha(&plugin_dir.join("plugin.wasm"))
        )
    );

    // The artifact as another wasm tool would see it.
    let manifest: serde_json::Value = reqwest_get_json(&format!(
        "http://{}/v2/seaworthy/{ID}/manifests/0.1",
        registry.host()
    ))
    .await;
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(manifest["layers"][0]["digest"], pushed.component_digest);
    assert_eq!(
        manifest["layers"][1]["mediaType"],
        "application/vnd.seaworthy.plugin.manifest.v1+toml"
    );

    // A user: clean cache, no lockfile yet. The host installs on the miss and pins.
    let user = Workspace::new();
    let host = host(user.config("cache"));
    let plugin = host
        .load(&reference)
        .expect("the plugin installs and loads by reference");
    assert_eq!(plugin.id(), ID);
    // A new plugin targets the newest WIT this host runs.
    assert_eq!(
        plugin.wit_version().as_str(),
        seaworthy_plugin::scaffold::WIT_VERSION
    );
    assert_eq!(
        seaworthy_plugin::SUPPORTED_WIT_VERSIONS.last(),
        Some(&plugin.wit_version().as_str())
    );
    let lock = Lockfile::load(&user.lockfile()).unwrap();
    let entry = lock.get(&reference).expect("the reference is pinned");
    assert_eq!(entry.manifest, pushed.manifest_digest);
    assert_eq!(entry.component, pushed.component_digest);
    assert_eq!(entry.plugin_manifest, pushed.plugin_manifest_digest);

    let fixture = plugin
        .fixture([("image", "seaworthy-test/memcached")])
        .expect("a definition")
        .start()
        .await
        .expect("the fixture starts and is ready");
    let labels = common::labels(fixture.container()).await;
    assert_eq!(labels.get(LABEL_PLUGIN).map(String::as_str), Some(ID));
    assert_eq!(
        labels.get("io.seaworthy.managed").map(String::as_str),
        Some("true")
    );
    let address = fixture.container().address(11211).unwrap();
    let stored = common::memcached(&address, "set k 0 0 2\r\nhi\r\n", |l| l == "STORED").await;
    assert_eq!(stored, "STORED\r\n");
    fixture.clean().await.expect("the scaffold's clean()");
    let got = common::memcached(&address, "get k\r\n", |l| l == "END").await;
    assert_eq!(got, "END\r\n", "clean() left the key");
}

async fn reqwest_get_json(url: &str) -> serde_json::Value {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let response = client
        .get(url)
        .header("accept", oci::IMAGE_MANIFEST_MEDIA_TYPE)
        .send()
        .await
        .expect("the registry answers");
    assert!(response.status().is_success(), "{}", response.status());
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

fn seaworthy_plugin_sha(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test]
async fn htpasswd_registry_takes_the_right_credentials_and_names_the_wrong_ones() {
    let plugin_dir = scaffolded();
    let registry = Registry::start(&[("publisher", "s3cret")]);
    let reference = format!("{}/team/{ID}:1.0", registry.host());
    let ws = Workspace::new();

    // No credentials at all.
    let error = oci::push(&plugin_dir, &reference, &ws.config("a"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::AuthFailed { status: 401, .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains(&registry.host()), "{text}");
    assert!(text.contains("authentication failed (HTTP 401)"), "{text}");
    assert!(text.contains("none were found"), "{text}");

    // Wrong password.
    let wrong = ws
        .config("a")
        .credentials(Credentials::new("publisher", "guess"));
    let text = oci::push(&plugin_dir, &reference, &wrong)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains(&registry.host()) && text.contains("HTTP 401"),
        "{text}"
    );
    assert!(
        text.contains("refused the credentials of user \"publisher\""),
        "{text}"
    );
    assert!(
        !text.contains("guess"),
        "the password leaked into the error: {text}"
    );

    // The right ones, given in code.
    let right = ws
        .config("a")
        .credentials(Credentials::new("publisher", "s3cret"));
    let pushed = oci::push(&plugin_dir, &reference, &right)
        .await
        .expect("push with credentials");

    // The right ones from a Docker config file (`docker login` writes base64 `auths`).
    let docker_config = ws.dir.path().join("docker-config.json");
    let auth = base64_of("publisher:s3cret");
    std::fs::write(
        &docker_config,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let from_docker = ws.config("clean").docker_config(&docker_config);
    let installed = oci::install(&reference, &from_docker)
        .await
        .expect("install with the Docker config's credentials");
    assert_eq!(installed.manifest_digest, pushed.manifest_digest);
    assert_eq!(installed.source, InstallSource::Registry);
    assert_eq!(installed.lock, LockChange::Added);

    // Pulling with the wrong password is refused too, naming the registry.
    let other = Workspace::new();
    let error = oci::install(
        &reference,
        &other
            .config("b")
            .credentials(Credentials::new("publisher", "nope")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, PluginError::AuthFailed { status: 401, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&registry.host()), "{error}");
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn tampered_component_in_the_registry_is_refused_naming_both_digests() {
    let plugin_dir = scaffolded();
    let registry = Registry::start(&[]);
    let reference = format!("{}/seaworthy/{ID}:tampered", registry.host());
    let ws = Workspace::new();
    let pushed = oci::push(&plugin_dir, &reference, &ws.config("publisher"))
        .await
        .unwrap();
    // Someone with access to the registry's storage swaps the component's bytes.
    let file = registry.blob_file(&pushed.component_digest);
    let mut bytes = std::fs::read(&file).expect("the registry stores the component");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();

    let error = oci::install(&reference, &ws.config("clean"))
        .await
        .expect_err("tampered bytes are refused");
    let PluginError::Integrity {
        reference: named,
        expected,
        actual,
        ..
    } = &error
    else {
        panic!("expected an integrity error, got {error:?}");
    };
    assert_eq!(named, &reference);
    assert_eq!(expected, &pushed.component_digest);
    assert_ne!(actual, &pushed.component_digest);
    let text = error.to_string();
    assert!(
        text.contains(&reference)
            && text.contains(expected)
            && text.contains(actual)
            && text.contains("refused"),
        "{text}"
    );
    // Nothing was installed or pinned.
    assert!(Lockfile::load(&ws.lockfile()).unwrap().plugins.is_empty());
    assert!(!ws
        .dir
        .path()
        .join("clean/plugins")
        .join(pushed.manifest_digest.replace(':', "-"))
        .join("plugin.wasm")
        .exists());
}

#[tokio::test]
async fn lockfile_pins_the_digest_when_the_tag_moves_and_update_moves_the_pin() {
    let plugin_dir = scaffolded();
    let registry = Registry::start(&[]);
    let reference = format!("{}/seaworthy/{ID}:stable", registry.host());
    let ws = Workspace::new();
    let first = oci::push(&plugin_dir, &reference, &ws.config("publisher"))
        .await
        .unwrap();
    let installed = oci::install(&reference, &ws.config("cache1"))
        .await
        .unwrap();
    assert_eq!(installed.lock, LockChange::Added);
    assert_eq!(installed.manifest_digest, first.manifest_digest);

    // The publisher moves the tag to a new version.
    let moved_dir = another_version(&plugin_dir, &ws.dir.path().join("v2"), "0.2.0");
    let second = oci::push(&moved_dir, &reference, &ws.config("publisher"))
        .await
        .unwrap();
    assert_ne!(second.manifest_digest, first.manifest_digest);

    // A clean cache with the lockfile still gets what was pinned.
    let again = oci::install(&reference, &ws.config("cache2"))
        .await
        .unwrap();
    assert_eq!(again.lock, LockChange::Pinned);
    assert_eq!(again.source, InstallSource::Registry);
    assert_eq!(again.manifest_digest, first.manifest_digest);
    assert_eq!(again.manifest.version, "0.1.0");

    // A lockfile that pins other bytes than the registry's manifest names is refused.
    let text = std::fs::read_to_string(ws.lockfile()).unwrap();
    let forged = text.replace(
        &first.plugin_manifest_digest,
        &second.plugin_manifest_digest,
    );
    std::fs::write(ws.lockfile(), &forged).unwrap();
    let error = oci::install(&reference, &ws.config("cache3"))
        .await
        .unwrap_err();
    assert!(matches!(error, PluginError::Integrity { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("seaworthy.lock") && message.contains(&reference),
        "{message}"
    );
    std::fs::write(ws.lockfile(), &text).unwrap();

    // `update` re-resolves the tag and moves the pin.
    let updated = oci::install(&reference, &ws.config("cache2").update(true))
        .await
        .unwrap();
    assert_eq!(updated.lock, LockChange::Updated);
    assert_eq!(updated.manifest_digest, second.manifest_digest);
    assert_eq!(updated.manifest.version, "0.2.0");
    let lock = Lockfile::load(&ws.lockfile()).unwrap();
    assert_eq!(
        lock.get(&reference).unwrap().manifest,
        second.manifest_digest
    );

    // Locked installs refuse what is not pinned.
    let unpinned = format!("{}/seaworthy/{ID}:other", registry.host());
    let error = oci::install(&unpinned, &ws.config("cache2").locked(true))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not pinned"), "{error}");
}

#[tokio::test]
async fn pinned_plugin_installs_from_the_cache_with_the_registry_stopped() {
    let plugin_dir = scaffolded();
    let mut registry = Registry::start(&[]);
    let reference = format!("{}/seaworthy/{ID}:offline", registry.host());
    let publisher = Workspace::new();
    oci::push(&plugin_dir, &reference, &publisher.config("publisher"))
        .await
        .unwrap();
    let user = Workspace::new();
    let online = oci::install(&reference, &user.config("cache"))
        .await
        .unwrap();
    assert_eq!(online.source, InstallSource::Registry);

    registry.stop();
    // The installed directory is gone too: it is rebuilt from the verified blobs.
    std::fs::remove_dir_all(&online.dir).unwrap();
    let offline = oci::install(&reference, &user.config("cache"))
        .await
        .expect("a pinned plugin installs from the cache without the registry");
    assert_eq!(offline.source, InstallSource::Cache);
    assert_eq!(offline.manifest_digest, online.manifest_digest);
    // And the host loads it, offline, by reference.
    let plugin = host(user.config("cache"))
        .load(&reference)
        .expect("loads offline");
    assert_eq!(
        plugin.wasm_sha256(),
        online.component_digest.trim_start_matches("sha256:")
    );

    // A corrupted cached component is not used; offline, that is the error.
    let blob = user
        .dir
        .path()
        .join("cache/blobs/sha256")
        .join(online.component_digest.trim_start_matches("sha256:"));
    std::fs::write(&blob, b"not the component").unwrap();
    let error = oci::install(&reference, &user.config("cache"))
        .await
        .unwrap_err();
    assert!(matches!(error, PluginError::Integrity { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("local store") && text.contains(&online.component_digest),
        "{text}"
    );

    // Without a pin, offline means the registry is needed, and the error names it.
    let unpinned = Workspace::new();
    let error = oci::install(&reference, &unpinned.config("cache"))
        .await
        .unwrap_err();
    assert!(matches!(error, PluginError::Registry { .. }), "{error:?}");
    assert!(error.to_string().contains(&registry.host()), "{error}");
}

/// A front for a registry that demands `Bearer` tokens, as Docker Hub and GHCR do: requests
/// without the token get a challenge naming its realm; the realm trades Basic credentials for
/// the token; requests with it are forwarded. Stops when dropped.
struct BearerFront {
    port: u16,
    task: tokio::task::JoinHandle<()>,
    scopes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for BearerFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const TOKEN: &str = "token-for-tests";

impl BearerFront {
    async fn start(backend: String, user: &'static str, password: &'static str) -> BearerFront {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let scopes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = scopes.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (http, backend, seen) = (http.clone(), backend.clone(), seen.clone());
                tokio::spawn(async move {
                    let _ = Self::serve(stream, port, &http, &backend, user, password, &seen).await;
                });
            }
        });
        BearerFront { port, task, scopes }
    }

    /// One request per connection (answers carry `Connection: close`).
    async fn serve(
        stream: tokio::net::TcpStream,
        port: u16,
        http: &reqwest::Client,
        backend: &str,
        user: &str,
        password: &str,
        seen: &std::sync::Mutex<Vec<String>>,
    ) -> std::io::Result<()> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let mut reader = tokio::io::BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let length: usize = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;

        let (status, mut out_headers, out_body): (u16, Vec<(String, String)>, Vec<u8>) =
            if let Some(query) = target.strip_prefix("/token?") {
                let scope = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("scope="))
                    .unwrap_or("")
                    .replace("%3A", ":")
                    .replace("%2F", "/")
                    .replace("%2C", ",");
                seen.lock().unwrap().push(scope);
                if get("authorization")
                    == Some(format!(
                        "Basic {}",
                        base64_of(&format!("{user}:{password}"))
                    ))
                {
                    (
                        200,
                        vec![("content-type".into(), "application/json".into())],
                        format!(r#"{{"token":"{TOKEN}"}}"#).into_bytes(),
                    )
                } else {
                    (401, vec![], b"{\"details\":\"bad credentials\"}".to_vec())
                }
            } else if get("authorization") != Some(format!("Bearer {TOKEN}")) {
                let challenge = format!(
                    r#"Bearer realm="http://127.0.0.1:{port}/token",service="seaworthy-test""#
                );
                (
                    401,
                    vec![("www-authenticate".into(), challenge)],
                    Vec::new(),
                )
            } else {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let mut request = http
                    .request(method, format!("http://{backend}{target}"))
                    .body(body);
                for name in ["content-type", "accept"] {
                    if let Some(v) = get(name) {
                        request = request.header(name, v);
                    }
                }
                let response = request.send().await.map_err(std::io::Error::other)?;
                let status = response.status().as_u16();
                let mut kept = Vec::new();
                for name in [
                    "content-type",
                    "docker-content-digest",
                    "location",
                    "content-length",
                ] {
                    if let Some(v) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
                        kept.push((
                            name.to_string(),
                            v.replace(backend, &format!("127.0.0.1:{port}")),
                        ));
                    }
                }
                let bytes = response.bytes().await.map_err(std::io::Error::other)?;
                (status, kept, bytes.to_vec())
            };
        if !out_headers.iter().any(|(k, _)| k == "content-length") {
            out_headers.push(("content-length".into(), out_body.len().to_string()));
        }
        let mut answer = format!("HTTP/1.1 {status} X\r\nconnection: close\r\n");
        for (k, v) in out_headers {
            answer.push_str(&format!("{k}: {v}\r\n"));
        }
        answer.push_str("\r\n");
        let mut stream = reader.into_inner();
        stream.write_all(answer.as_bytes()).await?;
        if method != "HEAD" {
            stream.write_all(&out_body).await?;
        }
        stream.shutdown().await
    }
}

#[tokio::test]
async fn bearer_token_challenges_are_answered_with_the_credentials() {
    let plugin_dir = scaffolded();
    let registry = Registry::start(&[]);
    let front = BearerFront::start(registry.host(), "robot", "t0ken-pass").await;
    let reference = format!("127.0.0.1:{}/org/{ID}:bearer", front.port);
    let ws = Workspace::new();
    let right = ws
        .config("publisher")
        .credentials(Credentials::new("robot", "t0ken-pass"));
    let pushed = oci::push(&plugin_dir, &reference, &right)
        .await
        .expect("push through a Bearer challenge");
    let installed = oci::install(
        &reference,
        &right.clone().cache_dir(ws.dir.path().join("clean")),
    )
    .await
    .expect("install through a Bearer challenge");
    assert_eq!(installed.manifest_digest, pushed.manifest_digest);
    let scopes = front.scopes.lock().unwrap().clone();
    assert!(
        scopes.contains(&format!("repository:org/{ID}:pull,push")),
        "{scopes:?}"
    );
    assert!(
        scopes.contains(&format!("repository:org/{ID}:pull")),
        "{scopes:?}"
    );

    // The token endpoint refusing the credentials is an authentication failure too.
    let wrong = ws
        .config("other")
        .credentials(Credentials::new("robot", "nope"));
    let error = oci::install(&reference, &wrong).await.unwrap_err();
    assert!(
        matches!(error, PluginError::AuthFailed { status: 401, .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("getting a token from")
            && text.contains(&format!("127.0.0.1:{}", front.port)),
        "{text}"
    );
}
