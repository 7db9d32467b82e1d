//! The data-label index: which fields of the schema carry which
//! [`DataLabel`](crate::v1::DataLabel), read once from the descriptors'
//! `(liaison.v1.label)` field option.

use crate::v1::DataLabel;
use prost_reflect::{ExtensionDescriptor, FieldDescriptor, Value};
use std::sync::LazyLock;

/// The `(liaison.v1.label)` extension, looked up once.
static LABEL: LazyLock<Option<ExtensionDescriptor>> =
    LazyLock::new(|| crate::pool().get_extension_by_name("liaison.v1.label"));

/// The data label a field carries, if any.
pub fn label_of(field: &FieldDescriptor) -> Option<DataLabel> {
    let ext = LABEL.as_ref()?;
    let options = field.options();
    if !options.has_extension(ext) {
        return None;
    }
    match options.get_extension(ext).as_ref() {
        Value::EnumNumber(n) => DataLabel::try_from(*n)
            .ok()
            .filter(|l| *l != DataLabel::Unspecified),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_fields_are_read_from_the_schema() {
        let referral = crate::message("ReferralMade");
        let health = referral
            .get_field_by_name("health_notes")
            .map(|f| label_of(&f));
        assert_eq!(health, Some(Some(DataLabel::Health)));
        let source = referral.get_field_by_name("source").map(|f| label_of(&f));
        assert_eq!(source, Some(None));
        let person = crate::message("Person");
        let name = person.get_field_by_name("full_name").map(|f| label_of(&f));
        assert_eq!(name, Some(Some(DataLabel::Identity)));
    }

    #[test]
    fn every_label_has_a_short_name() {
        let names: Vec<_> = DataLabel::all().map(DataLabel::short_name).collect();
        assert_eq!(names.len(), 8);
        assert!(names.contains(&"social-care"));
    }
}
