//! Policy test cases: what the partnership expects its ISAs to do, written
//! as data (`deploy/policies/tests/*.toml`) and checked against the policy
//! set by `liaison policy test` and by CI. Each case names a sender and an
//! envelope's shape (kind, purpose, legal basis, classification, caveats,
//! case participants, addressees), whether sending is allowed, and exactly
//! who receives a copy and which labels each sees:
//!
//! ```toml
//! [[case]]
//! name = "a school's Prevent referral reaches the police and the council"
//! sender = "school-a"
//! kind = "referral"
//! purpose = "safeguarding"
//! legal_basis = "CTSA-2015-s26"
//! classification = "OFFICIAL-SENSITIVE"
//! send = "allow"                    # allow | deny | invalid
//! [case.recipients]
//! police = ["identity", "location", "safeguarding", "education"]   # labels seen
//! council = ["education", "health", "identity", "location", "safeguarding", "social-care"]
//! ```

use crate::policy::{Facts, Policy, Replied};
use liaison_core::AgencyId;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{Classification, DataLabel, Envelope};
use liaison_runtime::registry::Registry;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What sending should come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Permitted by a clause.
    Allow,
    /// Refused by policy.
    Deny,
    /// Refused before policy: a purpose, legal basis or caveat outside the vocabulary.
    Invalid,
}

/// One policy test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub sender: AgencyId,
    /// referral | case_update | alert
    pub kind: String,
    pub purpose: String,
    pub legal_basis: String,
    #[serde(default = "official_sensitive")]
    pub classification: String,
    #[serde(default)]
    pub caveats: Vec<String>,
    /// The case's participants (case updates).
    #[serde(default)]
    pub participants: Vec<AgencyId>,
    /// The case's owner (default: the first participant).
    #[serde(default)]
    pub owner: Option<AgencyId>,
    #[serde(default)]
    pub addressees: Vec<String>,
    /// For a participation change: the agencies it adds.
    #[serde(default)]
    pub added: Vec<String>,
    /// For an answer (`in_reply_to`): who sent and who received the envelope answered.
    #[serde(default)]
    pub reply: Option<ReplyCase>,
    /// For an alert: the sectors and region addressed.
    #[serde(default)]
    pub sectors: Vec<String>,
    #[serde(default)]
    pub region: String,
    pub send: Expect,
    /// Exactly who receives a copy, with the labels each may see.
    #[serde(default)]
    pub recipients: BTreeMap<AgencyId, Vec<String>>,
}

/// The envelope a test case answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyCase {
    pub sender: AgencyId,
    pub recipients: Vec<AgencyId>,
    pub kind: String,
}

impl Case {
    /// What the gateway would have looked up for this case.
    pub fn facts(&self) -> Facts {
        let mut facts = Facts::case(&self.participants);
        if self.owner.is_some() {
            facts.owner = self.owner.clone();
        }
        facts.replied = self.reply.as_ref().map(|r| Replied {
            sender: r.sender.clone(),
            recipients: r.recipients.clone(),
            kind: r.kind.clone(),
        });
        facts
    }
}

fn official_sensitive() -> String {
    "OFFICIAL-SENSITIVE".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

/// A case that did not come out as expected, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub file: String,
    pub case: String,
    pub problems: Vec<String>,
}

/// The outcome of running a directory of cases.
#[derive(Debug, Default)]
pub struct Run {
    pub passed: Vec<(String, String)>,
    pub failed: Vec<Failure>,
}

/// Reads every `*.toml` file of `dir`, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Vec<Case>)>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("policy tests {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("policy tests {}: no *.toml files", dir.display()));
    }
    files
        .into_iter()
        .map(|file| {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let cases: CaseFile =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            Ok((file, cases.case))
        })
        .collect()
}

fn classification(text: &str) -> Result<Classification, String> {
    match text {
        "OFFICIAL" => Ok(Classification::Official),
        "OFFICIAL-SENSITIVE" => Ok(Classification::OfficialSensitive),
        "SECRET" => Ok(Classification::Secret),
        "TOP-SECRET" => Ok(Classification::TopSecret),
        other => Err(format!(
            "classification {other:?} is not OFFICIAL, OFFICIAL-SENSITIVE, SECRET or TOP-SECRET"
        )),
    }
}

/// The envelope a case describes (bodies empty: policy sees only the shape).
pub fn envelope_of(case: &Case) -> Result<Envelope, String> {
    let mut body = Body::empty(&case.kind).ok_or_else(|| {
        format!(
            "kind {:?} is not one of {}",
            case.kind,
            liaison_proto::KINDS.join(", ")
        )
    })?;
    match &mut body {
        Body::Participation(p) => p.added = case.added.clone(),
        Body::Alert(a) => {
            a.sectors = case.sectors.clone();
            a.region = case.region.clone();
        }
        _ => {}
    }
    Ok(Envelope {
        id: "policy-test".into(),
        sender_agency: case.sender.to_string(),
        author: "policy-test".into(),
        classification: classification(&case.classification)? as i32,
        handling_caveats: case.caveats.clone(),
        purpose: case.purpose.clone(),
        legal_basis: case.legal_basis.clone(),
        case_id: if liaison_core::envelope_rules::CASE_KINDS.contains(&case.kind.as_str())
            || !case.participants.is_empty()
        {
            "CASE-TEST".into()
        } else {
            String::new()
        },
        addressees: case.addressees.clone(),
        body: Some(body),
        ..Default::default()
    })
}

/// Runs one case; the problems found (none: it passed).
pub fn check(policy: &Policy, registry: &Registry, case: &Case) -> Vec<String> {
    let envelope = match envelope_of(case) {
        Ok(e) => e,
        Err(e) => return vec![e],
    };
    if let Err((field, reason)) = policy.vocabulary().check(&envelope) {
        return if case.send == Expect::Invalid {
            vec![]
        } else {
            vec![format!("expected {:?}, but {field} {reason}", case.send)]
        };
    }
    if case.send == Expect::Invalid {
        return vec!["expected invalid, but the vocabulary accepts it".into()];
    }
    let (send, routes) = match policy.evaluate(&case.sender, &envelope, registry, &case.facts()) {
        Ok(r) => r,
        Err(e) => return vec![format!("policy could not be evaluated: {e}")],
    };
    let mut problems = vec![];
    match (case.send, send.allowed) {
        (Expect::Allow, false) => problems.push(format!(
            "expected send allowed, but it was denied (by {:?})",
            send.clauses
        )),
        (Expect::Deny, true) => problems.push(format!(
            "expected send denied, but {:?} allowed it",
            send.clauses
        )),
        _ => {}
    }
    let got: BTreeMap<AgencyId, Vec<String>> = routes
        .iter()
        .map(|r| {
            let sees = DataLabel::all()
                .filter(|l| !r.withheld.contains(l))
                .map(|l| l.short_name().to_owned())
                .collect();
            (r.recipient.clone(), sees)
        })
        .collect();
    for (agency, sees) in &case.recipients {
        let mut expected = sees.clone();
        expected.sort();
        match got.get(agency) {
            None => problems.push(format!("expected {agency} to receive a copy; it does not")),
            Some(actual) => {
                let mut actual = actual.clone();
                actual.sort();
                if actual != expected {
                    problems.push(format!("{agency} sees {actual:?}, expected {expected:?}"));
                }
            }
        }
    }
    for agency in got.keys().filter(|a| !case.recipients.contains_key(*a)) {
        problems.push(format!(
            "{agency} receives a copy; the case does not expect it"
        ));
    }
    problems
}

/// Runs every case of every file in `dir`.
pub fn run_dir(policy: &Policy, registry: &Registry, dir: &Path) -> Result<Run, String> {
    let mut run = Run::default();
    for (file, cases) in load_dir(dir)? {
        let file = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for case in cases {
            let problems = check(policy, registry, &case);
            if problems.is_empty() {
                run.passed.push((file.clone(), case.name));
            } else {
                run.failed.push(Failure {
                    file: file.clone(),
                    case: case.name,
                    problems,
                });
            }
        }
    }
    Ok(run)
}
