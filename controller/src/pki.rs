//! The controller's own PKI: a private CA that certifies Drover's brokers, the broker's
//! server certificate, and the controller's Ed25519 signing key.
//!
//! Everything lives in one directory (0700, files 0600) and is created at first start.
//! Agents pin the CA (by its SHA-256 from a join token, then by the certificate itself), so
//! the CA is never replaced behind their back: a CA file that is missing while its partner
//! exists, or that does not match it, is an error, not a reason to start over. The server
//! certificate is ours to reissue whenever a wanted name or address is missing from it.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use chrono::{Datelike, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use tracing::{info, warn};

use drover_agent::identity::write_atomically;
use drover_agent::private_fs;

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const SIGNING_KEY: &str = "signing.key";
const CA_NAME: &str = "drover-ca";
const CA_YEARS: i32 = 10;
const SERVER_YEARS: i32 = 2;
/// A server certificate that expires within this many days is reissued at start.
const RENEW_DAYS: u64 = 30;

/// The loaded (or just created) PKI.
pub struct Pki {
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// The CA certificate, PEM (for external brokers and clients).
    pub ca_pem: String,
    /// SHA-256 of [`Pki::ca_der`]: what a join token carries.
    pub ca_fingerprint: [u8; 32],
    /// Seed of the controller's Ed25519 signing key.
    pub signing_seed: [u8; 32],
    /// The matching Ed25519 public key.
    pub signing_public: [u8; 32],
    ca_key: KeyPair,
    /// The CA's parameters re-signed: rcgen takes the issuer's name and key identifier from
    /// it when signing (without x509 parsing it cannot read them back from `ca.crt`).
    ca_issuer: rcgen::Certificate,
    server_tls: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for Pki {
    // No key material in logs or test failures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("ca_fingerprint", &hex::encode(self.ca_fingerprint))
            .field("signing_public", &hex::encode(self.signing_public))
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Loads the PKI from `dir`, creating what is missing. `extra_sans` (host names or IP
    /// addresses) join the server certificate's default names: `localhost`, the loopback
    /// addresses, the hostname and every local interface address.
    pub fn load_or_create(dir: &Path, extra_sans: &[String]) -> anyhow::Result<Pki> {
        private_fs::private_dir(dir).with_context(|| {
            format!(
                "cannot create the PKI directory {} or make it private (0700)",
                dir.display()
            )
        })?;
        // Only a new CA may come with a new signing key: every agent pinned the old one.
        let new_fleet = !dir.join(CA_CERT).exists() && !dir.join(SIGNING_KEY).exists();
        let (ca_key, ca_der, ca_pem) = load_or_create_ca(dir)?;
        let ca_issuer = issuer(&ca_key)?;
        let (signing_seed, signing_public) =
            load_or_create_signing_key(&dir.join(SIGNING_KEY), new_fleet)?;
        let wanted = wanted_sans(extra_sans);
        let (server_chain, server_key) =
            load_or_create_server(dir, &ca_der, &ca_pem, &ca_key, &ca_issuer, &wanted)?;
        let server_tls = server_config(server_chain, server_key)?;
        Ok(Pki {
            ca_fingerprint: sha256(&ca_der),
            ca_der,
            ca_pem,
            signing_seed,
            signing_public,
            ca_key,
            ca_issuer,
            server_tls,
        })
    }

    /// TLS configuration of the broker. The chain presented is the server certificate and
    /// then the CA's own, so a client that knows only the CA's fingerprint finds it there.
    pub fn server_tls_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_tls.clone()
    }

    /// The CA key's ECDSA P-256 signature (ASN.1 DER) of `statement`: how the CA vouches
    /// for the controller's key to an enrolling agent, which knows only the CA.
    pub fn attest(&self, statement: &[u8]) -> anyhow::Result<Vec<u8>> {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &self.ca_key.serialize_der(),
            &rng,
        )
        .map_err(|e| anyhow::anyhow!("the CA key cannot sign: {e}"))?;
        let signature = key
            .sign(&rng, statement)
            .map_err(|e| anyhow::anyhow!("the CA key cannot sign: {e}"))?;
        Ok(signature.as_ref().to_vec())
    }

    /// A new server certificate for `sans`, signed by the CA, for an external broker
    /// (Mosquitto): the chain (server certificate, then CA) and the private key, PEM.
    pub fn issue_server_cert(&self, sans: &[String]) -> anyhow::Result<(String, String)> {
        let sans = usable_sans(sans.iter().cloned());
        if sans.is_empty() {
            bail!("no usable host name or IP address to certify");
        }
        let (cert, key) = issue_server(&sans, &self.ca_key, &self.ca_issuer)?;
        Ok((
            format!("{}{}", cert.pem(), self.ca_pem),
            key.serialize_pem(),
        ))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn read(path: &Path) -> anyhow::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    write_atomically(path, text.as_bytes(), true)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn load_key(path: &Path, pem: &str) -> anyhow::Result<KeyPair> {
    private_fs::tighten_file_if_present(path)
        .with_context(|| format!("cannot make {} private (0600)", path.display()))?;
    KeyPair::from_pem(pem).map_err(|e| {
        anyhow!(
            "{}: not a PKCS#8 private key in PEM ({e}); restore it from a backup",
            path.display()
        )
    })
}

/// The certificates in a PEM file, in order; an error names the file.
fn load_certs(path: &Path, pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("{}: not a PEM certificate ({e})", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate in it", path.display());
    }
    Ok(certs)
}

/// Whether `cert` carries `key`'s public key.
fn holds_key(cert: &CertificateDer<'_>, key: &KeyPair) -> bool {
    // The anchor's SPKI is the SubjectPublicKeyInfo without its outer SEQUENCE header;
    // rcgen's is the whole SEQUENCE.
    let Ok(anchor) = webpki::anchor_from_trusted_cert(cert) else {
        return false;
    };
    let full = key.public_key_der();
    let inner: &[u8] = anchor.subject_public_key_info.as_ref();
    full.first() == Some(&0x30)
        && full.len() > inner.len()
        && full.ends_with(inner)
        && full.len() - inner.len() <= 4
}

fn load_or_create_ca(dir: &Path) -> anyhow::Result<(KeyPair, Vec<u8>, String)> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    match (read(&cert_path)?, read(&key_path)?) {
        (Some(cert_pem), Some(key_pem)) => {
            let key = load_key(&key_path, &key_pem)?;
            let certs = load_certs(&cert_path, &cert_pem)?;
            private_fs::tighten_file_if_present(&cert_path)?;
            let [cert] = certs.as_slice() else {
                bail!("{}: expected one certificate, found {}", cert_path.display(), certs.len());
            };
            if !holds_key(cert, &key) {
                bail!(
                    "{} does not belong to {}: the key is not the certificate's; restore the pair from a backup",
                    key_path.display(),
                    cert_path.display()
                );
            }
            Ok((key, cert.to_vec(), cert_pem))
        }
        (None, None) => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                .context("cannot generate the CA key")?;
            let mut params = ca_params();
            set_validity(&mut params, CA_YEARS);
            params.serial_number = Some(random_serial()?);
            let cert = params.self_signed(&key).context("cannot sign the CA certificate")?;
            // The key first: a crash in between leaves a key without a certificate, which
            // is reported, never a certificate whose key is lost.
            write(&key_path, &key.serialize_pem())?;
            write(&cert_path, &cert.pem())?;
            info!(dir = %dir.display(), fingerprint = %hex::encode(sha256(cert.der())), "created the Drover CA");
            Ok((key, cert.der().to_vec(), cert.pem()))
        }
        (None, Some(_)) => bail!(
            "{} is missing but {} exists: restore the CA certificate (agents pin it), or remove both to create a new CA",
            cert_path.display(),
            key_path.display()
        ),
        (Some(_), None) => bail!(
            "{} is missing but {} exists: restore the CA key, or remove both to create a new CA",
            key_path.display(),
            cert_path.display()
        ),
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn issuer(ca_key: &KeyPair) -> anyhow::Result<rcgen::Certificate> {
    ca_params()
        .self_signed(ca_key)
        .context("cannot prepare the CA for signing")
}

/// Sets a certificate's validity from today (midnight UTC) for `years`. Days past the 28th
/// become the 28th, so that every month of the final year has the day.
fn set_validity(params: &mut CertificateParams, years: i32) {
    let today = Utc::now().date_naive();
    let (month, day) = (today.month() as u8, today.day().min(28) as u8);
    params.not_before = rcgen::date_time_ymd(today.year(), month, day);
    params.not_after = rcgen::date_time_ymd(today.year() + years, month, day);
}

fn random_serial() -> anyhow::Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow!("no randomness from the system"))?;
    // Positive and without a leading zero byte, as DER INTEGERs for serials should be.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn load_or_create_signing_key(
    path: &Path,
    may_create: bool,
) -> anyhow::Result<([u8; 32], [u8; 32])> {
    let seed: [u8; 32] = match fs::read(path) {
        Ok(bytes) => {
            private_fs::tighten_file_if_present(path)?;
            bytes.as_slice().try_into().map_err(|_| {
                anyhow!(
                    "{}: expected a 32-byte Ed25519 seed, found {} bytes; restore it from a backup",
                    path.display(),
                    bytes.len()
                )
            })?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && !may_create => {
            return Err(anyhow!(
                "{} is missing while the CA exists: restore it from a backup (every agent pinned it at enrollment), or remove the whole directory to start a new fleet (every node must then enroll again)",
                path.display()
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            SystemRandom::new()
                .fill(&mut seed)
                .map_err(|_| anyhow!("no randomness from the system"))?;
            write_atomically(path, &seed, true)
                .with_context(|| format!("cannot write {}", path.display()))?;
            info!(path = %path.display(), "created the controller's signing key");
            seed
        }
        Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
    };
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| anyhow!("{}: not an Ed25519 seed", path.display()))?;
    let mut public = [0u8; 32];
    public.copy_from_slice(pair.public_key().as_ref());
    Ok((seed, public))
}

/// The names the broker's certificate should carry, in a stable order.
fn wanted_sans(extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    names.extend(drover_agent::sysinfo::hostname(Path::new("/")));
    names.extend(interface_addresses().iter().map(IpAddr::to_string));
    names.extend(extra.iter().cloned());
    usable_sans(names)
}

/// Deduplicated names that a certificate can carry and a TLS client can ask for.
fn usable_sans(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in names {
        let name = name.trim().to_ascii_lowercase();
        if ServerName::try_from(name.as_str()).is_err() {
            warn!(
                name,
                "not a host name or IP address; left out of the server certificate"
            );
            continue;
        }
        if seen.insert(name.clone()) {
            out.push(name);
        }
    }
    out
}

fn interface_addresses() -> Vec<IpAddr> {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addresses
        .filter_map(|a| a.address)
        .filter_map(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}

fn issue_server(
    sans: &[String],
    ca_key: &KeyPair,
    ca_issuer: &rcgen::Certificate,
) -> anyhow::Result<(rcgen::Certificate, KeyPair)> {
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("cannot generate a server key")?;
    let mut params = CertificateParams::new(sans.to_vec())
        .context("cannot put these names into a certificate")?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "drover-broker");
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVER_YEARS);
    params.serial_number = Some(random_serial()?);
    let cert = params
        .signed_by(&key, ca_issuer, ca_key)
        .context("cannot sign the server certificate")?;
    Ok((cert, key))
}

/// Why a stored server certificate is not used as it is.
enum Stale {
    Missing,
    Expiring,
    LacksName(String),
}

fn load_or_create_server(
    dir: &Path,
    ca_der: &[u8],
    ca_pem: &str,
    ca_key: &KeyPair,
    ca_issuer: &rcgen::Certificate,
    wanted: &[String],
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (cert_path, key_path) = (dir.join(SERVER_CERT), dir.join(SERVER_KEY));
    let stale = match (read(&cert_path)?, read(&key_path)?) {
        (Some(cert_pem), Some(key_pem)) => {
            let key = load_key(&key_path, &key_pem)?;
            let certs = load_certs(&cert_path, &cert_pem)?;
            private_fs::tighten_file_if_present(&cert_path)?;
            let leaf = &certs[0];
            if !holds_key(leaf, &key) {
                bail!(
                    "{} does not belong to {}: remove both to have them reissued",
                    key_path.display(),
                    cert_path.display()
                );
            }
            match check_server_cert(leaf, ca_der, wanted) {
                Ok(()) => {
                    let chain = vec![leaf.clone(), CertificateDer::from(ca_der.to_vec())];
                    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
                    return Ok((chain, key));
                }
                Err(ServerCheck::NotOurs(e)) => bail!(
                    "{} is not signed by {} ({e}): remove {} and {} to have them reissued",
                    cert_path.display(),
                    dir.join(CA_CERT).display(),
                    cert_path.display(),
                    key_path.display()
                ),
                Err(ServerCheck::Stale(stale)) => stale,
            }
        }
        _ => Stale::Missing,
    };
    match &stale {
        Stale::Missing => info!(dir = %dir.display(), "issuing the broker's server certificate"),
        Stale::Expiring => info!("reissuing the broker's server certificate: it expires soon"),
        Stale::LacksName(name) => {
            info!(
                name,
                "reissuing the broker's server certificate for a new name"
            )
        }
    }
    let (cert, key) = issue_server(wanted, ca_key, ca_issuer)?;
    write(&key_path, &key.serialize_pem())?;
    write(&cert_path, &format!("{}{}", cert.pem(), ca_pem))?;
    let chain = vec![cert.der().clone(), CertificateDer::from(ca_der.to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((chain, key))
}

enum ServerCheck {
    NotOurs(webpki::Error),
    Stale(Stale),
}

fn check_server_cert(
    leaf: &CertificateDer<'_>,
    ca_der: &[u8],
    wanted: &[String],
) -> Result<(), ServerCheck> {
    let ca = CertificateDer::from(ca_der);
    let anchor = webpki::anchor_from_trusted_cert(&ca).map_err(ServerCheck::NotOurs)?;
    let cert = webpki::EndEntityCert::try_from(leaf).map_err(ServerCheck::NotOurs)?;
    let algorithms = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let soon = UnixTime::since_unix_epoch(
        UnixTime::now()
            .as_secs()
            .checked_add(RENEW_DAYS * 86_400)
            .map_or(std::time::Duration::MAX, std::time::Duration::from_secs),
    );
    match cert.verify_for_usage(
        algorithms,
        &[anchor],
        &[],
        soon,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    ) {
        Ok(_) => {}
        Err(webpki::Error::CertExpired { .. }) => return Err(ServerCheck::Stale(Stale::Expiring)),
        Err(e) => return Err(ServerCheck::NotOurs(e)),
    }
    for name in wanted {
        let Ok(server_name) = ServerName::try_from(name.as_str()) else {
            continue;
        };
        if cert.verify_is_valid_for_subject_name(&server_name).is_err() {
            return Err(ServerCheck::Stale(Stale::LacksName(name.clone())));
        }
    }
    Ok(())
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("the server certificate and key do not make a TLS configuration")?;
    Ok(Arc::new(config))
}

/// Paths of the PKI's files in `dir`, for tests and tools.
pub fn files(dir: &Path) -> [PathBuf; 5] {
    [CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY, SIGNING_KEY].map(|f| dir.join(f))
}

#[cfg(test)]
mod tests;
