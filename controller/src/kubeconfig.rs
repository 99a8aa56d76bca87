//! kubeconfig files: the one the server writes for its admin at first start, the ones
//! `drover kubeconfig create` prints, and reading them back for the CLI (the same file
//! works for kubectl).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use chrono::Utc;
use drover_proto::keys::sha256;
use serde_json::{json, Value};
use tracing::info;

use crate::store::{Store, StoredApiToken};

/// The file the server keeps its admin kubeconfig in, inside its data directory.
pub const FILE_NAME: &str = "kubeconfig.yaml";
/// The admin token's name, which is also its user name.
pub const ADMIN: &str = "admin";
/// Where the CLI looks last: the admin kubeconfig of a server with the default data
/// directory (`drover server --data-dir`'s default).
pub const SERVER_DEFAULT: &str = "/var/lib/drover/server/kubeconfig.yaml";
const CLUSTER: &str = "drover";

/// A new secret token.
pub fn new_token() -> anyhow::Result<String> {
    Ok(hex::encode(drover_proto::random::random_bytes::<32>()?))
}

/// The stored form of a new token.
pub fn stored(name: &str, role: crate::api::auth::Role, token: &str) -> StoredApiToken {
    StoredApiToken {
        name: name.to_string(),
        role: role.as_str().to_string(),
        token_hash: sha256(token.as_bytes()),
        created_at: Utc::now(),
    }
}

/// The URL local clients use for an API listening on `listen`.
pub fn local_url(listen: SocketAddr) -> String {
    let port = listen.port();
    match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => format!("https://127.0.0.1:{port}"),
        ip if ip.is_unspecified() => format!("https://localhost:{port}"),
        std::net::IpAddr::V6(ip) => format!("https://[{ip}]:{port}"),
        ip => format!("https://{ip}:{port}"),
    }
}

/// A kubeconfig with one cluster, user and context, as YAML.
pub fn render(server: &str, ca_pem: &str, user: &str, token: &str) -> anyhow::Result<String> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let context = format!("{user}@{CLUSTER}");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER, "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": CLUSTER, "user": user}}],
        "current-context": context,
        "preferences": {},
    });
    crate::cli::yaml::to_yaml(&config)
}

/// What a client needs from a kubeconfig: its current context's server, CA and token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    /// Where it was read from.
    pub path: PathBuf,
    /// The API's URL.
    pub server: String,
    /// The CA to trust (PEM), if the file names one.
    pub ca_pem: Option<String>,
    /// The bearer token, if any.
    pub token: Option<String>,
}

fn named<'a>(list: &'a Value, key: &str, name: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|entry| entry.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|entry| entry.get(key))
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Reads a kubeconfig's current context.
pub fn load(path: &Path) -> anyhow::Result<Kubeconfig> {
    let content = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
    parse(&content, path)
}

fn parse(content: &str, path: &Path) -> anyhow::Result<Kubeconfig> {
    let bad = |what: &str| anyhow!("kubeconfig {}: {what}", path.display());
    let documents = drover_proto::manifest::yaml::load_documents(content)
        .map_err(|e| bad(&format!("not YAML ({})", e.message)))?;
    let config = documents
        .into_iter()
        .next()
        .map(|d| d.value)
        .ok_or_else(|| bad("empty"))?;
    let context_name = text(&config, "current-context").ok_or_else(|| bad("no current-context"))?;
    let context = named(&config["contexts"], "context", context_name)
        .ok_or_else(|| bad(&format!("no context named {context_name:?}")))?;
    let cluster_name =
        text(context, "cluster").ok_or_else(|| bad("the context names no cluster"))?;
    let cluster = named(&config["clusters"], "cluster", cluster_name)
        .ok_or_else(|| bad(&format!("no cluster named {cluster_name:?}")))?;
    let server = text(cluster, "server")
        .ok_or_else(|| bad("the cluster has no server"))?
        .to_string();
    let ca_pem = match (
        text(cluster, "certificate-authority-data"),
        text(cluster, "certificate-authority"),
    ) {
        (Some(data), _) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| bad(&format!("certificate-authority-data is not base64 ({e})")))?;
            Some(
                String::from_utf8(bytes)
                    .map_err(|_| bad("certificate-authority-data is not PEM"))?,
            )
        }
        (None, Some(file)) => {
            // Relative paths are relative to the kubeconfig, as kubectl reads them.
            let file = path.parent().unwrap_or(Path::new(".")).join(file);
            Some(std::fs::read_to_string(&file).with_context(|| {
                format!(
                    "cannot read the CA {} named in {}",
                    file.display(),
                    path.display()
                )
            })?)
        }
        (None, None) => None,
    };
    let token = match text(context, "user") {
        Some(user) => named(&config["users"], "user", user)
            .and_then(|u| text(u, "token"))
            .map(str::to_string),
        None => None,
    };
    Ok(Kubeconfig {
        path: path.to_path_buf(),
        server,
        ca_pem,
        token,
    })
}

/// The kubeconfig a client uses: `explicit` (`--kubeconfig`), else the first existing
/// file of `KUBECONFIG` (a `:`-separated list), else `~/.kube/config`, else the server's
/// default one. `None` when there is none.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(path) = explicit {
        if !path.exists() {
            bail!("the kubeconfig {} does not exist", path.display());
        }
        return Ok(Some(path.to_path_buf()));
    }
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return Ok(std::env::split_paths(&list).find(|p| p.is_file()));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".kube/config"));
    Ok(home
        .into_iter()
        .chain([PathBuf::from(SERVER_DEFAULT)])
        .find(|p| p.is_file()))
}

/// At start: makes sure `<data_dir>/kubeconfig.yaml` exists and holds a stored admin
/// token. A kept file is rewritten (same token) only when the server's URL or CA in it is
/// stale; a missing file, or one whose token the store no longer knows, gets a new admin
/// token.
pub fn ensure_admin(
    store: &mut Store,
    data_dir: &Path,
    server: &str,
    ca_pem: &str,
) -> anyhow::Result<PathBuf> {
    let path = data_dir.join(FILE_NAME);
    let existing = if path.exists() {
        drover_agent::private_fs::tighten_file_if_present(&path)
            .with_context(|| format!("cannot make {} private (0600)", path.display()))?;
        match load(&path) {
            Ok(config) => Some(config),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "the admin kubeconfig is unreadable; writing a new one");
                None
            }
        }
    } else {
        None
    };
    let table = store.api_token_table();
    let kept = existing.and_then(|config| {
        let token = config.token.clone()?;
        let known = table.authenticate(&token)?;
        (known.role == crate::api::auth::Role::Admin.as_str()).then_some((config, known, token))
    });
    match kept {
        Some((config, _, _))
            if config.server == server && config.ca_pem.as_deref() == Some(ca_pem) => {}
        Some((_, known, token)) => {
            write(&path, &render(server, ca_pem, &known.name, &token)?)?;
            info!(path = %path.display(), "admin kubeconfig updated (new server address or CA)");
        }
        None => {
            let token = new_token()?;
            store.put_api_token(&stored(ADMIN, crate::api::auth::Role::Admin, &token), true)?;
            write(&path, &render(server, ca_pem, ADMIN, &token)?)?;
            info!(path = %path.display(), "admin kubeconfig written (a new admin token)");
            return Ok(path);
        }
    }
    info!(path = %path.display(), "admin kubeconfig");
    Ok(path)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    drover_agent::identity::write_atomically(path, text.as_bytes(), true)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_rendered_kubeconfig_reads_back() {
        let text = render("https://127.0.0.1:6443", CA, "viewer", "abc123").unwrap();
        let config = parse(&text, Path::new("k.yaml")).unwrap();
        assert_eq!(config.server, "https://127.0.0.1:6443");
        assert_eq!(config.ca_pem.as_deref(), Some(CA));
        assert_eq!(config.token.as_deref(), Some("abc123"));
    }

    #[test]
    fn the_current_context_picks_cluster_and_user() {
        let text = "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: one\n  cluster:\n    server: https://one\n- name: two\n  cluster:\n    server: https://two\ncontexts:\n- name: a\n  context: {cluster: one, user: u1}\n- name: b\n  context: {cluster: two, user: u2}\nusers:\n- name: u1\n  user: {token: t1}\n- name: u2\n  user: {token: t2}\n";
        let config = parse(text, Path::new("k")).unwrap();
        assert_eq!(config.server, "https://two");
        assert_eq!(config.token.as_deref(), Some("t2"));
        assert_eq!(config.ca_pem, None);
        assert!(parse("kind: Config\n", Path::new("k")).is_err());
        assert!(parse("current-context: x\n", Path::new("k")).is_err());
    }

    #[test]
    fn local_urls_never_point_at_an_unspecified_address() {
        assert_eq!(
            local_url("0.0.0.0:6443".parse().unwrap()),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            local_url("[::]:6443".parse().unwrap()),
            "https://localhost:6443"
        );
        assert_eq!(
            local_url("10.0.0.5:7000".parse().unwrap()),
            "https://10.0.0.5:7000"
        );
        assert_eq!(
            local_url("[fd00::1]:6443".parse().unwrap()),
            "https://[fd00::1]:6443"
        );
    }

    #[test]
    fn the_admin_kubeconfig_is_kept_across_starts_and_reissued_when_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let path = ensure_admin(&mut store, dir.path(), "https://127.0.0.1:1", CA).unwrap();
        assert_eq!(drover_agent::private_fs::mode_of(&path) & 0o777, 0o600);
        let first = load(&path).unwrap();
        let token = first.token.clone().unwrap();
        assert_eq!(
            store.api_token_table().authenticate(&token).unwrap().name,
            ADMIN
        );

        ensure_admin(&mut store, dir.path(), "https://127.0.0.1:1", CA).unwrap();
        assert_eq!(load(&path).unwrap(), first);

        // A new port: same token, new address.
        ensure_admin(&mut store, dir.path(), "https://127.0.0.1:2", CA).unwrap();
        let moved = load(&path).unwrap();
        assert_eq!(
            (moved.server.as_str(), moved.token.as_deref()),
            ("https://127.0.0.1:2", Some(token.as_str()))
        );

        std::fs::remove_file(&path).unwrap();
        ensure_admin(&mut store, dir.path(), "https://127.0.0.1:2", CA).unwrap();
        let fresh = load(&path).unwrap().token.unwrap();
        assert_ne!(fresh, token);
        let table = store.api_token_table();
        assert!(
            table.authenticate(&token).is_none(),
            "the lost token is revoked"
        );
        assert!(table.authenticate(&fresh).is_some());
    }
}
