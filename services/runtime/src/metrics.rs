//! A tiny metrics registry: counters, gauges and fixed-bucket histograms on
//! atomics, rendered in the Prometheus text exposition format (0.0.4).
//!
//! It owns only counting and rendering; serving `/metrics` is each service's
//! business. Label values must come from bounded sets (agency ids from the
//! registry, refusal codes, message kinds): never personal data, never an
//! envelope or case id. See docs/decisions/0008-metrics.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Label values, in the order of the family's label names.
type Key = Vec<String>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A family of counters (monotonic) or gauges, one per label set.
#[derive(Debug)]
struct Values {
    labels: &'static [&'static str],
    series: Mutex<BTreeMap<Key, Arc<AtomicU64>>>,
}

impl Values {
    fn new(labels: &'static [&'static str]) -> Self {
        Self {
            labels,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    fn get(&self, values: &[&str]) -> Arc<AtomicU64> {
        let key: Key = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, _)| values.get(i).copied().unwrap_or_default().to_owned())
            .collect();
        lock(&self.series).entry(key).or_default().clone()
    }
}

/// A monotonic counter family.
#[derive(Debug, Clone)]
pub struct Counter(Arc<Values>);

impl Counter {
    /// Adds `n` to the series with these label values (in label-name order).
    pub fn add(&self, values: &[&str], n: u64) {
        self.0.get(values).fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// The current value of one series.
    pub fn value(&self, values: &[&str]) -> u64 {
        self.0.get(values).load(Ordering::Relaxed)
    }
}

/// A gauge family (integer values: heights, sizes, pending counts).
#[derive(Debug, Clone)]
pub struct Gauge(Arc<Values>);

impl Gauge {
    /// Sets the series with these label values.
    pub fn set(&self, values: &[&str], v: u64) {
        self.0.get(values).store(v, Ordering::Relaxed);
    }

    /// The current value of one series.
    pub fn value(&self, values: &[&str]) -> u64 {
        self.0.get(values).load(Ordering::Relaxed)
    }
}

/// A histogram with fixed upper bounds, without labels. The sum is kept in
/// millionths of the unit, so `observe(0.0005)` counts as 500.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Buckets>);

#[derive(Debug)]
struct Buckets {
    bounds: &'static [f64],
    /// One per bound, then the `+Inf` bucket; not cumulative.
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let b = &self.0;
        let i = b
            .bounds
            .iter()
            .position(|bound| v <= *bound)
            .unwrap_or(b.bounds.len());
        if let Some(c) = b.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        // Saturating float-to-int cast: negative or NaN observations add 0.
        b.sum_micros
            .fetch_add((v * 1e6).round() as u64, Ordering::Relaxed);
    }

    /// How many observations were made.
    pub fn count(&self) -> u64 {
        self.0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

#[derive(Debug)]
enum Kind {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
}

/// The metrics of one service, rendered together.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<Vec<Arc<Family>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, name: &'static str, help: &'static str, kind: Kind) {
        lock(&self.families).push(Arc::new(Family { name, help, kind }));
    }

    /// Registers a counter family with these label names.
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Counter {
        let c = Counter(Arc::new(Values::new(labels)));
        self.add(name, help, Kind::Counter(c.clone()));
        c
    }

    /// Registers a gauge family with these label names.
    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Gauge {
        let g = Gauge(Arc::new(Values::new(labels)));
        self.add(name, help, Kind::Gauge(g.clone()));
        g
    }

    /// Registers a histogram with these (increasing) upper bounds.
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        bounds: &'static [f64],
    ) -> Histogram {
        let h = Histogram(Arc::new(Buckets {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }));
        self.add(name, help, Kind::Histogram(h.clone()));
        h
    }

    /// Every family in the text exposition format.
    pub fn render(&self) -> String {
        let families: Vec<Arc<Family>> = lock(&self.families).clone();
        let mut out = String::new();
        for f in families {
            let kind = match f.kind {
                Kind::Counter(_) => "counter",
                Kind::Gauge(_) => "gauge",
                Kind::Histogram(_) => "histogram",
            };
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            match &f.kind {
                Kind::Counter(Counter(v)) | Kind::Gauge(Gauge(v)) => {
                    for (key, value) in lock(&v.series).iter() {
                        let labels: Vec<(&str, &str)> = v
                            .labels
                            .iter()
                            .copied()
                            .zip(key.iter().map(String::as_str))
                            .collect();
                        let _ = writeln!(
                            out,
                            "{}{} {}",
                            f.name,
                            label_set(&labels),
                            value.load(Ordering::Relaxed)
                        );
                    }
                }
                Kind::Histogram(Histogram(b)) => {
                    let mut cumulative = 0;
                    for (i, c) in b.counts.iter().enumerate() {
                        cumulative += c.load(Ordering::Relaxed);
                        let le = b
                            .bounds
                            .get(i)
                            .map_or_else(|| "+Inf".to_owned(), |x| x.to_string());
                        let _ = writeln!(
                            out,
                            "{}_bucket{} {cumulative}",
                            f.name,
                            label_set(&[("le", &le)])
                        );
                    }
                    let sum = b.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                    let _ = writeln!(out, "{}_sum {sum}", f.name);
                    let _ = writeln!(out, "{}_count {cumulative}", f.name);
                }
            }
        }
        out
    }
}

fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// HELP text escapes backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

/// Content type of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_render_with_help_type_and_sorted_series() {
        let r = Registry::new();
        let c = r.counter("x_total", "Things\\done\nhere.", &["agency", "kind"]);
        c.inc(&["police", "referral"]);
        c.add(&["council", "referral"], 3);
        let g = r.gauge("y", "A level.", &[]);
        g.set(&[], 7);
        assert_eq!(
            r.render(),
            "# HELP x_total Things\\\\done\\nhere.\n# TYPE x_total counter\n\
             x_total{agency=\"council\",kind=\"referral\"} 3\n\
             x_total{agency=\"police\",kind=\"referral\"} 1\n\
             # HELP y A level.\n# TYPE y gauge\ny 7\n"
        );
        assert_eq!(c.value(&["council", "referral"]), 3);
    }

    #[test]
    fn label_values_are_escaped() {
        let r = Registry::new();
        r.counter("z_total", "Z.", &["code"]).inc(&["a\"b\\c\nd"]);
        assert!(
            r.render().contains(r#"z_total{code="a\"b\\c\nd"} 1"#),
            "{}",
            r.render()
        );
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let r = Registry::new();
        let h = r.histogram("h_seconds", "H.", &[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(2.0);
        h.observe(0.1);
        assert_eq!(
            r.render(),
            "# HELP h_seconds H.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{le=\"0.1\"} 2\nh_seconds_bucket{le=\"1\"} 3\n\
             h_seconds_bucket{le=\"+Inf\"} 4\nh_seconds_sum 2.65\nh_seconds_count 4\n"
        );
        assert_eq!(h.count(), 4);
    }
}
