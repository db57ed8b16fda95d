//! HTTP responses, normalised for snapshots.

use std::collections::BTreeMap;

use seaworthy::reqwest;
use seaworthy::Container;

use crate::SnapshotError;

/// An HTTP response: status, headers (lower-case names, sorted) and body.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HttpSnapshot {
    /// The status code.
    pub status: u16,
    /// The headers kept (all, or those selected); repeated headers are joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: HttpBody,
}

/// A response body: JSON as structured data (so selectors reach into it), text as text, and
/// anything else by its size.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum HttpBody {
    /// A body whose content type is JSON and which parses as JSON.
    Json(serde_json::Value),
    /// A body that is valid UTF-8.
    Text(String),
    /// Any other body, as `[N bytes]`.
    Binary(String),
}

impl HttpSnapshot {
    /// Sends `GET path` to published `port` of `container`; `headers` selects the headers to keep
    /// (all when `None`).
    pub async fn get(
        container: &Container,
        port: u16,
        path: &str,
        headers: Option<&[&str]>,
    ) -> Result<HttpSnapshot, SnapshotError> {
        let response = container.http(port)?.get(path).send().await?;
        HttpSnapshot::from_response(response, headers).await
    }

    /// Records `response`, reading its body; `headers` selects the headers to keep (all when
    /// `None`, case-insensitive names).
    pub async fn from_response(
        response: reqwest::Response,
        headers: Option<&[&str]>,
    ) -> Result<HttpSnapshot, SnapshotError> {
        let status = response.status().as_u16();
        let mut kept: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in response.headers() {
            let name = name.as_str().to_ascii_lowercase();
            if let Some(wanted) = headers {
                if !wanted.iter().any(|w| w.eq_ignore_ascii_case(&name)) {
                    continue;
                }
            }
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            kept.entry(name)
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let is_json = kept
            .get("content-type")
            .map(|ct| ct.to_ascii_lowercase())
            .or_else(|| {
                response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())
            })
            .is_some_and(|ct| ct.contains("json"));
        let bytes = response.bytes().await?;
        Ok(HttpSnapshot {
            status,
            headers: kept,
            body: HttpBody::from_bytes(&bytes, is_json),
        })
    }
}

impl HttpBody {
    /// Classifies a body: JSON when `json` and it parses, text when UTF-8, else its size.
    pub fn from_bytes(bytes: &[u8], json: bool) -> HttpBody {
        if json {
            if let Ok(value) = serde_json::from_slice(bytes) {
                return HttpBody::Json(value);
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => HttpBody::Text(text.to_string()),
            Err(_) => HttpBody::Binary(format!("[{} bytes]", bytes.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_text_or_sized() {
        assert_eq!(
            HttpBody::from_bytes(br#"{"a":1}"#, true),
            HttpBody::Json(serde_json::json!({"a": 1}))
        );
        assert_eq!(
            HttpBody::from_bytes(br#"{"a":1}"#, false),
            HttpBody::Text(r#"{"a":1}"#.into())
        );
        assert_eq!(
            HttpBody::from_bytes(b"not json", true),
            HttpBody::Text("not json".into())
        );
        assert_eq!(
            HttpBody::from_bytes(&[0xff, 0xfe, 0x00], false),
            HttpBody::Binary("[3 bytes]".into())
        );
    }
}
