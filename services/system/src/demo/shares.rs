//! The shares agencies make in the day, each as its agreement asks:
//! referrals (public reports through the police, schools, the NHS trust,
//! the council's social care; and a business partner's, which no agreement
//! permits), case updates (a SECRET one now and then from the police), risk
//! assessments that mark facts apart from assessments, and information
//! requests with a deadline.

use super::casebook::CaseFile;
use super::day::Writer;
use super::envelopes::{Contribution, envelope, from, in_secs};
use super::people::Someone;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::risk_statement::Basis;
use liaison_proto::v1::{
    CaseUpdated, Classification, InformationRequested, ReferralMade, RiskAssessed, RiskStatement,
};

impl Writer<'_> {
    pub(super) fn referral(&mut self, sender: &'static str, subject: Someone) -> Contribution {
        let (source, basis, concern) = match sender {
            "police" => (
                if self.dice.chance(50) {
                    "public-hotline"
                } else {
                    "online-report"
                },
                "CTSA-2015-s36",
                "A member of the public reported worrying online posts",
            ),
            "nhs-trust" => (
                "health",
                "DPA-2018-sch1-p18",
                "Patient disclosed intent to travel to a conflict zone",
            ),
            "council" => (
                "social-care",
                "DPA-2018-sch1-p18",
                "Family worker concerned by extremist material at home",
            ),
            "retail-bsp" => ("business", "DPA-2018-s35", "Suspicious purchase"),
            _ => (
                "school",
                "CTSA-2015-s26",
                "Expressed support for violent extremist material in class",
            ),
        };
        let id = self.id(sender);
        let body = Body::Referral(ReferralMade {
            subject: Some(subject.person(self.key, "person-at-risk")),
            source: source.into(),
            concern: concern.into(),
            risk_indicators: vec!["online radicalisation".into()],
            health_notes: if sender == "nhs-trust" {
                "Under community mental health team".into()
            } else {
                String::new()
            },
            education_notes: if sender.starts_with("school") {
                "Attendance fell this term".into()
            } else {
                String::new()
            },
            social_care_notes: if sender == "council" {
                "Open to early help".into()
            } else {
                String::new()
            },
            ..Default::default()
        });
        let classification = if sender == "retail-bsp" {
            Classification::Official
        } else {
            Classification::OfficialSensitive
        };
        if sender != "retail-bsp" {
            self.this_part.push((sender, id.clone(), basis, subject));
        }
        from(
            sender,
            envelope(id, sender, "safeguarding", basis, classification, "", body),
        )
    }

    /// A referral of someone not referred before.
    pub(super) fn someone_new(&mut self, sender: &'static str) -> Contribution {
        let subject = Someone::generate(&mut self.dice);
        self.referral(sender, subject)
    }

    pub(super) fn case_update(&mut self, case: &CaseFile, sender: &'static str) -> Contribution {
        let secret = sender == "police" && self.dice.chance(14);
        let body = Body::CaseUpdate(CaseUpdated {
            subject: Some(case.subject.person(self.key, "person-at-risk")),
            update_type: ["contact", "review", "intervention"][self.dice.below(3)].into(),
            summary: "Attended mentoring session; engaging".into(),
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
        let classification = if secret {
            Classification::Secret
        } else {
            Classification::OfficialSensitive
        };
        let id = self.id("update");
        from(
            sender,
            envelope(
                id,
                sender,
                "safeguarding",
                "CTSA-2015-s36",
                classification,
                &case.id,
                body,
            ),
        )
    }

    pub(super) fn risk(&mut self, case: &CaseFile, sender: &'static str) -> Contribution {
        let level = 1 + self.dice.below(4) as i32;
        let body = Body::RiskAssessment(RiskAssessed {
            subject: Some(case.subject.person(self.key, "person-at-risk")),
            risk_level: level,
            statements: vec![
                RiskStatement {
                    basis: Basis::Fact as i32,
                    text: "Attended three of four sessions".into(),
                    source: sender.into(),
                },
                RiskStatement {
                    basis: Basis::Assessment as i32,
                    text: "Vulnerability reducing; ideology still present".into(),
                    source: sender.into(),
                },
            ],
            next_review: Some(in_secs(7 * 24 * 3600)),
        });
        let id = self.id("risk");
        from(
            sender,
            envelope(
                id,
                sender,
                "counter-terrorism",
                "CTSA-2015-s36",
                Classification::OfficialSensitive,
                &case.id,
                body,
            ),
        )
    }

    pub(super) fn request(
        &mut self,
        case: &CaseFile,
        sender: &'static str,
        asked: &[&str],
        respond_in: u64,
    ) -> Contribution {
        let body = Body::InformationRequest(InformationRequested {
            question: "Any contact or concern in the last month?".into(),
            respond_by: Some(in_secs(respond_in)),
        });
        let id = self.id("request");
        let mut e = envelope(
            id,
            sender,
            "safeguarding",
            "CTSA-2015-s36",
            Classification::OfficialSensitive,
            &case.id,
            body,
        );
        e.addressees = asked.iter().map(|a| (*a).to_owned()).collect();
        from(sender, e)
    }
}
