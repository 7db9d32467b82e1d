//! The consume loop shared by every durable pull consumer: wait for the next
//! message or for shutdown, whichever comes first. Consumer errors that the
//! client recovers from (a missed heartbeat, a reconnect) are logged and
//! waited out; the end of the stream is an error for the caller.

use async_nats::jetstream::{Message, consumer::pull};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The next message of `messages`, or `Ok(None)` once `shutdown` is cancelled.
/// A consumer's message stream ended (its connection closed for good).
#[derive(Debug, thiserror::Error)]
#[error("consumer {0} ended")]
pub struct ConsumerEnded(pub String);

pub async fn next(
    messages: &mut pull::Stream,
    shutdown: &CancellationToken,
    name: &str,
) -> Result<Option<Message>, ConsumerEnded> {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            message = messages.next() => message,
        };
        match message {
            Some(Ok(m)) => return Ok(Some(m)),
            Some(Err(e)) => warn!(consumer = name, error = %e, "Consumer error"),
            None => return Err(ConsumerEnded(name.to_owned())),
        }
    }
}

/// Reads a KV bucket whole, then follows it until `shutdown`, handing `each`
/// every entry (puts, deletes and purges) in order. `what` names it in the
/// error if it cannot be watched.
pub async fn follow_bucket(
    kv: &async_nats::jetstream::kv::Store,
    what: &str,
    shutdown: &CancellationToken,
    mut each: impl FnMut(async_nats::jetstream::kv::Entry),
) -> Result<(), liaison_core::NatsError> {
    use liaison_core::NatsContext as _;
    let mut entries = kv
        .watch_all_from_revision(1)
        .await
        .nats(format!("watch the {what} bucket"))?;
    loop {
        let entry = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            entry = entries.next() => entry,
        };
        match entry {
            None => return Ok(()),
            Some(Ok(entry)) => each(entry),
            Some(Err(_)) => {}
        }
    }
}
