//! Finding one envelope's trace among the spans the test receiver got
//! ([`crate::otlp`]): every span of the trace(s) its spans belong to, once
//! a condition holds (polled with a deadline), and lookups by span name.

use crate::eventually;
use crate::otlp::{Exporting, ReceivedSpan};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::time::Duration;

/// The spans of the trace(s) envelope `id`'s spans belong to, once `done`
/// says they are all there (by how many of each name).
pub async fn trace_of(
    exporting: &'static Exporting,
    id: &str,
    done: impl Fn(&BTreeMap<String, usize>) -> bool,
) -> Result<Vec<ReceivedSpan>> {
    trace_until(exporting, id, |spans| done(&counts(spans))).await
}

/// The spans of the trace(s) envelope `id`'s spans belong to, once `done`
/// holds of them.
pub async fn trace_until(
    exporting: &'static Exporting,
    id: &str,
    done: impl Fn(&[ReceivedSpan]) -> bool,
) -> Result<Vec<ReceivedSpan>> {
    eventually("the envelope's spans", Duration::from_secs(30), || async {
        exporting.flush().await?;
        let all = exporting.receiver.spans()?;
        let traces: Vec<String> = all
            .iter()
            .filter(|s| s.attribute("envelope_id") == Some(id))
            .map(|s| s.trace_id.clone())
            .collect();
        let spans: Vec<ReceivedSpan> = all
            .into_iter()
            .filter(|s| traces.contains(&s.trace_id))
            .collect();
        Ok(done(&spans).then_some(spans))
    })
    .await
}

/// How many spans of each name.
pub fn counts(spans: &[ReceivedSpan]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for span in spans {
        *counts.entry(span.name.clone()).or_default() += 1;
    }
    counts
}

pub fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

pub fn one<'a>(spans: &'a [ReceivedSpan], name: &str) -> Result<&'a ReceivedSpan> {
    match named(spans, name).as_slice() {
        [span] => Ok(span),
        other => bail!("{} {name} spans: {spans:#?}", other.len()),
    }
}
