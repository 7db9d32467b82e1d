//! Hostile input, without a server: many thousands of random and mutated
//! inputs through everything the gateway parses from outside — envelope
//! bytes (decode, field checks, vocabulary, policy, redaction), the JSON
//! mapping, tokens, identifiers, policy test files — must come back as
//! values or errors, never a panic. Deterministic (a fixed-seed xorshift), so
//! a failure replays; `LIAISON_HOSTILE_ROUNDS` runs more rounds.

use liaison_core::AgencyId;
use liaison_core::ids::validate_envelope_id;
use liaison_core::participation::validate_case_id;
use liaison_gateway::auth::Verifier;
use liaison_gateway::policy::Policy;
use liaison_gateway::{redact, validate};
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{CaseUpdated, Classification, DataLabel, Envelope, Person, ReferralMade};
use liaison_runtime::config::GatewayConfig;
use liaison_runtime::registry::Registry;
use liaison_tests::Rng;
use prost::Message as _;
use prost_reflect::DynamicMessage;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn rounds() -> usize {
    std::env::var("LIAISON_HOSTILE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn deploy(path: &str) -> PathBuf {
    liaison_tests::repo_root().join("deploy").join(path)
}

fn seed_envelopes() -> Vec<Vec<u8>> {
    let person = Person {
        token: "tok-1".into(),
        full_name: "Alex Example".into(),
        date_of_birth: "2010-04-12".into(),
        address: "12 Demo Street".into(),
        category: "person at risk".into(),
    };
    let base = Envelope {
        id: "e-1".into(),
        sender_agency: "school-a".into(),
        author: "school-a-dsl".into(),
        sent_at: Some(liaison_core::time::timestamp_now()),
        classification: Classification::OfficialSensitive as i32,
        handling_caveats: vec!["UK-EYES-ONLY".into()],
        purpose: "safeguarding".into(),
        legal_basis: "CTSA-2015-s26".into(),
        addressees: vec!["council".into()],
        body: Some(Body::Referral(ReferralMade {
            subject: Some(person.clone()),
            concern: "concern".into(),
            health_notes: "notes".into(),
            risk_indicators: vec!["a".into(), "b".into()],
            ..Default::default()
        })),
        ..Default::default()
    };
    let update = Envelope {
        case_id: "CASE-1".into(),
        body: Some(Body::CaseUpdate(CaseUpdated {
            subject: Some(person),
            intelligence: "intel".into(),
            ..Default::default()
        })),
        ..base.clone()
    };
    vec![base.encode_to_vec(), update.encode_to_vec()]
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes.truncate(i);
            }
            2 => {
                let i = rng.below(bytes.len() + 1);
                let len = rng.below(16);
                let extra = rng.bytes(len);
                bytes.splice(i..i, extra);
            }
            3 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next_u64() as u8;
            }
            _ => {
                let len = rng.below(300);
                bytes = rng.bytes(len);
            }
        }
    }
    bytes
}

#[test]
fn mutated_envelopes_are_decoded_checked_decided_and_redacted_without_a_panic() {
    let registry =
        Registry::load(&deploy("agencies/registry.toml")).unwrap_or_else(|e| panic!("{e}"));
    let policy = Policy::load(&deploy("policies"), &registry).unwrap_or_else(|e| panic!("{e}"));
    let school = AgencyId::parse("school-a").unwrap_or_else(|e| panic!("{e}"));
    let participants = [AgencyId::parse("police").unwrap_or_else(|e| panic!("{e}"))];
    let all: BTreeSet<DataLabel> = DataLabel::all().collect();
    let seeds = seed_envelopes();
    let mut rng = Rng(0x005e_ed0f_f00d);
    let (mut decoded, mut valid) = (0, 0);
    for round in 0..rounds() {
        let bytes = mutate(&mut rng, &seeds[round % seeds.len()]);
        let Ok(envelope) = Envelope::decode(bytes.as_slice()) else {
            continue;
        };
        decoded += 1;
        let checked = validate::check(&envelope, &school)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                policy
                    .vocabulary()
                    .check(&envelope)
                    .map_err(|(f, r)| format!("{f} {r}"))
            });
        if checked.is_ok() {
            valid += 1;
            let facts = liaison_gateway::policy::Facts::case(&participants);
            let _ = policy.evaluate(&school, &envelope, &registry, &facts);
        }
        let mut message = DynamicMessage::new(liaison_proto::message("Envelope"));
        if message.merge(bytes.as_slice()).is_ok() {
            let withheld = if round % 2 == 0 {
                all.clone()
            } else {
                BTreeSet::new()
            };
            redact::redact(&mut message, &withheld);
        }
    }
    assert!(
        decoded > 100 && valid > 10,
        "decoded {decoded}, valid {valid}"
    );
}

#[test]
fn random_json_and_tokens_and_identifiers_are_refused_without_a_panic() {
    let registry =
        Registry::load(&deploy("agencies/registry.toml")).unwrap_or_else(|e| panic!("{e}"));
    let verifier =
        Verifier::new(&registry, &GatewayConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let school = AgencyId::parse("school-a").unwrap_or_else(|e| panic!("{e}"));
    let json_seed =
        std::fs::read_to_string(deploy("examples/referral.json")).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = Rng(0xdead_beef_cafe);
    let alphabet = b"{}[]\":,.-_ 0123456789abcdefxyzABC\\\\u00e9\n\teyJ==";
    for _ in 0..rounds() {
        let text: String = match rng.below(3) {
            0 => String::from_utf8_lossy(&mutate(&mut rng, json_seed.as_bytes())).into_owned(),
            1 => (0..rng.below(200))
                .map(|_| alphabet[rng.below(alphabet.len())] as char)
                .collect(),
            _ => {
                let len = rng.below(200);
                String::from_utf8_lossy(&rng.bytes(len)).into_owned()
            }
        };
        let _ = liaison_proto::json::from_json::<Envelope>("Envelope", &text);
        let token = if rng.below(2) == 0 {
            let parts: Vec<String> = (0..rng.below(5))
                .map(|_| {
                    base64::Engine::encode(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                        text.as_bytes(),
                    )
                })
                .collect();
            parts.join(".")
        } else {
            text.clone()
        };
        assert!(verifier.verify(&school, &token, 1_800_000_000).is_err());
        let _ = AgencyId::parse(&text);
        let _ = validate_envelope_id(&text);
        let _ = validate_case_id(&text);
        let _ = toml::from_str::<toml::Value>(&text);
        let _ = Registry::parse(&text);
    }
}
