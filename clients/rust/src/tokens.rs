//! The tokens an agency's system signs with its own key (docs/wire-contract.md,
//! "The token"): `typ` `liaison+jwt`, `kid` the key's RFC 7638 thumbprint,
//! `iss` the agency, `sub` the person or system acting, `aud` the gateway,
//! a two-minute life and a fresh `jti`. A token is reused for half its life
//! for the same subject, so the gateway's verification cache serves it and
//! its replay cache is not filled (docs/decisions/0006-tokens.md).

use liaison_core::time::unix_now;
use liaison_core::tokens::Signer;
use std::collections::HashMap;
use std::sync::Mutex;

/// Lifetime of the tokens this client mints.
pub const TOKEN_LIFETIME_SECS: u64 = 120;

/// The agency's key could not sign a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot sign a token with the agency's key: {0}")]
pub struct SigningError(pub String);

/// A short-lived token: `iss` the principal (agency or auditor), `sub` the
/// person or system acting for it, `aud` the service it is for.
pub fn mint(
    signer: &Signer,
    issuer: &str,
    subject: &str,
    audience: &str,
) -> Result<String, SigningError> {
    signer
        .mint(issuer, subject, audience, unix_now(), TOKEN_LIFETIME_SECS)
        .map_err(SigningError)
}

/// Mints and caches one principal's tokens, one per subject.
pub struct Tokens {
    signer: Signer,
    issuer: String,
    audience: String,
    /// subject → (token, minted at).
    cache: Mutex<HashMap<String, (String, u64)>>,
}

impl Tokens {
    pub fn new(signer: Signer, issuer: &str, audience: &str) -> Self {
        Self {
            signer,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The key id tokens carry in `kid`.
    pub fn kid(&self) -> &str {
        self.signer.kid()
    }

    /// A token for `subject`: the last one minted for it while it has more
    /// than half its life left, else a new one.
    pub fn token(&self, subject: &str) -> Result<String, SigningError> {
        let now = unix_now();
        let reusable = |minted: u64| now < minted + TOKEN_LIFETIME_SECS / 2;
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| SigningError("the token cache is poisoned".into()))?;
        if let Some((token, minted)) = cache.get(subject)
            && reusable(*minted)
        {
            return Ok(token.clone());
        }
        let token = self.fresh(subject)?;
        cache.retain(|_, (_, minted)| reusable(*minted));
        cache.insert(subject.to_owned(), (token.clone(), now));
        Ok(token)
    }

    /// A token minted now, never cached (tests of the replay cache use it).
    pub fn fresh(&self, subject: &str) -> Result<String, SigningError> {
        mint(&self.signer, &self.issuer, subject, &self.audience)
    }

    /// Drops the cached token of `subject`, so the next one is new (after
    /// the gateway refused it as expired or replayed).
    pub fn forget(&self, subject: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(subject);
        }
    }
}
