//! The harness's side of the gateway's HTTPS door: development certificates
//! made once per checkout (under `target/tmp/`, by `liaison_system::devtls`, never
//! committed), and a small HTTPS client (hyper over a real rustls connection,
//! one connection per request) whose TLS versions and client certificate a
//! test chooses.

use anyhow::{Context as _, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use liaison_system::devtls;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokio_rustls::TlsConnector;

/// The server certificate the harness's gateways use, and the CA clients trust.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The harness's certificates, made on first use (once per checkout: every
/// test process shares them, so each is made into a fresh directory and
/// renamed into place; the first to arrive wins).
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| make_pki().unwrap_or_else(|e| panic!("test certificates: {e:#}")))
}

fn make_pki() -> Result<TestPki> {
    let dir = crate::repo_root().join("target/tmp/liaison-test-tls");
    let files = |dir: &Path| TestPki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    };
    if dir.join("server-key.pem").is_file() {
        return Ok(files(&dir));
    }
    let fresh = dir.with_extension(format!("new-{}", std::process::id()));
    devtls::write_server_files(&fresh)?;
    if std::fs::rename(&fresh, &dir).is_err() {
        // Another test process got there first: use its files.
        let _ = std::fs::remove_dir_all(&fresh);
    }
    Ok(files(&dir))
}

/// A TLS client configuration trusting `ca` (PEM), speaking `versions`, and
/// presenting `client` (certificate and key, PEM) if given.
pub fn client_config(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client: Option<&devtls::Issued>,
) -> Result<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let builder = ClientConfig::builder_with_provider(liaison_gateway::https::tls::provider())
        .with_protocol_versions(versions)?
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(issued) => {
            let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()?;
            let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())?;
            builder.with_client_auth_cert(chain, key)?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// What the door answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "HTTP {} body is not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `code` of a JSON error or verdict ("" if none).
    pub fn code(&self) -> String {
        self.json()
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned))
            .unwrap_or_default()
    }
}

/// An HTTPS client of one door.
#[derive(Clone)]
pub struct Https {
    addr: SocketAddr,
    tls: TlsConnector,
}

impl Https {
    /// A client of the door at `addr` trusting the harness CA, TLS 1.2 and 1.3.
    pub fn new(addr: SocketAddr) -> Result<Self> {
        let config = client_config(&pki().ca, liaison_gateway::https::tls::VERSIONS, None)?;
        Ok(Self::with_config(addr, config))
    }

    pub fn with_config(addr: SocketAddr, config: ClientConfig) -> Self {
        Self {
            addr,
            tls: TlsConnector::from(Arc::new(config)),
        }
    }

    /// Sends one request on a new connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Reply> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = self.tls.connect(name, tcp).await.context("TLS handshake")?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        let driver = tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(Full::new(body.into()))?)
            .await
            .context("sending the request")?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| anyhow!("reading the reply: {e}"))?
            .to_bytes();
        driver.abort();
        Ok(Reply { status, body })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Reply> {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| ("authorization", b))
            .into_iter()
            .collect();
        self.request("GET", path, &headers, Bytes::new()).await
    }

    /// POSTs `body` as JSON, with a bearer token if given.
    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Result<Reply> {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(b) = bearer.as_deref() {
            headers.push(("authorization", b));
        }
        self.request("POST", path, &headers, body).await
    }
}

/// An envelope in the protobuf JSON mapping, as an agency's system sends it.
pub fn envelope_json(envelope: &liaison_proto::v1::Envelope) -> String {
    liaison_proto::json::to_json("Envelope", envelope).to_string()
}
