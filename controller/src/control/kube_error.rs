//! Failures of Kubernetes API requests, with what `metav1.Status` needs: a reason clients
//! branch on (`NotFound`, `Conflict`, …), the object it is about, and the invalid fields.

use super::ApiError;
use crate::api::resources::Resource;

/// One invalid field (`details.causes[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueForbidden`, …
    pub reason: &'static str,
    /// What is wrong with it.
    pub message: String,
    /// Path, e.g. `spec.template.spec.restartPolicy`.
    pub field: String,
}

/// The object a failure is about (`details`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// Object name.
    pub name: String,
    /// API group.
    pub group: String,
    /// Resource plural (Kubernetes puts the plural in `details.kind`).
    pub kind: String,
    /// Invalid fields.
    pub causes: Vec<Cause>,
}

/// A failed request, as `metav1.Status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeError {
    /// HTTP status code.
    pub code: u16,
    /// `metav1.StatusReason`.
    pub reason: &'static str,
    /// For people.
    pub message: String,
    /// What it is about, when one object is (boxed: errors travel in every `Result`).
    pub details: Option<Box<Details>>,
}

/// The answer to a Kubernetes API request.
pub type KubeResult = Result<serde_json::Value, KubeError>;

/// `pods` or `jobs.batch`, as Kubernetes names a resource in messages.
pub fn qualified(resource: &Resource) -> String {
    if resource.group.is_empty() {
        resource.plural.to_string()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// `Pod` or `Job.batch`, as Kubernetes names a kind in validation messages.
fn qualified_kind(resource: &Resource) -> String {
    if resource.group.is_empty() {
        resource.kind.to_string()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    }
}

fn details(resource: &Resource, name: &str) -> Option<Box<Details>> {
    Some(Box::new(Details {
        name: name.to_string(),
        group: resource.group.to_string(),
        kind: resource.plural.to_string(),
        causes: Vec::new(),
    }))
}

impl KubeError {
    /// A failure with no object details.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> KubeError {
        KubeError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> KubeError {
        KubeError::new(400, "BadRequest", message)
    }

    /// 404 for a path that names no served resource.
    pub fn no_such_resource() -> KubeError {
        KubeError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed(what: impl Into<String>) -> KubeError {
        KubeError::new(405, "MethodNotAllowed", what)
    }

    /// 404 `pods "x" not found`.
    pub fn not_found(resource: &Resource, name: &str) -> KubeError {
        KubeError {
            details: details(resource, name),
            ..KubeError::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", qualified(resource)),
            )
        }
    }

    /// 409 `jobs.batch "x" already exists`.
    pub fn already_exists(resource: &Resource, name: &str) -> KubeError {
        KubeError {
            details: details(resource, name),
            ..KubeError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", qualified(resource)),
            )
        }
    }

    /// 409 `Conflict` on a stale resourceVersion.
    pub fn conflict(resource: &Resource, name: &str) -> KubeError {
        KubeError {
            details: details(resource, name),
            ..KubeError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    qualified(resource)
                ),
            )
        }
    }

    /// 422 `Invalid`, one cause per field.
    pub fn invalid(resource: &Resource, name: &str, causes: Vec<Cause>) -> KubeError {
        let listed: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let listed = if listed.len() == 1 {
            listed.concat()
        } else {
            format!("[{}]", listed.join(", "))
        };
        KubeError {
            details: Some(Box::new(Details {
                causes,
                ..details(resource, name).map(|d| *d).unwrap_or_default()
            })),
            ..KubeError::new(
                422,
                "Invalid",
                format!(
                    "{} \"{name}\" is invalid: {listed}",
                    qualified_kind(resource)
                ),
            )
        }
    }

    /// 422 for one field whose value is not accepted.
    pub fn invalid_field(
        resource: &Resource,
        name: &str,
        field: &str,
        message: impl Into<String>,
    ) -> KubeError {
        KubeError::invalid(
            resource,
            name,
            vec![Cause {
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {}", message.into()),
                field: field.to_string(),
            }],
        )
    }
}

/// The reason Kubernetes gives for an HTTP code, for errors that only know their code.
pub fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

impl From<ApiError> for KubeError {
    fn from(e: ApiError) -> KubeError {
        KubeError::new(e.status, reason_of(e.status), e.message)
    }
}

impl From<anyhow::Error> for KubeError {
    fn from(e: anyhow::Error) -> KubeError {
        KubeError::new(500, "InternalError", format!("{e:#}"))
    }
}

impl From<crate::store::StoreError> for KubeError {
    fn from(e: crate::store::StoreError) -> KubeError {
        KubeError::new(500, "InternalError", e.to_string())
    }
}

impl std::fmt::Display for KubeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}
