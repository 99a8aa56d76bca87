//! `GET /drover/v0/watch/{plural}`: a watch on plain HTTP until `?watch=true` is served on
//! the Kubernetes paths. Without a resourceVersion it starts from now (it has no list to
//! take initial events from).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use drover_proto::selector::LabelSelector;
use serde::Deserialize;

use super::{respond, BadWatch, Start, WatchHub, WatchParams, WatchQuery};
use crate::api::resources::RESOURCES;

#[derive(Deserialize)]
struct Scope {
    namespace: Option<String>,
    #[serde(rename = "labelSelector")]
    label_selector: Option<String>,
}

/// The route, with its own state.
pub fn routes(hub: WatchHub) -> Router {
    Router::new()
        .route("/drover/v0/watch/{resource}", get(watch))
        .with_state(hub)
}

async fn watch(
    State(hub): State<WatchHub>,
    Path(plural): Path<String>,
    Query(scope): Query<Scope>,
    Query(params): Query<WatchParams>,
) -> Response {
    let Some(resource) = RESOURCES.iter().find(|r| r.plural == plural) else {
        return BadWatch(format!(
            "the server doesn't have a resource type \"{plural}\""
        ))
        .into_response();
    };
    let selector = match LabelSelector::parse(scope.label_selector.as_deref().unwrap_or("")) {
        Ok(selector) => selector,
        Err(e) => return BadWatch(e).into_response(),
    };
    let namespace = scope.namespace.filter(|_| resource.namespaced);
    let matches = Arc::new(move |o: &crate::store::StoredObject| selector.matches(&o.labels));
    match WatchQuery::new(resource, namespace, matches, &params) {
        Ok(mut query) => {
            if query.wants_snapshot() {
                query.start = Start::Now;
            }
            respond(&hub, query, None)
        }
        Err(bad) => bad.into_response(),
    }
}
