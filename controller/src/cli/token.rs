//! `drover token create|list|delete`: join tokens for enrolling nodes.

use clap::Subcommand;
use serde_json::{json, Value};

use super::Client;
use crate::api::kubeconfigs::JOIN_TOKENS;

/// Join token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a join token and print it (the only time its secret is shown)
    Create {
        /// Lifetime, e.g. 24h or 30m (default: no expiry)
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// How many nodes may enroll with it (default: unlimited)
        #[arg(long, value_name = "N")]
        uses: Option<u32>,
        /// Label every node enrolled with it gets, repeatable: --label zone=north
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
    },
    /// List join tokens (ids, expiry, uses left; never secrets)
    List,
    /// Delete a join token: no node can enroll with it any more (enrolled nodes stay)
    Delete {
        /// Token id (the part after the fingerprint; see `drover token list`)
        id: String,
    },
}

/// Runs a token command.
pub fn token(client: &Client, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { ttl, uses, labels } => {
            let answer = client.post(
                JOIN_TOKENS,
                &json!({"ttl": ttl, "uses": uses, "labels": labels}),
            )?;
            println!("{}", answer["token"].as_str().unwrap_or_default());
        }
        TokenCommand::List => {
            let answer = client.get(JOIN_TOKENS, &[])?;
            let rows: Vec<Vec<String>> = answer["items"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(row)
                .collect();
            print!(
                "{}",
                super::table::render(&["ID", "EXPIRES", "USES-LEFT", "LABELS"], &rows)
            );
        }
        TokenCommand::Delete { id } => {
            client.delete(&format!("{JOIN_TOKENS}/{id}"), &[])?;
            println!("token/{id} deleted");
        }
    }
    Ok(())
}

fn row(token: &Value) -> Vec<String> {
    let text = |v: &Value, none: &str| v.as_str().map_or(none.to_string(), str::to_string);
    vec![
        text(&token["id"], ""),
        text(&token["expires"], "<never>"),
        token["usesLeft"]
            .as_u64()
            .map_or("<unlimited>".to_string(), |n| n.to_string()),
        token["labels"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "<none>".to_string()),
    ]
}
