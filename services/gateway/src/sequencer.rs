//! Each recipient's own sequence: every copy stored in an agency's inbox
//! (`liaison.deliver.<agency>.>` in DELIVERY) carries `Liaison-Recipient-Seq`
//! 1, 2, 3 … for that agency, with no gap and no repeat, so that the agency
//! can prove it missed nothing (docs/decisions/0019-delivery-at-national-size.md).
//!
//! The number is kept honest by JetStream, not by this process alone: the
//! first copy of each write carries `Nats-Expected-Last-Subject-Sequence`,
//! the stream sequence of the inbox's previous copy (over the whole inbox,
//! by `Nats-Expected-Last-Subject-Sequence-Subject`). A write that would fork
//! or skip the inbox — a second gateway numbered it first, or this one's
//! memory of the inbox is stale after a restart — is refused; the inbox's
//! last copy is then read again from the stream leader and the copies
//! numbered anew.
//!
//! What is written is a **pack**: the copies one commit holds for the inbox,
//! one DELIVERY message numbered from its `Liaison-Recipient-Seq`, holding
//! `Liaison-Copies` of them (ADR 0024); below, "copy" is such a message.
//!
//! **Group commit per inbox.** Copies to one agency are numbered in order, so
//! a write must wait for the one before it to be stored. Rather than one
//! round trip per copy, the copies for an agency that gather while its
//! previous write is in flight are stored together as one atomic batch
//! (nats-server 2.12+, `allow_atomic` on DELIVERY: all stored or none), the
//! guard on its first message. A lone copy goes out at once, alone; a busy
//! inbox (a force receiving its area's referrals) gets a batch per round
//! trip. Copies to different agencies go out side by side.
//!
//! A batch holding a copy stored before (an event routed again after a
//! crash: its `Nats-Msg-Id` is a duplicate) is refused whole by JetStream;
//! its copies are then stored one at a time, the duplicate keeping the
//! number it was stored with.

use crate::batch::Committed;
use crate::router::RouteError;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, stream::Stream};
use bytes::Bytes;
use liaison_core::{AgencyId, NatsContext as _, subjects};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, oneshot};

use liaison_core::subjects::RECIPIENT_SEQ_HEADER;

/// Times a write is numbered again after its inbox moved under it.
const ATTEMPTS: usize = 8;
/// Fewest copies stored as one atomic batch. Measured on nats-server 2.15.1
/// (2026-12-07, 1 KB messages): an atomic commit costs about 2.5 ms whatever
/// its size, a guarded single publish 0.15 ms (default flush) to 0.34 ms
/// (`sync_interval = always`): fewer copies than this go one at a time.
const MIN_ATOMIC: usize = 12;
/// Most copies in one atomic batch (the server's limit is 1,000).
const MAX_BATCH: usize = 256;
/// Most bytes of copies in one atomic batch.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Atomic batches in flight at once from one gateway (the server allows 50
/// per stream: room is left for a second gateway).
const BATCHES_IN_FLIGHT: usize = 20;

/// Where an inbox ends, as last seen.
#[derive(Debug, Default, Clone, Copy)]
struct End {
    /// Whether `stream_seq` and `number` were read (or written) by this
    /// process; if not, they are read from the stream before the next copy.
    known: bool,
    /// DELIVERY's sequence of the inbox's last copy (0: none yet).
    stream_seq: u64,
    /// That copy's recipient sequence number (0: none yet).
    number: u64,
}

/// A pack of copies waiting for its inbox.
struct Pending {
    ticket: u64,
    /// How many copies it holds (numbers it takes).
    count: u64,
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
    done: oneshot::Sender<Result<(), String>>,
}

/// One agency's inbox: the copies waiting, and its end (held while writing).
#[derive(Default)]
struct Lane {
    queue: Mutex<Vec<Pending>>,
    end: tokio::sync::Mutex<End>,
}

/// How a write ended.
enum Outcome {
    /// Stored: the stream sequence of its last copy.
    Stored(u64),
    /// A lone copy stored before: it keeps its number.
    Duplicate,
    /// The inbox moved: number again.
    Moved,
    /// A batch holding a copy stored before: store them one at a time.
    BatchDuplicate,
}

/// Numbers and stores the copies of every inbox.
pub struct Sequencer {
    client: async_nats::Client,
    js: jetstream::Context,
    delivery: Stream,
    lanes: Mutex<HashMap<AgencyId, Arc<Lane>>>,
    tickets: AtomicU64,
    batches: Semaphore,
    /// Unique per process: batch ids are `<this>-<ticket>`.
    instance: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Sequencer {
    /// Binds to DELIVERY.
    pub async fn open(client: &async_nats::Client) -> Result<Self, liaison_core::NatsError> {
        let js = jetstream::new(client.clone());
        let delivery = js
            .get_stream(subjects::DELIVERY_STREAM)
            .await
            .nats("stream DELIVERY")?;
        Ok(Self {
            client: client.clone(),
            js,
            delivery,
            lanes: Mutex::new(HashMap::new()),
            tickets: AtomicU64::new(0),
            batches: Semaphore::new(BATCHES_IN_FLIGHT),
            instance: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// The agencies this gateway has stored copies for since it started.
    pub fn agencies(&self) -> Vec<AgencyId> {
        lock(&self.lanes).keys().cloned().collect()
    }

    fn lane(&self, agency: &AgencyId) -> Arc<Lane> {
        lock(&self.lanes).entry(agency.clone()).or_default().clone()
    }

    /// Stores `payload`, a pack of `count` copies, at `subject` as
    /// `recipient`'s next copies, numbered; returns once it is stored (or
    /// was stored before). The caller's `headers` must carry a
    /// `Nats-Msg-Id` unique to the pack.
    pub async fn publish(
        &self,
        recipient: &AgencyId,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
        count: u64,
    ) -> Result<(), RouteError> {
        let lane = self.lane(recipient);
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let (done, mut stored) = oneshot::channel();
        lock(&lane.queue).push(Pending {
            ticket,
            count: count.max(1),
            subject,
            headers,
            payload,
            done,
        });
        let stopped = || Err("the inbox's writer stopped".to_owned());
        let mut outcome = None;
        {
            // Whoever holds the inbox's end writes what is waiting, oldest
            // first, until its own copy is stored: it may already have been
            // written, in a batch, by the one before.
            let mut end = lane.end.lock().await;
            while outcome.is_none() {
                match stored.try_recv() {
                    Ok(done) => outcome = Some(done),
                    Err(oneshot::error::TryRecvError::Closed) => outcome = Some(stopped()),
                    Err(oneshot::error::TryRecvError::Empty) => {
                        let batch = take_batch(&lane.queue);
                        if batch.is_empty() {
                            break;
                        }
                        self.write(recipient, &mut end, batch).await;
                    }
                }
            }
        }
        let outcome = match outcome {
            Some(outcome) => outcome,
            None => stored.await.unwrap_or_else(|_| stopped()),
        };
        outcome.map_err(|reason| RouteError::Inbox {
            agency: recipient.clone(),
            reason,
        })
    }

    /// Writes `batch` (in order) at the end of `recipient`'s inbox and
    /// tells each copy's sender how it went.
    async fn write(&self, recipient: &AgencyId, end: &mut End, batch: Vec<Pending>) {
        if batch.len() > 1 && batch.len() < MIN_ATOMIC {
            // Too few to pay for an atomic commit: one at a time.
            for pending in batch {
                Box::pin(self.write(recipient, end, vec![pending])).await;
            }
            return;
        }
        let mut fallback = false;
        for _ in 0..ATTEMPTS {
            if !end.known {
                match self.read_end(recipient).await {
                    Ok(read) => *end = read,
                    Err(e) => return answer(batch, Err(e)),
                }
            }
            let outcome = if batch.len() == 1 {
                self.store_one(recipient, end, &batch[0]).await
            } else {
                self.store_batch(recipient, end, &batch).await
            };
            match outcome {
                Ok(Outcome::Stored(stream_seq)) => {
                    *end = End {
                        known: true,
                        stream_seq,
                        number: end.number + batch.iter().map(|p| p.count).sum::<u64>(),
                    };
                    return answer(batch, Ok(()));
                }
                Ok(Outcome::Duplicate) => {
                    // Stored before (a retried event): it keeps its number,
                    // and the inbox may have moved on since.
                    end.known = false;
                    return answer(batch, Ok(()));
                }
                Ok(Outcome::Moved) => end.known = false,
                Ok(Outcome::BatchDuplicate) => {
                    fallback = true;
                    break;
                }
                Err(e) => {
                    end.known = false;
                    return answer(batch, Err(e));
                }
            }
        }
        if !fallback {
            return answer(
                batch,
                Err(format!("its inbox kept moving over {ATTEMPTS} attempts")),
            );
        }
        for pending in batch {
            Box::pin(self.write(recipient, end, vec![pending])).await;
        }
    }

    /// Reads where `agency`'s inbox ends from the stream leader.
    async fn read_end(&self, agency: &AgencyId) -> Result<End, String> {
        let (stream_seq, number) =
            liaison_runtime::inbox::last_copy(&self.delivery, agency).await?;
        Ok(End {
            known: true,
            stream_seq,
            number,
        })
    }

    /// One copy, guarded, through JetStream's publish.
    async fn store_one(
        &self,
        recipient: &AgencyId,
        end: &End,
        pending: &Pending,
    ) -> Result<Outcome, String> {
        let mut headers = pending.headers.clone();
        number(&mut headers, end.number + 1, pending.count);
        guard(&mut headers, recipient, end.stream_seq);
        let stored = self
            .js
            .publish_with_headers(pending.subject.clone(), headers, pending.payload.clone())
            .await
            .map_err(|e| format!("publish: {e}"))?
            .await;
        match stored {
            Ok(ack) if ack.duplicate => Ok(Outcome::Duplicate),
            Ok(ack) => Ok(Outcome::Stored(ack.sequence)),
            Err(e) if matches!(e.kind(), PublishErrorKind::WrongLastSequence) => Ok(Outcome::Moved),
            Err(e) => Err(format!("stored acknowledgement: {e}")),
        }
    }

    /// Several copies as one atomic batch, the guard on the first.
    async fn store_batch(
        &self,
        recipient: &AgencyId,
        end: &End,
        batch: &[Pending],
    ) -> Result<Outcome, String> {
        let _permit = self
            .batches
            .acquire()
            .await
            .map_err(|_| "the gateway is stopping".to_owned())?;
        let id = format!("{}-{}", self.instance, batch[0].ticket);
        let mut next = end.number + 1;
        let messages: Vec<crate::batch::Message> = batch
            .iter()
            .enumerate()
            .map(|(i, pending)| {
                let mut headers = pending.headers.clone();
                number(&mut headers, next, pending.count);
                next += pending.count;
                if i == 0 {
                    guard(&mut headers, recipient, end.stream_seq);
                }
                crate::batch::Message {
                    subject: pending.subject.clone(),
                    headers,
                    payload: pending.payload.clone(),
                }
            })
            .collect();
        Ok(
            match crate::batch::publish(&self.client, &id, &messages).await? {
                Committed::Stored(seq) => Outcome::Stored(seq),
                Committed::Moved => Outcome::Moved,
                Committed::Duplicate => Outcome::BatchDuplicate,
            },
        )
    }
}

fn number(headers: &mut HeaderMap, first: u64, count: u64) {
    headers.insert(RECIPIENT_SEQ_HEADER, first.to_string().as_str());
    headers.insert(subjects::COPIES_HEADER, count.to_string().as_str());
}

fn guard(headers: &mut HeaderMap, recipient: &AgencyId, after: u64) {
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        after.to_string().as_str(),
    );
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence-Subject",
        subjects::delivery_filter(recipient).as_str(),
    );
}

/// The copies waiting, oldest first, up to a batch's size.
fn take_batch(queue: &Mutex<Vec<Pending>>) -> Vec<Pending> {
    let mut queue = lock(queue);
    let mut bytes = 0;
    let mut n = 0;
    for pending in queue.iter() {
        if n == MAX_BATCH || (n > 0 && bytes + pending.payload.len() > MAX_BATCH_BYTES) {
            break;
        }
        bytes += pending.payload.len();
        n += 1;
    }
    queue.drain(..n).collect()
}

fn answer(batch: Vec<Pending>, outcome: Result<(), String>) {
    for pending in batch {
        let _ = pending.done.send(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_in_count_and_bytes_but_never_empty() {
        let queue = Mutex::new(Vec::new());
        let push = |size: usize, ticket: u64| {
            let (done, _) = oneshot::channel();
            lock(&queue).push(Pending {
                ticket,
                count: 1,
                subject: String::new(),
                headers: HeaderMap::new(),
                payload: Bytes::from(vec![0u8; size]),
                done,
            });
        };
        for t in 0..300 {
            push(10, t);
        }
        assert_eq!(take_batch(&queue).len(), MAX_BATCH);
        assert_eq!(take_batch(&queue).len(), 300 - MAX_BATCH);
        assert!(take_batch(&queue).is_empty());
        push(MAX_BATCH_BYTES + 1, 1);
        push(10, 2);
        let first = take_batch(&queue);
        assert_eq!(first.len(), 1, "an oversized copy goes alone");
        assert_eq!(take_batch(&queue).len(), 1);
    }
}
