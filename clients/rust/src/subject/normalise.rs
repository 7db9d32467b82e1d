//! Normalising identifiers before they are hashed, so that the same person
//! written two ways by two agencies gets one token. The rules (also in
//! docs/wire-contract.md) are deliberately few and predictable:
//!
//! - **Full name**: "Family, Given" (one comma) becomes "Given Family";
//!   letters lose their accents (Unicode NFKD, combining marks dropped; ß, æ,
//!   œ, ø, ł, đ, ð, þ, ı spelt out in ASCII); lower case; apostrophes removed
//!   (O'Brien = OBrien); every other run of punctuation or white space is one
//!   space (Mary-Jane = Mary Jane). Letters of other scripts are kept, in
//!   lower case. Titles and name order are not guessed at.
//! - **Date of birth**: ISO 8601 `YYYY-MM-DD`, read from `YYYY-MM-DD`,
//!   `YYYY/MM/DD`, `YYYYMMDD`, UK day-first `DD/MM/YYYY`, `DD-MM-YYYY`,
//!   `DD.MM.YYYY` (one-digit day and month allowed) or `12 Apr 2010` /
//!   `12 April 2010`; two-digit years are refused (which century?), the date
//!   must exist and lie between 1900 and 2100.
//! - **Other identifiers**, by scheme (lower case, 1-32 of a-z, 0-9, '-'):
//!   `nhs` (NHS number: 10 digits, spaces and hyphens dropped, check digit
//!   verified), `nino` (National Insurance number: upper case, spaces
//!   dropped, the A-D suffix dropped as records often omit it), `upn`
//!   (Unique Pupil Number: 13 letters and digits, upper case), `pnc` (PNC
//!   ID: `YY/serial+check letter`, a four-digit year cut to two and leading
//!   zeros of the serial dropped); any other scheme: letters and digits only,
//!   upper case. Sorted by scheme and value, duplicates dropped.
//!
//! Errors name the field and the rule, never the value.

use super::Identifiers;
use super::schemes::other_identifier;
use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// Longest raw field read (bytes).
pub(crate) const MAX_FIELD: usize = 512;
/// Most other identifiers on one person.
const MAX_OTHER: usize = 16;

/// Identifiers after normalisation: what is hashed. `Debug` hides values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Normalised {
    /// Empty when the token is made from other identifiers only.
    pub full_name: String,
    /// `YYYY-MM-DD`, or empty with the name.
    pub date_of_birth: String,
    /// `(scheme, value)`, sorted and de-duplicated.
    pub other: Vec<(String, String)>,
}

impl std::fmt::Debug for Normalised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let schemes: Vec<&str> = self.other.iter().map(|(s, _)| s.as_str()).collect();
        f.debug_struct("Normalised")
            .field("full_name", &"<redacted>")
            .field("date_of_birth", &"<redacted>")
            .field("other_schemes", &schemes)
            .finish()
    }
}

/// Why identifiers could not be normalised (never quoting a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("full name: {0}")]
    Name(String),
    #[error("date of birth: {0}")]
    DateOfBirth(String),
    #[error("identifier {scheme:?}: {reason}")]
    Other { scheme: String, reason: String },
    #[error("{0}")]
    Missing(String),
}

/// Normalises `identifiers` (see the module's rules).
pub fn normalise(identifiers: &Identifiers) -> Result<Normalised, IdentifierError> {
    let has_name = !identifiers.full_name.trim().is_empty();
    let has_dob = !identifiers.date_of_birth.trim().is_empty();
    if has_name != has_dob {
        return Err(IdentifierError::Missing(
            "a full name and a date of birth go together: a name alone links too many people, a date alone anyone born that day"
                .into(),
        ));
    }
    if !has_name && identifiers.other.is_empty() {
        return Err(IdentifierError::Missing(
            "no identifiers: give a full name and date of birth, or another identifier".into(),
        ));
    }
    if identifiers.other.len() > MAX_OTHER {
        return Err(IdentifierError::Missing(format!(
            "more than {MAX_OTHER} other identifiers"
        )));
    }
    let (full_name, date_of_birth) = if has_name {
        (
            full_name(&identifiers.full_name)?,
            date_of_birth(&identifiers.date_of_birth)?,
        )
    } else {
        (String::new(), String::new())
    };
    let mut other = identifiers
        .other
        .iter()
        .map(|(scheme, value)| other_identifier(scheme, value))
        .collect::<Result<Vec<_>, _>>()?;
    other.sort();
    other.dedup();
    Ok(Normalised {
        full_name,
        date_of_birth,
        other,
    })
}

/// ASCII spellings of letters Unicode does not decompose.
fn spelt_out(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' | 'ẞ' => "ss",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        'ø' | 'Ø' => "o",
        'ł' | 'Ł' => "l",
        'đ' | 'Đ' | 'ð' | 'Ð' => "d",
        'þ' | 'Þ' => "th",
        'ı' => "i",
        _ => return None,
    })
}

fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' | '\u{00B4}'
    )
}

/// A full name, normalised.
pub fn full_name(raw: &str) -> Result<String, IdentifierError> {
    let fail = |reason: &str| IdentifierError::Name(reason.to_owned());
    if raw.len() > MAX_FIELD {
        return Err(fail(&format!("is longer than {MAX_FIELD} bytes")));
    }
    if raw.chars().any(char::is_control) {
        return Err(fail("holds control characters"));
    }
    let reordered = match raw.split_once(',') {
        Some((family, given)) if !given.contains(',') => format!("{given} {family}"),
        Some(_) => return Err(fail("holds more than one comma: write \"Given Family\"")),
        None => raw.to_owned(),
    };
    let mut spelt = String::with_capacity(reordered.len());
    for c in reordered.chars().filter(|c| !is_apostrophe(*c)) {
        match spelt_out(c) {
            Some(s) => spelt.push_str(s),
            None => spelt.push(c),
        }
    }
    let mut out = String::with_capacity(spelt.len());
    let mut space = false;
    for c in spelt.nfkd().filter(|c| !is_combining_mark(*c)) {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        } else {
            space = true;
        }
    }
    if !out.chars().any(char::is_alphabetic) {
        return Err(fail("has no letters"));
    }
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A month by its English name or three-letter abbreviation (`sept` too).
fn month_named(word: &str) -> Option<u32> {
    let word = word.to_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == word || (word.len() >= 3 && m.starts_with(&word) && word.len() <= 4))
        .map(|i| i as u32 + 1)
}

fn digits(part: &str, min: usize, max: usize) -> Option<u32> {
    (part.len() >= min && part.len() <= max && part.bytes().all(|b| b.is_ascii_digit()))
        .then(|| part.parse().ok())
        .flatten()
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// A date of birth as ISO 8601 `YYYY-MM-DD`.
pub fn date_of_birth(raw: &str) -> Result<String, IdentifierError> {
    let fail = |reason: &str| IdentifierError::DateOfBirth(reason.to_owned());
    const FORMATS: &str =
        "expected YYYY-MM-DD, DD/MM/YYYY, DD-MM-YYYY, DD.MM.YYYY, YYYYMMDD or \"12 Apr 2010\"";
    let text = raw.trim();
    if text.len() > 64 {
        return Err(fail(&format!("is not a date: {FORMATS}")));
    }
    let parts: Vec<&str> = text
        .split(['-', '/', '.', ' '])
        .filter(|p| !p.is_empty())
        .collect();
    let (year, month, day) = match parts.as_slice() {
        [whole] if whole.len() == 8 && whole.bytes().all(|b| b.is_ascii_digit()) => (
            digits(&whole[..4], 4, 4),
            digits(&whole[4..6], 2, 2),
            digits(&whole[6..], 2, 2),
        ),
        [a, b, c] if a.len() == 4 => (digits(a, 4, 4), digits(b, 1, 2), digits(c, 1, 2)),
        [_, _, c] if c.len() == 2 => {
            return Err(fail("has a two-digit year: write the year in full"));
        }
        [a, b, c] => (
            digits(c, 4, 4),
            digits(b, 1, 2).or_else(|| month_named(b)),
            digits(a, 1, 2),
        ),
        _ => (None, None, None),
    };
    let (Some(year), Some(month), Some(day)) = (year, month, day) else {
        return Err(fail(&format!("is not a date: {FORMATS}")));
    };
    if !(1900..=2100).contains(&year) {
        return Err(fail("has a year outside 1900 to 2100"));
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in(year, month) {
        return Err(fail("is not a day of the calendar"));
    }
    Ok(format!("{year:04}-{month:02}-{day:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_case_accents_punctuation_and_order() {
        for (raw, want) in [
            ("Alex Example", "alex example"),
            ("  ALEX   example ", "alex example"),
            ("Example, Alex", "alex example"),
            ("Zoë Brontë", "zoe bronte"),
            ("Siobhán Ó Súilleabháin", "siobhan o suilleabhain"),
            ("Søren Kierkegård", "soren kierkegard"),
            ("Straße", "strasse"),
            ("O'Brien", "obrien"),
            ("O’Brien", "obrien"),
            ("O\u{b4}Brien", "obrien"),
            ("Mary-Jane Smith-Jones", "mary jane smith jones"),
            ("Łukasz Wałęsa", "lukasz walesa"),
            ("Ａｌｅｘ", "alex"),
            ("Фёдор Достоевский", "федор достоевскии"),
        ] {
            assert_eq!(full_name(raw).as_deref(), Ok(want), "{raw}");
        }
        for raw in ["", "  ", "---", "a,b,c", "Alex\u{7}Example"] {
            assert!(full_name(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn dates_become_iso_8601_and_must_exist() {
        for raw in [
            "2010-04-12",
            "2010/04/12",
            "20100412",
            "12/04/2010",
            "12-04-2010",
            "12.04.2010",
            "12/4/2010",
            "12 Apr 2010",
            "12 april 2010",
            "12-APR-2010",
            " 2010-4-12 ",
        ] {
            assert_eq!(date_of_birth(raw).as_deref(), Ok("2010-04-12"), "{raw}");
        }
        assert_eq!(date_of_birth("29/02/2008").as_deref(), Ok("2008-02-29"));
        for (raw, says) in [
            ("12/04/10", "two-digit year"),
            ("30/02/2010", "not a day"),
            ("29/02/2010", "not a day"),
            ("2010-13-01", "not a day"),
            ("1850-01-01", "outside"),
            ("yesterday", "not a date"),
            ("12 Foo 2010", "not a date"),
            ("", "not a date"),
        ] {
            let err = date_of_birth(raw)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(says), "{raw:?}: {err}");
        }
    }

    #[test]
    fn any_text_is_refused_or_normalised_never_a_panic() {
        const PIECES: &[&str] = &[
            "a", "Z", "1", "9", "/", "-", ".", " ", ",", "'", "€", "é", "ß", "日", "\u{301}", "=",
            "Apr", "2010", "\u{0}", "ǅ", "İ", "ﬁ",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 12) as usize;
            let text: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let _ = full_name(&text);
            let _ = date_of_birth(&text);
            for scheme in ["nhs", "nino", "upn", "pnc", "other", &text] {
                let _ = other_identifier(scheme, &text);
            }
        }
        assert_eq!(date_of_birth("ab€def").ok(), None);
    }

    #[test]
    fn a_name_needs_a_date_and_other_identifiers_are_sorted() {
        let ids = |name: &str, dob: &str, other: &[(&str, &str)]| Identifiers {
            full_name: name.into(),
            date_of_birth: dob.into(),
            other: other
                .iter()
                .map(|(s, v)| ((*s).to_owned(), (*v).to_owned()))
                .collect(),
        };
        assert!(normalise(&ids("Alex", "", &[])).is_err());
        assert!(normalise(&ids("", "2010-04-12", &[])).is_err());
        assert!(normalise(&ids("", "", &[])).is_err());
        let only = normalise(&ids("", "", &[("nhs", "9434765919")]));
        assert!(only.is_ok_and(|n| n.full_name.is_empty() && n.other.len() == 1));
        let both = normalise(&ids(
            "Alex",
            "2010-04-12",
            &[
                ("upn", "A12345678901B"),
                ("nhs", "9434765919"),
                ("NHS", "943 476 5919"),
            ],
        ));
        assert_eq!(
            both.map(|n| n.other),
            Ok(vec![
                ("nhs".to_owned(), "9434765919".to_owned()),
                ("upn".to_owned(), "A12345678901B".to_owned())
            ])
        );
    }
}
