//! The CLI's HTTP client for the controller API.

use std::time::Duration;

use anyhow::{anyhow, bail};
use serde_json::Value;

/// A connection to the controller's API.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:6443`).
    pub fn new(base: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn finish(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Value> {
        let mut response = result.map_err(|e| match e {
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => anyhow!(
                "cannot reach the drover server at {} ({e}); is `drover server` running? (set --server or DROVER_SERVER)",
                self.base
            ),
            other => anyhow!("request to {} failed: {other}", self.base),
        })?;
        let status = response.status();
        let body: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| anyhow!("unreadable answer from {} (HTTP {status}): {e}", self.base))?;
        if !status.is_success() {
            match body.get("error").and_then(Value::as_str) {
                Some(message) => bail!("{message}"),
                None => bail!("the server answered HTTP {status}"),
            }
        }
        Ok(body)
    }

    /// GET with query parameters.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        let request = self
            .agent
            .get(self.url(path))
            .query_pairs(query.iter().copied());
        self.finish(request.call())
    }

    /// DELETE with query parameters.
    pub fn delete(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        let request = self
            .agent
            .delete(self.url(path))
            .query_pairs(query.iter().copied());
        self.finish(request.call())
    }

    /// GET whose body is copied to `out` as it arrives (for logs; no overall timeout).
    pub fn stream(
        &self,
        path: &str,
        query: &[(&str, &str)],
        out: &mut impl std::io::Write,
    ) -> anyhow::Result<()> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        let result = agent
            .get(self.url(path))
            .query_pairs(query.iter().copied())
            .call();
        let response = match result {
            Ok(r) if r.status().is_success() => r,
            other => return self.finish(other).map(|_| ()),
        };
        let mut reader = response.into_body().into_reader();
        let mut buffer = [0u8; 8192];
        loop {
            let n = std::io::Read::read(&mut reader, &mut buffer)?;
            if n == 0 {
                return Ok(());
            }
            out.write_all(&buffer[..n])?;
            out.flush()?;
        }
    }

    /// POST a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.finish(self.agent.post(self.url(path)).send_json(body))
    }
}
