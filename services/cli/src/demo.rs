//! `liaison demo`: a deterministic day of partnership traffic through a running
//! system. Schools and an NHS trust refer people at risk, the Channel panel
//! agencies update open cases, an attack is followed by protective-security
//! alerts to business partners, and some senders get it wrong (a share no
//! agreement permits, a SECRET update the council is not cleared for, a
//! re-sent envelope). Each agency then
//! reads its inbox, and the audit ledger is verified. All people are fictional.

use crate::client::{AgencyClient, Identifiers, SubjectKey, subject_token};
use anyhow::Result;
use liaison_kit::AgencyId;
use liaison_kit::participation::Participation;
use liaison_proto::v1::alert_issued::ThreatLevel;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{AlertIssued, CaseUpdated, Classification, Envelope, Person, ReferralMade};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long the demo keeps re-sending one envelope while the gateway is
/// unavailable or rate-limiting its sender.
const SEND_PATIENCE: Duration = Duration::from_secs(30);

const GIVEN: &[&str] = &[
    "Alex", "Sam", "Jordan", "Casey", "Riley", "Morgan", "Taylor", "Jamie", "Robin", "Drew",
];
const FAMILY: &[&str] = &[
    "Example",
    "Sample",
    "Testfield",
    "Placeholder",
    "Fictional",
    "Madeup",
];

/// A small deterministic generator (xorshift), so every run sends the same day.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let n = self.next() as usize % items.len();
        items[n]
    }
}

fn person(dice: &mut Dice, key: &SubjectKey, category: &str) -> Person {
    let name = format!("{} {}", dice.pick(GIVEN), dice.pick(FAMILY));
    let dob = format!(
        "20{:02}-{:02}-{:02}",
        dice.next() % 12,
        1 + dice.next() % 12,
        1 + dice.next() % 28
    );
    Person {
        token: pseudonym(key, &name, &dob),
        full_name: name,
        date_of_birth: dob,
        address: format!("{} Demo Street, Exampletown", 1 + dice.next() % 200),
        category: category.into(),
    }
}

/// The person's subject token under the development partnership key, as a
/// referring agency's system computes it (a generated name and date always
/// normalise; an empty token would only mean "not linked").
fn pseudonym(key: &SubjectKey, name: &str, dob: &str) -> String {
    let identifiers = Identifiers {
        full_name: name.to_owned(),
        date_of_birth: dob.to_owned(),
        other: vec![],
    };
    subject_token(key, &identifiers).unwrap_or_default()
}

/// One planned contribution: who sends what, and what the sender should expect.
pub struct Contribution {
    pub sender: &'static str,
    pub envelope: Envelope,
}

fn envelope(
    n: usize,
    sender: &str,
    purpose: &str,
    classification: Classification,
    case_id: String,
    body: Body,
) -> Envelope {
    Envelope {
        id: format!("demo-{n:05}-{sender}"),
        sender_agency: sender.into(),
        author: format!("{sender}-case-system"),
        sent_at: Some(liaison_kit::time::timestamp_now()),
        classification: classification as i32,
        handling_caveats: vec![],
        purpose: purpose.into(),
        legal_basis: legal_basis(&body).into(),
        case_id,
        traceparent: String::new(),
        addressees: vec![],
        body: Some(body),
        ..Default::default()
    }
}

/// A business partner's acknowledgement of an alert it received (ISA-PSA-02):
/// the alerts service counts it, the issuing unit receives it. Its id is
/// derived from the alert's, so a re-run of the demo's inbox step re-sends
/// the same acknowledgement.
pub fn acknowledgement(alert: &Envelope, partner: &AgencyId) -> Envelope {
    Envelope {
        id: format!("{}-ack-{partner}", alert.id),
        sender_agency: partner.to_string(),
        author: format!("{partner}-case-system"),
        sent_at: Some(liaison_kit::time::timestamp_now()),
        classification: Classification::Official as i32,
        purpose: "protective-security".into(),
        legal_basis: "DPA-2018-s35".into(),
        in_reply_to: alert.id.clone(),
        body: Some(Body::AlertAck(liaison_proto::v1::AlertAcknowledged {
            action: "actioned".into(),
        })),
        ..Default::default()
    }
}

/// The legal-basis code (deploy/policies/vocabulary.toml) each kind is sent under.
fn legal_basis(body: &Body) -> &'static str {
    match body {
        Body::Referral(_) => "CTSA-2015-s26",
        Body::CaseUpdate(_) => "CTSA-2015-s36",
        _ => "DPA-2018-s35",
    }
}

/// Who takes part in each demo case: the police own it and the council
/// always take part; health and probation in most (so need to know shows:
/// an update on a case an agency is not part of is neither sent nor received).
pub fn participation(contributions: &[Contribution]) -> BTreeMap<String, Participation> {
    let agency = |id: &str| AgencyId::parse(id).ok();
    contributions
        .iter()
        .filter(|c| c.envelope.kind() == "case_update")
        .filter_map(|c| {
            let n: usize = c
                .envelope
                .case_id
                .trim_start_matches("CASE-")
                .parse()
                .unwrap_or_default();
            let mut participants = vec!["police", "council"];
            if !n.is_multiple_of(5) {
                participants.push("nhs-trust");
            }
            if !n.is_multiple_of(4) {
                participants.push("probation");
            }
            let participation = Participation {
                owner: agency("police")?,
                participants: participants.into_iter().filter_map(agency).collect(),
                status: 0,
            };
            Some((c.envelope.case_id.clone(), participation))
        })
        .collect()
}

/// The day's traffic: `count` contributions, the same every run; subject
/// tokens under the partnership's subject `key`.
pub fn day(count: usize, key: &SubjectKey) -> Vec<Contribution> {
    let mut dice = Dice(0x5eed_11a1_5011);
    let attack_at = count * 3 / 4;
    (0..count)
        .map(|n| {
            let roll = dice.next() % 100;
            let case_id = format!("CASE-{:04}", dice.next() % 500);
            let (sender, envelope) = if n >= attack_at && n < attack_at + 4 {
                let sector = if n.is_multiple_of(2) {
                    "retail"
                } else {
                    "transport"
                };
                let body = Body::Alert(AlertIssued {
                    threat_level: ThreatLevel::Severe as i32,
                    sectors: vec![sector.into()],
                    region: "national".into(),
                    headline: "Attack in a crowded place: heighten protective security".into(),
                    protective_advice:
                        "Review access control, brief staff on ACT, report suspicious behaviour"
                            .into(),
                    location: "Exampletown city centre".into(),
                });
                (
                    "police",
                    envelope(
                        n,
                        "police",
                        "protective-security",
                        Classification::Official,
                        String::new(),
                        body,
                    ),
                )
            } else if roll < 35 {
                let school = if roll.is_multiple_of(2) {
                    "school-a"
                } else {
                    "school-b"
                };
                let body = Body::Referral(ReferralMade {
                    subject: Some(person(&mut dice, key, "person at risk")),
                    source: "school".into(),
                    concern: "Expressed support for violent extremist material in class".into(),
                    risk_indicators: vec!["online radicalisation".into()],
                    health_notes: "Known to CAMHS".into(),
                    education_notes: "Attendance fell this term".into(),
                    ..Default::default()
                });
                (
                    school,
                    envelope(
                        n,
                        school,
                        "safeguarding",
                        Classification::OfficialSensitive,
                        String::new(),
                        body,
                    ),
                )
            } else if roll < 50 {
                let body = Body::Referral(ReferralMade {
                    subject: Some(person(&mut dice, key, "person at risk")),
                    source: "health".into(),
                    concern: "Patient disclosed intent to travel to a conflict zone".into(),
                    health_notes: "Under community mental health team".into(),
                    ..Default::default()
                });
                (
                    "nhs-trust",
                    envelope(
                        n,
                        "nhs-trust",
                        "safeguarding",
                        Classification::OfficialSensitive,
                        String::new(),
                        body,
                    ),
                )
            } else if roll < 92 {
                let sender =
                    ["police", "council", "nhs-trust", "probation"][(dice.next() % 4) as usize];
                let classification = if sender == "police" && roll.is_multiple_of(7) {
                    Classification::Secret
                } else {
                    Classification::OfficialSensitive
                };
                let body = Body::CaseUpdate(CaseUpdated {
                    subject: Some(person(&mut dice, key, "person at risk")),
                    update_type: "review".into(),
                    summary: "Weekly review: risk re-assessed".into(),
                    health_notes: if sender == "nhs-trust" {
                        "Engaging with treatment".into()
                    } else {
                        String::new()
                    },
                    intelligence: if sender == "police" {
                        "No new intelligence".into()
                    } else {
                        String::new()
                    },
                    location: "Exampletown".into(),
                });
                (
                    sender,
                    envelope(n, sender, "safeguarding", classification, case_id, body),
                )
            } else {
                // A share no agreement permits: a business partner sending a referral.
                let body = Body::Referral(ReferralMade {
                    subject: Some(person(&mut dice, key, "person at risk")),
                    source: "business".into(),
                    concern: "Suspicious purchase".into(),
                    ..Default::default()
                });
                (
                    "retail-bsp",
                    envelope(
                        n,
                        "retail-bsp",
                        "safeguarding",
                        Classification::Official,
                        String::new(),
                        body,
                    ),
                )
            };
            Contribution { sender, envelope }
        })
        .collect()
}

/// What the demo saw.
#[derive(Debug, Default)]
pub struct Summary {
    pub sent: BTreeMap<(String, String), usize>,
    pub outcomes: BTreeMap<String, usize>,
    pub latencies: Vec<Duration>,
}

impl Summary {
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(i).copied().unwrap_or_default()
    }
}

/// Sends `contributions` through `clients` (one per sending agency), then
/// re-sends the first accepted one to show de-duplication.
pub async fn replay(
    clients: &BTreeMap<AgencyId, AgencyClient>,
    contributions: &[Contribution],
) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut first_accepted = None;
    for c in contributions {
        let Some(client) = AgencyId::parse(c.sender).ok().and_then(|a| clients.get(&a)) else {
            continue;
        };
        let started = Instant::now();
        let verdict = client
            .send_until_answered(&c.envelope, SEND_PATIENCE)
            .await?;
        summary.latencies.push(started.elapsed());
        *summary
            .sent
            .entry((c.sender.to_owned(), c.envelope.kind().to_owned()))
            .or_default() += 1;
        let outcome = match Outcome::try_from(verdict.outcome) {
            Ok(Outcome::Accepted) => {
                first_accepted.get_or_insert((client, c.envelope.clone()));
                "accepted".to_owned()
            }
            Ok(Outcome::Duplicate) => "duplicate".to_owned(),
            _ => format!("refused: {}", verdict.code),
        };
        *summary.outcomes.entry(outcome).or_default() += 1;
    }
    if let Some((client, envelope)) = first_accepted {
        let verdict = client.send_until_answered(&envelope, SEND_PATIENCE).await?;
        let outcome = if verdict.outcome == Outcome::Duplicate as i32 {
            "duplicate (re-sent id, not delivered again)".to_owned()
        } else {
            format!("re-send answered {:?}", verdict.outcome)
        };
        *summary.outcomes.entry(outcome).or_default() += 1;
    }
    Ok(summary)
}
