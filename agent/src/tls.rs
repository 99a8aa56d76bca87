//! The agent's TLS client: the broker must present a certificate that chains to Drover's
//! own CA. Before enrollment the agent knows only the CA's SHA-256 (from the join token)
//! and finds the CA in the chain the broker sends; afterwards it pins the CA it stored.
//!
//! The server name is not checked: the CA is the controller's private CA and certifies
//! only Drover's brokers, and devices reach their broker by whatever address they are
//! given (an IP behind NAT, a name the CA never heard of). Chaining to the pinned CA is
//! what proves the broker genuine.

use std::sync::Arc;

use drover_proto::keys::sha256;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

/// Why a TLS client configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The stored CA certificate does not parse.
    #[error("the CA certificate is unusable: {0}")]
    BadCa(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

#[derive(Debug)]
enum Trust {
    /// This CA certificate (DER).
    Ca(Vec<u8>),
    /// The certificate in the presented chain with this SHA-256.
    Fingerprint([u8; 32]),
}

#[derive(Debug)]
struct DroverCa {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn bad(reason: impl std::fmt::Display) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        std::io::Error::other(reason.to_string()),
    ))))
}

impl ServerCertVerifier for DroverCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca: CertificateDer<'_> = match &self.trust {
            Trust::Ca(der) => CertificateDer::from(der.as_slice()),
            Trust::Fingerprint(fingerprint) => intermediates
                .iter()
                .chain(std::iter::once(end_entity))
                .find(|c| sha256(c.as_ref()) == *fingerprint)
                .cloned()
                .ok_or_else(|| {
                    bad("no certificate in the broker's chain has the join token's CA fingerprint")
                })?,
        };
        let anchor = webpki::anchor_from_trusted_cert(&ca).map_err(bad)?;
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(bad)?;
        cert.verify_for_usage(
            self.provider.signature_verification_algorithms.all,
            &[anchor],
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(bad)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn config(trust: Trust) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(DroverCa {
        trust,
        provider: provider.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client that accepts only brokers whose chain leads to the CA `ca_der`.
pub fn pinned_ca_config(ca_der: &[u8]) -> Result<Arc<ClientConfig>, TlsError> {
    webpki::anchor_from_trusted_cert(&CertificateDer::from(ca_der))
        .map_err(|e| TlsError::BadCa(e.to_string()))?;
    config(Trust::Ca(ca_der.to_vec()))
}

/// A client for enrollment: accepts only brokers that present, in their chain, the CA
/// whose SHA-256 is `fingerprint`, and a certificate that chains to it.
pub fn fingerprint_config(fingerprint: [u8; 32]) -> Result<Arc<ClientConfig>, TlsError> {
    config(Trust::Fingerprint(fingerprint))
}
