//! Per-agency limits, enforced before a request is decoded or its token
//! verified: the largest envelope the agency may send and a token bucket of
//! envelopes per second (`rate_per_sec`, bursts of `burst`), both from the
//! agency registry. A refused request costs one lock and a few arithmetic
//! operations, so a flooding agency cannot take the gateway's CPU from others.

use crate::refusal::Refusal;
use liaison_core::AgencyId;
use liaison_runtime::registry::{Agency, Registry};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Limit {
    per_sec: u32,
    burst: u32,
    max_bytes: usize,
    bucket: Mutex<Bucket>,
}

/// Every registered agency's limits.
pub struct Limits {
    agencies: HashMap<AgencyId, Limit>,
}

impl Limits {
    /// `max_bytes`: the gateway's own limit, which an agency's can only lower.
    pub fn new(registry: &Registry, max_bytes: usize) -> Self {
        let now = Instant::now();
        let limit = |agency: &Agency| Limit {
            per_sec: agency.rate_per_sec,
            burst: agency.burst,
            max_bytes: agency
                .max_envelope_bytes
                .map_or(max_bytes, |m| m.min(max_bytes)),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(agency.burst),
                last: now,
            }),
        };
        Self {
            agencies: registry
                .agencies()
                .map(|a| (a.id.clone(), limit(a)))
                .collect(),
        }
    }

    /// Admits one request of `size` bytes from `agency` at `now`, or says why not.
    pub fn admit(&self, agency: &AgencyId, size: usize, now: Instant) -> Result<(), Refusal> {
        let Some(limit) = self.agencies.get(agency) else {
            return Err(Refusal::UnknownAgency(agency.to_string()));
        };
        if size > limit.max_bytes {
            return Err(Refusal::TooLarge {
                size,
                limit: limit.max_bytes,
            });
        }
        let mut bucket = limit
            .bucket
            .lock()
            .map_err(|_| Refusal::Unavailable("rate limiter poisoned".into()))?;
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed * f64::from(limit.per_sec)).min(f64::from(limit.burst));
        bucket.last = now.max(bucket.last);
        if bucket.tokens < 1.0 {
            return Err(Refusal::RateLimited {
                agency: agency.to_string(),
                per_sec: limit.per_sec,
                burst: limit.burst,
            });
        }
        bucket.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> (Limits, AgencyId) {
        let text = r#"
[[agency]]
id = "school-a"
name = "S"
kind = "education"
areas = ["exampleshire"]
clearance = "OFFICIAL"
rate_per_sec = 10
burst = 5
max_envelope_bytes = 1000
[[agency.keys]]
public_key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
"#;
        let registry = Registry::parse(text).unwrap_or_else(|e| panic!("{e}"));
        let id = AgencyId::parse("school-a").unwrap_or_else(|e| panic!("{e}"));
        (Limits::new(&registry, 64 * 1024), id)
    }

    #[test]
    fn a_burst_then_the_rate() {
        let (limits, school) = limits();
        let t0 = Instant::now();
        for n in 0..5 {
            assert_eq!(limits.admit(&school, 10, t0), Ok(()), "request {n}");
        }
        assert!(matches!(
            limits.admit(&school, 10, t0),
            Err(Refusal::RateLimited { per_sec: 10, .. })
        ));
        // 10/s: one more token every 100 ms, never more than the burst.
        assert_eq!(
            limits.admit(&school, 10, t0 + Duration::from_millis(100)),
            Ok(())
        );
        assert!(
            limits
                .admit(&school, 10, t0 + Duration::from_millis(150))
                .is_err()
        );
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(limits.admit(&school, 10, later), Ok(()));
        }
        assert!(limits.admit(&school, 10, later).is_err());
    }

    #[test]
    fn an_agency_limit_lowers_the_size_limit_and_unknown_agencies_are_refused() {
        let (limits, school) = limits();
        assert_eq!(
            limits.admit(&school, 1001, Instant::now()),
            Err(Refusal::TooLarge {
                size: 1001,
                limit: 1000
            })
        );
        let ghost = AgencyId::parse("ghost").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            limits.admit(&ghost, 1, Instant::now()),
            Err(Refusal::UnknownAgency(_))
        ));
    }
}
