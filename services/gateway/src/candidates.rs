//! Who could receive an envelope: the agencies the policy is asked about,
//! found in the registry's indexes rather than by asking about every
//! registered agency, so that a decision costs the same with 8 agencies or
//! 25,000 (docs/decisions/0018-areas-and-indexed-routing.md).
//!
//! The candidates are exactly those the shipped clauses can reach:
//! - the envelope's parties: its case's participants and owner, its
//!   addressees (and the agencies a participation change adds), and the
//!   sender and recipients of the envelope it answers;
//! - the agencies serving one of the sender's areas, and national bodies;
//! - for an alert: the councils and business partners of its region (all
//!   of them for a national alert), and national partners.
//!
//! A clause that reached beyond these would be narrowed without a word, so
//! the gateway's tests compare this routing with asking about every agency,
//! on random registries and envelopes (`tests::routing`), and a new kind of
//! reach (a clause "every force receives ...") must be added here first.

use crate::policy::{Facts, added};
use liaison_core::AgencyId;
use liaison_proto::v1::Envelope;
use liaison_proto::v1::envelope::Body;
use liaison_runtime::registry::{AgencyKind, NATIONAL, Registry};
use std::collections::BTreeSet;

/// The agencies the message itself names: its case's participants and
/// owner, its addressees and the agencies it adds, and the parties of the
/// envelope it answers. A policy can tell these apart from others of the
/// same attributes, so each is decided on its own.
pub fn named(envelope: &Envelope, facts: &Facts) -> BTreeSet<AgencyId> {
    let mut out: BTreeSet<AgencyId> = BTreeSet::new();
    out.extend(facts.participants.iter().cloned());
    out.extend(facts.owner.iter().cloned());
    if let Some(replied) = &facts.replied {
        out.insert(replied.sender.clone());
        out.extend(replied.recipients.iter().cloned());
    }
    out.extend(
        envelope
            .addressees
            .iter()
            .chain(added(envelope))
            .filter_map(|id| AgencyId::parse(id).ok()),
    );
    out
}

/// The agencies other than `sender` that could receive `envelope`, of
/// which `named` ([`named`]) are the message's own.
pub fn candidates(
    registry: &Registry,
    sender: &AgencyId,
    envelope: &Envelope,
    named: &BTreeSet<AgencyId>,
) -> BTreeSet<AgencyId> {
    let mut out = named.clone();
    if let Some(agency) = registry.get(sender) {
        for area in &agency.areas {
            out.extend(registry.serving(area).iter().cloned());
        }
    }
    out.extend(registry.serving(NATIONAL).iter().cloned());
    if let Some(Body::Alert(alert)) = &envelope.body {
        if alert.region.is_empty() || alert.region == NATIONAL {
            out.extend(registry.of_kind(AgencyKind::Council).iter().cloned());
            if alert.sectors.is_empty() {
                out.extend(registry.of_kind(AgencyKind::Business).iter().cloned());
            } else {
                for sector in &alert.sectors {
                    out.extend(registry.in_sector(sector).iter().cloned());
                }
            }
        } else {
            out.extend(registry.in_region(&alert.region).iter().cloned());
            out.extend(registry.serving(&alert.region).iter().cloned());
            out.extend(registry.in_region(NATIONAL).iter().cloned());
        }
    }
    out.remove(sender);
    out
}
