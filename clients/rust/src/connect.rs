//! Reaching the partnership's NATS as one agency: its own NATS user (a
//! user and password, a `.creds` file, or an NKey seed file), optional TLS
//! (required, with the partnership's root CA and a client certificate; a
//! missing or unreadable file is named before anything is sent), and
//! the agency's own inbox prefix `_INBOX_<agency>`, the only one its NATS
//! user may subscribe to (docs/wire-contract.md, "Connecting").

use crate::error::ConnectError;
use liaison_core::AgencyId;
use liaison_core::Credentials;
use liaison_core::subjects::inbox_prefix;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the agency authenticates to NATS.
#[derive(Debug, Clone)]
pub enum NatsAuth {
    /// User and password (development, `liaison up`, the tests).
    UserPassword(Credentials),
    /// A NATS `.creds` file (user JWT and NKey seed), for JWT accounts.
    CredsFile(PathBuf),
    /// A file holding the agency's NKey seed (`SU...`): how agencies log in
    /// (the public key registered as its `nats_keys`).
    NKeySeedFile(PathBuf),
    /// The agency's NKey seed itself.
    NKeySeed(liaison_core::Secret),
}

impl NatsAuth {
    /// Who connects, for error messages (never a secret).
    fn who(&self) -> String {
        match self {
            Self::UserPassword(c) => c.user.clone(),
            Self::CredsFile(p) => format!("the credentials in {}", p.display()),
            Self::NKeySeedFile(p) => format!("the NKey in {}", p.display()),
            Self::NKeySeed(_) => "an NKey".to_owned(),
        }
    }
}

/// TLS to NATS (liaison-core's, shared with the services): required, the CA
/// that signed the servers' certificates, and a client certificate where the
/// servers verify clients.
pub use liaison_core::connect::TlsOptions;

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
    /// User and password, no TLS.
    pub fn new(url: impl Into<String>, credentials: Credentials) -> Self {
        Self::with_auth(url, NatsAuth::UserPassword(credentials))
    }

    /// The agency's NKey seed file, no TLS: the development system.
    pub fn with_nkey_file(url: impl Into<String>, seed: impl Into<PathBuf>) -> Self {
        Self::with_auth(url, NatsAuth::NKeySeedFile(seed.into()))
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

    /// Presents the client certificate `cert` with its key `key` (PEM files),
    /// for servers that verify clients (mutual TLS).
    pub fn client_certificate(mut self, cert: PathBuf, key: PathBuf) -> Self {
        self.tls.client_cert = Some((cert, key));
        self
    }
}

/// The claims of a `.creds` file's user JWT that make a refusal clear:
/// when it expires (`exp`, seconds since the epoch), if it does.
fn creds_expiry(path: &Path) -> Result<Option<i64>, ConnectError> {
    use base64::Engine as _;
    let bad = |reason: String| ConnectError::File {
        what: "NATS credentials file",
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let jwt = text
        .lines()
        .skip_while(|l| !l.contains("BEGIN NATS USER JWT"))
        .nth(1)
        .map(str::trim)
        .ok_or_else(|| bad("no NATS USER JWT block".into()))?;
    let claims = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| bad("the user JWT is not header.claims.signature".into()))?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .map_err(|e| bad(format!("the user JWT's claims are not base64url: {e}")))?;
    let claims: serde_json::Value = serde_json::from_slice(&claims)
        .map_err(|e| bad(format!("the user JWT's claims are not JSON: {e}")))?;
    Ok(claims.get("exp").and_then(serde_json::Value::as_i64))
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
        NatsAuth::UserPassword(c) => async_nats::ConnectOptions::with_user_and_password(
            c.user.clone(),
            c.password.expose().to_owned(),
        ),
        NatsAuth::CredsFile(path) => {
            let now = i64::try_from(liaison_core::time::unix_now()).unwrap_or(i64::MAX);
            if let Some(exp) = creds_expiry(path)?.filter(|exp| *exp <= now) {
                return Err(ConnectError::CredsExpired {
                    path: path.display().to_string(),
                    expired_at: exp,
                    ago_secs: now - exp,
                });
            }
            async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| ConnectError::File {
                    what: "NATS credentials file",
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?
        }
        NatsAuth::NKeySeedFile(path) => {
            let seed = std::fs::read_to_string(path).map_err(|e| ConnectError::File {
                what: "NKey seed file",
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
        }
        NatsAuth::NKeySeed(seed) => {
            async_nats::ConnectOptions::with_nkey(seed.expose().trim().to_owned())
        }
    };
    connect = liaison_core::connect::apply_tls(connect, &options.tls).map_err(|e| {
        ConnectError::File {
            what: e.what,
            path: e.path,
            reason: e.reason,
        }
    })?;
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| format!("agency-{agency}"));
    connect
        .name(name)
        .custom_inbox_prefix(inbox_prefix(agency.as_str()))
        .connection_timeout(options.connect_timeout)
        .connect(liaison_core::connect::servers(&options.url))
        .await
        .map_err(|e| {
            let reason = liaison_core::connect::explain(e.to_string(), &options.tls);
            match (&options.auth, e.kind()) {
                (NatsAuth::CredsFile(_), async_nats::ConnectErrorKind::AuthorizationViolation) => {
                    nats_error(format!(
                        "{reason} (the server refused the user JWT: is it signed by the \
                         partnership's account, unchanged, and not revoked?)"
                    ))
                }
                (
                    NatsAuth::NKeySeedFile(_) | NatsAuth::NKeySeed(_),
                    async_nats::ConnectErrorKind::AuthorizationViolation,
                ) => nats_error(format!(
                    "{reason} (the partnership's gateway did not let this NKey in: it must be \
                     one of {agency}'s registered nats_keys, and {agency} neither suspended nor \
                     removed; ask the partnership's operators)"
                )),
                _ => nats_error(reason),
            }
        })
}
