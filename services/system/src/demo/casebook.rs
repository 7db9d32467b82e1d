//! The partnership's case load at dawn: live investigations owned by the
//! police's counter-terrorism units and the council's Channel team, each
//! with its panel of participants, and former subjects whose cases closed
//! but whose risk stays under review. The morning loads it through the
//! gateway in the order its owners would have: referred, triaged, opened
//! with the panel joining; former subjects referred and closed.

use super::envelopes::{Contribution, case_change, in_secs, status};
use super::people::{Dice, Someone};
use super::{Phase, Script};
use liaison_client::subject::SubjectKey;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{CaseStatus, ParticipationChanged};

/// The police's units and the council's Channel team, with their shares of
/// the live case load (in tenths).
pub const UNITS: [(&str, &str); 5] = [
    ("police", "ctp-north"),
    ("police", "ctp-south"),
    ("police", "ctp-east"),
    ("police", "ctp-west"),
    ("council", "channel-panel"),
];

/// One case of the book.
#[derive(Debug, Clone)]
pub struct CaseFile {
    pub id: String,
    pub owner: &'static str,
    pub unit: &'static str,
    pub subject: Someone,
    pub participants: Vec<&'static str>,
    /// Where the day has taken it (planned, one move per part of the day).
    pub status: CaseStatus,
}

impl CaseFile {
    pub fn token(&self, key: &SubjectKey) -> String {
        self.subject.token(key)
    }
}

/// Who joins the panel of a case besides its owner.
fn panel(owner: &'static str, dice: &mut Dice) -> Vec<&'static str> {
    let mut joined = vec![if owner == "police" {
        "council"
    } else {
        "police"
    }];
    if dice.chance(70) {
        joined.push("nhs-trust");
    }
    if dice.chance(40) {
        joined.push("probation");
    }
    joined
}

/// The case load: `live` investigations and `former` subjects.
pub fn book(live: usize, former: usize, dice: &mut Dice) -> (Vec<CaseFile>, Vec<CaseFile>) {
    let file = |id: String, dice: &mut Dice| {
        // Four in five cases are the police's, spread over their units.
        let (owner, unit) = if dice.chance(80) {
            UNITS[dice.below(4)]
        } else {
            UNITS[4]
        };
        let participants = panel(owner, dice);
        CaseFile {
            id,
            owner: if owner == "police" {
                "police"
            } else {
                "council"
            },
            unit,
            subject: Someone::generate(dice),
            participants,
            status: CaseStatus::Open,
        }
    };
    let live = (1..=live)
        .map(|n| file(format!("CASE-{n:04}"), dice))
        .collect();
    let former: Vec<CaseFile> = (1..=former)
        .map(|n| {
            let mut case = file(format!("FORMER-{n:04}"), dice);
            case.status = CaseStatus::Closed;
            case
        })
        .collect();
    (live, former)
}

fn referred(case: &CaseFile, key: &SubjectKey) -> Contribution {
    let mut change = status(CaseStatus::Referred, case.unit, "referral-received");
    change.subject_tokens = vec![case.token(key)];
    case_change(
        format!("demo-open-{}", case.id),
        case.owner,
        &case.id,
        Body::CaseStatus(change),
    )
}

/// The morning's phases: the book loaded through the gateway. Former
/// subjects enter their units' lists after the live cases and leave them
/// bottom first, so closing them moves no live case.
pub fn morning(live: &[CaseFile], former: &[CaseFile], key: &SubjectKey) -> Script {
    let mut dice = Dice::new(0x0f0e_11e5);
    let lives_referred = live.iter().map(|c| referred(c, key)).collect();
    let formers_referred = former.iter().map(|c| referred(c, key)).collect();
    let formers_closed = former
        .iter()
        .rev()
        .map(|case| {
            let mut change = status(CaseStatus::Closed, case.unit, "no-further-action");
            // Reviewed for a while yet: one to twelve months.
            change.review_date = Some(in_secs((30 + dice.below(335) as u64) * 24 * 3600));
            case_change(
                format!("demo-close-{}", case.id),
                case.owner,
                &case.id,
                Body::CaseStatus(change),
            )
        })
        .collect();
    let triaged = live
        .iter()
        .map(|case| {
            case_change(
                format!("demo-triage-{}", case.id),
                case.owner,
                &case.id,
                Body::CaseStatus(status(CaseStatus::Triage, case.unit, "screened")),
            )
        })
        .collect();
    let opened = live
        .iter()
        .flat_map(|case| {
            [
                case_change(
                    format!("demo-adopt-{}", case.id),
                    case.owner,
                    &case.id,
                    Body::CaseStatus(status(CaseStatus::Open, case.unit, "channel-adopted")),
                ),
                case_change(
                    format!("demo-panel-{}", case.id),
                    case.owner,
                    &case.id,
                    Body::Participation(ParticipationChanged {
                        added: case.participants.iter().map(|p| (*p).to_owned()).collect(),
                        removed: vec![],
                    }),
                ),
            ]
        })
        .collect();
    vec![
        Phase::concurrent("live investigations referred", lives_referred),
        Phase::ordered("former subjects referred", formers_referred),
        Phase::ordered("former subjects closed, under review", formers_closed).settled(),
        Phase::concurrent("live investigations triaged", triaged),
        Phase::concurrent("live investigations opened; panels join", opened).settled(),
    ]
}
