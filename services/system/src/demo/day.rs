//! The day: `count` contributions in four parts, each begun once the system
//! has caught up with the last. Public and statutory referrals, case
//! updates, risk assessments, information requests, case moves and panel
//! changes, cases opened from referrals, corrections, and shares no
//! agreement permits; a weekly re-prioritisation opens the second part, a
//! former subject re-engages and one person is referred twice in the third,
//! and an attack opens the fourth with alerts to business partners.

use super::casebook::CaseFile;
use super::envelopes::{Contribution, case_change, correction, envelope, from, in_secs, status};
use super::people::{Dice, Someone};
use super::{Phase, Script};
use liaison_client::subject::SubjectKey;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{CaseReprioritised, CaseStatus, Classification, ParticipationChanged};

/// The phase after which `--kill-services` kills the fold services: its
/// events are still waiting for them.
pub const KILL_AFTER: &str = "morning: referrals and case work";

/// The moments the report follows.
#[derive(Debug, Default)]
pub struct Moments {
    /// The referral of a former subject, and the closed case it matches.
    pub reengaging: Option<(String, String)>,
    /// The two referrals of one person by two agencies.
    pub referred_twice: Vec<String>,
    /// The alerts issued after the attack.
    pub alerts: Vec<String>,
    /// Requests sent with a deadline of seconds to an agency that will not answer.
    pub overdue: Vec<String>,
}

/// The day being written.
pub(super) struct Writer<'a> {
    pub(super) key: &'a SubjectKey,
    pub(super) dice: Dice,
    /// The cases as the part began (what senders go by: a change made in
    /// this part takes effect for them in the next).
    pub(super) live: Vec<CaseFile>,
    /// The cases as this part leaves them.
    pub(super) after: Vec<CaseFile>,
    pub(super) former: &'a [CaseFile],
    /// Referrals sent in earlier parts: (sender, id, legal basis, subject).
    pub(super) referrals: Vec<(&'static str, String, &'static str, Someone)>,
    pub(super) this_part: Vec<(&'static str, String, &'static str, Someone)>,
    pub(super) moved: std::collections::BTreeSet<String>,
    pub(super) moments: Moments,
    pub(super) n: usize,
}

impl Writer<'_> {
    pub(super) fn id(&mut self, what: &str) -> String {
        self.n += 1;
        format!("demo-{:05}-{what}", self.n)
    }

    /// One move of a case along its lifecycle, if it has not moved in this part.
    fn move_case(&mut self, at: usize, closing: bool) -> Option<Contribution> {
        let case = &self.live[at];
        if !self.moved.insert(case.id.clone()) {
            return None;
        }
        let (to, reason) = match (case.status, closing) {
            (CaseStatus::Referred, _) => (CaseStatus::Triage, "screened"),
            (CaseStatus::Triage, _) => (CaseStatus::Open, "channel-adopted"),
            (CaseStatus::Open | CaseStatus::UnderReview, true) => {
                (CaseStatus::Closed, "risk-managed")
            }
            (CaseStatus::Open, false) => (CaseStatus::UnderReview, "weekly-review"),
            (CaseStatus::UnderReview, false) => (CaseStatus::Open, "new-concern"),
            _ => return None,
        };
        let mut change = status(to, case.unit, reason);
        if to == CaseStatus::Closed {
            change.review_date = Some(in_secs(180 * 24 * 3600));
        }
        let (owner, case_id) = (case.owner, case.id.clone());
        self.after[at].status = to;
        let id = self.id("move");
        Some(case_change(id, owner, &case_id, Body::CaseStatus(change)))
    }

    /// The owner changes who takes part: adds an agency not yet in, or lets probation go.
    fn participation(&mut self, at: usize) -> Option<Contribution> {
        if !self.moved.insert(format!("panel:{}", self.live[at].id)) {
            return None;
        }
        let case = &mut self.after[at];
        let (added, removed) = if let Some(p) = ["nhs-trust", "probation"]
            .into_iter()
            .find(|p| !case.participants.contains(p))
        {
            case.participants.push(p);
            (vec![p.to_owned()], vec![])
        } else {
            case.participants.retain(|p| *p != "probation");
            // Probation stops sending on the case at once.
            self.live[at].participants.retain(|p| *p != "probation");
            (vec![], vec!["probation".to_owned()])
        };
        let (owner, case_id) = (case.owner, case.id.clone());
        let id = self.id("panel");
        Some(case_change(
            id,
            owner,
            &case_id,
            Body::Participation(ParticipationChanged { added, removed }),
        ))
    }

    /// The police or the council open a case from an earlier referral.
    fn open_from_referral(&mut self) -> Option<Contribution> {
        let (sender, referral, _, subject) = self.referrals.pop()?;
        let owner = if sender == "police" {
            "council"
        } else {
            "police"
        };
        let unit = if owner == "council" {
            "channel-panel"
        } else {
            "ctp-north"
        };
        let case_id = format!("CASE-D{:04}", self.after.len() + 1);
        let mut change = status(CaseStatus::Referred, unit, "referral-received");
        change.referral_envelope_id = referral;
        change.subject_tokens = vec![subject.token(self.key)];
        self.after.push(CaseFile {
            id: case_id.clone(),
            owner,
            unit,
            subject,
            participants: vec![],
            status: CaseStatus::Referred,
        });
        let id = self.id("open");
        Some(case_change(id, owner, &case_id, Body::CaseStatus(change)))
    }

    /// One ordinary contribution of the day.
    fn contribution(&mut self, part: usize) -> Option<Contribution> {
        let roll = self.dice.roll() % 100;
        let at = self.dice.below(self.live.len());
        let case = self.live[at].clone();
        let open = matches!(case.status, CaseStatus::Open | CaseStatus::UnderReview)
            && !case.participants.is_empty();
        let participant = |w: &mut Self| {
            let mut panel = vec![case.owner];
            panel.extend(case.participants.iter().copied());
            panel[w.dice.below(panel.len())]
        };
        match roll {
            0..6 => Some(self.someone_new("police")),
            6..17 => {
                let school = if roll.is_multiple_of(2) {
                    "school-a"
                } else {
                    "school-b"
                };
                Some(self.someone_new(school))
            }
            17..24 => Some(self.someone_new("nhs-trust")),
            24..27 => Some(self.someone_new("council")),
            27..66 | 95..100 if open => {
                // Now and then an agency not on the panel tries: need to know refuses it.
                let sender = if self.dice.chance(4) {
                    ["council", "nhs-trust", "probation"]
                        .into_iter()
                        .find(|a| *a != case.owner && !case.participants.contains(a))
                        .unwrap_or("probation")
                } else {
                    participant(self)
                };
                Some(self.case_update(&case, sender))
            }
            66..76 if open => {
                let sender = participant(self);
                Some(self.risk(&case, sender))
            }
            76..81 if open => {
                let sender = participant(self);
                let mut asked: Vec<&str> = case
                    .participants
                    .iter()
                    .copied()
                    .chain([case.owner])
                    .filter(|a| *a != sender)
                    .take(1)
                    .collect();
                if self.dice.chance(30) {
                    asked.push("school-a");
                }
                Some(self.request(&case, sender, &asked, 2 * 3600))
            }
            81..85 => {
                let closing = part == 3 && self.dice.chance(40);
                self.move_case(at, closing)
            }
            85..88 if open && case.status == CaseStatus::Open => self.participation(at),
            88..91 if part > 0 => self.open_from_referral(),
            91..93 if part > 0 && !self.referrals.is_empty() => {
                let pick = self.dice.below(self.referrals.len());
                let (sender, of, basis, _) = self.referrals.remove(pick);
                let withdrawn = self.dice.chance(25);
                let id = self.id("correction");
                Some(correction(id, sender, &of, withdrawn, basis))
            }
            93..95 => Some(self.someone_new("retail-bsp")),
            _ => None,
        }
    }

    /// `n` ordinary contributions (fewer kinds fit some rolls: rolled again).
    fn part(&mut self, part: usize, n: usize) -> Vec<Contribution> {
        self.moved.clear();
        let mut out = Vec::with_capacity(n);
        let mut tries = 0;
        while out.len() < n && tries < n * 20 {
            tries += 1;
            if let Some(c) = self.contribution(part) {
                out.push(c);
            }
        }
        self.referrals.append(&mut self.this_part);
        self.live = self.after.clone();
        out
    }
}

/// The day's script: `count` contributions (the special moments included).
pub fn day(
    count: usize,
    live: Vec<CaseFile>,
    former: &[CaseFile],
    key: &SubjectKey,
) -> (Script, Moments) {
    let mut w = Writer {
        key,
        dice: Dice::new(0x5eed_11a1_5011),
        after: live.clone(),
        live,
        former,
        referrals: vec![],
        this_part: vec![],
        moved: Default::default(),
        moments: Moments::default(),
        n: 0,
    };
    let quarter = count / 4;
    let mut script = Vec::new();
    script.push(Phase::concurrent("early: referrals and case work", w.part(0, quarter)).settled());
    // The weekly re-prioritisation: the north unit puts ten cases at the top.
    let north: Vec<CaseFile> = w
        .live
        .iter()
        .filter(|c| c.unit == "ctp-north")
        .skip(w.dice.below(20))
        .step_by(3)
        .take(10)
        .cloned()
        .collect();
    let top = north
        .iter()
        .enumerate()
        .map(|(rank, case)| {
            case_change(
                format!("demo-weekly-{}", case.id),
                case.owner,
                &case.id,
                Body::Reprioritisation(CaseReprioritised {
                    rank: rank as u32 + 1,
                    reason_code: "weekly-review".into(),
                }),
            )
        })
        .collect();
    script.push(Phase::ordered("weekly re-prioritisation (ctp-north)", top).settled());
    script.push(Phase::concurrent(KILL_AFTER, w.part(1, quarter)).settled());
    // A former subject re-engages; one person is referred by two agencies;
    // a school, closed today, is asked for information it will not give.
    let mut third = w.part(2, quarter.saturating_sub(4));
    let former_case = &w.former[w.former.len() / 3];
    let again = w.referral("school-a", former_case.subject.written_differently());
    w.moments.reengaging = Some((again.envelope.id.clone(), former_case.id.clone()));
    let twice = Someone::generate(&mut w.dice);
    let first = w.referral("nhs-trust", twice.clone());
    let second = w.referral("school-b", twice.written_differently());
    w.moments.referred_twice = vec![first.envelope.id.clone(), second.envelope.id.clone()];
    if let Some(case) = w
        .live
        .iter()
        .find(|c| c.status == CaseStatus::Open && !c.participants.is_empty())
        .cloned()
    {
        let late = w.request(&case, case.owner, &["school-b"], 3);
        w.moments.overdue.push(late.envelope.id.clone());
        third.insert(third.len() / 4, late);
    }
    third.insert(third.len() / 3, first);
    third.insert(third.len() / 2, again);
    third.insert(third.len() * 3 / 4, second);
    script.push(Phase::concurrent("afternoon: a former subject re-engages", third).settled());
    // The attack.
    let alerts: Vec<Contribution> = [
        (
            "retail",
            "london",
            "Attack in a crowded place in central London: heighten protective security",
        ),
        (
            "transport",
            "national",
            "Attack in a crowded place: heighten security at stations and hubs",
        ),
    ]
    .into_iter()
    .map(|(sector, region, headline)| {
        let id = w.id("alert");
        w.moments.alerts.push(id.clone());
        from(
            "police",
            envelope(
                id,
                "police",
                "protective-security",
                "DPA-2018-s35",
                Classification::Official,
                "",
                Body::Alert(liaison_proto::v1::AlertIssued {
                    threat_level: liaison_proto::v1::alert_issued::ThreatLevel::Critical as i32,
                    sectors: vec![sector.into()],
                    region: region.into(),
                    headline: headline.into(),
                    protective_advice:
                        "Review access control, brief staff on ACT, report suspicious behaviour"
                            .into(),
                    location: "Exampletown city centre".into(),
                }),
            ),
        )
    })
    .collect();
    script.push(Phase::ordered("an attack: alerts to business partners", alerts).settled());
    let rest = count.saturating_sub(quarter * 3).saturating_sub(6);
    script.push(Phase::concurrent("evening: case work goes on", w.part(3, rest)).settled());
    (script, w.moments)
}
