//! What `liaison alerts` shows an operator: each alert some business partner
//! has not acknowledged (or every alert), read from the `ALERTS` bucket —
//! who issued it, its threat level and addressing, its age, how many of the
//! business partners acknowledged it and who has not, and its escalations.
//! Ids, agency ids and codes only: the bucket holds no alert content.

use crate::AlertsError;
use crate::alert::Alert;
use crate::store;
use async_nats::jetstream;
use liaison_core::NatsContext as _;
use liaison_core::system::Service;
use liaison_proto::v1::alert_issued::ThreatLevel;
use serde::Serialize;

/// One alert, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub id: String,
    pub issued_by: String,
    /// `CRITICAL`, `SEVERE`, `SUBSTANTIAL`, `MODERATE`, `LOW` or `-`.
    pub threat_level: String,
    pub sectors: Vec<String>,
    pub region: String,
    /// When the gateway accepted it (RFC 3339).
    pub accepted_at: String,
    pub age_secs: i64,
    /// Business partners that acknowledged it, of those that must.
    pub acknowledged: usize,
    pub to_acknowledge: usize,
    pub not_acknowledged: Vec<String>,
    /// Escalations raised so far.
    pub escalations: u32,
}

/// A threat level's name, as the UK threat levels are written.
pub fn threat_level_name(level: i32) -> &'static str {
    match ThreatLevel::try_from(level) {
        Ok(ThreatLevel::Critical) => "CRITICAL",
        Ok(ThreatLevel::Severe) => "SEVERE",
        Ok(ThreatLevel::Substantial) => "SUBSTANTIAL",
        Ok(ThreatLevel::Moderate) => "MODERATE",
        Ok(ThreatLevel::Low) => "LOW",
        _ => "-",
    }
}

fn row(alert: &Alert, now_ms: i64) -> Row {
    let accepted = prost_types::Timestamp {
        seconds: alert.accepted_at_ms.div_euclid(1000),
        nanos: (alert.accepted_at_ms.rem_euclid(1000) * 1_000_000) as i32,
    };
    Row {
        id: alert.id.clone(),
        issued_by: alert.issued_by.to_string(),
        threat_level: threat_level_name(alert.threat_level).to_owned(),
        sectors: alert.sectors.clone(),
        region: alert.region.clone(),
        accepted_at: accepted.to_string(),
        age_secs: now_ms.saturating_sub(alert.accepted_at_ms).max(0) / 1000,
        acknowledged: alert.acknowledged_count(),
        to_acknowledge: alert.must_acknowledge.len(),
        not_acknowledged: alert
            .unacknowledged()
            .iter()
            .map(ToString::to_string)
            .collect(),
        escalations: alert.escalation_count(),
    }
}

/// The rows of `alerts` at `now_ms`, oldest first: only those some business
/// partner has not acknowledged, unless `all`.
pub fn rows<'a>(alerts: impl IntoIterator<Item = &'a Alert>, now_ms: i64, all: bool) -> Vec<Row> {
    let mut alerts: Vec<&Alert> = alerts
        .into_iter()
        .filter(|a| all || a.outstanding())
        .collect();
    alerts.sort_by(|a, b| (a.accepted_at_ms, &a.id).cmp(&(b.accepted_at_ms, &b.id)));
    alerts.into_iter().map(|a| row(a, now_ms)).collect()
}

/// Every alert in the `ALERTS` bucket (the operator's NATS user may read it).
pub async fn read(js: &jetstream::Context) -> Result<Vec<Alert>, AlertsError> {
    let bucket = js
        .get_key_value(Service::Alerts.bucket())
        .await
        .nats(format!("KV bucket {}", Service::Alerts.bucket()))?;
    Ok(store::load(&bucket).await?.into_values().collect())
}

/// The outstanding alerts at `now_ms`, as `liaison alerts` lists them.
pub async fn outstanding(js: &jetstream::Context, now_ms: i64) -> Result<Vec<Row>, AlertsError> {
    Ok(rows(&read(js).await?, now_ms, false))
}

/// An age as people say it: `45s`, `12m`, `3h05m`, `2d04h`.
pub fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn cell(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The rows as a table with a header line.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<36}  {:<10}  {:<11}  {:<30}  {:>6}  {:>5}  {:<24}  {}\n",
        "alert",
        "issued by",
        "threat",
        "sectors / region",
        "age",
        "acked",
        "not acknowledged",
        "escalated"
    );
    for r in rows {
        let sectors = if r.sectors.is_empty() {
            "all".to_owned()
        } else {
            r.sectors.join(",")
        };
        let region = if r.region.is_empty() {
            "national"
        } else {
            &r.region
        };
        let silent = if r.not_acknowledged.is_empty() {
            "-".to_owned()
        } else {
            r.not_acknowledged.join(",")
        };
        let escalated = match r.escalations {
            0 => "no".to_owned(),
            n => format!("yes ({n})"),
        };
        out.push_str(&format!(
            "{:<36}  {:<10}  {:<11}  {:<30}  {:>6}  {:>5}  {:<24}  {}\n",
            cell(&r.id, 36),
            cell(&r.issued_by, 10),
            r.threat_level,
            cell(&format!("{sectors} / {region}"), 30),
            age(r.age_secs),
            format!("{}/{}", r.acknowledged, r.to_acknowledge),
            cell(&silent, 24),
            escalated
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::tests::{accepted_alert, business};

    #[test]
    fn outstanding_alerts_are_listed_oldest_first_with_who_has_not_acknowledged() {
        let a = Alert::issued(
            1,
            &accepted_alert("a-1", &["retail-bsp", "transport-bsp"]),
            business,
        )
        .unwrap_or_else(|| panic!("alert"));
        let mut b = Alert::issued(2, &accepted_alert("a-2", &["retail-bsp"]), business)
            .unwrap_or_else(|| panic!("alert"));
        b.accepted_at_ms += 1;
        let none = Alert::issued(3, &accepted_alert("a-3", &["council"]), business)
            .unwrap_or_else(|| panic!("alert"));
        let rows = rows([&b, &a, &none], 1_000_500 + 3_725_000, false);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].id, "a-1");
        assert_eq!(rows[0].threat_level, "SEVERE");
        assert_eq!(
            rows[0].not_acknowledged,
            vec!["retail-bsp", "transport-bsp"]
        );
        assert_eq!(rows[0].age_secs, 3725);
        let text = table(&rows);
        assert!(text.contains("retail / london"), "{text}");
        assert!(text.contains("1h02m"), "{text}");
        assert!(text.contains("0/2"), "{text}");
        assert_eq!(text.lines().count(), 3);
        assert_eq!(super::rows([&none], 0, true).len(), 1);
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(-3), "0s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(3 * 3600 + 5 * 60), "3h05m");
        assert_eq!(age(2 * 86_400 + 4 * 3600), "2d04h");
    }
}
