//! Commands for Mosquitto's dynamic-security API and its replies, without I/O.
//!
//! The controller publishes a payload from here on [`COMMAND_TOPIC`] (QoS 1) and reads the
//! answer on [`RESPONSE_TOPIC`]: one message per payload, one response per command, in
//! order, each echoing the command's `correlationData`.
//!
//! Every builder is idempotent: it first deletes what it is about to create, so running it
//! again (after a lost reply, or a controller restart) converges. Deleting a client in
//! Mosquitto 2.0.11 also disconnects its open connections ("disconnected by administrative
//! action"), so re-enrolling a node or revoking it closes the old session at once.

use serde::Deserialize;
use serde_json::{json, Value};
use thiserror::Error;

use super::acl::{enroll_acls, node_acls};
use super::{enroll_username, node_client_id, node_role, node_username, NameError};

/// Where the controller publishes commands.
pub const COMMAND_TOPIC: &str = "$CONTROL/dynamic-security/v1";

/// Where the broker answers.
pub const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";

/// Errors of building a command or reading a reply.
#[derive(Debug, Error)]
pub enum DynsecError {
    /// The name cannot be a broker identity.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The reply is not the plugin's `{"responses":[...]}` JSON.
    #[error("dynamic-security reply on {RESPONSE_TOPIC} is not valid: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The broker refused a command.
    #[error("dynamic-security command {command} ({correlation}) failed: {error}")]
    Refused {
        /// The command name, e.g. `createClient`.
        command: String,
        /// The `correlationData` of the command, naming the request (e.g. `enroll_node:pi`).
        correlation: String,
        /// The broker's error text.
        error: String,
    },
}

/// The commands that make `node` a broker client with `password`, allowed only its own
/// topics and only with client id `drover-agent-{node}`. Replaces an earlier enrollment of
/// the same node (and disconnects it).
pub fn enroll_node(node: &str, password: &str) -> Result<Vec<u8>, DynsecError> {
    let username = node_username(node)?;
    let role = node_role(node);
    let tag = format!("enroll_node:{node}");
    Ok(payload(
        &tag,
        vec![
            json!({"command": "deleteClient", "username": username}),
            json!({"command": "deleteRole", "rolename": role}),
            json!({"command": "createRole", "rolename": role, "acls": node_acls(node)}),
            json!({
                "command": "createClient",
                "username": username,
                "password": password,
                "clientid": node_client_id(node),
                "roles": [{"rolename": role, "priority": 0}],
            }),
        ],
    ))
}

/// The commands that remove `node` from the broker, closing its open connection.
pub fn revoke_node(node: &str) -> Result<Vec<u8>, DynsecError> {
    let username = node_username(node)?;
    let tag = format!("revoke_node:{node}");
    Ok(payload(
        &tag,
        vec![
            json!({"command": "deleteClient", "username": username}),
            json!({"command": "deleteRole", "rolename": node_role(node)}),
        ],
    ))
}

/// The commands that let agents holding join token `id` with `secret` connect (as
/// `drover-enroll-{id}`, any client id: dynamic security binds only an exact one) and use
/// that token's enrollment topics. Replaces an earlier token with the same id.
pub fn add_token(id: &str, secret: &str) -> Result<Vec<u8>, DynsecError> {
    let username = enroll_username(id)?;
    let tag = format!("add_token:{id}");
    Ok(payload(
        &tag,
        vec![
            json!({"command": "deleteClient", "username": username}),
            json!({"command": "deleteRole", "rolename": username}),
            json!({"command": "createRole", "rolename": username, "acls": enroll_acls(id)}),
            // Bound to one client id, its user name: a token holder cannot take over a
            // node's or the controller's session by connecting with their client id.
            json!({
                "command": "createClient",
                "username": username,
                "password": secret,
                "clientid": username,
                "roles": [{"rolename": username, "priority": 0}],
            }),
        ],
    ))
}

/// The commands that remove join token `id`, closing connections that use it.
pub fn remove_token(id: &str) -> Result<Vec<u8>, DynsecError> {
    let username = enroll_username(id)?;
    let tag = format!("remove_token:{id}");
    Ok(payload(
        &tag,
        vec![
            json!({"command": "deleteClient", "username": username}),
            json!({"command": "deleteRole", "rolename": username}),
        ],
    ))
}

fn payload(tag: &str, commands: Vec<Value>) -> Vec<u8> {
    let commands: Vec<Value> = commands
        .into_iter()
        .map(|mut c| {
            if let Some(fields) = c.as_object_mut() {
                fields.insert("correlationData".into(), Value::String(tag.to_owned()));
            }
            c
        })
        .collect();
    json!({ "commands": commands }).to_string().into_bytes()
}

/// One command's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Response {
    /// The command it answers (`Unknown command` when the payload was not JSON).
    pub command: String,
    /// The command's `correlationData`, when it had one.
    #[serde(rename = "correlationData", default)]
    pub correlation: Option<String>,
    /// Absent when the command succeeded.
    #[serde(default)]
    pub error: Option<String>,
}

impl Response {
    /// Whether the command achieved what it was for. The deletes that make every builder
    /// idempotent report `Client not found`/`Role not found` when there was nothing to
    /// delete, which is success.
    pub fn succeeded(&self) -> bool {
        match self.error.as_deref() {
            None => true,
            Some("Client not found") => self.command == "deleteClient",
            Some("Role not found") => self.command == "deleteRole",
            Some(_) => false,
        }
    }
}

#[derive(Deserialize)]
struct Responses {
    responses: Vec<Response>,
}

/// Parses a message from [`RESPONSE_TOPIC`].
pub fn parse_responses(payload: &[u8]) -> Result<Vec<Response>, DynsecError> {
    Ok(serde_json::from_slice::<Responses>(payload)?.responses)
}

/// The first command in `responses` that failed, as an error.
pub fn check(responses: &[Response]) -> Result<(), DynsecError> {
    match responses.iter().find(|r| !r.succeeded()) {
        None => Ok(()),
        Some(r) => Err(DynsecError::Refused {
            command: r.command.clone(),
            correlation: r.correlation.clone().unwrap_or_default(),
            error: r.error.clone().unwrap_or_default(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(payload: &[u8]) -> Vec<Value> {
        let v: Value = serde_json::from_slice(payload).expect("builders emit JSON");
        v["commands"].as_array().expect("commands array").clone()
    }

    fn names(payload: &[u8]) -> Vec<String> {
        commands(payload)
            .iter()
            .map(|c| c["command"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn enroll_node_replaces_any_earlier_client_and_role() {
        let p = enroll_node("pi", "s3cret").expect("valid node");
        assert_eq!(
            names(&p),
            ["deleteClient", "deleteRole", "createRole", "createClient"]
        );
        let c = commands(&p);
        assert_eq!(c[0]["username"], "pi");
        assert_eq!(c[1]["rolename"], "drover-node-pi");
    }

    #[test]
    fn enroll_node_binds_username_password_client_id_and_role() {
        let c = commands(&enroll_node("pi", "s3cret").expect("valid node"));
        assert_eq!(
            c[3],
            json!({
                "command": "createClient",
                "username": "pi",
                "password": "s3cret",
                "clientid": "drover-agent-pi",
                "roles": [{"rolename": "drover-node-pi", "priority": 0}],
                "correlationData": "enroll_node:pi",
            })
        );
    }

    #[test]
    fn enroll_node_role_carries_the_nodes_exact_topics() {
        let c = commands(&enroll_node("pi", "x").expect("valid node"));
        assert_eq!(c[2]["rolename"], "drover-node-pi");
        assert_eq!(
            c[2]["acls"][0],
            json!({"acltype": "publishClientSend", "topic": "drover/v1/nodes/pi/presence", "allow": true})
        );
        let acls = c[2]["acls"].as_array().expect("acls");
        assert!(acls.iter().all(|a| a["topic"]
            .as_str()
            .unwrap_or_default()
            .starts_with("drover/v1/nodes/pi/")));
    }

    #[test]
    fn passwords_are_json_escaped() {
        let c = commands(&enroll_node("pi", "a\"b\\c").expect("valid node"));
        assert_eq!(c[3]["password"], "a\"b\\c");
    }

    #[test]
    fn revoke_node_deletes_client_and_role() {
        let c = commands(&revoke_node("pi").expect("valid node"));
        assert_eq!(
            c,
            [
                json!({"command": "deleteClient", "username": "pi", "correlationData": "revoke_node:pi"}),
                json!({"command": "deleteRole", "rolename": "drover-node-pi", "correlationData": "revoke_node:pi"}),
            ]
        );
    }

    #[test]
    fn add_token_creates_a_client_bound_to_its_own_id_with_the_tokens_role() {
        let p = add_token("t1", "tok").expect("valid token");
        assert_eq!(
            names(&p),
            ["deleteClient", "deleteRole", "createRole", "createClient"]
        );
        let c = commands(&p);
        assert_eq!(c[2]["rolename"], "drover-enroll-t1");
        assert_eq!(
            c[3],
            json!({
                "command": "createClient",
                "username": "drover-enroll-t1",
                "password": "tok",
                "clientid": "drover-enroll-t1",
                "roles": [{"rolename": "drover-enroll-t1", "priority": 0}],
                "correlationData": "add_token:t1",
            })
        );
    }

    #[test]
    fn remove_token_deletes_client_and_role() {
        let c = commands(&remove_token("t1").expect("valid token"));
        assert_eq!(c[0]["command"], "deleteClient");
        assert_eq!(c[0]["username"], "drover-enroll-t1");
        assert_eq!(c[1]["command"], "deleteRole");
        assert_eq!(c[1]["rolename"], "drover-enroll-t1");
    }

    #[test]
    fn unsafe_names_build_no_command() {
        assert!(matches!(
            enroll_node("a/#", "x"),
            Err(DynsecError::Name(NameError::InvalidNode(_)))
        ));
        assert!(matches!(
            revoke_node("drover-controller"),
            Err(DynsecError::Name(NameError::ReservedNode(_)))
        ));
        assert!(matches!(
            add_token("+", "x"),
            Err(DynsecError::Name(NameError::InvalidToken(_)))
        ));
        assert!(remove_token("").is_err());
    }

    // Replies below have the shape Mosquitto 2.0.11 sends (seen with mosquitto_sub).
    #[test]
    fn a_reply_with_only_not_found_deletes_is_success() {
        let r = parse_responses(
            br#"{"responses":[{"command":"deleteClient","error":"Client not found","correlationData":"revoke_node:pi"},{"command":"deleteRole","error":"Role not found","correlationData":"revoke_node:pi"}]}"#,
        )
        .expect("valid reply");
        assert_eq!(r[0].correlation.as_deref(), Some("revoke_node:pi"));
        assert!(check(&r).is_ok());
    }

    #[test]
    fn a_refused_create_is_reported_with_its_request() {
        let r = parse_responses(
            br#"{"responses":[{"command":"createRole","correlationData":"enroll_node:pi"},{"command":"createClient","error":"Client already exists","correlationData":"enroll_node:pi"}]}"#,
        )
        .expect("valid reply");
        let e = check(&r).expect_err("createClient failed");
        assert_eq!(
            e.to_string(),
            "dynamic-security command createClient (enroll_node:pi) failed: Client already exists"
        );
    }

    #[test]
    fn not_found_is_a_failure_for_anything_but_its_delete() {
        let r = Response {
            command: "createClient".into(),
            correlation: None,
            error: Some("Role not found".into()),
        };
        assert!(!r.succeeded());
    }

    #[test]
    fn a_reply_to_a_non_json_payload_is_a_failure() {
        let r = parse_responses(
            br#"{"responses":[{"command":"Unknown command","error":"Payload not valid JSON"}]}"#,
        )
        .expect("valid reply");
        assert!(check(&r).is_err());
    }

    #[test]
    fn garbage_replies_are_malformed() {
        assert!(matches!(
            parse_responses(b"nope"),
            Err(DynsecError::Malformed(_))
        ));
    }
}
