//! What a request to the door carries, read defensively: the agency named in
//! the path, the bearer token, the encoding of an envelope (from
//! `Content-Type`), and the body, read only up to a limit and a deadline. It
//! decides nothing: the routes and the ingress path do.

use super::problem::Problem;
use crate::decode::Encoding;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt as _;
use std::time::Duration;

/// Longest a client may take to send a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The agency named in the path, as sent ("" if it was not even UTF-8).
pub fn path_agency(path: Result<Path<String>, PathRejection>) -> String {
    path.map(|Path(agency)| agency).unwrap_or_default()
}

/// The bearer token of `Authorization`, if the header is there at all. A
/// header that is not `Bearer <token>` is passed on whole, to be refused as
/// an invalid token.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?;
    let text = value.to_str().unwrap_or_default().trim();
    let token = match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => text,
    };
    Some(token.to_owned())
}

/// How the envelope in the body is encoded, from `Content-Type` (JSON when absent).
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, Problem> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Encoding::Json);
    };
    let text = value.to_str().unwrap_or_default();
    let media = text.split(';').next().unwrap_or_default().trim();
    match media.to_ascii_lowercase().as_str() {
        "application/json" => Ok(Encoding::Json),
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        _ => Err(Problem::UnsupportedMediaType(
            text.chars().take(64).collect(),
        )),
    }
}

/// A body that could not be read whole.
pub enum Unread {
    /// Longer than the limit: the declared length, or what was read before
    /// the limit was passed.
    TooLarge(usize),
    Problem(Problem),
}

/// Reads the body, refusing it as soon as it is known to be over `limit`.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Unread> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let read = async {
        let mut body = body;
        if let Some(declared) = declared.filter(|d| *d > limit) {
            drain(&mut body, 0).await;
            return Err(Unread::TooLarge(declared));
        }
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                Unread::Problem(Problem::InvalidRequest(format!("reading the body: {e}")))
            })?;
            if let Some(data) = frame.data_ref() {
                if bytes.len() + data.len() > limit {
                    let size = bytes.len() + data.len();
                    drain(&mut body, size).await;
                    return Err(Unread::TooLarge(size));
                }
                bytes.extend_from_slice(data);
            }
        }
        Ok(Bytes::from(bytes))
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or(Err(Unread::Problem(Problem::RequestTimeout)))
}

/// The most of a refused body read and thrown away, so that a client still
/// sending it reads the refusal rather than a reset connection.
const DRAIN_MAX: usize = 1024 * 1024;

/// Reads and discards the rest of a body too large to keep, up to
/// [`DRAIN_MAX`] bytes in all (`seen` so far); beyond that the connection
/// is closed with the rest unread.
async fn drain(body: &mut Body, seen: usize) {
    let mut total = seen;
    while total <= DRAIN_MAX {
        match body.frame().await {
            Some(Ok(frame)) => total += frame.data_ref().map_or(0, Bytes::len),
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: header::HeaderName, value: &[u8]) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(value) {
            map.insert(name, v);
        }
        map
    }

    #[test]
    fn bearer_tokens_are_taken_whatever_the_scheme_case_and_anything_else_is_kept_to_fail() {
        let token = |v: &[u8]| bearer(&headers(header::AUTHORIZATION, v));
        assert_eq!(token(b"Bearer abc.def.ghi"), Some("abc.def.ghi".into()));
        assert_eq!(token(b"bearer   abc "), Some("abc".into()));
        assert_eq!(token(b"Basic cG9saWNl"), Some("Basic cG9saWNl".into()));
        assert_eq!(token(b"\xff\xfe"), Some(String::new()));
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn content_types_name_the_encoding() {
        let of = |v: &[u8]| encoding(&headers(header::CONTENT_TYPE, v));
        assert_eq!(encoding(&HeaderMap::new()), Ok(Encoding::Json));
        assert_eq!(of(b"application/json; charset=utf-8"), Ok(Encoding::Json));
        assert_eq!(of(b"Application/JSON"), Ok(Encoding::Json));
        assert_eq!(of(b"application/x-protobuf"), Ok(Encoding::Protobuf));
        assert!(matches!(
            of(b"text/plain"),
            Err(Problem::UnsupportedMediaType(_))
        ));
        assert!(matches!(of(b"\xff"), Err(Problem::UnsupportedMediaType(_))));
    }
}
