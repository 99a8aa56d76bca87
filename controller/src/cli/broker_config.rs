//! `drover broker-config mosquitto`: writes what an external Mosquitto needs to serve a
//! Drover fleet with every node confined to its own topics.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ring::rand::{SecureRandom, SystemRandom};

use crate::mosquitto::config::{
    self, default_plugin_path, BrokerLayout, GeneratedFile, ServerTls, CA_FILE, CONF_FILE,
    CONTROLLER_PASSWORD_FILE, DYNSEC_FILE, KEY_FILE, SALT_LEN,
};
use crate::mosquitto::CONTROLLER_USERNAME;

/// Brokers `broker-config` can configure.
#[derive(Debug, Subcommand)]
pub enum BrokerConfigCommand {
    /// Mosquitto 2.0 with its dynamic-security plugin
    Mosquitto(MosquittoArgs),
}

/// `broker-config mosquitto` flags.
#[derive(Debug, Args)]
pub struct MosquittoArgs {
    /// Directory to write the files into (created if missing; existing files are never
    /// overwritten)
    #[arg(long)]
    pub out: PathBuf,
    /// TLS listener port
    #[arg(long, default_value_t = 8883)]
    pub port: u16,
    /// Also listen without TLS on this port (lab use only: passwords travel readable)
    #[arg(long)]
    pub insecure_port: Option<u16>,
    /// Name or IP address agents use to reach the broker, for its certificate (repeat for
    /// several; default: this host's name and localhost)
    #[arg(long = "san")]
    pub sans: Vec<String>,
    /// The dynamic-security plugin
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// The server's data directory, whose CA is to sign the broker's certificate
    #[arg(long, default_value = "/var/lib/drover/server")]
    pub data_dir: PathBuf,
}

/// Where the broker's certificate comes from.
pub trait ServerCertIssuer {
    /// A certificate and key for `sans`, and the CA that clients are to trust for it.
    fn server_tls(&self, sans: &[String]) -> anyhow::Result<ServerTls>;
}

/// The server's own CA signs the broker's certificate: agents trust the broker because they
/// trust the server's CA (the one their join tokens name).
impl ServerCertIssuer for crate::pki::Pki {
    fn server_tls(&self, sans: &[String]) -> anyhow::Result<ServerTls> {
        let (cert_chain_pem, key_pem) = self.issue_server_cert(sans)?;
        Ok(ServerTls {
            ca_pem: self.ca_pem.clone(),
            cert_chain_pem,
            key_pem,
        })
    }
}

/// Runs `drover broker-config`.
pub fn broker_config(command: BrokerConfigCommand) -> anyhow::Result<()> {
    let BrokerConfigCommand::Mosquitto(args) = command;
    let pki =
        crate::pki::Pki::load_or_create(&args.data_dir.join("pki"), &[]).with_context(|| {
            format!(
                "cannot load or create the server's CA in {}",
                args.data_dir.display()
            )
        })?;
    mosquitto(&args, &pki)
}

fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn mosquitto(args: &MosquittoArgs, issuer: &dyn ServerCertIssuer) -> anyhow::Result<()> {
    let sans = if args.sans.is_empty() {
        host_name()
            .into_iter()
            .chain(["localhost".to_owned()])
            .collect()
    } else {
        args.sans.clone()
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let dir = args
        .out
        .canonicalize()
        .with_context(|| format!("resolving {}", args.out.display()))?;
    let layout = BrokerLayout {
        dir: dir.clone(),
        port: args.port,
        bind: None,
        insecure_port: args.insecure_port,
        plugin: args.plugin.clone().unwrap_or_else(default_plugin_path),
    };
    let tls = issuer.server_tls(&sans)?;
    let password = random_secret()?;
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    write_files(&dir, &config::files(&layout, &tls, &password, &salt))?;

    let host = sans.first().map_or("HOST", |s| s);
    let d = dir.display();
    println!("Wrote {CONF_FILE}, {DYNSEC_FILE}, {CA_FILE}, server.crt, {KEY_FILE} and {CONTROLLER_PASSWORD_FILE} to {d}.");
    println!("Certificate names: {}", sans.join(", "));
    println!();
    println!("Run Mosquitto (started as root it runs as the user mosquitto, which must be able to");
    println!("read the key and rewrite {DYNSEC_FILE}):");
    println!("  chown mosquitto: {d} {d}/{DYNSEC_FILE} {d}/{KEY_FILE}");
    println!("  mosquitto -c {d}/{CONF_FILE}");
    println!();
    println!("Run the controller against it (the broker's certificate is signed by the server's own CA):");
    println!(
        "  drover server --data-dir {} --broker mqtts://{CONTROLLER_USERNAME}@{host}:{} --broker-password-file {d}/{CONTROLLER_PASSWORD_FILE}",
        args.data_dir.display(),
        args.port
    );
    if args.insecure_port.is_some() {
        println!();
        println!("The plaintext listener is for lab use only: passwords and join tokens cross the network readable.");
    }
    Ok(())
}

/// A 256-bit random password, hex-encoded so it is safe in any configuration file.
fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    Ok(hex::encode(bytes))
}

/// Writes `files` into `dir`, private ones with mode 0600. Refuses to replace any file:
/// an existing `dynamic-security.json` holds every enrolled node.
pub fn write_files(dir: &Path, files: &[GeneratedFile]) -> anyhow::Result<()> {
    if let Some(existing) = files.iter().find(|f| dir.join(f.name).exists()) {
        bail!(
            "{} exists; remove it (or choose another --out) to generate a new broker configuration",
            dir.join(existing.name).display()
        );
    }
    for file in files {
        let path = dir.join(file.name);
        let mode = if file.private { 0o600 } else { 0o644 };
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        out.write_all(file.contents.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    fn test_pki(dir: &std::path::Path) -> crate::pki::Pki {
        crate::pki::Pki::load_or_create(&dir.join("pki"), &[]).unwrap()
    }

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn args(out: &Path) -> MosquittoArgs {
        MosquittoArgs {
            out: out.to_path_buf(),
            port: 8883,
            insecure_port: None,
            sans: vec!["broker.example".into(), "10.0.0.1".into()],
            plugin: None,
            data_dir: PathBuf::from("/nonexistent"),
        }
    }

    #[test]
    fn writes_every_file_with_secrets_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        mosquitto(&args(dir.path()), &test_pki(dir.path())).expect("generated");
        for (name, mode) in [
            (CONF_FILE, 0o644),
            (DYNSEC_FILE, 0o600),
            (CA_FILE, 0o644),
            ("server.crt", 0o644),
            (KEY_FILE, 0o600),
            (CONTROLLER_PASSWORD_FILE, 0o600),
        ] {
            let meta = std::fs::metadata(dir.path().join(name)).expect(name);
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
        }
        let password =
            std::fs::read_to_string(dir.path().join(CONTROLLER_PASSWORD_FILE)).expect("password");
        assert_eq!(password.trim().len(), 64);
        let dynsec = std::fs::read_to_string(dir.path().join(DYNSEC_FILE)).expect("dynsec");
        assert!(!dynsec.contains(password.trim()), "only the hash is stored");
    }

    #[test]
    fn never_overwrites_an_existing_configuration() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(DYNSEC_FILE), "{}").expect("write");
        let e = mosquitto(&args(dir.path()), &test_pki(dir.path())).expect_err("refused");
        assert!(
            e.to_string().contains("dynamic-security.json exists"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(DYNSEC_FILE)).expect("read"),
            "{}"
        );
    }
}
