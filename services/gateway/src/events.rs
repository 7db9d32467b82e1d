//! Storing accepted envelopes in EVENTS, each with its fact (ADR 0021), by
//! group commit.
//!
//! An envelope and its fact must be stored together (one atomic batch), but
//! nats-server commits one atomic batch of a stream at a time (about 2 ms
//! each with `sync_interval = always`, measured in docs/performance.md): a
//! batch per envelope would hold the gateway to a few hundred a second. So
//! one writer gathers every envelope waiting into one batch — the event,
//! then its fact, for each, in the order they came — and commits it; while
//! it commits, the next envelopes wait and go together in the next. A lone
//! envelope is not held back: it goes as soon as the writer is free.
//!
//! A batch holding an envelope stored before (its `Nats-Msg-Id`) is refused
//! whole; its envelopes are then stored one batch each, so that only the
//! re-sent one is answered duplicate.

use crate::batch::{self, Committed};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

/// Most envelopes in one batch (two messages each; the server takes 1,000).
const MAX_ENVELOPES: usize = 250;
/// Most bytes in one batch.
const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Envelopes waiting for the writer at most; beyond, senders wait.
const QUEUE: usize = 4_096;

/// One envelope to store: its event and its fact.
pub struct Entry {
    pub event: batch::Message,
    pub fact: batch::Message,
}

struct Waiting {
    entry: Entry,
    done: oneshot::Sender<Result<bool, String>>,
}

/// The writer's door.
#[derive(Clone)]
pub struct Events {
    queue: mpsc::Sender<Waiting>,
}

impl Events {
    /// Starts the writer on `client`; it stops when every [`Events`] is dropped.
    pub fn start(client: async_nats::Client) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(write(client, waiting));
        Self { queue }
    }

    /// Stores `entry`; `Ok(true)` when its envelope was stored before.
    pub async fn store(&self, entry: Entry) -> Result<bool, String> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Waiting { entry, done })
            .await
            .map_err(|_| "the EVENTS writer has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the EVENTS writer stopped before answering".to_owned())?
    }
}

async fn write(client: async_nats::Client, mut waiting: mpsc::Receiver<Waiting>) {
    let mut serial: u64 = 0;
    let instance = uuid::Uuid::new_v4().simple().to_string();
    while let Some(first) = waiting.recv().await {
        let mut bytes = size(&first.entry);
        let mut group = vec![first];
        while group.len() < MAX_ENVELOPES {
            match waiting.try_recv() {
                Ok(next) => {
                    bytes += size(&next.entry);
                    group.push(next);
                    if bytes >= MAX_BYTES {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        serial += 1;
        let id = format!("events-{instance}-{serial}");
        // Each envelope's event then its fact, in the order they came.
        let (done, messages): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|w| (w.done, [w.entry.event, w.entry.fact]))
            .unzip();
        let messages: Vec<batch::Message> = messages.into_iter().flatten().collect();
        match batch::publish(&client, &id, &messages).await {
            Ok(Committed::Stored(_)) => answer(done, || Ok(false)),
            Ok(Committed::Duplicate) if done.len() == 1 => answer(done, || Ok(true)),
            Ok(Committed::Duplicate) => {
                // One of them was stored before: each on its own.
                for (i, (done, alone)) in done.into_iter().zip(messages.chunks(2)).enumerate() {
                    let outcome = match batch::publish(&client, &format!("{id}-{i}"), alone).await {
                        Ok(Committed::Stored(_)) => Ok(false),
                        Ok(Committed::Duplicate) => Ok(true),
                        Ok(Committed::Moved) => Err(unexpected()),
                        Err(e) => Err(e),
                    };
                    let _ = done.send(outcome);
                }
            }
            Ok(Committed::Moved) => answer(done, || Err(unexpected())),
            Err(e) => {
                warn!(error = %e, "EVENTS batch not stored");
                answer(done, || Err(e.clone()));
            }
        }
    }
}

fn unexpected() -> String {
    "EVENTS refused the batch on a guard it does not carry".to_owned()
}

fn size(entry: &Entry) -> usize {
    entry.event.payload.len() + entry.fact.payload.len()
}

fn answer(
    done: Vec<oneshot::Sender<Result<bool, String>>>,
    outcome: impl Fn() -> Result<bool, String>,
) {
    for done in done {
        let _ = done.send(outcome());
    }
}
