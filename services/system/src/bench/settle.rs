//! Waiting, by polling consumer state with a deadline, until every accepted
//! envelope is routed (every copy in DELIVERY) and every decision record is
//! chained into the ledger: the same condition as
//! `System::wait_until_settled`, for services run in this process or as
//! separate ones.

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::{self, consumer::PullConsumer};
use liaison_core::subjects;
use std::time::{Duration, Instant};

/// Messages the router and the ledger writer have not yet acknowledged.
pub async fn pending(js: &jetstream::Context) -> Result<u64> {
    let mut pending = 0;
    for (stream, consumer) in [
        (subjects::EVENTS_STREAM, subjects::ROUTER_CONSUMER),
        (subjects::DECISIONS_STREAM, subjects::LEDGER_WRITER_CONSUMER),
    ] {
        let mut c: PullConsumer = js
            .get_consumer_from_stream(consumer, stream)
            .await
            .with_context(|| format!("consumer {consumer} of {stream}"))?;
        let info = c
            .info()
            .await
            .with_context(|| format!("state of consumer {consumer}"))?;
        pending += info.num_pending + info.num_ack_pending as u64;
    }
    Ok(pending)
}

/// Returns once nothing is pending, or fails after `timeout`.
pub async fn settled(js: &jetstream::Context, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut ticks = tokio::time::interval(Duration::from_millis(5));
    loop {
        ticks.tick().await;
        let left = pending(js).await?;
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{left} events or decisions still waiting after {timeout:?}");
        }
    }
}
