//! The CLI's HTTPS client for the controller API: it trusts only the CA its kubeconfig
//! names (no system roots) and sends the kubeconfig's bearer token.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

/// Where the API is and how to prove who we are.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The API's URL.
    pub server: String,
    /// The CA to trust (PEM); required for `https://`.
    pub ca_pem: Option<String>,
    /// Bearer token.
    pub token: Option<String>,
    /// The kubeconfig these came from.
    pub kubeconfig: Option<PathBuf>,
}

impl Target {
    /// The target from `--kubeconfig`/`KUBECONFIG`/the default files, with
    /// `server_override` (`--server`/`DROVER_SERVER`) replacing the kubeconfig's URL.
    pub fn resolve(
        kubeconfig: Option<&Path>,
        server_override: Option<&str>,
    ) -> anyhow::Result<Target> {
        let found = crate::kubeconfig::locate(kubeconfig)?;
        let mut target = match found {
            Some(path) => {
                let config = crate::kubeconfig::load(&path)?;
                Target {
                    server: config.server,
                    ca_pem: config.ca_pem,
                    token: config.token,
                    kubeconfig: Some(path),
                }
            }
            None if server_override.is_some() => Target::default(),
            None => bail!(
                "no kubeconfig found (looked at --kubeconfig, KUBECONFIG, ~/.kube/config and {}); \
                 pass --kubeconfig with the server's <data-dir>/{}",
                crate::kubeconfig::SERVER_DEFAULT,
                crate::kubeconfig::FILE_NAME
            ),
        };
        if let Some(server) = server_override {
            target.server = server.to_string();
        }
        Ok(target)
    }
}

/// A failure the server explained (a `metav1.Status`), shown as kubectl shows it:
/// `Error from server (NotFound): pods "web" not found`, or the message alone for `Invalid`
/// (`The Pod "web" is invalid: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The Status's `reason` (`NotFound`, `AlreadyExists`...), when it has one.
    pub reason: Option<String>,
    /// Its message.
    pub message: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason.as_deref() {
            Some("Invalid") | None => write!(f, "{}", self.message),
            Some(reason) => write!(f, "Error from server ({reason}): {}", self.message),
        }
    }
}

impl std::error::Error for ServerError {}

/// How `drover` prints an error on stderr: a server's as kubectl prints it, others after
/// `error: `.
pub fn error_line(error: &anyhow::Error) -> String {
    match error.downcast_ref::<ServerError>() {
        Some(server) if server.reason.is_some() => server.to_string(),
        _ => format!("error: {error:#}"),
    }
}

/// A connection to the controller's API.
pub struct Client {
    target: Target,
    base: String,
    agent: ureq::Agent,
    tls: Option<ureq::tls::TlsConfig>,
}

fn tls_config(target: &Target) -> anyhow::Result<Option<ureq::tls::TlsConfig>> {
    if !target.server.starts_with("https://") {
        return Ok(None);
    }
    let Some(pem) = &target.ca_pem else {
        bail!(
            "{} names no certificate-authority-data for {}: drover trusts only the CA it is given",
            target
                .kubeconfig
                .as_deref()
                .map_or("the configuration".to_string(), |p| p.display().to_string()),
            target.server
        );
    };
    let roots: Vec<ureq::tls::Certificate<'static>> = rustls_pemfile::certs(&mut pem.as_bytes())
        .map(|der| der.map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned()))
        .collect::<Result<_, _>>()
        .context("the kubeconfig's certificate-authority-data is not PEM")?;
    if roots.is_empty() {
        bail!("the kubeconfig's certificate-authority-data holds no certificate");
    }
    Ok(Some(
        ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build(),
    ))
}

fn agent(tls: &Option<ureq::tls::TlsConfig>, global: Option<Duration>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(global);
    if let Some(tls) = tls {
        config = config.tls_config(tls.clone());
    }
    config.build().into()
}

/// The largest answer read: lists come in pages, so only a single huge object gets near it.
const MAX_ANSWER_BYTES: u64 = 256 << 20;

fn continue_token(list: &Value) -> Option<String> {
    list["metadata"]["continue"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

impl Client {
    /// A client for `target`.
    pub fn connect(target: Target) -> anyhow::Result<Client> {
        let tls = tls_config(&target)?;
        Ok(Client {
            base: target.server.trim_end_matches('/').to_string(),
            agent: agent(&tls, Some(Duration::from_secs(30))),
            tls,
            target,
        })
    }

    /// The API's URL.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// The CA this client trusts (PEM).
    pub fn ca_pem(&self) -> Option<&str> {
        self.target.ca_pem.as_deref()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.target.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    fn finish(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Value> {
        let mut response = result.map_err(|e| match e {
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => anyhow!(
                "cannot reach the drover server at {} ({e}); is `drover server` running? (set --server or DROVER_SERVER, or --kubeconfig)",
                self.base
            ),
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) => anyhow!(
                "TLS with {} failed ({e}): is the kubeconfig's certificate authority this server's?",
                self.base
            ),
            other => anyhow!("request to {} failed: {other}", self.base),
        })?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| anyhow!("unreadable answer from {} (HTTP {status}): {e}", self.base))?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return body.ok_or_else(|| {
                anyhow!(
                    "unreadable answer from {} (HTTP {status}): not JSON",
                    self.base
                )
            });
        }
        let message = body.as_ref().and_then(|b| {
            b.get("error")
                .or_else(|| b.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        match status.as_u16() {
            401 => bail!(
                "the server refused the credentials (401 Unauthorized): the token in {} is unknown or was deleted; \
                 use the server's admin kubeconfig (<data-dir>/{}) or one from `drover kubeconfig create`",
                self.target
                    .kubeconfig
                    .as_deref()
                    .map_or("the kubeconfig".to_string(), |p| p.display().to_string()),
                crate::kubeconfig::FILE_NAME
            ),
            403 => bail!(
                "{} (403 Forbidden: this kubeconfig's role does not allow it)",
                message.unwrap_or_else(|| "forbidden".into())
            ),
            _ => match message {
                Some(message) => Err(ServerError {
                    reason: body
                        .as_ref()
                        .and_then(|b| b["reason"].as_str())
                        .map(str::to_string),
                    message,
                }
                .into()),
                None => bail!("the server answered HTTP {status}"),
            },
        }
    }

    /// GET with query parameters.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        self.get_as(path, query, "application/json")
    }

    /// A whole list, in pages of `chunk` objects (kubectl's `--chunk-size`; 0: in one
    /// answer), joined into one: `items` of a list, `rows` of a Table, with the first
    /// page's metadata (its resourceVersion is the list's: each page continues the same
    /// snapshot).
    pub fn list_as(
        &self,
        path: &str,
        query: &[(&str, &str)],
        accept: &str,
        chunk: usize,
    ) -> anyhow::Result<Value> {
        if chunk == 0 {
            return self.get_as(path, query, accept);
        }
        let limit = chunk.to_string();
        let mut paged: Vec<(&str, &str)> = query.to_vec();
        paged.push(("limit", &limit));
        let mut list = self.get_as(path, &paged, accept)?;
        let field = if list.get("rows").is_some() {
            "rows"
        } else {
            "items"
        };
        let mut token = continue_token(&list);
        while let Some(next) = token {
            let mut query = paged.clone();
            query.push(("continue", &next));
            let page = self.get_as(path, &query, accept)?;
            token = continue_token(&page);
            if let (Some(all), Some(more)) = (
                list.get_mut(field).and_then(Value::as_array_mut),
                page.get(field).and_then(Value::as_array),
            ) {
                all.extend(more.iter().cloned());
            }
        }
        if let Some(metadata) = list.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("continue");
            metadata.remove("remainingItemCount");
        }
        Ok(list)
    }

    /// GET asking for the representation `accept` names (e.g. a Table).
    pub fn get_as(
        &self,
        path: &str,
        query: &[(&str, &str)],
        accept: &str,
    ) -> anyhow::Result<Value> {
        let request = self
            .agent
            .get(self.url(path))
            .header("Accept", accept)
            .query_pairs(query.iter().copied());
        self.finish(self.authorized(request).call())
    }

    /// GET that answers `None` for 404 Not Found instead of an error.
    pub fn get_if_exists(&self, path: &str) -> anyhow::Result<Option<Value>> {
        let request = self.agent.get(self.url(path));
        match self.authorized(request).call() {
            Ok(r) if r.status().as_u16() == 404 => Ok(None),
            other => self.finish(other).map(Some),
        }
    }

    /// PUT a JSON body.
    pub fn put(&self, path: &str, query: &[(&str, &str)], body: &Value) -> anyhow::Result<Value> {
        let request = self
            .agent
            .put(self.url(path))
            .query_pairs(query.iter().copied());
        self.finish(self.authorized(request).send_json(body))
    }

    /// PATCH with a body of `content_type` (merge, JSON or strategic merge patch).
    pub fn patch(&self, path: &str, content_type: &str, body: &Value) -> anyhow::Result<Value> {
        self.patch_query(path, content_type, &[], body)
    }

    /// PATCH with query parameters (server-side apply's `fieldManager`, `force`, `dryRun`).
    pub fn patch_query(
        &self,
        path: &str,
        content_type: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> anyhow::Result<Value> {
        let request = self
            .agent
            .patch(self.url(path))
            .query_pairs(query.iter().copied())
            .header("Content-Type", content_type);
        self.finish(self.authorized(request).send(body.to_string()))
    }

    /// POST a JSON body with query parameters.
    pub fn post_query(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> anyhow::Result<Value> {
        let request = self
            .agent
            .post(self.url(path))
            .query_pairs(query.iter().copied());
        self.finish(self.authorized(request).send_json(body))
    }

    /// DELETE with query parameters.
    pub fn delete(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        let request = self
            .agent
            .delete(self.url(path))
            .query_pairs(query.iter().copied());
        self.finish(self.authorized(request).call())
    }

    /// GET whose body is copied to `out` as it arrives (for logs; no overall timeout).
    pub fn stream(
        &self,
        path: &str,
        query: &[(&str, &str)],
        out: &mut impl std::io::Write,
    ) -> anyhow::Result<()> {
        let request = agent(&self.tls, None)
            .get(self.url(path))
            .query_pairs(query.iter().copied());
        let response = match self.authorized(request).call() {
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
        let request = self.agent.post(self.url(path));
        self.finish(self.authorized(request).send_json(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_read_as_kubectl_prints_them() {
        let not_found = anyhow::Error::from(ServerError {
            reason: Some("NotFound".into()),
            message: "pods \"web\" not found".into(),
        });
        assert_eq!(
            error_line(&not_found),
            "Error from server (NotFound): pods \"web\" not found"
        );
        let invalid = anyhow::Error::from(ServerError {
            reason: Some("Invalid".into()),
            message: "The Pod \"web\" is invalid: spec: Forbidden".into(),
        });
        assert_eq!(
            error_line(&invalid),
            "The Pod \"web\" is invalid: spec: Forbidden"
        );
        assert_eq!(error_line(&anyhow::anyhow!("local")), "error: local");
        let bare = anyhow::Error::from(ServerError {
            reason: None,
            message: "node \"n\" did not answer".into(),
        });
        assert_eq!(error_line(&bare), "error: node \"n\" did not answer");
    }
}
