//! Secrets (NATS passwords) in a type that keeps them out of logs: its
//! `Debug` prints `<redacted>`, it has no `Display`, and the value is read
//! only by asking for it by name ([`Secret::expose`]), so a `{:?}` of a
//! configuration or of credentials never shows one.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret string. Serialised as the plain string (it is written only to
/// files the operator keeps private, such as `nats.secrets`).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must use it (a NATS
    /// connection, a server configuration the operator keeps private).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::new("p0123456789abcdef");
        let shown = format!("{secret:?} {:?}", Some(&secret));
        assert!(!shown.contains("0123456789"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(secret.expose(), "p0123456789abcdef");
        assert_eq!(format!("{:?}", Secret::default()), "<empty>");
    }

    #[test]
    fn serialised_as_the_plain_string() -> Result<(), serde_json::Error> {
        let secret: Secret = serde_json::from_str("\"p42\"")?;
        assert_eq!(secret.expose(), "p42");
        assert_eq!(serde_json::to_string(&secret)?, "\"p42\"");
        Ok(())
    }
}
