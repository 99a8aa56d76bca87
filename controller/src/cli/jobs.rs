//! `drover create job --from=cronjob/X` and `drover wait`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::{resource, Client};

/// A Job run now from `cronjob`'s template, as `kubectl create job --from` builds it: the
/// template's labels and annotations, `cronjob.kubernetes.io/instantiate: manual`, and the
/// CronJob as its controller.
pub fn job_from_cronjob(cronjob: &Value, name: &str) -> Value {
    let template = &cronjob["spec"]["jobTemplate"];
    let mut annotations = Map::new();
    annotations.insert("cronjob.kubernetes.io/instantiate".into(), json!("manual"));
    if let Some(own) = template["metadata"]["annotations"].as_object() {
        annotations.extend(own.clone());
    }
    let mut metadata = json!({
        "name": name,
        "namespace": cronjob["metadata"]["namespace"],
        "annotations": annotations,
        "ownerReferences": [{
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": cronjob["metadata"]["name"],
            "uid": cronjob["metadata"]["uid"],
            "controller": true,
        }],
    });
    if let Some(labels) = template["metadata"]["labels"].as_object() {
        metadata["labels"] = json!(labels);
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": template["spec"],
    })
}

/// `create` verbs.
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create a Job now from a CronJob's template: create job NAME --from=cronjob/X
    Job {
        /// Name of the new Job
        name: String,
        /// cronjob/NAME
        #[arg(long = "from")]
        from: String,
        /// Namespace
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
}

/// `drover create job NAME --from=cronjob/X`.
pub fn create(client: &Client, command: CreateCommand) -> anyhow::Result<()> {
    let CreateCommand::Job {
        name,
        from,
        namespace,
    } = command;
    let (kind_name, cronjob) = from.split_once('/').context("--from takes cronjob/NAME")?;
    if resource::resolve(kind_name)?.kind != "CronJob" {
        bail!("--from must name a cronjob (cronjob/NAME)");
    }
    let cronjob = client.get(
        &format!("/apis/batch/v1/namespaces/{namespace}/cronjobs/{cronjob}"),
        &[],
    )?;
    client.post(
        &format!("/apis/batch/v1/namespaces/{namespace}/jobs"),
        &job_from_cronjob(&cronjob, &name),
    )?;
    println!("job.batch/{name} created");
    Ok(())
}

/// `wait` flags.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// job/NAME
    pub resource: String,
    /// condition=Complete or condition=Failed; a Job that finished the other way ends the
    /// wait at once (exit 1, with its reason)
    #[arg(long = "for")]
    pub condition: String,
    /// Give up after this long
    #[arg(long, default_value = "30s", value_parser = drover_agent::config::parse_duration)]
    pub timeout: Duration,
    /// Namespace
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

/// `drover wait --for=condition=X job/NAME`: exits 0 once the condition is true, 1 on
/// timeout (kubectl's behaviour), and 1 at once when it never can be (where kubectl waits
/// out its timeout).
pub fn wait(client: &Client, args: WaitArgs) -> anyhow::Result<()> {
    let wanted = args
        .condition
        .strip_prefix("condition=")
        .context("--for takes condition=NAME (e.g. condition=Complete)")?;
    let (wanted, value) = wanted.split_once('=').unwrap_or((wanted, "True"));
    let (kind_name, name) = args
        .resource
        .split_once('/')
        .context("name the object as KIND/NAME, e.g. job/pi")?;
    let resource = resource::resolve(kind_name)?;
    let path = resource::object(resource, &args.namespace, name);
    let deadline = Instant::now() + args.timeout;
    loop {
        let object = client.get(&path, &[])?;
        match condition_state(&object, wanted, value) {
            Waiting::Met => {
                println!(
                    "{}/{name} condition met",
                    super::print_table::kind_prefix(resource)
                );
                return Ok(());
            }
            Waiting::Never(reason) => bail!("{}/{name} {reason}", resource.singular),
            Waiting::NotYet => {}
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out waiting for the condition on {}/{name}",
                resource.plural
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where a wait for condition `wanted`=`value` stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Waiting {
    /// The condition holds.
    Met,
    /// Not yet.
    NotYet,
    /// It never will: the Job finished the other way (with why).
    Never(String),
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"].as_array()?.iter().find(|c| {
        c["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
    })
}

/// Whether `object` has condition `wanted` with status `value`; a Job that failed while
/// waiting for `Complete` (or completed while waiting for `Failed`) never will.
pub fn condition_state(object: &Value, wanted: &str, value: &str) -> Waiting {
    if condition(object, wanted).is_some_and(|c| c["status"] == value) {
        return Waiting::Met;
    }
    if object["kind"] == "Job" && value == "True" {
        let opposite = match wanted.to_ascii_lowercase().as_str() {
            "complete" => Some("Failed"),
            "failed" => Some("Complete"),
            _ => None,
        };
        if let Some(c) = opposite
            .and_then(|o| condition(object, o))
            .filter(|c| c["status"] == "True")
        {
            let why = [c["reason"].as_str(), c["message"].as_str()]
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            let state = if opposite == Some("Failed") {
                "failed"
            } else {
                "completed"
            };
            return Waiting::Never(if why.is_empty() {
                format!("{state}: the condition {wanted} will never be met")
            } else {
                format!("{state} ({why}): the condition {wanted} will never be met")
            });
        }
    }
    Waiting::NotYet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_job_is_built_as_kubectl_builds_it() {
        let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "ops", "uid": "cj-uid"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {
                "metadata": {"labels": {"app": "hello"}, "annotations": {"team": "a"}},
                "spec": {"template": {"spec": {"containers": []}}}}}});
        let job = job_from_cronjob(&cronjob, "hello-now");
        assert_eq!(job["kind"], "Job");
        assert_eq!(job["metadata"]["name"], "hello-now");
        assert_eq!(job["metadata"]["namespace"], "ops");
        assert_eq!(job["metadata"]["labels"], json!({"app": "hello"}));
        assert_eq!(
            job["metadata"]["annotations"],
            json!({"cronjob.kubernetes.io/instantiate": "manual", "team": "a"})
        );
        assert_eq!(
            job["metadata"]["ownerReferences"],
            json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello", "uid": "cj-uid", "controller": true}])
        );
        assert_eq!(job["spec"], cronjob["spec"]["jobTemplate"]["spec"]);
    }

    #[test]
    fn waiting_for_complete_on_a_failed_job_ends_at_once() {
        let job = |t: &str| {
            json!({"kind": "Job", "status": {"conditions": [
                {"type": t, "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}})
        };
        assert_eq!(
            condition_state(&job("Complete"), "complete", "True"),
            Waiting::Met
        );
        let Waiting::Never(why) = condition_state(&job("Failed"), "Complete", "True") else {
            panic!("should never be met");
        };
        assert!(why.contains("BackoffLimitExceeded"), "{why}");
        assert_eq!(
            condition_state(&json!({"kind": "Job", "status": {}}), "Complete", "True"),
            Waiting::NotYet
        );
    }
}
