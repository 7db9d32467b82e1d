//! The auditors' registry (`audit.auditors`, deploy/audit/auditors.toml):
//! who may consult the ledger, for which purposes, as whom on NATS, and how
//! much of it (docs/decisions/0021-a-rogue-agency-gets-nothing.md).
//!
//! - `[purposes]`: the purposes a consultation may state.
//! - `[[auditor]]`: `id`, `name`, `keys` (the Ed25519 keys their
//!   consultation tokens are signed with), `nats_keys` (the NKeys they log in
//!   to NATS with, through the gateway's auth callout: each auditor is their
//!   own NATS user), and an optional `[auditor.scope]`: the agencies, cases
//!   and time range they may read. Without a scope, the whole ledger.
//!
//! The audit service enforces the scope (a scoped auditor's records are
//! read for them and filtered); the gateway's callout gives a scoped auditor
//! no right to read LEDGER itself.

use liaison_core::AgencyId;
use liaison_core::tokens::KeySpec;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The registry as read.
#[derive(Debug, Clone)]
pub struct Auditors {
    pub purposes: BTreeMap<String, String>,
    pub auditors: Vec<Auditor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    purposes: BTreeMap<String, String>,
    auditor: Vec<Auditor>,
}

/// One auditor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auditor {
    pub id: AgencyId,
    /// Shown to people reading the file.
    pub name: String,
    pub keys: Vec<KeySpec>,
    /// Their NATS NKeys (public, `U...`).
    #[serde(default)]
    pub nats_keys: Vec<String>,
    /// What they may read; `None`: the whole ledger.
    #[serde(default)]
    pub scope: Option<Scope>,
}

/// The part of the ledger an auditor may read: records where one of
/// `agencies` acted or received (any, if empty), about one of `cases` (any,
/// if empty), within `since`..`until` (RFC 3339; open if absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub agencies: Vec<AgencyId>,
    #[serde(default)]
    pub cases: Vec<String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
}

impl Scope {
    /// The scope in words, for the consultation record (ids and times only).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.agencies.is_empty() {
            let ids: Vec<&str> = self.agencies.iter().map(AgencyId::as_str).collect();
            parts.push(format!("agencies {}", ids.join(",")));
        }
        if !self.cases.is_empty() {
            parts.push(format!("cases {}", self.cases.join(",")));
        }
        if let Some(since) = &self.since {
            parts.push(format!("since {since}"));
        }
        if let Some(until) = &self.until {
            parts.push(format!("until {until}"));
        }
        parts.join(", ")
    }

    fn check(&self) -> Result<(), String> {
        for (what, time) in [("since", &self.since), ("until", &self.until)] {
            if let Some(t) = time {
                t.parse::<prost_types::Timestamp>()
                    .map_err(|e| format!("scope {what} {t:?} is not an RFC 3339 time: {e}"))?;
            }
        }
        if let Some(bad) = self
            .cases
            .iter()
            .find(|c| c.is_empty() || c.len() > 128 || c.chars().any(char::is_whitespace))
        {
            return Err(format!("scope case {bad:?} is not a case id"));
        }
        if self.agencies.is_empty()
            && self.cases.is_empty()
            && self.since.is_none()
            && self.until.is_none()
        {
            return Err(
                "an empty [auditor.scope] reads the whole ledger: leave it out to say so".into(),
            );
        }
        Ok(())
    }
}

impl Auditors {
    /// Reads and checks the registry at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("auditors {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("auditors {}: {e}", path.display()))
    }

    /// Parses and checks a registry's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(bad) = file.purposes.keys().find(|p| AgencyId::parse(p).is_err()) {
            return Err(format!(
                "purpose {bad:?} must be 1 to 64 of a-z, 0-9 and '-'"
            ));
        }
        if file.purposes.is_empty() {
            return Err("no [purposes]: list the purposes the ledger may be consulted for".into());
        }
        let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
        for auditor in &file.auditor {
            for key in &auditor.nats_keys {
                if !key.starts_with('U') || nkeys::KeyPair::from_public_key(key).is_err() {
                    return Err(format!(
                        "auditor {}: nats_keys entry {key:?} is not a user NKey (U...; \
                         `liaison keys gen-nats` makes one)",
                        auditor.id
                    ));
                }
                if let Some(other) = owners.insert(key, auditor.id.as_str()) {
                    return Err(format!(
                        "auditor {}: NKey {key} is also {other}'s",
                        auditor.id
                    ));
                }
            }
            if let Some(scope) = &auditor.scope {
                scope
                    .check()
                    .map_err(|e| format!("auditor {}: {e}", auditor.id))?;
            }
        }
        if let Some(dup) = file
            .auditor
            .iter()
            .enumerate()
            .find(|(i, a)| file.auditor[..*i].iter().any(|b| b.id == a.id))
        {
            return Err(format!("auditor {} is listed twice", dup.1.id));
        }
        Ok(Self {
            purposes: file.purposes,
            auditors: file.auditor,
        })
    }

    /// The auditor `id`.
    pub fn get(&self, id: &str) -> Option<&Auditor> {
        self.auditors.iter().find(|a| a.id.as_str() == id)
    }

    /// The auditor whose NATS NKey `nkey` is.
    pub fn nats_key_owner(&self, nkey: &str) -> Option<&Auditor> {
        self.auditors
            .iter()
            .find(|a| a.nats_keys.iter().any(|k| k == nkey))
    }
}

/// An auditor's NATS user name (`auditor_ID`), and so its inbox
/// (`_INBOX_auditor_ID`): agency ids never hold `_`, so no auditor's inbox
/// is an agency's.
pub fn nats_name(id: &AgencyId) -> String {
    format!("auditor_{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "UDN6ANJU6VT7G3JQEINYD2LUN2NW4OHW27JXCY5WVUPREEVFNQJ6NLXN";

    fn registry(auditor: &str) -> String {
        format!(
            "[purposes]\nlog-review = \"s.62\"\n\n[[auditor]]\nid = \"dpo\"\nname = \"DPO\"\n\
             keys = []\n{auditor}"
        )
    }

    #[test]
    fn an_auditor_has_nkeys_and_a_scope_checked_when_read() {
        let ok = Auditors::parse(&registry(&format!(
            "nats_keys = [\"{KEY}\"]\n[auditor.scope]\nagencies = [\"police\"]\nsince = \"2026-01-01T00:00:00Z\"\n"
        )))
        .unwrap_or_else(|e| panic!("{e}"));
        let dpo = ok.nats_key_owner(KEY).unwrap_or_else(|| panic!("owner"));
        assert_eq!(dpo.id.as_str(), "dpo");
        let scope = dpo.scope.clone().unwrap_or_default();
        assert_eq!(
            scope.describe(),
            "agencies police, since 2026-01-01T00:00:00Z"
        );
        assert_eq!(nats_name(&dpo.id), "auditor_dpo");

        for (bad, says) in [
            ("nats_keys = [\"ANOTANKEY\"]\n", "is not a user NKey"),
            (
                "[auditor.scope]\nsince = \"yesterday\"\n",
                "not an RFC 3339 time",
            ),
            ("[auditor.scope]\n", "reads the whole ledger"),
            ("[auditor.scope]\nagencies = [\"Police!\"]\n", "invalid"),
        ] {
            let e = Auditors::parse(&registry(bad)).err().unwrap_or_default();
            assert!(
                e.contains(says) || e.to_lowercase().contains(says),
                "{bad}: {e}"
            );
        }
    }
}
