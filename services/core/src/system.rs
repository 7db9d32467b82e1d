//! Liaison's own services as senders. The cases, linkage and alerts services
//! raise events for agencies (a re-engagement, a priority change, an overdue
//! request, an escalated alert): they send them through the gateway's
//! internal door, as envelopes from a reserved sender id, and the gateway
//! decides who receives them under the same access policy as any envelope.
//! NATS permissions authenticate them: only a service's own NATS user may
//! publish on its internal subject. No registered agency may use the prefix.

use crate::ids::AgencyId;

/// Prefix of every system sender id; refused in the agency registry.
pub const PREFIX: &str = "liaison-";

/// A service that sends envelopes through the internal door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Cases,
    Linkage,
    Alerts,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Cases, Service::Linkage, Service::Alerts];

    /// The service's short name, as in its subjects and NATS user.
    pub fn name(self) -> &'static str {
        match self {
            Service::Cases => "cases",
            Service::Linkage => "linkage",
            Service::Alerts => "alerts",
        }
    }

    /// Its NATS user.
    pub fn user(self) -> String {
        format!("svc-{}", self.name())
    }

    /// The KV bucket that holds its state (rebuildable from EVENTS).
    pub fn bucket(self) -> &'static str {
        match self {
            Service::Cases => "CASES",
            Service::Linkage => "LINKAGE",
            Service::Alerts => "ALERTS",
        }
    }

    /// Where it publishes its decision records for the ledger.
    pub fn decisions(self) -> String {
        format!("liaison.decisions.{}", self.name())
    }

    /// The sender id its envelopes carry, e.g. `liaison-cases`.
    pub fn sender(self) -> AgencyId {
        // The names are literals that form valid agency ids (tested below).
        AgencyId::trusted(format!("{PREFIX}{}", self.name()))
    }

    /// The service a sender id names, if it names one.
    pub fn of_sender(sender: &str) -> Option<Service> {
        let name = sender.strip_prefix(PREFIX)?;
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The service an internal subject's token names.
    pub fn of_name(name: &str) -> Option<Service> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Whether `id` is reserved for Liaison's services.
pub fn is_reserved(id: &AgencyId) -> bool {
    id.as_str().starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_round_trip_through_their_sender_ids() {
        for service in Service::ALL {
            let sender = service.sender();
            assert_eq!(AgencyId::parse(sender.as_str()).as_ref(), Ok(&sender));
            assert!(is_reserved(&sender));
            assert_eq!(Service::of_sender(sender.as_str()), Some(service));
            assert_eq!(Service::of_name(service.name()), Some(service));
        }
        assert_eq!(Service::of_sender("police"), None);
        assert_eq!(Service::of_sender("liaison-other"), None);
    }
}
