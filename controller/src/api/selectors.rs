//! Field selectors (`fieldSelector=spec.nodeName=n1,status.phase!=Failed`) and the fields
//! each resource can be selected by, as Kubernetes registers them.

use serde_json::Value;

/// One requirement: a field equals (or differs from) a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// Field path, e.g. `spec.nodeName`.
    pub field: String,
    /// `!=` rather than `=`/`==`.
    pub negated: bool,
    /// Value compared with.
    pub value: String,
}

/// A parsed field selector; the empty one matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// Every requirement must hold.
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `a=b,c!=d`. Errors read as Kubernetes' do.
    pub fn parse(text: &str) -> Result<FieldSelector, String> {
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, negated, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                ));
            };
            requirements.push(FieldRequirement {
                field: field.trim().to_string(),
                negated,
                value: value.trim().to_string(),
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Checks every field is selectable for `kind`: `field label not supported: x`.
    pub fn check(&self, kind: &str) -> Result<(), String> {
        for r in &self.requirements {
            if field_pointer(kind, &r.field).is_none() {
                return Err(format!("field label not supported: {}", r.field));
            }
        }
        Ok(())
    }

    /// Whether `object` (as the API shows it, of kind `kind`) satisfies every requirement.
    /// A missing field counts as the empty string, as in Kubernetes.
    pub fn matches(&self, kind: &str, object: &Value) -> bool {
        self.matches_by(|field| {
            field_pointer(kind, field)
                .and_then(|p| object.pointer(&p))
                .map(scalar_text)
                .unwrap_or_default()
        })
    }

    /// Whether the fields, as `field_text` reads them (empty when absent), satisfy every
    /// requirement; for objects not held as JSON.
    pub fn matches_by(&self, field_text: impl Fn(&str) -> String) -> bool {
        self.requirements
            .iter()
            .all(|r| (field_text(&r.field) == r.value) != r.negated)
    }

    /// Whether every requirement names one of `fields`.
    pub fn names_only(&self, fields: &[&str]) -> bool {
        self.requirements
            .iter()
            .all(|r| fields.contains(&r.field.as_str()))
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The JSON pointer of a selectable field of `kind`; `None`: not selectable.
fn field_pointer(kind: &str, field: &str) -> Option<String> {
    let generic = matches!(field, "metadata.name" | "metadata.namespace");
    let specific = match kind {
        "Pod" => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "status.phase"
                | "status.podIP"
        ),
        "Node" => field == "spec.unschedulable",
        "Event" => matches!(
            field,
            "involvedObject.kind"
                | "involvedObject.namespace"
                | "involvedObject.name"
                | "involvedObject.uid"
                | "involvedObject.apiVersion"
                | "involvedObject.resourceVersion"
                | "involvedObject.fieldPath"
                | "reason"
                | "reportingComponent"
                | "source"
                | "type"
        ),
        "Job" => field == "status.successful",
        "Namespace" => field == "status.phase",
        _ => false,
    };
    if !(generic || specific) {
        return None;
    }
    let path = if kind == "Event" && field == "source" {
        "source.component"
    } else {
        field
    };
    Some(format!("/{}", path.replace('.', "/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_inequality_and_missing_fields() {
        let pod = json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert!(s.check("Pod").is_ok());
        assert!(s.matches("Pod", &pod));
        assert!(!FieldSelector::parse("spec.nodeName==n2")
            .unwrap()
            .matches("Pod", &pod));
        let unbound = json!({"metadata": {"name": "b"}, "spec": {}});
        assert!(FieldSelector::parse("spec.nodeName=")
            .unwrap()
            .matches("Pod", &unbound));
        assert!(FieldSelector::parse("").unwrap().matches("Pod", &pod));
    }

    #[test]
    fn unsupported_fields_and_syntax_are_refused() {
        let s = FieldSelector::parse("spec.image=x").unwrap();
        assert_eq!(
            s.check("Pod").unwrap_err(),
            "field label not supported: spec.image"
        );
        assert!(FieldSelector::parse("spec.nodeName").is_err());
        assert!(FieldSelector::parse("spec.nodeName=x")
            .unwrap()
            .check("Job")
            .is_err());
    }

    #[test]
    fn events_select_by_involved_object() {
        let event = json!({"involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u1"}, "reason": "Scheduled", "type": "Normal", "source": {"component": "drover"}});
        let s = FieldSelector::parse("involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=Pod,involvedObject.uid=u1").unwrap();
        assert!(s.check("Event").is_ok());
        assert!(s.matches("Event", &event));
        assert!(FieldSelector::parse("source=drover,type!=Warning")
            .unwrap()
            .matches("Event", &event));
    }
}
