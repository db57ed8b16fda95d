//! A small client of the OCI distribution API: manifests by tag or digest, blobs, monolithic
//! blob uploads (`POST` then `PUT ?digest=`), and the `Basic` and `Bearer` challenge flows.
//! HTTP/1.1 over hyper, TLS through rustls with the ring provider and the platform's roots.
//! Every request, body included, has a deadline (the config's timeout); every error names the
//! registry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, USER_AGENT,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::auth::{self, Challenge, Credentials};
use super::reference::{self, Reference};
use super::OciConfig;
use crate::error::{PluginError, Result};

/// How long connecting to a registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest manifest accepted (the distribution spec suggests registries accept 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;
/// How many redirects a blob download follows (registries may send blobs from storage).
const MAX_REDIRECTS: usize = 5;
/// The answers read to explain an error are cut here.
const MAX_ERROR_BODY: usize = 64 << 10;

type Http = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for one repository of one registry.
pub(crate) struct RegistryClient {
    http: Http,
    registry: String,
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    /// The `Authorization` header that worked last (Basic, or a Bearer token).
    authorization: Mutex<Option<HeaderValue>>,
    push: bool,
    timeout: Duration,
}

/// A fetched manifest.
pub(crate) struct FetchedManifest {
    pub(crate) bytes: Vec<u8>,
    /// The `Docker-Content-Digest` the registry sent, if any.
    pub(crate) header_digest: Option<String>,
}

/// An HTTP(S) connector with rustls (ring) and the platform's root certificates. Without
/// readable roots, only plain HTTP works, and HTTPS fails naming the certificate.
fn connector() -> std::result::Result<HttpsConnector<HttpConnector>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider.clone())
    {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "no platform root certificates: HTTPS registries will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    Ok(builder.https_or_http().enable_http1().wrap_connector(http))
}

/// `text` percent-encoded for a URL query (everything but unreserved characters).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl RegistryClient {
    /// A client for `reference`'s repository. `push` asks for push rights in token scopes.
    pub(crate) fn new(reference: &Reference, config: &OciConfig, push: bool) -> Result<Self> {
        let registry = reference.registry().to_string();
        let host = reference.api_host();
        let plain = reference::is_loopback(host) || config.is_insecure(reference.registry());
        let base = format!("{}://{host}", if plain { "http" } else { "https" });
        let connector = connector().map_err(|reason| PluginError::Registry {
            registry: registry.clone(),
            action: "set up TLS".into(),
            reason,
        })?;
        let http = Client::builder(TokioExecutor::new()).build(connector);
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
            timeout: config.timeout,
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

    /// A request to `url` with `body`, and `headers`.
    fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(http::HeaderName, &str)],
        body: Bytes,
        authorization: Option<&HeaderValue>,
        action: &str,
    ) -> Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder().method(method).uri(url).header(
            USER_AGENT,
            concat!("seaworthy-plugin/", env!("CARGO_PKG_VERSION")),
        );
        for (name, value) in headers {
            builder = builder.header(name, *value);
        }
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value.clone());
        }
        builder
            .body(Full::new(body))
            .map_err(|e| self.error(action, format!("cannot make a request for {url}: {e}")))
    }

    /// Sends `request` under the deadline.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        action: &str,
    ) -> Result<Response<Incoming>> {
        match tokio::time::timeout(self.timeout, self.http.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(self.error(action, describe(&e))),
            Err(_) => Err(self.error(action, format!("no answer within {:?}", self.timeout))),
        }
    }

    /// Sends a request (made by `build` with the current `Authorization`), answering one
    /// authentication challenge if the registry sends one. A 401 or 403 after that is an
    /// [`PluginError::AuthFailed`].
    async fn send(
        &self,
        action: &str,
        build: impl Fn(Option<&HeaderValue>) -> Result<Request<Full<Bytes>>>,
    ) -> Result<Response<Incoming>> {
        let mut answered_challenge = false;
        loop {
            let current = self
                .authorization
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let response = self.exchange(build(current.as_ref())?, action).await?;
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
        let mut url = format!(
            "{realm}{}scope={}",
            if realm.contains('?') { '&' } else { '?' },
            encode(&scope)
        );
        if let Some(service) = service {
            url.push_str(&format!("&service={}", encode(&service)));
        }
        let token_action = format!("{action} (getting a token from {realm})");
        let basic = self
            .credentials
            .as_ref()
            .and_then(|c| HeaderValue::from_str(&c.basic_header()).ok());
        let request = self.request(
            Method::GET,
            &url,
            &[],
            Bytes::new(),
            basic.as_ref(),
            &token_action,
        )?;
        let response = self.exchange(request, &token_action).await?;
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
        let body = self.body(response, &token_action, MAX_MANIFEST).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| self.error(&token_action, format!("unreadable token answer: {e}")))?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.error(&token_action, "the answer holds no token"))
    }

    /// `GET /v2/<path>` of the registry itself (not of the repository: `_catalog`,
    /// `<name>/tags/list`), a JSON document.
    pub(crate) async fn get_registry_json(&self, path: &str, action: &str) -> Result<Vec<u8>> {
        let url = format!("{}/v2/{path}", self.base);
        let response = self
            .send(action, |auth| {
                self.request(
                    Method::GET,
                    &url,
                    &[(ACCEPT, "application/json")],
                    Bytes::new(),
                    auth,
                    action,
                )
            })
            .await?;
        let response = self.expect(response, action, &[StatusCode::OK]).await?;
        self.body(response, action, MAX_MANIFEST).await
    }

    /// `GET /v2/<name>/manifests/<reference>`, accepting the OCI manifest media type.
    pub(crate) async fn get_manifest(&self, reference: &str) -> Result<FetchedManifest> {
        let action = format!(
            "fetch the manifest of {}/{}:{reference}",
            self.registry, self.repository
        );
        let url = self.url(&format!("manifests/{reference}"));
        let accept = format!(
            "{}, application/vnd.docker.distribution.manifest.v2+json",
            super::IMAGE_MANIFEST_MEDIA_TYPE
        );
        let response = self
            .send(&action, |auth| {
                self.request(
                    Method::GET,
                    &url,
                    &[(ACCEPT, &accept)],
                    Bytes::new(),
                    auth,
                    &action,
                )
            })
            .await?;
        let response = self.expect(response, &action, &[StatusCode::OK]).await?;
        let header_digest = header(response.headers(), "docker-content-digest");
        let bytes = self.body(response, &action, MAX_MANIFEST).await?;
        Ok(FetchedManifest {
            bytes,
            header_digest,
        })
    }

    /// `GET /v2/<name>/blobs/<digest>`, following redirects to storage (without the registry's
    /// credentials when the redirect leaves the registry).
    pub(crate) async fn get_blob(&self, digest: &str, limit: usize) -> Result<Vec<u8>> {
        let action = format!(
            "fetch blob {digest} of {}/{}",
            self.registry, self.repository
        );
        let url = self.url(&format!("blobs/{digest}"));
        let mut response = self
            .send(&action, |auth| {
                self.request(Method::GET, &url, &[], Bytes::new(), auth, &action)
            })
            .await?;
        for _ in 0..MAX_REDIRECTS {
            if !response.status().is_redirection() {
                break;
            }
            let Some(location) = header(response.headers(), LOCATION.as_str()) else {
                break;
            };
            let next = self.absolute(&location);
            let same_registry = next.starts_with(&format!("{}/", self.base));
            let auth = if same_registry {
                self.authorization
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            } else {
                None
            };
            let request = self.request(
                Method::GET,
                &next,
                &[],
                Bytes::new(),
                auth.as_ref(),
                &action,
            )?;
            response = self.exchange(request, &action).await?;
        }
        let response = self.expect(response, &action, &[StatusCode::OK]).await?;
        self.body(response, &action, limit).await
    }

    /// `location` as an absolute URL (registries may answer with a path).
    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        }
    }

    /// Whether the repository already has blob `digest` (`HEAD`).
    async fn has_blob(&self, digest: &str) -> Result<bool> {
        let action = format!(
            "check for blob {digest} in {}/{}",
            self.registry, self.repository
        );
        let url = self.url(&format!("blobs/{digest}"));
        let response = self
            .send(&action, |auth| {
                self.request(Method::HEAD, &url, &[], Bytes::new(), auth, &action)
            })
            .await?;
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
            .send(&action, |auth| {
                self.request(
                    Method::POST,
                    &start_url,
                    &[(CONTENT_LENGTH, "0")],
                    Bytes::new(),
                    auth,
                    &action,
                )
            })
            .await?;
        let response = self
            .expect(response, &action, &[StatusCode::ACCEPTED])
            .await?;
        let location = header(response.headers(), LOCATION.as_str())
            .ok_or_else(|| self.error(&action, "the upload answer has no Location"))?;
        let mut upload = self.absolute(&location);
        upload.push(if upload.contains('?') { '&' } else { '?' });
        upload.push_str("digest=");
        upload.push_str(&encode(digest));
        let body = Bytes::copy_from_slice(bytes);
        let response = self
            .send(&action, |auth| {
                self.request(
                    Method::PUT,
                    &upload,
                    &[(CONTENT_TYPE, "application/octet-stream")],
                    body.clone(),
                    auth,
                    &action,
                )
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
        let body = Bytes::copy_from_slice(bytes);
        let response = self
            .send(&action, |auth| {
                self.request(
                    Method::PUT,
                    &url,
                    &[(CONTENT_TYPE, media_type)],
                    body.clone(),
                    auth,
                    &action,
                )
            })
            .await?;
        let response = self
            .expect(response, &action, &[StatusCode::CREATED])
            .await?;
        Ok(header(response.headers(), "docker-content-digest"))
    }

    /// `response` if its status is one of `expected`, else an error with the registry's own
    /// message (its JSON `errors`, or the start of the body).
    async fn expect(
        &self,
        response: Response<Incoming>,
        action: &str,
        expected: &[StatusCode],
    ) -> Result<Response<Incoming>> {
        let status = response.status();
        if expected.contains(&status) {
            return Ok(response);
        }
        let body = self
            .body(response, action, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
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

    /// Reads a body of at most `limit` bytes, under the deadline.
    async fn body(
        &self,
        response: Response<Incoming>,
        action: &str,
        limit: usize,
    ) -> Result<Vec<u8>> {
        let mut body = response.into_body();
        let read = async {
            let mut out = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| self.error(action, describe(&e)))?;
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > limit {
                        return Err(
                            self.error(action, format!("the answer is larger than {limit} bytes"))
                        );
                    }
                    out.extend_from_slice(&data);
                }
            }
            Ok(out)
        };
        match tokio::time::timeout(self.timeout, read).await {
            Ok(result) => result,
            Err(_) => Err(self.error(
                action,
                format!("the answer did not arrive within {:?}", self.timeout),
            )),
        }
    }
}

/// Header `name` as text.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An error with its causes (the useful part is often the innermost).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn encodes_query_values() {
        assert_eq!(
            encode("repository:ns/kv:pull,push"),
            "repository%3Ans%2Fkv%3Apull%2Cpush"
        );
        assert_eq!(encode("a-b_c.d~"), "a-b_c.d~");
    }
}
