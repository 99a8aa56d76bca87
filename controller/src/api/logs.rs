//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: asks the pod's agent over MQTT and streams the answer.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use drover_proto::manifest::Kind;
use drover_proto::msg::{LogChunk, LogRequest};
use drover_proto::topic::NodeTopic;
use drover_proto::Message;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{ask, error_response, ApiState};
use crate::control::{ApiError, ApiRequest};
use crate::logs::LogRouter;
use crate::mqtt::Publisher;

/// How long the agent has to start answering.
const FIRST_ANSWER: Duration = Duration::from_secs(10);
/// How often a follow is renewed (the agent drops it after 30 s without renewal).
const RENEW: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
pub(super) struct LogQuery {
    namespace: Option<String>,
    container: Option<String>,
    #[serde(rename = "tailLines")]
    tail_lines: Option<u32>,
    follow: Option<bool>,
    previous: Option<bool>,
}

impl LogQuery {
    /// The query for a pod in `namespace` (the Kubernetes path names it).
    pub(super) fn in_namespace(mut self, namespace: String) -> LogQuery {
        self.namespace = Some(namespace);
        self
    }
}

/// Sends the request (again) to the agent.
fn send(publisher: &Publisher, topic: &str, request: &LogRequest) {
    if let Err(e) = publisher.send_sealed(
        topic.to_string(),
        &Message::LogRequest(request.clone()),
        false,
    ) {
        tracing::warn!(error = %e, "cannot encode a log request");
    }
}

/// Ends the request when the response is dropped (finished, or the client went away).
struct Session {
    router: LogRouter,
    publisher: Publisher,
    topic: String,
    request: LogRequest,
    chunks: mpsc::Receiver<LogChunk>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.router.close(self.request.id);
        if self.request.follow {
            let mut cancel = self.request.clone();
            cancel.cancel = true;
            send(&self.publisher, &self.topic, &cancel);
        }
    }
}

pub(super) async fn pod_log(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    let namespace = q.namespace.unwrap_or_else(|| "default".into());
    let pod = match ask(
        &state,
        ApiRequest::Get {
            kind: Kind::Pod,
            namespace,
            name: name.clone(),
        },
    )
    .await
    {
        Ok(pod) => pod,
        Err(e) => return error_response(e),
    };
    let Some(node) = pod["spec"]["nodeName"].as_str().map(str::to_string) else {
        return error_response(ApiError {
            status: 400,
            message: format!("pod \"{name}\" is not scheduled to a node yet"),
        });
    };
    let (id, chunks) = state.logs.open(&node);
    let request = LogRequest {
        id,
        pod_uid: pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        container: q.container.unwrap_or_default(),
        tail_lines: q.tail_lines.unwrap_or(0),
        previous: q.previous.unwrap_or(false),
        follow: q.follow.unwrap_or(false),
        cancel: false,
    };
    let topic = NodeTopic::LogRequest.for_node(&node);
    send(&state.publisher, &topic, &request);
    let mut session = Session {
        router: state.logs.clone(),
        publisher: state.publisher.clone(),
        topic,
        request,
        chunks,
    };
    let first = match tokio::time::timeout(FIRST_ANSWER, session.chunks.recv()).await {
        Ok(Some(chunk)) => chunk,
        _ => {
            return error_response(ApiError {
                status: 504,
                message: format!(
                    "node \"{node}\" did not answer the log request (is its agent connected?)"
                ),
            })
        }
    };
    if let Some(error) = first.error {
        return error_response(ApiError {
            status: 400,
            message: error,
        });
    }
    let stream = futures_util::stream::unfold(
        (Some(first), session, false),
        |(pending, mut session, finished)| async move {
            if finished {
                return None;
            }
            if let Some(chunk) = pending {
                let done = chunk.done;
                return Some((
                    Ok::<Bytes, std::io::Error>(Bytes::from(chunk.data)),
                    (None, session, done),
                ));
            }
            loop {
                let renew = tokio::time::sleep(RENEW);
                tokio::select! {
                    chunk = session.chunks.recv() => {
                        let chunk = chunk?;
                        let done = chunk.done;
                        return Some((Ok(Bytes::from(chunk.data)), (None, session, done)));
                    }
                    _ = renew, if session.request.follow => {
                        send(&session.publisher, &session.topic, &session.request);
                    }
                }
            }
        },
    );
    Body::from_stream(stream).into_response()
}
