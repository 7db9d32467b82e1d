//! Case participation: which agencies take part in a case, kept in the
//! JetStream KV bucket [`BUCKET`] under the case id. The cases service writes
//! it (the owner adds and removes participants within what the ISA allows);
//! the gateway reads it for need to know, when a case update is sent.

use crate::error::NatsContext as _;
use crate::ids::{AgencyId, IdError};
use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};

/// KV bucket of case participation.
pub const BUCKET: &str = "PARTICIPATION";
/// Largest participation value read (bounded before decoding).
const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Who takes part in one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Participation {
    /// The agency that owns the case.
    pub owner: AgencyId,
    /// Every participating agency, the owner included.
    pub participants: Vec<AgencyId>,
    /// Where the case is in its lifecycle (a `liaison.v1.CaseStatus` number;
    /// 0 when the case was recorded by hand, without the cases service).
    #[serde(default)]
    pub status: i32,
}

/// A case id: 1 to 64 of A-Z, a-z, 0-9, '_' and '-' (it is a KV key).
pub fn validate_case_id(value: &str) -> Result<(), IdError> {
    let fail = |reason| IdError {
        what: "case id",
        value: value.chars().take(72).collect(),
        reason,
    };
    if value.is_empty() {
        return Err(fail("it is empty"));
    }
    if value.len() > 64 {
        return Err(fail("it is longer than 64 characters"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        return Err(fail("only A-Z, a-z, 0-9, '_' and '-' are allowed"));
    }
    Ok(())
}

/// Why participation could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ParticipationError {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error("participation store")]
    Store(#[from] crate::error::NatsError),
    #[error("participation of case {case} cannot be encoded")]
    Encode {
        case: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("participation of case {case}: {reason}")]
    Invalid { case: String, reason: String },
}

/// The bucket's configuration (replicas as the streams').
pub fn bucket_config(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: BUCKET.to_owned(),
        description: "Agencies participating in each case (need to know)".to_owned(),
        history: 10,
        num_replicas: replicas.max(1),
        max_value_size: MAX_VALUE_BYTES as i32,
        ..Default::default()
    }
}

/// The participation store.
#[derive(Clone)]
pub struct Store(kv::Store);

impl Store {
    /// Binds to the (provisioned) bucket.
    pub async fn open(js: &jetstream::Context) -> Result<Self, ParticipationError> {
        js.get_key_value(BUCKET)
            .await
            .map(Self)
            .nats(format!("KV bucket {BUCKET}"))
            .map_err(ParticipationError::from)
    }

    /// Who takes part in `case`; `None` if the case is not known.
    pub async fn get(&self, case: &str) -> Result<Option<Participation>, ParticipationError> {
        validate_case_id(case)?;
        let Some(value) = self
            .0
            .get(case)
            .await
            .nats(format!("get from KV bucket {BUCKET}"))?
        else {
            return Ok(None);
        };
        if value.len() > MAX_VALUE_BYTES {
            return Err(ParticipationError::Invalid {
                case: case.to_owned(),
                reason: format!("value is {} bytes", value.len()),
            });
        }
        serde_json::from_slice(&value)
            .map(Some)
            .map_err(|e| ParticipationError::Invalid {
                case: case.to_owned(),
                reason: e.to_string(),
            })
    }

    /// Records who takes part in `case` (the cases service; operators in tests and demos).
    pub async fn put(
        &self,
        case: &str,
        participation: &Participation,
    ) -> Result<(), ParticipationError> {
        validate_case_id(case)?;
        let value =
            serde_json::to_vec(participation).map_err(|source| ParticipationError::Encode {
                case: case.to_owned(),
                source,
            })?;
        self.0
            .put(case, value.into())
            .await
            .map(|_| ())
            .nats(format!("put into KV bucket {BUCKET}"))
            .map_err(ParticipationError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_are_safe_kv_keys() {
        for good in ["CASE-0001", "c_1", "a"] {
            assert!(validate_case_id(good).is_ok(), "{good}");
        }
        for bad in ["", "CASE.1", "CASE 1", "CASE/1", "*", ">", &"x".repeat(65)] {
            assert!(validate_case_id(bad).is_err(), "{bad:?}");
        }
    }
}
