//! `/openapi/v2` and `/openapi/v3`: OpenAPI generated from Drover's typed schema, built once
//! (on first request) and served with content hashes as ETags, as Kubernetes does.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

mod described;
pub mod document;
mod paths;
pub mod schemas;

/// A generated document and its hash.
pub struct Cached {
    /// The JSON text.
    pub body: String,
    /// Upper-case hex SHA-512 of `body` (Kubernetes' `hash` and `ETag`).
    pub hash: String,
}

impl Cached {
    fn new(value: &Value) -> Cached {
        let body = value.to_string();
        let digest = ring::digest::digest(&ring::digest::SHA512, body.as_bytes());
        Cached {
            hash: hex::encode_upper(digest.as_ref()),
            body,
        }
    }
}

/// Every document the process serves; they never change while it runs.
pub struct Documents {
    /// Swagger 2.0.
    pub v2: Cached,
    /// The OpenAPI 3.0 index.
    pub v3_index: Cached,
    /// OpenAPI 3.0 per group version, keyed `api/v1`, `apis/batch/v1`, …
    pub v3: BTreeMap<String, Cached>,
}

/// The documents, generated on first use.
pub fn documents() -> &'static Documents {
    static DOCUMENTS: OnceLock<Documents> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let definitions = schemas::definitions();
        let v3: BTreeMap<String, Cached> = document::group_versions()
            .map(|(group, version)| {
                (
                    document::v3_key(group, version),
                    Cached::new(&document::v3(&definitions, group, version)),
                )
            })
            .collect();
        let paths: serde_json::Map<String, Value> = v3
            .iter()
            .map(|(key, doc)| {
                (
                    key.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", doc.hash)}),
                )
            })
            .collect();
        Documents {
            v2: Cached::new(&document::v2(&definitions)),
            v3_index: Cached::new(&json!({ "paths": paths })),
            v3,
        }
    })
}

/// The OpenAPI routes.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/openapi/v2", get(v2))
        .route("/openapi/v3", get(v3_index))
        .route("/openapi/v3/{*path}", get(v3_group_version))
}

/// Whether `Accept` allows JSON. kubectl asks for protobuf first for `/openapi/v2`; Drover
/// writes JSON only, and says so with 406 when JSON is not acceptable at all.
fn accepts_json(headers: &HeaderMap) -> bool {
    let mut accepts = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| {
            m.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .peekable();
    if accepts.peek().is_none() {
        return true;
    }
    accepts.any(|m| {
        matches!(
            m.as_str(),
            "application/json" | "application/*" | "*/*" | ""
        )
    })
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = crate::api::status::failure_body(code.as_u16(), reason, message);
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Answers with `doc`, or 304 when the client has it. `immutable` when the URL names the
/// document's hash, so caches may keep it for good.
fn serve(headers: &HeaderMap, doc: &'static Cached, immutable: bool) -> Response {
    if !accepts_json(headers) {
        return status(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            "only application/json is supported",
        );
    }
    let etag = format!("\"{}\"", doc.hash);
    let cache = if immutable {
        "public, immutable"
    } else {
        "no-cache, private"
    };
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*");
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            doc.body.clone(),
        )
            .into_response()
    };
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

async fn v2(headers: HeaderMap) -> Response {
    serve(&headers, &documents().v2, false)
}

async fn v3_index(headers: HeaderMap) -> Response {
    serve(&headers, &documents().v3_index, false)
}

async fn v3_group_version(
    headers: HeaderMap,
    Path(path): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    match documents().v3.get(path.trim_end_matches('/')) {
        Some(doc) => {
            let immutable = query.get("hash").is_some_and(|h| *h == doc.hash);
            serve(&headers, doc, immutable)
        }
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

#[cfg(test)]
mod tests;
