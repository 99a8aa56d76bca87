//! Join tokens and node credentials in the store.

use chrono::{DateTime, Utc};
use drover_proto::keys::PublicKey;
use drover_proto::token::TokenRecord;
use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// What the store keeps of an enrolled node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// Node name.
    pub node: String,
    /// The node's signing key.
    pub public_key: PublicKey,
    /// SHA-256 of its MQTT password.
    pub password_hash: [u8; 32],
    /// The token it enrolled with.
    pub token: String,
    /// Labels the token gave it.
    pub labels: Vec<(String, String)>,
    /// When it enrolled.
    pub enrolled_at: DateTime<Utc>,
}

pub(super) fn blob32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

impl Store {
    /// Stores (or replaces) a token.
    pub fn put_token(&mut self, token: &TokenRecord) -> Result<(), StoreError> {
        let record = postcard::to_stdvec(token).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.db.execute(
            "INSERT INTO join_tokens (id, record) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            params![token.id, record],
        )?;
        Ok(())
    }

    /// Every token.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let mut stmt = self
            .db
            .prepare_cached("SELECT id, record FROM join_tokens ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut tokens = Vec::new();
        for row in rows {
            let (id, record) = row?;
            tokens.push(
                postcard::from_bytes(&record)
                    .map_err(|e| StoreError::Corrupt(format!("join token {id}: {e}")))?,
            );
        }
        Ok(tokens)
    }

    /// One token.
    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.tokens()?.into_iter().find(|t| t.id == id))
    }

    /// Deletes a token; whether it existed.
    pub fn delete_token(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .execute("DELETE FROM join_tokens WHERE id = ?1", params![id])?
            > 0)
    }

    /// Records an enrollment and the token use it took (if any), in one transaction.
    pub fn enroll(
        &mut self,
        credential: &StoredCredential,
        token: Option<&TokenRecord>,
    ) -> Result<(), StoreError> {
        let labels = serde_json::to_string(&credential.labels)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO node_credentials (node, public_key, password_hash, token, labels, enrolled_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (node) DO UPDATE SET public_key = excluded.public_key,
                password_hash = excluded.password_hash, token = excluded.token,
                labels = excluded.labels, enrolled_at = excluded.enrolled_at",
            params![
                credential.node,
                credential.public_key.0.to_vec(),
                credential.password_hash.to_vec(),
                credential.token,
                labels,
                credential.enrolled_at.to_rfc3339(),
            ],
        )?;
        if let Some(token) = token {
            let record =
                postcard::to_stdvec(token).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                "UPDATE join_tokens SET record = ?2 WHERE id = ?1",
                params![token.id, record],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every enrolled node's credential.
    pub fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT node, public_key, password_hash, token, labels, enrolled_at FROM node_credentials ORDER BY node",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (node, key, hash, token, labels, at) = row?;
            out.push(StoredCredential {
                public_key: PublicKey(blob32(key, &format!("the key of node {node}"))?),
                password_hash: blob32(hash, &format!("the password hash of node {node}"))?,
                token,
                labels: serde_json::from_str(&labels)
                    .map_err(|e| StoreError::Corrupt(format!("labels of node {node}: {e}")))?,
                enrolled_at: super::parse_time(&at)?,
                node,
            });
        }
        Ok(out)
    }

    /// One node's credential.
    pub fn credential(&self, node: &str) -> Result<Option<StoredCredential>, StoreError> {
        let found: Option<String> = self
            .db
            .query_row(
                "SELECT node FROM node_credentials WHERE node = ?1",
                params![node],
                |r| r.get(0),
            )
            .optional()?;
        match found {
            Some(_) => Ok(self.credentials()?.into_iter().find(|c| c.node == node)),
            None => Ok(None),
        }
    }

    /// Revokes a node's credential; whether it had one.
    pub fn revoke(&mut self, node: &str) -> Result<bool, StoreError> {
        Ok(self.db.execute(
            "DELETE FROM node_credentials WHERE node = ?1",
            params![node],
        )? > 0)
    }

    /// The highest desired-state generation published so far, to any node.
    pub fn current_desired_generation(&self) -> Result<u64, StoreError> {
        let counter: i64 = self.db.query_row(
            "SELECT value FROM counters WHERE name = 'desired_generation'",
            [],
            |r| r.get(0),
        )?;
        Ok(counter as u64)
    }

    /// The next desired-state generation: above every generation ever published to any
    /// node (and above `previous`), so that a node deleted and enrolled again can never
    /// be offered an old retained snapshot as newer than its current one.
    pub fn next_desired_generation(&mut self, previous: u64) -> Result<u64, StoreError> {
        let tx = self.db.transaction()?;
        let counter: i64 = tx.query_row(
            "SELECT value FROM counters WHERE name = 'desired_generation'",
            [],
            |r| r.get(0),
        )?;
        let next = (counter as u64).max(previous) + 1;
        tx.execute(
            "UPDATE counters SET value = ?1 WHERE name = 'desired_generation'",
            params![next as i64],
        )?;
        tx.commit()?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(uses: Option<u32>) -> TokenRecord {
        TokenRecord {
            id: "0a0b0c0d".into(),
            login_hash: [1; 32],
            proof_key: [2; 32],
            created_ms: 1,
            expires_ms: None,
            uses_left: uses,
            labels: vec![("zone".into(), "north".into())],
        }
    }

    #[test]
    fn an_enrollment_stores_the_credential_and_spends_a_use_together() {
        let mut store = Store::in_memory().unwrap();
        store.put_token(&token(Some(2))).unwrap();
        let credential = StoredCredential {
            node: "pi".into(),
            public_key: PublicKey([2; 32]),
            password_hash: [3; 32],
            token: "0a0b0c0d".into(),
            labels: vec![("zone".into(), "north".into())],
            enrolled_at: DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        store.enroll(&credential, Some(&token(Some(1)))).unwrap();
        assert_eq!(store.credential("pi").unwrap(), Some(credential));
        assert_eq!(store.token("0a0b0c0d").unwrap().unwrap().uses_left, Some(1));
        assert!(store.revoke("pi").unwrap());
        assert!(!store.revoke("pi").unwrap());
        assert_eq!(store.credential("pi").unwrap(), None);
        assert!(store.delete_token("0a0b0c0d").unwrap());
        assert!(store.tokens().unwrap().is_empty());
    }

    #[test]
    fn desired_generations_never_go_back_across_nodes() {
        let mut store = Store::in_memory().unwrap();
        assert_eq!(store.next_desired_generation(0).unwrap(), 1);
        assert_eq!(store.next_desired_generation(0).unwrap(), 2);
        assert_eq!(store.next_desired_generation(10).unwrap(), 11);
        assert_eq!(store.next_desired_generation(0).unwrap(), 12);
    }
}
