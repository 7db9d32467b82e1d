//! Reaching the partnership's NATS as one agency: its own NATS user (a
//! user and password, a `.creds` file, or an NKey seed file), optional TLS
//! (required, with the partnership's root CA and a client certificate), and
//! the agency's own inbox prefix `_INBOX_<agency>`, the only one its NATS
//! user may subscribe to (docs/wire-contract.md, "Connecting").

use crate::error::ConnectError;
use liaison_kit::AgencyId;
use liaison_kit::subjects::inbox_prefix;
use liaison_kit::users::Credentials;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the agency authenticates to NATS.
#[derive(Debug, Clone)]
pub enum NatsAuth {
    /// User and password (development, `liaison up`, the tests).
    UserPassword(Credentials),
    /// A NATS `.creds` file (user JWT and NKey seed), for JWT accounts.
    CredsFile(PathBuf),
    /// A file holding the user's NKey seed (`SU...`).
    NKeySeedFile(PathBuf),
}

impl NatsAuth {
    /// Who connects, for error messages (never a secret).
    fn who(&self) -> String {
        match self {
            Self::UserPassword(c) => c.user.clone(),
            Self::CredsFile(p) => format!("the credentials in {}", p.display()),
            Self::NKeySeedFile(p) => format!("the NKey in {}", p.display()),
        }
    }
}

/// TLS to NATS. Production requires it; the development system runs without.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Refuse to talk to a server that does not offer TLS.
    pub required: bool,
    /// PEM file of the CA that signed the server's certificate (else the
    /// system's roots).
    pub root_ca: Option<PathBuf>,
    /// PEM files of a client certificate and its key, if the server asks for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://host:port` or `tls://host:port`; several comma-separated URLs
    /// for a cluster.
    pub url: String,
    pub auth: NatsAuth,
    pub tls: TlsOptions,
    /// The connection's name as the server shows it [default: `agency-<id>`].
    pub name: Option<String>,
    /// How long the first connection may take.
    pub connect_timeout: Duration,
}

impl NatsOptions {
    /// User and password, no TLS: the development system.
    pub fn new(url: impl Into<String>, credentials: Credentials) -> Self {
        Self::with_auth(url, NatsAuth::UserPassword(credentials))
    }

    /// `auth`, no TLS.
    pub fn with_auth(url: impl Into<String>, auth: NatsAuth) -> Self {
        Self {
            url: url.into(),
            auth,
            tls: TlsOptions::default(),
            name: None,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Requires TLS, trusting `root_ca` (a PEM file) for the server's certificate.
    pub fn require_tls(mut self, root_ca: Option<PathBuf>) -> Self {
        self.tls.required = true;
        self.tls.root_ca = root_ca;
        self
    }
}

fn must_exist(what: &'static str, path: &Path) -> Result<(), ConnectError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| ConnectError::File {
            what,
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// Connects as `agency` with `options`.
pub async fn connect(
    agency: &AgencyId,
    options: &NatsOptions,
) -> Result<async_nats::Client, ConnectError> {
    let nats_error = |reason: String| ConnectError::Nats {
        url: options.url.clone(),
        user: options.auth.who(),
        reason,
    };
    let mut connect = match &options.auth {
        NatsAuth::UserPassword(c) => {
            async_nats::ConnectOptions::with_user_and_password(c.user.clone(), c.password.clone())
        }
        NatsAuth::CredsFile(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| ConnectError::File {
                what: "NATS credentials file",
                path: path.display().to_string(),
                reason: e.to_string(),
            })?,
        NatsAuth::NKeySeedFile(path) => {
            let seed = std::fs::read_to_string(path).map_err(|e| ConnectError::File {
                what: "NKey seed file",
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
        }
    };
    if options.tls.required {
        connect = connect.require_tls(true);
    }
    if let Some(ca) = &options.tls.root_ca {
        must_exist("root CA file", ca)?;
        connect = connect.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &options.tls.client_cert {
        must_exist("client certificate", cert)?;
        must_exist("client key", key)?;
        connect = connect.add_client_certificate(cert.clone(), key.clone());
    }
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| format!("agency-{agency}"));
    connect
        .name(name)
        .custom_inbox_prefix(inbox_prefix(agency.as_str()))
        .connection_timeout(options.connect_timeout)
        .connect(liaison_kit::connect::servers(&options.url))
        .await
        .map_err(|e| nats_error(e.to_string()))
}
