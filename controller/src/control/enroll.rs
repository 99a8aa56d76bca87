//! Enrollment, join tokens and revocation: who may join the fleet and speak for a node.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_proto::keys::sha256;
use drover_proto::msg::{EnrollReply, EnrollRequest};
use drover_proto::session::ControllerSession;
use drover_proto::token::{proof_matches, JoinToken, TokenRecord, TokenRefusal};
use drover_proto::topic::EnrollTopic;
use drover_proto::Message;
use serde_json::{json, Value};
use tracing::{info, warn};

use super::api::ApiError;
use super::Control;
use crate::accounts::BrokerAccounts;
use crate::credentials::{Credentials, NodeCredential, CONTROLLER_USER};
use crate::mqtt::Outgoing;
use crate::store::StoredCredential;

/// The controller's trust material, shared with the MQTT adapter and the API.
#[derive(Clone)]
pub struct Security {
    /// Who may connect to the broker.
    pub credentials: Credentials,
    /// Signs everything the controller publishes.
    pub session: Arc<ControllerSession>,
    /// The CA certificate (DER) that join tokens name.
    pub ca_der: Vec<u8>,
    /// The CA's signature vouching for the controller's key.
    pub attestation: Vec<u8>,
    /// The broker's side of enrollments, revocations and tokens.
    pub accounts: Arc<dyn BrokerAccounts>,
}

impl Security {
    /// The fingerprint join tokens carry.
    pub fn ca_fingerprint(&self) -> [u8; 32] {
        sha256(&self.ca_der)
    }
}

/// What the store records as the token of the server's own agent, enrolled without one.
pub(super) const LOCAL_TOKEN: &str = "local";

fn reserved(node: &str) -> bool {
    node == CONTROLLER_USER || node.starts_with("drover-enroll-")
}

impl Control {
    /// Loads tokens and credentials into the shared table.
    pub(super) fn load_credentials(&mut self) -> anyhow::Result<()> {
        for token in self.store.tokens()? {
            self.security
                .credentials
                .set_token(&token.id, token.login_hash);
        }
        for credential in self.store.credentials()? {
            self.security.credentials.set_node(
                &credential.node,
                NodeCredential {
                    public_key: credential.public_key,
                    password_hash: credential.password_hash,
                },
            );
        }
        Ok(())
    }

    /// Answers an enrollment request.
    pub(super) fn on_enroll(&mut self, token: &str, request: EnrollRequest, now: DateTime<Utc>) {
        let node = request.node.clone();
        let admitted = self.admit(token, &request, now).and_then(|()| {
            self.store
                .current_desired_generation()
                .map_err(|e| format!("the controller cannot read its store: {e}"))
        });
        let reply = match admitted {
            Ok(generation_floor) => {
                info!(node, token, key = %request.public_key, "node enrolled");
                EnrollReply::Accepted {
                    controller_key: self.security.session.public(),
                    attestation: self.security.attestation.clone(),
                    ca_der: self.security.ca_der.clone(),
                    node_key: request.public_key,
                    generation_floor,
                }
            }
            Err(reason) => {
                warn!(node, token, %reason, "enrollment refused");
                self.metrics.enrollment_refused();
                EnrollReply::Refused { reason }
            }
        };
        let topic = EnrollTopic::Reply.for_token(token, &node);
        match self
            .security
            .session
            .seal(&topic, &Message::EnrollReply(reply))
        {
            Ok(payload) => {
                self.publisher.send(Outgoing {
                    topic,
                    payload,
                    retain: false,
                });
            }
            Err(e) => warn!(error = %e, "cannot encode an enrollment reply"),
        }
    }

    fn admit(
        &mut self,
        token_id: &str,
        request: &EnrollRequest,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let node = &request.node;
        if reserved(node) {
            return Err(format!("the node name \"{node}\" is reserved"));
        }
        let store_error = |e: crate::store::StoreError| {
            format!("the controller cannot store the enrollment: {e}")
        };
        let mut token = self
            .store
            .token(token_id)
            .map_err(store_error)?
            .ok_or_else(|| TokenRefusal::Unknown.to_string())?;
        if !proof_matches(
            &token.proof_key,
            node,
            &request.public_key.0,
            &request.password,
            &request.token_proof,
        ) {
            return Err(TokenRefusal::WrongSecret.to_string());
        }
        match self.store.credential(node).map_err(store_error)? {
            // The agent asking again (its answer was lost): same answer, no use spent.
            Some(existing) if existing.public_key == request.public_key => return Ok(()),
            Some(_) => {
                return Err(format!(
                    "node \"{node}\" is already enrolled with another key; if this is a reinstalled device, delete the old node first (drover delete node {node})"
                ))
            }
            None => {}
        }
        token
            .usable(now.timestamp_millis())
            .map_err(|e| e.to_string())?;
        if let Some(uses) = token.uses_left.as_mut() {
            *uses -= 1;
        }
        let credential = StoredCredential {
            node: node.clone(),
            public_key: request.public_key,
            password_hash: sha256(request.password.as_bytes()),
            token: token_id.to_string(),
            labels: token.labels.clone(),
            enrolled_at: now,
        };
        self.store
            .enroll(&credential, Some(&token))
            .map_err(store_error)?;
        self.security.credentials.set_node(
            node,
            NodeCredential {
                public_key: credential.public_key,
                password_hash: credential.password_hash,
            },
        );
        self.security
            .accounts
            .node_enrolled(node, &request.password);
        Ok(())
    }

    /// The key desired states are sealed with.
    pub fn controller_key(&self) -> drover_proto::keys::PublicKey {
        self.security.session.public()
    }

    /// Enrolls the server's own agent without a token.
    pub fn enroll_local(
        &mut self,
        node: &str,
        public_key: drover_proto::keys::PublicKey,
        password: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if let Some(other) = self.store.credential(node)? {
            if other.token != LOCAL_TOKEN {
                anyhow::bail!(
                    "node \"{node}\" is enrolled by another device; give the server's agent another --node-name, or delete that node first"
                );
            }
        }
        let credential = StoredCredential {
            node: node.to_string(),
            public_key,
            password_hash: sha256(password.as_bytes()),
            token: LOCAL_TOKEN.to_string(),
            labels: Vec::new(),
            enrolled_at: now,
        };
        self.store.enroll(&credential, None)?;
        self.security.credentials.set_node(
            node,
            NodeCredential {
                public_key,
                password_hash: credential.password_hash,
            },
        );
        self.security.accounts.node_enrolled(node, password);
        Ok(())
    }

    /// Revokes a node's credentials: no new connection, and the open one is closed.
    pub(super) fn revoke(&mut self, node: &str) -> anyhow::Result<()> {
        self.security.credentials.remove_node(node);
        let had = self.store.revoke(node)?;
        self.security.accounts.node_revoked(node);
        if had {
            info!(node, "node credentials revoked");
        }
        Ok(())
    }

    /// Creates a join token; returns it as text (the only time its secret is shown).
    pub(super) fn create_token(
        &mut self,
        ttl: Option<Duration>,
        uses: Option<u32>,
        labels: Vec<(String, String)>,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiError> {
        for (key, value) in &labels {
            drover_proto::manifest::validate_label_key(key).map_err(ApiError::bad_request)?;
            drover_proto::manifest::validate_label_value(value).map_err(ApiError::bad_request)?;
        }
        let token = loop {
            let random = drover_proto::random::random_bytes::<20>()
                .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
            let token = JoinToken::from_random(self.security.ca_fingerprint(), random);
            // Ids are 32 bits: a new one never replaces a token that exists.
            if self
                .store
                .token(&token.id)
                .map_err(ApiError::from)?
                .is_none()
            {
                break token;
            }
        };
        let expires_ms = ttl.map(|ttl| now.timestamp_millis() + ttl.as_millis() as i64);
        let record = TokenRecord {
            id: token.id.clone(),
            login_hash: token.login_hash(),
            proof_key: token.proof_key(),
            created_ms: now.timestamp_millis(),
            expires_ms,
            uses_left: uses,
            labels,
        };
        self.store.put_token(&record).map_err(ApiError::from)?;
        self.security
            .credentials
            .set_token(&record.id, record.login_hash);
        self.security.accounts.token_added(&token);
        info!(token = %record.id, "join token created");
        Ok(json!({"id": record.id, "token": token.to_string(), "token_info": token_json(&record)}))
    }

    /// Every token, without secrets.
    pub(super) fn list_tokens(&self) -> Result<Value, ApiError> {
        let tokens = self.store.tokens().map_err(ApiError::from)?;
        Ok(json!({"items": tokens.iter().map(token_json).collect::<Vec<_>>()}))
    }

    /// Deletes a token: no enrollment with it from now on (enrolled nodes stay).
    pub(super) fn delete_token(&mut self, id: &str) -> Result<Value, ApiError> {
        if !self.store.delete_token(id).map_err(ApiError::from)? {
            return Err(ApiError::not_found_message(format!(
                "join token \"{id}\" not found"
            )));
        }
        self.security.credentials.remove_token(id);
        self.security.accounts.token_removed(id);
        info!(token = id, "join token deleted");
        Ok(json!({"id": id}))
    }
}

fn token_json(record: &TokenRecord) -> Value {
    let time = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).map(crate::object::timestamp);
    json!({
        "id": record.id,
        "created": time(record.created_ms),
        "expires": record.expires_ms.and_then(time),
        "usesLeft": record.uses_left,
        "labels": record.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    })
}
