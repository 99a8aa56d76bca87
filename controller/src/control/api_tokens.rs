//! API tokens: the control loop is the store's only writer, so new and deleted tokens go
//! through it; reads come from the store's shared token table.

use serde_json::{json, Value};

use super::api::ApiError;
use super::Control;
use crate::store::StoredApiToken;

impl Control {
    pub(super) fn create_api_token(&mut self, token: &StoredApiToken) -> Result<Value, ApiError> {
        if !self.store.put_api_token(token, false)? {
            return Err(ApiError {
                status: 409,
                message: format!("kubeconfigs \"{}\" already exists", token.name),
            });
        }
        Ok(json!({"name": token.name, "role": token.role}))
    }

    pub(super) fn delete_api_token(&mut self, name: &str) -> Result<Value, ApiError> {
        if !self.store.delete_api_token(name)? {
            return Err(ApiError {
                status: 404,
                message: format!("kubeconfigs \"{name}\" not found"),
            });
        }
        Ok(json!({"name": name}))
    }
}
