//! Token replay detection shared by every gateway replica. Each gateway
//! verifies tokens and remembers them (`liaison_core::tokens`); a second
//! replica behind the same queue group would not know a `jti` the first
//! one saw, so a token with a reused `jti` (a replay) could pass there.
//! The first time a replica verifies a token, it binds the token's `jti` to
//! the token in the KV bucket `JTI` with a create-only write (key: the
//! issuer and a digest of the `jti`; value: a digest of the token). The
//! write exists already with the same token: the token was seen by another
//! replica, and is fine to reuse until it expires; with another token: a
//! replay, refused everywhere. One write per token per replica, never per
//! envelope. If the bucket cannot be reached the token is refused
//! `unavailable` (retry): a replay is never let through for want of a check.

use crate::refusal::Refusal;
use liaison_core::{AgencyId, NatsContext as _};
use sha2::{Digest as _, Sha256};

pub use liaison_runtime::provision::{JTI_BUCKET as BUCKET, JTI_KEEP as KEEP};

/// The bindings, as one gateway reaches them.
pub struct Replays {
    kv: async_nats::jetstream::kv::Store,
}

fn key(issuer: &AgencyId, jti: &str) -> String {
    let digest = Sha256::digest(jti.as_bytes());
    format!("{issuer}.{}", hex::encode(&digest[..16]))
}

impl Replays {
    /// Binds to the bucket, refusing a configuration whose tokens could
    /// outlive their bindings.
    pub async fn open(
        js: &async_nats::jetstream::Context,
        max_token_lifetime_secs: u64,
        clock_skew_secs: u64,
    ) -> Result<Self, crate::GatewayError> {
        let longest = max_token_lifetime_secs.saturating_add(2 * clock_skew_secs);
        if longest > KEEP.as_secs() {
            return Err(crate::GatewayError::Keys(format!(
                "gateway.max_token_lifetime_secs + 2 × clock_skew_secs is {longest} s: at most {} s, \
                 how long token ids are kept to catch replays",
                KEEP.as_secs()
            )));
        }
        let kv = js
            .get_key_value(BUCKET)
            .await
            .nats(format!("KV bucket {BUCKET}"))?;
        Ok(Self { kv })
    }

    /// Binds `jti` of `issuer` to `token`, or finds it bound to it already;
    /// a `jti` bound to another token is a replay.
    pub async fn claim(&self, issuer: &AgencyId, jti: &str, token: &str) -> Result<(), Refusal> {
        let key = key(issuer, jti);
        let digest = hex::encode(Sha256::digest(token.as_bytes()));
        let unavailable = |e: String| {
            Refusal::Unavailable(format!("the shared replay check is unavailable: {e}"))
        };
        match self.kv.create(&key, digest.clone().into()).await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    async_nats::jetstream::kv::CreateErrorKind::AlreadyExists
                ) =>
            {
                let bound = self
                    .kv
                    .get(&key)
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                match bound {
                    Some(bound) if bound.as_ref() == digest.as_bytes() => Ok(()),
                    _ => Err(Refusal::TokenReplayed(jti.to_owned())),
                }
            }
            Err(e) => Err(unavailable(e.to_string())),
        }
    }
}
