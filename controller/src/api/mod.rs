//! The Kubernetes API that `kubectl`, client libraries and the `drover` CLI all talk to.
//! Handlers translate HTTP into requests for the control loop and its answers back into
//! HTTP.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::control::{ApiError, ApiRequest, Input};
use crate::logs::LogRouter;
use crate::metrics::Metrics;
use crate::mqtt::Publisher;

pub mod auth;
pub mod discovery;
pub mod kubeconfigs;
mod logs;
mod objects;
mod observe;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod request_info;
pub mod resources;
pub mod reviews;
pub mod selectors;
pub mod status;
pub mod table;
pub mod tls;
pub mod watch;

#[derive(Clone)]
struct ApiState {
    inputs: mpsc::Sender<Input>,
    metrics: Arc<Metrics>,
    publisher: Publisher,
    logs: LogRouter,
    watch: watch::WatchHub,
}

/// The API's routes.
pub fn router(
    inputs: mpsc::Sender<Input>,
    metrics: Arc<Metrics>,
    publisher: Publisher,
    logs: LogRouter,
    watch: watch::WatchHub,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .merge(objects::routes())
        .merge(discovery::router())
        .merge(openapi::router())
        .with_state(ApiState {
            inputs,
            metrics: metrics.clone(),
            publisher,
            logs,
            watch,
        })
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            observe::observe,
        ))
}

fn error_response(error: ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({"error": error.message}))).into_response()
}

/// Asks the control loop.
async fn ask(state: &ApiState, request: ApiRequest) -> Result<serde_json::Value, ApiError> {
    let (reply, answer) = oneshot::channel();
    if state.inputs.send(Input::Api(request, reply)).await.is_err() {
        return Err(ApiError {
            status: 503,
            message: "controller is shutting down".into(),
        });
    }
    answer.await.unwrap_or_else(|_| {
        Err(ApiError {
            status: 500,
            message: "request was dropped".into(),
        })
    })
}

async fn metrics_text(State(state): State<ApiState>) -> Response {
    let (reply, snapshot) = oneshot::channel();
    if state.inputs.send(Input::Metrics(reply)).await.is_err() {
        return error_response(ApiError {
            status: 503,
            message: "controller is shutting down".into(),
        });
    }
    let snapshot = snapshot.await.unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        state.metrics.render(&snapshot),
    )
        .into_response()
}
