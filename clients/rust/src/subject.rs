//! Pseudonymous subject tokens, computed inside the sending agency so that
//! raw identifiers never cross the bus: `st1:` followed by the base64url
//! (no padding) HMAC-SHA256, under the partnership's 32-byte [`SubjectKey`],
//! of the person's identifiers once normalised ([`mod@normalise`]). Two agencies
//! that hold the same key and the same identifiers get the same token, so the
//! linkage service can match referrals and cases without ever seeing a name;
//! anyone without the key cannot test a guess of name and date of birth
//! against a token.
//!
//! What goes into the MAC (docs/wire-contract.md, "Subject tokens"): the
//! domain `liaison.subject-token.v1` and a zero byte, then each field present
//! as `tag length (1 byte) | tag | value length (4 bytes, big-endian) | value`
//! (UTF-8): `name`, `dob`, then `id:<scheme>` for each other identifier,
//! sorted and de-duplicated. Length prefixes make the encoding unambiguous.
//!
//! It does not hold or log personal data: [`Identifiers`] and [`Normalised`]
//! print redacted, and no error quotes an identifier's value.

pub mod normalise;
pub mod schemes;

pub use normalise::{IdentifierError, Normalised, normalise};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// How every token of this version begins.
pub const TOKEN_PREFIX: &str = "st1:";
/// Domain separation: a MAC under the partnership key for anything else never equals a token.
const DOMAIN: &[u8] = b"liaison.subject-token.v1";
/// Largest key file read (a key is 43 characters).
const MAX_KEY_FILE: u64 = 4096;

/// The partnership's secret key for subject tokens: 32 random bytes, held by
/// every agency of the partnership (never by Liaison's services), stored as
/// base64url in a file only its owner may read. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectKey([u8; SubjectKey::LEN]);

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectKey(<redacted>)")
    }
}

/// Why a subject key could not be read, made or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("subject key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("subject key: {0}")]
    Invalid(String),
}

impl SubjectKey {
    /// Bytes in a key.
    pub const LEN: usize = 32;

    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// A new random key (from the operating system's generator).
    pub fn generate() -> Self {
        use rand_core::{OsRng, RngCore};
        let mut bytes = [0u8; Self::LEN];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads a key from its text form: base64url of 32 bytes (43 characters
    /// without padding; padding and surrounding whitespace are accepted).
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Invalid(
                "it is empty: expected 32 bytes in base64url (43 characters)".into(),
            ));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| {
                KeyError::Invalid(
                    "it is not base64url (A-Z, a-z, 0-9, '-' and '_'): expected 32 bytes in base64url (43 characters)"
                        .into(),
                )
            })?;
        let bytes: [u8; Self::LEN] = bytes.as_slice().try_into().map_err(|_| {
            KeyError::Invalid(format!(
                "it holds {} bytes, not {}: expected 32 bytes in base64url (43 characters)",
                bytes.len(),
                Self::LEN
            ))
        })?;
        Ok(Self(bytes))
    }

    /// The text form: 43 characters of base64url.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Reads the key file at `path` (its text form, as [`SubjectKey::write_new`] writes it).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let fail = |reason: String| KeyError::File {
            path: path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        if !meta.is_file() {
            return Err(fail("it is not a file".into()));
        }
        if meta.len() > MAX_KEY_FILE {
            return Err(fail(format!(
                "it is {} bytes: a key file holds one line of 43 characters",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::from_text(&text).map_err(|e| match e {
            KeyError::Invalid(reason) => fail(reason),
            other => other,
        })
    }

    /// Writes the key to a new file only its owner may read (0600); refuses
    /// to replace an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let fail = |reason: String| KeyError::File {
            path: path.display().to_string(),
            reason,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                fail("it already exists: a key is never overwritten (tokens made with it would no longer match); choose another path".into())
            } else {
                fail(e.to_string())
            }
        })?;
        std::io::Write::write_all(&mut file, format!("{}\n", self.to_text()).as_bytes())
            .map_err(|e| fail(e.to_string()))
    }
}

/// A person's identifiers as an agency holds them. Either a full name and a
/// date of birth, or other identifiers alone (`(scheme, value)`, e.g.
/// `("nhs", "943 476 5919")`), or both. `Debug` does not show the values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Identifiers {
    pub full_name: String,
    pub date_of_birth: String,
    pub other: Vec<(String, String)>,
}

impl std::fmt::Debug for Identifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let schemes: Vec<&str> = self.other.iter().map(|(s, _)| s.as_str()).collect();
        f.debug_struct("Identifiers")
            .field("full_name", &"<redacted>")
            .field("date_of_birth", &"<redacted>")
            .field("other_schemes", &schemes)
            .finish()
    }
}

/// The subject token of `identifiers` under `key`: `st1:` and 43 characters
/// of base64url. Refuses identifiers that do not normalise (the error says
/// which field and why, never its value).
pub fn subject_token(
    key: &SubjectKey,
    identifiers: &Identifiers,
) -> Result<String, IdentifierError> {
    Ok(token_of(key, &normalise(identifiers)?))
}

/// The token of identifiers already normalised.
pub fn token_of(key: &SubjectKey, normalised: &Normalised) -> String {
    // HMAC takes keys of any length; 32 bytes is never refused.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key.0) else {
        return String::new();
    };
    mac.update(DOMAIN);
    mac.update(&[0]);
    let mut field = |tag: &str, value: &str| {
        mac.update(&[tag.len() as u8]);
        mac.update(tag.as_bytes());
        mac.update(&(value.len() as u32).to_be_bytes());
        mac.update(value.as_bytes());
    };
    if !normalised.full_name.is_empty() {
        field("name", &normalised.full_name);
        field("dob", &normalised.date_of_birth);
    }
    for (scheme, value) in &normalised.other {
        field(&format!("id:{scheme}"), value);
    }
    format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SubjectKey {
        SubjectKey::from_bytes([7u8; 32])
    }

    fn ids(name: &str, dob: &str) -> Identifiers {
        Identifiers {
            full_name: name.into(),
            date_of_birth: dob.into(),
            other: vec![],
        }
    }

    #[test]
    fn tokens_match_the_envelope_rule_and_ignore_how_identifiers_are_written() {
        let a = subject_token(&key(), &ids("Alex Example", "2010-04-12")).unwrap_or_default();
        let b = subject_token(&key(), &ids("  EXAMPLE, alex ", "12/04/2010")).unwrap_or_default();
        assert_eq!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), 4 + 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b':'))
        );
        let other_key = SubjectKey::from_bytes([8u8; 32]);
        assert_ne!(
            Some(a.clone()),
            subject_token(&other_key, &ids("Alex Example", "2010-04-12")).ok()
        );
        assert_ne!(
            Some(a),
            subject_token(&key(), &ids("Alex Example", "2010-04-13")).ok()
        );
    }

    #[test]
    fn keys_read_clearly_and_never_print() {
        let key = SubjectKey::generate();
        assert_eq!(
            SubjectKey::from_text(&key.to_text()).ok(),
            Some(key.clone())
        );
        assert_eq!(
            SubjectKey::from_text(&format!(" {}=\n", key.to_text())).ok(),
            Some(key.clone())
        );
        assert_eq!(format!("{key:?}"), "SubjectKey(<redacted>)");
        for (text, says) in [
            ("", "empty"),
            ("not base64!", "not base64url"),
            ("AAAA", "holds 3 bytes"),
        ] {
            let err = SubjectKey::from_text(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(says), "{text:?}: {err}");
        }
        let debug = format!("{:?}", ids("Alex Example", "2010-04-12"));
        assert!(
            !debug.contains("Alex") && !debug.contains("2010"),
            "{debug}"
        );
    }

    #[test]
    fn key_files_are_private_and_never_overwritten() -> Result<(), KeyError> {
        let dir = tempfile::tempdir().map_err(|e| KeyError::Invalid(e.to_string()))?;
        let path = dir.path().join("partnership.key");
        let key = SubjectKey::generate();
        key.write_new(&path)?;
        assert_eq!(SubjectKey::from_file(&path)?, key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .map_err(|e| KeyError::Invalid(e.to_string()))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = SubjectKey::generate().write_new(&path);
        assert!(again.is_err_and(|e| e.to_string().contains("already exists")));
        assert_eq!(SubjectKey::from_file(&path)?, key);
        let missing = SubjectKey::from_file(&dir.path().join("none.key"));
        assert!(missing.is_err_and(|e| e.to_string().contains("none.key")));
        std::fs::write(dir.path().join("bad.key"), "hello")
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        let bad = SubjectKey::from_file(&dir.path().join("bad.key"));
        assert!(bad.is_err_and(|e| e.to_string().contains("bad.key")));
        Ok(())
    }
}
