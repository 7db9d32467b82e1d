//! The protobuf JSON mapping for `liaison.v1` messages, so envelopes can be
//! written and read as JSON files (field names in lowerCamelCase, enums by name,
//! timestamps as RFC 3339). Unknown JSON fields are refused, not ignored.

use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, SerializeOptions};

/// A JSON document that does not map onto the message.
#[derive(Debug, thiserror::Error)]
#[error("invalid {message} JSON: {reason}")]
pub struct JsonError {
    pub message: String,
    pub reason: String,
}

/// Parses `json` as the `liaison.v1` message `name` into the prost type `T`.
pub fn from_json<T: Message + Default>(name: &str, json: &str) -> Result<T, JsonError> {
    let fail = |reason: String| JsonError {
        message: name.to_owned(),
        reason,
    };
    let mut de = serde_json::Deserializer::from_str(json);
    let dynamic = DynamicMessage::deserialize_with_options(
        crate::message(name),
        &mut de,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| fail(e.to_string()))?;
    de.end().map_err(|e| fail(e.to_string()))?;
    dynamic.transcode_to::<T>().map_err(|e| fail(e.to_string()))
}

/// Renders the prost value `msg` of the `liaison.v1` message `name` as JSON.
pub fn to_json<T: Message>(name: &str, msg: &T) -> serde_json::Value {
    let bytes = msg.encode_to_vec();
    let Ok(dynamic) = DynamicMessage::decode(crate::message(name), bytes.as_slice()) else {
        // Our own encoding always decodes against our own descriptor.
        return serde_json::Value::Null;
    };
    let options = SerializeOptions::new().skip_default_fields(true);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .unwrap_or(serde_json::Value::Null)
}
