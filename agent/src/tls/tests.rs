//! Handshakes against a real TLS server on loopback, with certificates made by rcgen.

use std::io;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ca {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

/// A broker certificate signed by `ca`, for `localhost` only.
fn leaf(ca: &Ca) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

fn server(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Arc<rustls::ServerConfig> {
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

/// A server presenting `leaf` then `ca` (as the controller's broker does).
fn broker(ca: &Ca) -> Arc<rustls::ServerConfig> {
    let (cert, key) = leaf(ca);
    server(vec![cert, ca.cert.der().clone()], key)
}

/// Connects to a one-shot TLS echo server asking for `name`; Ok when a byte went both ways.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    name: &str,
) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let accepting = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await?;
        tls.write_all(&byte).await?;
        tls.flush().await?;
        io::Result::Ok(())
    });
    let name = ServerName::try_from(name.to_string()).map_err(io::Error::other)?;
    let tcp = TcpStream::connect(address).await?;
    let result = async {
        let mut tls = tokio_rustls::TlsConnector::from(client)
            .connect(name, tcp)
            .await?;
        tls.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await?;
        io::Result::Ok(())
    }
    .await;
    accepting.abort();
    result
}

/// The client refused the broker's certificate (not some other failure).
fn refused(result: io::Result<()>) -> bool {
    match result {
        Ok(()) => false,
        Err(e) => e.to_string().contains("invalid peer certificate"),
    }
}

#[tokio::test]
async fn the_pinned_ca_is_accepted_whatever_the_server_name() {
    let ca = ca("drover-ca");
    let client = pinned_ca_config(ca.cert.der()).unwrap();
    for name in ["localhost", "elsewhere.example", "10.1.2.3"] {
        let result = handshake(broker(&ca), client.clone(), name).await;
        assert!(result.is_ok(), "{name}: {result:?}");
    }
}

#[tokio::test]
async fn the_pinned_ca_needs_not_be_in_the_chain() {
    let ca = ca("drover-ca");
    let (cert, key) = leaf(&ca);
    let client = pinned_ca_config(ca.cert.der()).unwrap();
    handshake(server(vec![cert], key), client, "localhost")
        .await
        .unwrap();
}

#[tokio::test]
async fn another_ca_is_refused() {
    let ours = ca("drover-ca");
    let theirs = ca("drover-ca");
    let client = pinned_ca_config(ours.cert.der()).unwrap();
    assert!(refused(
        handshake(broker(&theirs), client, "localhost").await
    ));
}

#[tokio::test]
async fn a_broker_presenting_our_ca_over_a_leaf_of_another_is_refused() {
    let ours = ca("drover-ca");
    let theirs = ca("drover-ca");
    let (cert, key) = leaf(&theirs);
    let chain = vec![cert, ours.cert.der().clone()];
    let pinned = pinned_ca_config(ours.cert.der()).unwrap();
    assert!(refused(
        handshake(server(chain.clone(), key.clone_key()), pinned, "localhost").await
    ));
    let (by_fingerprint, captured) = fingerprint_config(sha256(ours.cert.der()));
    assert!(refused(
        handshake(server(chain, key), by_fingerprint, "localhost").await
    ));
    assert_eq!(captured.get(), None);
}

#[tokio::test]
async fn the_fingerprint_of_the_ca_in_the_chain_is_accepted_and_the_ca_captured() {
    let ca = ca("drover-ca");
    let (client, captured) = fingerprint_config(sha256(ca.cert.der()));
    assert_eq!(captured.get(), None);
    handshake(broker(&ca), client, "any.example").await.unwrap();
    assert_eq!(captured.get().as_deref(), Some(ca.cert.der().as_ref()));
    // What was captured pins the same broker.
    let pinned = pinned_ca_config(&captured.get().unwrap()).unwrap();
    handshake(broker(&ca), pinned, "localhost").await.unwrap();
}

#[tokio::test]
async fn the_fingerprint_of_another_certificate_is_refused() {
    let ca = ca("drover-ca");
    let other = self::ca("other");
    let (client, captured) = fingerprint_config(sha256(other.cert.der()));
    assert!(refused(handshake(broker(&ca), client, "localhost").await));
    assert_eq!(captured.get(), None);
}

#[tokio::test]
async fn the_fingerprint_of_the_leaf_itself_is_refused() {
    let ca = ca("drover-ca");
    let (cert, key) = leaf(&ca);
    let (client, captured) = fingerprint_config(sha256(cert.as_ref()));
    let chain = vec![cert, ca.cert.der().clone()];
    assert!(refused(
        handshake(server(chain, key), client, "localhost").await
    ));
    assert_eq!(captured.get(), None);
}

#[tokio::test]
async fn a_chain_without_the_ca_is_refused_by_fingerprint() {
    let ca = ca("drover-ca");
    let (cert, key) = leaf(&ca);
    let (client, captured) = fingerprint_config(sha256(ca.cert.der()));
    assert!(refused(
        handshake(server(vec![cert], key), client, "localhost").await
    ));
    assert_eq!(captured.get(), None);
}

#[test]
fn a_ca_that_is_not_a_certificate_is_an_error() {
    assert!(matches!(
        pinned_ca_config(b"not a certificate"),
        Err(TlsError::InvalidCa(_))
    ));
}

#[test]
fn transports_follow_the_url_scheme() {
    let ca = ca("drover-ca");
    let config = pinned_ca_config(ca.cert.der()).unwrap();
    let plain = BrokerAddress::parse("mqtt://broker").unwrap();
    let tls = BrokerAddress::parse("mqtts://broker").unwrap();
    assert!(matches!(
        transport(&plain, None),
        Ok(rumqttc::Transport::Tcp)
    ));
    assert!(matches!(
        transport(&tls, Some(config.clone())),
        Ok(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
            _
        )))
    ));
    assert!(matches!(transport(&tls, None), Err(TlsError::NoTrust(_))));
    assert!(matches!(
        transport(&plain, Some(config)),
        Err(TlsError::NotTls(_))
    ));
}
