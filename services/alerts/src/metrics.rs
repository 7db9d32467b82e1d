//! The alerts service's metrics. No labels: nothing about an alert's content
//! (not even its id) becomes a series.

use liaison_runtime::metrics::{Counter, Gauge, Registry};
use std::sync::Arc;

/// Every alerts metric, registered in one [`Registry`].
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub outstanding: Gauge,
    pub acknowledgements: Counter,
    pub escalations: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        Self {
            outstanding: r.gauge(
                "liaison_alerts_outstanding",
                "Alerts some business partner has not acknowledged.",
                &[],
            ),
            acknowledgements: r.counter(
                "liaison_alerts_acknowledgements_total",
                "Alert acknowledgements counted by this process.",
                &[],
            ),
            escalations: r.counter(
                "liaison_alerts_escalations_total",
                "Alert escalations raised and seen back in EVENTS by this process.",
                &[],
            ),
            registry: {
                liaison_runtime::discovery::info_gauge(
                    &r,
                    liaison_runtime::discovery::Member::Alerts,
                );
                Arc::new(r)
            },
        }
    }
}
