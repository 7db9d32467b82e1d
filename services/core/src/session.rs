//! The session file `liaison up` writes for the other commands on the same
//! machine: the NATS URL and each user's credentials. It is created with mode
//! 0600 and holds secrets for a development system only; production users get
//! their credentials from their own configuration.

use crate::{Credentials, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub nats_url: String,
    pub users: BTreeMap<String, Secret>,
    /// Each service's operations listener (`gateway`, `audit`), if open:
    /// where `liaison status` asks for `/readyz` and `/metrics`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub telemetry: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "no Liaison session at {path}: start one with `liaison up`, or give --nats and credentials ({source})"
    )]
    Missing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("session file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("could not write session file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("session {path} has no NATS user {user:?}")]
    NoUser { path: PathBuf, user: String },
}

/// Where the session file lives: `$LIAISON_HOME/session.json`, default `./.liaison/`.
pub fn default_path() -> PathBuf {
    let home = std::env::var_os("LIAISON_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".liaison"));
    home.join("session.json")
}

impl Session {
    pub fn load(path: &Path) -> Result<Self, SessionError> {
        let text = std::fs::read_to_string(path).map_err(|source| SessionError::Missing {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| SessionError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), SessionError> {
        let fail = |source| SessionError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let text =
            serde_json::to_string_pretty(self).map_err(|e| fail(std::io::Error::other(e)))?;
        write_private(path, text.as_bytes()).map_err(fail)
    }

    /// Credentials of `user`, as recorded in the session.
    pub fn credentials(&self, user: &str, path: &Path) -> Result<Credentials, SessionError> {
        let password = self.users.get(user).ok_or_else(|| SessionError::NoUser {
            path: path.to_owned(),
            user: user.to_owned(),
        })?;
        Ok(Credentials {
            user: user.to_owned(),
            password: password.clone(),
        })
    }
}

/// Writes a file only its owner may read (0600): sessions, private keys.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    std::io::Write::write_all(&mut file, contents)
}
