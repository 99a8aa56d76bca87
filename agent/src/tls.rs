//! The agent's TLS client: it trusts exactly one CA, Drover's own.
//!
//! Two ways to know that CA:
//! - [`pinned_ca_config`]: the agent holds the CA certificate (after enrollment). The
//!   broker's chain must lead to it; no other root is trusted.
//! - [`fingerprint_config`]: the agent knows only the SHA-256 of the CA certificate (from
//!   a join token). The broker must present the CA in its chain; the end-entity certificate
//!   must verify against that CA, which is then captured ([`CapturedCa`]) for pinning.
//!
//! **The server name is not checked.** The CA is Drover's private CA, which certifies only
//! Drover brokers, and devices reach the broker by whatever address works from where they
//! are (a LAN IP, a VPN address, a name the controller never heard of). What the client
//! proves is "this broker holds a key Drover's CA certified for server use", which is what
//! matters; checking names would only break devices that reach the broker by an address
//! missing from its certificate. The chain, its validity period and the server-auth usage
//! are checked, and the handshake signature is verified with the ring provider.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use drover_proto::keys::sha256;

use crate::config::BrokerAddress;

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The pinned CA certificate does not parse as an X.509 trust anchor.
    #[error("the pinned CA certificate is not a usable X.509 certificate: {0}")]
    InvalidCa(webpki::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// An `mqtts://` broker and no CA to trust.
    #[error("broker {0} uses TLS (mqtts://) but no CA is known to trust: enroll the agent first")]
    NoTrust(String),
    /// A TLS configuration for an `mqtt://` broker.
    #[error("broker {0} is plain MQTT (mqtt://) but a TLS configuration was given: use mqtts://")]
    NotTls(String),
}

/// The CA certificate (DER) seen by a [`fingerprint_config`] connection, once a broker
/// passed the check.
#[derive(Debug, Clone, Default)]
pub struct CapturedCa(Arc<Mutex<Option<Vec<u8>>>>);

impl CapturedCa {
    /// The captured CA certificate, DER, if a broker was accepted.
    pub fn get(&self) -> Option<Vec<u8>> {
        // A poisoned lock still holds a complete value: it is only ever replaced whole.
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, der: &[u8]) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(der.to_vec());
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client that accepts a broker whose chain leads to `ca_der`, whatever its name.
pub fn pinned_ca_config(ca_der: &[u8]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let ca = CertificateDer::from(ca_der.to_vec());
    webpki::anchor_from_trusted_cert(&ca).map_err(TlsError::InvalidCa)?;
    client_config(Arc::new(DroverCa {
        trust: Trust::Pinned(ca),
        algorithms: provider().signature_verification_algorithms,
    }))
}

/// A client for enrollment: accepts a broker that presents, in its chain, the certificate
/// whose SHA-256 is `fingerprint` and whose end-entity certificate that CA signed. The CA
/// is captured in the returned [`CapturedCa`].
pub fn fingerprint_config(fingerprint: [u8; 32]) -> (Arc<rustls::ClientConfig>, CapturedCa) {
    let captured = CapturedCa::default();
    let verifier = Arc::new(DroverCa {
        trust: Trust::Fingerprint {
            fingerprint,
            captured: captured.clone(),
        },
        algorithms: provider().signature_verification_algorithms,
    });
    // Not an input path: the only fallible step is choosing the default protocol
    // versions, which the fixed ring provider always supports (the tests build this).
    let config = client_config(verifier)
        .expect("the ring provider supports rustls' default protocol versions");
    (config, captured)
}

/// The MQTT transport for `broker`: TCP for `mqtt://`, TLS with `tls` for `mqtts://`.
pub fn transport(
    broker: &BrokerAddress,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<rumqttc::Transport, TlsError> {
    match (broker.tls, tls) {
        (false, None) => Ok(rumqttc::Transport::tcp()),
        (true, Some(config)) => Ok(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config),
        )),
        (true, None) => Err(TlsError::NoTrust(broker.to_string())),
        (false, Some(_)) => Err(TlsError::NotTls(broker.to_string())),
    }
}

/// Verifies that `end_entity` (helped by `intermediates`) chains to `ca` for server use now.
fn verify_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    ca: &CertificateDer<'_>,
    now: UnixTime,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<(), rustls::Error> {
    let anchor = webpki::anchor_from_trusted_cert(ca).map_err(certificate_error)?;
    let cert = webpki::EndEntityCert::try_from(end_entity).map_err(certificate_error)?;
    cert.verify_for_usage(
        algorithms.all,
        &[anchor],
        intermediates,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map(drop)
    .map_err(certificate_error)
}

fn certificate_error(e: webpki::Error) -> rustls::Error {
    use webpki::Error as E;
    let error = match e {
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::CertExpired { .. } => CertificateError::Expired,
        E::CertNotValidYet { .. } => CertificateError::NotValidYet,
        E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => CertificateError::BadSignature,
        E::BadDer | E::BadDerTime => CertificateError::BadEncoding,
        E::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        other => CertificateError::Other(rustls::OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(error)
}

/// How the agent knows Drover's CA.
#[derive(Debug)]
enum Trust {
    /// It holds the CA certificate.
    Pinned(CertificateDer<'static>),
    /// It knows the CA certificate's SHA-256; the broker's chain must carry it.
    Fingerprint {
        fingerprint: [u8; 32],
        captured: CapturedCa,
    },
}

/// Accepts a broker only if its chain leads to Drover's CA (see the module documentation).
#[derive(Debug)]
struct DroverCa {
    trust: Trust,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for DroverCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        // Deliberately unused: see the module documentation.
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::Pinned(ca) => {
                verify_chain(end_entity, intermediates, ca, now, &self.algorithms)?
            }
            Trust::Fingerprint {
                fingerprint,
                captured,
            } => {
                let ca = std::iter::once(end_entity)
                    .chain(intermediates)
                    .find(|c| sha256(c.as_ref()) == *fingerprint)
                    .ok_or(rustls::Error::InvalidCertificate(
                        CertificateError::UnknownIssuer,
                    ))?;
                verify_chain(end_entity, intermediates, ca, now, &self.algorithms)?;
                captured.set(ca.as_ref());
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client for HTTPS probes, which take any certificate, as Kubernetes' do: a probe asks
/// whether the pod answers, not who it is. Handshake signatures are still checked.
pub fn probe_config() -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config(Arc::new(AnyCertificate {
        algorithms: provider().signature_verification_algorithms,
    }))
}

#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
