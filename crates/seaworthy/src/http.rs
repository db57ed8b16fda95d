//! An HTTP client bound to a container's published port.

use crate::container::Container;
use crate::error::{Error, Result};

/// A [`reqwest::Client`] with a base URL: `http://HOST:PORT`. Paths are relative to it.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    base: String,
}

impl HttpClient {
    /// The base URL, `http://host:port`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// A request with `method` to `path`.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    /// `PUT path`.
    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::PUT, path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::DELETE, path)
    }

    /// The underlying client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Container {
    /// An HTTP client for published TCP `port` (`c.http(80)?.get("/health").send().await`).
    /// It follows up to 10 redirects, to any host (reqwest's default).
    pub fn http(&self, port: u16) -> Result<HttpClient> {
        self.http_with_redirects(port, reqwest::redirect::Policy::default())
    }

    /// [`http`](Self::http) with the redirect policy `redirects`: for example
    /// `reqwest::redirect::Policy::none()` to hand a redirect back as it came instead of
    /// following it to wherever it points.
    pub fn http_with_redirects(
        &self,
        port: u16,
        redirects: reqwest::redirect::Policy,
    ) -> Result<HttpClient> {
        let host_port = self.host_port(port)?;
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|source| Error::Http {
                container: self.name().to_string(),
                source,
            })?;
        Ok(HttpClient {
            client,
            base: format!(
                "http://{}",
                crate::engine::host_with_port(self.host(), host_port)
            ),
        })
    }
}
