//! Changes to the live registry (docs/decisions/0020-live-membership.md):
//! an agency added, updated or removed, a key added or retired, each on a
//! named operator's signed request ([`crate::membership`] checks the
//! operator and the reason). Each change is checked with the registry
//! file's own rules ([`Agency::check`], and against the whole registry),
//! recorded in the ledger (operation MEMBERSHIP_CHANGE: who, what changed,
//! why, when) and then written to the KV bucket `REGISTRY` by
//! compare-and-set, so two operators' changes to one agency never overwrite
//! each other. Every gateway and service follows the bucket
//! ([`crate::live`]).

use crate::Shared;
use async_nats::jetstream::kv;
use liaison_core::AgencyId;
use liaison_core::tokens::{KeySpec, check_keys};
use liaison_proto::v1::{AuditRecord, Decision, Operation};
use liaison_runtime::live_registry::{self, BUCKET};
use liaison_runtime::registry::{Agency, Registry};

/// The registry changes an operator may ask for.
pub const ACTIONS: [&str; 5] = ["add", "update", "remove", "add-key", "retire-key"];

/// What was asked, checked as far as the request alone allows.
pub struct Change<'a> {
    pub action: &'a str,
    pub agency: AgencyId,
    /// `add`, `update`: one `[[agency]]` block; `add-key`: one key entry.
    pub entry: Option<&'a str>,
    /// `retire-key`: the key's id.
    pub kid: Option<&'a str>,
    pub reason: &'a str,
    pub operator: &'a str,
}

/// Makes `change`: checked, recorded, written. Returns what changed, in words.
pub async fn make(shared: &Shared, change: Change<'_>) -> Result<String, String> {
    let store = shared
        .js
        .get_key_value(BUCKET)
        .await
        .map_err(|e| format!("the live registry (KV bucket {BUCKET}): {e}"))?;
    let key = change.agency.as_str();
    let current = store
        .entry(key)
        .await
        .map_err(|e| format!("the live registry entry {key}: {e}"))?
        .filter(|e| e.operation == kv::Operation::Put);
    let (before, revision) = match &current {
        Some(entry) => (
            Some(live_registry::parse_entry(key, &entry.value)?),
            entry.revision,
        ),
        None => (None, 0),
    };
    let after = next(&change, before.as_ref())?;
    let registry = shared.registry();
    if let Some(agency) = &after {
        agency.check()?;
        check_in(&registry, agency)?;
    }
    let mut what = describe(before.as_ref(), after.as_ref());
    // Removed: what becomes of the copies held for it.
    let departure = if after.is_none() {
        let held = crate::departures::held(shared, &change.agency).await?;
        let (copies, departure) = crate::departures::departure(shared, held, change.operator);
        what = format!("{what}; {copies}");
        departure
    } else {
        None
    };
    let code = match change.action {
        "add" => "agency_added",
        "update" => "agency_updated",
        "remove" => "agency_removed",
        "add-key" => "key_added",
        _ => "key_retired",
    };
    // Recorded before it takes effect: no change without its record.
    shared
        .recorder
        .publish(&record(&change, code, &what))
        .await
        .map_err(|e| format!("the change's ledger record could not be stored: {e}"))?;
    let written = match (&after, revision) {
        (Some(agency), 0) => store
            .create(key, agency.to_toml().into())
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        (Some(agency), revision) => store
            .update(key, agency.to_toml().into(), revision)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        (None, revision) => store
            .delete_expect_revision(key, Some(revision))
            .await
            .map_err(|e| e.to_string()),
    };
    written.map_err(|e| {
        format!(
            "{key} changed while this change was made ({e}); it is recorded as asked but not in force: look at `liaison agencies show {key}` and ask again"
        )
    })?;
    tracing::info!(agency = %change.agency, operator = %change.operator, code, "Live registry changed");
    match (&departure, change.action) {
        (Some(departure), _) => crate::departures::keep(shared, &change.agency, departure).await,
        (None, "add") => crate::departures::forget(shared, &change.agency).await,
        _ => {}
    }
    // Removed, or a NATS key taken away: its open connections are closed
    // (reconnections with a key still registered are let in again).
    let kept_keys = |b: &Agency| {
        after
            .as_ref()
            .is_some_and(|a| b.nats_keys.iter().all(|k| a.nats_keys.contains(k)))
    };
    if before.as_ref().is_some_and(|b| !kept_keys(b)) {
        shared.close_connections(&change.agency).await;
    }
    Ok(what)
}

/// The entry after `change`, from the entry before it (`None`: removed).
fn next(change: &Change<'_>, before: Option<&Agency>) -> Result<Option<Agency>, String> {
    let id = &change.agency;
    let entry = || {
        change
            .entry
            .ok_or_else(|| format!("{}: give the entry (a TOML file)", change.action))
    };
    match (change.action, before) {
        ("add", Some(_)) => Err(format!(
            "{id} is already registered (change it with `liaison agencies update`)"
        )),
        ("add", None) => one_agency(entry()?, id).map(Some),
        (_, None) => Err(format!("{id} is not a registered agency")),
        ("update", Some(before)) => {
            let after = one_agency(entry()?, id)?;
            if &after == before {
                return Err(format!(
                    "the entry for {id} is the one registered: nothing to change"
                ));
            }
            Ok(Some(after))
        }
        ("remove", Some(_)) => Ok(None),
        ("add-key", Some(before)) => {
            let key = key_entry(entry()?)?;
            let mut after = before.clone();
            after.keys.push(key);
            check_keys(&after.keys).map_err(|e| format!("agency {id}: {e}"))?;
            Ok(Some(after))
        }
        ("retire-key", Some(before)) => {
            let kid = change.kid.ok_or("retire-key: give the key's kid")?;
            let mut after = before.clone();
            after
                .keys
                .retain(|k| k.key_id().ok().as_deref() != Some(kid));
            if after.keys.len() == before.keys.len() {
                return Err(format!(
                    "{:?} is not a registered key of {id} (its keys: {})",
                    kid.chars().take(64).collect::<String>(),
                    kids(before).join(", ")
                ));
            }
            if after.keys.is_empty() {
                return Err(format!(
                    "{kid} is {id}'s only key: add its new key first (`liaison agencies keys add`), or remove the agency"
                ));
            }
            Ok(Some(after))
        }
        (other, Some(_)) => Err(format!("unknown registry change {other:?}")),
    }
}

/// The one `[[agency]]` block in `text`, which must be `id`'s.
fn one_agency(text: &str, id: &AgencyId) -> Result<Agency, String> {
    let agency = Registry::parse_one(text)?;
    if &agency.id != id {
        return Err(format!("the entry is for {}, not {id}", agency.id));
    }
    Ok(agency)
}

/// One key entry: its fields (`public_key = ...`, optionally `alg`, `kid`,
/// `not_before`, `not_after`), bare or under `[[agency.keys]]` / `[[keys]]`.
pub fn key_entry(text: &str) -> Result<KeySpec, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Keys {
        keys: Vec<KeySpec>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nested {
        agency: Keys,
    }
    let bare = toml::from_str::<KeySpec>(text);
    let keys = bare.as_ref().err().and_then(|_| {
        toml::from_str::<Keys>(text)
            .map(|k| k.keys)
            .or_else(|_| toml::from_str::<Nested>(text).map(|n| n.agency.keys))
            .ok()
    });
    match (bare, keys) {
        (Ok(key), _) => Ok(key),
        (Err(_), Some(mut keys)) if keys.len() == 1 => Ok(keys.remove(0)),
        (Err(_), Some(keys)) => Err(format!("the key entry holds {} keys: give one", keys.len())),
        (Err(e), None) => Err(format!("the key entry: {e}")),
    }
}

/// What only the whole registry can show: a NATS key registered to another
/// agency.
fn check_in(registry: &Registry, agency: &Agency) -> Result<(), String> {
    for key in &agency.nats_keys {
        if let Some(owner) = registry.nats_key_owner(key)
            && owner != &agency.id
        {
            return Err(format!(
                "agency {}: NATS key {key} is already registered to {owner}",
                agency.id
            ));
        }
    }
    Ok(())
}

fn kids(agency: &Agency) -> Vec<String> {
    agency.keys.iter().filter_map(|k| k.key_id().ok()).collect()
}

/// What changed from `before` to `after`, field by field, in words (public
/// keys named by their ids; a registry holds no personal data).
pub fn describe(before: Option<&Agency>, after: Option<&Agency>) -> String {
    let fields = |a: &Agency| -> [(&'static str, String); 12] {
        [
            ("name", a.name.clone()),
            ("kind", a.kind.as_str().to_owned()),
            ("clearance", format!("{:?}", a.clearance)),
            ("sector", a.sector.clone().unwrap_or_default()),
            ("region", a.region.clone().unwrap_or_default()),
            ("areas", a.areas.join(",")),
            ("caveats", a.caveats.join(",")),
            ("rate_per_sec", a.rate_per_sec.to_string()),
            ("burst", a.burst.to_string()),
            (
                "max_envelope_bytes",
                a.max_envelope_bytes
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ),
            ("nats_keys", a.nats_keys.join(",")),
            ("keys", kids(a).join(",")),
        ]
    };
    match (before, after) {
        (None, Some(a)) => format!(
            "added {} ({}, {:?}, areas {}; {} key(s), {} NATS key(s))",
            a.id,
            a.kind.as_str(),
            a.clearance,
            a.areas.join(","),
            a.keys.len(),
            a.nats_keys.len()
        ),
        (Some(b), None) => format!("removed {}", b.id),
        (Some(b), Some(a)) => {
            let changed: Vec<String> = fields(b)
                .into_iter()
                .zip(fields(a))
                .filter(|(old, new)| old.1 != new.1)
                .map(|((field, old), (_, new))| {
                    if field == "keys" || field == "nats_keys" {
                        let old: Vec<&str> = old.split(',').filter(|s| !s.is_empty()).collect();
                        let new: Vec<&str> = new.split(',').filter(|s| !s.is_empty()).collect();
                        let added: Vec<&str> =
                            new.iter().filter(|k| !old.contains(k)).copied().collect();
                        let gone: Vec<&str> =
                            old.iter().filter(|k| !new.contains(k)).copied().collect();
                        format!("{field} +[{}] -[{}]", added.join(","), gone.join(","))
                    } else {
                        format!("{field} {old:?} -> {new:?}")
                    }
                })
                .collect();
            if changed.is_empty() {
                format!("{}: key validity dates changed", a.id)
            } else {
                format!("{}: {}", a.id, changed.join("; "))
            }
        }
        (None, None) => String::new(),
    }
}

/// The ledger record of a registry change.
fn record(change: &Change<'_>, code: &str, what: &str) -> AuditRecord {
    let at = liaison_core::time::timestamp_now();
    AuditRecord {
        record_id: format!(
            "registry:{}:{code}:{}.{}",
            change.agency, at.seconds, at.nanos
        ),
        operation: Operation::MembershipChange as i32,
        decision: Decision::Accepted as i32,
        code: code.to_owned(),
        reason: format!("{what} — {}", change.reason)
            .chars()
            .take(2000)
            .collect(),
        agency: change.agency.to_string(),
        author: change.operator.to_owned(),
        time: Some(at),
        service: "gateway".into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn a_key_entry_is_read_bare_or_as_a_block() {
        for text in [
            format!("public_key = \"{KEY}\"\n"),
            format!("[[keys]]\npublic_key = \"{KEY}\"\n"),
            format!("[[agency.keys]]\npublic_key = \"{KEY}\"\n"),
        ] {
            let key = key_entry(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(key.public_key, KEY);
        }
        let two = format!("[[keys]]\npublic_key = \"{KEY}\"\n[[keys]]\npublic_key = \"{KEY}\"\n");
        assert!(key_entry(&two).is_err_and(|e| e.contains("holds 2 keys")));
        assert!(key_entry("colour = \"red\"\n").is_err_and(|e| e.contains("the key entry")));
    }

    #[test]
    fn a_change_is_described_field_by_field() {
        let text = format!(
            "[[agency]]\nid = \"school-a\"\nname = \"A\"\nkind = \"education\"\nclearance = \"OFFICIAL\"\nareas = [\"exampleshire\"]\n[[agency.keys]]\npublic_key = \"{KEY}\"\n"
        );
        let id = AgencyId::parse("school-a").unwrap_or_else(|e| panic!("{e}"));
        let before = one_agency(&text, &id).unwrap_or_else(|e| panic!("{e}"));
        let mut after = before.clone();
        after.clearance = liaison_runtime::registry::Clearance::OfficialSensitive;
        after.burst = 10;
        let what = describe(Some(&before), Some(&after));
        assert!(
            what.contains("clearance \"Official\" -> \"OfficialSensitive\""),
            "{what}"
        );
        assert!(what.contains("burst \"400\" -> \"10\""), "{what}");
        assert!(describe(None, Some(&before)).starts_with("added school-a (education"));
        let other = AgencyId::parse("school-b").unwrap_or_else(|e| panic!("{e}"));
        assert!(one_agency(&text, &other).is_err_and(|e| e.contains("not school-b")));
    }
}
