//! The controller's keys and certificates, made at its first start in `<data-dir>/pki`
//! (0700): a CA (ECDSA P-256) that join tokens name by fingerprint, a server certificate it
//! signs for the embedded broker (and, through `drover broker-config`, for an external
//! one), and the Ed25519 key every desired state is sealed with.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use drover_proto::keys::sha256;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const SERVER_SANS: &str = "server.sans";
const SIGNING_KEY: &str = "signing.key";

/// The controller's trust material.
pub struct Pki {
    dir: PathBuf,
    ca_key: KeyPair,
    /// The CA certificate (DER).
    pub ca_der: Vec<u8>,
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// SHA-256 of the CA certificate (DER): what join tokens carry.
    pub ca_fingerprint: [u8; 32],
    /// Seed of the controller's Ed25519 signing key.
    pub signing_seed: [u8; 32],
    server_chain: Vec<CertificateDer<'static>>,
    server_key_der: Vec<u8>,
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = drover_agent::private_fs::create_file(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "drover-ca");
    name.push(DnType::OrganizationName, "Drover");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params);
    Ok(params)
}

/// Validity from yesterday (clocks of devices and servers disagree) for ten years.
fn set_validity(params: &mut CertificateParams) {
    use chrono::Datelike;
    let day = |d: chrono::DateTime<chrono::Utc>| {
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    let now = chrono::Utc::now();
    params.not_before = day(now - chrono::Duration::days(1));
    params.not_after = day(now + chrono::Duration::days(3650));
}

fn pem_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certs: Result<Vec<_>, _> =
        rustls_pemfile::certs(&mut std::io::BufReader::new(bytes.as_slice())).collect();
    let certs = certs.with_context(|| format!("{} is not a PEM certificate", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

fn key_pair(path: &Path) -> anyhow::Result<KeyPair> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    KeyPair::from_pem(&pem).with_context(|| format!("{} is not a PEM private key", path.display()))
}

/// The names the server certificate must cover by default: localhost, the loopback
/// addresses, the host name and every local interface address.
pub fn default_sans() -> Vec<String> {
    let mut sans = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            sans.push(host.to_string());
        }
    }
    if let Ok(addresses) = nix::ifaddrs::getifaddrs() {
        for interface in addresses {
            let Some(address) = interface.address else {
                continue;
            };
            let ip: Option<IpAddr> = address
                .as_sockaddr_in()
                .map(|a| IpAddr::V4(a.ip()))
                .or_else(|| address.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())));
            if let Some(ip) = ip {
                // Link-local IPv6 addresses need a scope and never name a server.
                if matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80) {
                    continue;
                }
                sans.push(ip.to_string());
            }
        }
    }
    sans.sort();
    sans.dedup();
    sans
}

fn san(name: &str) -> anyhow::Result<SanType> {
    Ok(match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            name.to_string()
                .try_into()
                .with_context(|| format!("\"{name}\" is not a valid certificate name"))?,
        ),
    })
}

impl Pki {
    /// Loads the material in `dir`, creating what is missing; the server certificate is
    /// issued again when it lacks one of the default names or `extra_sans`.
    pub fn load_or_create(dir: &Path, extra_sans: &[String]) -> anyhow::Result<Pki> {
        drover_agent::private_fs::private_dir(dir)
            .with_context(|| format!("cannot create {} (0700)", dir.display()))?;
        let ca_key_path = dir.join(CA_KEY);
        let ca_cert_path = dir.join(CA_CERT);
        let ca_key = if ca_key_path.exists() {
            key_pair(&ca_key_path)?
        } else {
            if ca_cert_path.exists() {
                bail!(
                    "{} exists without its key {}: restore the key, or remove the pki directory to make a new CA (every node must then enroll again)",
                    ca_cert_path.display(),
                    ca_key_path.display()
                );
            }
            let key = KeyPair::generate()?;
            write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
            key
        };
        if !ca_cert_path.exists() {
            let cert = ca_params()?.self_signed(&ca_key)?;
            std::fs::write(&ca_cert_path, cert.pem())
                .with_context(|| format!("cannot write {}", ca_cert_path.display()))?;
        }
        let ca_der = pem_certificates(&ca_cert_path)?.remove(0).to_vec();
        let ca_cert = CertificateDer::from(ca_der.as_slice());
        let anchor = webpki::anchor_from_trusted_cert(&ca_cert).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a usable CA certificate: {e}",
                ca_cert_path.display()
            )
        })?;
        if !anchor
            .subject_public_key_info
            .as_ref()
            .ends_with(ca_key.public_key_raw())
        {
            bail!(
                "{} and {} do not belong together",
                ca_cert_path.display(),
                ca_key_path.display()
            );
        }
        let ca_pem = std::fs::read_to_string(&ca_cert_path)?;
        let signing_path = dir.join(SIGNING_KEY);
        let signing_seed: [u8; 32] = match std::fs::read(&signing_path) {
            Ok(bytes) => bytes.try_into().map_err(|_| {
                anyhow::anyhow!("{} is damaged (not a 32-byte key)", signing_path.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let seed = drover_proto::random::random_bytes::<32>()?;
                write_private(&signing_path, &seed)?;
                seed
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", signing_path.display()))
            }
        };
        let mut pki = Pki {
            dir: dir.to_path_buf(),
            ca_key,
            ca_fingerprint: sha256(&ca_der),
            ca_der,
            ca_pem,
            signing_seed,
            server_chain: Vec::new(),
            server_key_der: Vec::new(),
        };
        pki.load_server_cert(extra_sans)?;
        Ok(pki)
    }

    fn load_server_cert(&mut self, extra_sans: &[String]) -> anyhow::Result<()> {
        let mut wanted = default_sans();
        wanted.extend(extra_sans.iter().cloned());
        wanted.sort();
        wanted.dedup();
        let cert_path = self.dir.join(SERVER_CERT);
        let key_path = self.dir.join(SERVER_KEY);
        let sans_path = self.dir.join(SERVER_SANS);
        let have: Vec<String> = std::fs::read_to_string(&sans_path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let complete = wanted.iter().all(|s| have.contains(s));
        if !(complete && cert_path.exists() && key_path.exists()) {
            let mut names = have;
            names.extend(wanted);
            names.sort();
            names.dedup();
            let (chain, key) = self.issue_server_cert(&names)?;
            write_private(&key_path, key.as_bytes())?;
            std::fs::write(&cert_path, chain)
                .with_context(|| format!("cannot write {}", cert_path.display()))?;
            std::fs::write(&sans_path, names.join("\n"))
                .with_context(|| format!("cannot write {}", sans_path.display()))?;
        }
        let chain = pem_certificates(&cert_path)?;
        let key = key_pair(&key_path)?;
        let leaf = webpki::EndEntityCert::try_from(&chain[0])
            .map_err(|e| anyhow::anyhow!("{} is not usable: {e}", cert_path.display()))?;
        let ca_cert = CertificateDer::from(self.ca_der.as_slice());
        let anchor = webpki::anchor_from_trusted_cert(&ca_cert)
            .map_err(|e| anyhow::anyhow!("the CA certificate is not usable: {e}"))?;
        leaf.verify_for_usage(
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .all,
            &[anchor],
            &chain[1..],
            rustls_pki_types::UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "{} is not signed by the CA in {} ({e}); remove it to issue a new one",
                cert_path.display(),
                self.dir.join(CA_CERT).display()
            )
        })?;
        self.server_chain = chain;
        self.server_key_der = key.serialize_der();
        Ok(())
    }

    /// A server certificate for `sans`, signed by the CA: (certificate chain, then the CA,
    /// as PEM; private key as PEM). The chain carries the CA so that an agent that knows
    /// only the CA's fingerprint finds it there.
    pub fn issue_server_cert(&self, sans: &[String]) -> anyhow::Result<(String, String)> {
        let issuer = ca_params()?.self_signed(&self.ca_key)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = sans.iter().map(|s| san(s)).collect::<anyhow::Result<_>>()?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "drover-broker");
        params.distinguished_name = name;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer, &self.ca_key)?;
        Ok((
            format!("{}{}", cert.pem(), self.ca_pem),
            key.serialize_pem(),
        ))
    }

    /// The TLS configuration of the embedded broker (and the API).
    pub fn server_tls_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(self.server_chain.clone(), key)?;
        Ok(Arc::new(config))
    }

    /// The CA key's ECDSA P-256 signature (ASN.1 DER) of `statement`.
    pub fn attest(&self, statement: &[u8]) -> anyhow::Result<Vec<u8>> {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &self.ca_key.serialize_der(),
            &rng,
        )
        .map_err(|e| anyhow::anyhow!("the CA key cannot sign: {e}"))?;
        Ok(key
            .sign(&rng, statement)
            .map_err(|e| anyhow::anyhow!("the CA key cannot sign: {e}"))?
            .as_ref()
            .to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::keys::SigningKey;
    use drover_proto::msg::controller_key_statement;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_pki_is_made_once_kept_private_and_reloaded_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let pki_dir = dir.path().join("pki");
        let first = Pki::load_or_create(&pki_dir, &[]).unwrap();
        assert_eq!(mode(&pki_dir), 0o700);
        for secret in [CA_KEY, SERVER_KEY, SIGNING_KEY] {
            assert_eq!(mode(&pki_dir.join(secret)), 0o600, "{secret}");
        }
        let again = Pki::load_or_create(&pki_dir, &[]).unwrap();
        assert_eq!(first.ca_fingerprint, again.ca_fingerprint);
        assert_eq!(first.signing_seed, again.signing_seed);
        assert!(first.server_tls_config().is_ok());
    }

    #[test]
    fn a_new_name_reissues_the_server_certificate_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::load_or_create(dir.path(), &[]).unwrap();
        let before = std::fs::read(dir.path().join(SERVER_CERT)).unwrap();
        let second = Pki::load_or_create(dir.path(), &["broker.example.org".into()]).unwrap();
        assert_ne!(before, std::fs::read(dir.path().join(SERVER_CERT)).unwrap());
        assert_eq!(first.ca_fingerprint, second.ca_fingerprint);
        assert!(std::fs::read_to_string(dir.path().join(SERVER_SANS))
            .unwrap()
            .contains("broker.example.org"));
    }

    #[test]
    fn damaged_or_mismatched_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        Pki::load_or_create(dir.path(), &[]).unwrap();
        std::fs::write(dir.path().join(SIGNING_KEY), b"short").unwrap();
        let error = Pki::load_or_create(dir.path(), &[])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("signing.key"), "{error}");

        let other = tempfile::tempdir().unwrap();
        Pki::load_or_create(other.path(), &[]).unwrap();
        std::fs::remove_file(dir.path().join(SIGNING_KEY)).unwrap();
        std::fs::copy(other.path().join(CA_KEY), dir.path().join(CA_KEY)).unwrap();
        let error = format!("{:#}", Pki::load_or_create(dir.path(), &[]).err().unwrap());
        assert!(error.contains("do not belong together"), "{error}");
    }

    #[test]
    fn the_ca_vouches_for_the_controller_key_as_agents_check_it() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let key = SigningKey::from_seed(pki.signing_seed).public();
        let attestation = pki.attest(&controller_key_statement(&key)).unwrap();
        assert!(drover_agent::enroll::ca_vouches_for(
            &pki.ca_der,
            &key,
            &attestation
        ));
        let other = SigningKey::from_seed([9; 32]).public();
        assert!(!drover_agent::enroll::ca_vouches_for(
            &pki.ca_der,
            &other,
            &attestation
        ));
    }
}
