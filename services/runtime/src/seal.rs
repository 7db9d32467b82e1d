//! Encryption at rest and crypto-erasure
//! (docs/decisions/0022-encryption-at-rest-and-crypto-erasure.md).
//!
//! Every payload Liaison stores that holds personal data — an accepted
//! envelope in EVENTS, a recipient's copy in DELIVERY — is sealed
//! ([`liaison_proto::v1::Sealed`]): AES-256-GCM under a content key derived
//! (HKDF-SHA256) from *every* data key it names, with the NATS subject it is
//! stored on as associated data. Its data keys are one per subject token the
//! envelope is about (or, with none, its case), and one for the day its
//! retention ends (`until.<unix seconds>`). Destroying any one of them makes
//! the payload unreadable: erasing a subject destroys its key; a retention
//! sweep destroys each `until` key once its time has come.
//!
//! Data keys are random, and kept in the KV bucket `KEYS` only wrapped by a
//! key-encryption key that never enters NATS ([`KeyEncryption`]: a file in
//! development, a KMS or HSM in production). A key is destroyed by a secure
//! erase of its stored message (nats-server overwrites it) and a purge marker
//! that tells every gateway to forget its copy.

use crate::config::DataConfig;
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use liaison_proto::v1::{SealKey, Sealed, WrappedKey};
use prost::Message as _;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom as _, SystemRandom};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tracing::{info, warn};
use zeroize::Zeroizing;

/// The KV bucket of wrapped data keys.
pub const BUCKET: &str = "KEYS";
/// A data key, a key-encryption key and a content key: AES-256.
const KEY_LEN: usize = 32;
/// A key's random id.
const ID_LEN: usize = 16;
/// Data keys remembered in memory at most (then forgotten and read again).
const CACHE: usize = 100_000;
/// The most data keys one payload is sealed with.
pub const MAX_KEYS: usize = 64;

/// A data key in memory: wiped when dropped.
pub type DataKey = Zeroizing<[u8; KEY_LEN]>;

/// Why a payload could not be sealed or opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SealError {
    /// One of its data keys (named) was destroyed: the payload is erased.
    /// Worded without the key's name, which may hold a subject token.
    #[error("erased: its {} key was destroyed", kind_of(.0))]
    Erased(String),
    /// The key store (`KEYS`) did not answer.
    #[error("the key store: {0}")]
    Store(String),
    /// The key-encryption key (file or KMS) refused or is missing.
    #[error("the key-encryption key: {0}")]
    Kek(String),
    /// Not a sealed payload, or altered.
    #[error("not a sealed payload Liaison can open: {0}")]
    Corrupt(String),
}

/// A data key wrapped by a key-encryption key.
pub struct Wrapped {
    /// Which key-encryption key wrapped it.
    pub kek: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// The KEK side of envelope encryption, shaped like a KMS: it wraps and
/// unwraps data keys and never hands out its own. A file in development
/// ([`KekFile`]); in production an implementation calling a KMS or HSM.
pub trait KeyEncryption: Send + Sync {
    /// The id of the key new data keys are wrapped with.
    fn current(&self) -> String;
    /// Wraps `key` under the current key-encryption key, bound to `aad`.
    fn wrap<'a>(
        &'a self,
        aad: &'a [u8],
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Wrapped, SealError>>;
    /// Unwraps a key wrapped by `kek`.
    fn unwrap<'a>(
        &'a self,
        kek: &'a str,
        aad: &'a [u8],
        nonce: &'a [u8],
        ciphertext: &'a [u8],
    ) -> BoxFuture<'a, Result<DataKey, SealError>>;
}

/// Key-encryption keys kept in a file (development, or a deployment that
/// keeps the file on an encrypted volume outside NATS):
///
/// ```toml
/// current = "dev-2026-12"
/// [keys]
/// dev-2026-12 = "64 hex digits"
/// ```
///
/// Rotation: add a key, make it `current`, restart the gateways (each
/// re-wraps every data key under it at start), then remove the old one.
pub struct KekFile {
    current: String,
    keys: BTreeMap<String, LessSafeKey>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KekText {
    current: String,
    keys: BTreeMap<String, String>,
}

impl KekFile {
    /// Reads `path`; the error names the file and what is wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("key-encryption keys {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("key-encryption keys {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: KekText = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut keys = BTreeMap::new();
        for (id, hex) in &file.keys {
            if id.is_empty() || id.len() > 64 || !id.bytes().all(is_key_char) {
                return Err(format!(
                    "key id {id:?} must be 1 to 64 of A-Z, a-z, 0-9, '-' and '_'"
                ));
            }
            let bytes = Zeroizing::new(
                hex::decode(hex.trim()).map_err(|_| format!("key {id} is not hexadecimal"))?,
            );
            if bytes.len() != KEY_LEN {
                return Err(format!(
                    "key {id} has {} bytes: a key-encryption key is {KEY_LEN} bytes (64 hex digits)",
                    bytes.len()
                ));
            }
            let key = UnboundKey::new(&aead::AES_256_GCM, &bytes)
                .map_err(|_| format!("key {id} is not an AES-256 key"))?;
            keys.insert(id.clone(), LessSafeKey::new(key));
        }
        if !keys.contains_key(&file.current) {
            return Err(format!(
                "current = {:?} names no key in [keys]",
                file.current
            ));
        }
        Ok(Self {
            current: file.current,
            keys,
        })
    }

    /// A new key-encryption key's line for the file (`liaison keys gen-kek`).
    pub fn generate(id: &str) -> Result<String, String> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(is_key_char) {
            return Err(format!(
                "--id {:?} must be 1 to 64 of A-Z, a-z, 0-9, '-' and '_'",
                id.chars().take(64).collect::<String>()
            ));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        random(key.as_mut_slice())?;
        Ok(format!("{id} = \"{}\"", hex::encode(key.as_slice())))
    }
}

impl KeyEncryption for KekFile {
    fn current(&self) -> String {
        self.current.clone()
    }

    fn wrap<'a>(
        &'a self,
        aad: &'a [u8],
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Wrapped, SealError>> {
        Box::pin(async move {
            let kek = &self.keys[&self.current];
            let (nonce, ciphertext) = encrypt(kek, aad, key).map_err(SealError::Kek)?;
            Ok(Wrapped {
                kek: self.current.clone(),
                nonce,
                ciphertext,
            })
        })
    }

    fn unwrap<'a>(
        &'a self,
        kek: &'a str,
        aad: &'a [u8],
        nonce: &'a [u8],
        ciphertext: &'a [u8],
    ) -> BoxFuture<'a, Result<DataKey, SealError>> {
        Box::pin(async move {
            let key = self.keys.get(kek).ok_or_else(|| {
                SealError::Kek(format!(
                    "a data key is wrapped by {kek}, which is not in the key file (rotated out before every key was re-wrapped?)"
                ))
            })?;
            let plain =
                Zeroizing::new(decrypt(key, aad, nonce, ciphertext).map_err(|_| {
                    SealError::Kek(format!("a data key does not unwrap under {kek}"))
                })?);
            let mut out = Zeroizing::new([0u8; KEY_LEN]);
            if plain.len() != KEY_LEN {
                return Err(SealError::Kek(
                    "a wrapped data key has the wrong length".into(),
                ));
            }
            out.copy_from_slice(&plain);
            Ok(out)
        })
    }
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

fn random(out: &mut [u8]) -> Result<(), String> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| "the system's random number generator failed".to_owned())
}

/// AES-256-GCM with a random nonce: (nonce, ciphertext with its tag).
fn encrypt(key: &LessSafeKey, aad: &[u8], plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut nonce = [0u8; aead::NONCE_LEN];
    random(&mut nonce)?;
    let mut out = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut out,
    )
    .map_err(|_| "encryption failed".to_owned())?;
    Ok((nonce.to_vec(), out))
}

fn decrypt(key: &LessSafeKey, aad: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, ()> {
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ())?;
    let mut out = ciphertext.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad), &mut out)
        .map_err(|_| ())?;
    let n = plain.len();
    out.truncate(n);
    Ok(out)
}

/// What a data key is for, in words (logs never name a subject).
pub fn kind_of(name: &str) -> &'static str {
    match name.split('.').next() {
        Some("subject") => "subject's",
        Some("case") => "case's",
        Some("until") => "retention",
        _ => "data",
    }
}

/// The KEYS name of a subject token's data key.
pub fn subject_key(token: &str) -> String {
    format!("subject.{}", escape(token))
}

/// The KEYS name of a case's data key (for an envelope naming no subject).
pub fn case_key(case_id: &str) -> String {
    format!("case.{}", escape(case_id))
}

/// The KEYS name of the data key of everything kept until `unix` seconds.
pub fn until_key(unix: u64) -> String {
    format!("until.{unix}")
}

/// When an `until.` key's time comes.
pub fn until_of(name: &str) -> Option<u64> {
    name.strip_prefix("until.")?.parse().ok()
}

/// A KV key holds `-_/=.` and alphanumerics: anything else becomes `=XX`
/// (tokens never hold `=`, so two tokens never share a key).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// When data accepted at `now` under a retention of `secs` must be gone,
/// rounded up so that one key serves a day (an hour, for retentions under a
/// day; a second, under an hour): the end of retention is never earlier
/// than stated, and at most one rounding unit later.
pub fn retained_until(now: u64, secs: u64) -> u64 {
    let unit = if secs >= 86_400 {
        86_400
    } else if secs >= 3_600 {
        3_600
    } else {
        1
    };
    (now.saturating_add(secs))
        .div_ceil(unit)
        .saturating_mul(unit)
}

/// The data keys an envelope is sealed with: one per subject token it names
/// (or its case's, if it names none), and the end of its retention.
pub fn keys_for(envelope: &liaison_proto::v1::Envelope, until: u64) -> Vec<String> {
    let mut tokens = envelope.subject_tokens();
    tokens.sort();
    tokens.dedup();
    tokens.truncate(MAX_KEYS - 1);
    let mut names: Vec<String> = tokens.iter().map(|t| subject_key(t)).collect();
    if names.is_empty() && !envelope.case_id.is_empty() {
        names.push(case_key(&envelope.case_id));
    }
    names.push(until_key(until));
    names
}

/// The stream behind the `KEYS` bucket: a KV bucket (one value per key, none
/// kept after it is replaced or destroyed) that, unlike one made by
/// `create_key_value`, allows deleting a message, so that a destroyed key's
/// stored message is erased in place (nats-server overwrites it) rather
/// than only marked removed.
pub fn stream_config(replicas: usize) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: format!("KV_{BUCKET}"),
        description: Some(
            "Data keys, wrapped by a key-encryption key kept outside NATS".to_owned(),
        ),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        max_message_size: 1024,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: false,
        deny_purge: false,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// Loads the configured key-encryption keys.
pub fn load_kek(config: &DataConfig) -> Result<Sealing, String> {
    if config.kek_file.as_os_str().is_empty() {
        return Err(
            "data.kek_file is empty: Liaison stores no personal data without a key-encryption key"
                .into(),
        );
    }
    Ok(Sealing::Encrypted(Arc::new(KekFile::load(
        &config.kek_file,
    )?)))
}

/// A key in memory: its id and the key.
#[derive(Clone)]
struct Held {
    id: Vec<u8>,
    key: Arc<DataKey>,
}

/// Whether a gateway seals what it stores.
#[derive(Clone)]
pub enum Sealing {
    /// Always, in every deployment.
    Encrypted(Arc<dyn KeyEncryption>),
    /// Never: only a benchmark's own system, to measure what sealing costs
    /// (`liaison bench`); no configuration reaches it.
    PlainForBenchmarks,
}

/// Seals and opens stored payloads, with the data keys in `KEYS`. It keeps
/// the keys it has read in memory: a long-lived one must run
/// [`Keyring::follow`] to forget those another process destroys.
#[derive(Clone)]
pub struct Keyring {
    kv: kv::Store,
    stream: jetstream::stream::Stream,
    kek: Arc<dyn KeyEncryption>,
    plain: bool,
    held: Arc<Mutex<HashMap<String, Held>>>,
}

/// The key-encryption side of a keyring that never seals.
struct NoKek;

impl KeyEncryption for NoKek {
    fn current(&self) -> String {
        String::new()
    }
    fn wrap<'a>(&'a self, _: &'a [u8], _: &'a [u8]) -> BoxFuture<'a, Result<Wrapped, SealError>> {
        Box::pin(async { Err(SealError::Kek("no key-encryption key".into())) })
    }
    fn unwrap<'a>(
        &'a self,
        _: &'a str,
        _: &'a [u8],
        _: &'a [u8],
        _: &'a [u8],
    ) -> BoxFuture<'a, Result<DataKey, SealError>> {
        Box::pin(async { Err(SealError::Kek("no key-encryption key".into())) })
    }
}

impl Keyring {
    /// Binds to the `KEYS` bucket (made by provisioning).
    pub async fn open_store(js: &jetstream::Context, sealing: Sealing) -> Result<Self, SealError> {
        let (kek, plain): (Arc<dyn KeyEncryption>, bool) = match sealing {
            Sealing::Encrypted(kek) => (kek, false),
            Sealing::PlainForBenchmarks => (Arc::new(NoKek), true),
        };
        let kv = js
            .get_key_value(BUCKET)
            .await
            .map_err(|e| SealError::Store(format!("KV bucket {BUCKET}: {e}")))?;
        let stream = js
            .get_stream(format!("KV_{BUCKET}"))
            .await
            .map_err(|e| SealError::Store(format!("stream KV_{BUCKET}: {e}")))?;
        Ok(Self {
            kv,
            stream,
            kek,
            plain,
            held: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn cached(&self, name: &str) -> Option<Held> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(name).cloned()
    }

    fn remember(&self, name: &str, held: Held) {
        let mut map = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE {
            map.clear();
        }
        map.insert(name.to_owned(), held);
    }

    /// Forgets the key `name` (it was destroyed, here or by another gateway).
    pub fn forget(&self, name: &str) {
        let mut map = self.held.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(name);
    }

    /// The key `name` as stored now, unwrapped; `None` if there is none.
    async fn stored(&self, name: &str) -> Result<Option<(Held, u64)>, SealError> {
        let entry = self
            .kv
            .entry(name)
            .await
            .map_err(|e| SealError::Store(format!("reading {name}: {e}")))?;
        let Some(entry) = entry else { return Ok(None) };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let wrapped = WrappedKey::decode(entry.value.as_ref())
            .map_err(|e| SealError::Store(format!("{name} is not a wrapped key: {e}")))?;
        let key = self
            .kek
            .unwrap(
                &wrapped.kek,
                &wrap_aad(name, &wrapped.id),
                &wrapped.nonce,
                &wrapped.ciphertext,
            )
            .await?;
        Ok(Some((
            Held {
                id: wrapped.id,
                key: Arc::new(key),
            },
            entry.revision,
        )))
    }

    /// The current key `name`, made if there is none.
    async fn current(&self, name: &str) -> Result<Held, SealError> {
        if let Some(held) = self.cached(name) {
            return Ok(held);
        }
        // Made first, read only if it exists: most keys not held are a new
        // subject's (one request); one made before costs a refused create too.
        for _ in 0..3 {
            let mut id = vec![0u8; ID_LEN];
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            random(&mut id).map_err(SealError::Kek)?;
            random(key.as_mut_slice()).map_err(SealError::Kek)?;
            let Wrapped {
                kek,
                nonce,
                ciphertext,
            } = self.kek.wrap(&wrap_aad(name, &id), key.as_slice()).await?;
            let wrapped = WrappedKey {
                id: id.clone(),
                kek,
                nonce,
                ciphertext,
                created_at: liaison_core::time::unix_now(),
            };
            match self.kv.create(name, wrapped.encode_to_vec().into()).await {
                Ok(_) => {
                    let held = Held {
                        id,
                        key: Arc::new(key),
                    };
                    self.remember(name, held.clone());
                    return Ok(held);
                }
                // Made before (or by another gateway just now): use it.
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if let Some((held, _)) = self.stored(name).await? {
                        self.remember(name, held.clone());
                        return Ok(held);
                    }
                    // Destroyed meanwhile: make it again.
                }
                Err(e) => return Err(SealError::Store(format!("making {name}: {e}"))),
            }
        }
        Err(SealError::Store(format!(
            "{name} could not be made or read"
        )))
    }

    /// The key `name` with `id`, or [`SealError::Erased`].
    async fn with_id(&self, name: &str, id: &[u8]) -> Result<Held, SealError> {
        if let Some(held) = self.cached(name).filter(|h| h.id == id) {
            return Ok(held);
        }
        match self.stored(name).await? {
            Some((held, _)) if held.id == id => {
                self.remember(name, held.clone());
                Ok(held)
            }
            _ => Err(SealError::Erased(name.to_owned())),
        }
    }

    /// Seals `plain` for storing on `subject`, under the data keys `names`.
    pub async fn seal(
        &self,
        names: &[String],
        subject: &str,
        plain: &[u8],
    ) -> Result<Bytes, SealError> {
        if self.plain {
            return Ok(Bytes::copy_from_slice(plain));
        }
        let mut held = Vec::with_capacity(names.len());
        for name in names.iter().take(MAX_KEYS) {
            held.push((name.as_str(), self.current(name).await?));
        }
        seal_with(&held, subject, plain)
    }

    /// Seals `plain` for `subject` with the same data keys as `like` (a
    /// recipient's copy of a stored envelope).
    pub async fn seal_like(
        &self,
        like: &Sealed,
        subject: &str,
        plain: &[u8],
    ) -> Result<Bytes, SealError> {
        if self.plain {
            return Ok(Bytes::copy_from_slice(plain));
        }
        let held = self.keys_of(like).await?;
        let named: Vec<(&str, Held)> = like
            .keys
            .iter()
            .map(|k| k.name.as_str())
            .zip(held)
            .collect();
        seal_with(&named, subject, plain)
    }

    async fn keys_of(&self, sealed: &Sealed) -> Result<Vec<Held>, SealError> {
        if sealed.keys.is_empty() || sealed.keys.len() > MAX_KEYS {
            return Err(SealError::Corrupt(format!(
                "sealed with {} data keys",
                sealed.keys.len()
            )));
        }
        let mut held = Vec::with_capacity(sealed.keys.len());
        for key in &sealed.keys {
            held.push(self.with_id(&key.name, &key.id).await?);
        }
        Ok(held)
    }

    /// Opens a payload stored on `subject`: the sealed form and the plain bytes.
    pub async fn open(
        &self,
        subject: &str,
        payload: &[u8],
    ) -> Result<(Sealed, Vec<u8>), SealError> {
        if self.plain {
            return Ok((Sealed::default(), payload.to_vec()));
        }
        let sealed = Sealed::decode(payload).map_err(|e| SealError::Corrupt(e.to_string()))?;
        let held = self.keys_of(&sealed).await?;
        let named: Vec<(&str, &Held)> = sealed
            .keys
            .iter()
            .map(|k| k.name.as_str())
            .zip(held.iter())
            .collect();
        let key = content_key(&named)?;
        let plain =
            decrypt(&key, subject.as_bytes(), &sealed.nonce, &sealed.ciphertext).map_err(|()| {
                SealError::Corrupt(format!(
                    "it does not open on {subject} (altered, or moved from another subject)"
                ))
            })?;
        Ok((sealed, plain))
    }

    /// Destroys the data key `name`: its stored message is erased in place
    /// (nats-server overwrites it), then purged so that every gateway forgets
    /// it. `false` if there was none.
    pub async fn destroy(&self, name: &str) -> Result<bool, SealError> {
        self.forget(name);
        let entry = self
            .kv
            .entry(name)
            .await
            .map_err(|e| SealError::Store(format!("reading {name}: {e}")))?;
        let existed = match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                match self.stream.delete_message(entry.revision).await {
                    Ok(_) => {}
                    // Erased by another gateway meanwhile.
                    Err(e) if e.to_string().contains("no message found") => {}
                    Err(e) => {
                        return Err(SealError::Store(format!("erasing {name}: {e}")));
                    }
                }
                true
            }
            _ => false,
        };
        self.kv
            .purge(name)
            .await
            .map_err(|e| SealError::Store(format!("purging {name}: {e}")))?;
        self.forget(name);
        Ok(existed)
    }

    /// Every key's name whose `until.` time is at or before `now`.
    pub async fn due(&self, now: u64) -> Result<Vec<String>, SealError> {
        let mut keys = self
            .kv
            .keys()
            .await
            .map_err(|e| SealError::Store(format!("listing keys: {e}")))?;
        let mut due = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| SealError::Store(format!("listing keys: {e}")))?;
            if until_of(&key).is_some_and(|t| t <= now) {
                due.push(key);
            }
        }
        Ok(due)
    }

    /// Re-wraps every data key not wrapped by the current key-encryption
    /// key (after a rotation); the number re-wrapped. Compare-and-set on
    /// each key's revision: two gateways doing it at once lose nothing.
    pub async fn rewrap(&self) -> Result<u64, SealError> {
        if self.plain {
            return Ok(0);
        }
        let current = self.kek.current();
        let mut keys = self
            .kv
            .keys()
            .await
            .map_err(|e| SealError::Store(format!("listing keys: {e}")))?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            names.push(key.map_err(|e| SealError::Store(format!("listing keys: {e}")))?);
        }
        let mut done = 0;
        for name in names {
            let Some(entry) = self
                .kv
                .entry(&name)
                .await
                .map_err(|e| SealError::Store(format!("reading {name}: {e}")))?
            else {
                continue;
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let Ok(wrapped) = WrappedKey::decode(entry.value.as_ref()) else {
                continue;
            };
            if wrapped.kek == current {
                continue;
            }
            let aad = wrap_aad(&name, &wrapped.id);
            let key = self
                .kek
                .unwrap(&wrapped.kek, &aad, &wrapped.nonce, &wrapped.ciphertext)
                .await?;
            let Wrapped {
                kek,
                nonce,
                ciphertext,
            } = self.kek.wrap(&aad, key.as_slice()).await?;
            let again = WrappedKey {
                kek,
                nonce,
                ciphertext,
                ..wrapped
            };
            match self
                .kv
                .update(&name, again.encode_to_vec().into(), entry.revision)
                .await
            {
                Ok(_) => done += 1,
                Err(e) => {
                    warn!(key = %name, error = %e, "Data key not re-wrapped (changed meanwhile)")
                }
            }
        }
        if done > 0 {
            info!(keys = done, kek = %current, "Data keys re-wrapped under the current key-encryption key");
        }
        Ok(done)
    }

    /// Forgets each key destroyed by any gateway, until `shutdown`.
    pub async fn follow(&self, shutdown: tokio_util::sync::CancellationToken) {
        let mut watch = match self.kv.watch_all().await {
            Ok(watch) => watch,
            Err(e) => {
                warn!(error = %e, "Not following destroyed data keys");
                return;
            }
        };
        loop {
            let entry = tokio::select! {
                () = shutdown.cancelled() => return,
                entry = watch.next() => entry,
            };
            match entry {
                Some(Ok(entry)) if entry.operation != kv::Operation::Put => self.forget(&entry.key),
                Some(_) => {}
                None => return,
            }
        }
    }
}

/// A wrapped key is bound to its name and id.
fn wrap_aad(name: &str, id: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(name.len() + 1 + id.len());
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(id);
    aad
}

/// The content key of a payload: HKDF-SHA256 over its data keys in order,
/// bound to their names and ids.
fn content_key<H: std::borrow::Borrow<Held>>(keys: &[(&str, H)]) -> Result<LessSafeKey, SealError> {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"liaison/seal/v1");
    let mut ikm = Zeroizing::new(Vec::with_capacity(keys.len() * KEY_LEN));
    let mut info = Vec::new();
    for (name, held) in keys {
        let held = held.borrow();
        ikm.extend_from_slice(held.key.as_slice());
        info.extend_from_slice(name.as_bytes());
        info.push(0);
        info.extend_from_slice(&held.id);
        info.push(0);
    }
    let prk = salt.extract(&ikm);
    let info = [info.as_slice()];
    let okm = prk
        .expand(&info, &aead::AES_256_GCM)
        .map_err(|_| SealError::Kek("content key derivation failed".into()))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

fn seal_with<H: std::borrow::Borrow<Held>>(
    keys: &[(&str, H)],
    subject: &str,
    plain: &[u8],
) -> Result<Bytes, SealError> {
    let key = content_key(keys)?;
    let (nonce, ciphertext) = encrypt(&key, subject.as_bytes(), plain).map_err(SealError::Kek)?;
    let sealed = Sealed {
        keys: keys
            .iter()
            .map(|(name, held)| SealKey {
                name: (*name).to_owned(),
                id: held.borrow().id.clone(),
            })
            .collect(),
        nonce,
        ciphertext,
    };
    Ok(sealed.encode_to_vec().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(byte: u8) -> Held {
        Held {
            id: vec![byte; ID_LEN],
            key: Arc::new(Zeroizing::new([byte; KEY_LEN])),
        }
    }

    fn open_with(keys: &[(&str, Held)], subject: &str, payload: &[u8]) -> Result<Vec<u8>, ()> {
        let sealed = Sealed::decode(payload).map_err(|_| ())?;
        let key = content_key(keys).map_err(|_| ())?;
        decrypt(&key, subject.as_bytes(), &sealed.nonce, &sealed.ciphertext)
    }

    #[test]
    fn a_sealed_payload_opens_only_with_every_key_on_its_own_subject() -> Result<(), SealError> {
        let keys = [("subject.t1", held(1)), ("until.86400", held(2))];
        let sealed = seal_with(&keys, "liaison.events.referral", b"Amira Khan")?;
        assert!(
            !sealed.windows(5).any(|w| w == b"Amira"),
            "the plain text shows through"
        );
        assert_eq!(
            open_with(&keys, "liaison.events.referral", &sealed).as_deref(),
            Ok(&b"Amira Khan"[..])
        );
        // Another subject (a copy moved to another inbox) does not open.
        assert!(open_with(&keys, "liaison.events.alert", &sealed).is_err());
        // Either key replaced (destroyed, then made again) does not open.
        let other = [("subject.t1", held(3)), ("until.86400", held(2))];
        assert!(open_with(&other, "liaison.events.referral", &sealed).is_err());
        let other = [("subject.t1", held(1)), ("until.86400", held(4))];
        assert!(open_with(&other, "liaison.events.referral", &sealed).is_err());
        // A changed byte does not open.
        let mut altered = sealed.to_vec();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(open_with(&keys, "liaison.events.referral", &altered).is_err());
        Ok(())
    }

    #[test]
    fn a_kek_file_is_checked_and_names_what_is_wrong() {
        let good = format!("current = \"k1\"\n[keys]\nk1 = \"{}\"\n", "ab".repeat(32));
        assert!(KekFile::parse(&good).is_ok());
        let short = "current = \"k1\"\n[keys]\nk1 = \"abcd\"\n";
        assert!(
            KekFile::parse(short)
                .err()
                .unwrap_or_default()
                .contains("2 bytes")
        );
        let missing = format!("current = \"k2\"\n[keys]\nk1 = \"{}\"\n", "ab".repeat(32));
        assert!(
            KekFile::parse(&missing)
                .err()
                .unwrap_or_default()
                .contains("k2")
        );
        let bad = "current = \"k1\"\n[keys]\nk1 = \"zz\"\n";
        assert!(
            KekFile::parse(bad)
                .err()
                .unwrap_or_default()
                .contains("hexadecimal")
        );
    }

    #[tokio::test]
    async fn a_wrapped_key_unwraps_only_under_its_name_and_kek() -> Result<(), SealError> {
        let text = format!(
            "current = \"k2\"\n[keys]\nk1 = \"{}\"\nk2 = \"{}\"\n",
            "01".repeat(32),
            "02".repeat(32)
        );
        let file = KekFile::parse(&text).map_err(SealError::Kek)?;
        let Wrapped {
            kek,
            nonce,
            ciphertext,
        } = file.wrap(b"subject.t1\0id", &[7u8; 32]).await?;
        assert_eq!(kek, "k2");
        let key = file
            .unwrap(&kek, b"subject.t1\0id", &nonce, &ciphertext)
            .await?;
        assert_eq!(key.as_slice(), &[7u8; 32]);
        assert!(
            file.unwrap(&kek, b"subject.t2\0id", &nonce, &ciphertext)
                .await
                .is_err()
        );
        assert!(
            file.unwrap("k1", b"subject.t1\0id", &nonce, &ciphertext)
                .await
                .is_err()
        );
        assert!(
            file.unwrap("k9", b"subject.t1\0id", &nonce, &ciphertext)
                .await
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn retention_ends_no_earlier_than_stated_and_keys_are_named_safely() {
        let day = 86_400;
        assert_eq!(retained_until(10, 2 * day), 3 * day);
        assert_eq!(retained_until(0, 2 * day), 2 * day);
        assert_eq!(retained_until(10, 3_600), 2 * 3_600);
        assert_eq!(retained_until(10, 5), 15);
        assert_eq!(subject_key("ab:c.d"), "subject.ab=3Ac=2Ed");
        assert_eq!(until_of(&until_key(42)), Some(42));
    }
}
