//! The door's OpenAPI 3.1 document, generated from the code: the message
//! schemas from the protobuf descriptors ([`liaison_proto::json_schema`]),
//! the error responses from [`Refusal::codes`] and [`Problem::codes`], the
//! limits from the constants the handlers use. Nothing in it is written twice.

use super::inbox::{MAX_ACKS, MAX_BATCH, MAX_WAIT};
use super::problem::Problem;
use crate::refusal::Refusal;
use liaison_core::ids::MAX_AGENCY_ID_LEN;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Where component schemas are referred to from.
const SCHEMAS: &str = "#/components/schemas/";

/// The protobuf messages the door sends or receives as JSON.
pub const MESSAGES: [&str; 3] = ["Envelope", "Delivery", "Verdict"];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{SCHEMAS}{name}") })
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut schemas: Map<String, Value> = liaison_proto::json_schema::schemas(&MESSAGES, SCHEMAS)
        .into_iter()
        .collect();
    schemas.insert("Error".into(), json!({
        "type": "object",
        "description": "Every error reply. A refused envelope's reply is its Verdict, which carries the same two fields.",
        "required": ["code", "reason"],
        "properties": {
            "code": { "type": "string", "description": "Stable, machine-readable" },
            "reason": { "type": "string", "description": "What was wrong, for a person" },
        },
    }));
    schemas.insert("InboxPage".into(), json!({
        "type": "object",
        "required": ["deliveries"],
        "properties": { "deliveries": { "type": "array", "items": {
            "type": "object",
            "required": ["ack_id", "delivery"],
            "properties": {
                "ack_id": { "type": "string", "description": "Opaque; acknowledge with it, as the same agency" },
                "delivery": schema_ref("Delivery"),
            },
        }}},
    }));
    schemas.insert("AckRequest".into(), json!({
        "type": "object",
        "required": ["ack_ids"],
        "additionalProperties": false,
        "properties": { "ack_ids": { "type": "array", "maxItems": MAX_ACKS, "items": { "type": "string" } } },
    }));
    schemas.insert(
        "AckResult".into(),
        json!({
            "type": "object",
            "properties": { "acked": { "type": "integer", "minimum": 0 } },
        }),
    );

    // Which refusals each route can answer with.
    // All but `invalid_reply_subject`: an HTTPS request has no reply subject.
    let envelope_refusals: Vec<(&str, u16)> = Refusal::codes()
        .into_iter()
        .filter(|(code, _)| *code != "invalid_reply_subject")
        .collect();
    let agency_refusals: Vec<(&str, u16)> = Refusal::codes()
        .into_iter()
        .filter(|(code, status)| *status == 401 || *code == "invalid_agency_id")
        .collect();
    let door = |codes: &[&str]| -> Vec<(&'static str, u16)> {
        Problem::codes()
            .into_iter()
            .filter(|(c, _)| codes.contains(c))
            .collect()
    };

    let agency = json!({
        "name": "agency", "in": "path", "required": true,
        "description": "The agency's registered id; the token must be this agency's",
        "schema": { "type": "string", "maxLength": MAX_AGENCY_ID_LEN, "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$" },
    });
    let mut send = responses(
        &envelope_refusals,
        "Verdict",
        &door(&[
            "unsupported_media_type",
            "invalid_request",
            "request_timeout",
        ]),
    );
    send.insert("201".into(), json!({ "description": "Accepted: stored, and each recipient will receive its copy", "content": json_of(schema_ref("Verdict")) }));
    send.insert("200".into(), json!({ "description": "Duplicate: this envelope id was accepted before and is not delivered again", "content": json_of(schema_ref("Verdict")) }));
    let mut read = responses(
        &agency_refusals,
        "Error",
        &door(&["invalid_request", "unavailable"]),
    );
    read.insert("200".into(), json!({ "description": "Up to `max` deliveries, not yet acknowledged", "content": json_of(schema_ref("InboxPage")) }));
    let mut acknowledge = responses(
        &agency_refusals,
        "Error",
        &door(&[
            "invalid_request",
            "invalid_ack_id",
            "request_timeout",
            "unavailable",
        ]),
    );
    acknowledge.insert("200".into(), json!({ "description": "All acknowledged (acknowledging twice is harmless)", "content": json_of(schema_ref("AckResult")) }));

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Liaison gateway: the HTTPS door",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "For partner agencies that do not speak NATS. The same checks, policy and audit as the NATS door: an envelope sent here is decided exactly as one sent over NATS, and every refusal is written to the audit ledger. Authenticate with the agency's short-lived EdDSA JWT as `Authorization: Bearer`. Deliveries read from the inbox are not acknowledged until acknowledged with their ack ids; what is not acknowledged within the delivery consumer's ack_wait (streams.ack_wait_secs) is delivered again.",
        },
        "security": [{ "agencyToken": [] }],
        "paths": {
            "/v1/agencies/{agency}/envelopes": { "post": {
                "summary": "Send an envelope",
                "description": "The body is a liaison.v1.Envelope in the protobuf JSON mapping (application/json; unknown fields are refused) or binary protobuf (application/x-protobuf). Its size is checked before it is parsed.",
                "parameters": [agency],
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": schema_ref("Envelope") },
                    "application/x-protobuf": { "schema": { "description": "liaison.v1.Envelope, binary protobuf" } },
                }},
                "responses": send,
            }},
            "/v1/agencies/{agency}/inbox": { "get": {
                "summary": "Read deliveries, without acknowledging them",
                "parameters": [agency, {
                    "name": "max", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": MAX_BATCH, "default": 10 },
                }, {
                    "name": "wait_ms", "in": "query", "description": "How long to wait for the first delivery if there is none",
                    "schema": { "type": "integer", "minimum": 0, "maximum": MAX_WAIT.as_millis() as u64, "default": 0 },
                }],
                "responses": read,
            }},
            "/v1/agencies/{agency}/inbox/ack": { "post": {
                "summary": "Acknowledge deliveries read from the inbox",
                "description": "Every ack id must be one this agency was given; if any is not, none is acknowledged.",
                "parameters": [agency],
                "requestBody": { "required": true, "content": json_of(schema_ref("AckRequest")) },
                "responses": acknowledge,
            }},
            "/v1/openapi.json": { "get": {
                "summary": "This document", "security": [],
                "responses": { "200": { "description": "OpenAPI 3.1", "content": json_of(json!({ "type": "object" })) } },
            }},
            "/healthz": { "get": {
                "summary": "Whether the door is serving", "security": [],
                "responses": { "200": { "description": "Serving", "content": json_of(json!({ "type": "object" })) } },
            }},
        },
        "components": {
            "securitySchemes": { "agencyToken": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "EdDSA JWT signed with the agency's registered key: iss = the agency, sub = the person or system acting, aud = the gateway's audience, lifetime at most gateway.max_token_lifetime_secs",
            }},
            "schemas": schemas,
        },
    })
}

fn json_of(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// Error responses by status: `refusals` (bodies of schema `refusal_schema`)
/// and `door` codes (bodies of schema `Error`), each status listing its codes.
fn responses(
    refusals: &[(&'static str, u16)],
    refusal_schema: &str,
    door: &[(&'static str, u16)],
) -> Map<String, Value> {
    let mut by_status: BTreeMap<u16, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    for (code, status) in refusals {
        by_status.entry(*status).or_default().0.push(code);
    }
    for (code, status) in door {
        by_status.entry(*status).or_default().1.push(code);
    }
    let with_codes = |schema: &str, codes: &[&str]| json!({ "allOf": [schema_ref(schema), { "properties": { "code": { "enum": codes } } }] });
    let mut out = Map::new();
    for (status, (refused, other)) in by_status {
        let mut kinds = Vec::new();
        if !refused.is_empty() {
            kinds.push(with_codes(refusal_schema, &refused));
        }
        if !other.is_empty() {
            kinds.push(with_codes("Error", &other));
        }
        let schema = if kinds.len() == 1 {
            kinds.remove(0)
        } else {
            json!({ "anyOf": kinds })
        };
        let all: Vec<&str> = refused.iter().chain(&other).copied().collect();
        out.insert(
            status.to_string(),
            json!({ "description": all.join(", "), "content": json_of(schema) }),
        );
    }
    out
}
