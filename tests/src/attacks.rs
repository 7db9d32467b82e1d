//! Hostile tokens, as RFC 8725 and the JWT attack literature list them, each
//! built against school-a's ingress with the code and the words the gateway's
//! refusal must carry.

use crate::key_pem;
use anyhow::{Result, anyhow};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use liaison_core::time::unix_now;
use liaison_core::tokens::{Signer, TOKEN_TYPE};
use serde_json::{Value, json};

/// One hostile token and what its refusal must say.
#[derive(Debug, Clone)]
pub struct Attack {
    pub name: &'static str,
    pub token: String,
    pub code: &'static str,
    pub mentions: &'static str,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Claims school-a's sender `school-a-dsl` may use now, with a fresh jti.
pub fn valid_claims() -> Value {
    let now = unix_now();
    json!({"iss": "school-a", "sub": "school-a-dsl", "aud": "liaison-gateway", "iat": now - 5,
           "nbf": now - 5, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string()})
}

/// A JWS over exactly this header and these claims, signed with `key` under `alg`.
pub fn forge(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> Result<String> {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg)?;
    Ok(format!("{input}.{signature}"))
}

/// `token` with its claims replaced and its signature kept.
pub fn tamper(token: &str, claims: &Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    if parts.len() == 3 {
        parts[1] = b64(claims.to_string().as_bytes());
    }
    parts.join(".")
}

fn signer(file: &str) -> Result<Signer> {
    Signer::from_pem(&key_pem(file)?, None).map_err(|e| anyhow!(e))
}

fn ed_key(file: &str) -> Result<EncodingKey> {
    Ok(EncodingKey::from_ed_pem(key_pem(file)?.as_bytes())?)
}

fn with(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut claims = valid_claims();
    if let Some(map) = claims.as_object_mut() {
        change(map);
    }
    claims
}

/// Every attack, against school-a's subject.
pub fn all() -> Result<Vec<Attack>> {
    let school = signer("school-a")?;
    let school_key = ed_key("school-a")?;
    let kid = school.kid().to_owned();
    let header = |extra: Value| {
        let mut h = json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": kid});
        if let (Some(h), Some(extra)) = (h.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                if v.is_null() {
                    h.remove(k);
                } else {
                    h.insert(k.clone(), v.clone());
                }
            }
        }
        h
    };
    let school_signed = |h: Value, c: Value| forge(&h, &c, &school_key, Algorithm::EdDSA);
    let attack = |name, token, code, mentions| Attack {
        name,
        token,
        code,
        mentions,
    };
    let now = unix_now();
    // The public key an attacker can read from the registry, as an HMAC secret.
    let public = liaison_core::tokens::public_of_pem(&key_pem("school-a")?)
        .map(|(_, p)| liaison_core::tokens::public_key_text(&p))
        .map_err(|e| anyhow!(e))?;
    let hmac_key = EncodingKey::from_secret(public.as_bytes());
    let police_es = EncodingKey::from_ec_pem(key_pem("police-es256")?.as_bytes())?;
    let attacker = ed_key("transport-bsp")?;
    let attacker_public = liaison_core::tokens::public_of_pem(&key_pem("transport-bsp")?)
        .map(|(_, p)| b64(&p))
        .map_err(|e| anyhow!(e))?;
    let unsigned = |h: Value| {
        format!(
            "{}.{}.",
            b64(h.to_string().as_bytes()),
            b64(valid_claims().to_string().as_bytes())
        )
    };
    let valid = school.sign(&valid_claims()).map_err(|e| anyhow!(e))?;
    Ok(vec![
        attack(
            "alg none",
            unsigned(header(json!({"alg": "none"}))),
            "invalid_token",
            "algorithm",
        ),
        attack(
            "HMAC with the registered public key as the secret",
            forge(
                &header(json!({"alg": "HS256"})),
                &valid_claims(),
                &hmac_key,
                Algorithm::HS256,
            )?,
            "invalid_token",
            "algorithm must be EdDSA",
        ),
        attack(
            "algorithm confusion: ES256 under an EdDSA key id",
            forge(
                &header(json!({"alg": "ES256"})),
                &valid_claims(),
                &police_es,
                Algorithm::ES256,
            )?,
            "invalid_token",
            "algorithm must be EdDSA",
        ),
        attack(
            "unknown kid",
            school_signed(header(json!({"kid": "no-such-key"})), valid_claims())?,
            "invalid_token",
            "kid",
        ),
        attack(
            "injected kid",
            school_signed(
                header(json!({"kid": "../../../../dev/null' OR '1'='1"})),
                valid_claims(),
            )?,
            "invalid_token",
            "kid",
        ),
        attack(
            "no kid",
            school_signed(header(json!({"kid": null})), valid_claims())?,
            "invalid_token",
            "kid",
        ),
        attack(
            "jku header pointing at the attacker's keys",
            school_signed(
                header(json!({"jku": "https://attacker.example/jwks.json"})),
                valid_claims(),
            )?,
            "invalid_token",
            "jku",
        ),
        attack(
            "x5u header",
            school_signed(
                header(json!({"x5u": "https://attacker.example/cert.pem"})),
                valid_claims(),
            )?,
            "invalid_token",
            "x5u",
        ),
        attack(
            "embedded jwk of the attacker's own key",
            forge(
                &header(json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": attacker_public}})),
                &valid_claims(),
                &attacker,
                Algorithm::EdDSA,
            )?,
            "invalid_token",
            "jwk",
        ),
        attack(
            "x5c header",
            school_signed(header(json!({"x5c": ["MIIB"]})), valid_claims())?,
            "invalid_token",
            "x5c",
        ),
        attack(
            "crit header",
            school_signed(
                header(json!({"crit": ["exp"], "exp": now + 60})),
                valid_claims(),
            )?,
            "invalid_token",
            "not accepted",
        ),
        attack(
            "no typ",
            school_signed(header(json!({"typ": null})), valid_claims())?,
            "invalid_token",
            "typ",
        ),
        attack(
            "wrong typ",
            school_signed(header(json!({"typ": "JWT"})), valid_claims())?,
            "invalid_token",
            "typ",
        ),
        attack(
            "wrong iss",
            school_signed(
                header(json!({})),
                with(|c| {
                    c.insert("iss".into(), json!("police"));
                }),
            )?,
            "invalid_token",
            "iss",
        ),
        attack(
            "wrong aud",
            school_signed(
                header(json!({})),
                with(|c| {
                    c.insert("aud".into(), json!("liaison-audit"));
                }),
            )?,
            "invalid_token",
            "aud",
        ),
        attack(
            "expired",
            school_signed(
                header(json!({})),
                with(|c| {
                    c.insert("iat".into(), json!(now - 200));
                    c.insert("nbf".into(), json!(now - 200));
                    c.insert("exp".into(), json!(now - 100));
                }),
            )?,
            "token_expired",
            "expired",
        ),
        attack(
            "not yet valid",
            school_signed(
                header(json!({})),
                with(|c| {
                    c.insert("nbf".into(), json!(now + 100));
                }),
            )?,
            "invalid_token",
            "not valid yet",
        ),
        attack(
            "string exp",
            school_signed(
                header(json!({})),
                with(|c| {
                    c.insert("exp".into(), json!((now + 60).to_string()));
                }),
            )?,
            "invalid_token",
            "exp",
        ),
        attack(
            "issued in the future",
            school_signed(
                header(json!({})),
                with(|c| {
                    c.insert("iat".into(), json!(now + 100));
                    c.insert("exp".into(), json!(now + 160));
                }),
            )?,
            "invalid_token",
            "iat",
        ),
        attack(
            "lifetime too long",
            school_signed(
                header(json!({})),
                with(|c| {
                    c.insert("exp".into(), json!(now + 86_400));
                }),
            )?,
            "invalid_token",
            "lifetime",
        ),
        attack(
            "no jti",
            school_signed(
                header(json!({})),
                with(|c| {
                    c.remove("jti");
                }),
            )?,
            "invalid_token",
            "jti",
        ),
        attack(
            "no sub",
            school_signed(
                header(json!({})),
                with(|c| {
                    c.remove("sub");
                }),
            )?,
            "invalid_token",
            "sub",
        ),
        attack(
            "police's valid token on school-a's subject",
            signer("police")?
                .sign(&with(|c| {
                    c.insert("iss".into(), json!("police"));
                }))
                .map_err(|e| anyhow!(e))?,
            "invalid_token",
            "kid",
        ),
        attack(
            "claims altered after signing",
            tamper(
                &valid,
                &with(|c| {
                    c.insert("sub".into(), json!("someone-else"));
                }),
            ),
            "bad_signature",
            "signature",
        ),
        attack(
            "oversized token",
            format!("{}.{}.x", "a".repeat(3000), "b".repeat(3000)),
            "invalid_token",
            "longer than",
        ),
        attack("not a JWT", "not-a-token".into(), "invalid_token", "three"),
    ])
}
