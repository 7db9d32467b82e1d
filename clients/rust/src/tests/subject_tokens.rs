//! The committed subject-token test vectors (tests/data/subject-token-vectors.json,
//! tokens computed by an independent Python implementation of the
//! construction, `subject_token_vectors.py`): the client normalises each
//! input to the same fields and gets the same token; refused inputs are
//! refused for the stated reason.

use crate::subject::{Identifiers, Normalised, SubjectKey, normalise, token_of};
use crate::subject_token;
use serde_json::Value;

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v["other"]
        .as_array()
        .map(|a| a.iter().map(|p| (text_at(p, 0), text_at(p, 1))).collect())
        .unwrap_or_default()
}

fn text_at(v: &Value, i: usize) -> String {
    v[i].as_str().unwrap_or_default().to_owned()
}

fn identifiers(v: &Value) -> Identifiers {
    Identifiers {
        full_name: text(v, "name"),
        date_of_birth: text(v, "dob"),
        other: pairs(v),
    }
}

#[test]
fn the_committed_vectors_hold() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/subject-token-vectors.json"
    );
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let key = SubjectKey::from_text(vectors["key"].as_str().unwrap_or_default())?;
    let cases = vectors["vectors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert!(cases.len() >= 10);
    for case in cases {
        let input = identifiers(&case["input"]);
        let want = &case["normalised"];
        let want = Normalised {
            full_name: text(want, "name"),
            date_of_birth: text(want, "dob"),
            other: pairs(want),
        };
        let got = normalise(&input)?;
        // Field by field: Normalised's Debug does not show values.
        assert_eq!(got.full_name, want.full_name, "{}", case["input"]);
        assert_eq!(got.date_of_birth, want.date_of_birth, "{}", case["input"]);
        assert_eq!(got.other, want.other, "{}", case["input"]);
        assert_eq!(got, want);
        let token = text(case, "token");
        assert_eq!(token_of(&key, &got), token, "{}", case["input"]);
        assert_eq!(subject_token(&key, &input)?, token);
    }
    let refused = vectors["refused"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert!(!refused.is_empty());
    for case in refused {
        let err = subject_token(&key, &identifiers(case))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let says = text(case, "says");
        assert!(err.contains(&says), "{case}: {err:?} should say {says:?}");
    }
    Ok(())
}
