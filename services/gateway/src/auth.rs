//! Authentication of agency tokens: each agency signs short-lived JWTs with its
//! own key (EdDSA or ES256, named by `kid`), verified against the registry by
//! [`liaison_core::tokens`]; `iss` must be the agency whose ingress subject
//! carried the message. This module maps token errors onto refusals.

use crate::refusal::Refusal;
use liaison_core::AgencyId;
use liaison_core::tokens::{TokenError, TokenVerifier};
use liaison_runtime::config::GatewayConfig;
use liaison_runtime::registry::Registry;

pub use liaison_core::tokens::Claims;

/// Verifies agency tokens against the registry's keys.
pub struct Verifier(TokenVerifier);

impl Verifier {
    pub fn new(registry: &Registry, config: &GatewayConfig) -> Result<Self, String> {
        let keys = registry
            .agencies()
            .map(|a| (a.id.as_str(), a.keys.as_slice()));
        TokenVerifier::new(
            keys,
            &config.audience,
            config.clock_skew_secs,
            config.max_token_lifetime_secs,
        )
        .map(Self)
    }

    /// Verifies `token` as sent by `agency`, returning its claims.
    pub fn verify(&self, agency: &AgencyId, token: &str, now: u64) -> Result<Claims, Refusal> {
        self.verify_fresh(agency, token, now)
            .map(|(claims, _)| claims)
    }

    /// [`verify`](Self::verify), saying whether this verifier saw the token
    /// for the first time (so its `jti` is to be bound where every gateway
    /// replica sees it: [`crate::replay`]).
    pub fn verify_fresh(
        &self,
        agency: &AgencyId,
        token: &str,
        now: u64,
    ) -> Result<(Claims, bool), Refusal> {
        self.0
            .verify_fresh(agency.as_str(), token, now)
            .map_err(|e| match e {
                TokenError::UnknownIssuer(id) => Refusal::UnknownAgency(id),
                TokenError::BadSignature => Refusal::BadSignature(
                    "it does not verify with the agency's registered key".into(),
                ),
                TokenError::Expired => Refusal::TokenExpired,
                TokenError::Replayed(jti) => Refusal::TokenReplayed(jti),
                TokenError::Invalid(reason) => Refusal::BadToken(reason),
            })
    }

    /// Forgets `token`: a replay found by the shared check.
    pub fn forget(&self, agency: &AgencyId, token: &str) {
        self.0.forget(agency.as_str(), token);
    }
}
