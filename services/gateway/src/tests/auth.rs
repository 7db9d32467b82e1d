//! Agency token verification with an injected clock: the development
//! registry's keys (EdDSA and ES256), key rotation windows, the verification
//! cache (a cached token still expires) and the bounded jti replay cache.
//! The hostile-token suite runs end to end in tests/tests/e2e/token_attacks.rs.

use crate::auth::Verifier;
use crate::refusal::Refusal;
use liaison_core::AgencyId;
use liaison_core::tokens::{MAX_LIVE_TOKENS_PER_PRINCIPAL, Signer, public_key_text, public_of_pem};
use liaison_runtime::config::GatewayConfig;
use liaison_runtime::registry::Registry;
use serde_json::{Value, json};
use std::path::PathBuf;

const NOW: u64 = 1_800_000_000;

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

fn pem(file: &str) -> String {
    std::fs::read_to_string(deploy(&format!("agencies/dev-keys/{file}.pem")))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn registry() -> Registry {
    Registry::load(&deploy("agencies/registry.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn verifier_of(registry: &Registry) -> Verifier {
    Verifier::new(registry, &GatewayConfig::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn id(agency: &str) -> AgencyId {
    AgencyId::parse(agency).unwrap_or_else(|e| panic!("{e}"))
}

fn claims(iss: &str, jti: &str) -> Value {
    json!({"iss": iss, "sub": "dsl-1", "aud": "liaison-gateway", "iat": NOW, "nbf": NOW,
           "exp": NOW + 120, "jti": jti})
}

fn signed(key_file: &str, claims: &Value) -> String {
    Signer::from_pem(&pem(key_file), None)
        .and_then(|s| s.sign(claims))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn eddsa_and_es256_keys_of_one_agency_both_verify() {
    let verifier = verifier_of(&registry());
    let police = id("police");
    for key in ["police", "police-es256"] {
        let token = signed(key, &claims("police", key));
        assert!(verifier.verify(&police, &token, NOW).is_ok(), "{key}");
    }
}

#[test]
fn a_cached_token_is_reused_until_it_expires() {
    let verifier = verifier_of(&registry());
    let school = id("school-a");
    let token = signed("school-a", &claims("school-a", "j-1"));
    for at in [NOW, NOW + 1, NOW + 119] {
        assert!(verifier.verify(&school, &token, at).is_ok(), "at {at}");
    }
    // Still cached, but past exp + the allowed skew.
    assert_eq!(
        verifier.verify(&school, &token, NOW + 120 + 31).map(|_| ()),
        Err(Refusal::TokenExpired)
    );
    // A cached token is not valid for another agency either.
    assert!(verifier.verify(&id("school-b"), &token, NOW).is_err());
}

#[test]
fn a_jti_belongs_to_one_token_until_that_token_expires() {
    let verifier = verifier_of(&registry());
    let school = id("school-a");
    let first = signed("school-a", &claims("school-a", "j-2"));
    assert!(verifier.verify(&school, &first, NOW).is_ok());
    let mut other = claims("school-a", "j-2");
    other["sub"] = json!("dsl-2");
    let second = signed("school-a", &other);
    assert_eq!(
        verifier.verify(&school, &second, NOW + 1).map(|_| ()),
        Err(Refusal::TokenReplayed("j-2".into()))
    );
    // Another agency may use the same jti: the cache is per agency.
    let mut theirs = claims("school-b", "j-2");
    theirs["iss"] = json!("school-b");
    assert!(
        verifier
            .verify(&id("school-b"), &signed("school-b", &theirs), NOW)
            .is_ok()
    );
    // Once the first token has expired its jti is forgotten.
    let mut later = claims("school-a", "j-2");
    for (claim, at) in [("iat", NOW + 300), ("nbf", NOW + 300), ("exp", NOW + 400)] {
        later[claim] = json!(at);
    }
    assert!(
        verifier
            .verify(&school, &signed("school-a", &later), NOW + 300)
            .is_ok()
    );
}

#[test]
fn the_replay_cache_is_bounded_per_agency() {
    let verifier = verifier_of(&registry());
    let school = id("school-a");
    let signer = Signer::from_pem(&pem("school-a"), None).unwrap_or_else(|e| panic!("{e}"));
    for n in 0..MAX_LIVE_TOKENS_PER_PRINCIPAL {
        let token = signer
            .sign(&claims("school-a", &format!("bulk-{n}")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(verifier.verify(&school, &token, NOW).is_ok(), "token {n}");
    }
    let one_more = signed("school-a", &claims("school-a", "bulk-extra"));
    assert!(
        matches!(verifier.verify(&school, &one_more, NOW), Err(Refusal::BadToken(r)) if r.contains("live tokens"))
    );
    // Other agencies are not affected, and school-a recovers once they expire.
    let council = signed("council", &claims("council", "c-1"));
    assert!(verifier.verify(&id("council"), &council, NOW).is_ok());
    let mut fresh = claims("school-a", "bulk-extra");
    for (claim, at) in [("iat", NOW + 200), ("nbf", NOW + 200), ("exp", NOW + 300)] {
        fresh[claim] = json!(at);
    }
    assert!(
        verifier
            .verify(&school, &signed("school-a", &fresh), NOW + 200)
            .is_ok()
    );
}

#[test]
fn keys_rotate_with_an_overlap() {
    // school-a registers a new key ahead (not_before) and retires the old one
    // (not_after): between the two dates both are accepted.
    let old = public_of_pem(&pem("school-a")).unwrap_or_else(|e| panic!("{e}"));
    let new = public_of_pem(&pem("school-b")).unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        r#"[[agency]]
id = "school-a"
name = "Northfield Academy"
kind = "education"
areas = ["exampleshire"]
clearance = "OFFICIAL-SENSITIVE"
[[agency.keys]]
public_key = "{}"
not_after = 2027-01-15T12:00:00Z
[[agency.keys]]
public_key = "{}"
not_before = 2027-01-15T11:00:00Z
"#,
        public_key_text(&old.1),
        public_key_text(&new.1)
    );
    let registry = Registry::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let verifier = verifier_of(&registry);
    let school = id("school-a");
    let at = |t: u64, jti: &str| {
        json!({"iss": "school-a", "sub": "dsl-1", "aud": "liaison-gateway", "iat": t,
               "exp": t + 60, "jti": jti})
    };
    // 2027-01-15 10:00, 11:30 and 13:00 UTC.
    let (before, overlap, after) = (1_800_007_200, 1_800_012_600, 1_800_018_000);
    let check = |key: &str, t: u64, jti: &str| {
        verifier
            .verify(&school, &signed(key, &at(t, jti)), t)
            .map(|_| ())
    };
    assert_eq!(check("school-a", before, "a1"), Ok(()));
    assert!(
        matches!(check("school-b", before, "a2"), Err(Refusal::BadToken(r)) if r.contains("not in use yet"))
    );
    assert_eq!(check("school-a", overlap, "a3"), Ok(()));
    assert_eq!(check("school-b", overlap, "a4"), Ok(()));
    assert!(
        matches!(check("school-a", after, "a5"), Err(Refusal::BadToken(r)) if r.contains("retired"))
    );
    assert_eq!(check("school-b", after, "a6"), Ok(()));
}

#[test]
fn a_token_verified_for_one_agency_is_refused_on_another_agencys_subject() {
    let verifier = verifier_of(&registry());
    let token = signed("school-a", &claims("school-a", "j-3"));
    assert!(verifier.verify(&id("school-a"), &token, NOW).is_ok());
    assert!(verifier.verify(&id("police"), &token, NOW).is_err());
}
