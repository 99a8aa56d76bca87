//! The kubectl-like verbs of `drover`, all through the Kubernetes API the server serves.

mod apply;
pub mod broker_config;
mod client;
mod describe;
mod get;
mod jobs;
mod kubeconfig;
mod nodes;
pub mod print_table;
mod resource;
mod rollout;
mod table;
mod token;
mod version;
pub mod yaml;

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

pub use apply::apply;
pub use broker_config::{broker_config, BrokerConfigCommand};
pub use client::{error_line, Client, ServerError, Target};
pub use describe::{describe, DescribeArgs};
pub use get::{get, GetArgs, Output};
pub use jobs::{create, wait, CreateCommand, WaitArgs};
pub use kubeconfig::{kubeconfig, KubeconfigCommand};
pub use nodes::{cordon, label, taint, LabelArgs, TaintArgs};
pub use rollout::{rollout, RolloutCommand};
pub use token::{token, TokenCommand};
pub use version::version;

/// Writes `text` to standard output. A reader that has gone (`drover describe … | head`) is
/// no error: the rest is not wanted.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Reads manifest files: a file, every `.yaml`/`.yml`/`.json` in a directory (sorted), or
/// standard input for `-`.
pub fn read_manifest_files(paths: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for path in paths {
        if path == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            files.push(("-".to_string(), text));
            continue;
        }
        let p = Path::new(path);
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read directory {path}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| {
                    e.is_file()
                        && matches!(
                            e.extension().and_then(|x| x.to_str()),
                            Some("yaml" | "yml" | "json")
                        )
                })
                .collect();
            entries.sort();
            for entry in entries {
                let text = std::fs::read_to_string(&entry)
                    .with_context(|| format!("cannot read {}", entry.display()))?;
                files.push((entry.display().to_string(), text));
            }
        } else {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {path}"))?;
            files.push((path.clone(), text));
        }
    }
    Ok(files)
}

/// `delete` flags.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Resource type (or type/name)
    pub resource: Option<String>,
    /// Object name
    pub name: Option<String>,
    /// Delete the objects in these manifest files
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<String>,
    /// Namespace
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

/// `drover delete`.
pub fn delete(client: &Client, args: DeleteArgs) -> anyhow::Result<()> {
    let mut targets = Vec::new();
    if !args.files.is_empty() {
        for m in apply::parse_files(&args.files)? {
            let resource = resource::of_kind(m.kind().as_str())?;
            targets.push((resource, m.namespace().to_string(), m.name().to_string()));
        }
    } else {
        let given = args.resource.context("delete needs KIND NAME or -f FILE")?;
        let (resource, name) = resource::with_name(&given, args.name)?;
        let name = name.context("delete needs a name, e.g. `drover delete pod web`")?;
        targets.push((resource, args.namespace.clone(), name));
    }
    // Like kubectl: every object is tried; each failure is printed, the last one is the
    // command's error.
    let mut last_error = None;
    for (resource, namespace, name) in targets {
        match client.delete(&resource::object(resource, &namespace, &name), &[]) {
            Ok(_) => println!("{} deleted", resource::quoted_ref(resource, &name)),
            Err(e) => {
                if let Some(previous) = last_error.replace(e) {
                    eprintln!("{}", error_line(&previous));
                }
            }
        }
    }
    if let Some(e) = last_error {
        return Err(e);
    }
    Ok(())
}

/// `logs` flags.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Pod name (or pod/NAME, job/NAME)
    pub pod: String,
    /// Container (needed when the pod has several)
    #[arg(short, long)]
    pub container: Option<String>,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<u32>,
    /// Keep streaming new output until interrupted
    #[arg(short, long)]
    pub follow: bool,
    /// The previous run of the container
    #[arg(short, long)]
    pub previous: bool,
    /// Namespace
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

/// `drover logs`.
pub fn logs(client: &Client, args: LogsArgs) -> anyhow::Result<()> {
    let name = match args.pod.split_once('/') {
        None => args.pod.clone(),
        Some((kind_name, name)) => match resource::resolve(kind_name)?.kind {
            "Pod" => name.to_string(),
            "Job" => {
                // Like kubectl: one of the Job's pods.
                let selector = format!("batch.kubernetes.io/job-name={name}");
                let pods = client.get(
                    &resource::collection(resource::resolve("pods")?, Some(&args.namespace)),
                    &[("labelSelector", &selector)],
                )?;
                pods["items"]
                    .as_array()
                    .and_then(|items| items.first())
                    .and_then(|p| p["metadata"]["name"].as_str())
                    .map(str::to_string)
                    .with_context(|| format!("job \"{name}\" has no pods"))?
            }
            _ => bail!("logs of a {kind_name} are not supported; name a pod or a job"),
        },
    };
    let tail = args.tail.map(|t| t.to_string());
    let mut query = vec![];
    if let Some(container) = &args.container {
        query.push(("container", container.as_str()));
    }
    if let Some(tail) = &tail {
        query.push(("tailLines", tail));
    }
    if args.follow {
        query.push(("follow", "true"));
    }
    if args.previous {
        query.push(("previous", "true"));
    }
    client.stream(
        &format!("/api/v1/namespaces/{}/pods/{name}/log", args.namespace),
        &query,
        &mut std::io::stdout().lock(),
    )
}
