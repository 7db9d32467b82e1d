//! The console's recent window: the gateway's counters, sampled every few
//! seconds, and how much each grew over the last few minutes (as
//! Prometheus's `increase` would: a counter that went down was reset, so
//! its whole value counts). Keys are agency ids, refusal codes and kinds:
//! bounded, never personal.

use super::scrape::Sample;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Counts by key, from one scrape (or the growth between two).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Copies delivered, by (sender, recipient).
    pub flows: BTreeMap<(String, String), u64>,
    /// Envelopes refused, by (agency, code).
    pub refusals: BTreeMap<(String, String), u64>,
    /// Envelopes accepted, by sending agency.
    pub accepted: BTreeMap<String, u64>,
}

fn add<K: Ord>(map: &mut BTreeMap<K, u64>, key: K, value: f64) {
    // Counters are whole numbers; a saturating cast drops anything else.
    *map.entry(key).or_default() += value.max(0.0) as u64;
}

impl Counts {
    /// The gateway's counters among `samples`.
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut counts = Self::default();
        for s in samples {
            match s.name.as_str() {
                "liaison_gateway_flows_total" => add(
                    &mut counts.flows,
                    (
                        s.label("sender").to_owned(),
                        s.label("recipient").to_owned(),
                    ),
                    s.value,
                ),
                "liaison_gateway_envelopes_refused_total" => add(
                    &mut counts.refusals,
                    (s.label("agency").to_owned(), s.label("code").to_owned()),
                    s.value,
                ),
                "liaison_gateway_envelopes_accepted_total" => {
                    add(&mut counts.accepted, s.label("agency").to_owned(), s.value);
                }
                _ => {}
            }
        }
        counts
    }

    /// How much each count grew since `before`.
    fn since(&self, before: &Counts) -> Counts {
        fn grew<K: Ord + Clone>(
            now: &BTreeMap<K, u64>,
            then: &BTreeMap<K, u64>,
        ) -> BTreeMap<K, u64> {
            now.iter()
                .map(|(k, &v)| {
                    let old = then.get(k).copied().unwrap_or(0);
                    (k.clone(), if v >= old { v - old } else { v })
                })
                .filter(|(_, v)| *v > 0)
                .collect()
        }
        Counts {
            flows: grew(&self.flows, &before.flows),
            refusals: grew(&self.refusals, &before.refusals),
            accepted: grew(&self.accepted, &before.accepted),
        }
    }
}

/// Samples over the last `span`, and one just before it as the baseline.
#[derive(Debug)]
pub struct Window {
    span: Duration,
    samples: VecDeque<(Instant, Counts)>,
}

impl Window {
    pub fn new(span: Duration) -> Self {
        Self {
            span,
            samples: VecDeque::new(),
        }
    }

    pub fn span(&self) -> Duration {
        self.span
    }

    /// Adds the sample taken at `at`, forgetting those no longer needed.
    pub fn push(&mut self, at: Instant, counts: Counts) {
        self.samples.push_back((at, counts));
        let start = at.checked_sub(self.span);
        // Keep the newest sample at or before the window's start as baseline.
        while let (Some(start), Some((second, _))) = (start, self.samples.get(1))
            && *second <= start
        {
            self.samples.pop_front();
        }
    }

    /// The counters as last sampled (since the gateway started).
    pub fn total(&self) -> Counts {
        self.samples
            .back()
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    /// How much the counters grew within the window.
    pub fn recent(&self) -> Counts {
        match (self.samples.front(), self.samples.back()) {
            (Some((_, first)), Some((_, last))) => last.since(first),
            _ => Counts::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flows(n: u64) -> Counts {
        let mut c = Counts::default();
        c.flows.insert(("school-a".into(), "police".into()), n);
        c
    }

    #[test]
    fn growth_is_over_the_window_and_a_reset_counts_whole() {
        let t0 = Instant::now();
        let mut w = Window::new(Duration::from_secs(10));
        w.push(t0, flows(0));
        w.push(t0 + Duration::from_secs(4), flows(3));
        assert_eq!(w.recent(), flows(3));
        w.push(t0 + Duration::from_secs(15), flows(5));
        // The sample at 4 s is the baseline now (the one at 0 s is gone).
        assert_eq!(w.recent(), flows(2));
        assert_eq!(w.total(), flows(5));
        // The gateway restarted: its counter began again.
        w.push(t0 + Duration::from_secs(16), flows(1));
        assert_eq!(w.recent(), flows(1));
    }

    #[test]
    fn the_gateway_counters_are_read_from_samples() {
        let page = "liaison_gateway_flows_total{sender=\"school-a\",recipient=\"police\"} 2\n\
            liaison_gateway_envelopes_refused_total{agency=\"school-a\",code=\"policy_denied\"} 1\n\
            liaison_gateway_envelopes_accepted_total{agency=\"school-a\",kind=\"referral\"} 2\n\
            liaison_gateway_envelopes_accepted_total{agency=\"school-a\",kind=\"alert_ack\"} 1\n";
        let counts = Counts::from_samples(&super::super::scrape::parse(page));
        assert_eq!(counts.flows, flows(2).flows);
        assert_eq!(
            counts
                .refusals
                .get(&("school-a".into(), "policy_denied".into())),
            Some(&1)
        );
        assert_eq!(counts.accepted.get("school-a"), Some(&3));
    }
}
