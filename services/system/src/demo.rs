//! `liaison demo`: a deterministic day of partnership traffic through a
//! running system. At dawn the partnership's case load is loaded through the
//! gateway ([`casebook`]): live investigations with their panels, former
//! subjects under review. Then the day ([`day`]): the public and statutory
//! bodies refer, the panels update cases, assess risk, ask each other for
//! information (each agency's system answering on its own, [`agencies`]),
//! a unit re-prioritises its week, a former subject re-engages, and an attack
//! is followed by alerts to business partners, who acknowledge them. Some
//! senders get it wrong on purpose (shares no agreement permits, updates
//! from agencies not on a case's panel, a SECRET update, a re-sent envelope).
//! What happened is counted ([`tally`]) for the report. All people are
//! fictional; names and dates never appear in the report.

pub mod agencies;
pub mod casebook;
pub mod day;
pub mod envelopes;
pub mod people;
pub mod run;
pub mod shares;
pub mod tally;

pub use envelopes::Contribution;
pub use run::{DemoOptions, Report, run};

/// A part of the script: sent in order, or as fast as the agencies can
/// (concurrently), once the system has caught up if `settle_first`.
#[derive(Debug)]
pub struct Phase {
    pub name: &'static str,
    pub ordered: bool,
    pub settle_first: bool,
    pub sends: Vec<Contribution>,
}

impl Phase {
    pub fn concurrent(name: &'static str, sends: Vec<Contribution>) -> Self {
        Self {
            name,
            ordered: false,
            settle_first: false,
            sends,
        }
    }

    pub fn ordered(name: &'static str, sends: Vec<Contribution>) -> Self {
        Self {
            ordered: true,
            ..Self::concurrent(name, sends)
        }
    }

    /// Begins once the system has caught up with everything sent before.
    pub fn settled(mut self) -> Self {
        self.settle_first = true;
        self
    }
}

/// The phases of a part of the demo, in order.
pub type Script = Vec<Phase>;

/// The whole plan: the morning's case load, then the day.
pub struct Plan {
    pub morning: Script,
    pub day: Script,
    pub moments: day::Moments,
    pub live_cases: usize,
    pub former_subjects: usize,
}

impl Plan {
    /// The plan for a day of `contributions` (a real day: ~3,600): about one
    /// live investigation per seven contributions (~500) and one former
    /// subject under review per eighteen (~200 of the ~20,000).
    pub fn new(contributions: usize, key: &liaison_client::subject::SubjectKey) -> Self {
        let mut dice = people::Dice::new(0x00da_7a0f_ca5e);
        let live_cases = (contributions / 7).max(12);
        let former_subjects = (contributions / 18).max(6);
        let (live, former) = casebook::book(live_cases, former_subjects, &mut dice);
        let morning = casebook::morning(&live, &former, key);
        let (day, moments) = day::day(contributions, live, &former, key);
        Self {
            morning,
            day,
            moments,
            live_cases,
            former_subjects,
        }
    }
}
