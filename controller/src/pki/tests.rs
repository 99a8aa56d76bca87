use std::os::unix::fs::PermissionsExt;

use super::*;

fn pki_dir() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("pki");
    (root, dir)
}

fn leaf_of(dir: &Path) -> CertificateDer<'static> {
    let pem = fs::read_to_string(dir.join(SERVER_CERT)).unwrap();
    load_certs(&dir.join(SERVER_CERT), &pem).unwrap().remove(0)
}

fn valid_for(leaf: &CertificateDer<'_>, name: &str) -> bool {
    let cert = webpki::EndEntityCert::try_from(leaf).unwrap();
    cert.verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap())
        .is_ok()
}

fn error_of(dir: &Path) -> String {
    format!("{:#}", Pki::load_or_create(dir, &[]).unwrap_err())
}

#[test]
fn first_start_creates_a_ca_a_server_certificate_and_a_signing_key() {
    let (_root, dir) = pki_dir();
    let pki = Pki::load_or_create(&dir, &["broker.example".into(), "10.9.8.7".into()]).unwrap();
    for path in files(&dir) {
        assert!(path.is_file(), "{}", path.display());
    }
    assert_eq!(pki.ca_fingerprint, sha256(&pki.ca_der));
    assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let leaf = leaf_of(&dir);
    for name in [
        "localhost",
        "127.0.0.1",
        "::1",
        "broker.example",
        "10.9.8.7",
    ] {
        assert!(valid_for(&leaf, name), "{name}");
    }
    assert!(!valid_for(&leaf, "other.example"));
    assert!(check_server_cert(&leaf, &pki.ca_der, &[]).is_ok());
    let public = Ed25519KeyPair::from_seed_unchecked(&pki.signing_seed).unwrap();
    assert_eq!(public.public_key().as_ref(), pki.signing_public);
}

#[test]
fn the_directory_is_0700_and_every_file_0600() {
    let (_root, dir) = pki_dir();
    Pki::load_or_create(&dir, &[]).unwrap();
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for path in files(&dir) {
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
}

#[test]
fn reloading_keeps_the_ca_the_signing_key_and_the_server_certificate() {
    let (_root, dir) = pki_dir();
    let first = Pki::load_or_create(&dir, &[]).unwrap();
    let server = fs::read(dir.join(SERVER_CERT)).unwrap();
    let second = Pki::load_or_create(&dir, &[]).unwrap();
    assert_eq!(first.ca_fingerprint, second.ca_fingerprint);
    assert_eq!(first.ca_der, second.ca_der);
    assert_eq!(first.signing_seed, second.signing_seed);
    assert_eq!(first.signing_public, second.signing_public);
    assert_eq!(fs::read(dir.join(SERVER_CERT)).unwrap(), server);
}

#[test]
fn a_new_san_reissues_the_server_certificate_under_the_same_ca() {
    let (_root, dir) = pki_dir();
    let first = Pki::load_or_create(&dir, &[]).unwrap();
    let before = fs::read(dir.join(SERVER_CERT)).unwrap();
    let second = Pki::load_or_create(&dir, &["new.example".into()]).unwrap();
    assert_eq!(first.ca_fingerprint, second.ca_fingerprint);
    assert_ne!(fs::read(dir.join(SERVER_CERT)).unwrap(), before);
    let leaf = leaf_of(&dir);
    assert!(valid_for(&leaf, "new.example"));
    assert!(check_server_cert(&leaf, &second.ca_der, &[]).is_ok());
}

#[test]
fn a_damaged_file_is_an_error_naming_it() {
    for file in [CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY, SIGNING_KEY] {
        let (_root, dir) = pki_dir();
        Pki::load_or_create(&dir, &[]).unwrap();
        fs::write(dir.join(file), "garbage").unwrap();
        let error = error_of(&dir);
        assert!(error.contains(file), "{file}: {error}");
    }
}

#[test]
fn files_from_another_pki_do_not_belong_together() {
    let (_root, dir) = pki_dir();
    let (_other_root, other) = pki_dir();
    Pki::load_or_create(&dir, &[]).unwrap();
    Pki::load_or_create(&other, &[]).unwrap();

    // A server certificate and key of another CA.
    for file in [SERVER_CERT, SERVER_KEY] {
        fs::copy(other.join(file), dir.join(file)).unwrap();
    }
    let error = error_of(&dir);
    assert!(
        error.contains(SERVER_CERT) && error.contains("not signed"),
        "{error}"
    );

    // A CA key that is not the certificate's.
    fs::copy(other.join(CA_KEY), dir.join(CA_KEY)).unwrap();
    let error = error_of(&dir);
    assert!(error.contains(CA_KEY) && error.contains(CA_CERT), "{error}");
}

#[test]
fn a_server_key_that_is_not_the_certificates_is_refused() {
    let (_root, dir) = pki_dir();
    let (_other_root, other) = pki_dir();
    Pki::load_or_create(&dir, &[]).unwrap();
    Pki::load_or_create(&other, &[]).unwrap();
    fs::copy(other.join(SERVER_KEY), dir.join(SERVER_KEY)).unwrap();
    let error = error_of(&dir);
    assert!(error.contains(SERVER_KEY), "{error}");
}

#[test]
fn half_a_ca_is_an_error_not_a_new_ca() {
    let (_root, dir) = pki_dir();
    Pki::load_or_create(&dir, &[]).unwrap();
    fs::remove_file(dir.join(CA_CERT)).unwrap();
    assert!(error_of(&dir).contains(CA_CERT));
    assert!(
        !dir.join(CA_CERT).exists(),
        "no new CA behind the agents' back"
    );
}

#[test]
fn issued_certificates_chain_to_the_ca_and_carry_the_names() {
    let (_root, dir) = pki_dir();
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let (chain, key) = pki
        .issue_server_cert(&["mqtt.example".into(), "192.0.2.1".into()])
        .unwrap();
    let certs = load_certs(Path::new("chain"), &chain).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[1].as_ref(), pki.ca_der.as_slice());
    assert!(check_server_cert(&certs[0], &pki.ca_der, &[]).is_ok());
    assert!(valid_for(&certs[0], "mqtt.example"));
    assert!(valid_for(&certs[0], "192.0.2.1"));
    let key = KeyPair::from_pem(&key).unwrap();
    assert!(holds_key(&certs[0], &key));
    assert!(pki.issue_server_cert(&["not a name".into()]).is_err());
}

/// A TLS handshake between the PKI's broker config and `client`, asking for `name`.
async fn handshake(pki: &Pki, client: Arc<rustls::ClientConfig>, name: &str) -> io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_tls_config());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        acceptor.accept(tcp).await.map(drop)
    });
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let name = ServerName::try_from(name.to_string()).map_err(io::Error::other)?;
    let result = tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .map(drop);
    server.abort();
    result
}

#[tokio::test]
async fn agents_accept_the_broker_by_pinned_ca_or_by_fingerprint_alone() {
    let (_root, dir) = pki_dir();
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let pinned = drover_agent::tls::pinned_ca_config(&pki.ca_der).unwrap();
    handshake(&pki, pinned, "some-address.example")
        .await
        .unwrap();
    // The chain carries the CA, so its fingerprint is enough, and the CA is learnt.
    let (by_fingerprint, captured) = drover_agent::tls::fingerprint_config(pki.ca_fingerprint);
    handshake(&pki, by_fingerprint, "10.0.0.9").await.unwrap();
    assert_eq!(captured.get(), Some(pki.ca_der.clone()));
}

#[tokio::test]
async fn agents_of_another_controller_refuse_the_broker() {
    let (_root, dir) = pki_dir();
    let (_other_root, other_dir) = pki_dir();
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let other = Pki::load_or_create(&other_dir, &[]).unwrap();
    let pinned = drover_agent::tls::pinned_ca_config(&other.ca_der).unwrap();
    assert!(handshake(&pki, pinned, "localhost").await.is_err());
    let (by_fingerprint, captured) = drover_agent::tls::fingerprint_config(other.ca_fingerprint);
    assert!(handshake(&pki, by_fingerprint, "localhost").await.is_err());
    assert_eq!(captured.get(), None);
}

#[test]
fn the_ca_vouches_for_the_controller_key_as_agents_check_it() {
    use drover_proto::keys::PublicKey;
    use drover_proto::msg::controller_key_statement;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
    let key = PublicKey(pki.signing_public);
    let attestation = pki.attest(&controller_key_statement(&key)).unwrap();
    assert!(drover_agent::enroll::ca_vouches_for(
        &pki.ca_der,
        &key,
        &attestation
    ));
    let other = PublicKey([9; 32]);
    assert!(!drover_agent::enroll::ca_vouches_for(
        &pki.ca_der,
        &other,
        &attestation
    ));
    let mut damaged = attestation.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(!drover_agent::enroll::ca_vouches_for(
        &pki.ca_der,
        &key,
        &damaged
    ));
}

#[test]
fn a_lost_signing_key_is_an_error_not_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    Pki::load_or_create(dir.path(), &[]).unwrap();
    std::fs::remove_file(dir.path().join(SIGNING_KEY)).unwrap();
    let error = format!("{:#}", Pki::load_or_create(dir.path(), &[]).unwrap_err());
    assert!(error.contains("signing.key is missing"), "{error}");
}
