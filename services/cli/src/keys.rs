//! Agency signing keys: Ed25519, stored as PKCS#8 PEM; the public half is
//! registered as 32 bytes in base64url (a JWK `x`). Development keys for the
//! agencies of the dev registry live in `deploy/agencies/dev-keys/`.

use anyhow::{Context as _, Result};
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use liaison_kit::AgencyId;
use std::path::{Path, PathBuf};

/// Default directory of development agency keys.
pub const DEV_KEYS: &str = "deploy/agencies/dev-keys";

/// A new key: (PKCS#8 PEM of the private key, base64url public key).
pub fn generate() -> Result<(String, String)> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the private key")?;
    Ok((pem.to_string(), public_key(&key)))
}

fn public_key(key: &SigningKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes())
}

/// The base64url public key of a PKCS#8 PEM private key.
pub fn public_of_pem(pem: &str) -> Result<String> {
    let key = SigningKey::from_pkcs8_pem(pem).context("not an Ed25519 PKCS#8 PEM private key")?;
    Ok(public_key(&key))
}

/// Where an agency's development key is.
pub fn dev_key_path(agency: &AgencyId) -> PathBuf {
    Path::new(DEV_KEYS).join(format!("{agency}.pem"))
}

/// Reads the PEM key at `path`, naming the file on error.
pub fn read_key(path: &Path) -> Result<String> {
    let pem = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the agency's signing key {} (give --key, or run from the repository root)",
            path.display()
        )
    })?;
    public_of_pem(&pem).with_context(|| format!("{}", path.display()))?;
    Ok(pem)
}
