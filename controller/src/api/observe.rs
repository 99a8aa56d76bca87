//! Counts and times every API request by verb, resource and status code.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::request_info;
use crate::metrics::Metrics;

/// Middleware: records the request in `drover_api_requests_total` and its latency (for a
/// watch, until its stream starts).
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let info = request_info::parse(
        request.method().as_str(),
        request.uri().path(),
        request.uri().query(),
    );
    // Non-resource paths are few and fixed; anything else (probes of unknown paths) is
    // folded into one label so a scanner cannot create series at will.
    let resource = if info.is_resource {
        match super::resources::RESOURCES
            .iter()
            .find(|r| r.plural == info.resource && r.group == info.group)
        {
            Some(_) => info.resource_label(),
            None => "unknown".to_string(),
        }
    } else {
        non_resource_label(request.uri().path()).to_string()
    };
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.api_request(
        info.verb,
        &resource,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

fn non_resource_label(path: &str) -> &'static str {
    match path {
        "/healthz" | "/livez" | "/readyz" => "health",
        "/metrics" => "metrics",
        "/version" => "version",
        "/api" | "/apis" | "/api/v1" => "discovery",
        p if p.starts_with("/apis/") && p.split('/').count() <= 4 => "discovery",
        p if p.starts_with("/openapi/") => "openapi",
        p if p.starts_with("/drover/") => "drover",
        _ => "other",
    }
}
