//! Both TLS ends: the throwaway self-signed certificate clients see, and the connection to the
//! real API server, checked against its CA when one is given.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

/// Where forwarded requests go, and how to speak TLS to it.
pub(super) struct Upstream {
    /// `host:port`, for `TcpStream::connect`.
    pub(super) addr: String,
    pub(super) server_name: ServerName<'static>,
    pub(super) tls: Arc<ClientConfig>,
}

pub(super) fn server_config(provider: &Arc<CryptoProvider>) -> anyhow::Result<ServerConfig> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

pub(super) fn upstream(
    url: &str,
    ca: Option<&Path>,
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<Upstream> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| anyhow!("upstream must be an https:// URL, got {url:?}"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| anyhow!("bad IPv6 authority in {url:?}"))?;
        (host, after.strip_prefix(':').unwrap_or("443"))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port),
            None => (authority, "443"),
        }
    };
    if host.is_empty() {
        bail!("no host in upstream URL {url:?}");
    }
    let port: u16 = port
        .parse()
        .with_context(|| format!("bad port in {url:?}"))?;
    let server_name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_owned())?,
    };

    let builder = ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()?;
    let mut tls = match ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots.add(cert.with_context(|| format!("parsing {}", ca.display()))?)?;
            }
            if roots.is_empty() {
                bail!("no certificates in {}", ca.display());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(Arc::clone(provider))))
            .with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];

    Ok(Upstream {
        addr: format!("{host}:{port}"),
        server_name,
        tls: Arc::new(tls),
    })
}

/// Accepts any upstream certificate, but still checks handshake signatures
/// so a broken TLS setup fails loudly rather than oddly.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
