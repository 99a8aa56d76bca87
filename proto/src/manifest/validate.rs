//! Semantic rules serde cannot express: names, required relations, per-kind restrictions.

use std::collections::{BTreeMap, HashSet};

use super::parse::Manifest;
use super::types::*;

type FieldErrors = Vec<(String, String)>;

/// Whether `s` is an RFC 1123 label: 1–63 lowercase alphanumerics or `-`, alphanumeric at
/// both ends.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Whether `s` is an RFC 1123 subdomain: at most 253 characters of dot-separated labels.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Whether `s` can be a pod UID: 1–64 characters of `[a-z0-9-]`, alphanumeric at both ends.
///
/// Agents build file names from UIDs (records, logs, emptyDir volumes, cgroups), so this is
/// what keeps a UID from the wire from naming a path: no `/`, no `.`, no uppercase (the
/// RFC 4122 UUIDs Drover generates are lowercase hex and `-`, 36 characters).
pub fn is_valid_uid(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Checks a label or annotation key (`[prefix/]name`).
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if !is_dns_subdomain(prefix) {
            return Err(format!(
                "invalid key \"{key}\": the prefix must be a DNS subdomain"
            ));
        }
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "invalid key \"{key}\": the name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ));
    }
    Ok(())
}

/// Checks a label value (empty, or a qualified name part).
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_qualified_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value \"{value}\": at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ))
    }
}

/// Every rule violated by `manifest`, as (field path, message).
pub fn validate(manifest: &Manifest) -> FieldErrors {
    let mut errors = Vec::new();
    let meta = manifest.metadata();
    validate_name(manifest, &mut errors);
    if let Some(ns) = &meta.namespace {
        if !is_dns_label(ns) {
            errors.push((
                "metadata.namespace".into(),
                format!("invalid namespace \"{ns}\": must be an RFC 1123 label"),
            ));
        }
    }
    validate_labels("metadata.labels", &meta.labels, &mut errors);
    validate_annotations("metadata.annotations", &meta.annotations, &mut errors);
    match manifest {
        Manifest::Pod(pod) => validate_pod_spec("spec", &pod.spec, &mut errors),
        Manifest::Job(job) => validate_job_spec("spec", &job.spec, &mut errors),
        Manifest::CronJob(cj) => validate_cronjob_spec(&cj.spec, &mut errors),
        Manifest::DaemonSet(ds) => validate_daemonset_spec(&ds.spec, &mut errors),
    }
    let pod_spec = match manifest {
        Manifest::Pod(pod) => Some(("spec", &pod.spec)),
        Manifest::Job(job) => Some(("spec.template.spec", &job.spec.template.spec)),
        Manifest::CronJob(cj) => Some((
            "spec.jobTemplate.spec.template.spec",
            &cj.spec.job_template.spec.template.spec,
        )),
        // Ignored there (crate::manifest::ignored): one pod per node anyway.
        Manifest::DaemonSet(_) => None,
    };
    if let Some((path, spec)) = pod_spec {
        if spec
            .affinity
            .as_ref()
            .is_some_and(|a| a.pod_anti_affinity.is_some())
        {
            errors.push((
                format!("{path}.affinity.podAntiAffinity"),
                "not supported: Drover does not place pods by where other pods run".into(),
            ));
        }
    }
    errors
}

fn validate_name(manifest: &Manifest, errors: &mut FieldErrors) {
    let name = manifest.name();
    let max = match manifest {
        Manifest::CronJob(_) => 52,
        // Job names become label values of their pods.
        Manifest::Job(_) => 63,
        _ => 253,
    };
    if name.is_empty() {
        errors.push(("metadata.name".into(), "is required".into()));
    } else if !is_dns_subdomain(name) {
        errors.push((
            "metadata.name".into(),
            format!("invalid name \"{name}\": must be lowercase alphanumerics, '-' or '.', starting and ending alphanumeric (RFC 1123)"),
        ));
    } else if name.len() > max {
        errors.push((
            "metadata.name".into(),
            format!(
                "name \"{name}\" is {} characters; a {} name may have at most {max}",
                name.len(),
                manifest.kind()
            ),
        ));
    }
}

fn validate_labels(path: &str, labels: &BTreeMap<String, String>, errors: &mut FieldErrors) {
    for (key, value) in labels {
        let field = format!("{path}.{key}");
        if let Err(e) = validate_label_key(key) {
            errors.push((field.clone(), e));
        }
        if let Err(e) = validate_label_value(value) {
            errors.push((field, e));
        }
    }
}

fn validate_annotations(
    path: &str,
    annotations: &BTreeMap<String, String>,
    errors: &mut FieldErrors,
) {
    for key in annotations.keys() {
        if let Err(e) = validate_label_key(key) {
            errors.push((format!("{path}.{key}"), e));
        }
    }
}

const SUPPORTED_RUNTIME_CLASSES: [&str; 1] = ["process"];
const HOST_PATH_TYPES: [&str; 6] = [
    "",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

/// Whether the pod's containers run in the container engine (else as host processes).
pub fn runs_in_engine(spec: &PodSpec) -> bool {
    spec.runtime_class_name.as_deref() != Some("process")
        && spec
            .init_containers
            .iter()
            .chain(&spec.containers)
            .any(|c| c.image.is_some())
}

/// A pod runs entirely in the engine or entirely as host processes; fields that only an
/// engine container can honour are errors on host processes rather than ignored.
fn validate_runtime_fields(path: &str, spec: &PodSpec, errors: &mut FieldErrors) {
    if runs_in_engine(spec) {
        for (field, c) in spec.all_containers() {
            if c.image.is_none() {
                errors.push((
                    format!("{path}.{field}.image"),
                    "the pod's other containers run in the container engine, and a pod cannot mix them with host processes: give this container an image, or set spec.runtimeClassName: process to run every container as a host process".into(),
                ));
            }
        }
        for (i, v) in spec.volumes.iter().enumerate() {
            if let Some(host) = &v.host_path {
                if !host.path.starts_with('/') {
                    errors.push((
                        format!("{path}.volumes[{i}].hostPath.path"),
                        "must be an absolute path".into(),
                    ));
                }
                let kind = host.kind.as_deref().unwrap_or("");
                if !HOST_PATH_TYPES.contains(&kind) {
                    errors.push((
                        format!("{path}.volumes[{i}].hostPath.type"),
                        format!("unsupported hostPath type \"{kind}\" (supported: Directory, DirectoryOrCreate, File, FileOrCreate, Socket, or unset)"),
                    ));
                }
            }
            if let Some(dir) = &v.empty_dir {
                if let Some(other) = dir
                    .medium
                    .as_deref()
                    .filter(|m| !m.is_empty() && *m != "Memory")
                {
                    errors.push((
                        format!("{path}.volumes[{i}].emptyDir.medium"),
                        format!("unsupported medium \"{other}\" (\"\" or Memory)"),
                    ));
                }
                if dir.size_limit.is_some() {
                    errors.push((
                        format!("{path}.volumes[{i}].emptyDir.sizeLimit"),
                        "unsupported: Drover does not measure or limit an emptyDir, on disk or in memory".into(),
                    ));
                }
            }
        }
        return;
    }
    const WHY: &str = "host processes see the node's filesystem and network";
    for (field, c) in spec.all_containers() {
        if !c.volume_mounts.is_empty() {
            errors.push((
                format!("{path}.{field}.volumeMounts"),
                format!("{WHY}; volume mounts need a container image"),
            ));
        }
        if c.security_context
            .as_ref()
            .is_some_and(|s| s.privileged == Some(true))
        {
            errors.push((
                format!("{path}.{field}.securityContext.privileged"),
                format!("{WHY}; privileged applies to containers with an image"),
            ));
        }
        for (j, port) in c.ports.iter().enumerate() {
            if port.host_port.is_some() {
                errors.push((
                    format!("{path}.{field}.ports[{j}].hostPort"),
                    format!("{WHY}; a host process binds its port itself"),
                ));
            }
        }
    }
    if !spec.volumes.is_empty() {
        errors.push((
            format!("{path}.volumes"),
            format!("{WHY}; volumes need containers with an image"),
        ));
    }
}

fn validate_pod_spec(path: &str, spec: &PodSpec, errors: &mut FieldErrors) {
    if spec.containers.is_empty() {
        errors.push((
            format!("{path}.containers"),
            "at least one container is required".into(),
        ));
    }
    let volume_names: HashSet<&str> = spec.volumes.iter().map(|v| v.name.as_str()).collect();
    let mut seen = HashSet::new();
    for (field, c) in spec.all_containers() {
        let cpath = format!("{path}.{field}");
        let init = field.starts_with("initContainers");
        if c.restart_policy.is_some() && !init {
            errors.push((
                format!("{cpath}.restartPolicy"),
                "may only be set on init containers (restartPolicy: Always makes one a sidecar)"
                    .into(),
            ));
        }
        if init && c.restart_policy.is_none() {
            // Kubernetes' rule: only a sidecar runs beside the app, is probed and has hooks.
            let probes = super::probe::probes_of(c).map(|(kind, _)| kind.field());
            let lifecycle = c.lifecycle.as_ref().map(|_| "lifecycle");
            for field in probes.chain(lifecycle) {
                errors.push((
                    format!("{cpath}.{field}"),
                    "may not be set for init containers without restartPolicy: Always".into(),
                ));
            }
        }
        for (field, hook) in super::lifecycle::hooks_of(c) {
            let path = format!("{cpath}.lifecycle.{field}");
            super::lifecycle::validate_hook(&path, hook, c, errors);
        }
        if !is_dns_label(&c.name) {
            errors.push((
                format!("{cpath}.name"),
                format!(
                    "invalid container name \"{}\": must be an RFC 1123 label",
                    c.name
                ),
            ));
        } else if !seen.insert(c.name.as_str()) {
            errors.push((
                format!("{cpath}.name"),
                format!("duplicate container name \"{}\"", c.name),
            ));
        }
        if c.image.is_none() && c.command.is_empty() {
            errors.push((
                format!("{cpath}.command"),
                "a container without an image runs as a host process and needs a command".into(),
            ));
        }
        if let Some(image) = &c.image {
            if image.trim().is_empty() {
                errors.push((format!("{cpath}.image"), "must not be empty".into()));
            }
        }
        for (j, env) in c.env.iter().enumerate() {
            if env.name.is_empty() || env.name.contains('=') {
                errors.push((
                    format!("{cpath}.env[{j}].name"),
                    format!("invalid environment variable name \"{}\"", env.name),
                ));
            }
            if let Some(source) = &env.value_from {
                let path = format!("{cpath}.env[{j}].valueFrom");
                validate_env_source(&path, env, source, spec, errors);
            }
        }
        if let Some(resources) = &c.resources {
            for (section, map) in [
                ("limits", &resources.limits),
                ("requests", &resources.requests),
            ] {
                for (name, quantity) in map {
                    let field = format!("{cpath}.resources.{section}.{name}");
                    match name.as_str() {
                        "cpu" => {
                            if crate::quantity::parse_cpu_millis(&quantity.0).is_none() {
                                errors.push((
                                    field,
                                    format!("invalid cpu quantity \"{}\"", quantity.0),
                                ));
                            }
                        }
                        "memory" => {
                            if crate::quantity::parse_bytes(&quantity.0).is_none() {
                                errors.push((
                                    field,
                                    format!("invalid memory quantity \"{}\"", quantity.0),
                                ));
                            }
                        }
                        other => errors.push((
                            field,
                            format!("unsupported resource \"{other}\" (supported: cpu, memory)"),
                        )),
                    }
                }
            }
        }
        for (kind, probe) in super::probe::probes_of(c) {
            let path = format!("{cpath}.{}", kind.field());
            super::probe::validate_probe(&path, kind, probe, c, errors);
        }
        for (j, mount) in c.volume_mounts.iter().enumerate() {
            if !volume_names.contains(mount.name.as_str()) {
                errors.push((
                    format!("{cpath}.volumeMounts[{j}].name"),
                    format!("no volume named \"{}\" in spec.volumes", mount.name),
                ));
            }
            if !mount.mount_path.starts_with('/') {
                errors.push((
                    format!("{cpath}.volumeMounts[{j}].mountPath"),
                    "must be an absolute path".into(),
                ));
            }
        }
        for (j, port) in c.ports.iter().enumerate() {
            if port.container_port == 0 {
                errors.push((
                    format!("{cpath}.ports[{j}].containerPort"),
                    "must be between 1 and 65535".into(),
                ));
            }
            if let Some(p) = &port.protocol {
                if p != "TCP" && p != "UDP" {
                    errors.push((
                        format!("{cpath}.ports[{j}].protocol"),
                        format!("unsupported protocol \"{p}\" (TCP or UDP)"),
                    ));
                }
            }
        }
    }
    validate_runtime_fields(path, spec, errors);
    super::security::validate_security(path, spec, runs_in_engine(spec), errors);
    for (i, v) in spec.volumes.iter().enumerate() {
        let sources = usize::from(v.host_path.is_some()) + usize::from(v.empty_dir.is_some());
        if sources != 1 {
            errors.push((
                format!("{path}.volumes[{i}]"),
                "exactly one of hostPath or emptyDir is required".into(),
            ));
        }
        if !is_dns_label(&v.name) {
            errors.push((
                format!("{path}.volumes[{i}].name"),
                format!("invalid volume name \"{}\"", v.name),
            ));
        }
    }
    if let Some(grace) = spec.termination_grace_period_seconds {
        if grace < 0 {
            errors.push((
                format!("{path}.terminationGracePeriodSeconds"),
                "must not be negative".into(),
            ));
        }
    }
    if let Some(class) = &spec.runtime_class_name {
        if !SUPPORTED_RUNTIME_CLASSES.contains(&class.as_str()) {
            errors.push((
                format!("{path}.runtimeClassName"),
                format!("unsupported runtime class \"{class}\" (supported: process)"),
            ));
        }
    }
    if let Some(hostname) = &spec.hostname {
        if !is_dns_label(hostname) {
            errors.push((
                format!("{path}.hostname"),
                format!("invalid hostname \"{hostname}\": must be an RFC 1123 label"),
            ));
        }
    }
    if let Some(node) = &spec.node_name {
        if !is_dns_subdomain(node) {
            errors.push((
                format!("{path}.nodeName"),
                format!("invalid node name \"{node}\""),
            ));
        }
    }
    for (i, t) in spec.tolerations.iter().enumerate() {
        if t.operator == Some(TolerationOperator::Exists)
            && t.value.as_deref().is_some_and(|v| !v.is_empty())
        {
            errors.push((
                format!("{path}.tolerations[{i}].value"),
                "must be empty when operator is Exists".into(),
            ));
        }
        if t.key.as_deref().unwrap_or("").is_empty()
            && t.operator != Some(TolerationOperator::Exists)
        {
            errors.push((
                format!("{path}.tolerations[{i}].operator"),
                "must be Exists when key is empty".into(),
            ));
        }
    }
    let terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(selector) = terms {
        let base = format!(
            "{path}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        );
        for (i, term) in selector.node_selector_terms.iter().enumerate() {
            for (j, req) in term.match_expressions.iter().enumerate() {
                check_requirement(
                    &format!("{base}[{i}].matchExpressions[{j}]"),
                    req.operator,
                    &req.values,
                    errors,
                );
            }
        }
    }
}

fn check_requirement(
    path: &str,
    operator: NodeSelectorOperator,
    values: &[String],
    errors: &mut FieldErrors,
) {
    use NodeSelectorOperator::*;
    let ok = match operator {
        In | NotIn => !values.is_empty(),
        Exists | DoesNotExist => values.is_empty(),
        Gt | Lt => values.len() == 1 && values[0].parse::<i64>().is_ok(),
    };
    if !ok {
        let rule = match operator {
            In | NotIn => "needs at least one value",
            Exists | DoesNotExist => "takes no values",
            Gt | Lt => "needs exactly one integer value",
        };
        errors.push((format!("{path}.values"), format!("{operator:?} {rule}")));
    }
}

fn validate_job_spec(path: &str, spec: &JobSpec, errors: &mut FieldErrors) {
    let pod_path = format!("{path}.template.spec");
    validate_labels(
        &format!("{path}.template.metadata.labels"),
        &spec.template.metadata.labels,
        errors,
    );
    validate_pod_spec(&pod_path, &spec.template.spec, errors);
    let restart = spec.template.spec.restart_policy;
    if !matches!(
        restart,
        Some(RestartPolicy::Never | RestartPolicy::OnFailure)
    ) {
        errors.push((
            format!("{pod_path}.restartPolicy"),
            format!(
                "a Job's pods must have restartPolicy OnFailure or Never (got {})",
                restart.map_or("none, which means Always".to_string(), |r| format!("{r:?}"))
            ),
        ));
    }
    for (field, value) in [
        ("parallelism", spec.parallelism),
        ("completions", spec.completions),
        ("backoffLimit", spec.backoff_limit),
        ("backoffLimitPerIndex", spec.backoff_limit_per_index),
        ("maxFailedIndexes", spec.max_failed_indexes),
        ("ttlSecondsAfterFinished", spec.ttl_seconds_after_finished),
    ] {
        if value.is_some_and(|v| v < 0) {
            errors.push((format!("{path}.{field}"), "must not be negative".into()));
        }
    }
    if spec.active_deadline_seconds.is_some_and(|v| v <= 0) {
        errors.push((
            format!("{path}.activeDeadlineSeconds"),
            "must be positive".into(),
        ));
    }
    let indexed = spec.completion_mode == Some(CompletionMode::Indexed);
    if indexed && spec.completions.is_none() {
        errors.push((
            format!("{path}.completions"),
            "is required when completionMode is Indexed".into(),
        ));
    }
    if spec.backoff_limit_per_index.is_some() && !indexed {
        errors.push((
            format!("{path}.backoffLimitPerIndex"),
            "requires completionMode Indexed".into(),
        ));
    }
    if spec.max_failed_indexes.is_some() && spec.backoff_limit_per_index.is_none() {
        errors.push((
            format!("{path}.maxFailedIndexes"),
            "requires backoffLimitPerIndex".into(),
        ));
    }
    if let Some(policy) = &spec.pod_failure_policy {
        if restart != Some(RestartPolicy::Never) {
            errors.push((
                format!("{path}.podFailurePolicy"),
                "requires the template's restartPolicy to be Never".into(),
            ));
        }
        for (i, rule) in policy.rules.iter().enumerate() {
            let rpath = format!("{path}.podFailurePolicy.rules[{i}]");
            let matchers = usize::from(rule.on_exit_codes.is_some())
                + usize::from(!rule.on_pod_conditions.is_empty());
            if matchers != 1 {
                errors.push((
                    rpath.clone(),
                    "exactly one of onExitCodes or onPodConditions is required".into(),
                ));
            }
            if let Some(codes) = &rule.on_exit_codes {
                if codes.values.is_empty() {
                    errors.push((
                        format!("{rpath}.onExitCodes.values"),
                        "needs at least one exit code".into(),
                    ));
                }
                if codes.operator == ExitCodeOperator::In && codes.values.contains(&0) {
                    errors.push((
                        format!("{rpath}.onExitCodes.values"),
                        "0 is not allowed with operator In".into(),
                    ));
                }
            }
            if rule.action == PodFailurePolicyAction::FailIndex
                && spec.backoff_limit_per_index.is_none()
            {
                errors.push((
                    format!("{rpath}.action"),
                    "FailIndex requires backoffLimitPerIndex".into(),
                ));
            }
        }
    }
    if spec.pod_failure_policy.is_some()
        && spec.pod_replacement_policy == Some(PodReplacementPolicy::TerminatingOrFailed)
    {
        errors.push((
            format!("{path}.podReplacementPolicy"),
            "must be Failed when podFailurePolicy is set".into(),
        ));
    }
    if spec.success_policy.is_some() && !indexed {
        errors.push((
            format!("{path}.successPolicy"),
            "requires completionMode Indexed".into(),
        ));
    }
    errors.extend(super::job_bounds::job_spec_bounds(path, spec));
}

const CRON_MACROS: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

fn validate_cronjob_spec(spec: &CronJobSpec, errors: &mut FieldErrors) {
    let schedule = spec.schedule.trim();
    if schedule.contains("TZ=") {
        errors.push((
            "spec.schedule".into(),
            "CRON_TZ/TZ inside the schedule is not supported; use spec.timeZone".into(),
        ));
    } else if schedule.starts_with('@') {
        if !CRON_MACROS.contains(&schedule) {
            errors.push((
                "spec.schedule".into(),
                format!(
                    "unknown schedule macro \"{schedule}\" (known: {})",
                    CRON_MACROS.join(" ")
                ),
            ));
        }
    } else if schedule.split_whitespace().count() != 5 {
        errors.push((
            "spec.schedule".into(),
            format!("\"{schedule}\" is not a 5-field cron schedule (minute hour day-of-month month day-of-week)"),
        ));
    }
    if spec.starting_deadline_seconds.is_some_and(|s| s < 0) {
        errors.push((
            "spec.startingDeadlineSeconds".into(),
            "must not be negative".into(),
        ));
    }
    for (field, value) in [
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit,
        ),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        if value.is_some_and(|v| v < 0) {
            errors.push((format!("spec.{field}"), "must not be negative".into()));
        }
    }
    validate_labels(
        "spec.jobTemplate.metadata.labels",
        &spec.job_template.metadata.labels,
        errors,
    );
    validate_job_spec("spec.jobTemplate.spec", &spec.job_template.spec, errors);
}

fn validate_daemonset_spec(spec: &DaemonSetSpec, errors: &mut FieldErrors) {
    let labels = &spec.template.metadata.labels;
    validate_labels("spec.template.metadata.labels", labels, errors);
    validate_pod_spec("spec.template.spec", &spec.template.spec, errors);
    if !matches!(
        spec.template.spec.restart_policy,
        None | Some(RestartPolicy::Always)
    ) {
        errors.push((
            "spec.template.spec.restartPolicy".into(),
            "a DaemonSet's pods must have restartPolicy Always".into(),
        ));
    }
    let selector = &spec.selector;
    if selector.match_labels.is_empty() && selector.match_expressions.is_empty() {
        errors.push(("spec.selector".into(), "must not be empty".into()));
    }
    for (key, value) in &selector.match_labels {
        if labels.get(key) != Some(value) {
            errors.push((
                "spec.template.metadata.labels".into(),
                format!("does not match spec.selector: missing {key}={value}"),
            ));
        }
    }
    for (i, req) in selector.match_expressions.iter().enumerate() {
        let path = format!("spec.selector.matchExpressions[{i}]");
        if matches!(
            req.operator,
            NodeSelectorOperator::Gt | NodeSelectorOperator::Lt
        ) {
            errors.push((
                format!("{path}.operator"),
                "label selectors support In, NotIn, Exists, DoesNotExist".into(),
            ));
        } else {
            check_requirement(&path, req.operator, &req.values, errors);
        }
    }
    // A template its own selector does not select would make pods the DaemonSet releases
    // as soon as it creates them, one more at every pass (Kubernetes refuses it too).
    let labels_match = selector
        .match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    if labels_match && !selector.match_expressions.is_empty() && !selector.selects(labels) {
        errors.push((
            "spec.template.metadata.labels".into(),
            "does not match spec.selector's matchExpressions".into(),
        ));
    }
    if let Some(strategy) = &spec.update_strategy {
        if strategy.kind == Some(UpdateStrategyType::OnDelete) && strategy.rolling_update.is_some()
        {
            errors.push((
                "spec.updateStrategy.rollingUpdate".into(),
                "is only allowed with type RollingUpdate".into(),
            ));
        }
        if let Some(ru) = &strategy.rolling_update {
            let zero = |v: &Option<IntOrPercent>| {
                matches!(
                    v,
                    Some(IntOrPercent::Int(0)) | Some(IntOrPercent::Percent(0))
                )
            };
            if zero(&ru.max_unavailable) && (ru.max_surge.is_none() || zero(&ru.max_surge)) {
                errors.push((
                    "spec.updateStrategy.rollingUpdate.maxUnavailable".into(),
                    "may not be 0 when maxSurge is 0".into(),
                ));
            }
            for (field, v) in [
                ("maxUnavailable", &ru.max_unavailable),
                ("maxSurge", &ru.max_surge),
            ] {
                if matches!(v, Some(IntOrPercent::Int(i)) if *i < 0) {
                    errors.push((
                        format!("spec.updateStrategy.rollingUpdate.{field}"),
                        "must not be negative".into(),
                    ));
                }
            }
        }
    }
    for (field, value) in [
        ("minReadySeconds", spec.min_ready_seconds),
        ("revisionHistoryLimit", spec.revision_history_limit),
    ] {
        if value.is_some_and(|v| v < 0) {
            errors.push((format!("spec.{field}"), "must not be negative".into()));
        }
    }
}

/// `env[].valueFrom`: one source, and one Drover can resolve.
fn validate_env_source(
    path: &str,
    env: &super::types::EnvVar,
    source: &super::types::EnvVarSource,
    spec: &PodSpec,
    errors: &mut FieldErrors,
) {
    use super::env::{FieldPath, ResourceField, SUPPORTED_FIELD_PATHS, SUPPORTED_RESOURCES};
    if !env.value.is_empty() {
        errors.push((
            path.to_string(),
            "may not be specified when `value` is not empty".into(),
        ));
    }
    let given = [
        source.field_ref.is_some(),
        source.resource_field_ref.is_some(),
        source.config_map_key_ref.is_some(),
        source.secret_key_ref.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        errors.push((
            path.to_string(),
            "must specify exactly one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`".into(),
        ));
        return;
    }
    if let Some(field) = &source.field_ref {
        if field.api_version.as_deref().is_some_and(|v| v != "v1") {
            errors.push((
                format!("{path}.fieldRef.apiVersion"),
                format!(
                    "Unsupported value: \"{}\": supported values: \"v1\"",
                    field.api_version.as_deref().unwrap_or_default()
                ),
            ));
        }
        let bridged = runs_in_engine(spec) && spec.host_network != Some(true);
        if bridged && FieldPath::parse(&field.field_path) == Some(FieldPath::PodIp) {
            errors.push((
                format!("{path}.fieldRef.fieldPath"),
                "status.podIP of a pod of containers on the engine's network is not known to Drover yet: use hostNetwork: true, or status.hostIP".into(),
            ));
        }
        if FieldPath::parse(&field.field_path).is_none() {
            errors.push((
                format!("{path}.fieldRef.fieldPath"),
                format!(
                    "Unsupported value: \"{}\": supported values: {SUPPORTED_FIELD_PATHS}",
                    field.field_path
                ),
            ));
        }
    }
    if let Some(field) = &source.resource_field_ref {
        match ResourceField::parse(&field.resource) {
            None => errors.push((
                format!("{path}.resourceFieldRef.resource"),
                format!(
                    "Unsupported value: \"{}\": supported values: {SUPPORTED_RESOURCES}",
                    field.resource
                ),
            )),
            Some(resource) => {
                if let Some(divisor) = &field.divisor {
                    let cpu = matches!(
                        resource,
                        ResourceField::LimitsCpu | ResourceField::RequestsCpu
                    );
                    let parsed = if cpu {
                        crate::quantity::parse_cpu_millis(&divisor.0)
                    } else {
                        crate::quantity::parse_bytes(&divisor.0)
                    };
                    if parsed.is_none_or(|d| d == 0) {
                        errors.push((
                            format!("{path}.resourceFieldRef.divisor"),
                            format!(
                                "\"{}\" is not a positive quantity of this resource",
                                divisor.0
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(name) = field.container_name.as_deref().filter(|n| !n.is_empty()) {
            if !spec.all_containers().any(|(_, c)| c.name == name) {
                errors.push((
                    format!("{path}.resourceFieldRef.containerName"),
                    format!("no container \"{name}\" in the pod"),
                ));
            }
        }
    }
    for (field, present) in [
        ("configMapKeyRef", source.config_map_key_ref.is_some()),
        ("secretKeyRef", source.secret_key_ref.is_some()),
    ] {
        if present {
            errors.push((
                format!("{path}.{field}"),
                "not supported: Drover does not serve ConfigMaps or Secrets yet".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifests;

    fn errors_of(text: &str) -> Vec<(String, String)> {
        match parse_manifests("t.yaml", text) {
            Ok(_) => vec![],
            Err(errors) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    fn pod_with_env(env: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: main\n    command: [env]\n    env:\n{env}"
        )
    }

    #[test]
    fn env_sources_are_checked_and_the_field_is_named() {
        let ok = pod_with_env(
            "    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n    - {name: APP, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: \"metadata.labels['app']\"}}}\n    - {name: MEM, valueFrom: {resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}}\n",
        );
        assert_eq!(errors_of(&ok), vec![]);
        let cases = [
            (
                "    - {name: X, valueFrom: {fieldRef: {fieldPath: spec.containers}}}\n",
                "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
                "Unsupported value: \"spec.containers\"",
            ),
            (
                "    - {name: X, value: a, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n",
                "spec.containers[0].env[0].valueFrom",
                "may not be specified when `value` is not empty",
            ),
            (
                "    - {name: X, valueFrom: {}}\n",
                "spec.containers[0].env[0].valueFrom",
                "must specify exactly one of",
            ),
            (
                "    - {name: X, valueFrom: {resourceFieldRef: {resource: limits.gpu}}}\n",
                "spec.containers[0].env[0].valueFrom.resourceFieldRef.resource",
                "Unsupported value: \"limits.gpu\"",
            ),
            (
                "    - {name: X, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 0}}}\n",
                "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor",
                "is not a positive quantity",
            ),
            (
                "    - {name: X, valueFrom: {resourceFieldRef: {containerName: other, resource: limits.cpu}}}\n",
                "spec.containers[0].env[0].valueFrom.resourceFieldRef.containerName",
                "no container \"other\"",
            ),
            (
                "    - {name: X, valueFrom: {configMapKeyRef: {name: settings, key: level}}}\n",
                "spec.containers[0].env[0].valueFrom.configMapKeyRef",
                "does not serve ConfigMaps or Secrets yet",
            ),
        ];
        for (env, path, message) in cases {
            let errors = errors_of(&pod_with_env(env));
            assert!(
                errors.iter().any(|(p, m)| p == path && m.contains(message)),
                "{env}: {errors:?}"
            );
        }
    }

    #[test]
    fn the_pod_ip_of_containers_on_the_engines_network_is_refused() {
        let env = "    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n";
        let bridged = pod_with_env(env).replace(
            "    command: [env]\n",
            "    image: busybox\n    command: [env]\n",
        );
        let errors = errors_of(&bridged);
        assert!(
            errors.iter().any(|(p, m)| p
                == "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath"
                && m.contains("hostNetwork: true")),
            "{errors:?}"
        );
        let on_host = bridged.replace("spec:\n", "spec:\n  hostNetwork: true\n");
        assert_eq!(errors_of(&on_host), vec![]);
        assert_eq!(
            errors_of(&pod_with_env(env)),
            vec![],
            "a process pod's is its node's"
        );
    }

    const JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: pi
        command: [sh, -c, 'echo 3.14']
";

    const DS: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: a
        command: [sleep, infinity]
";

    #[test]
    fn uids_are_generated_uuids_or_short_lowercase_names_never_paths() {
        assert!(is_valid_uid("3f2b8c1e-9d4a-4e6b-8f00-1a2b3c4d5e6f"));
        assert!(is_valid_uid("u1"));
        assert!(is_valid_uid(&"a".repeat(64)));
        for bad in [
            "",
            "../../etc",
            "a/b",
            "..",
            ".",
            "a.b",
            "-a",
            "a-",
            "A1",
            "a b",
            "a\0b",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_uid(bad), "{bad:?}");
        }
    }

    #[test]
    fn dns_names() {
        assert!(is_dns_label("a-1"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("A"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("a.b-c"));
        assert!(!is_dns_subdomain("a..b"));
    }

    #[test]
    fn label_keys_and_values() {
        assert!(validate_label_key("app.kubernetes.io/name").is_ok());
        assert!(validate_label_key("bad key").is_err());
        assert!(validate_label_key("/x").is_err());
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value("v1.2_x").is_ok());
        assert!(validate_label_value("no spaces").is_err());
    }

    #[test]
    fn job_with_restart_policy_always_is_rejected() {
        let errors = errors_of(&JOB.replace("restartPolicy: Never", "restartPolicy: Always"));
        assert_eq!(errors[0].0, "spec.template.spec.restartPolicy");
    }

    #[test]
    fn job_without_restart_policy_is_rejected() {
        let errors = errors_of(&JOB.replace("      restartPolicy: Never\n", ""));
        assert_eq!(errors[0].0, "spec.template.spec.restartPolicy");
    }

    #[test]
    fn a_valid_job_passes() {
        assert!(errors_of(JOB).is_empty());
    }

    #[test]
    fn daemonset_needs_restart_policy_always() {
        assert!(errors_of(DS).is_empty());
        let text = DS.replace(
            "      containers:",
            "      restartPolicy: OnFailure\n      containers:",
        );
        assert_eq!(errors_of(&text)[0].0, "spec.template.spec.restartPolicy");
    }

    #[test]
    fn daemonset_selector_must_match_template() {
        let text = DS.replace("labels: {app: agent}", "labels: {app: other}");
        assert_eq!(errors_of(&text)[0].0, "spec.template.metadata.labels");
    }

    #[test]
    fn cronjob_names_are_at_most_52_characters() {
        let text = format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n          - name: c\n            command: ['true']\n",
            "a".repeat(53)
        );
        assert_eq!(errors_of(&text)[0].0, "metadata.name");
        assert!(errors_of(&text.replace(&"a".repeat(53), "ok")).is_empty());
    }

    #[test]
    fn cronjob_schedule_shape_is_checked() {
        let base = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  schedule: 'SCHED'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n          - name: c\n            command: ['true']\n";
        for bad in ["* * * *", "@sometimes", "CRON_TZ=UTC * * * * *"] {
            let errors = errors_of(&base.replace("SCHED", bad));
            assert_eq!(errors[0].0, "spec.schedule", "{bad}");
        }
        for good in ["*/5 * * * *", "@hourly"] {
            assert!(errors_of(&base.replace("SCHED", good)).is_empty(), "{good}");
        }
    }

    #[test]
    fn a_tiny_indexed_job_asking_for_two_billion_completions_is_refused() {
        let text = "apiVersion: batch/v1
kind: Job
metadata:
  name: big
spec:
  completionMode: Indexed
  completions: 2147483647
  parallelism: 2147483647
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        command: ['true']
";
        assert!(text.len() <= 300);
        let errors = errors_of(text);
        assert!(
            errors.contains(&(
                "spec.completions".into(),
                "must be less than or equal to 100000 when completionMode is Indexed".into()
            )),
            "{errors:?}"
        );
        // Parsing reports an object's first error; the parallelism is refused as well.
        let spec = JobSpec {
            completions: Some(10),
            parallelism: Some(i32::MAX),
            completion_mode: Some(CompletionMode::Indexed),
            ..JobSpec::default()
        };
        assert!(super::super::job_spec_bounds("spec", &spec)
            .iter()
            .any(|(f, _)| f == "spec.parallelism"));
    }

    #[test]
    fn a_cronjobs_job_template_is_bounded_too() {
        let text = "apiVersion: batch/v1
kind: CronJob
metadata:
  name: big
spec:
  schedule: '* * * * *'
  jobTemplate:
    spec:
      completionMode: Indexed
      completions: 2147483647
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: c
            command: ['true']
";
        let errors = errors_of(text);
        assert!(
            errors
                .iter()
                .any(|(f, _)| f == "spec.jobTemplate.spec.completions"),
            "{errors:?}"
        );
    }

    #[test]
    fn process_container_needs_a_command() {
        let text = JOB.replace("        command: [sh, -c, 'echo 3.14']\n", "");
        assert_eq!(
            errors_of(&text)[0].0,
            "spec.template.spec.containers[0].command"
        );
    }

    #[test]
    fn volume_mounts_must_name_a_volume() {
        let text = JOB.replace(
            "        command:",
            "        image: busybox:1\n        volumeMounts: [{name: data, mountPath: /data}]\n        command:",
        );
        assert_eq!(
            errors_of(&text)[0].0,
            "spec.template.spec.containers[0].volumeMounts[0].name"
        );
    }

    fn container_job(container: &str, pod: &str) -> String {
        format!(
            "apiVersion: batch/v1
kind: Job
metadata:
  name: c
spec:
  template:
    spec:
      restartPolicy: Never
{pod}      containers:
      - name: c
        image: busybox:1
{container}"
        )
    }

    #[test]
    fn engine_pods_accept_the_supported_fields() {
        let text = container_job(
            "        imagePullPolicy: Never
        command: [sh]
        args: [-c, 'echo hi']
        env: [{name: A, value: b}]
        workingDir: /tmp
        resources: {limits: {memory: 64Mi, cpu: 500m}}
        securityContext: {runAsUser: 1000, privileged: false}
        ports: [{containerPort: 80, hostPort: 8080}]
        volumeMounts: [{name: host, mountPath: /host, readOnly: true}, {name: scratch, mountPath: /s}]
",
            "      hostNetwork: false
      volumes:
      - {name: host, hostPath: {path: /var/log, type: Directory}}
      - {name: scratch, emptyDir: {}}
",
        );
        assert_eq!(errors_of(&text), vec![]);
    }

    #[test]
    fn engine_and_process_containers_cannot_mix() {
        let text = container_job(
            "      - name: sidecar
        command: [sleep, '1']
",
            "",
        );
        let errors = errors_of(&text);
        assert_eq!(errors[0].0, "spec.template.spec.containers[1].image");
        assert!(errors[0].1.contains("runtimeClassName: process"));
    }

    #[test]
    fn process_class_runs_images_as_processes_and_mixes_freely() {
        let text = container_job(
            "        command: [sleep, '1']
      - name: sidecar
        command: [sleep, '1']
",
            "      runtimeClassName: process
",
        );
        assert_eq!(errors_of(&text), vec![]);
    }

    #[test]
    fn engine_only_fields_are_errors_on_host_processes() {
        let cases = [
            (
                "        volumeMounts: [{name: v, mountPath: /v}]\n",
                "      volumes: [{name: v, emptyDir: {}}]\n",
                vec!["spec.template.spec.containers[0].volumeMounts"],
            ),
            (
                "",
                "      volumes: [{name: v, emptyDir: {}}]\n",
                vec!["spec.template.spec.volumes"],
            ),
            (
                "        securityContext: {privileged: true}\n",
                "",
                vec!["spec.template.spec.containers[0].securityContext.privileged"],
            ),
            (
                "        ports: [{containerPort: 80, hostPort: 80}]\n",
                "",
                vec!["spec.template.spec.containers[0].ports[0].hostPort"],
            ),
        ];
        for (container, pod, expected) in cases {
            let text = JOB.replace("        command:", &format!("{container}        command:"));
            let text = text.replace("      containers:", &format!("{pod}      containers:"));
            let paths: Vec<String> = errors_of(&text).into_iter().map(|e| e.0).collect();
            assert_eq!(paths, expected, "{container}{pod}");
        }
    }

    #[test]
    fn unsupported_volume_options_name_the_field() {
        let cases = [
            (
                "{name: v, hostPath: {path: /x, type: BlockDevice}}",
                "spec.template.spec.volumes[0].hostPath.type",
            ),
            (
                "{name: v, hostPath: {path: x}}",
                "spec.template.spec.volumes[0].hostPath.path",
            ),
            (
                "{name: v, emptyDir: {medium: HugePages}}",
                "spec.template.spec.volumes[0].emptyDir.medium",
            ),
            (
                "{name: v, emptyDir: {sizeLimit: 1Gi}}",
                "spec.template.spec.volumes[0].emptyDir.sizeLimit",
            ),
        ];
        for (volume, field) in cases {
            let text = container_job("", &format!("      volumes: [{volume}]\n"));
            let paths: Vec<String> = errors_of(&text).into_iter().map(|e| e.0).collect();
            assert_eq!(paths, vec![field.to_string()], "{volume}");
        }
        let memory = container_job(
            "",
            "      volumes: [{name: v, emptyDir: {medium: Memory}}]\n",
        );
        assert!(errors_of(&memory).is_empty(), "{:?}", errors_of(&memory));
    }

    #[test]
    fn pull_policy_defaults_follow_kubernetes() {
        for (image, expected) in [
            ("busybox", PullPolicy::Always),
            ("busybox:latest", PullPolicy::Always),
            ("registry:5000/busybox", PullPolicy::Always),
            ("registry:5000/busybox:1.36", PullPolicy::IfNotPresent),
            ("busybox:1.36", PullPolicy::IfNotPresent),
            ("busybox@sha256:abc", PullPolicy::IfNotPresent),
        ] {
            assert_eq!(PullPolicy::default_for(image), expected, "{image}");
        }
    }

    #[test]
    fn bad_quantities_name_the_resource() {
        let text = JOB.replace(
            "        command:",
            "        resources: {limits: {memory: lots}}\n        command:",
        );
        assert_eq!(
            errors_of(&text)[0].0,
            "spec.template.spec.containers[0].resources.limits.memory"
        );
    }

    #[test]
    fn pod_failure_policy_rules() {
        let text = JOB.replace(
            "  template:",
            "  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {operator: In, values: [0, 1]}\n  template:",
        );
        assert_eq!(
            errors_of(&text)[0].0,
            "spec.podFailurePolicy.rules[0].onExitCodes.values"
        );
    }

    #[test]
    fn a_daemonset_template_must_satisfy_its_selectors_expressions() {
        let with = |expression: &str| {
            DS.replace(
                "    matchLabels: {app: agent}\n",
                &format!(
                    "    matchLabels: {{app: agent}}\n    matchExpressions:\n    - {expression}\n"
                ),
            )
        };
        assert_eq!(
            errors_of(&with("{key: tier, operator: In, values: [a]}")),
            vec![(
                "spec.template.metadata.labels".to_string(),
                "does not match spec.selector's matchExpressions".to_string()
            )]
        );
        assert!(errors_of(&with("{key: app, operator: In, values: [agent, other]}")).is_empty());
        assert!(errors_of(&with("{key: tier, operator: DoesNotExist}")).is_empty());
    }

    #[test]
    fn pod_replacement_policy_must_be_failed_with_a_pod_failure_policy() {
        let policy = "  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {operator: In, values: [42]}\n";
        let with = |replacement: &str| {
            JOB.replace(
                "  template:",
                &format!("{policy}  podReplacementPolicy: {replacement}\n  template:"),
            )
        };
        assert_eq!(
            errors_of(&with("TerminatingOrFailed")),
            vec![(
                "spec.podReplacementPolicy".to_string(),
                "must be Failed when podFailurePolicy is set".to_string()
            )]
        );
        assert!(errors_of(&with("Failed")).is_empty());
        let alone = JOB.replace(
            "  template:",
            "  podReplacementPolicy: TerminatingOrFailed\n  template:",
        );
        assert!(errors_of(&alone).is_empty());
        let unknown = JOB.replace("  template:", "  podReplacementPolicy: Never\n  template:");
        assert_eq!(errors_of(&unknown)[0].0, "spec.podReplacementPolicy");
    }
}
