//! Verifying the short-lived JWTs that principals (agencies, auditors) sign
//! with their own Ed25519 keys, as RFC 8725 asks: the algorithm is pinned by
//! the key (EdDSA only — never `none`, never HMAC), `iss` must be the principal
//! the caller expects, and `aud`, `exp`, `nbf`, `iat` (with a bounded clock
//! skew, against an injected clock) and the token's lifetime are checked.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;
use std::collections::HashMap;

/// The claims a token must carry.
#[derive(Debug, Clone, Deserialize)]
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
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verifies tokens against registered public keys.
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    audience: String,
    leeway: u64,
    max_lifetime: u64,
}

impl TokenVerifier {
    /// `keys`: (principal id, base64url Ed25519 public key).
    pub fn new<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
        audience: &str,
        leeway: u64,
        max_lifetime: u64,
    ) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (id, public_key) in keys {
            let key = DecodingKey::from_ed_components(public_key)
                .map_err(|e| format!("{id}: public key: {e}"))?;
            map.insert(id.to_owned(), key);
        }
        Ok(Self {
            keys: map,
            audience: audience.to_owned(),
            leeway,
            max_lifetime,
        })
    }

    /// Verifies `token` as issued by `issuer` at time `now` (Unix seconds).
    pub fn verify(&self, issuer: &str, token: &str, now: u64) -> Result<Claims, TokenError> {
        let key = self
            .keys
            .get(issuer)
            .ok_or_else(|| TokenError::UnknownIssuer(issuer.to_owned()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        // Times are checked below against the injected clock `now`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = decode::<Claims>(token, key, &validation)
            .map_err(|e| refusal(e.kind(), issuer, &self.audience))?
            .claims;
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
        if claims.sub.is_empty() || claims.jti.is_empty() {
            return invalid("sub and jti must not be empty".into());
        }
        Ok(claims)
    }
}

fn refusal(kind: &ErrorKind, issuer: &str, audience: &str) -> TokenError {
    let invalid = |reason: String| TokenError::Invalid(reason);
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            invalid("algorithm must be EdDSA".into())
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
