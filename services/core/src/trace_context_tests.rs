//! W3C trace context as Liaison reads it from agencies: good values are
//! taken, hostile ones are refused without a panic and never echoed back.

use crate::AgencyId;
use crate::envelope_rules;
use crate::hop::Hop;
use crate::trace::{
    MAX_TRACESTATE_BYTES, TraceContext, TraceParent, TraceState, extract, extract_http, inject,
};
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{Classification, Envelope, ReferralMade};

const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn a_version_00_traceparent_is_parsed_and_formatted_back() {
    let parent = TraceParent::parse(GOOD).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parent.to_string(), GOOD);
    assert_eq!(parent.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(parent.span_id_hex(), "00f067aa0ba902b7");
    assert!(parent.sampled());
    let unsampled = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!unsampled.sampled());
}

#[test]
fn hostile_traceparents_are_refused() {
    let long = format!("{GOOD}{}", "0".repeat(10_000));
    let cases: &[&str] = &[
        "",
        "00",
        "garbage",
        "00-Robert Smith-x-01",
        // Upper-case hex, other versions, the invalid version ff.
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // All-zero ids.
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // Wrong lengths and separators, extra fields, padding.
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9020x-01",
        // Multi-byte characters of the right byte length.
        "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        &long,
    ];
    for case in cases {
        assert!(TraceParent::parse(case).is_err(), "accepted {case:?}");
    }
}

#[test]
fn random_bytes_never_panic_the_parser() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for n in 0..20_000 {
        let mut bytes = GOOD.as_bytes().to_vec();
        for _ in 0..(n % 4 + 1) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % bytes.len();
            bytes[at] = (seed >> 32) as u8;
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(parent) = TraceParent::parse(&text) {
            assert_eq!(parent.to_string(), text, "round trip");
        }
        let _ = TraceState::parse(&text);
    }
}

#[test]
fn tracestate_is_passed_only_when_well_formed_and_bounded() {
    for good in [
        "rojo=00f067aa0ba902b7",
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
        "vendor@system=value, other=x",
        "a-b_c*d/e=1",
    ] {
        assert!(TraceState::parse(good).is_ok(), "refused {good:?}");
    }
    let too_long = format!("k={}", "v".repeat(MAX_TRACESTATE_BYTES));
    let too_many = (0..33)
        .map(|n| format!("k{n}=v"))
        .collect::<Vec<_>>()
        .join(",");
    for bad in [
        "",
        ",",
        "novalue",
        "Upper=1",
        "1key=1",
        "k=v=w",
        "k=a,k=b",
        "k= ",
        "k=",
        "k=caf\u{e9}",
        "k=line\nbreak",
        too_long.as_str(),
        too_many.as_str(),
    ] {
        assert!(TraceState::parse(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn nats_headers_carry_the_context_both_ways() {
    let mut headers = async_nats::HeaderMap::new();
    let context = TraceContext {
        parent: TraceParent::parse(GOOD).unwrap_or_else(|e| panic!("{e}")),
        state: Some(TraceState::parse("rojo=1").unwrap_or_else(|e| panic!("{e}"))),
    };
    inject(&mut headers, &context);
    assert_eq!(extract(Some(&headers)), Some(context.clone()));
    // A bad tracestate is dropped, the traceparent kept.
    headers.insert("tracestate", "BAD STATE");
    assert_eq!(
        extract(Some(&headers)),
        Some(TraceContext::new(context.parent))
    );
    // Two traceparents: neither is trusted. None at all: no context.
    headers.append("traceparent", GOOD);
    assert_eq!(extract(Some(&headers)), None);
    assert_eq!(extract(Some(&async_nats::HeaderMap::new())), None);
    assert_eq!(extract(None), None);
    // Names are matched ignoring case, as in HTTP.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Traceparent", GOOD);
    assert!(extract(Some(&headers)).is_some());
}

#[test]
fn http_headers_carry_the_context() {
    use http::{HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", HeaderValue::from_static(GOOD));
    headers.insert("tracestate", HeaderValue::from_static("rojo=1"));
    let found = extract_http(&headers).unwrap_or_else(|| panic!("no context"));
    assert_eq!(found.parent.to_string(), GOOD);
    assert_eq!(
        found.state.map(|s| s.as_str().to_owned()).as_deref(),
        Some("rojo=1")
    );
    headers.insert(
        "traceparent",
        HeaderValue::from_bytes(b"00-\xff").unwrap_or_else(|e| panic!("{e}")),
    );
    assert_eq!(extract_http(&headers), None);
}

#[test]
fn without_an_exporter_a_hop_hands_on_what_it_was_given() {
    let context = TraceContext::from_field(GOOD);
    let hop = Hop::continuing(tracing::Span::none(), context.clone());
    assert_eq!(hop.context(), context);
    assert_eq!(
        hop.trace_id().as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(Hop::continuing(tracing::Span::none(), None).context(), None);
    // A hop that starts a share always hands a trace on.
    let started = Hop::starting(tracing::Span::none(), None);
    let root = started.context().unwrap_or_else(|| panic!("no root"));
    assert!(root.parent.sampled());
    assert_eq!(started.child(tracing::Span::none()).context(), Some(root));
}

#[test]
fn an_envelope_traceparent_must_be_well_formed() {
    let sender = AgencyId::parse("school-a").unwrap_or_else(|e| panic!("{e}"));
    let mut envelope = Envelope {
        id: "e-1".into(),
        sender_agency: "school-a".into(),
        author: "dsl".into(),
        sent_at: Some(crate::time::timestamp_now()),
        classification: Classification::Official as i32,
        purpose: "safeguarding".into(),
        legal_basis: "CTSA-2015-s26".into(),
        body: Some(Body::Referral(ReferralMade::default())),
        ..Default::default()
    };
    let check = |e: &Envelope| envelope_rules::check(e, &sender, |_| String::new());
    assert_eq!(check(&envelope), Ok(()));
    envelope.traceparent = GOOD.into();
    assert_eq!(check(&envelope), Ok(()));
    envelope.traceparent = "00-Robert Smith-x-01".into();
    let err = check(&envelope).err().unwrap_or_else(|| panic!("accepted"));
    assert_eq!(err.field, "traceparent");
    assert!(!err.reason.contains("Robert"), "{}", err.reason);
}
