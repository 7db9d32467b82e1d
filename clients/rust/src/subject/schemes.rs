//! Other identifiers (NHS number, National Insurance number, Unique Pupil
//! Number, PNC ID, or any scheme the partnership agrees), each normalised by
//! its scheme before it is hashed (the rules: [`mod@super::normalise`]). Errors
//! name the scheme and the rule, never the value.

use super::normalise::{IdentifierError, MAX_FIELD};

/// A scheme name: lower case, 1-32 of a-z, 0-9 and '-'.
fn scheme_name(raw: &str) -> Result<String, IdentifierError> {
    let scheme = raw.trim().to_ascii_lowercase().replace('_', "-");
    let scheme = match scheme.as_str() {
        "nhs-number" | "nhsno" => "nhs".to_owned(),
        "ni" | "ni-number" | "national-insurance" => "nino".to_owned(),
        _ => scheme,
    };
    if scheme.is_empty()
        || scheme.len() > 32
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(IdentifierError::Other {
            scheme: raw.chars().take(32).collect(),
            reason: "the scheme must be 1 to 32 of a-z, 0-9 and '-' (e.g. nhs, nino, upn, pnc)"
                .into(),
        });
    }
    Ok(scheme)
}

/// One other identifier, normalised by its scheme.
pub fn other_identifier(scheme: &str, raw: &str) -> Result<(String, String), IdentifierError> {
    let scheme = scheme_name(scheme)?;
    let fail = |reason: &str| IdentifierError::Other {
        scheme: scheme.clone(),
        reason: reason.to_owned(),
    };
    if raw.len() > MAX_FIELD {
        return Err(fail(&format!("is longer than {MAX_FIELD} bytes")));
    }
    let compact: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    let value = match scheme.as_str() {
        "nhs" => nhs_number(&compact).ok_or_else(|| {
            fail("an NHS number is 10 digits whose last is the check digit of the others")
        })?,
        "nino" => national_insurance(&compact).ok_or_else(|| {
            fail(
                "a National Insurance number is two letters, six digits and an optional letter A-D",
            )
        })?,
        "upn" => Some(compact)
            .filter(|v| {
                v.len() == 13
                    && v.starts_with(|c: char| c.is_ascii_uppercase())
                    && v.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .ok_or_else(|| fail("a Unique Pupil Number is a letter and 12 letters or digits"))?,
        "pnc" => pnc_id(&compact)
            .ok_or_else(|| fail("a PNC ID is YY/serial and a check letter, e.g. 10/12345A"))?,
        _ => {
            let v: String = compact.chars().filter(|c| c.is_alphanumeric()).collect();
            if v.is_empty() || v.len() > 64 {
                return Err(fail("must hold 1 to 64 letters or digits"));
            }
            v
        }
    };
    Ok((scheme, value))
}

fn nhs_number(v: &str) -> Option<String> {
    let digits: Vec<u32> = v.chars().map(|c| c.to_digit(10)).collect::<Option<_>>()?;
    if digits.len() != 10 {
        return None;
    }
    let sum: u32 = digits[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| d * w)
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return None,
        c => c,
    };
    (check == digits[9]).then(|| v.to_owned())
}

fn national_insurance(v: &str) -> Option<String> {
    let core = match v.len() {
        9 if v.ends_with(['A', 'B', 'C', 'D']) => &v[..8],
        8 => v,
        _ => return None,
    };
    let (letters, numbers) = core.split_at_checked(2)?;
    (letters.bytes().all(|b| b.is_ascii_uppercase()) && numbers.bytes().all(|b| b.is_ascii_digit()))
        .then(|| core.to_owned())
}

fn pnc_id(v: &str) -> Option<String> {
    let (year, rest) = v.split_once('/')?;
    let year = match year.len() {
        2 | 4 if year.bytes().all(|b| b.is_ascii_digit()) => &year[year.len() - 2..],
        _ => return None,
    };
    let (serial, check) = rest.split_at_checked(rest.len().checked_sub(1)?)?;
    if serial.is_empty()
        || serial.len() > 7
        || !serial.bytes().all(|b| b.is_ascii_digit())
        || !check.bytes().all(|b| b.is_ascii_uppercase())
    {
        return None;
    }
    let serial = serial.trim_start_matches('0');
    Some(format!(
        "{year}/{}{check}",
        if serial.is_empty() { "0" } else { serial }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_identifiers_are_normalised_by_scheme() {
        let ok = |scheme: &str, raw: &str| {
            other_identifier(scheme, raw).map(|(s, v)| format!("{s}={v}"))
        };
        assert_eq!(ok("NHS", "943 476 5919").as_deref(), Ok("nhs=9434765919"));
        assert_eq!(
            ok("nhs_number", "943-476-5919").as_deref(),
            Ok("nhs=9434765919")
        );
        assert!(ok("nhs", "943 476 5918").is_err(), "bad check digit");
        assert!(ok("nhs", "94347659").is_err());
        assert_eq!(ok("ni", "qq 12 34 56 c").as_deref(), Ok("nino=QQ123456"));
        assert_eq!(ok("nino", "QQ123456").as_deref(), Ok("nino=QQ123456"));
        assert!(ok("nino", "Q1123456C").is_err());
        assert_eq!(
            ok("upn", "a12345678901b").as_deref(),
            Ok("upn=A12345678901B")
        );
        assert!(ok("upn", "123").is_err());
        assert_eq!(ok("pnc", "2010/0012345a").as_deref(), Ok("pnc=10/12345A"));
        assert_eq!(ok("pnc", "10/12345A").as_deref(), Ok("pnc=10/12345A"));
        assert!(ok("pnc", "10-12345").is_err());
        assert_eq!(
            ok("passport", " 12-34 ab.").as_deref(),
            Ok("passport=1234AB")
        );
        assert!(ok("bad scheme!", "1").is_err());
        assert!(ok("passport", "..").is_err());
        let err = ok("nhs", "943 476 5918")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.contains("943"), "errors never quote values: {err}");
    }
}
