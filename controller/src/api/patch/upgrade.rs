//! Handing fields written by updates to a server-side applier, as kubectl does when
//! `kubectl apply` moves from client-side to server-side apply: without it, a field an
//! applier's file no longer names stays forever, because the applier never owned it.

use serde_json::Value;

use super::managed::{self, Entry};

/// The `metadata.managedFields` of `object` with the fields of every `Update` entry of the
/// managers in `from` handed to `to`'s `Apply` entry (made if missing); `None` when `to`
/// already applies to it (handed over before) or none of `from` wrote to it.
pub fn hand_over(object: &Value, from: &[&str], to: &str) -> Option<Value> {
    let entries = managed::read(object);
    if entries.iter().any(|e| e.is(to, "Apply")) {
        return None;
    }
    let (taken, mut kept): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| from.iter().any(|m| e.is(m, "Update")));
    let first = taken.first()?;
    let mut applier = Entry {
        manager: to.to_string(),
        operation: "Apply".into(),
        subresource: String::new(),
        api_version: first.api_version.clone(),
        time: first.time.clone(),
        set: Default::default(),
    };
    for entry in &taken {
        applier.set = applier.set.union(&entry.set);
        applier.time = applier.time.max(entry.time.clone());
    }
    kept.push(applier);
    let mut upgraded = object.clone();
    managed::write(&mut upgraded, &kept);
    Some(upgraded["metadata"]["managedFields"].take())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(manager: &str, operation: &str, fields: Value, time: &str) -> Value {
        json!({"manager": manager, "operation": operation, "apiVersion": "apps/v1",
               "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields})
    }

    #[test]
    fn updates_of_the_old_writers_become_the_appliers_fields() {
        let object = json!({"metadata": {"managedFields": [
            entry("unknown", "Update", json!({"f:spec": {"f:minReadySeconds": {}}}), "2026-01-01T00:00:00Z"),
            entry("kubectl-rollout", "Update", json!({"f:spec": {"f:template": {}}}), "2026-01-02T00:00:00Z"),
            entry("before-first-apply", "Update", json!({"f:metadata": {"f:labels": {"f:app": {}}}}), "2026-01-03T00:00:00Z"),
        ]}});
        let fields = hand_over(&object, &["unknown", "before-first-apply"], "drover").unwrap();
        let managers: Vec<(&str, &str)> = fields
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["manager"].as_str().unwrap(),
                    e["operation"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            managers,
            [("kubectl-rollout", "Update"), ("drover", "Apply")]
        );
        let applier = &fields[1];
        assert_eq!(
            applier["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:minReadySeconds": {}}})
        );
        assert_eq!(applier["time"], "2026-01-03T00:00:00Z");
    }

    #[test]
    fn nothing_is_handed_over_twice_or_when_nobody_wrote() {
        let applied = json!({"metadata": {"managedFields": [
            entry("drover", "Apply", json!({"f:spec": {}}), "t"),
            entry("unknown", "Update", json!({"f:spec": {"f:x": {}}}), "t"),
        ]}});
        assert_eq!(hand_over(&applied, &["unknown"], "drover"), None);
        let others =
            json!({"metadata": {"managedFields": [entry("kubectl", "Update", json!({}), "t")]}});
        assert_eq!(hand_over(&others, &["unknown"], "drover"), None);
        assert_eq!(
            hand_over(&json!({"metadata": {}}), &["unknown"], "drover"),
            None
        );
    }
}
