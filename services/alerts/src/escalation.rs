//! When an alert is escalated, and the escalation it is: the `[alerts]`
//! configuration turned into periods per threat level. The `n`-th escalation
//! of an alert is due `n` periods after the gateway accepted it, while some
//! business partner has not acknowledged it, up to `max_escalations`. Each
//! goes to the issuing unit and to the partners still silent (ISA-SYSTEM-01
//! reminders). Pure: no I/O, the time is given.

use crate::alert::{Alert, escalation_id};
use liaison_core::system::Service;
use liaison_proto::v1::alert_issued::ThreatLevel;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{AlertEscalated, Envelope};
use liaison_runtime::config::AlertsConfig;

/// The purpose every escalation is raised for (the alert's own: ISA-PSA-01).
pub const PURPOSE: &str = "protective-security";
/// The legal basis when the alert names none (it always does once accepted).
const DEFAULT_LEGAL_BASIS: &str = "DPA-2018-s35";

/// The escalation periods, in seconds, per threat level, and how many at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    critical: u32,
    severe: u32,
    substantial: u32,
    moderate: u32,
    low: u32,
    max: u32,
}

impl Policy {
    /// The policy `[alerts]` configures; a period of 0 or over ~136 years is
    /// refused, naming the key.
    pub fn from_config(config: &AlertsConfig) -> Result<Self, String> {
        let period = |key: &str, secs: u64| {
            u32::try_from(secs)
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("alerts.{key} must be between 1 and {} seconds", u32::MAX))
        };
        Ok(Self {
            critical: period("escalate_critical_secs", config.escalate_critical_secs)?,
            severe: period("escalate_severe_secs", config.escalate_severe_secs)?,
            substantial: period(
                "escalate_substantial_secs",
                config.escalate_substantial_secs,
            )?,
            moderate: period("escalate_moderate_secs", config.escalate_moderate_secs)?,
            low: period("escalate_low_secs", config.escalate_low_secs)?,
            max: config.max_escalations,
        })
    }

    /// The escalation period of a threat level (its number), in seconds.
    pub fn period_secs(&self, threat_level: i32) -> u32 {
        match ThreatLevel::try_from(threat_level) {
            Ok(ThreatLevel::Critical) => self.critical,
            Ok(ThreatLevel::Severe) => self.severe,
            Ok(ThreatLevel::Substantial) => self.substantial,
            Ok(ThreatLevel::Moderate) => self.moderate,
            _ => self.low,
        }
    }

    /// The next escalation of `alert` and when it is due (Unix ms), if one
    /// will be: some business partner has not acknowledged it, fewer than
    /// the maximum were raised, and the gateway did not refuse one.
    pub fn next_due(&self, alert: &Alert) -> Option<(u32, i64)> {
        if !alert.outstanding() || alert.escalation_refused.is_some() {
            return None;
        }
        let n = alert.escalation_count() + 1;
        if n > self.max {
            return None;
        }
        let after_ms = i64::from(n) * i64::from(self.period_secs(alert.threat_level)) * 1000;
        Some((n, alert.accepted_at_ms.saturating_add(after_ms)))
    }

    /// The `n`-th escalation of `alert`, from the alerts service, to the
    /// issuing unit and the partners that have not acknowledged it (its
    /// addressees), with the alert's classification and caveats.
    pub fn envelope(&self, alert: &Alert, n: u32, now: prost_types::Timestamp) -> Envelope {
        let sender = Service::Alerts.sender();
        let unacknowledged: Vec<String> = alert
            .unacknowledged()
            .iter()
            .map(ToString::to_string)
            .collect();
        let legal_basis = if alert.legal_basis.is_empty() {
            DEFAULT_LEGAL_BASIS.to_owned()
        } else {
            alert.legal_basis.clone()
        };
        Envelope {
            id: escalation_id(&alert.id, n),
            sender_agency: sender.to_string(),
            author: sender.to_string(),
            sent_at: Some(now),
            classification: alert.classification,
            handling_caveats: alert.caveats.clone(),
            purpose: PURPOSE.to_owned(),
            legal_basis,
            addressees: unacknowledged.clone(),
            in_reply_to: alert.id.clone(),
            traceparent: alert.traceparent.clone(),
            body: Some(Body::AlertEscalated(AlertEscalated {
                unacknowledged,
                after_seconds: n.saturating_mul(self.period_secs(alert.threat_level)),
                threat_level: alert.threat_level,
            })),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::tests::{accepted_alert, business};

    fn policy(max: u32) -> Policy {
        let config = AlertsConfig {
            escalate_severe_secs: 60,
            max_escalations: max,
            ..AlertsConfig::default()
        };
        Policy::from_config(&config).unwrap_or_else(|e| panic!("{e}"))
    }

    fn alert() -> Alert {
        Alert::issued(
            1,
            &accepted_alert("a-1", &["retail-bsp", "council"]),
            business,
        )
        .unwrap_or_else(|| panic!("alert"))
    }

    #[test]
    fn escalations_are_due_period_after_period_up_to_the_maximum() {
        let policy = policy(2);
        let mut alert = alert();
        // SEVERE: one minute.
        assert_eq!(policy.next_due(&alert), Some((1, 1_000_500 + 60_000)));
        let first = policy.envelope(&alert, 1, prost_types::Timestamp::default());
        assert_eq!(first.id, "alert-escalated:a-1:1");
        assert_eq!(first.in_reply_to, "a-1");
        assert_eq!(first.addressees, vec!["retail-bsp"]);
        assert_eq!(first.sender_agency, "liaison-alerts");
        assert_eq!(first.purpose, "protective-security");
        assert_eq!(first.legal_basis, "DPA-2018-s35");
        match &first.body {
            Some(Body::AlertEscalated(e)) => {
                assert_eq!(e.after_seconds, 60);
                assert_eq!(e.threat_level, 4);
            }
            other => panic!("{other:?}"),
        }
        alert.escalated(&first, 61_000);
        assert_eq!(policy.next_due(&alert), Some((2, 1_000_500 + 120_000)));
        let second = policy.envelope(&alert, 2, prost_types::Timestamp::default());
        alert.escalated(&second, 121_000);
        assert_eq!(policy.next_due(&alert), None, "at most two");
    }

    #[test]
    fn acknowledged_refused_or_never_escalating_alerts_are_not_due() {
        let mut acked = alert();
        let ack = Envelope {
            id: "ack".into(),
            sender_agency: "retail-bsp".into(),
            ..Default::default()
        };
        acked.acknowledge(&ack, 2_000);
        assert_eq!(policy(3).next_due(&acked), None);
        let mut refused = alert();
        refused.escalation_refused = Some("alert-escalated:a-1:1".into());
        assert_eq!(policy(3).next_due(&refused), None);
        assert_eq!(policy(0).next_due(&alert()), None);
        let no_business = Alert::issued(1, &accepted_alert("a-2", &["council"]), business)
            .unwrap_or_else(|| panic!("alert"));
        assert_eq!(policy(3).next_due(&no_business), None);
    }

    #[test]
    fn periods_follow_the_threat_level_and_bad_periods_are_named() {
        let policy =
            Policy::from_config(&AlertsConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(policy.period_secs(ThreatLevel::Critical as i32), 900);
        assert_eq!(policy.period_secs(ThreatLevel::Severe as i32), 1800);
        assert_eq!(policy.period_secs(ThreatLevel::Low as i32), 86_400);
        assert_eq!(policy.period_secs(0), 86_400);
        assert_eq!(policy.period_secs(99), 86_400);
        let zero = AlertsConfig {
            escalate_critical_secs: 0,
            ..AlertsConfig::default()
        };
        let err = Policy::from_config(&zero).err().unwrap_or_default();
        assert!(err.contains("alerts.escalate_critical_secs"), "{err}");
    }
}
