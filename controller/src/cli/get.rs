//! `drover get`: Tables computed by the server, printed as kubectl prints them; `-o json|yaml`
//! print the objects.

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use super::print_table::{print, PrintOptions};
use super::{resource, yaml, Client};

/// What kubectl sends to be answered with a Table, falling back to plain JSON.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json";

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// More columns.
    Wide,
    /// Kubernetes-shaped JSON.
    Json,
    /// Kubernetes-shaped YAML.
    Yaml,
    /// `kind.group/name` of each object.
    Name,
}

/// `get` flags.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Resource type: nodes/no, pods/po, jobs, cronjobs/cj, daemonsets/ds, events/ev, ...;
    /// several comma-separated (pods,jobs), or the category all
    pub resource: String,
    /// Only this object
    pub name: Option<String>,
    /// Output format
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// Label selector, e.g. app=web,tier!=db
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector, e.g. spec.nodeName=pi-1,status.phase=Running
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Namespace
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// List objects in every namespace
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// A LABELS column last
    #[arg(long)]
    pub show_labels: bool,
    /// Keep metadata.managedFields in -o json|yaml (left out by default, as kubectl does)
    #[arg(long)]
    pub show_managed_fields: bool,
    /// Ask for lists in pages of this many objects (0: all in one answer)
    #[arg(long, default_value_t = 500)]
    pub chunk_size: usize,
}

/// Takes `metadata.managedFields` out of an object or of a list's items, as kubectl's
/// printer does unless `--show-managed-fields`: they are the server's bookkeeping and only
/// make an export longer.
pub fn without_managed_fields(value: &mut Value) {
    let strip = |object: &mut Value| {
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("managedFields");
        }
    };
    match value.get_mut("items").and_then(Value::as_array_mut) {
        Some(items) => items.iter_mut().for_each(strip),
        None => strip(value),
    }
}

/// A typed list as kubectl prints it with `-o json|yaml`: a `v1 List` whose items carry
/// their own `apiVersion` and `kind`.
pub fn as_kubectl_list(list: &Value, api_version: &str, kind: &str) -> Value {
    let items: Vec<Value> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut item| {
            if let Some(map) = item.as_object_mut() {
                map.entry("apiVersion")
                    .or_insert_with(|| json!(api_version));
                map.entry("kind").or_insert_with(|| json!(kind));
            }
            item
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

/// JSON as `kubectl -o json` prints it: four-space indents.
pub fn kubectl_json(value: &Value) -> anyhow::Result<String> {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, formatter,
    ))?;
    // Go's encoder escapes these (outside strings they never occur in JSON).
    Ok(String::from_utf8(out)?
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}

fn print_structured(value: &Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Yaml => super::emit(&yaml::to_yaml(value)?),
        _ => super::emit(&format!("{}\n", kubectl_json(value)?)),
    }
}

/// `drover get`.
pub fn get(client: &Client, args: GetArgs) -> anyhow::Result<()> {
    if args.resource.contains(',') || args.resource.eq_ignore_ascii_case("all") {
        return get_kinds(client, &args);
    }
    let (resource, name) = resource::with_name(&args.resource, args.name.clone())?;
    let query = selectors(&args);
    let path = match &name {
        Some(name) => resource::object(resource, &args.namespace, name),
        None => {
            let namespace = (!args.all_namespaces).then_some(args.namespace.as_str());
            resource::collection(resource, namespace)
        }
    };
    let chunk = if name.is_some() { 0 } else { args.chunk_size };
    if args.output == Some(Output::Name) {
        let value = client.list_as(&path, &query, "application/json", chunk)?;
        let objects = match name {
            Some(_) => vec![value],
            None => value["items"].as_array().cloned().unwrap_or_default(),
        };
        let mut text = String::new();
        for object in objects {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            text.push_str(&resource::short_ref(resource, name));
            text.push('\n');
        }
        return super::emit(&text);
    }
    if let Some(output @ (Output::Json | Output::Yaml)) = args.output {
        let value = client.list_as(&path, &query, "application/json", chunk)?;
        let mut value = match name {
            Some(_) => value,
            None => as_kubectl_list(&value, &resource.api_version(), resource.kind),
        };
        if !args.show_managed_fields {
            without_managed_fields(&mut value);
        }
        return print_structured(&value, output);
    }
    let table = client.list_as(&path, &query, TABLE_ACCEPT, chunk)?;
    let mut options = PrintOptions::for_listing(resource, &args.namespace, args.all_namespaces);
    options.wide = args.output == Some(Output::Wide);
    options.show_labels = args.show_labels;
    let printed = print(&table, &options);
    eprint!("{}", printed.stderr);
    super::emit(&printed.stdout)
}

fn selectors(args: &GetArgs) -> Vec<(&'static str, &str)> {
    let mut query = vec![];
    if let Some(selector) = &args.selector {
        query.push(("labelSelector", selector.as_str()));
    }
    if let Some(selector) = &args.field_selector {
        query.push(("fieldSelector", selector.as_str()));
    }
    query
}

/// `get pods,jobs` or `get all`: each kind's table after the other, names prefixed with
/// their kind, as kubectl prints several kinds; `-o json|yaml` one `List` of every item;
/// `-o name` every name. With a name, each kind is asked for it, and the kinds that have
/// none are errors after what was found.
fn get_kinds(client: &Client, args: &GetArgs) -> anyhow::Result<()> {
    if args.resource.contains('/') {
        anyhow::bail!("there is no need to give a name in {}", args.resource);
    }
    let resources = resource::resolve_many(&args.resource)?;
    let query = selectors(args);
    let namespace = (!args.all_namespaces).then_some(args.namespace.as_str());
    let path = |resource: &crate::api::resources::Resource| match &args.name {
        Some(name) => resource::object(resource, &args.namespace, name),
        None => resource::collection(resource, namespace),
    };
    let chunk = if args.name.is_some() {
        0
    } else {
        args.chunk_size
    };
    let mut missing = Vec::new();
    let mut found = |result: anyhow::Result<Value>| match result {
        Ok(value) => Some(value),
        Err(e) => {
            missing.push(super::error_line(&e));
            None
        }
    };
    match args.output {
        Some(output @ (Output::Json | Output::Yaml | Output::Name)) => {
            let mut items = Vec::new();
            for resource in &resources {
                let listed = client.list_as(&path(resource), &query, "application/json", chunk);
                let Some(value) = found(listed) else {
                    continue;
                };
                let value = match args.name {
                    Some(_) => json!({"items": [value]}),
                    None => value,
                };
                let list = as_kubectl_list(&value, &resource.api_version(), resource.kind);
                for item in list["items"].as_array().into_iter().flatten() {
                    items.push((*resource, item.clone()));
                }
            }
            if output == Output::Name {
                let mut text = String::new();
                for (resource, item) in &items {
                    let name = item["metadata"]["name"].as_str().unwrap_or_default();
                    text.push_str(&resource::short_ref(resource, name));
                    text.push('\n');
                }
                super::emit(&text)?;
            } else {
                let items: Vec<Value> = items.into_iter().map(|(_, item)| item).collect();
                let mut list = as_kubectl_list(&json!({"items": items}), "v1", "List");
                if !args.show_managed_fields {
                    without_managed_fields(&mut list);
                }
                print_structured(&list, output)?;
            }
        }
        Some(Output::Wide) | None => {
            let mut stdout = String::new();
            let mut nothing = String::new();
            for resource in &resources {
                let listed = client.list_as(&path(resource), &query, TABLE_ACCEPT, chunk);
                let Some(table) = found(listed) else {
                    continue;
                };
                let mut options =
                    PrintOptions::for_listing(resource, &args.namespace, args.all_namespaces);
                options.wide = args.output == Some(Output::Wide);
                options.show_labels = args.show_labels;
                options.with_kind = Some(super::print_table::kind_prefix(resource));
                let printed = print(&table, &options);
                if printed.stdout.is_empty() {
                    nothing = printed.stderr;
                    continue;
                }
                if !stdout.is_empty() {
                    stdout.push('\n');
                }
                stdout.push_str(&printed.stdout);
            }
            if stdout.is_empty() && missing.is_empty() {
                eprint!("{nothing}");
            }
            super::emit(&stdout)?;
        }
    }
    if !missing.is_empty() {
        anyhow::bail!("{}", missing.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_indented_as_kubectl_indents_it() {
        assert_eq!(
            kubectl_json(&json!({"a": [1]})).unwrap(),
            "{\n    \"a\": [\n        1\n    ]\n}"
        );
        assert_eq!(
            kubectl_json(&json!("2>/dev/null && x")).unwrap(),
            "\"2\\u003e/dev/null \\u0026\\u0026 x\""
        );
    }

    #[test]
    fn managed_fields_are_left_out_of_objects_and_list_items() {
        let object =
            || json!({"metadata": {"name": "pi", "managedFields": [{"manager": "kubectl"}]}});
        let mut one = object();
        without_managed_fields(&mut one);
        assert_eq!(one, json!({"metadata": {"name": "pi"}}));
        let mut list = json!({"kind": "List", "items": [object(), object()]});
        without_managed_fields(&mut list);
        assert_eq!(
            list["items"],
            json!([{"metadata": {"name": "pi"}}, {"metadata": {"name": "pi"}}])
        );
    }

    #[test]
    fn lists_print_as_kubectl_lists() {
        let list = json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {"resourceVersion": "7"},
                          "items": [{"metadata": {"name": "pi"}}]});
        let printed = as_kubectl_list(&list, "batch/v1", "Job");
        assert_eq!(
            printed,
            json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                   "items": [{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"}}]})
        );
    }
}
