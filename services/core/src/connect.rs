//! Connecting to NATS as one user, with that user's own inbox prefix so that
//! request replies and JetStream pulls stay within its permissions, over TLS
//! when asked ([`TlsOptions`]: required, the CA that signed the servers'
//! certificates, and a client certificate where the servers verify clients).
//! A URL may name several servers, comma-separated (every node of a
//! cluster): the client connects to one and fails over to the others.

use crate::secret::Secret;
use crate::subjects::inbox_prefix;
use async_nats::rustls::pki_types::pem::PemObject as _;
use async_nats::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

/// A NATS user name and password; `Debug` never shows the password.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url} as {user:?}: {reason}")]
pub struct ConnectError {
    pub url: String,
    pub user: String,
    pub reason: String,
}

/// TLS to NATS. Production requires it (docs/decisions/0015-nats-tls.md);
/// the development system runs without.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Refuse to talk to a server that does not offer TLS.
    pub required: bool,
    /// PEM file of the CA that signed the server's certificate (else the
    /// system's roots).
    pub root_ca: Option<PathBuf>,
    /// PEM files of a client certificate and its key, if the server asks for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl TlsOptions {
    /// TLS required, trusting `root_ca` (a PEM file).
    pub fn required(root_ca: impl Into<PathBuf>) -> Self {
        Self {
            required: true,
            root_ca: Some(root_ca.into()),
            client_cert: None,
        }
    }

    /// With a client certificate and its key (PEM files), for servers that
    /// verify clients (`verify: true`).
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }
}

/// A TLS file that cannot be used: which one, where, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot use the {what} {path}: {reason}")]
pub struct TlsFileError {
    /// "root CA file", "client certificate" or "client key".
    pub what: &'static str,
    pub path: String,
    pub reason: String,
}

fn tls_file_error(what: &'static str, path: &Path, reason: impl ToString) -> TlsFileError {
    TlsFileError {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads `path` and checks it holds at least one PEM certificate.
pub fn check_certificates(what: &'static str, path: &Path) -> Result<(), TlsFileError> {
    let pem = std::fs::read(path).map_err(|e| tls_file_error(what, path, e))?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| tls_file_error(what, path, format!("not PEM certificates: {e}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(tls_file_error(what, path, "holds no PEM certificate"));
    }
    Ok(())
}

/// Reads `path` and checks it holds a PEM private key (never shown).
pub fn check_key(path: &Path) -> Result<(), TlsFileError> {
    const WHAT: &str = "client key";
    let pem = std::fs::read(path).map_err(|e| tls_file_error(WHAT, path, e))?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map(drop)
        .map_err(|e| tls_file_error(WHAT, path, format!("holds no PEM private key ({e})")))
}

/// Applies `tls` to `options`, first checking that every file it names can
/// be read and holds what it should (so a wrong path is named, not reported
/// later as a failed handshake).
pub fn apply_tls(
    mut options: async_nats::ConnectOptions,
    tls: &TlsOptions,
) -> Result<async_nats::ConnectOptions, TlsFileError> {
    if tls.required {
        options = options.require_tls(true);
    }
    if let Some(ca) = &tls.root_ca {
        check_certificates("root CA file", ca)?;
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &tls.client_cert {
        check_certificates("client certificate", cert)?;
        check_key(key)?;
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(options)
}

/// The servers a URL names: one, or several separated by commas.
pub fn servers(url: &str) -> Vec<String> {
    let list: Vec<String> = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        // Let the client say what is wrong with it.
        vec![url.to_owned()]
    } else {
        list
    }
}

/// Says what a failed connection most likely means when TLS was involved:
/// async-nats reports a plain server to a client requiring TLS as a broken
/// handshake, and an untrusted certificate as rustls names it.
pub fn explain(reason: String, tls: &TlsOptions) -> String {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
        let trusted = tls.root_ca.as_ref().map_or_else(
            || "the system's roots".to_owned(),
            |ca| format!("the root CA file {}", ca.display()),
        );
        return format!(
            "{reason} (the server's TLS certificate is not signed by a CA it trusts: {trusted})"
        );
    }
    if lower.contains("certificaterequired") || lower.contains("certificate required") {
        return format!(
            "{reason} (the server requires a client certificate (`verify: true`): give one)"
        );
    }
    if tls.required
        && (lower.contains("corrupt message")
            || lower.contains("invalidcontenttype")
            || lower.contains("invalid content type")
            || lower.contains("tls required")
            || lower.contains("eof"))
    {
        return format!(
            "{reason} (TLS is required but the server did not complete a TLS handshake: \
             does it serve TLS?)"
        );
    }
    reason
}

/// Connects to `url` as `credentials`, naming the connection `name`, over
/// TLS as `tls` says.
pub async fn connect(
    url: &str,
    credentials: &Credentials,
    tls: &TlsOptions,
    name: &str,
) -> Result<async_nats::Client, ConnectError> {
    let error = |reason: String| ConnectError {
        url: url.to_owned(),
        user: credentials.user.clone(),
        reason,
    };
    let options = async_nats::ConnectOptions::with_user_and_password(
        credentials.user.clone(),
        credentials.password.expose().to_owned(),
    );
    apply_tls(options, tls)
        .map_err(|e| error(e.to_string()))?
        .name(name)
        .custom_inbox_prefix(inbox_prefix(&credentials.user))
        .connection_timeout(std::time::Duration::from_secs(5))
        .connect(servers(url))
        .await
        .map_err(|e| error(explain(e.to_string(), tls)))
}

/// Connects to `url` with the NKey whose seed is in `seed_file`, as the
/// NATS user `user` (its inbox is `_INBOX_<user>`): an auditor, who logs
/// in as themselves through the gateway's auth callout.
pub async fn connect_nkey(
    url: &str,
    seed_file: &std::path::Path,
    user: &str,
    tls: &TlsOptions,
) -> Result<async_nats::Client, ConnectError> {
    let error = |reason: String| ConnectError {
        url: url.to_owned(),
        user: user.to_owned(),
        reason,
    };
    let seed = std::fs::read_to_string(seed_file)
        .map_err(|e| error(format!("the NKey seed file {}: {e}", seed_file.display())))?;
    let options = async_nats::ConnectOptions::with_nkey(seed.trim().to_owned());
    apply_tls(options, tls)
        .map_err(|e| error(e.to_string()))?
        .name(user)
        .custom_inbox_prefix(inbox_prefix(user))
        .connection_timeout(std::time::Duration::from_secs(5))
        .connect(servers(url))
        .await
        .map_err(|e| {
            let reason = explain(e.to_string(), tls);
            if matches!(
                e.kind(),
                async_nats::ConnectErrorKind::AuthorizationViolation
            ) {
                error(format!(
                    "{reason} (the gateway did not let the NKey in {} in: it must be one of \
                     the nats_keys registered for you)",
                    seed_file.display()
                ))
            } else {
                error(reason)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_servers_are_separated_by_commas() {
        assert_eq!(
            super::servers("nats://a:4222, nats://b:4222,,nats://c:4222"),
            vec!["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
        assert_eq!(super::servers("nats://a:4222"), vec!["nats://a:4222"]);
    }

    #[test]
    fn tls_files_are_named_when_missing_or_wrong() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("ca.pem");
        let err = apply_tls(
            async_nats::ConnectOptions::new(),
            &TlsOptions::required(&missing),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("root CA file") && err.contains(&missing.display().to_string()),
            "{err}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate")?;
        let err = apply_tls(
            async_nats::ConnectOptions::new(),
            &TlsOptions::required(&junk),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        Ok(())
    }
}
