//! `liaison.v1`: the protobuf schema every Liaison service and agency shares.
//!
//! Owns the generated message types, the descriptor pool used for reflection,
//! the data-label index (which field carries which [`v1::DataLabel`]) and the
//! protobuf JSON mapping and its JSON Schemas. It does not decide who may see what: that is the
//! gateway's policy.

pub mod compat;
pub mod json;
pub mod json_schema;
pub mod labels;

/// Generated prost types for the `liaison.v1` package.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/liaison.v1.rs"));
}

use prost_reflect::{DescriptorPool, MessageDescriptor};
use std::sync::LazyLock;

/// The encoded `FileDescriptorSet` of `liaison.v1` and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/liaison_v1.descriptor.bin"));

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    // The bytes are produced by our own build script from the same schema the
    // types come from: a failure here is a build bug, not bad input.
    #[allow(clippy::expect_used)]
    DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("built-in liaison.v1 descriptor set is valid")
});

/// The descriptor pool holding `liaison.v1` and its imports.
pub fn pool() -> &'static DescriptorPool {
    &POOL
}

/// Descriptor of a `liaison.v1` message by its short name, e.g. `"Envelope"`.
///
/// # Panics
/// Only if `name` is not a message of the schema: callers pass literals.
pub fn message(name: &str) -> MessageDescriptor {
    #[allow(clippy::expect_used)]
    pool()
        .get_message_by_name(&format!("liaison.v1.{name}"))
        .expect("message exists in liaison.v1")
}

impl v1::Envelope {
    /// The body kind as used in subjects, policies and audit: `referral`,
    /// `case_update`, `alert`, or `none`.
    pub fn kind(&self) -> &'static str {
        use v1::envelope::Body;
        match &self.body {
            Some(Body::Referral(_)) => "referral",
            Some(Body::CaseUpdate(_)) => "case_update",
            Some(Body::Alert(_)) => "alert",
            None => "none",
        }
    }

    /// Pseudonymous subject tokens the body refers to.
    pub fn subject_tokens(&self) -> Vec<String> {
        use v1::envelope::Body;
        let person = match &self.body {
            Some(Body::Referral(r)) => r.subject.as_ref(),
            Some(Body::CaseUpdate(c)) => c.subject.as_ref(),
            _ => None,
        };
        person
            .map(|p| p.token.clone())
            .filter(|t| !t.is_empty())
            .into_iter()
            .collect()
    }
}

impl v1::DataLabel {
    /// The label's short name as used in policies: `identity`, `health`, ...
    pub fn short_name(self) -> &'static str {
        use v1::DataLabel as L;
        match self {
            L::Unspecified => "unspecified",
            L::Identity => "identity",
            L::Health => "health",
            L::SocialCare => "social-care",
            L::Education => "education",
            L::Criminal => "criminal",
            L::Intelligence => "intelligence",
            L::Location => "location",
            L::Safeguarding => "safeguarding",
        }
    }

    /// Every real label (not `Unspecified`).
    pub fn all() -> impl Iterator<Item = v1::DataLabel> {
        (1..).map_while(|n| v1::DataLabel::try_from(n).ok())
    }
}
