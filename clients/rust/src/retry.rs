//! When to send an envelope again: exponential backoff with jitter, a cap on
//! each pause and an overall deadline. Re-sending is safe because the
//! envelope keeps its id, the gateway's idempotency key: a copy the gateway
//! already accepted is answered `DUPLICATE` and never delivered twice.
//!
//! Which failures are retried is decided by the errors themselves
//! ([`SendError::is_retryable`](crate::SendError::is_retryable)): the
//! refusals `unavailable` and `rate_limited`, and transport failures
//! (timeouts, no gateway listening, a request that could not be made).

use rand_core::RngCore as _;
use std::time::Duration;

/// How long and how often to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first pause.
    pub first_backoff: Duration,
    /// No pause is longer than this.
    pub max_backoff: Duration,
    /// Give up once this much time has passed since the first attempt.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            deadline: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// One attempt only.
    pub fn never() -> Self {
        Self {
            deadline: Duration::ZERO,
            ..Self::default()
        }
    }

    /// The default backoff, giving up after `deadline`.
    pub fn for_up_to(deadline: Duration) -> Self {
        Self {
            deadline,
            ..Self::default()
        }
    }

    /// The pauses between attempts, without jitter: `first_backoff`,
    /// doubling, capped at `max_backoff`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(30));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The pause before retry number `retry` (0 for the first retry): half
    /// the backoff plus a random part of the other half, so that many
    /// senders refused at once do not come back at once.
    pub fn pause(&self, retry: u32) -> Duration {
        let backoff = self.backoff(retry);
        let half = backoff / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        let jitter = match spread {
            0 => 0,
            n => rand_core::OsRng.next_u64() % n,
        };
        half + Duration::from_micros(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_pauses_stay_within_it() {
        let policy = RetryPolicy {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
            deadline: Duration::from_secs(5),
        };
        let backoffs: Vec<u128> = (0..6).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(backoffs, [100, 200, 400, 700, 700, 700]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(700));
        for retry in 0..6 {
            let pause = policy.pause(retry);
            let backoff = policy.backoff(retry);
            assert!(
                pause >= backoff / 2 && pause <= backoff,
                "{pause:?} for {backoff:?}"
            );
        }
        assert_eq!(RetryPolicy::never().deadline, Duration::ZERO);
    }
}
