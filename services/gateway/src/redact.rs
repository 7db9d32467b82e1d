//! Redaction, generic over the data labels in the schema: walks any message
//! (nested, repeated, map and `oneof` fields alike) and clears every field
//! whose label the recipient may not see. No message has code of its own here.

use liaison_proto::labels::label_of;
use liaison_proto::v1::DataLabel;
use prost_reflect::{DynamicMessage, ReflectMessage, Value};
use std::collections::BTreeSet;

/// Clears the fields of `message` (recursively) whose label is in `withheld`,
/// returning the labels of the fields actually removed.
pub fn redact(message: &mut DynamicMessage, withheld: &BTreeSet<DataLabel>) -> BTreeSet<DataLabel> {
    let mut removed = BTreeSet::new();
    if !withheld.is_empty() {
        walk(message, withheld, &mut removed);
    }
    removed
}

/// An accepted envelope's fact: the same event with every labelled field
/// removed, for Liaison's services (ADR 0021). They decide on ids, kinds,
/// cases, subject tokens, classifications and routes, never on what the
/// labelled fields say.
pub fn fact(
    accepted: &liaison_proto::v1::EnvelopeAccepted,
) -> Result<liaison_proto::v1::EnvelopeAccepted, prost::DecodeError> {
    use prost::Message as _;
    let Some(envelope) = &accepted.envelope else {
        return Ok(accepted.clone());
    };
    let all: BTreeSet<DataLabel> = DataLabel::all().collect();
    let mut dynamic = DynamicMessage::decode(
        liaison_proto::message("Envelope"),
        envelope.encode_to_vec().as_slice(),
    )?;
    redact(&mut dynamic, &all);
    Ok(liaison_proto::v1::EnvelopeAccepted {
        envelope: Some(dynamic.transcode_to()?),
        ..accepted.clone()
    })
}

fn walk(
    message: &mut DynamicMessage,
    withheld: &BTreeSet<DataLabel>,
    removed: &mut BTreeSet<DataLabel>,
) {
    let fields: Vec<_> = message.descriptor().fields().collect();
    for field in fields {
        if !message.has_field(&field) {
            continue;
        }
        if let Some(label) = label_of(&field).filter(|l| withheld.contains(l)) {
            message.clear_field(&field);
            removed.insert(label);
            continue;
        }
        if field.kind().as_message().is_none() {
            continue;
        }
        match message.get_field_mut(&field) {
            Value::Message(inner) => walk(inner, withheld, removed),
            Value::List(items) => {
                for item in items {
                    if let Value::Message(inner) = item {
                        walk(inner, withheld, removed);
                    }
                }
            }
            Value::Map(entries) => {
                for value in entries.values_mut() {
                    if let Value::Message(inner) = value {
                        walk(inner, withheld, removed);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaison_proto::v1::envelope::Body;
    use liaison_proto::v1::{Envelope, Person, ReferralMade};
    use prost::Message;

    fn referral() -> Envelope {
        Envelope {
            id: "e1".into(),
            body: Some(Body::Referral(ReferralMade {
                subject: Some(Person {
                    token: "tok".into(),
                    full_name: "A Person".into(),
                    ..Default::default()
                }),
                source: "school".into(),
                health_notes: "notes".into(),
                concern: "concern".into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn redacted(withheld: &[DataLabel]) -> (Envelope, BTreeSet<DataLabel>) {
        let bytes = referral().encode_to_vec();
        let mut dynamic =
            DynamicMessage::decode(liaison_proto::message("Envelope"), bytes.as_slice())
                .unwrap_or_else(|e| panic!("{e}"));
        let removed = redact(&mut dynamic, &withheld.iter().copied().collect());
        let out = dynamic
            .transcode_to::<Envelope>()
            .unwrap_or_else(|e| panic!("{e}"));
        (out, removed)
    }

    #[test]
    fn withheld_labels_are_removed_at_any_depth_and_reported() {
        let (out, removed) =
            redacted(&[DataLabel::Health, DataLabel::Identity, DataLabel::Criminal]);
        let Some(Body::Referral(r)) = out.body else {
            panic!("body kept")
        };
        assert_eq!(r.health_notes, "");
        assert_eq!(r.concern, "concern");
        assert_eq!(r.source, "school");
        let subject = r.subject.unwrap_or_default();
        assert_eq!(subject.full_name, "");
        assert_eq!(subject.token, "tok");
        // Criminal was withheld but nothing carried it: not reported as removed.
        assert_eq!(
            removed,
            [DataLabel::Health, DataLabel::Identity]
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn nothing_withheld_changes_nothing() {
        let (out, removed) = redacted(&[]);
        assert_eq!(out, referral());
        assert!(removed.is_empty());
    }
}
