//! Authentication of agency tokens. Each agency signs short-lived JWTs with its
//! own Ed25519 key; the gateway verifies them against the key in the registry.
//! The algorithm is pinned by the key (EdDSA only: never `none`, never HMAC),
//! `iss` must be the agency whose ingress subject carried the message, and
//! `aud`, `exp`, `nbf`, `iat` and the token lifetime are checked.

use crate::refusal::Refusal;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use liaison_kit::AgencyId;
use liaison_kit::config::GatewayConfig;
use liaison_kit::registry::Registry;
use serde::Deserialize;
use std::collections::HashMap;

/// The claims an agency token must carry.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// The agency (must equal the ingress subject's agency).
    pub iss: String,
    /// The person or system inside the agency.
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default)]
    pub nbf: Option<u64>,
    pub jti: String,
}

/// Verifies agency tokens against the registry's keys.
pub struct Verifier {
    keys: HashMap<AgencyId, DecodingKey>,
    audience: String,
    leeway: u64,
    max_lifetime: u64,
}

impl Verifier {
    pub fn new(registry: &Registry, config: &GatewayConfig) -> Result<Self, String> {
        let mut keys = HashMap::new();
        for agency in registry.agencies() {
            let key = DecodingKey::from_ed_components(&agency.public_key)
                .map_err(|e| format!("agency {}: public key: {e}", agency.id))?;
            keys.insert(agency.id.clone(), key);
        }
        Ok(Self {
            keys,
            audience: config.audience.clone(),
            leeway: config.clock_skew_secs,
            max_lifetime: config.max_token_lifetime_secs,
        })
    }

    /// Verifies `token` as sent by `agency`, returning its claims.
    pub fn verify(&self, agency: &AgencyId, token: &str, now: u64) -> Result<Claims, Refusal> {
        let key = self
            .keys
            .get(agency)
            .ok_or_else(|| Refusal::UnknownAgency(agency.to_string()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[agency.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        // Times are checked below against the injected clock `now`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = decode::<Claims>(token, key, &validation)
            .map_err(|e| token_refusal(e.kind(), agency, &self.audience))?
            .claims;
        if claims.exp.saturating_add(self.leeway) <= now {
            return Err(Refusal::TokenExpired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + self.leeway) {
            return Err(Refusal::BadToken("token is not valid yet (nbf)".into()));
        }
        if claims.iat > now + self.leeway {
            return Err(Refusal::BadToken("iat is in the future".into()));
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime {
            return Err(Refusal::BadToken(format!(
                "token lifetime exp-iat is {} s, longer than the {} s allowed",
                claims.exp.saturating_sub(claims.iat),
                self.max_lifetime
            )));
        }
        if claims.sub.is_empty() || claims.jti.is_empty() {
            return Err(Refusal::BadToken("sub and jti must not be empty".into()));
        }
        Ok(claims)
    }
}

fn token_refusal(kind: &ErrorKind, agency: &AgencyId, audience: &str) -> Refusal {
    match kind {
        ErrorKind::InvalidSignature => Refusal::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            Refusal::BadToken("algorithm must be EdDSA".into())
        }
        ErrorKind::InvalidIssuer => Refusal::BadToken(format!("iss must be {agency:?}")),
        ErrorKind::InvalidAudience => Refusal::BadToken(format!("aud must be {audience:?}")),
        ErrorKind::MissingRequiredClaim(claim) => {
            Refusal::BadToken(format!("claim {claim:?} is missing"))
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            Refusal::BadToken(format!("claim {claim:?} has the wrong type"))
        }
        ErrorKind::Json(e) => Refusal::BadToken(format!("claims: {e}")),
        other => Refusal::BadToken(format!("{other:?}")),
    }
}
