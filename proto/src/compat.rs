//! The compatibility contract of `liaison.v1`: only additive changes. A
//! snapshot of every message, field, enum and value of the package is
//! committed (`proto/liaison.v1.lock`, one line per item); [`breaking`]
//! compares the schema as built against it. Removing or renumbering a field,
//! changing its type or cardinality, moving it into or out of a `oneof`,
//! removing an enum value or renumbering it, is breaking: it belongs in
//! `liaison.v2`. Adding is allowed, and the lock is then refreshed with
//! `LIAISON_UPDATE_SCHEMA_LOCK=1 cargo test -p liaison-proto`.

use prost_reflect::{Cardinality, FieldDescriptor, Kind};
use std::collections::BTreeMap;

/// The committed snapshot.
pub const LOCK: &str = include_str!("../liaison.v1.lock");

fn kind(field: &FieldDescriptor) -> String {
    let cardinality = match field.cardinality() {
        Cardinality::Repeated if field.is_map() => "map",
        Cardinality::Repeated => "repeated",
        Cardinality::Required => "required",
        Cardinality::Optional
            if field.supports_presence() && field.containing_oneof().is_none() =>
        {
            "optional"
        }
        Cardinality::Optional => "singular",
    };
    let ty = match field.kind() {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        other => format!("{other:?}").to_lowercase(),
    };
    let oneof = field
        .containing_oneof()
        .map(|o| format!(" oneof {}", o.name()))
        .unwrap_or_default();
    format!("{cardinality} {ty}{oneof}")
}

/// The snapshot of the schema as built: key (what) → value (its shape).
pub fn snapshot() -> BTreeMap<String, String> {
    let mut items = BTreeMap::new();
    let pool = crate::pool();
    for message in pool.all_messages() {
        if message.package_name() != "liaison.v1" || message.is_map_entry() {
            continue;
        }
        items.insert(format!("message {}", message.full_name()), String::new());
        for field in message.fields() {
            items.insert(
                format!("field {}.{}", message.full_name(), field.number()),
                format!("{} {}", field.name(), kind(&field)),
            );
        }
    }
    for enumeration in pool.all_enums() {
        if enumeration.package_name() != "liaison.v1" {
            continue;
        }
        items.insert(format!("enum {}", enumeration.full_name()), String::new());
        for value in enumeration.values() {
            items.insert(
                format!("value {}.{}", enumeration.full_name(), value.number()),
                value.name().to_owned(),
            );
        }
    }
    items
}

/// The snapshot as lock-file text.
pub fn render(items: &BTreeMap<String, String>) -> String {
    let mut text = String::from(
        "# liaison.v1 compatibility lock: every message, field, enum and value.\n\
         # Generated; see proto/src/compat.rs. Only additions are allowed.\n",
    );
    for (what, shape) in items {
        text.push_str(what);
        if !shape.is_empty() {
            text.push_str(" = ");
            text.push_str(shape);
        }
        text.push('\n');
    }
    text
}

/// Parses lock-file text.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| match l.split_once(" = ") {
            Some((what, shape)) => (what.to_owned(), shape.to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect()
}

/// Every breaking difference from `locked` to `now`, in words.
pub fn breaking(locked: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (what, shape) in locked {
        match now.get(what) {
            None => problems.push(format!("{what} ({shape}) was removed or renumbered")),
            Some(current) if current != shape => {
                problems.push(format!("{what} changed from {shape:?} to {current:?}"));
            }
            Some(_) => {}
        }
    }
    problems
}

/// Items added since the lock (allowed; the lock should be refreshed).
pub fn added(locked: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    now.keys()
        .filter(|k| !locked.contains_key(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_keeps_every_locked_field() {
        let now = snapshot();
        let locked = parse(LOCK);
        if std::env::var_os("LIAISON_UPDATE_SCHEMA_LOCK").is_some() {
            let problems = breaking(&locked, &now);
            assert!(
                problems.is_empty(),
                "refusing to lock a breaking change:\n{}",
                problems.join("\n")
            );
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/liaison.v1.lock");
            std::fs::write(path, render(&now)).unwrap_or_else(|e| panic!("{e}"));
            return;
        }
        let problems = breaking(&locked, &now);
        assert!(
            problems.is_empty(),
            "breaking changes to liaison.v1 (put them in liaison.v2):\n{}",
            problems.join("\n")
        );
        let added = added(&locked, &now);
        assert!(
            added.is_empty(),
            "liaison.v1 grew; refresh the lock with LIAISON_UPDATE_SCHEMA_LOCK=1 cargo test -p liaison-proto:\n{}",
            added.join("\n")
        );
    }

    #[test]
    fn removals_renumbering_and_type_changes_are_caught() {
        let locked = snapshot();
        let key = "field liaison.v1.Envelope.7".to_owned();
        assert_eq!(
            locked.get(&key).map(String::as_str),
            Some("purpose singular string")
        );
        let mut removed = locked.clone();
        removed.remove(&key);
        assert_eq!(breaking(&locked, &removed).len(), 1);
        let mut retyped = locked.clone();
        retyped.insert(key.clone(), "purpose repeated string".into());
        assert!(breaking(&locked, &retyped)[0].contains("changed"));
        let mut renamed = locked.clone();
        renamed.insert(key, "reason singular string".into());
        assert_eq!(breaking(&locked, &renamed).len(), 1);
        let mut grown = locked.clone();
        grown.insert(
            "field liaison.v1.Envelope.99".into(),
            "x singular string".into(),
        );
        assert!(breaking(&locked, &grown).is_empty());
        assert_eq!(added(&locked, &grown).len(), 1);
        assert_eq!(parse(&render(&locked)), locked);
    }
}
