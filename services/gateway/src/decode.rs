//! Decoding an envelope from the encodings the doors accept: binary protobuf
//! (NATS, and HTTPS `application/x-protobuf`) and the protobuf JSON mapping
//! (HTTPS `application/json`). It does not check sizes, tokens or fields: the
//! ingress path does that, the same for every encoding.
//!
//! A reason for a failure goes to the sender and into the audit ledger, which
//! holds no personal data: it may name the schema's fields and the position of
//! a fault, but never echoes a value that was sent.

use liaison_proto::v1::Envelope;
use prost::Message as _;

/// How a door's payload is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `liaison.v1.Envelope`, binary protobuf.
    Protobuf,
    /// `liaison.v1.Envelope` in the protobuf JSON mapping (UTF-8); unknown
    /// fields are refused.
    Json,
}

/// Decodes `payload`, or says what was wrong with it (without its values).
pub fn decode(payload: &[u8], encoding: Encoding) -> Result<Envelope, String> {
    match encoding {
        Encoding::Protobuf => Envelope::decode(payload).map_err(|e| e.to_string()),
        Encoding::Json => {
            let text = std::str::from_utf8(payload)
                .map_err(|e| format!("JSON is not UTF-8 (byte {})", e.valid_up_to()))?;
            liaison_proto::json::from_json::<Envelope>("Envelope", text)
                .map_err(|e| format!("JSON: {}", without_values(&e.reason)))
        }
    }
}

/// Longest quoted name kept in a reason.
const MAX_NAME: usize = 64;

/// `reason` with every quoted literal that could be a sent value replaced by
/// `…`. JSON parsers quote values in double quotes (`string "Alex"`) and
/// numbers in backticks (`` integer `42` ``), and names (fields, enum values)
/// in backticks or single quotes: a single-quoted or backticked identifier is
/// kept, anything else quoted is not.
fn without_values(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut chars = reason.chars();
    while let Some(c) = chars.next() {
        if !matches!(c, '"' | '\'' | '`') {
            out.push(c);
            continue;
        }
        let mut literal = String::new();
        let mut closed = false;
        while let Some(d) = chars.next() {
            if d == '\\' && c == '"' {
                // Debug-escaped: the next character belongs to the literal.
                chars.next();
                literal.push('?');
                continue;
            }
            if d == c {
                closed = true;
                break;
            }
            literal.push(d);
        }
        let is_name = c != '"'
            && literal.len() <= MAX_NAME
            && literal
                .chars()
                .next()
                .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && literal
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        out.push(c);
        out.push_str(if is_name { &literal } else { "…" });
        if closed {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_keep_names_and_drop_values() {
        let cases = [
            (
                r#"invalid type: string "Alex Example", expected a boolean at line 1 column 20"#,
                r#"invalid type: string "…", expected a boolean at line 1 column 20"#,
            ),
            (
                r#"invalid type: string "Alex", expected i32"#,
                r#"invalid type: string "…", expected i32"#,
            ),
            (r#"string "say \"hi\" Alex" here"#, r#"string "…" here"#),
            (
                "invalid value: integer `9434765919`, expected u32",
                "invalid value: integer `…`, expected u32",
            ),
            (
                "unrecognized field name 'fullNme'",
                "unrecognized field name 'fullNme'",
            ),
            (
                "unknown field `nickname`, expected one of `token`, `fullName`",
                "unknown field `nickname`, expected one of `token`, `fullName`",
            ),
            (
                "unrecognized enum value '12 Demo Street'",
                "unrecognized enum value '…'",
            ),
            ("unterminated 'Alex Ex", "unterminated '…"),
            (
                "expected value at line 1 column 1",
                "expected value at line 1 column 1",
            ),
        ];
        for (reason, expected) in cases {
            assert_eq!(without_values(reason), expected, "{reason}");
        }
    }

    #[test]
    fn both_encodings_decode_the_same_envelope() {
        let json = r#"{"id": "e-1", "senderAgency": "school-a", "purpose": "safeguarding"}"#;
        let from_json = decode(json.as_bytes(), Encoding::Json);
        let envelope = from_json.clone().unwrap_or_default();
        assert_eq!(
            (envelope.id.as_str(), envelope.purpose.as_str()),
            ("e-1", "safeguarding")
        );
        let bytes = envelope.encode_to_vec();
        assert_eq!(decode(&bytes, Encoding::Protobuf), from_json);
    }

    #[test]
    fn bad_json_is_refused_without_echoing_it() {
        for (json, mentions) in [
            (&b"{\"id\": 1"[..], "JSON"),
            (b"\xff\xfe", "UTF-8"),
            (b"{\"fullName\": \"Alex Example\"}", "fullName"),
            (b"{\"id\": {\"name\": \"Alex Example\"}}", "JSON"),
            (b"{\"classification\": \"Alex Example\"}", "JSON"),
        ] {
            let reason = decode(json, Encoding::Json).err().unwrap_or_default();
            assert!(reason.contains(mentions), "{reason}");
            assert!(!reason.contains("Alex"), "{reason}");
        }
    }
}
