//! `drover kubeconfig create|list|delete`: API credentials for people and tools.

use clap::Subcommand;
use serde_json::{json, Value};

use super::Client;
use crate::api::kubeconfigs::PATH;

/// kubeconfig commands.
#[derive(Debug, Subcommand)]
pub enum KubeconfigCommand {
    /// Create a token and print a kubeconfig holding it (the only time the token is
    /// shown). Its server is the URL this command used: pass --server with the address
    /// its user will reach
    Create {
        /// Its name, which is also the user name the API sees
        name: String,
        /// What it may do: view (get, list, watch, logs) or admin (everything)
        #[arg(long, default_value = "view", value_parser = ["view", "admin"])]
        role: String,
    },
    /// List API tokens (names and roles; never tokens)
    List,
    /// Delete an API token: kubeconfigs holding it stop working at once
    Delete {
        /// Its name
        name: String,
    },
}

/// Runs a kubeconfig command.
pub fn kubeconfig(client: &Client, command: KubeconfigCommand) -> anyhow::Result<()> {
    match command {
        KubeconfigCommand::Create { name, role } => {
            let Some(ca_pem) = client.ca_pem() else {
                anyhow::bail!(
                    "no CA to put into the kubeconfig: connect over https with a kubeconfig"
                );
            };
            let answer = client.post(PATH, &json!({"name": name, "role": role}))?;
            let token = answer["token"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("the server returned no token"))?;
            print!(
                "{}",
                crate::kubeconfig::render(client.server(), ca_pem, &name, token)?
            );
        }
        KubeconfigCommand::List => {
            let answer = client.get(PATH, &[])?;
            let rows: Vec<Vec<String>> = answer["items"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(row)
                .collect();
            print!(
                "{}",
                super::table::render(&["NAME", "ROLE", "CREATED"], &rows)
            );
        }
        KubeconfigCommand::Delete { name } => {
            client.delete(&format!("{PATH}/{name}"), &[])?;
            println!("kubeconfig/{name} deleted");
        }
    }
    Ok(())
}

fn row(item: &Value) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    vec![
        text(&item["metadata"]["name"]),
        text(&item["role"]),
        text(&item["metadata"]["creationTimestamp"]),
    ]
}
