//! A witness: an independent party that cosigns the ledger's checkpoints
//! (docs/decisions/0023-witnesses.md), in the C2SP formats so that any
//! witness of the transparency-log ecosystem can serve Liaison, and this one
//! can serve any log:
//!
//! - [tlog-cosignature] v1 (Ed25519): a note signature line whose key ID is
//!   `SHA-256(name || "\n" || 0x04 || public key)[:4]` and whose signature is
//!   a big-endian `u64` timestamp then the Ed25519 signature of
//!   `"cosignature/v1\ntime <t>\n" || checkpoint body`;
//! - [tlog-witness] `add-checkpoint`: the request is `old <size>`, the
//!   consistency proof from that size (one base64 hash a line), an empty line
//!   and the checkpoint; the witness checks the log's signature, that the old
//!   size is the size it last cosigned (409 with that size if not), and the
//!   proof (422 if it does not verify) — and a checkpoint of the size it last
//!   cosigned with another root is a fork (409) — then records the new
//!   checkpoint durably and answers its cosignature.
//!
//! What it cosigned last is kept per log in its state directory, written
//! whole and synced before it answers; each request is checked and recorded
//! under one lock, so two at once can never roll the log back. A request that
//! proves the log inconsistent with what it cosigned (a validly signed
//! checkpoint whose proof fails, or another root at the same size) is kept
//! in `forks/` as evidence, and never cosigned.
//!
//! [tlog-cosignature]: https://c2sp.org/tlog-cosignature
//! [tlog-witness]: https://c2sp.org/tlog-witness

use crate::checkpoint::{Checkpoint, CheckpointError, NoteVerifier};
use crate::merkle::{Hash, verify_consistency};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The signed-note signature type of a cosignature/v1 (Ed25519).
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Signature lines start with an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Most consistency-proof lines a request may carry (tlog-witness).
const MAX_PROOF: usize = 63;
/// Largest request read.
pub const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    #[error("witness key: {0}")]
    Key(String),
    #[error("not cosigned by {0}")]
    Missing(String),
    #[error(
        "the cosignature by {0} does not verify: the checkpoint or the cosignature was altered"
    )]
    Bad(String),
}

fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    crate::checkpoint::key_id_of(name, key, ALG_COSIGNATURE_V1)
}

/// The message a cosignature/v1 signs.
fn message(body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

/// Signs cosignatures with a witness's Ed25519 key.
pub struct Cosigner {
    name: String,
    key: SigningKey,
}

impl Cosigner {
    /// A cosigner named `name` (a schema-less URL, e.g.
    /// `oversight.example/witness`) from a PKCS#8 PEM Ed25519 private key.
    pub fn from_pem(name: &str, pem: &str) -> Result<Self, CosignatureError> {
        if name.is_empty() || name.len() > 256 || name.contains(['+', ' ', '\n']) {
            return Err(CosignatureError::Key(format!(
                "invalid witness name {name:?}: no '+', space or newline"
            )));
        }
        let key =
            SigningKey::from_pkcs8_pem(pem).map_err(|e| CosignatureError::Key(e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cosignature line (with its newline) for a checkpoint `body`
    /// (its note text up to and including the newline before the blank line).
    pub fn cosign(&self, body: &str, time: u64) -> String {
        let signature = self.key.sign(message(body, time).as_bytes());
        let mut blob = key_id(&self.name, &self.key.verifying_key()).to_vec();
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }

    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }
}

/// Checks a witness's cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses a witness's verifier key `<name>+<hex key id>+<base64(0x04 || key)>`.
    pub fn parse(vkey: &str) -> Result<Self, CosignatureError> {
        let (name, key) = crate::checkpoint::parse_vkey(vkey, ALG_COSIGNATURE_V1)
            .map_err(|what| CosignatureError::Key(format!("witness key {vkey:?}: {what}")))?;
        Ok(Self { name, key })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key string.
    pub fn vkey(&self) -> String {
        crate::checkpoint::format_vkey(&self.name, &self.key, ALG_COSIGNATURE_V1)
    }

    /// Verifies this witness's cosignature on a signed note (the checkpoint
    /// with its signature lines); the time it was made.
    pub fn verify(&self, note: &str) -> Result<u64, CosignatureError> {
        let (body, signatures) =
            split_note(note).ok_or_else(|| CosignatureError::Missing(self.name.clone()))?;
        let id = key_id(&self.name, &self.key);
        for line in signatures.lines() {
            let Some((name, blob)) = line
                .strip_prefix(SIG_PREFIX)
                .and_then(|rest| rest.split_once(' '))
            else {
                continue;
            };
            let Ok(blob) = B64.decode(blob) else { continue };
            if name != self.name || blob.len() != 4 + 8 + 64 || blob[..4] != id {
                continue;
            }
            let time = u64::from_be_bytes(blob[4..12].try_into().unwrap_or_default());
            let signature = Signature::from_slice(&blob[12..])
                .map_err(|_| CosignatureError::Bad(self.name.clone()))?;
            return self
                .key
                .verify(message(body, time).as_bytes(), &signature)
                .map(|()| time)
                .map_err(|_| CosignatureError::Bad(self.name.clone()));
        }
        Err(CosignatureError::Missing(self.name.clone()))
    }
}

/// A note's body (with its final newline) and its signature lines.
pub fn split_note(note: &str) -> Option<(&str, &str)> {
    let split = note.find("\n\n")?;
    Some((&note[..=split], &note[split + 2..]))
}

/// Why the witness did not cosign, as tlog-witness answers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// 400: the request is malformed, or its old size is above the checkpoint's.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 403: no signature by a key trusted for the origin verifies.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the origin is not a log this witness follows.
    #[error("unknown log {0:?}")]
    UnknownLog(String),
    /// 409: the old size is not the size last cosigned (the body is that size).
    #[error("the last checkpoint cosigned for this log has size {0}")]
    Conflict(u64),
    /// 409: another root at the size last cosigned — a fork, kept as evidence.
    #[error("fork: {0}")]
    Fork(String),
    /// 422: the consistency proof does not verify — kept as evidence.
    #[error("the consistency proof does not verify: {0}")]
    Inconsistent(String),
    /// 500: the state could not be written; nothing was cosigned.
    #[error("state: {0}")]
    State(String),
}

impl Refused {
    /// The HTTP status tlog-witness gives it.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Forbidden(_) => 403,
            Self::UnknownLog(_) => 404,
            Self::Conflict(_) | Self::Fork(_) => 409,
            Self::Inconsistent(_) => 422,
            Self::State(_) => 500,
        }
    }
}

/// What a witness cosigned last for one log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cosigned {
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
    /// The checkpoint as received, with its signatures.
    pub note: String,
    /// Unix seconds of the cosignature.
    pub time: u64,
}

/// A parsed add-checkpoint request.
struct Request<'a> {
    old: u64,
    proof: Vec<Hash>,
    note: &'a str,
}

fn parse(body: &str) -> Result<Request<'_>, Refused> {
    let bad = |what: &str| Refused::BadRequest(what.to_owned());
    let (head, note) = body
        .split_once("\n\n")
        .ok_or_else(|| bad("no empty line before the checkpoint"))?;
    let mut lines = head.split('\n');
    let old = lines
        .next()
        .and_then(|l| l.strip_prefix("old "))
        .filter(|n| *n == "0" || (!n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| bad("the first line must be `old <size>`"))?;
    let mut proof = Vec::new();
    for line in lines {
        if proof.len() == MAX_PROOF {
            return Err(bad("more than 63 consistency proof lines"));
        }
        let hash = B64
            .decode(line)
            .ok()
            .and_then(|h| Hash::try_from(h.as_slice()).ok())
            .ok_or_else(|| bad("a consistency proof line is not a base64 SHA-256 hash"))?;
        proof.push(hash);
    }
    Ok(Request { old, proof, note })
}

/// A witness: its key, the logs it follows and what it cosigned for each.
pub struct Witness {
    cosigner: Cosigner,
    logs: BTreeMap<String, Vec<NoteVerifier>>,
    dir: PathBuf,
    /// Checked and recorded one request at a time (no rollback race).
    state: Mutex<BTreeMap<String, Cosigned>>,
}

/// A file name for an origin.
fn file_name(origin: &str) -> String {
    origin
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Writes `bytes` to `path` whole: a temporary file, synced, renamed over it,
/// and the directory synced.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

impl Witness {
    /// A witness keeping its state in `dir` (made if missing), following the
    /// logs whose verifier keys are `logs` (their names are their origins).
    pub fn open(cosigner: Cosigner, logs: &[NoteVerifier], dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir.join("logs"))
            .and_then(|()| std::fs::create_dir_all(dir.join("forks")))
            .map_err(|e| format!("witness state {}: {e}", dir.display()))?;
        let mut by_origin: BTreeMap<String, Vec<NoteVerifier>> = BTreeMap::new();
        for log in logs {
            by_origin
                .entry(log.name().to_owned())
                .or_default()
                .push(log.clone());
        }
        let mut state = BTreeMap::new();
        for origin in by_origin.keys() {
            let path = dir.join("logs").join(file_name(origin));
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let cosigned: Cosigned = serde_json::from_slice(&bytes)
                        .map_err(|e| format!("witness state {}: {e}", path.display()))?;
                    state.insert(origin.clone(), cosigned);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("witness state {}: {e}", path.display())),
            }
        }
        Ok(Self {
            cosigner,
            logs: by_origin,
            dir: dir.to_owned(),
            state: Mutex::new(state),
        })
    }

    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    /// What it cosigned last for `origin`.
    pub fn latest(&self, origin: &str) -> Option<Cosigned> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.get(origin).cloned()
    }

    /// Keeps a request that proves the log inconsistent.
    fn keep_evidence(&self, origin: &str, size: u64, body: &str, why: &str, now: u64) -> String {
        let path = self
            .dir
            .join("forks")
            .join(format!("{}-{size}-{now}.txt", file_name(origin)));
        let text = format!("# {why}\n{body}");
        match write_durably(&path, text.as_bytes()) {
            Ok(()) => path.display().to_string(),
            Err(e) => format!("(not kept: {e})"),
        }
    }

    /// Answers an add-checkpoint request at `now`: the cosignature line.
    pub fn add_checkpoint(&self, body: &str, now: u64) -> Result<String, Refused> {
        if body.len() > MAX_REQUEST {
            return Err(Refused::BadRequest(format!(
                "the request is over {MAX_REQUEST} bytes"
            )));
        }
        let request = parse(body)?;
        let origin = request
            .note
            .split('\n')
            .next()
            .unwrap_or_default()
            .to_owned();
        let verifiers = self
            .logs
            .get(&origin)
            .ok_or_else(|| Refused::UnknownLog(origin.clone()))?;
        let mut opened: Option<Checkpoint> = None;
        let mut why = String::from("no signature by the log's key");
        for verifier in verifiers {
            match verifier.open(request.note) {
                Ok(c) => {
                    opened = Some(c);
                    break;
                }
                Err(e @ CheckpointError::Malformed(_)) => {
                    return Err(Refused::BadRequest(e.to_string()));
                }
                Err(e) => why = e.to_string(),
            }
        }
        let checkpoint = opened.ok_or(Refused::Forbidden(why))?;
        if request.old > checkpoint.size {
            return Err(Refused::BadRequest(format!(
                "old size {} is above the checkpoint's size {}",
                request.old, checkpoint.size
            )));
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let last = state.get(&origin);
        let last_size = last.map_or(0, |c| c.size);
        if request.old != last_size {
            return Err(Refused::Conflict(last_size));
        }
        let root = B64.encode(checkpoint.root);
        if let Some(last) = last {
            let last_root: Hash = B64
                .decode(&last.root)
                .ok()
                .and_then(|r| Hash::try_from(r.as_slice()).ok())
                .ok_or_else(|| Refused::State("the stored root is not a hash".into()))?;
            if checkpoint.size == last.size && root != last.root {
                let why = format!(
                    "size {} has root {root}, but this witness cosigned {} for it",
                    last.size, last.root
                );
                let kept = self.keep_evidence(&origin, checkpoint.size, body, &why, now);
                return Err(Refused::Fork(format!("{why}; kept as {kept}")));
            }
            if let Err(e) = verify_consistency(
                last.size,
                checkpoint.size,
                &last_root,
                &checkpoint.root,
                &request.proof,
            ) {
                let why = format!(
                    "size {} is not consistent with the size {} this witness cosigned: {e}",
                    checkpoint.size, last.size
                );
                let kept = self.keep_evidence(&origin, checkpoint.size, body, &why, now);
                return Err(Refused::Inconsistent(format!("{why}; kept as {kept}")));
            }
        } else if !request.proof.is_empty() {
            return Err(Refused::Inconsistent(
                "a proof from size 0 must be empty".into(),
            ));
        }
        let (note_body, _) =
            split_note(request.note).ok_or_else(|| Refused::BadRequest("no signatures".into()))?;
        let cosigned = Cosigned {
            size: checkpoint.size,
            root,
            note: request.note.to_owned(),
            time: now,
        };
        let bytes =
            serde_json::to_vec_pretty(&cosigned).map_err(|e| Refused::State(e.to_string()))?;
        write_durably(&self.dir.join("logs").join(file_name(&origin)), &bytes)
            .map_err(|e| Refused::State(e.to_string()))?;
        state.insert(origin, cosigned);
        Ok(self.cosigner.cosign(note_body, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::NoteSigner;
    use crate::merkle::{consistency_proof, leaf_hash, root};
    use crate::tests::pem;

    fn log() -> NoteSigner {
        NoteSigner::from_pem("liaison.test/ledger", &pem(7)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn note(log: &NoteSigner, leaves: &[Hash]) -> String {
        log.sign(&Checkpoint {
            origin: "liaison.test/ledger".into(),
            size: leaves.len() as u64,
            root: root(leaves),
        })
    }

    fn request(old: u64, proof: &[Hash], note: &str) -> String {
        let mut out = format!("old {old}\n");
        for hash in proof {
            out.push_str(&B64.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(note);
        out
    }

    fn witness(dir: &Path) -> Witness {
        let cosigner =
            Cosigner::from_pem("oversight.test/w1", &pem(9)).unwrap_or_else(|e| panic!("{e}"));
        Witness::open(cosigner, &[log().verifier()], dir).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_consistent_checkpoint_is_cosigned_and_the_cosignature_verifies() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let witness = witness(dir.path());
        let log = log();
        let all = leaves(12);
        let first = note(&log, &all[..5]);
        let line = witness
            .add_checkpoint(&request(0, &[], &first), 1_700_000_000)
            .map_err(|e| e.to_string())?;
        let verifier = CosignatureVerifier::parse(&witness.cosigner().verifier().vkey())
            .map_err(|e| e.to_string())?;
        assert_eq!(
            verifier.verify(&format!("{first}{line}")),
            Ok(1_700_000_000)
        );
        // The next, with its consistency proof from 5.
        let second = note(&log, &all);
        let proof = consistency_proof(5, &all).map_err(|e| e.to_string())?;
        let line = witness
            .add_checkpoint(&request(5, &proof, &second), 1_700_000_060)
            .map_err(|e| e.to_string())?;
        assert_eq!(
            verifier.verify(&format!("{second}{line}")),
            Ok(1_700_000_060)
        );
        // A cosignature does not verify on another checkpoint.
        assert!(matches!(
            verifier.verify(&format!("{first}{line}")),
            Err(CosignatureError::Bad(_))
        ));
        // It survives a restart.
        drop(witness);
        let again = self::witness(dir.path());
        assert_eq!(
            again.latest("liaison.test/ledger").map(|c| c.size),
            Some(12)
        );
        Ok(())
    }

    #[test]
    fn a_stale_size_a_fork_a_bad_proof_and_a_foreign_log_are_refused() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let witness = witness(dir.path());
        let log = log();
        let all = leaves(12);
        witness
            .add_checkpoint(&request(0, &[], &note(&log, &all[..5])), 1)
            .map_err(|e| e.to_string())?;
        // Not the size it last cosigned: 409 with that size.
        assert_eq!(
            witness.add_checkpoint(&request(0, &[], &note(&log, &all)), 2),
            Err(Refused::Conflict(5))
        );
        // Another history of the same size: a fork, kept.
        let mut other = all[..5].to_vec();
        other[2] = leaf_hash(b"rewritten");
        let fork = witness.add_checkpoint(&request(5, &[], &note(&log, &other)), 3);
        assert!(matches!(fork, Err(Refused::Fork(_))), "{fork:?}");
        // A longer rewritten history: its proof does not verify, kept.
        let mut rewritten = all.clone();
        rewritten[1] = leaf_hash(b"rewritten");
        let proof = consistency_proof(5, &rewritten).map_err(|e| e.to_string())?;
        let bad = witness.add_checkpoint(&request(5, &proof, &note(&log, &rewritten)), 4);
        assert!(matches!(bad, Err(Refused::Inconsistent(_))), "{bad:?}");
        assert_eq!(bad.map_err(|e| e.status()), Err(422));
        let kept = std::fs::read_dir(dir.path().join("forks"))
            .map_err(|e| e.to_string())?
            .count();
        assert_eq!(
            kept, 2,
            "the fork and the rewritten history are kept as evidence"
        );
        // Nothing moved: the honest continuation is still cosigned.
        let proof = consistency_proof(5, &all).map_err(|e| e.to_string())?;
        witness
            .add_checkpoint(&request(5, &proof, &note(&log, &all)), 5)
            .map_err(|e| e.to_string())?;
        // Signed by another key: 403; another origin: 404; malformed: 400.
        let stranger =
            NoteSigner::from_pem("liaison.test/ledger", &pem(8)).map_err(|e| e.to_string())?;
        assert_eq!(
            witness
                .add_checkpoint(&request(12, &[], &note(&stranger, &all)), 6)
                .map_err(|e| e.status()),
            Err(403)
        );
        let elsewhere =
            NoteSigner::from_pem("elsewhere.test/log", &pem(7)).map_err(|e| e.to_string())?;
        let foreign = elsewhere.sign(&Checkpoint {
            origin: "elsewhere.test/log".into(),
            size: 1,
            root: [0; 32],
        });
        assert_eq!(
            witness
                .add_checkpoint(&request(0, &[], &foreign), 7)
                .map_err(|e| e.status()),
            Err(404)
        );
        assert_eq!(
            witness
                .add_checkpoint("old x\n\nfoo", 8)
                .map_err(|e| e.status()),
            Err(400)
        );
        assert_eq!(
            witness
                .add_checkpoint(&request(13, &[], &note(&log, &all)), 9)
                .map_err(|e| e.status()),
            Err(400)
        );
        Ok(())
    }
}
