//! Agency token verification against the development registry's keys:
//! a valid token passes; forged, confused or stale ones are refused by name.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use liaison_gateway::auth::Verifier;
use liaison_gateway::refusal::Refusal;
use liaison_kit::AgencyId;
use liaison_kit::config::GatewayConfig;
use liaison_kit::registry::Registry;
use serde_json::{Value, json};
use std::path::PathBuf;

const NOW: u64 = 1_800_000_000;

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

fn verifier() -> (Verifier, Registry) {
    let registry =
        Registry::load(&deploy("agencies/registry.toml")).unwrap_or_else(|e| panic!("{e}"));
    let verifier =
        Verifier::new(&registry, &GatewayConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    (verifier, registry)
}

fn claims() -> Value {
    json!({"iss": "school-a", "sub": "dsl-1", "aud": "liaison-gateway", "iat": NOW, "nbf": NOW,
           "exp": NOW + 120, "jti": "j-1"})
}

fn signed(agency: &str, claims: &Value) -> String {
    let pem = std::fs::read(deploy(&format!("agencies/dev-keys/{agency}.pem")))
        .unwrap_or_else(|e| panic!("{e}"));
    let key = EncodingKey::from_ed_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
    encode(&Header::new(Algorithm::EdDSA), claims, &key).unwrap_or_else(|e| panic!("{e}"))
}

fn check(token: &str) -> Result<(), Refusal> {
    let (verifier, _) = verifier();
    let school = AgencyId::parse("school-a").unwrap_or_else(|e| panic!("{e}"));
    verifier.verify(&school, token, NOW).map(|_| ())
}

fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims();
    change(&mut c);
    c
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn a_valid_token_is_accepted() {
    assert_eq!(check(&signed("school-a", &claims())), Ok(()));
}

#[test]
fn forged_and_confused_tokens_are_refused() {
    assert_eq!(
        check(&signed("police", &claims())),
        Err(Refusal::BadSignature)
    );
    // alg none
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims())
    );
    assert!(check(&none).is_err());
    // HMAC with the public key as the secret (algorithm confusion)
    let (_, registry) = verifier();
    let school = AgencyId::parse("school-a").unwrap_or_else(|e| panic!("{e}"));
    let public = registry
        .get(&school)
        .map(|a| a.public_key.clone())
        .unwrap_or_default();
    let hmac = encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(check(&hmac), Err(Refusal::BadToken(r)) if r.contains("EdDSA")));
    assert!(check("not.a.token").is_err());
}

#[test]
fn wrong_claims_are_named() {
    let reason = |c: Value| match check(&signed("school-a", &c)) {
        Err(r) => r.to_string(),
        Ok(()) => String::from("accepted"),
    };
    assert!(reason(with(|c| c["iss"] = json!("police"))).contains("iss"));
    assert!(reason(with(|c| c["aud"] = json!("elsewhere"))).contains("aud"));
    assert!(reason(with(|c| c["exp"] = json!(NOW - 100))).contains("expired"));
    assert!(reason(with(|c| c["nbf"] = json!(NOW + 100))).contains("not valid yet"));
    assert!(reason(with(|c| c["exp"] = json!(NOW + 3600))).contains("lifetime"));
    assert!(reason(with(|c| c["exp"] = json!("tomorrow"))).contains("exp"));
    assert!(reason(with(|c| c["jti"] = json!(""))).contains("jti"));
    assert!(
        reason(with(|c| {
            c.as_object_mut().map(|o| o.remove("sub"));
        }))
        .contains("sub")
    );
}

#[test]
fn a_token_of_one_agency_is_refused_on_another_agencys_subject() {
    let (verifier, _) = verifier();
    let police = AgencyId::parse("police").unwrap_or_else(|e| panic!("{e}"));
    let token = signed("school-a", &claims());
    assert!(verifier.verify(&police, &token, NOW).is_err());
}
