//! A scoped auditor's reading (docs/decisions/0021-a-rogue-agency-gets-nothing.md).
//!
//! An auditor whose registry entry has a scope (agencies, cases, a time
//! range) may not read LEDGER: its blocks hold every agency's records. The
//! audit service reads and verifies the ledger for them and answers with the
//! records inside both their scope and the filter they asked for, on
//! [`subjects::RECORDS_REQUEST`], for a granted consultation: JSON pages
//! ([`Page`]) to the request's reply subject, the last with `more: false`
//! and the verification's outcome.

use crate::checkpoint::NoteVerifier;
use crate::replay::Filter;
use liaison_proto::v1::AuditRecord;
use liaison_runtime::auditors::Scope;
use serde::{Deserialize, Serialize};

/// Most records one answer holds; a wider read is cut there, and says so.
pub const MAX_RECORDS: usize = 10_000;
/// Records per page (each page well under NATS's 1 MiB).
pub const PAGE: usize = 200;

/// What a scoped auditor asks for: the grant, and a filter as
/// `liaison audit replay` takes it (every field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsRequest {
    pub grant: String,
    #[serde(default)]
    pub from: Option<u64>,
    #[serde(default)]
    pub to: Option<u64>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub agency: Option<String>,
    #[serde(default)]
    pub case: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
}

impl RecordsRequest {
    /// The filter it states; a malformed field is named.
    pub fn filter(&self) -> Result<Filter, String> {
        let time = |what: &str, v: &Option<String>| {
            v.as_ref()
                .map(|t| {
                    t.parse::<prost_types::Timestamp>()
                        .map_err(|e| format!("{what} {t:?} is not an RFC 3339 time: {e}"))
                })
                .transpose()
        };
        Ok(Filter {
            from_index: self.from,
            to_index: self.to,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            agency: self.agency.clone(),
            case_id: self.case.clone(),
            token: self.token.clone(),
            operation: self
                .operation
                .as_deref()
                .map(crate::replay::parse_operation)
                .transpose()
                .map_err(|e| format!("operation: {e}"))?,
        })
    }
}

/// One page of an answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Page {
    /// Records as `liaison audit replay --format ndjson` writes them
    /// (protobuf JSON with their `index`).
    pub records: Vec<serde_json::Value>,
    /// Whether more pages follow.
    pub more: bool,
    /// On the last page: records shown, records verified, whether the
    /// ledger verified intact, and why not or why the answer was cut.
    #[serde(default)]
    pub shown: u64,
    #[serde(default)]
    pub verified: u64,
    #[serde(default)]
    pub intact: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// A refusal's code (then nothing else is set).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
}

/// Whether `record` lies within `scope`.
pub fn within(scope: &Scope, record: &AuditRecord) -> bool {
    let agencies = scope.agencies.is_empty()
        || scope.agencies.iter().any(|a| {
            record.agency == a.as_str() || record.recipients.iter().any(|r| r == a.as_str())
        });
    let cases = scope.cases.is_empty() || scope.cases.contains(&record.case_id);
    let time = record
        .time
        .as_ref()
        .map(|t| (t.seconds, t.nanos))
        .unwrap_or_default();
    let bound = |t: &Option<String>| {
        t.as_ref()
            .and_then(|t| t.parse::<prost_types::Timestamp>().ok())
            .map(|t| (t.seconds, t.nanos))
    };
    let since = bound(&scope.since).is_none_or(|s| time >= s);
    let until = bound(&scope.until).is_none_or(|u| time <= u);
    agencies && cases && since && until
}

/// Reads and verifies the ledger, keeping the records inside `scope` that
/// pass `filter`; answers in pages.
pub async fn answer(
    js: &async_nats::jetstream::Context,
    verifier: &NoteVerifier,
    scope: &Scope,
    filter: &Filter,
) -> Vec<Page> {
    let mut records = Vec::new();
    let mut cut = false;
    let verified = crate::verify::verify(js, verifier, |entry, record| {
        if !filter.matches(entry.index, record) || !within(scope, record) {
            return;
        }
        if records.len() >= MAX_RECORDS {
            cut = true;
            return;
        }
        let mut json = liaison_proto::json::to_json("AuditRecord", record);
        json["index"] = serde_json::json!(entry.index);
        records.push(json);
    })
    .await;
    let (verified, intact, mut note) = match verified {
        Ok(report) => (
            report.verified,
            report.intact(),
            report
                .first_finding
                .as_ref()
                .map(|f| format!("{f:?}"))
                .unwrap_or_default(),
        ),
        Err(e) => (0, false, format!("the ledger could not be read: {e}")),
    };
    if cut {
        note = format!(
            "{note}{}only the first {MAX_RECORDS} matching records are shown: narrow the filter",
            if note.is_empty() { "" } else { "; " }
        );
    }
    let shown = records.len() as u64;
    let mut pages: Vec<Page> = records
        .chunks(PAGE)
        .map(|chunk| Page {
            records: chunk.to_vec(),
            more: true,
            ..Page::default()
        })
        .collect();
    if pages.is_empty() {
        pages.push(Page::default());
    }
    if let Some(last) = pages.last_mut() {
        last.more = false;
        last.shown = shown;
        last.verified = verified;
        last.intact = intact;
        last.note = note;
    }
    pages
}

/// A refusal, as the only page.
pub fn refused(code: &str, reason: String) -> Vec<Page> {
    vec![Page {
        code: code.into(),
        note: reason,
        ..Page::default()
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaison_core::AgencyId;

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    #[test]
    fn a_record_is_within_a_scope_by_agency_case_and_time() {
        let scope = Scope {
            agencies: vec![AgencyId::parse("police").unwrap_or_else(|e| panic!("{e}"))],
            cases: vec![],
            since: Some("2026-01-01T00:00:00Z".into()),
            until: None,
        };
        let jan = 1_767_225_600 + 10;
        let sent = AuditRecord {
            agency: "police".into(),
            time: at(jan),
            ..Default::default()
        };
        let received = AuditRecord {
            agency: "school-a".into(),
            recipients: vec!["council".into(), "police".into()],
            time: at(jan),
            ..Default::default()
        };
        let others = AuditRecord {
            agency: "school-a".into(),
            recipients: vec!["council".into()],
            time: at(jan),
            ..Default::default()
        };
        let before = AuditRecord {
            agency: "police".into(),
            time: at(jan - 3600),
            ..Default::default()
        };
        assert!(within(&scope, &sent) && within(&scope, &received));
        assert!(!within(&scope, &others) && !within(&scope, &before));
        let one_case = Scope {
            cases: vec!["C1".into()],
            ..Scope::default()
        };
        let about = AuditRecord {
            case_id: "C1".into(),
            ..Default::default()
        };
        assert!(within(&one_case, &about) && !within(&one_case, &sent));
    }
}
