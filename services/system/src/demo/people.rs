//! The demo's fictional people and its dice: a small deterministic generator
//! (xorshift), so every run sends the same day, and generated names, dates
//! of birth and addresses with the subject token each referring agency
//! computes under the partnership's subject key. All people are fictional.

use liaison_client::subject::{Identifiers, SubjectKey, subject_token};
use liaison_proto::v1::Person;

const GIVEN: &[&str] = &[
    "Alex", "Sam", "Jordan", "Casey", "Riley", "Morgan", "Taylor", "Jamie", "Robin", "Drew",
    "Avery", "Quinn", "Rowan", "Sasha", "Charlie", "Frankie", "Hayden", "Jesse", "Kai", "Lee",
];
const FAMILY: &[&str] = &[
    "Example",
    "Sample",
    "Testfield",
    "Placeholder",
    "Fictional",
    "Madeup",
    "Mockford",
    "Dummyshire",
    "Specimen",
    "Notreal",
    "Pretendley",
    "Imaginary",
];

/// A small deterministic generator (xorshift).
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn roll(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.roll() % n as u64) as usize
    }

    /// Whether a roll of 0..100 falls under `percent`.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.roll() % 100 < percent
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A fictional person as one agency records them.
#[derive(Debug, Clone)]
pub struct Someone {
    pub name: String,
    pub dob: String,
    pub address: String,
}

impl Someone {
    pub fn generate(dice: &mut Dice) -> Self {
        Self {
            name: format!("{} {}", dice.pick(GIVEN), dice.pick(FAMILY)),
            dob: format!(
                "{}-{:02}-{:02}",
                1970 + dice.below(42),
                1 + dice.below(12),
                1 + dice.below(28)
            ),
            address: format!("{} Demo Street, Exampletown", 1 + dice.below(200)),
        }
    }

    /// The same person written another agency's way: "Family, Given" and a
    /// day-first date. Normalised, it is the same subject token.
    pub fn written_differently(&self) -> Self {
        let name = match self.name.split_once(' ') {
            Some((given, family)) => format!("{}, {given}", family.to_uppercase()),
            None => self.name.clone(),
        };
        let dob = match self.dob.split('-').collect::<Vec<_>>()[..] {
            [y, m, d] => format!("{d}/{m}/{y}"),
            _ => self.dob.clone(),
        };
        Self {
            name,
            dob,
            address: self.address.clone(),
        }
    }

    /// The subject token the referring agency computes (a generated name and
    /// date always normalise; an empty token would only mean "not linked").
    pub fn token(&self, key: &SubjectKey) -> String {
        let identifiers = Identifiers {
            full_name: self.name.clone(),
            date_of_birth: self.dob.clone(),
            other: vec![],
        };
        subject_token(key, &identifiers).unwrap_or_default()
    }

    /// The person as a body carries them, in the category of data subject
    /// DPA 2018 s.38 asks for.
    pub fn person(&self, key: &SubjectKey, category: &str) -> Person {
        Person {
            token: self.token(key),
            full_name: self.name.clone(),
            date_of_birth: self.dob.clone(),
            address: self.address.clone(),
            category: category.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_differently_is_the_same_subject() {
        let key = SubjectKey::from_bytes([7; 32]);
        let mut dice = Dice::new(42);
        for _ in 0..50 {
            let someone = Someone::generate(&mut dice);
            let other = someone.written_differently();
            assert_ne!(someone.name, other.name);
            assert_eq!(someone.token(&key), other.token(&key), "{someone:?}");
            assert!(someone.token(&key).starts_with("st1:"));
        }
    }
}
