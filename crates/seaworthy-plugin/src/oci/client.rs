//! A small client of the OCI distribution API: manifests by tag or digest, blobs, monolithic
//! blob uploads (`POST` then `PUT ?digest=`), and the `Basic` and `Bearer` challenge flows.
//! Every request has a deadline (the client's timeout); every error names the registry.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use super::auth::{self, Challenge, Credentials};
use super::reference::{self, Reference};
use super::OciConfig;
use crate::error::{PluginError, Result};

/// How long connecting to a registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest manifest accepted (the distribution spec suggests registries accept 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;

/// A client for one repository of one registry.
pub(crate) struct RegistryClient {
    http: reqwest::Client,
    registry: String,
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    /// The `Authorization` header that worked last (Basic, or a Bearer token).
    authorization: Mutex<Option<HeaderValue>>,
    push: bool,
}

/// Installs the ring crypto provider for rustls, unless the process chose one.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only if another thread installed one first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A fetched manifest.
pub(crate) struct FetchedManifest {
    pub(crate) bytes: Vec<u8>,
    /// The `Docker-Content-Digest` the registry sent, if any.
    pub(crate) header_digest: Option<String>,
}

impl RegistryClient {
    /// A client for `reference`'s repository. `push` asks for push rights in token scopes.
    pub(crate) fn new(reference: &Reference, config: &OciConfig, push: bool) -> Result<Self> {
        ensure_crypto_provider();
        let registry = reference.registry().to_string();
        let host = reference.api_host();
        let plain = reference::is_loopback(host) || config.is_insecure(reference.registry());
        let base = format!("{}://{host}", if plain { "http" } else { "https" });
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(config.timeout)
            .user_agent(concat!("seaworthy-plugin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PluginError::Registry {
                registry: registry.clone(),
                action: "set up an HTTP client".into(),
                reason: e.to_string(),
            })?;
        let credentials = auth::lookup(
            &registry,
            config.credentials.as_ref(),
            config.docker_config.as_deref(),
        );
        Ok(RegistryClient {
            http,
            registry,
            base,
            repository: reference.repository().to_string(),
            credentials,
            authorization: Mutex::new(None),
            push,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.repository)
    }

    fn error(&self, action: &str, reason: impl std::fmt::Display) -> PluginError {
        PluginError::Registry {
            registry: self.registry.clone(),
            action: action.to_string(),
            reason: reason.to_string(),
        }
    }

    fn auth_failed(&self, status: StatusCode, action: &str, detail: &str) -> PluginError {
        let reason = match &self.credentials {
            Some(c) => format!(
                "the registry refused the credentials of user {:?} from {}{detail}",
                c.username, c.source
            ),
            None => format!(
                "the registry wants credentials and none were found for {} (docker login {0}, or set SEAWORTHY_REGISTRY_USERNAME and SEAWORTHY_REGISTRY_PASSWORD){detail}",
                self.registry
            ),
        };
        PluginError::AuthFailed {
            registry: self.registry.clone(),
            status: status.as_u16(),
            action: action.to_string(),
            reason,
        }
    }

    /// Sends the request `build` makes, answering one authentication challenge if the registry
    /// sends one. A 401 or 403 after that is an [`PluginError::AuthFailed`].
    async fn send(
        &self,
        action: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let mut answered_challenge = false;
        loop {
            let mut request = build(&self.http);
            let current = self
                .authorization
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(value) = current {
                request = request.header(AUTHORIZATION, value);
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.error(action, describe(&e)))?;
            let status = response.status();
            if status == StatusCode::FORBIDDEN {
                return Err(self.auth_failed(status, action, ""));
            }
            if status != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if answered_challenge {
                return Err(self.auth_failed(status, action, ""));
            }
            let header = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let challenge = header.as_deref().and_then(auth::parse_challenge);
            let value = match challenge {
                None => {
                    return Err(self.auth_failed(
                        status,
                        action,
                        &format!(
                            "; its challenge ({}) is not one Seaworthy answers (Basic, Bearer)",
                            header.as_deref().unwrap_or("none")
                        ),
                    ))
                }
                Some(Challenge::Basic) => {
                    let Some(c) = &self.credentials else {
                        return Err(self.auth_failed(status, action, ""));
                    };
                    c.basic_header()
                }
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope,
                }) => {
                    let token = self.token(action, &realm, service, scope).await?;
                    format!("Bearer {token}")
                }
            };
            let value = HeaderValue::from_str(&value).map_err(|_| {
                self.error(action, "the credentials are not valid in an HTTP header")
            })?;
            *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
            answered_challenge = true;
        }
    }

    /// Trades the credentials (or nothing, for anonymous pulls) for a token at `realm`.
    async fn token(
        &self,
        action: &str,
        realm: &str,
        service: Option<String>,
        scope: Option<String>,
    ) -> Result<String> {
        let rights = if self.push { "pull,push" } else { "pull" };
        let scope = scope.unwrap_or_else(|| format!("repository:{}:{rights}", self.repository));
        let mut query = vec![("scope", scope)];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let token_action = format!("{action} (getting a token from {realm})");
        let mut url = reqwest::Url::parse(realm)
            .map_err(|e| self.error(&token_action, format!("the realm is not a URL: {e}")))?;
        url.query_pairs_mut().extend_pairs(&query);
        let mut request = self.http.get(url);
        if let Some(c) = &self.credentials {
            request = request.header(AUTHORIZATION, c.basic_header());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.error(&token_action, describe(&e)))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.auth_failed(status, &token_action, ""));
        }
        if !status.is_success() {
            return Err(self.error(&token_action, format!("HTTP {status}")));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|e| self.error(&token_action, format!("unreadable token answer: {e}")))?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.error(&token_action, "the answer holds no token"))
    }

    /// `GET /v2/<name>/manifests/<reference>`, accepting the OCI manifest media type.
    pub(crate) async fn get_manifest(&self, reference: &str) -> Result<FetchedManifest> {
        let action = format!(
            "fetch the manifest of {}/{}:{reference}",
            self.registry, self.repository
        );
        let url = self.url(&format!("manifests/{reference}"));
        let response = self
            .send(&action, |http| {
                http.get(&url).header(
                    reqwest::header::ACCEPT,
                    format!(
                        "{}, {}",
                        super::IMAGE_MANIFEST_MEDIA_TYPE,
                        "application/vnd.docker.distribution.manifest.v2+json"
                    ),
                )
            })
            .await?;
        let response = self.expect(response, &action, &[StatusCode::OK]).await?;
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = self.body(response, &action, MAX_MANIFEST).await?;
        Ok(FetchedManifest {
            bytes,
            header_digest,
        })
    }

    /// `GET /v2/<name>/blobs/<digest>` (following redirects to storage).
    pub(crate) async fn get_blob(&self, digest: &str, limit: usize) -> Result<Vec<u8>> {
        let action = format!(
            "fetch blob {digest} of {}/{}",
            self.registry, self.repository
        );
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send(&action, |http| http.get(&url)).await?;
        let response = self.expect(response, &action, &[StatusCode::OK]).await?;
        self.body(response, &action, limit).await
    }

    /// Whether the repository already has blob `digest` (`HEAD`).
    async fn has_blob(&self, digest: &str) -> Result<bool> {
        let action = format!(
            "check for blob {digest} in {}/{}",
            self.registry, self.repository
        );
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send(&action, |http| http.head(&url)).await?;
        Ok(response.status() == StatusCode::OK)
    }

    /// Uploads `bytes` as blob `digest` in one piece, unless the repository has it.
    pub(crate) async fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        if self.has_blob(digest).await? {
            return Ok(());
        }
        let action = format!(
            "upload blob {digest} to {}/{}",
            self.registry, self.repository
        );
        let start_url = self.url("blobs/uploads/");
        let response = self
            .send(&action, |http| {
                http.post(&start_url)
                    .header(reqwest::header::CONTENT_LENGTH, "0")
            })
            .await?;
        let response = self
            .expect(response, &action, &[StatusCode::ACCEPTED])
            .await?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.error(&action, "the upload answer has no Location"))?;
        let mut upload = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        };
        upload.push(if upload.contains('?') { '&' } else { '?' });
        upload.push_str("digest=");
        upload.push_str(digest);
        let body = bytes.to_vec();
        let response = self
            .send(&action, |http| {
                http.request(Method::PUT, &upload)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await?;
        self.expect(response, &action, &[StatusCode::CREATED])
            .await?;
        Ok(())
    }

    /// `PUT /v2/<name>/manifests/<tag>`; returns the digest the registry gave it, if any.
    pub(crate) async fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Option<String>> {
        let action = format!(
            "push the manifest of {}/{}:{tag}",
            self.registry, self.repository
        );
        let url = self.url(&format!("manifests/{tag}"));
        let body = bytes.to_vec();
        let response = self
            .send(&action, |http| {
                http.put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        let response = self
            .expect(response, &action, &[StatusCode::CREATED])
            .await?;
        Ok(response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }

    /// `response` if its status is one of `expected`, else an error with the registry's own
    /// message (its JSON `errors`, or the start of the body).
    async fn expect(
        &self,
        response: Response,
        action: &str,
        expected: &[StatusCode],
    ) -> Result<Response> {
        let status = response.status();
        if expected.contains(&status) {
            return Ok(response);
        }
        let text = tokio::time::timeout(Duration::from_secs(10), response.text())
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                let errors = v.get("errors")?.as_array()?.clone();
                Some(
                    errors
                        .iter()
                        .map(|e| {
                            format!(
                                "{}: {}",
                                e.get("code").and_then(|c| c.as_str()).unwrap_or("?"),
                                e.get("message").and_then(|c| c.as_str()).unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(self.error(
            action,
            if detail.trim().is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {}", detail.trim())
            },
        ))
    }

    /// Reads a body of at most `limit` bytes.
    async fn body(&self, mut response: Response, action: &str, limit: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.error(action, describe(&e)))?
        {
            if out.len() + chunk.len() > limit {
                return Err(self.error(action, format!("the answer is larger than {limit} bytes")));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

/// A reqwest error with its causes (the useful part is often the innermost).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
