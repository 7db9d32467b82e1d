//! Replaying the ledger for an auditor: which records to show (by position,
//! time, agency, case, subject token, operation) and how to write them
//! (a table for people, NDJSON or CSV for tools). Reading and verifying the
//! records as they go is [`crate::verify`]'s.

use liaison_proto::v1::{AuditRecord, Decision, Operation};
use prost_types::Timestamp;

/// Which records to show; every set condition must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// First and last position (0-based record index), inclusive.
    pub from_index: Option<u64>,
    pub to_index: Option<u64>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// The agency that acted or a recipient.
    pub agency: Option<String>,
    pub case_id: Option<String>,
    /// A pseudonymous subject token the record touched.
    pub token: Option<String>,
    pub operation: Option<Operation>,
}

fn key(t: &Timestamp) -> (i64, i32) {
    (t.seconds, t.nanos)
}

impl Filter {
    pub fn matches(&self, index: u64, record: &AuditRecord) -> bool {
        let time = record.time.as_ref().map(key).unwrap_or_default();
        self.from_index.is_none_or(|f| index >= f)
            && self.to_index.is_none_or(|t| index <= t)
            && self.since.as_ref().is_none_or(|s| time >= key(s))
            && self.until.as_ref().is_none_or(|u| time <= key(u))
            && self
                .agency
                .as_ref()
                .is_none_or(|a| &record.agency == a || record.recipients.contains(a))
            && self.case_id.as_ref().is_none_or(|c| &record.case_id == c)
            && self
                .token
                .as_ref()
                .is_none_or(|t| record.subject_tokens.contains(t))
            && self.operation.is_none_or(|o| record.operation == o as i32)
    }

    /// Whether no record past `index` can match (replay may stop reading).
    pub fn past_end(&self, index: u64) -> bool {
        self.to_index.is_some_and(|t| index > t)
    }
}

/// Parses an operation name as written on the command line (`disclosure`).
pub fn parse_operation(name: &str) -> Result<Operation, String> {
    Operation::from_str_name(&format!("OPERATION_{}", name.to_ascii_uppercase()))
        .filter(|o| *o != Operation::Unspecified)
        .ok_or_else(|| {
            format!("unknown operation {name:?}: collection, alteration, consultation, disclosure, combination or erasure")
        })
}

fn short(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_ascii_lowercase()
}

/// The columns of the table and CSV forms.
pub const COLUMNS: [&str; 12] = [
    "index",
    "time",
    "operation",
    "decision",
    "agency",
    "author",
    "recipients",
    "envelope_id",
    "case_id",
    "purpose",
    "legal_basis",
    "policy",
];

/// One record as the values of [`COLUMNS`].
pub fn row(index: u64, record: &AuditRecord) -> [String; 12] {
    let operation = Operation::try_from(record.operation).unwrap_or_default();
    let decision = Decision::try_from(record.decision).unwrap_or_default();
    let decision = match record.code.as_str() {
        "" => short(decision.as_str_name(), "DECISION_"),
        code => format!("{} ({code})", short(decision.as_str_name(), "DECISION_")),
    };
    [
        index.to_string(),
        record.time.map(|t| t.to_string()).unwrap_or_default(),
        short(operation.as_str_name(), "OPERATION_"),
        decision,
        record.agency.clone(),
        record.author.clone(),
        record.recipients.join(";"),
        record.envelope_id.clone(),
        record.case_id.clone(),
        record.purpose.clone(),
        record.legal_basis.clone(),
        record.policy_ids.join(";"),
    ]
}

/// A CSV line (RFC 4180 quoting).
pub fn csv_line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect();
    quoted.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            operation: Operation::Disclosure as i32,
            decision: Decision::Delivered as i32,
            agency: "school-a".into(),
            recipients: vec!["police".into()],
            case_id: "CASE-1".into(),
            subject_tokens: vec!["tok-1".into()],
            time: Some(Timestamp {
                seconds: 100,
                nanos: 0,
            }),
            purpose: "safeguarding, urgent".into(),
            ..Default::default()
        }
    }

    #[test]
    fn filters_select_by_every_condition() {
        let r = record();
        assert!(Filter::default().matches(5, &r));
        let by = |f: Filter| f.matches(5, &r);
        assert!(by(Filter {
            agency: Some("police".into()),
            ..Default::default()
        }));
        assert!(!by(Filter {
            agency: Some("council".into()),
            ..Default::default()
        }));
        assert!(by(Filter {
            token: Some("tok-1".into()),
            case_id: Some("CASE-1".into()),
            ..Default::default()
        }));
        assert!(!by(Filter {
            operation: Some(Operation::Collection),
            ..Default::default()
        }));
        assert!(!by(Filter {
            from_index: Some(6),
            ..Default::default()
        }));
        assert!(!by(Filter {
            since: Some(Timestamp {
                seconds: 101,
                nanos: 0
            }),
            ..Default::default()
        }));
        assert!(by(Filter {
            until: Some(Timestamp {
                seconds: 100,
                nanos: 0
            }),
            ..Default::default()
        }));
        assert!(
            Filter {
                to_index: Some(4),
                ..Default::default()
            }
            .past_end(5)
        );
    }

    #[test]
    fn operations_parse_by_name_and_rows_quote_for_csv() {
        assert_eq!(parse_operation("disclosure"), Ok(Operation::Disclosure));
        assert!(parse_operation("deletion").is_err_and(|e| e.contains("erasure")));
        let line = csv_line(&row(5, &record()));
        assert!(
            line.starts_with("5,1970-01-01T00:01:40Z,disclosure,delivered,school-a,,police,"),
            "{line}"
        );
        assert!(line.contains("\"safeguarding, urgent\""), "{line}");
    }
}
