//! Signed checkpoints of the ledger's Merkle tree, in the C2SP formats: the
//! body is a `tlog-checkpoint` (origin, tree size, base64 root hash) and it is
//! wrapped as a `signed-note` with an Ed25519 signature line. Any signed-note
//! tool can check a Liaison checkpoint with the verifier key
//! (`<name>+<key id>+<base64 key>`), so checkpoints can be anchored outside
//! Liaison. This module signs and opens notes; it does not decide when.

use crate::merkle::Hash;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signed-note algorithm byte for Ed25519.
const ALG_ED25519: u8 = 0x01;
/// Signature lines start with an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint key: {0}")]
    Key(String),
    #[error("malformed checkpoint note: {0}")]
    Malformed(String),
    #[error("checkpoint is not signed by {0}")]
    Unsigned(String),
    #[error("checkpoint signature by {0} does not verify: the checkpoint was altered")]
    BadSignature(String),
}

/// What a checkpoint commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log, e.g. `liaison.example/ledger`.
    pub origin: String,
    /// Number of records in the tree.
    pub size: u64,
    /// RFC 6962 root hash of the first `size` records.
    pub root: Hash,
}

impl Checkpoint {
    /// The tlog-checkpoint note body.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let bad = |what: &str| CheckpointError::Malformed(what.to_owned());
        let mut lines = body.lines();
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("tree size is not a number"))?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| <Hash>::try_from(r.as_slice()).ok())
            .ok_or_else(|| bad("root hash is not 32 bytes of base64"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    key_id_of(name, key, ALG_ED25519)
}

/// A signed-note key ID: `SHA-256(name || "\n" || alg || key)[:4]`.
pub(crate) fn key_id_of(name: &str, key: &VerifyingKey, alg: u8) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Parses a signed-note verifier key `<name>+<hex key id>+<base64(alg || key)>`
/// of signature type `alg` (Ed25519): its name and key, or what is wrong.
pub(crate) fn parse_vkey(vkey: &str, alg: u8) -> Result<(String, VerifyingKey), String> {
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected name+id+key".into());
    };
    let key = B64
        .decode(key)
        .map_err(|_| "key is not base64".to_owned())?;
    let Some((_, raw)) = key.split_first().filter(|(a, _)| **a == alg) else {
        return Err(format!("not a type 0x{alg:02x} Ed25519 key"));
    };
    let raw: [u8; 32] = raw
        .try_into()
        .map_err(|_| "key is not 32 bytes".to_owned())?;
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| "not a valid Ed25519 point".to_owned())?;
    if hex::encode(key_id_of(name, &key, alg)) != id {
        return Err("key id does not match the name and key".into());
    }
    Ok((name.to_owned(), key))
}

/// The verifier key string of `name`'s `key` of signature type `alg`.
pub(crate) fn format_vkey(name: &str, key: &VerifyingKey, alg: u8) -> String {
    let mut bytes = vec![alg];
    bytes.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        hex::encode(key_id_of(name, key, alg)),
        B64.encode(bytes)
    )
}

/// Signs checkpoints with the ledger's Ed25519 key.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl NoteSigner {
    /// A signer named `name` from a PKCS#8 PEM Ed25519 private key.
    pub fn from_pem(name: &str, pem: &str) -> Result<Self, CheckpointError> {
        if name.is_empty() || name.contains(['+', ' ', '\n']) {
            return Err(CheckpointError::Key(format!("invalid key name {name:?}")));
        }
        let key =
            SigningKey::from_pkcs8_pem(pem).map_err(|e| CheckpointError::Key(e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// The complete signed note for `checkpoint`.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        let signature = self.key.sign(body.as_bytes());
        let mut blob = key_id(&self.name, &self.key.verifying_key()).to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }
}

/// Checks checkpoints against the ledger's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key `<name>+<hex key id>+<base64(0x01 || key)>`.
    pub fn parse(vkey: &str) -> Result<Self, CheckpointError> {
        let (name, key) = parse_vkey(vkey, ALG_ED25519)
            .map_err(|what| CheckpointError::Key(format!("verifier key {vkey:?}: {what}")))?;
        Ok(Self { name, key })
    }

    /// The key's name: a log's origin.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key string.
    pub fn vkey(&self) -> String {
        format_vkey(&self.name, &self.key, ALG_ED25519)
    }

    /// Verifies a signed note and returns the checkpoint it carries.
    pub fn open(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let split = note.find("\n\n").ok_or_else(|| {
            CheckpointError::Malformed("no blank line before the signatures".into())
        })?;
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        let id = key_id(&self.name, &self.key);
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return Err(CheckpointError::Malformed(format!(
                    "bad signature line {line:?}"
                )));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(CheckpointError::Malformed(format!(
                    "bad signature line {line:?}"
                )));
            };
            let Ok(blob) = B64.decode(blob) else { continue };
            if name != self.name || blob.len() != 68 || blob[..4] != id {
                continue;
            }
            let signature = Signature::from_slice(&blob[4..])
                .map_err(|_| CheckpointError::BadSignature(self.name.clone()))?;
            self.key
                .verify(body.as_bytes(), &signature)
                .map_err(|_| CheckpointError::BadSignature(self.name.clone()))?;
            return Checkpoint::parse_body(body);
        }
        Err(CheckpointError::Unsigned(self.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let pem = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        NoteSigner::from_pem("liaison.test/ledger", &pem).unwrap_or_else(|e| panic!("{e}"))
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "liaison.test/ledger".into(),
            size: 42,
            root: [9u8; 32],
        }
    }

    #[test]
    fn a_signed_checkpoint_opens_with_the_verifier_key() {
        let signer = signer();
        let note = signer.sign(&checkpoint());
        assert!(note.starts_with("liaison.test/ledger\n42\n"));
        assert!(note.contains("\n\n\u{2014} liaison.test/ledger "));
        let verifier =
            NoteVerifier::parse(&signer.verifier().vkey()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verifier.open(&note), Ok(checkpoint()));
    }

    #[test]
    fn an_altered_checkpoint_or_a_foreign_key_is_refused() {
        let signer = signer();
        let verifier = signer.verifier();
        let note = signer.sign(&checkpoint());
        let altered = note.replacen("\n42\n", "\n41\n", 1);
        assert!(matches!(
            verifier.open(&altered),
            Err(CheckpointError::BadSignature(_))
        ));
        let other = NoteSigner {
            name: "liaison.test/ledger".into(),
            key: SigningKey::from_bytes(&[8u8; 32]),
        };
        assert!(matches!(
            other.verifier().open(&note),
            Err(CheckpointError::Unsigned(_))
        ));
        assert!(verifier.open("no signatures").is_err());
        assert!(NoteVerifier::parse("name+00000000+AQ==").is_err());
    }
}
