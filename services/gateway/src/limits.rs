//! Per-agency limits, enforced before a request is decoded or its token
//! verified: the largest envelope the agency may send and a token bucket of
//! envelopes per second (`rate_per_sec`, bursts of `burst`), both from the
//! agency registry. A refused request costs one lock and a few arithmetic
//! operations, so a flooding agency cannot take the gateway's CPU from others.
//!
//! The rate is the agency's, not each replica's: every gateway counts the
//! replicas answering the NATS service API (`$SRV.PING.liaison-gateway`,
//! [`watch_replicas`]) and enforces its share (rate and burst divided by
//! that count). Requests reach replicas at random through the queue group,
//! so an agency at its limit is refused about as often as with one gateway.

use crate::refusal::Refusal;
use liaison_core::AgencyId;
use liaison_runtime::registry::{Agency, Registry};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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
    /// Replaced when the live registry changes; an agency whose limits did
    /// not change keeps its bucket (and what it has used of it).
    agencies: RwLock<HashMap<AgencyId, Arc<Limit>>>,
    max_bytes: usize,
    /// Gateway replicas sharing every agency's rate (at least 1).
    replicas: AtomicU32,
}

impl Limits {
    /// `max_bytes`: the gateway's own limit, which an agency's can only lower.
    pub fn new(registry: &Registry, max_bytes: usize) -> Self {
        let limits = Self {
            agencies: RwLock::new(HashMap::new()),
            max_bytes,
            replicas: AtomicU32::new(1),
        };
        limits.follow(registry);
        limits
    }

    /// Takes the limits of `registry` (the live registry changed): added
    /// agencies get a full bucket, removed ones lose theirs, changed ones a
    /// new one; the others keep theirs.
    pub fn follow(&self, registry: &Registry) {
        let now = Instant::now();
        let max_bytes = self.max_bytes;
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
        let old = self.agencies_now();
        let next: HashMap<AgencyId, Arc<Limit>> = registry
            .agencies()
            .map(|a| {
                let fresh = limit(a);
                let kept = old.get(&a.id).filter(|l| {
                    l.per_sec == fresh.per_sec
                        && l.burst == fresh.burst
                        && l.max_bytes == fresh.max_bytes
                });
                (
                    a.id.clone(),
                    kept.cloned().unwrap_or_else(|| Arc::new(fresh)),
                )
            })
            .collect();
        match self.agencies.write() {
            Ok(mut slot) => *slot = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    fn agencies_now(&self) -> HashMap<AgencyId, Arc<Limit>> {
        match self.agencies.read() {
            Ok(map) => map.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn limit_of(&self, agency: &AgencyId) -> Option<Arc<Limit>> {
        match self.agencies.read() {
            Ok(map) => map.get(agency).cloned(),
            Err(poisoned) => poisoned.into_inner().get(agency).cloned(),
        }
    }

    /// Enforces `1/replicas` of each agency's rate and burst from now on.
    pub fn share_among(&self, replicas: u32) {
        self.replicas.store(replicas.max(1), Ordering::Relaxed);
    }

    /// The replicas the rates are shared among.
    pub fn replicas(&self) -> u32 {
        self.replicas.load(Ordering::Relaxed).max(1)
    }

    /// Admits one request of `size` bytes from `agency` at `now`, or says why not.
    pub fn admit(&self, agency: &AgencyId, size: usize, now: Instant) -> Result<(), Refusal> {
        let Some(limit) = self.limit_of(agency) else {
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
        let share = f64::from(self.replicas());
        let per_sec = f64::from(limit.per_sec) / share;
        let burst = (f64::from(limit.burst) / share).max(1.0);
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(burst);
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

/// How long a count of the replicas waits for their answers.
const PING_WAIT: Duration = Duration::from_millis(250);

/// The gateway replicas answering the NATS service API now (this one
/// included), if the question could be asked.
pub async fn count_replicas(client: &async_nats::Client) -> Option<u32> {
    use futures_util::StreamExt as _;
    let reply = client.new_inbox();
    let mut answers = client.subscribe(reply.clone()).await.ok()?;
    let ping = format!(
        "{}.PING.{}",
        liaison_core::subjects::SERVICE_API,
        liaison_runtime::discovery::Member::Gateway.service_name()
    );
    client
        .publish_with_reply(ping, reply, bytes::Bytes::new())
        .await
        .ok()?;
    let mut count = 0u32;
    let deadline = tokio::time::sleep(PING_WAIT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            answer = answers.next() => match answer {
                Some(_) => count += 1,
                None => break,
            },
            () = &mut deadline => break,
        }
    }
    Some(count.max(1))
}

/// Counts the replicas every `interval` (at once first) and shares the
/// agencies' rates among them, until `shutdown`.
pub async fn watch_replicas(
    shared: std::sync::Arc<crate::Shared>,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        if let Some(n) = count_replicas(&shared.client).await {
            if n != shared.limits.replicas() {
                tracing::info!(
                    replicas = n,
                    "Agencies' rates shared among the gateway replicas"
                );
            }
            shared.limits.share_among(n);
            shared.metrics.replicas.set(&[], u64::from(n));
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
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
    fn two_replicas_each_enforce_half_of_the_agencys_rate() {
        let (limits, school) = limits();
        limits.share_among(2);
        assert_eq!(limits.replicas(), 2);
        let t0 = Instant::now();
        // Burst 5 of 10/s, shared by 2: this replica takes 2.5 at once ...
        let admitted = (0..5)
            .filter(|_| limits.admit(&school, 10, t0).is_ok())
            .count();
        assert_eq!(admitted, 2);
        // ... and refills at 5/s: the half token left is whole after 100
        // ms, not 50 ms (as at 10/s).
        assert!(
            limits
                .admit(&school, 10, t0 + Duration::from_millis(50))
                .is_err()
        );
        assert_eq!(
            limits.admit(&school, 10, t0 + Duration::from_millis(100)),
            Ok(())
        );
        assert!(
            limits
                .admit(&school, 10, t0 + Duration::from_millis(100))
                .is_err()
        );
        limits.share_among(0);
        assert_eq!(limits.replicas(), 1, "never fewer than one");
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
