//! Linkage matching in memory, through the linkage crate's own index as its
//! bench (`cargo bench -p liaison-linkage`) and its service use it: 20,000
//! former subjects (closed cases under review) and 3,000 priority
//! individuals (live cases), then referrals (10 % former subjects, 5 %
//! priority, the rest nobody known) each timed through `Index::apply`.
//! The raw baseline is a plain hash-map lookup of the same tokens.

use super::{Figure, Row, percentile};
use liaison_linkage::index::{Index, Settings};
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{
    CaseStatus, CaseStatusChanged, Envelope, EnvelopeAccepted, Person, ReferralMade, Route,
};
use prost_types::Timestamp;
use std::collections::HashSet;
use std::time::{Duration, Instant};

pub const FORMER: usize = 20_000;
pub const PRIORITY: usize = 3_000;
const DAY: i64 = 24 * 3600;
const T0: i64 = 1_790_000_000;

fn token(n: usize) -> String {
    format!("st1:bench{n:038}")
}

fn accepted(id: String, sender: &str, case_id: String, when: i64, body: Body) -> EnvelopeAccepted {
    EnvelopeAccepted {
        envelope: Some(Envelope {
            id,
            sender_agency: sender.into(),
            case_id,
            classification: 2,
            body: Some(body),
            ..Default::default()
        }),
        accepted_at: Some(Timestamp {
            seconds: when,
            nanos: 0,
        }),
        routes: ["police", "council"]
            .into_iter()
            .map(|r| Route {
                recipient: r.into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn status(case: usize, status: CaseStatus, token: Option<String>) -> EnvelopeAccepted {
    accepted(
        format!("status-{case}-{}", status as i32),
        "police",
        format!("CASE-{case:06}"),
        T0 - 200 * DAY,
        Body::CaseStatus(CaseStatusChanged {
            status: status as i32,
            subject_tokens: token.into_iter().collect(),
            review_date: (status == CaseStatus::Closed).then_some(Timestamp {
                seconds: T0 + 365 * DAY,
                nanos: 0,
            }),
            ..Default::default()
        }),
    )
}

fn referral(n: usize, token: String) -> EnvelopeAccepted {
    accepted(
        format!("ref-{n:06}"),
        "school-a",
        String::new(),
        T0 + n as i64,
        Body::Referral(ReferralMade {
            subject: Some(Person {
                token,
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
}

/// Match latency of `referrals` referrals, beside a raw hash-map lookup.
pub fn matching(referrals: usize) -> Vec<Row> {
    let mut index = Index::new(Settings {
        window_secs: 30 * DAY,
        review_horizon_secs: 365 * DAY,
    });
    let mut seq = 0;
    for case in 0..FORMER + PRIORITY {
        seq += 1;
        index.apply(
            seq,
            &status(case, CaseStatus::Referred, Some(token(case))),
            true,
        );
        if case < FORMER {
            seq += 1;
            index.apply(seq, &status(case, CaseStatus::Closed, None), true);
        }
    }
    let known: HashSet<String> = (0..FORMER + PRIORITY).map(token).collect();
    let tokens: Vec<String> = (0..referrals)
        .map(|n| match n % 20 {
            0 | 1 => token(n * 7 % FORMER),
            2 => token(FORMER + n % PRIORITY),
            _ => token(1_000_000 + n),
        })
        .collect();
    let events: Vec<EnvelopeAccepted> = tokens
        .iter()
        .enumerate()
        .map(|(n, t)| referral(n, t.clone()))
        .collect();
    let mut raw = Vec::with_capacity(referrals);
    let mut found = 0usize;
    for t in &tokens {
        let started = Instant::now();
        found += usize::from(known.contains(t));
        raw.push(started.elapsed());
    }
    let mut times = Vec::with_capacity(referrals);
    let mut matches = 0usize;
    for event in &events {
        seq += 1;
        let started = Instant::now();
        matches += index.apply(seq, event, true).len();
        times.push(started.elapsed());
    }
    let (r50, r99) = (percentile(&mut raw, 0.5), percentile(&mut raw, 0.99));
    let (m50, m99) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99));
    let ratio = m99.as_secs_f64() / r99.as_secs_f64().max(1e-9);
    vec![
        Row::new(
            "linkage",
            format!("raw hash-set lookup of the token ({found} known)"),
            Figure::Latency { p50: r50, p99: r99 },
            1.0,
        ),
        Row::new(
            "linkage",
            format!(
                "linkage match, {FORMER} former + {PRIORITY} priority, {referrals} referrals ({matches} matches)"
            ),
            Figure::Latency { p50: m50, p99: m99 },
            ratio,
        )
        .goal("p99 ≤ 1 ms", m99 <= Duration::from_millis(1)),
    ]
}
