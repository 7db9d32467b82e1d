//! The audit service's metrics: the ledger's height, the size and time of
//! the last signed checkpoint, records appended and the size of append
//! batches. No labels: nothing about a record's content is counted.

use liaison_runtime::metrics::{Counter, Gauge, Histogram, Registry};
use std::sync::Arc;

/// Batch size buckets, in records (the writer appends at most 1,000 at once).
const BATCH_BOUNDS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// Every audit metric, registered in one [`Registry`].
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub height: Gauge,
    pub last_checkpoint_size: Gauge,
    pub last_checkpoint_time: Gauge,
    pub batch_records: Histogram,
    pub appended: Counter,
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
            height: r.gauge(
                "liaison_ledger_height",
                "Entries in the ledger (the Merkle tree's size).",
                &[],
            ),
            last_checkpoint_size: r.gauge(
                "liaison_ledger_last_checkpoint_size",
                "Tree size covered by the latest signed checkpoint.",
                &[],
            ),
            last_checkpoint_time: r.gauge(
                "liaison_ledger_last_checkpoint_timestamp_seconds",
                "When the latest signed checkpoint was published (Unix seconds; 0: none yet).",
                &[],
            ),
            batch_records: r.histogram(
                "liaison_ledger_append_batch_records",
                "Decision records appended per batch (one LEDGER message, or more when larger than a block).",
                BATCH_BOUNDS,
            ),
            appended: r.counter(
                "liaison_ledger_appended_total",
                "Decision records appended to the ledger by this process.",
                &[],
            ),
            registry: {
                liaison_runtime::discovery::info_gauge(&r, liaison_runtime::discovery::Member::Audit);
                Arc::new(r)
            },
        }
    }
}
