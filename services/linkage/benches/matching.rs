//! Matching referrals against the subject index: 20,000 former subjects
//! (closed cases under review) and 3,000 priority individuals (live cases),
//! then 100,000 referrals — 10% of former subjects, 5% of priority
//! individuals, 5% of people another agency referred a little earlier, the
//! rest nobody known — each timed through `Index::apply` as the service
//! calls it (match, then remember the referral).
//!
//! `cargo bench -p liaison-linkage` (figures in docs/performance.md).
#![allow(clippy::print_stdout)]

use liaison_linkage::index::{Index, Match, Settings};
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{
    CaseStatus, CaseStatusChanged, Envelope, EnvelopeAccepted, Person, ReferralMade, Route,
};
use prost_types::Timestamp;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const FORMER: usize = 20_000;
const PRIORITY: usize = 3_000;
const REFERRALS: usize = 100_000;
const DAY: i64 = 24 * 3600;
const T0: i64 = 1_790_000_000;

fn token(n: usize) -> String {
    let mac = Sha256::digest(n.to_be_bytes());
    // The shape of a real token: st1: and 43 characters.
    format!("st1:{}", &hex_of(&mac)[..43])
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        routes: vec![
            Route {
                recipient: "police".into(),
                ..Default::default()
            },
            Route {
                recipient: "council".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

fn status(case: usize, status: CaseStatus, token: Option<String>) -> EnvelopeAccepted {
    accepted(
        format!("status-{case}-{}", status as i32),
        if case.is_multiple_of(2) {
            "police"
        } else {
            "council"
        },
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

fn referral(n: usize, agency: &str, token: String) -> EnvelopeAccepted {
    accepted(
        format!("ref-{n:06}-{agency}"),
        agency,
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

fn main() {
    let mut index = Index::new(Settings {
        window_secs: 30 * DAY,
        review_horizon_secs: 365 * DAY,
    });
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        seq
    };
    let started = Instant::now();
    for case in 0..FORMER + PRIORITY {
        index.apply(
            next(),
            &status(case, CaseStatus::Referred, Some(token(case))),
            true,
        );
        if case < FORMER {
            index.apply(next(), &status(case, CaseStatus::Closed, None), true);
        }
    }
    let built = started.elapsed();

    // The referrals, made before timing starts: a fixed mix (xorshift).
    let mut dice = 0x2545_f491_4f6c_dd1d_u64;
    let mut roll = move || {
        dice ^= dice << 13;
        dice ^= dice >> 7;
        dice ^= dice << 17;
        dice
    };
    let agencies = ["school-a", "school-b", "nhs-trust"];
    let mut recent: Vec<String> = vec![];
    let referrals: Vec<EnvelopeAccepted> = (0..REFERRALS)
        .map(|n| {
            let r = roll();
            let agency = agencies[(r % 3) as usize];
            let t = match (r >> 8) % 100 {
                0..10 => token((r >> 16) as usize % FORMER),
                10..15 => token(FORMER + (r >> 16) as usize % PRIORITY),
                15..20 if !recent.is_empty() => recent[(r >> 16) as usize % recent.len()].clone(),
                _ => {
                    let t = token(1_000_000 + n);
                    recent.push(t.clone());
                    t
                }
            };
            referral(n, agency, t)
        })
        .collect();

    let mut times = Vec::with_capacity(REFERRALS);
    let (mut reengagements, mut duplicates) = (0, 0);
    for event in &referrals {
        let seq = next();
        let started = Instant::now();
        let found = index.apply(seq, event, true);
        times.push(started.elapsed());
        for m in found {
            match m {
                Match::Reengagement { .. } => reengagements += 1,
                Match::Duplicate { .. } => duplicates += 1,
            }
        }
    }
    times.sort();
    let total: Duration = times.iter().sum();
    let (tokens, cases) = index.len();
    println!(
        "index: {FORMER} former + {PRIORITY} priority subjects ({cases} cases) built in {built:.2?}"
    );
    println!(
        "matched {REFERRALS} referrals: {reengagements} re-engagements, {duplicates} duplicates; {tokens} tokens known after"
    );
    println!(
        "per referral: p50 {:.2?}, p99 {:.2?}, p99.9 {:.2?}, max {:.2?}, mean {:.2?}",
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        percentile(&times, 0.999),
        times.last().copied().unwrap_or_default(),
        total / REFERRALS as u32,
    );
    let p99 = percentile(&times, 0.99);
    println!(
        "goal p99 <= 1 ms: {}",
        if p99 <= Duration::from_millis(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}
