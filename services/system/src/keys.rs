//! Signing keys of agencies and auditors: Ed25519 (EdDSA, the default) or
//! P-256 (ES256), stored as PKCS#8 PEM; the public half is registered in
//! base64url with its `kid` (by default the key's RFC 7638 thumbprint).
//! Development keys for the agencies of the dev registry live in
//! `deploy/agencies/dev-keys/`.

use anyhow::{Context as _, Result, anyhow};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};
use liaison_core::AgencyId;
use liaison_core::tokens::{self, KeyAlg};
use std::path::{Path, PathBuf};

/// Default directory of development agency keys.
pub const DEV_KEYS: &str = "deploy/agencies/dev-keys";
/// The development partnership's subject key (pseudonymous tokens), public
/// and for development only: `liaison up`, the demo, the examples.
pub const DEV_SUBJECT_KEY: &str = "deploy/linkage/dev-partnership.key";

/// A new key: the PKCS#8 PEM of the private key, and the registry entry of
/// its public half (`[[agency.keys]]` lines).
pub fn generate(alg: KeyAlg) -> Result<(String, String)> {
    let pem = match alg {
        // PKCS#8 v1 (RFC 8410, no public key inside): what OpenSSL 3.0 and
        // Python's `cryptography` read; v2 they refuse.
        KeyAlg::EdDSA => ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: SigningKey::generate(&mut rand_core::OsRng).to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the private key")?
        .to_string(),
        KeyAlg::ES256 => {
            use p256::pkcs8::EncodePrivateKey as _;
            p256::SecretKey::random(&mut rand_core::OsRng)
                .to_pkcs8_pem(LineEnding::LF)
                .context("encoding the private key")?
                .to_string()
        }
    };
    let entry = registry_entry(&pem)?;
    Ok((pem, entry))
}

/// A new NKey for an agency's NATS logins: its seed (`SU...`, secret) and
/// the public key (`U...`) its registry entry lists in `nats_keys`.
pub fn generate_nkey() -> Result<(String, String)> {
    use rand_core::RngCore as _;
    let mut raw = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut raw);
    let pair = nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, raw)
        .map_err(|e| anyhow!("generating an NKey: {e}"))?;
    let seed = pair
        .seed()
        .map_err(|e| anyhow!("encoding an NKey seed: {e}"))?;
    Ok((seed, pair.public_key()))
}

/// Where an agency's NKey seed file is in a keys directory: `AGENCY.nk`.
pub fn nkey_path(dir: &Path, agency: &str) -> std::path::PathBuf {
    dir.join(format!("{agency}.nk"))
}

/// The registry lines (`kid`, `alg`, `public_key`) of a PEM private key.
pub fn registry_entry(pem: &str) -> Result<String> {
    let (alg, public) = tokens::public_of_pem(pem).map_err(|e| anyhow!(e))?;
    let kid = tokens::thumbprint(alg, &public).map_err(|e| anyhow!(e))?;
    Ok(format!(
        "kid = \"{kid}\"\nalg = \"{}\"\npublic_key = \"{}\"",
        alg.as_str(),
        tokens::public_key_text(&public)
    ))
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
    tokens::public_of_pem(&pem)
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("{}", path.display()))?;
    Ok(pem)
}
