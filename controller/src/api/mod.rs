//! The HTTP/JSON API the CLI talks to. Handlers translate HTTP into [`ApiRequest`]s for the
//! control loop and its answers back into HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use drover_proto::manifest::Kind;
use serde::Deserialize;
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
        .route("/drover/v0/apply", post(apply))
        .route("/drover/v0/{resource}", get(list))
        .route("/drover/v0/{resource}/{name}", get(get_one).delete(delete))
        .route("/drover/v0/{resource}/{name}/events", get(events))
        .route("/drover/v0/nodes/{name}/labels", post(label_node))
        .route("/drover/v0/nodes/{name}/taints", post(taint_node))
        .route(
            "/drover/v0/daemonsets/{name}/restart",
            post(rollout_restart),
        )
        .route(
            "/drover/v0/daemonsets/{name}/revisions",
            get(rollout_history),
        )
        .route("/drover/v0/daemonsets/{name}/undo", post(rollout_undo))
        .route("/drover/v0/jobs/from-cronjob", post(job_from_cronjob))
        .route("/drover/v0/nodes/{name}/cordon", post(cordon))
        .route("/drover/v0/nodes/{name}/uncordon", post(uncordon))
        .route("/drover/v0/pods/{name}/log", get(logs::pod_log))
        .route("/drover/v0/tokens", get(list_tokens).post(create_token))
        .route(
            "/drover/v0/tokens/{id}",
            axum::routing::delete(delete_token),
        )
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

async fn call(state: &ApiState, request: ApiRequest) -> Response {
    match ask(state, request).await {
        Ok(value) => Json(value).into_response(),
        Err(error) => error_response(error),
    }
}

fn kind_of(resource: &str) -> Result<Kind, ApiError> {
    resource.parse::<Kind>().map_err(|message| ApiError {
        status: 404,
        message,
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

#[derive(Deserialize)]
struct ApplyFile {
    name: String,
    content: String,
}

#[derive(Deserialize)]
struct ApplyBody {
    files: Vec<ApplyFile>,
}

async fn apply(State(state): State<ApiState>, Json(body): Json<ApplyBody>) -> Response {
    let files = body
        .files
        .into_iter()
        .map(|f| (f.name, f.content))
        .collect();
    call(&state, ApiRequest::Apply { files }).await
}

#[derive(Deserialize)]
struct ListQuery {
    namespace: Option<String>,
    #[serde(rename = "labelSelector")]
    label_selector: Option<String>,
}

async fn list(
    State(state): State<ApiState>,
    Path(resource): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    match kind_of(&resource) {
        Ok(kind) => {
            call(
                &state,
                ApiRequest::List {
                    kind,
                    namespace: q.namespace,
                    selector: q.label_selector,
                },
            )
            .await
        }
        Err(e) => error_response(e),
    }
}

#[derive(Deserialize)]
struct NamespaceQuery {
    namespace: Option<String>,
}

impl NamespaceQuery {
    fn namespace(self) -> String {
        self.namespace.unwrap_or_else(|| "default".into())
    }
}

type ObjectPath = Path<(String, String)>;

/// Answers a request about one object named in the path.
async fn about_object(
    state: &ApiState,
    (resource, name): (String, String),
    query: NamespaceQuery,
    request: fn(Kind, String, String) -> ApiRequest,
) -> Response {
    match kind_of(&resource) {
        Ok(kind) => call(state, request(kind, query.namespace(), name)).await,
        Err(e) => error_response(e),
    }
}

async fn get_one(
    State(state): State<ApiState>,
    Path(path): ObjectPath,
    Query(q): Query<NamespaceQuery>,
) -> Response {
    about_object(&state, path, q, |kind, namespace, name| ApiRequest::Get {
        kind,
        namespace,
        name,
    })
    .await
}

async fn events(
    State(state): State<ApiState>,
    Path(path): ObjectPath,
    Query(q): Query<NamespaceQuery>,
) -> Response {
    about_object(&state, path, q, |kind, namespace, name| {
        ApiRequest::Events {
            kind,
            namespace,
            name,
        }
    })
    .await
}

async fn delete(
    State(state): State<ApiState>,
    Path(path): ObjectPath,
    Query(q): Query<NamespaceQuery>,
) -> Response {
    about_object(&state, path, q, |kind, namespace, name| {
        ApiRequest::Delete {
            kind,
            namespace,
            name,
        }
    })
    .await
}

#[derive(Deserialize)]
struct LabelBody {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    overwrite: bool,
}

async fn label_node(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(body): Json<LabelBody>,
) -> Response {
    call(
        &state,
        ApiRequest::LabelNode {
            name,
            set: body.set,
            remove: body.remove,
            overwrite: body.overwrite,
        },
    )
    .await
}

#[derive(Deserialize)]
struct TaintBody {
    #[serde(default)]
    add: Vec<drover_proto::manifest::Taint>,
    #[serde(default)]
    remove: Vec<TaintKey>,
}

#[derive(Deserialize)]
struct TaintKey {
    key: String,
    effect: Option<drover_proto::manifest::TaintEffect>,
}

async fn taint_node(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(body): Json<TaintBody>,
) -> Response {
    let remove = body.remove.into_iter().map(|k| (k.key, k.effect)).collect();
    call(
        &state,
        ApiRequest::TaintNode {
            name,
            add: body.add,
            remove,
        },
    )
    .await
}

async fn rollout_restart(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<NamespaceQuery>,
) -> Response {
    call(
        &state,
        ApiRequest::RolloutRestart {
            namespace: q.namespace(),
            name,
        },
    )
    .await
}

async fn rollout_history(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<NamespaceQuery>,
) -> Response {
    call(
        &state,
        ApiRequest::RolloutHistory {
            namespace: q.namespace(),
            name,
        },
    )
    .await
}

#[derive(Deserialize)]
struct UndoBody {
    #[serde(rename = "toRevision")]
    to_revision: Option<u64>,
}

async fn rollout_undo(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<NamespaceQuery>,
    Json(body): Json<UndoBody>,
) -> Response {
    call(
        &state,
        ApiRequest::RolloutUndo {
            namespace: q.namespace(),
            name,
            to_revision: body.to_revision,
        },
    )
    .await
}

#[derive(Deserialize)]
struct FromCronJob {
    name: String,
    cronjob: String,
    namespace: Option<String>,
}

async fn job_from_cronjob(
    State(state): State<ApiState>,
    Json(body): Json<FromCronJob>,
) -> Response {
    let namespace = body.namespace.unwrap_or_else(|| "default".into());
    call(
        &state,
        ApiRequest::CreateJobFromCronJob {
            namespace,
            name: body.name,
            cronjob: body.cronjob,
        },
    )
    .await
}

async fn cordon(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    call(
        &state,
        ApiRequest::SetUnschedulable {
            name,
            unschedulable: true,
        },
    )
    .await
}

async fn uncordon(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    call(
        &state,
        ApiRequest::SetUnschedulable {
            name,
            unschedulable: false,
        },
    )
    .await
}

#[derive(Deserialize)]
struct TokenSpec {
    /// e.g. `24h`; absent: never expires.
    ttl: Option<String>,
    uses: Option<u32>,
    #[serde(default)]
    labels: Vec<String>,
}

async fn create_token(State(state): State<ApiState>, Json(spec): Json<TokenSpec>) -> Response {
    let ttl = match spec
        .ttl
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
    {
        Ok(ttl) => ttl,
        Err(e) => {
            return error_response(ApiError {
                status: 400,
                message: format!("invalid ttl: {e}"),
            })
        }
    };
    let mut labels = Vec::new();
    for label in &spec.labels {
        match drover_agent::config::parse_label(label) {
            Ok(pair) => labels.push(pair),
            Err(message) => {
                return error_response(ApiError {
                    status: 400,
                    message,
                })
            }
        }
    }
    call(
        &state,
        ApiRequest::CreateToken {
            ttl,
            uses: spec.uses,
            labels,
        },
    )
    .await
}

async fn list_tokens(State(state): State<ApiState>) -> Response {
    call(&state, ApiRequest::ListTokens).await
}

async fn delete_token(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    call(&state, ApiRequest::DeleteToken { id }).await
}
