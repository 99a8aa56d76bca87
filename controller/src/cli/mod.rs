//! The kubectl-like verbs of `drover`.

mod age;
pub mod broker_config;
mod client;
mod columns;
mod kubeconfig;
pub mod print_table;
mod rollout;
mod table;
mod token;
pub mod yaml;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::Utc;
use clap::{Args, ValueEnum};
use drover_proto::manifest::{parse_manifests, Kind};
use serde_json::{json, Value};

pub use broker_config::{broker_config, BrokerConfigCommand};
pub use client::{Client, Target};
pub use kubeconfig::{kubeconfig, KubeconfigCommand};
pub use rollout::{
    create, rollout, taint, wait, CreateCommand, RolloutCommand, TaintArgs, WaitArgs,
};
pub use token::{token, TokenCommand};

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// More columns.
    Wide,
    /// Kubernetes-shaped JSON.
    Json,
    /// Kubernetes-shaped YAML.
    Yaml,
}

/// `get` flags.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Resource type: nodes/no, pods/po, jobs, cronjobs/cj, daemonsets/ds
    pub resource: String,
    /// Only this object
    pub name: Option<String>,
    /// Output format
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// Label selector, e.g. app=web,tier!=db
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Namespace
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// List objects in every namespace
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

fn kind(resource: &str) -> anyhow::Result<Kind> {
    resource.parse::<Kind>().map_err(anyhow::Error::msg)
}

/// Splits `kind/name` or `kind name` forms.
fn kind_and_name(resource: &str, name: Option<String>) -> anyhow::Result<(Kind, Option<String>)> {
    match resource.split_once('/') {
        Some((k, n)) => {
            if name.is_some() {
                bail!("there is no need to give a name after {resource}");
            }
            Ok((kind(k)?, Some(n.to_string())))
        }
        None => Ok((kind(resource)?, name)),
    }
}

fn object_path(kind: Kind, name: &str) -> String {
    format!("/drover/v0/{}/{name}", kind.plural())
}

fn print_structured(value: &Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => print!("{}", yaml::to_yaml(value)),
        Output::Wide => unreachable!("tables are printed by the caller"),
    }
    Ok(())
}

/// `drover get`.
pub fn get(client: &Client, args: GetArgs) -> anyhow::Result<()> {
    let (kind, name) = kind_and_name(&args.resource, args.name)?;
    let now = Utc::now();
    let items = match &name {
        Some(name) => {
            let object = client.get(&object_path(kind, name), &[("namespace", &args.namespace)])?;
            if let Some(output @ (Output::Json | Output::Yaml)) = args.output {
                return print_structured(&object, output);
            }
            vec![object]
        }
        None => {
            let mut query = vec![];
            if !args.all_namespaces {
                query.push(("namespace", args.namespace.as_str()));
            }
            if let Some(selector) = &args.selector {
                query.push(("labelSelector", selector.as_str()));
            }
            let list = client.get(&format!("/drover/v0/{}", kind.plural()), &query)?;
            if let Some(output @ (Output::Json | Output::Yaml)) = args.output {
                return print_structured(&list, output);
            }
            list["items"].as_array().cloned().unwrap_or_default()
        }
    };
    if items.is_empty() {
        if kind.namespaced() && !args.all_namespaces {
            eprintln!("No resources found in {} namespace.", args.namespace);
        } else {
            eprintln!("No resources found");
        }
        return Ok(());
    }
    let (headers, rows) = columns::table(
        kind,
        &items,
        args.output == Some(Output::Wide),
        args.all_namespaces,
        now,
    );
    print!("{}", table::render(&headers, &rows));
    Ok(())
}

/// `describe` flags.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Resource type
    pub resource: String,
    /// Object name
    pub name: Option<String>,
    /// Namespace
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

fn describe_value(out: &mut String, key: &str, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if map.is_empty() => out.push_str(&format!("{pad}{key}:\t<none>\n")),
        Value::Object(map) => {
            out.push_str(&format!("{pad}{key}:\n"));
            for (k, v) in map {
                describe_value(out, k, v, indent + 2);
            }
        }
        Value::Array(items) if items.is_empty() => out.push_str(&format!("{pad}{key}:\t<none>\n")),
        Value::Array(items) => {
            out.push_str(&format!("{pad}{key}:\n"));
            for item in items {
                let mut nested = yaml::to_yaml(item);
                nested = nested
                    .lines()
                    .enumerate()
                    .map(|(i, l)| {
                        if i == 0 {
                            format!("{pad}  - {l}\n")
                        } else {
                            format!("{pad}    {l}\n")
                        }
                    })
                    .collect();
                out.push_str(&nested);
            }
        }
        Value::String(s) => out.push_str(&format!("{pad}{key}:\t{s}\n")),
        other => out.push_str(&format!("{pad}{key}:\t{other}\n")),
    }
}

/// `drover describe`.
pub fn describe(client: &Client, args: DescribeArgs) -> anyhow::Result<()> {
    let (kind, name) = kind_and_name(&args.resource, args.name)?;
    let name = name.context("describe needs a name, e.g. `drover describe node pi-1`")?;
    let path = object_path(kind, &name);
    let query = [("namespace", args.namespace.as_str())];
    let object = client.get(&path, &query)?;
    let events = client.get(&format!("{path}/events"), &query)?;
    let now = Utc::now();
    let mut out = String::new();
    let meta = &object["metadata"];
    out.push_str(&format!("Name:\t{name}\n"));
    if kind.namespaced() {
        out.push_str(&format!(
            "Namespace:\t{}\n",
            meta["namespace"].as_str().unwrap_or("")
        ));
    }
    out.push_str(&format!("Kind:\t{}\n", kind.as_str()));
    out.push_str(&format!("UID:\t{}\n", meta["uid"].as_str().unwrap_or("")));
    describe_value(&mut out, "Labels", &meta["labels"].clone_or_empty(), 0);
    describe_value(
        &mut out,
        "Annotations",
        &meta["annotations"].clone_or_empty(),
        0,
    );
    out.push_str(&format!(
        "CreationTimestamp:\t{}\n",
        meta["creationTimestamp"].as_str().unwrap_or("")
    ));
    match kind {
        Kind::Node => out.push_str(&format!("Status:\t{}\n", columns::node_status(&object))),
        Kind::Pod => out.push_str(&format!("Status:\t{}\n", columns::pod_status(&object))),
        _ => {}
    }
    describe_value(&mut out, "Spec", &object["spec"], 0);
    describe_value(&mut out, "Status", &object["status"], 0);
    let events = events["items"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        out.push_str("Events:\t<none>\n");
        print!("{}", align_tabs(&out));
        return Ok(());
    }
    print!("{}", align_tabs(&out));
    println!("Events:");
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let count = e["count"].as_u64().unwrap_or(1);
            let last = age::since(&e["lastTimestamp"], now);
            let age_text = if count > 1 {
                format!(
                    "{last} (x{count} over {})",
                    age::since(&e["firstTimestamp"], now)
                )
            } else {
                last
            };
            vec![
                e["type"].as_str().unwrap_or("").into(),
                e["reason"].as_str().unwrap_or("").into(),
                age_text,
                e["source"]["component"].as_str().unwrap_or("").into(),
                e["message"].as_str().unwrap_or("").into(),
            ]
        })
        .collect();
    for line in table::render(&["Type", "Reason", "Age", "From", "Message"], &rows).lines() {
        println!("  {line}");
    }
    Ok(())
}

trait CloneOrEmpty {
    fn clone_or_empty(&self) -> Value;
}

impl CloneOrEmpty for Value {
    fn clone_or_empty(&self) -> Value {
        if self.is_null() {
            json!({})
        } else {
            self.clone()
        }
    }
}

/// Aligns `key:\tvalue` lines of top-level keys into one column.
fn align_tabs(text: &str) -> String {
    let width = text
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once('\t').map(|(k, _)| k.len()))
        .max()
        .unwrap_or(0);
    text.lines()
        .map(|l| match l.split_once('\t') {
            Some((k, v)) if !l.starts_with(' ') => format!("{k:width$}  {v}\n"),
            Some((k, v)) => format!("{k}  {v}\n"),
            None => format!("{l}\n"),
        })
        .collect()
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

/// `drover apply -f`.
pub fn apply(client: &Client, paths: &[String]) -> anyhow::Result<()> {
    let files = read_manifest_files(paths)?;
    let body = json!({
        "files": files.iter().map(|(name, content)| json!({"name": name, "content": content})).collect::<Vec<_>>()
    });
    let answer = client.post("/drover/v0/apply", &body)?;
    for item in answer["items"].as_array().cloned().unwrap_or_default() {
        let kind = item["kind"].as_str().unwrap_or("").to_ascii_lowercase();
        println!(
            "{kind}/{} {}",
            item["name"].as_str().unwrap_or(""),
            item["result"].as_str().unwrap_or("")
        );
    }
    Ok(())
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
    let mut targets: Vec<(Kind, String, String)> = Vec::new();
    if !args.files.is_empty() {
        for (source, text) in read_manifest_files(&args.files)? {
            let manifests = parse_manifests(&source, &text).map_err(|errors| {
                anyhow::anyhow!(errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"))
            })?;
            targets.extend(
                manifests
                    .iter()
                    .map(|m| (m.kind(), m.namespace().to_string(), m.name().to_string())),
            );
        }
    } else {
        let resource = args.resource.context("delete needs KIND NAME or -f FILE")?;
        let (kind, name) = kind_and_name(&resource, args.name)?;
        let name = name.context("delete needs a name, e.g. `drover delete pod web`")?;
        targets.push((kind, args.namespace.clone(), name));
    }
    let mut failed = false;
    for (kind, namespace, name) in targets {
        match client.delete(&object_path(kind, &name), &[("namespace", &namespace)]) {
            Ok(_) => println!("{}/{name} deleted", kind.as_str().to_ascii_lowercase()),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        bail!("some objects were not deleted");
    }
    Ok(())
}

/// `label` flags.
#[derive(Debug, Args)]
pub struct LabelArgs {
    /// Resource type (only nodes)
    pub resource: String,
    /// Node name
    pub name: String,
    /// key=value to set, key- to remove
    #[arg(required = true)]
    pub changes: Vec<String>,
    /// Allow changing the value of an existing label
    #[arg(long)]
    pub overwrite: bool,
}

/// `drover label node NAME key=value key-`.
pub fn label(client: &Client, args: LabelArgs) -> anyhow::Result<()> {
    if kind(&args.resource)? != Kind::Node {
        bail!("only nodes can be labelled with `drover label`; change other objects' labels in their manifest and apply it");
    }
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    for change in &args.changes {
        if let Some((k, v)) = change.split_once('=') {
            set.insert(k.to_string(), v.to_string());
        } else if let Some(k) = change.strip_suffix('-') {
            remove.push(k.to_string());
        } else {
            bail!("invalid label change \"{change}\": use key=value or key-");
        }
    }
    let answer = client.post(
        &format!("/drover/v0/nodes/{}/labels", args.name),
        &json!({"set": set, "remove": remove, "overwrite": args.overwrite}),
    )?;
    let verb = if answer["changed"] == true {
        "labeled"
    } else {
        "not labeled"
    };
    println!("node/{} {verb}", args.name);
    Ok(())
}

/// `logs` flags.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Pod name (or pod/NAME)
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
        Some((kind_name, name)) if kind(kind_name)? == Kind::Pod => name.to_string(),
        Some((kind_name, job)) if kind(kind_name)? == Kind::Job => {
            // Like kubectl: one of the Job's pods.
            let selector = format!("batch.kubernetes.io/job-name={job}");
            let pods = client.get(
                "/drover/v0/pods",
                &[("namespace", &args.namespace), ("labelSelector", &selector)],
            )?;
            pods["items"]
                .as_array()
                .and_then(|items| items.first())
                .and_then(|p| p["metadata"]["name"].as_str())
                .map(str::to_string)
                .with_context(|| format!("job \"{job}\" has no pods"))?
        }
        Some((kind_name, _)) => {
            bail!("logs of a {kind_name} are not supported; name a pod or a job")
        }
        None => args.pod.clone(),
    };
    let tail = args.tail.map(|t| t.to_string());
    let mut query = vec![("namespace", args.namespace.as_str())];
    if let Some(container) = &args.container {
        query.push(("container", container));
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
        &format!("/drover/v0/pods/{name}/log"),
        &query,
        &mut std::io::stdout().lock(),
    )
}

/// `drover cordon` / `uncordon`.
pub fn cordon(client: &Client, name: &str, unschedulable: bool) -> anyhow::Result<()> {
    let verb = if unschedulable { "cordon" } else { "uncordon" };
    let answer = client.post(&format!("/drover/v0/nodes/{name}/{verb}"), &json!({}))?;
    let done = if unschedulable {
        "cordoned"
    } else {
        "uncordoned"
    };
    if answer["changed"] == true {
        println!("node/{name} {done}");
    } else {
        println!("node/{name} already {done}");
    }
    Ok(())
}
