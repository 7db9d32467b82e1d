//! Validated identifiers. An agency id is the only outside input that ever
//! becomes part of a NATS subject, so it is checked here, once, before use.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest agency id accepted.
pub const MAX_AGENCY_ID_LEN: usize = 48;
/// Longest envelope id accepted.
pub const MAX_ENVELOPE_ID_LEN: usize = 64;

/// An identifier that failed validation, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct IdError {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// An agency id: 1–48 of `[a-z0-9-]`, starting and ending with a letter or digit.
/// Shared, not copied, when cloned: a national registry's indexes and every
/// decision hold the same ids many times over.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgencyId(std::sync::Arc<str>);

impl AgencyId {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let fail = |reason| IdError {
            what: "agency id",
            // Bound what we echo back: the value came from outside.
            value: value.chars().take(MAX_AGENCY_ID_LEN + 8).collect(),
            reason,
        };
        if value.is_empty() {
            return Err(fail("it is empty"));
        }
        if value.len() > MAX_AGENCY_ID_LEN {
            return Err(fail("it is longer than 48 characters"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(fail("only a-z, 0-9 and '-' are allowed"));
        }
        if value.starts_with('-') || value.ends_with('-') {
            return Err(fail("it must start and end with a letter or digit"));
        }
        Ok(Self(value.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id built by this crate from literals known to be valid.
    pub(crate) fn trusted(value: String) -> Self {
        debug_assert!(Self::parse(&value).is_ok(), "{value}");
        Self(value.into())
    }
}

impl TryFrom<String> for AgencyId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AgencyId> for String {
    fn from(id: AgencyId) -> String {
        id.0.to_string()
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The envelope id of an event Liaison raises, from what caused it:
/// `prefix:part:part…` when that fits the envelope id rules (64
/// characters), else `prefix:h-` and a hash of it (the same every time, so
/// an event raised again is a duplicate). Parts must be envelope or case ids.
pub fn event_id(prefix: &str, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let readable = format!("{prefix}:{}", parts.join(":"));
    if readable.len() <= MAX_ENVELOPE_ID_LEN {
        return readable;
    }
    format!(
        "{prefix}:h-{}",
        hex::encode(&Sha256::digest(readable.as_bytes())[..20])
    )
}

/// Checks an envelope id: 1–64 of `[A-Za-z0-9._:-]` (a UUID fits). It is used
/// as the JetStream de-duplication key and in audit records.
/// An envelope's identity across senders: `SENDER/ID`. Envelope ids are
/// each sender's own (ids may not hold '/'), so the stores de-duplicate,
/// and the ledger names records, by this (docs/wire-contract.md).
pub fn scoped_id(sender: &str, id: &str) -> String {
    format!("{sender}/{id}")
}

/// The envelope id an `in_reply_to` names (`ID`, or `SENDER/ID`).
pub fn replied_id(in_reply_to: &str) -> &str {
    in_reply_to
        .split_once('/')
        .map_or(in_reply_to, |(_, id)| id)
}

pub fn validate_envelope_id(value: &str) -> Result<(), IdError> {
    let fail = |reason| IdError {
        what: "envelope id",
        value: value.chars().take(MAX_ENVELOPE_ID_LEN + 8).collect(),
        reason,
    };
    if value.is_empty() {
        return Err(fail("it is empty"));
    }
    if value.len() > MAX_ENVELOPE_ID_LEN {
        return Err(fail("it is longer than 64 characters"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(fail(
            "only A-Z, a-z, 0-9, '.', '_', ':' and '-' are allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_ids_that_could_change_a_subject_are_refused() {
        for bad in [
            "",
            "Police",
            "police.*",
            "police.>",
            "a b",
            "-x",
            "x-",
            "é",
            &"a".repeat(49),
        ] {
            assert!(AgencyId::parse(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["police", "school-a", "nhs-trust-7", "a"] {
            assert_eq!(
                AgencyId::parse(good).map(|a| a.to_string()),
                Ok(good.to_owned())
            );
        }
    }

    #[test]
    fn envelope_ids_are_bounded() {
        assert!(validate_envelope_id("3f2a6c1e-8d2b-4b1e-9c1a-0d6c8e7f5a10").is_ok());
        assert!(validate_envelope_id("").is_err());
        assert!(validate_envelope_id("a b").is_err());
        assert!(validate_envelope_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn event_ids_fit_whatever_caused_them() {
        assert_eq!(
            event_id("priority", &["cause-1", "CASE-1"]),
            "priority:cause-1:CASE-1"
        );
        let long = "c".repeat(64);
        let id = event_id("priority", &[&long, "CASE-1"]);
        assert!(
            id.starts_with("priority:h-") && validate_envelope_id(&id).is_ok(),
            "{id}"
        );
        assert_eq!(id, event_id("priority", &[&long, "CASE-1"]));
        assert_ne!(id, event_id("priority", &[&long, "CASE-2"]));
    }
}
