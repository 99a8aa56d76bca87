//! Kubernetes resource paths: `/api/v1/…` and `/apis/{group}/{version}/…`, translated into
//! [`KubeRequest`]s for the control loop. Every error is a `metav1.Status`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::Value;
use tokio::sync::oneshot;

use super::patch::PatchType;
use super::resources::{self, Resource};
use super::status::failure;
use super::ApiState;
use crate::control::{
    parse_body_text, DeleteOptions, Input, KubeError, KubeReply, KubeRequest, ListOptions,
    ListRequest, Propagation, RenderedList, WriteOptions,
};

/// The routes of every served group version.
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/{*rest}", any(core_group))
        .route("/apis/{group}/{version}/{*rest}", any(named_group))
}

/// What a path names.
#[derive(Debug, PartialEq)]
struct Target {
    resource: &'static Resource,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

/// Splits `namespaces/{ns}/{resource}/{name}/{sub}` or `{resource}/{name}/{sub}`.
fn parse_path(group: &str, version: &str, rest: &str) -> Result<Target, KubeError> {
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(KubeError::no_such_resource());
    }
    let find = |plural: &str| resources::find(group, version, plural);
    let (namespace, rest) = match segments.as_slice() {
        ["namespaces", ns, plural, rest @ ..]
            if find(plural).is_some_and(|r| r.namespaced) && rest.len() <= 2 =>
        {
            (Some(ns.to_string()), [&[*plural][..], rest].concat())
        }
        _ => (None, segments.clone()),
    };
    let resource = rest
        .first()
        .and_then(|plural| find(plural))
        .ok_or_else(KubeError::no_such_resource)?;
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 {
        return Err(KubeError::no_such_resource());
    }
    // A namespaced object is only reachable under its namespace.
    if resource.namespaced && namespace.is_none() && name.is_some() {
        return Err(KubeError::no_such_resource());
    }
    if let Some(sub) = &subresource {
        if resource.subresource(sub).is_none() {
            return Err(KubeError::no_such_resource());
        }
    }
    Ok(Target {
        resource,
        namespace,
        name,
        subresource,
    })
}

async fn core_group(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(state, "", "v1", &rest, method, uri, headers, body).await
}

async fn named_group(
    State(state): State<ApiState>,
    Path((group, version, rest)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(state, &group, &version, &rest, method, uri, headers, body).await
}

async fn ask(state: &ApiState, request: KubeRequest) -> KubeReply {
    let failed = |e| KubeReply {
        result: Err(e),
        warnings: Vec::new(),
    };
    control_answer(state, |reply| Input::Kube(request, reply), failed).await
}

async fn ask_list(state: &ApiState, request: ListRequest) -> Result<RenderedList, KubeError> {
    control_answer(state, |reply| Input::KubeList(request, reply), Err).await
}

/// Sends `input` (made with where to reply) to the control loop and awaits its answer;
/// `failed` makes the answer when there is none.
async fn control_answer<R>(
    state: &ApiState,
    input: impl FnOnce(oneshot::Sender<R>) -> Input,
    failed: impl Fn(KubeError) -> R,
) -> R {
    let (reply, answer) = oneshot::channel();
    if state.inputs.send(input(reply)).await.is_err() {
        return failed(KubeError::new(
            503,
            "ServiceUnavailable",
            "controller is shutting down",
        ));
    }
    match answer.await {
        Ok(answer) => answer,
        Err(_) => failed(KubeError::new(500, "InternalError", "request was dropped")),
    }
}

/// `Warning` headers, as kube-apiserver sends them (code 299, agent `-`, the text
/// quoted): kubectl prints each as `Warning: <text>`.
fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = header::HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query
        .get(name)
        .is_some_and(|v| matches!(v.as_str(), "" | "true" | "1"))
}

fn list_options(query: &HashMap<String, String>) -> Result<ListOptions, KubeError> {
    let limit = match query.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => Some(
            l.parse()
                .map_err(|_| KubeError::bad_request(format!("invalid limit: {l}")))?,
        ),
        None => None,
    };
    Ok(ListOptions {
        label_selector: query.get("labelSelector").cloned(),
        field_selector: query.get("fieldSelector").cloned(),
        limit,
        continue_token: query.get("continue").cloned(),
    })
}

fn write_options(query: &HashMap<String, String>) -> WriteOptions {
    WriteOptions {
        dry_run: query.get("dryRun").is_some_and(|v| v == "All"),
        field_manager: query.get("fieldManager").cloned(),
        force: flag(query, "force"),
    }
}

/// `DeleteOptions` from the query, overridden by a body when one is sent.
fn delete_options(
    query: &HashMap<String, String>,
    body: Option<&Value>,
) -> Result<DeleteOptions, KubeError> {
    let mut options = DeleteOptions {
        dry_run: query.get("dryRun").is_some_and(|v| v == "All"),
        ..Default::default()
    };
    if let Some(p) = query.get("propagationPolicy") {
        options.propagation = Propagation::parse(p)?;
    }
    if let Some(g) = query.get("gracePeriodSeconds") {
        options.grace_period_seconds = Some(
            g.parse()
                .map_err(|_| KubeError::bad_request(format!("invalid gracePeriodSeconds: {g}")))?,
        );
    }
    if flag(query, "orphanDependents") {
        options.propagation = Propagation::Orphan;
    }
    if let Some(body) = body {
        if let Some(p) = body["propagationPolicy"].as_str() {
            options.propagation = Propagation::parse(p)?;
        }
        if body["orphanDependents"].as_bool() == Some(true) {
            options.propagation = Propagation::Orphan;
        }
        if let Some(g) = body["gracePeriodSeconds"].as_i64() {
            options.grace_period_seconds = Some(g);
        }
        if body["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"))
        {
            options.dry_run = true;
        }
        options.resource_version = body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        options.uid = body["preconditions"]["uid"].as_str().map(str::to_string);
    }
    Ok(options)
}

/// Refuses bodies in encodings Drover does not read (CBOR, say), naming them.
fn readable_body(headers: &HeaderMap) -> Result<(), KubeError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media.is_empty()
        || media == "application/json"
        || media == "application/yaml"
        || media.ends_with("+json")
        || media.ends_with("+yaml")
        || media == super::protobuf::MEDIA_TYPE
    {
        return Ok(());
    }
    Err(KubeError::new(
        415,
        "UnsupportedMediaType",
        format!("the body of the request was in an unknown format ({media}) - Drover accepts application/json, application/yaml and (for the kinds kubectl sends so) application/vnd.kubernetes.protobuf"),
    ))
}

/// A body: JSON, YAML, or the protobuf kubectl's typed clients send (see
/// [`super::protobuf`] for the kinds it reads).
fn request_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, KubeError> {
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(super::protobuf::MEDIA_TYPE));
    if protobuf {
        return super::protobuf::decode(body).map_err(|e| match e {
            super::protobuf::DecodeError::Unsupported(m) => {
                KubeError::new(415, "UnsupportedMediaType", m)
            }
            super::protobuf::DecodeError::Invalid(m) => KubeError::bad_request(m),
        });
    }
    body_value(body)
}

fn body_value(body: &Bytes) -> Result<Value, KubeError> {
    let text =
        std::str::from_utf8(body).map_err(|_| KubeError::bad_request("the body is not UTF-8"))?;
    parse_body_text(text)
}

/// A watch of a collection: the list it starts from (when it starts with the current
/// objects) comes from the control loop like any list, then changes from the hub.
async fn watch(
    state: &ApiState,
    target: Target,
    uri: &Uri,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    use super::watch::{serve, WatchParams, WatchQuery};
    let resource = target.resource;
    if !resource.allows("watch") {
        return failure(&KubeError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let params = match Query::<WatchParams>::try_from_uri(uri) {
        Ok(Query(params)) => params,
        Err(e) => return failure(&KubeError::bad_request(e.to_string())),
    };
    let options = match list_options(query) {
        Ok(options) => options,
        Err(e) => return failure(&e),
    };
    let labels = match drover_proto::selector::LabelSelector::parse(
        options.label_selector.as_deref().unwrap_or(""),
    ) {
        Ok(selector) => selector,
        Err(e) => return failure(&KubeError::bad_request(e)),
    };
    let fields = match options.field_selector.as_deref() {
        Some(text) => match super::selectors::FieldSelector::parse(text)
            .and_then(|f| f.check(resource.kind).map(|()| f))
        {
            Ok(fields) => Some(fields),
            Err(e) => return failure(&KubeError::bad_request(e)),
        },
        None => None,
    };
    let kind = resource.kind;
    let event_fields = fields.clone();
    let event_labels = labels.clone();
    let matches: super::watch::Matcher = std::sync::Arc::new(move |object| {
        labels.matches(&object.labels)
            && fields
                .as_ref()
                .is_none_or(|f| f.matches(kind, &crate::object::to_json(object)))
    });
    let namespace = target.namespace.clone();
    let mut watch_query = match WatchQuery::new(resource, namespace.clone(), matches, &params) {
        Ok(q) => q,
        Err(bad) => return bad.into_response(),
    };
    // Events carry no labels: a label selector selects them only if it needs none.
    watch_query.event_matches = Some(std::sync::Arc::new(move |event: &Value| {
        event_labels.matches(&Default::default())
            && event_fields
                .as_ref()
                .is_none_or(|f| f.matches("Event", event))
    }));
    if wants_table(headers) {
        let include = include_object(query);
        // Columns come with the first event only, as kube-apiserver sends them.
        let first = std::sync::atomic::AtomicBool::new(true);
        watch_query.present = Some(std::sync::Arc::new(move |object: &Value| {
            let with_columns = first.swap(false, std::sync::atomic::Ordering::Relaxed);
            super::table::table_of_one(resource, object, chrono::Utc::now(), include, with_columns)
        }));
    }
    let open = state.metrics.watch_opened();
    let list = async {
        let request = KubeRequest::List {
            resource,
            namespace,
            options: ListOptions {
                limit: None,
                continue_token: None,
                ..options
            },
        };
        ask(state, request).await.result.map_err(|e| failure(&e))
    };
    let response = serve(&state.watch, watch_query, list).await;
    // Counted as open for as long as its stream is.
    let (parts, body) = response.into_parts();
    let stream = futures_util::StreamExt::map(body.into_data_stream(), move |chunk| {
        let _still_open = &open;
        chunk
    });
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

/// What each Table row carries (`?includeObject=`; metadata unless told).
fn include_object(query: &HashMap<String, String>) -> super::table::IncludeObject {
    match query.get("includeObject").map(String::as_str) {
        Some("None") => super::table::IncludeObject::None,
        Some("Object") => super::table::IncludeObject::Object,
        _ => super::table::IncludeObject::Metadata,
    }
}

/// Whether the client asked for a `meta.k8s.io` Table (what plain `kubectl get` asks for).
fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|accept| accept.split(',').next())
        .is_some_and(|first| first.contains("as=Table"))
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    state: ApiState,
    group: &str,
    version: &str,
    rest: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = Query::try_from_uri(&uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let target = match parse_path(group, version, rest) {
        Ok(t) => t,
        Err(e) => return failure(&e),
    };
    if target.subresource.as_deref() == Some("log") && method == Method::GET {
        let name = target.name.clone().unwrap_or_default();
        let namespace = target.namespace.clone().unwrap_or_else(|| "default".into());
        return match Query::<super::logs::LogQuery>::try_from_uri(&uri) {
            Ok(Query(q)) => {
                let response = super::logs::pod_log(
                    State(state),
                    Path(name),
                    Query(q.in_namespace(namespace)),
                )
                .await;
                as_status(response).await
            }
            Err(e) => failure(&KubeError::bad_request(e.to_string())),
        };
    }
    if method == Method::GET && target.name.is_none() && flag(&query, "watch") {
        return watch(&state, target, &uri, &query, &headers).await;
    }
    // An eviction, though answered with a Status, creates (201) as in Kubernetes.
    let eviction = target.subresource.as_deref() == Some("eviction");
    let created = method == Method::POST;
    // Kubernetes answers 202 when the object is still there (deletion pending).
    let pending_delete = method == Method::DELETE && target.name.is_some();
    let table = wants_table(&headers) && method == Method::GET;
    let resource = target.resource;
    let request = match request_of(target, method, &query, &headers, &body) {
        Ok(r) => r,
        Err(e) => return failure(&e),
    };
    let request = match request {
        KubeRequest::List {
            resource,
            namespace,
            options,
        } => {
            let list = ListRequest {
                resource,
                namespace,
                options,
            };
            let list = match ask_list(&state, list).await {
                Ok(list) => list,
                Err(e) => return failure(&e),
            };
            let body = if table {
                let items = list
                    .items
                    .iter()
                    .filter_map(|text| serde_json::from_str(text).ok());
                super::table::table_text(
                    resource,
                    items,
                    chrono::Utc::now(),
                    include_object(&query),
                    list.metadata,
                )
            } else {
                list.to_json_bytes()
            };
            return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
        other => other,
    };
    let KubeReply { result, warnings } = ask(&state, request).await;
    let response = match result {
        Ok(mut value) if table => {
            // A list's items are moved into the Table, not copied.
            let (items, metadata) = match value.get_mut("items").map(Value::take) {
                Some(Value::Array(items)) => (items, value["metadata"].take()),
                _ => (vec![value], serde_json::json!({})),
            };
            Json(super::table::table(
                resource,
                &items,
                chrono::Utc::now(),
                include_object(&query),
                metadata,
            ))
            .into_response()
        }
        Ok(value) => {
            let code = if created && (value["kind"] != "Status" || eviction) {
                StatusCode::CREATED
            } else if pending_delete && value["kind"] != "Status" {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            (code, Json(value)).into_response()
        }
        Err(e) => failure(&e),
    };
    with_warnings(response, &warnings)
}

/// A failed log response (the private API's `{"error": …}`) as a Status.
async fn as_status(response: Response) -> Response {
    let code = response.status();
    if code.is_success() {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let code = code.as_u16();
    failure(&KubeError::new(
        code,
        crate::control::reason_of(code),
        message,
    ))
}

/// The verb a method and path mean, checked against what the resource serves.
fn request_of(
    target: Target,
    method: Method,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<KubeRequest, KubeError> {
    let Target {
        resource,
        namespace,
        name,
        subresource,
    } = target;
    let verb = match (&method, &name) {
        (&Method::GET, Some(_)) => "get",
        (&Method::GET, None) if flag(query, "watch") => "watch",
        (&Method::GET, None) => "list",
        (&Method::POST, None) => "create",
        (&Method::POST, Some(_)) if subresource.is_some() => "create",
        (&Method::PUT, Some(_)) => "update",
        (&Method::PATCH, Some(_)) => "patch",
        (&Method::DELETE, Some(_)) => "delete",
        (&Method::DELETE, None) => "deletecollection",
        _ => "",
    };
    let allowed = match &subresource {
        Some(sub) => resource
            .subresource(sub)
            .is_some_and(|s| s.verbs.contains(&verb)),
        None => resource.allows(verb),
    };
    if !allowed {
        return Err(KubeError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    if verb == "watch" {
        return Err(KubeError::method_not_allowed(
            "watch is not served on this path yet",
        ));
    }
    if matches!(verb, "create" | "update") && !body.is_empty() {
        readable_body(headers)?;
    }
    let status_only = subresource.as_deref() == Some("status");
    let name = name.unwrap_or_default();
    Ok(match verb {
        "get" => KubeRequest::Get {
            resource,
            namespace,
            name,
        },
        "list" => KubeRequest::List {
            resource,
            namespace,
            options: list_options(query)?,
        },
        "create" if subresource.as_deref() == Some("eviction") => {
            let eviction = request_body(headers, body)?;
            let options = delete_options(query, eviction.get("deleteOptions"))?;
            KubeRequest::Evict {
                namespace: namespace.unwrap_or_else(|| "default".into()),
                name,
                options,
            }
        }
        "create" => KubeRequest::Create {
            resource,
            namespace,
            body: request_body(headers, body)?,
            options: write_options(query),
        },
        "update" => KubeRequest::Update {
            resource,
            namespace,
            name,
            body: request_body(headers, body)?,
            status_only,
            options: write_options(query),
        },
        "patch" => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let Some(patch_type) = PatchType::from_content_type(content_type) else {
                return Err(KubeError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"),
                ));
            };
            KubeRequest::Patch {
                resource,
                namespace,
                name,
                patch_type,
                body: body.to_vec(),
                status_only,
                options: write_options(query),
            }
        }
        "delete" => {
            let sent = (!body.is_empty())
                .then(|| request_body(headers, body))
                .transpose()?;
            KubeRequest::Delete {
                resource,
                namespace,
                name,
                options: delete_options(query, sent.as_ref())?,
            }
        }
        _ => {
            let sent = (!body.is_empty())
                .then(|| request_body(headers, body))
                .transpose()?;
            KubeRequest::DeleteCollection {
                resource,
                namespace,
                list: list_options(query)?,
                options: delete_options(query, sent.as_ref())?,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_bodies_are_decoded_or_refused_with_the_right_status() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            super::super::protobuf::MEDIA_TYPE.parse().unwrap(),
        );
        assert!(readable_body(&headers).is_ok());
        // `kubectl create namespace team` (kubectl 1.32).
        let namespace = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x08\x0a\x06\x0a\x04team";
        let value = request_body(&headers, &Bytes::from_static(namespace)).unwrap();
        assert_eq!(value["metadata"]["name"], "team");
        let deployment = b"k8s\0\x0a\x15\x0a\x07apps/v1\x12\x0aDeployment";
        let err = request_body(&headers, &Bytes::from_static(deployment)).unwrap_err();
        assert_eq!(err.code, 415);
        let truncated = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x08\x0a";
        let err = request_body(&headers, &Bytes::from_static(truncated)).unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn paths_name_resources_namespaces_objects_and_subresources() {
        let t = parse_path("", "v1", "namespaces/default/pods/web/log").unwrap();
        assert_eq!(t.resource.plural, "pods");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("log"));
        let t = parse_path("", "v1", "pods").unwrap();
        assert_eq!((t.namespace, t.name), (None, None));
        let t = parse_path("", "v1", "namespaces/kube-system").unwrap();
        assert_eq!(t.resource.plural, "namespaces");
        assert_eq!(t.name.as_deref(), Some("kube-system"));
        let t = parse_path("", "v1", "nodes/n1/status").unwrap();
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = parse_path("batch", "v1", "namespaces/a/jobs").unwrap();
        assert_eq!(t.resource.kind, "Job");
        assert_eq!(t.namespace.as_deref(), Some("a"));
        for bad in [
            ("", "v1", "deployments"),
            ("", "v1", "jobs"),
            ("", "v1", "pods/web"),
            ("", "v1", "namespaces/a/pods/web/exec"),
            ("batch", "v2", "jobs"),
            ("", "v1", "nodes/n1/status/x"),
        ] {
            let e = parse_path(bad.0, bad.1, bad.2).unwrap_err();
            assert_eq!(e.code, 404, "{bad:?}");
            assert_eq!(
                e.message,
                "the server could not find the requested resource"
            );
        }
    }

    #[test]
    fn delete_options_come_from_query_and_body() {
        let query = HashMap::from([("propagationPolicy".to_string(), "Orphan".to_string())]);
        let o = delete_options(&query, None).unwrap();
        assert_eq!(o.propagation, Propagation::Orphan);
        let body = serde_json::json!({"propagationPolicy": "Foreground", "gracePeriodSeconds": 0});
        let o = delete_options(&HashMap::new(), Some(&body)).unwrap();
        assert_eq!(o.propagation, Propagation::Foreground);
        assert_eq!(o.grace_period_seconds, Some(0));
        let query = HashMap::from([("propagationPolicy".to_string(), "Sideways".to_string())]);
        assert_eq!(delete_options(&query, None).unwrap_err().code, 400);
    }
}
