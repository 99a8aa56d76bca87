//! `/apis/drover.io/v1/kubeconfigs`: API tokens for new users, and
//! `/apis/drover.io/v1/jointokens`: tokens devices enroll with (both admin only, see
//! [`super::auth`]). A token is returned once, at creation; the store keeps its hash.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::auth::{status, Role};
use crate::control::{ApiError, ApiRequest, Input};
use crate::object::timestamp;
use crate::store::ApiTokenTable;

/// The collection's path.
pub const PATH: &str = "/apis/drover.io/v1/kubeconfigs";

/// The join tokens' collection path.
pub const JOIN_TOKENS: &str = "/apis/drover.io/v1/jointokens";

#[derive(Clone)]
struct KubeconfigState {
    inputs: mpsc::Sender<Input>,
    tokens: ApiTokenTable,
}

/// The routes; authentication and the admin-only rule come from the layer around them.
pub fn router(inputs: mpsc::Sender<Input>, tokens: ApiTokenTable) -> Router {
    Router::new()
        .route(PATH, get(list).post(create))
        .route(&format!("{PATH}/{{name}}"), delete(remove))
        .route(JOIN_TOKENS, get(list_join_tokens).post(create_join_token))
        .route(&format!("{JOIN_TOKENS}/{{id}}"), delete(delete_join_token))
        .with_state(KubeconfigState { inputs, tokens })
}

fn failure(error: ApiError) -> Response {
    let code = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = match error.status {
        400 => "BadRequest",
        404 => "NotFound",
        409 => "AlreadyExists",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    };
    status(code, reason, &error.message, None)
}

async fn ask(state: &KubeconfigState, request: ApiRequest) -> Result<serde_json::Value, ApiError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
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

/// A DNS label: kubeconfig names become user names in messages and context names.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    #[serde(default)]
    role: Option<String>,
}

async fn create(State(state): State<KubeconfigState>, Json(body): Json<CreateBody>) -> Response {
    let bad = |message: String| {
        failure(ApiError {
            status: 400,
            message,
        })
    };
    if !valid_name(&body.name) {
        return bad(format!(
            "invalid name {:?}: lowercase letters, digits and '-', at most 63",
            body.name
        ));
    }
    let role = match body.role.as_deref().unwrap_or("view").parse::<Role>() {
        Ok(role) => role,
        Err(message) => return bad(message),
    };
    let token = match crate::kubeconfig::new_token() {
        Ok(token) => token,
        Err(e) => {
            return failure(ApiError {
                status: 500,
                message: e.to_string(),
            })
        }
    };
    let stored = crate::kubeconfig::stored(&body.name, role, &token);
    match ask(&state, ApiRequest::CreateApiToken { token: stored }).await {
        Ok(_) => (
            StatusCode::CREATED,
            Json(json!({
                "apiVersion": "drover.io/v1",
                "kind": "Kubeconfig",
                "metadata": {"name": body.name},
                "role": role.as_str(),
                "token": token,
            })),
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

async fn list(State(state): State<KubeconfigState>) -> Response {
    let items: Vec<_> = state
        .tokens
        .list()
        .into_iter()
        .map(|t| {
            json!({
                "apiVersion": "drover.io/v1",
                "kind": "Kubeconfig",
                "metadata": {"name": t.name, "creationTimestamp": timestamp(t.created_at)},
                "role": t.role,
            })
        })
        .collect();
    Json(json!({
        "apiVersion": "drover.io/v1",
        "kind": "KubeconfigList",
        "metadata": {},
        "items": items,
    }))
    .into_response()
}

async fn remove(State(state): State<KubeconfigState>, Path(name): Path<String>) -> Response {
    match ask(&state, ApiRequest::DeleteApiToken { name: name.clone() }).await {
        Ok(_) => status_success(&name),
        Err(e) => failure(e),
    }
}

fn status_success(name: &str) -> Response {
    status_success_of(name, "kubeconfigs")
}

fn status_success_of(name: &str, kind: &str) -> Response {
    Json(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": "drover.io", "kind": kind},
    }))
    .into_response()
}

#[derive(Deserialize)]
struct JoinTokenSpec {
    /// e.g. `24h`; absent: never expires.
    ttl: Option<String>,
    uses: Option<u32>,
    #[serde(default)]
    labels: Vec<String>,
}

async fn create_join_token(
    State(state): State<KubeconfigState>,
    Json(spec): Json<JoinTokenSpec>,
) -> Response {
    let bad = |message: String| {
        failure(ApiError {
            status: 400,
            message,
        })
    };
    let ttl = match spec
        .ttl
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
    {
        Ok(ttl) => ttl,
        Err(e) => return bad(format!("invalid ttl: {e}")),
    };
    let mut labels = Vec::new();
    for label in &spec.labels {
        match drover_agent::config::parse_label(label) {
            Ok(pair) => labels.push(pair),
            Err(message) => return bad(message),
        }
    }
    let request = ApiRequest::CreateToken {
        ttl,
        uses: spec.uses,
        labels,
    };
    match ask(&state, request).await {
        Ok(mut token) => {
            token["apiVersion"] = json!("drover.io/v1");
            token["kind"] = json!("JoinToken");
            (StatusCode::CREATED, Json(token)).into_response()
        }
        Err(e) => failure(e),
    }
}

async fn list_join_tokens(State(state): State<KubeconfigState>) -> Response {
    match ask(&state, ApiRequest::ListTokens).await {
        Ok(list) => Json(json!({
            "apiVersion": "drover.io/v1",
            "kind": "JoinTokenList",
            "metadata": {},
            "items": list["items"],
        }))
        .into_response(),
        Err(e) => failure(e),
    }
}

async fn delete_join_token(
    State(state): State<KubeconfigState>,
    Path(id): Path<String>,
) -> Response {
    match ask(&state, ApiRequest::DeleteToken { id: id.clone() }).await {
        Ok(_) => status_success_of(&id, "jointokens"),
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for name in ["viewer", "ci-bot", "a1"] {
            assert!(valid_name(name), "{name}");
        }
        for name in ["", "Viewer", "-x", "x-", "a b", "a/b", &"x".repeat(64)] {
            assert!(!valid_name(name), "{name}");
        }
    }
}
