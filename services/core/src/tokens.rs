//! Signing and verifying the short-lived JWTs that principals (agencies,
//! auditors) sign with their own keys, as RFC 8725 asks:
//!
//! - the algorithm is pinned by the key the `kid` header names (EdDSA or
//!   ES256, as registered) — never `none`, never HMAC, never a key the token
//!   brings itself: a header other than `alg`, `typ` and `kid` (`jku`, `x5u`,
//!   `jwk`, `x5c`, `crit`, …) is refused;
//! - explicit typing: `typ` must be [`TOKEN_TYPE`];
//! - `iss` must be the principal the caller expects (the agency whose ingress
//!   subject carried the message), `aud` this service; `exp`, `nbf` and `iat`
//!   are checked with a bounded clock skew against an injected clock, and the
//!   lifetime `exp - iat` is bounded;
//! - each `jti` belongs to one token: a second, different token with a `jti`
//!   already seen is a replay and is refused. The replay cache is bounded per
//!   principal and forgets a `jti` once its token has expired.
//!
//! A token may be reused for many requests until it expires; its verification
//! is cached (by SHA-256 of the token) so the per-message cost is a hash
//! lookup plus the time checks, not a signature verification. See
//! docs/decisions/0006-tokens.md.

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The `typ` header every Liaison token carries (RFC 8725 §3.11).
pub const TOKEN_TYPE: &str = "liaison+jwt";
/// Longest token accepted, checked before anything is parsed.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Longest `sub` and `jti`.
const MAX_CLAIM_BYTES: usize = 128;
/// Distinct live tokens one principal may have at once (the replay cache's bound).
pub const MAX_LIVE_TOKENS_PER_PRINCIPAL: usize = 10_000;
/// Verified tokens remembered, all principals together.
const MAX_CACHED: usize = 65_536;

/// The claims a token must carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The principal (agency or auditor id).
    pub iss: String,
    /// The person or system acting for it.
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default)]
    pub nbf: Option<u64>,
    pub jti: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("{0:?} is not registered")]
    UnknownIssuer(String),
    #[error("token signature does not verify with the registered key")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token id (jti) {0:?} was already used by another token")]
    Replayed(String),
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// A signature algorithm a principal may register a key for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum KeyAlg {
    EdDSA,
    ES256,
}

impl KeyAlg {
    fn jwt(self) -> Algorithm {
        match self {
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }
}

/// A public key as registered (agency registry, auditors' file).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Key id the token's `kid` header names. Default: the key's RFC 7638 JWK
    /// thumbprint, which is what `liaison` clients put in `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default = "default_alg")]
    pub alg: KeyAlg,
    /// EdDSA: the 32-byte Ed25519 key; ES256: the 65-byte uncompressed P-256
    /// point (0x04 ‖ x ‖ y); base64url without padding.
    pub public_key: String,
    /// The key signs nothing before this time (rotation: register the new key
    /// ahead, with an overlap) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<toml::value::Datetime>,
    /// ... nor after this one (the old key retires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<toml::value::Datetime>,
}

fn default_alg() -> KeyAlg {
    KeyAlg::EdDSA
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))
}

impl KeySpec {
    /// The key's id: its `kid`, or by default its RFC 7638 thumbprint.
    pub fn key_id(&self) -> Result<String, String> {
        match &self.kid {
            Some(kid) => Ok(kid.clone()),
            None => {
                let raw = unb64(&self.public_key).map_err(|e| format!("public_key is {e}"))?;
                thumbprint(self.alg, &raw)
            }
        }
    }
}

/// The `kid` a token's header names, if the header can be read (the token
/// is not verified: to look up whether that key was revoked before asking
/// anything more of it).
pub fn token_kid(token: &str) -> Option<String> {
    header(token).ok().map(|h| h.kid)
}

/// The `iss` a token's claims name, if they can be read (unverified: to
/// know whose keys to verify it with, when the issuer is not given apart).
pub fn token_issuer(token: &str) -> Option<String> {
    let claims = unb64(token.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// The RFC 7638 JWK thumbprint of a public key: the default `kid`.
pub fn thumbprint(alg: KeyAlg, public_key: &[u8]) -> Result<String, String> {
    let jwk = match (alg, public_key.len()) {
        (KeyAlg::EdDSA, 32) => format!(
            r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
            b64(public_key)
        ),
        (KeyAlg::ES256, 65) if public_key[0] == 4 => format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(&public_key[1..33]),
            b64(&public_key[33..])
        ),
        (KeyAlg::EdDSA, n) => return Err(format!("an Ed25519 key is 32 bytes, found {n}")),
        (KeyAlg::ES256, n) => {
            return Err(format!(
                "a P-256 key is 65 bytes (uncompressed point 0x04 || x || y), found {n}"
            ));
        }
    };
    Ok(b64(&Sha256::digest(jwk.as_bytes())))
}

/// Seconds since the Unix epoch of a TOML date-time (an offset date-time or
/// a date, taken as midnight UTC).
pub fn datetime_secs(value: &toml::value::Datetime) -> Result<u64, String> {
    let date = value.date.ok_or_else(|| format!("{value} has no date"))?;
    let (y, m, d) = (
        i64::from(date.year),
        i64::from(date.month),
        i64::from(date.day),
    );
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut secs = days * 86_400;
    if let Some(time) = value.time {
        secs += i64::from(time.hour) * 3600 + i64::from(time.minute) * 60 + i64::from(time.second);
    }
    if let Some(toml::value::Offset::Custom { minutes }) = value.offset {
        secs -= i64::from(minutes) * 60;
    }
    u64::try_from(secs).map_err(|_| format!("{value} is before 1970"))
}

/// One registered public key, ready to verify with.
struct Key {
    kid: String,
    alg: KeyAlg,
    key: DecodingKey,
    not_before: Option<u64>,
    not_after: Option<u64>,
}

impl Key {
    fn from_spec(spec: &KeySpec) -> Result<Self, String> {
        let raw = unb64(&spec.public_key).map_err(|e| format!("public_key is {e}"))?;
        let kid = match &spec.kid {
            Some(kid) if kid.is_empty() || kid.len() > MAX_CLAIM_BYTES => {
                return Err(format!("kid must be 1 to {MAX_CLAIM_BYTES} bytes"));
            }
            Some(kid) => kid.clone(),
            None => thumbprint(spec.alg, &raw)?,
        };
        let key = match spec.alg {
            KeyAlg::EdDSA => {
                thumbprint(spec.alg, &raw)?;
                DecodingKey::from_ed_components(&b64(&raw))
            }
            KeyAlg::ES256 => {
                thumbprint(spec.alg, &raw)?;
                DecodingKey::from_ec_components(&b64(&raw[1..33]), &b64(&raw[33..]))
            }
        }
        .map_err(|e| format!("key {kid}: {e}"))?;
        let secs = |d: &Option<toml::value::Datetime>| {
            d.as_ref()
                .map(datetime_secs)
                .transpose()
                .map_err(|e| format!("key {kid}: {e}"))
        };
        Ok(Self {
            not_before: secs(&spec.not_before)?,
            not_after: secs(&spec.not_after)?,
            kid,
            alg: spec.alg,
            key,
        })
    }

    /// Whether the key may sign at `now` (with `leeway`), or why not.
    fn in_use(&self, now: u64, leeway: u64) -> Result<(), TokenError> {
        if self.not_before.is_some_and(|t| now + leeway < t) {
            return Err(TokenError::Invalid(format!(
                "key {} is not in use yet",
                self.kid
            )));
        }
        if self.not_after.is_some_and(|t| t + leeway <= now) {
            return Err(TokenError::Invalid(format!(
                "key {} was retired (not_after has passed)",
                self.kid
            )));
        }
        Ok(())
    }
}

/// Checks a principal's keys: each parses, kids are unique.
pub fn check_keys(keys: &[KeySpec]) -> Result<(), String> {
    if keys.is_empty() {
        return Err("has no keys (give at least one [[...keys]] entry)".into());
    }
    let mut kids = std::collections::HashSet::new();
    for spec in keys {
        let key = Key::from_spec(spec)?;
        if !kids.insert(key.kid.clone()) {
            return Err(format!("key id {} is registered twice", key.kid));
        }
    }
    Ok(())
}

/// The `jti`s a principal's live tokens carry, each with its token's digest.
#[derive(Default)]
struct Jtis {
    seen: HashMap<String, ([u8; 32], u64)>,
    /// (forget after, jti) in arrival order.
    order: VecDeque<(u64, String)>,
}

impl Jtis {
    fn forget_expired(&mut self, now: u64) {
        while let Some((until, _)) = self.order.front() {
            if *until > now {
                break;
            }
            if let Some((_, jti)) = self.order.pop_front() {
                self.seen.remove(&jti);
            }
        }
    }
}

struct Verified {
    issuer: String,
    kid: String,
    claims: Claims,
}

/// Verifies tokens against registered public keys, with a verification cache
/// and a `jti` replay cache.
pub struct TokenVerifier {
    keys: HashMap<String, Vec<Key>>,
    audience: String,
    leeway: u64,
    max_lifetime: u64,
    verified: Mutex<HashMap<[u8; 32], Verified>>,
    jtis: Mutex<HashMap<String, Jtis>>,
}

impl TokenVerifier {
    /// `keys`: (principal id, its registered keys).
    pub fn new<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a [KeySpec])>,
        audience: &str,
        leeway: u64,
        max_lifetime: u64,
    ) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (id, specs) in keys {
            check_keys(specs).map_err(|e| format!("{id}: {e}"))?;
            let parsed = specs
                .iter()
                .map(Key::from_spec)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{id}: {e}"))?;
            map.insert(id.to_owned(), parsed);
        }
        Ok(Self {
            keys: map,
            audience: audience.to_owned(),
            leeway,
            max_lifetime,
            verified: Mutex::new(HashMap::new()),
            jtis: Mutex::new(HashMap::new()),
        })
    }

    /// Verifies `token` as issued by `issuer` at time `now` (Unix seconds).
    pub fn verify(&self, issuer: &str, token: &str, now: u64) -> Result<Claims, TokenError> {
        self.verify_fresh(issuer, token, now)
            .map(|(claims, _)| claims)
    }

    /// Forgets `token` (issued by `issuer`): it is verified in full again
    /// next time, and its `jti` no longer bound to it here — for a token
    /// another verifier (a second gateway) has found to be a replay.
    pub fn forget(&self, issuer: &str, token: &str) {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let jti = self.verified.lock().ok().and_then(|mut cache| {
            cache
                .remove(&digest)
                .filter(|v| v.issuer == issuer)
                .map(|v| v.claims.jti)
        });
        if let (Some(jti), Ok(mut all)) = (jti, self.jtis.lock())
            && let Some(jtis) = all.get_mut(issuer)
            && jtis.seen.get(&jti).is_some_and(|(seen, _)| *seen == digest)
        {
            jtis.seen.remove(&jti);
        }
    }

    /// [`verify`](Self::verify), saying whether the token was verified in
    /// full now (`true`: the first time this verifier saw it) rather than
    /// found among those verified before.
    pub fn verify_fresh(
        &self,
        issuer: &str,
        token: &str,
        now: u64,
    ) -> Result<(Claims, bool), TokenError> {
        let keys = self
            .keys
            .get(issuer)
            .ok_or_else(|| TokenError::UnknownIssuer(issuer.to_owned()))?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid(format!(
                "token is {} bytes, longer than the {MAX_TOKEN_BYTES} allowed",
                token.len()
            )));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self.verified.lock().ok().and_then(|cache| {
            cache
                .get(&digest)
                .filter(|v| v.issuer == issuer)
                .map(|v| (v.kid.clone(), v.claims.clone()))
        });
        if let Some((kid, claims)) = cached {
            if let Some(key) = keys.iter().find(|k| k.kid == kid) {
                key.in_use(now, self.leeway)?;
            }
            self.check_times(&claims, now)?;
            return Ok((claims, false));
        }
        let header = header(token)?;
        let key = keys.iter().find(|k| k.kid == header.kid).ok_or_else(|| {
            TokenError::Invalid(format!(
                "kid {:?} is not a registered key of {issuer:?}",
                shown(&header.kid)
            ))
        })?;
        if header.alg != key.alg.as_str() {
            return Err(TokenError::Invalid(format!(
                "algorithm must be {}, as key {} is registered (found {:?})",
                key.alg.as_str(),
                key.kid,
                shown(&header.alg)
            )));
        }
        key.in_use(now, self.leeway)?;
        let mut validation = Validation::new(key.alg.jwt());
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        // Times are checked below against the injected clock `now`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| refusal(e.kind(), issuer, &self.audience))?
            .claims;
        self.check_times(&claims, now)?;
        if claims.sub.is_empty() || claims.jti.is_empty() {
            return Err(TokenError::Invalid("sub and jti must not be empty".into()));
        }
        if claims.sub.len() > MAX_CLAIM_BYTES || claims.jti.len() > MAX_CLAIM_BYTES {
            return Err(TokenError::Invalid(format!(
                "sub and jti must be at most {MAX_CLAIM_BYTES} bytes"
            )));
        }
        self.remember_jti(issuer, &claims, digest, now)?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, v| v.claims.exp.saturating_add(self.leeway) > now);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(
                digest,
                Verified {
                    issuer: issuer.to_owned(),
                    kid: key.kid.clone(),
                    claims: claims.clone(),
                },
            );
        }
        Ok((claims, true))
    }

    fn check_times(&self, claims: &Claims, now: u64) -> Result<(), TokenError> {
        let invalid = |reason: String| Err(TokenError::Invalid(reason));
        if claims.exp.saturating_add(self.leeway) <= now {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + self.leeway) {
            return invalid("token is not valid yet (nbf)".into());
        }
        if claims.iat > now + self.leeway {
            return invalid("iat is in the future".into());
        }
        let lifetime = claims.exp.saturating_sub(claims.iat);
        if lifetime > self.max_lifetime {
            return invalid(format!(
                "token lifetime exp-iat is {lifetime} s, longer than the {} s allowed",
                self.max_lifetime
            ));
        }
        Ok(())
    }

    /// Binds `claims.jti` to this token until it expires; a different token
    /// with the same `jti` is a replay.
    fn remember_jti(
        &self,
        issuer: &str,
        claims: &Claims,
        digest: [u8; 32],
        now: u64,
    ) -> Result<(), TokenError> {
        let mut all = self
            .jtis
            .lock()
            .map_err(|_| TokenError::Invalid("replay cache unavailable".into()))?;
        let jtis = all.entry(issuer.to_owned()).or_default();
        jtis.forget_expired(now);
        match jtis.seen.get(&claims.jti) {
            Some((seen, _)) if *seen == digest => return Ok(()),
            Some(_) => return Err(TokenError::Replayed(claims.jti.clone())),
            None => {}
        }
        if jtis.seen.len() >= MAX_LIVE_TOKENS_PER_PRINCIPAL {
            return Err(TokenError::Invalid(format!(
                "{issuer} has {MAX_LIVE_TOKENS_PER_PRINCIPAL} live tokens; reuse a token until it expires"
            )));
        }
        let until = claims.exp.saturating_add(self.leeway);
        jtis.seen.insert(claims.jti.clone(), (digest, until));
        jtis.order.push_back((until, claims.jti.clone()));
        Ok(())
    }
}

/// At most 64 characters of a value the sender chose, for a refusal reason
/// (which is audited: bounded, never the whole of hostile input).
fn shown(value: &str) -> String {
    value.chars().take(64).collect()
}

/// The JOSE header, checked before the signature is: only `alg`, `typ` and
/// `kid`, each a string, `typ` Liaison's.
struct JoseHeader {
    alg: String,
    kid: String,
}

fn header(token: &str) -> Result<JoseHeader, TokenError> {
    let invalid = |reason: String| TokenError::Invalid(reason);
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(
            "a JWT has three base64url parts separated by '.'".into(),
        ));
    };
    let bytes = unb64(head).map_err(|e| invalid(format!("header is {e}")))?;
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("header is not a JSON object: {e}")))?;
    let text = |name: &str| match fields.get(name) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid(format!("header {name} must be a string"))),
        None => Err(invalid(format!("header {name} is missing"))),
    };
    if let Some(other) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "alg" | "typ" | "kid"))
    {
        return Err(invalid(format!(
            "header {:?} is not accepted: keys come only from the registry",
            shown(other)
        )));
    }
    let typ = text("typ")?;
    if typ != TOKEN_TYPE {
        return Err(invalid(format!(
            "typ must be {TOKEN_TYPE:?}, found {:?}",
            shown(&typ)
        )));
    }
    Ok(JoseHeader {
        alg: text("alg")?,
        kid: text("kid")?,
    })
}

fn refusal(kind: &ErrorKind, issuer: &str, audience: &str) -> TokenError {
    let invalid = |reason: String| TokenError::Invalid(reason);
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            invalid("algorithm does not match the registered key".into())
        }
        ErrorKind::InvalidIssuer => invalid(format!("iss must be {issuer:?}")),
        ErrorKind::InvalidAudience => invalid(format!("aud must be {audience:?}")),
        ErrorKind::MissingRequiredClaim(claim) => invalid(format!("claim {claim:?} is missing")),
        ErrorKind::InvalidClaimFormat(claim) => {
            invalid(format!("claim {claim:?} has the wrong type"))
        }
        ErrorKind::Json(e) => invalid(format!("claims: {e}")),
        other => invalid(format!("{other:?}")),
    }
}

/// A principal's signing key: mints the tokens a Liaison service verifies.
pub struct Signer {
    alg: KeyAlg,
    kid: String,
    key: EncodingKey,
}

impl Signer {
    /// From a PKCS#8 PEM private key (Ed25519 or P-256); `kid` defaults to
    /// the key's RFC 7638 thumbprint.
    pub fn from_pem(pem: &str, kid: Option<&str>) -> Result<Self, String> {
        let (alg, public) = public_of_pem(pem)?;
        let key = match alg {
            KeyAlg::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
            KeyAlg::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .map_err(|e| format!("signing key: {e}"))?;
        let kid = match kid {
            Some(kid) => kid.to_owned(),
            None => thumbprint(alg, &public)?,
        };
        Ok(Self { alg, kid, key })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> KeyAlg {
        self.alg
    }

    /// A token for `audience`, valid from `now` for `lifetime` seconds, with a fresh `jti`.
    pub fn mint(
        &self,
        issuer: &str,
        subject: &str,
        audience: &str,
        now: u64,
        lifetime: u64,
    ) -> Result<String, String> {
        let claims = Claims {
            iss: issuer.to_owned(),
            sub: subject.to_owned(),
            aud: audience.to_owned(),
            iat: now,
            nbf: Some(now),
            exp: now + lifetime,
            jti: uuid_like(),
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims with this key's `alg`, `typ` and `kid`.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, String> {
        let mut header = Header::new(self.alg.jwt());
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| format!("signing: {e}"))
    }
}

fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// The algorithm and raw public key of a PKCS#8 PEM private key.
pub fn public_of_pem(pem: &str) -> Result<(KeyAlg, Vec<u8>), String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        return Ok((KeyAlg::EdDSA, key.verifying_key().to_bytes().to_vec()));
    }
    if let Ok(key) = p256::SecretKey::from_pkcs8_pem(pem) {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        let point = key.public_key().to_encoded_point(false);
        return Ok((KeyAlg::ES256, point.as_bytes().to_vec()));
    }
    Err("not a PKCS#8 PEM private key for Ed25519 or P-256".into())
}

/// A base64url public key as the registry holds it.
pub fn public_key_text(public: &[u8]) -> String {
    b64(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_to_unix_seconds() {
        let parse = |s: &str| {
            s.parse::<toml::value::Datetime>()
                .map_err(|e| e.to_string())
                .and_then(|d| datetime_secs(&d))
        };
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse("2026-11-23T00:00:00Z"), Ok(1_795_392_000));
        assert_eq!(parse("2000-02-29"), Ok(951_782_400));
        assert_eq!(parse("2026-11-23T01:00:00+01:00"), Ok(1_795_392_000));
        assert!(parse("1969-12-31T00:00:00Z").is_err());
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 8037 appendix A.3: the Ed25519 key's thumbprint.
        let x = unb64("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap_or_default();
        assert_eq!(
            thumbprint(KeyAlg::EdDSA, &x),
            Ok("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k".to_owned())
        );
        assert!(thumbprint(KeyAlg::EdDSA, &x[..31]).is_err());
        assert!(thumbprint(KeyAlg::ES256, &x).is_err());
    }
}
