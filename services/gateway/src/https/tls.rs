//! The door's TLS configuration: TLS 1.3 and 1.2 only (rustls offers nothing
//! older), ring as the one crypto provider, HTTP/1.1 by ALPN, and client
//! certificates verified against `https.client_ca` when it is set (required
//! or optional, as configured). It does not map a client certificate to an
//! agency: the agency is proved by its token.

use super::HttpsError;
use liaison_runtime::config::HttpsConfig;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// The protocol versions the door speaks.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider of every TLS connection Liaison makes.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server configuration from the PEM files `config` names.
pub fn server_config(config: &HttpsConfig) -> Result<ServerConfig, HttpsError> {
    let chain = certificates("cert", &config.cert)?;
    let key = private_key(&config.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| HttpsError::Config(format!("TLS versions: {e}")))?;
    let builder = if config.client_ca.as_os_str().is_empty() {
        if config.client_cert_required {
            return Err(HttpsError::Config(
                "client_cert_required is set but client_ca names no CA to verify client certificates with".into(),
            ));
        }
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for ca in certificates("client_ca", &config.client_ca)? {
            roots
                .add(ca)
                .map_err(|e| pem_error("client_ca", &config.client_ca, e))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
        let verifier = if config.client_cert_required {
            verifier
        } else {
            verifier.allow_unauthenticated()
        };
        let verifier = verifier
            .build()
            .map_err(|e| pem_error("client_ca", &config.client_ca, e))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut server = builder.with_single_cert(chain, key).map_err(|e| {
        pem_error(
            "cert",
            &config.cert,
            format!("does not go with https.key: {e}"),
        )
    })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(server)
}

fn pem_error(key: &'static str, path: &Path, reason: impl ToString) -> HttpsError {
    HttpsError::Pem {
        key,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Every certificate in the PEM file at `path` (at least one).
fn certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, HttpsError> {
    if path.as_os_str().is_empty() {
        return Err(HttpsError::Missing(key));
    }
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(key, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(key, path, e))?;
    if chain.is_empty() {
        return Err(pem_error(key, path, "holds no PEM certificate"));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, HttpsError> {
    if path.as_os_str().is_empty() {
        return Err(HttpsError::Missing("key"));
    }
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error("key", path, e))
}
