//! The door's error replies: always JSON `{"code", "reason"}` with an HTTP
//! status. A refusal of the ingress path keeps its code and status from
//! [`Refusal`] (one mapping, both doors); the few errors only an HTTP door can
//! have (a route that does not exist, a body that is not JSON, an ack id that
//! is not the agency's) have their own codes here, listed by
//! [`Problem::codes`] for the OpenAPI document.

use crate::refusal::Refusal;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error the door answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A refusal of the agency or its token (inbox and acks), as ingress words it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("no such resource: see /v1/openapi.json")]
    NotFound,
    #[error("method not allowed here: see /v1/openapi.json")]
    MethodNotAllowed,
    #[error(
        "Content-Type {0:?} is not accepted: send application/json (the protobuf JSON mapping) or application/x-protobuf"
    )]
    UnsupportedMediaType(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidAckId(String),
    #[error("the request body was not received in time")]
    RequestTimeout,
    #[error("the inbox cannot be read now (retry): {0}")]
    Unavailable(String),
}

impl Problem {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(r) => r.code(),
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidAckId(_) => "invalid_ack_id",
            Self::RequestTimeout => "request_timeout",
            Self::Unavailable(_) => "unavailable",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Refused(r) => r.http_status(),
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedMediaType(_) => 415,
            Self::InvalidRequest(_) | Self::InvalidAckId(_) => 400,
            Self::RequestTimeout => 408,
            Self::Unavailable(_) => 503,
        }
    }

    /// The codes only the HTTP door has, with their statuses (the refusal
    /// codes are [`Refusal::codes`]).
    pub fn codes() -> [(&'static str, u16); 7] {
        [
            ("not_found", 404),
            ("method_not_allowed", 405),
            ("unsupported_media_type", 415),
            ("invalid_request", 400),
            ("invalid_ack_id", 400),
            ("request_timeout", 408),
            ("unavailable", 503),
        ]
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "code": self.code(), "reason": self.to_string() });
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn door_codes_are_one_table() {
        let examples = [
            Problem::NotFound,
            Problem::MethodNotAllowed,
            Problem::UnsupportedMediaType(String::new()),
            Problem::InvalidRequest(String::new()),
            Problem::InvalidAckId(String::new()),
            Problem::RequestTimeout,
            Problem::Unavailable(String::new()),
        ];
        let table = Problem::codes();
        assert_eq!(examples.len(), table.len());
        for (problem, (code, status)) in examples.iter().zip(table) {
            assert_eq!((problem.code(), problem.status()), (code, status));
        }
        let refused = Problem::from(Refusal::MissingToken);
        assert_eq!((refused.code(), refused.status()), ("missing_token", 401));
    }
}
