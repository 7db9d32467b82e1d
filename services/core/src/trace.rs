//! W3C trace context (`traceparent`, `tracestate`): parsing it strictly,
//! formatting it, and carrying it in NATS message headers and reading it from
//! HTTP headers. Every hop of an envelope — the sending client, the gateway's
//! ingress, EVENTS, each DELIVERY copy, the decision records — carries it, so
//! one trace follows an envelope from the sender to every recipient and into
//! the ledger (docs/decisions/0009-tracing.md).
//!
//! Values come from outside (agencies' headers and envelopes), so parsing
//! never panics and accepts only what the W3C recommendation allows: version
//! `00`, lower-case hex, ids not all zero, exactly 55 bytes. A `tracestate`
//! is passed on only when it is well formed and at most
//! [`MAX_TRACESTATE_BYTES`]; otherwise it is dropped. Spans are not made
//! here (see [`crate::hop`]).

use rand_core::{OsRng, RngCore};
use std::fmt;

/// The header carrying the trace parent.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// The header carrying vendor trace state.
pub const TRACESTATE_HEADER: &str = "tracestate";
/// Longest `tracestate` passed on.
pub const MAX_TRACESTATE_BYTES: usize = 512;
/// Most list members in a `tracestate` (W3C).
const MAX_TRACESTATE_MEMBERS: usize = 32;
/// A version-00 `traceparent` is exactly this long.
const TRACEPARENT_LEN: usize = 55;

/// Why a `traceparent` or `tracestate` was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TraceError(&'static str);

/// A parsed W3C `traceparent`: trace id, parent (span) id and flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }
}

/// Lower-case hex of exactly `N` bytes, not all zero.
fn id<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], TraceError> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(TraceError(what));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| TraceError(what))?;
    if out.iter().all(|&b| b == 0) {
        return Err(TraceError(what));
    }
    Ok(out)
}

impl TraceParent {
    /// Parses a version-00 `traceparent`, refusing anything else.
    pub fn parse(text: &str) -> Result<Self, TraceError> {
        if text.len() != TRACEPARENT_LEN {
            return Err(TraceError("traceparent must be 55 characters (version 00)"));
        }
        let mut parts = text.split('-');
        let (Some(version), Some(trace_id), Some(span_id), Some(flags), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TraceError(
                "traceparent must be version-traceid-parentid-flags",
            ));
        };
        if version != "00" {
            return Err(TraceError("traceparent version must be 00"));
        }
        let trace_id = id::<16>(
            trace_id,
            "trace id must be 32 lower-case hex digits, not all zero",
        )?;
        let span_id = id::<8>(
            span_id,
            "parent id must be 16 lower-case hex digits, not all zero",
        )?;
        if flags.len() != 2
            || !flags
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(TraceError("trace flags must be 2 lower-case hex digits"));
        }
        let flags = u8::from_str_radix(flags, 16).map_err(|_| TraceError("bad trace flags"))?;
        Ok(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// From raw ids (an OpenTelemetry span context); `None` if either is all zero.
    pub fn from_parts(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Option<Self> {
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// A new trace, sampled, with random ids.
    pub fn new_root() -> Self {
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        loop {
            OsRng.fill_bytes(&mut trace_id);
            OsRng.fill_bytes(&mut span_id);
            if let Some(root) = Self::from_parts(trace_id, span_id, 0x01) {
                return root;
            }
        }
    }

    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The parent (span) id as 16 lower-case hex digits.
    pub fn span_id_hex(&self) -> String {
        hex::encode(self.span_id)
    }

    /// Whether the sender recorded (sampled) its part of the trace.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }
}

/// A well-formed W3C `tracestate` of at most [`MAX_TRACESTATE_BYTES`].
#[derive(Clone, PartialEq, Eq)]
pub struct TraceState(String);

impl fmt::Debug for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Vendor data from outside: its length, never its content.
        write!(f, "TraceState({} bytes)", self.0.len())
    }
}

fn key_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// A list member's key: `simple-key` or `tenant@system` (W3C).
fn valid_key(key: &str) -> bool {
    let (tenant, system) = match key.split_once('@') {
        Some((tenant, system)) => (tenant, Some(system)),
        None => (key, None),
    };
    let tenant_ok = match system {
        None => {
            tenant.len() <= 256
                && tenant
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_lowercase)
                && tenant.bytes().all(key_char)
        }
        Some(_) => {
            (1..=241).contains(&tenant.len())
                && tenant
                    .as_bytes()
                    .first()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && tenant.bytes().all(key_char)
        }
    };
    let system_ok = system.is_none_or(|s| {
        (1..=14).contains(&s.len())
            && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
            && s.bytes().all(key_char)
    });
    tenant_ok && system_ok
}

/// A list member's value: 1–256 printable ASCII but `,` and `=`, not ending in a space.
fn valid_value(value: &str) -> bool {
    (1..=256).contains(&value.len())
        && value
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !value.ends_with(' ')
}

impl TraceState {
    /// Parses a `tracestate`, refusing one that is too long or malformed.
    pub fn parse(text: &str) -> Result<Self, TraceError> {
        if text.len() > MAX_TRACESTATE_BYTES {
            return Err(TraceError("tracestate is longer than 512 bytes"));
        }
        let mut members = 0;
        let mut keys = Vec::new();
        for member in text.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let Some((key, value)) = member.split_once('=') else {
                return Err(TraceError("tracestate member must be key=value"));
            };
            if !valid_key(key) || !valid_value(value) {
                return Err(TraceError("tracestate member is malformed"));
            }
            if keys.contains(&key) {
                return Err(TraceError("tracestate repeats a key"));
            }
            keys.push(key);
            members += 1;
        }
        if members == 0 {
            return Err(TraceError("tracestate is empty"));
        }
        if members > MAX_TRACESTATE_MEMBERS {
            return Err(TraceError("tracestate has more than 32 members"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The trace context one hop hands the next: its `traceparent` and the
/// sender's `tracestate`, if any, passed through unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub parent: TraceParent,
    pub state: Option<TraceState>,
}

impl TraceContext {
    /// A context with no trace state.
    pub fn new(parent: TraceParent) -> Self {
        Self {
            parent,
            state: None,
        }
    }

    /// From header values as received: `None` unless `traceparent` is
    /// valid; an invalid `tracestate` is dropped.
    pub fn from_values<'a>(
        traceparent: &[&str],
        tracestate: impl IntoIterator<Item = &'a str>,
    ) -> Option<Self> {
        // Two traceparents contradict each other: neither is trusted.
        let [traceparent] = traceparent else {
            return None;
        };
        let parent = TraceParent::parse(traceparent.trim_matches([' ', '\t'])).ok()?;
        let states: Vec<&str> = tracestate.into_iter().collect();
        let total: usize = states.iter().map(|s| s.len() + 1).sum();
        let state = if states.is_empty() || total > MAX_TRACESTATE_BYTES + 1 {
            None
        } else {
            TraceState::parse(&states.join(",")).ok()
        };
        Some(Self { parent, state })
    }

    /// From an envelope's `traceparent` field (no trace state there).
    pub fn from_field(traceparent: &str) -> Option<Self> {
        TraceParent::parse(traceparent).ok().map(Self::new)
    }
}

/// The `traceparent` and `tracestate` values of `context` (empty if none),
/// as a message stores them in its own fields.
pub fn fields(context: Option<&TraceContext>) -> (String, String) {
    (
        context.map(|c| c.parent.to_string()).unwrap_or_default(),
        context
            .and_then(|c| c.state.as_ref())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
    )
}

/// The trace context stored in a message's own `traceparent` and
/// `tracestate` fields (`None` unless `traceparent` is valid).
pub fn from_fields(traceparent: &str, tracestate: &str) -> Option<TraceContext> {
    TraceContext::from_values(
        &[traceparent],
        (!tracestate.is_empty()).then_some(tracestate),
    )
}

/// The trace context in NATS message headers (names matched ignoring case).
pub fn extract(headers: Option<&async_nats::HeaderMap>) -> Option<TraceContext> {
    let headers = headers?;
    let mut parents = Vec::new();
    let mut states = Vec::new();
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        if name.eq_ignore_ascii_case(TRACEPARENT_HEADER) {
            parents.extend(values.iter().map(|v| v.as_str()));
        } else if name.eq_ignore_ascii_case(TRACESTATE_HEADER) {
            states.extend(values.iter().map(|v| v.as_str()));
        }
    }
    TraceContext::from_values(&parents, states)
}

/// The trace context in HTTP request headers.
pub fn extract_http(headers: &http::HeaderMap) -> Option<TraceContext> {
    let text = |name: &str| -> Option<Vec<&str>> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().ok())
            .collect()
    };
    let parents = text(TRACEPARENT_HEADER)?;
    // A tracestate that is not text is dropped, not the whole context.
    let states = text(TRACESTATE_HEADER).unwrap_or_default();
    TraceContext::from_values(&parents, states)
}

/// Puts `context` into NATS message headers, replacing any there.
pub fn inject(headers: &mut async_nats::HeaderMap, context: &TraceContext) {
    headers.insert(TRACEPARENT_HEADER, context.parent.to_string().as_str());
    if let Some(state) = &context.state {
        headers.insert(TRACESTATE_HEADER, state.as_str());
    }
}
