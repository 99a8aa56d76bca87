//! Bearer tokens of the Kubernetes API, kept as SHA-256 hashes (the tokens themselves live
//! only in the kubeconfig files handed out).
//!
//! Written through like objects: the table's rows are mirrored in memory, in a handle the
//! API's authentication layer reads without going through the control loop.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use drover_proto::keys::{constant_time_eq, sha256};
use rusqlite::params;

use super::{Store, StoreError};

/// One API token as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiToken {
    /// Its name; also the user name the API sees (`admin`, `viewer`, …).
    pub name: String,
    /// The role it grants (`admin`, `view`); the API decides what a role may do.
    pub role: String,
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// The in-memory mirror of the API token table, shared with the API.
#[derive(Debug, Clone, Default)]
pub struct ApiTokenTable(Arc<RwLock<Vec<StoredApiToken>>>);

impl ApiTokenTable {
    /// The token that `presented` is, if any. Every stored hash is compared, in constant
    /// time, so the answer's timing says nothing about which hash came close.
    pub fn authenticate(&self, presented: &str) -> Option<StoredApiToken> {
        let hash = sha256(presented.as_bytes());
        let tokens = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut found = None;
        for token in tokens.iter() {
            if constant_time_eq(&token.token_hash, &hash) {
                found = Some(token.clone());
            }
        }
        found
    }

    /// Every token, by name.
    pub fn list(&self) -> Vec<StoredApiToken> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace(&self, tokens: Vec<StoredApiToken>) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = tokens;
    }
}

impl Store {
    /// The shared, always current view of the API tokens.
    pub fn api_token_table(&self) -> ApiTokenTable {
        self.api_tokens.clone()
    }

    /// Adds a token; `false` (nothing changed) if one with its name exists, unless
    /// `replace`.
    pub fn put_api_token(
        &mut self,
        token: &StoredApiToken,
        replace: bool,
    ) -> Result<bool, StoreError> {
        let sql = if replace {
            "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET role = excluded.role,
                token_hash = excluded.token_hash, created_at = excluded.created_at"
        } else {
            "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING"
        };
        let changed = self.db.execute(
            sql,
            params![
                token.name,
                token.role,
                token.token_hash.to_vec(),
                token.created_at.to_rfc3339()
            ],
        )? > 0;
        self.reload_api_tokens()?;
        Ok(changed)
    }

    /// Deletes a token; whether it existed.
    pub fn delete_api_token(&mut self, name: &str) -> Result<bool, StoreError> {
        let deleted = self
            .db
            .execute("DELETE FROM api_tokens WHERE name = ?1", params![name])?
            > 0;
        self.reload_api_tokens()?;
        Ok(deleted)
    }

    /// Every token, by name.
    pub fn api_tokens(&self) -> Vec<StoredApiToken> {
        self.api_tokens.list()
    }

    pub(super) fn reload_api_tokens(&mut self) -> Result<(), StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT name, role, token_hash, created_at FROM api_tokens ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut tokens = Vec::new();
        for row in rows {
            let (name, role, hash, at) = row?;
            tokens.push(StoredApiToken {
                token_hash: super::security::blob32(
                    hash,
                    &format!("the hash of API token {name}"),
                )?,
                created_at: super::parse_time(&at)?,
                role,
                name,
            });
        }
        self.api_tokens.replace(tokens);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, secret: &str, role: &str) -> StoredApiToken {
        StoredApiToken {
            name: name.into(),
            role: role.into(),
            token_hash: sha256(secret.as_bytes()),
            created_at: DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn a_token_is_found_by_its_secret_and_only_by_it() {
        let mut store = Store::in_memory().unwrap();
        let table = store.api_token_table();
        assert!(store
            .put_api_token(&token("admin", "s3cret", "admin"), false)
            .unwrap());
        assert!(store
            .put_api_token(&token("viewer", "other", "view"), false)
            .unwrap());
        assert_eq!(table.authenticate("s3cret").unwrap().name, "admin");
        assert_eq!(table.authenticate("other").unwrap().role, "view");
        assert_eq!(table.authenticate("s3cre"), None);
        assert_eq!(table.authenticate(""), None);
        let names: Vec<String> = store.api_tokens().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["admin", "viewer"]);
    }

    #[test]
    fn a_name_is_taken_once_unless_replaced() {
        let mut store = Store::in_memory().unwrap();
        let table = store.api_token_table();
        assert!(store
            .put_api_token(&token("admin", "one", "admin"), false)
            .unwrap());
        assert!(!store
            .put_api_token(&token("admin", "two", "admin"), false)
            .unwrap());
        assert!(table.authenticate("two").is_none());
        assert!(store
            .put_api_token(&token("admin", "two", "admin"), true)
            .unwrap());
        assert!(table.authenticate("one").is_none());
        assert!(table.authenticate("two").is_some());
        assert!(store.delete_api_token("admin").unwrap());
        assert!(!store.delete_api_token("admin").unwrap());
        assert!(table.authenticate("two").is_none());
    }

    #[test]
    fn tokens_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            store
                .put_api_token(&token("admin", "kept", "admin"), false)
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.api_token_table().authenticate("kept").unwrap().name,
            "admin"
        );
    }
}
