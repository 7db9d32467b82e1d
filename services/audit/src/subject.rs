//! What was shared about one person (DPA 2018 Part 3, s.45: the right of
//! access), from the ledger: every share touching their pseudonymous subject
//! token — when, which agency sent what kind under which clause, purpose and
//! legal basis, to whom, which labels each recipient did not see — with the
//! refusals, and the corrections and erasure confirmations that answered
//! those shares. `liaison subject report` reads the records (a consultation,
//! recorded with its purpose) and [`Report::of`] puts them together.
//!
//! The ledger holds no personal data: the report names agencies, clauses,
//! codes and times, never what was said. Which fields a recipient saw is
//! stated by label (what was withheld); the content itself is the
//! agencies' to disclose under their own procedures.

use liaison_proto::v1::{AuditRecord, Classification, DataLabel, Decision, Operation};
use serde::Serialize;
use std::collections::BTreeMap;

/// The report on one subject token.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub token: String,
    /// Shares about the subject, oldest first.
    pub shares: Vec<Share>,
    /// Envelopes about the subject the gateway refused.
    pub refused: Vec<Refused>,
    /// What named operators did with the subject's data: restricted,
    /// unrestricted, erased (`liaison subject …`).
    pub rights: Vec<Right>,
}

/// A request on the subject's data, as recorded.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Right {
    /// `subject_restricted`, `subject_unrestricted` or `subject_erased`.
    pub code: String,
    pub by: String,
    pub at: String,
    pub reason: String,
    pub index: u64,
}

/// One accepted share and what became of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Share {
    /// `SENDER/ID`.
    pub envelope: String,
    pub kind: String,
    pub sender: String,
    pub author: String,
    /// When the gateway accepted it (RFC 3339).
    pub at: String,
    pub purpose: String,
    pub legal_basis: String,
    pub classification: String,
    pub case_id: String,
    /// The clauses that let the sender send it.
    pub clauses: Vec<String>,
    pub disclosures: Vec<Disclosure>,
    /// Corrections (DPA 2018 s.38) and erasure confirmations that answered it.
    pub answers: Vec<Answer>,
    /// The ledger's index of its collection record.
    pub index: u64,
    /// When its retention ends (RFC 3339; empty where not recorded).
    pub kept_until: String,
    /// Whether Liaison can still read what it stores of it: `retained`, or
    /// `erased: retention ended`, `erased: subject erased`.
    pub stored: String,
}

/// One recipient's copy.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Disclosure {
    pub recipient: String,
    pub at: String,
    pub clauses: Vec<String>,
    /// Labels whose fields were removed from this recipient's copy.
    pub withheld: Vec<String>,
    pub index: u64,
}

/// A correction or an erasure confirmation of a share.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Answer {
    /// `correction` or `erasure_confirmed`.
    pub kind: String,
    pub by: String,
    pub at: String,
    pub envelope: String,
    pub index: u64,
}

/// A refused envelope about the subject.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Refused {
    pub envelope: String,
    pub kind: String,
    pub sender: String,
    pub at: String,
    pub code: String,
    pub index: u64,
}

fn at(record: &AuditRecord) -> String {
    record.time.map(|t| t.to_string()).unwrap_or_default()
}

fn scoped(record: &AuditRecord) -> String {
    liaison_core::ids::scoped_id(&record.agency, &record.envelope_id)
}

fn label(l: i32) -> String {
    DataLabel::try_from(l)
        .map(|l| l.short_name().to_owned())
        .unwrap_or_else(|_| l.to_string())
}

impl Report {
    /// The report on `token` from the ledger's `records` (index, record),
    /// in ledger order. Records about other subjects are ignored, except
    /// corrections and erasure confirmations answering one of its shares.
    pub fn of<'a>(token: &str, records: impl IntoIterator<Item = (u64, &'a AuditRecord)>) -> Self {
        let mut report = Report {
            token: token.to_owned(),
            ..Report::default()
        };
        let mut shares: BTreeMap<String, usize> = BTreeMap::new();
        let mut answers = Vec::new();
        let mut until: Vec<u64> = Vec::new();
        let mut ended: std::collections::BTreeSet<u64> = Default::default();
        let mut subject_erased: Option<u64> = None;
        for (index, r) in records {
            let about = r.subject_tokens.iter().any(|t| t == token);
            let operation = Operation::try_from(r.operation).unwrap_or_default();
            let decision = Decision::try_from(r.decision).unwrap_or_default();
            match (operation, decision) {
                (Operation::Erasure, Decision::Accepted)
                    if r.record_id.starts_with("erasure:until.") =>
                {
                    if let Some(t) = r
                        .record_id
                        .strip_prefix("erasure:until.")
                        .and_then(|t| t.parse().ok())
                    {
                        ended.insert(t);
                    }
                }
                (Operation::Collection, Decision::Accepted) if about => {
                    shares.insert(scoped(r), report.shares.len());
                    until.push(r.kept_until);
                    report.shares.push(Share {
                        envelope: scoped(r),
                        kind: r.kind.clone(),
                        sender: r.agency.clone(),
                        author: r.author.clone(),
                        at: at(r),
                        purpose: r.purpose.clone(),
                        legal_basis: r.legal_basis.clone(),
                        classification: Classification::try_from(r.classification)
                            .map(|c| {
                                c.as_str_name()
                                    .trim_start_matches("CLASSIFICATION_")
                                    .to_owned()
                            })
                            .unwrap_or_default(),
                        case_id: r.case_id.clone(),
                        clauses: r.policy_ids.clone(),
                        index,
                        ..Share::default()
                    });
                }
                (Operation::Disclosure, _) if about && r.kind == "erasure_required" => {
                    report.rights.push(Right {
                        code: "erasure_notice".into(),
                        by: r.author.clone(),
                        at: at(r),
                        reason: format!("told {} (DPA 2018 s.48)", r.recipients.join(", ")),
                        index,
                    });
                }
                (Operation::Disclosure, _) if about => {
                    if let Some(&i) = shares.get(&scoped(r)) {
                        report.shares[i].disclosures.push(Disclosure {
                            recipient: r.recipients.join(","),
                            at: at(r),
                            clauses: r.policy_ids.clone(),
                            withheld: r.withheld_labels.iter().map(|l| label(*l)).collect(),
                            index,
                        });
                    }
                }
                (Operation::Collection, Decision::Refused) if about => {
                    report.refused.push(Refused {
                        envelope: scoped(r),
                        kind: r.kind.clone(),
                        sender: r.agency.clone(),
                        at: at(r),
                        code: r.code.clone(),
                        index,
                    });
                }
                (Operation::Erasure, Decision::Accepted) if about && r.in_reply_to.is_empty() => {
                    if r.code == "subject_erased" {
                        subject_erased = subject_erased.or(Some(index));
                    }
                    report.rights.push(Right {
                        code: r.code.clone(),
                        by: r.author.clone(),
                        at: at(r),
                        reason: r.reason.clone(),
                        index,
                    });
                }
                (Operation::Alteration | Operation::Erasure, Decision::Accepted)
                    if !r.in_reply_to.is_empty() =>
                {
                    answers.push((index, r));
                }
                _ => {}
            }
        }
        for (share, until) in report.shares.iter_mut().zip(until) {
            if until > 0 {
                share.kept_until = prost_types::Timestamp {
                    seconds: i64::try_from(until).unwrap_or(i64::MAX),
                    nanos: 0,
                }
                .to_string();
            }
            share.stored = if ended.contains(&until) && until > 0 {
                "erased: retention ended"
            } else if subject_erased.is_some_and(|at| at > share.index) {
                "erased: subject erased"
            } else {
                "retained"
            }
            .to_owned();
        }
        // An answer names the share as `ID` (its sender's own id, which the
        // answerer sent or received) or `SENDER/ID`.
        for (index, r) in answers {
            let found = match r.in_reply_to.split_once('/') {
                Some(_) => shares.get(&r.in_reply_to).copied(),
                None => report.shares.iter().position(|s| {
                    s.envelope.split_once('/').map(|(_, id)| id) == Some(r.in_reply_to.as_str())
                        && (s.sender == r.agency
                            || s.disclosures.iter().any(|d| d.recipient == r.agency))
                }),
            };
            if let Some(i) = found {
                report.shares[i].answers.push(Answer {
                    kind: r.kind.clone(),
                    by: r.agency.clone(),
                    at: at(r),
                    envelope: scoped(r),
                    index,
                });
            }
        }
        report
    }

    /// The report for people to read.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Subject token {}: {} share(s), {} refused\n",
            self.token,
            self.shares.len(),
            self.refused.len()
        );
        for s in &self.shares {
            out.push_str(&format!(
                "\n{} {} ({}), accepted {}\n  sent by {} ({}) under {}; purpose {}, legal basis {}{}\n",
                s.kind,
                s.envelope,
                s.classification,
                s.at,
                s.sender,
                s.author,
                list(&s.clauses),
                s.purpose,
                s.legal_basis,
                if s.case_id.is_empty() {
                    String::new()
                } else {
                    format!("; case {}", s.case_id)
                }
            ));
            out.push_str(&format!(
                "  {}{}\n",
                s.stored,
                if s.kept_until.is_empty() {
                    String::new()
                } else {
                    format!("; kept until {}", s.kept_until)
                }
            ));
            if s.disclosures.is_empty() {
                out.push_str("  received by no agency\n");
            }
            for d in &s.disclosures {
                out.push_str(&format!(
                    "  to {} at {} under {}; withheld: {}\n",
                    d.recipient,
                    d.at,
                    list(&d.clauses),
                    if d.withheld.is_empty() {
                        "nothing".to_owned()
                    } else {
                        d.withheld.join(", ")
                    }
                ));
            }
            for a in &s.answers {
                out.push_str(&format!(
                    "  {} by {} at {} ({})\n",
                    a.kind.replace('_', " "),
                    a.by,
                    a.at,
                    a.envelope
                ));
            }
        }
        for r in &self.refused {
            out.push_str(&format!(
                "\nrefused {} {} from {} at {}: {}\n",
                r.kind, r.envelope, r.sender, r.at, r.code
            ));
        }
        for r in &self.rights {
            out.push_str(&format!(
                "\n{} by {} at {}: {}\n",
                r.code.replace('_', " "),
                r.by,
                r.at,
                r.reason
            ));
        }
        out
    }

    /// The report as one self-contained HTML page (every value escaped).
    pub fn html(&self) -> String {
        let mut rows = String::new();
        for s in &self.shares {
            let to: Vec<String> = s
                .disclosures
                .iter()
                .map(|d| {
                    format!(
                        "{} ({}; withheld: {})",
                        d.recipient,
                        d.at,
                        if d.withheld.is_empty() {
                            "nothing".to_owned()
                        } else {
                            d.withheld.join(", ")
                        }
                    )
                })
                .collect();
            let answers: Vec<String> = s
                .answers
                .iter()
                .map(|a| format!("{} by {} ({})", a.kind, a.by, a.at))
                .collect();
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&format!("{}; {}", s.at, s.stored)),
                escape(&s.kind),
                escape(&s.sender),
                escape(&s.envelope),
                escape(&list(&s.clauses)),
                escape(&s.purpose),
                escape(&s.legal_basis),
                escape(&to.join("; ")),
                escape(&answers.join("; ")),
            ));
        }
        let refused: String = self
            .refused
            .iter()
            .map(|r| {
                format!(
                    "<li>{} {} from {} at {}: {}</li>\n",
                    escape(&r.kind),
                    escape(&r.envelope),
                    escape(&r.sender),
                    escape(&r.at),
                    escape(&r.code)
                )
            })
            .collect();
        let rights: String = self
            .rights
            .iter()
            .map(|r| {
                format!(
                    "<li>{} by {} at {}: {}</li>\n",
                    escape(&r.code.replace('_', " ")),
                    escape(&r.by),
                    escape(&r.at),
                    escape(&r.reason)
                )
            })
            .collect();
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Subject report</title></head><body>\n\
             <h1>What was shared about subject token {token}</h1>\n\
             <table border=\"1\"><tr><th>accepted</th><th>kind</th><th>sender</th><th>envelope</th><th>clauses</th><th>purpose / legal basis</th><th>to (withheld)</th><th>corrections, erasures</th></tr>\n{rows}</table>\n\
             <h2>Refused</h2>\n<ul>\n{refused}</ul>\n\
             <h2>Restrictions and erasures</h2>\n<ul>\n{rights}</ul>\n</body></html>\n",
            token = escape(&self.token),
        )
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

use liaison_core::html::escape;

#[cfg(test)]
mod tests {
    use super::*;

    fn record(operation: Operation, decision: Decision, agency: &str, id: &str) -> AuditRecord {
        AuditRecord {
            operation: operation as i32,
            decision: decision as i32,
            agency: agency.into(),
            envelope_id: id.into(),
            kind: "referral".into(),
            subject_tokens: vec!["tok-1".into()],
            ..Default::default()
        }
    }

    #[test]
    fn shares_gather_their_copies_refusals_and_corrections() {
        let collection = AuditRecord {
            policy_ids: vec!["ISA-EDU-01/send".into()],
            purpose: "safeguarding".into(),
            ..record(Operation::Collection, Decision::Accepted, "school-a", "r1")
        };
        let to_police = AuditRecord {
            recipients: vec!["police".into()],
            withheld_labels: vec![DataLabel::Health as i32],
            ..record(Operation::Disclosure, Decision::Delivered, "school-a", "r1")
        };
        let other_subject = AuditRecord {
            subject_tokens: vec!["tok-2".into()],
            ..record(Operation::Collection, Decision::Accepted, "school-b", "r2")
        };
        let refused = AuditRecord {
            code: "policy_denied".into(),
            ..record(Operation::Collection, Decision::Refused, "school-b", "r3")
        };
        let correction = AuditRecord {
            kind: "correction".into(),
            in_reply_to: "r1".into(),
            subject_tokens: vec![],
            ..record(Operation::Alteration, Decision::Accepted, "school-a", "c1")
        };
        let unrelated = AuditRecord {
            kind: "correction".into(),
            in_reply_to: "r1".into(),
            subject_tokens: vec![],
            ..record(Operation::Alteration, Decision::Accepted, "probation", "c2")
        };
        let records = [
            collection,
            to_police,
            other_subject,
            refused,
            correction,
            unrelated,
        ];
        let report = Report::of(
            "tok-1",
            records.iter().enumerate().map(|(i, r)| (i as u64, r)),
        );
        assert_eq!(report.shares.len(), 1);
        let share = &report.shares[0];
        assert_eq!(share.envelope, "school-a/r1");
        assert_eq!(share.disclosures[0].recipient, "police");
        assert_eq!(share.disclosures[0].withheld, ["health"]);
        // The school's own correction of its share; not probation's, which
        // neither sent nor received it.
        assert_eq!(share.answers.len(), 1);
        assert_eq!(share.answers[0].envelope, "school-a/c1");
        assert_eq!(report.refused[0].code, "policy_denied");
        let text = report.text();
        assert!(
            text.contains("to police at") && text.contains("withheld: health"),
            "{text}"
        );
        assert!(text.contains("correction by school-a"), "{text}");
        let html = Report {
            token: "<t>".into(),
            ..report
        }
        .html();
        assert!(
            html.contains("&lt;t&gt;") && !html.contains("<t>"),
            "{html}"
        );
    }
}
