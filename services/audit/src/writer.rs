//! The ledger writer: consumes decision records from DECISIONS one at a time,
//! in order, appends each to LEDGER as the next link of the hash chain and the
//! next leaf of the Merkle tree, and signs checkpoints of the tree.
//!
//! Single writer: every append states the sequence it expects LEDGER to end
//! at (`Nats-Expected-Last-Sequence`), so a second writer cannot fork the
//! chain; on a conflict the writer re-reads the ledger. Records waiting in
//! DECISIONS are appended in order, up to 1,000 at a time, each batch as one
//! atomic batch publish: stored whole or not at all, acknowledged once.
//! Exactly once: each entry records the DECISIONS sequence it came from, and a
//! record redelivered after a crash (appended, not yet acknowledged) is
//! recognised by that sequence and skipped, whatever order it comes back in.
//! At start the writer reads and verifies the whole ledger, and refuses to
//! extend one that is broken.
//!
//! A record that came with a W3C trace context (the span it was decided in)
//! is appended in an `audit.append` span, that span's child: the envelope's
//! trace ends in the ledger.

use crate::chain::Tail;
use crate::checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
use crate::merkle::{CompactRange, leaf_hash};
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, AckKind};
use futures_util::{FutureExt as _, StreamExt as _};
use liaison_kit::hop::Hop;
use liaison_kit::{AgencyId, consume, subjects, trace};
use liaison_proto::v1::{AuditRecord, Decision, Operation};
use prost::Message as _;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn};

/// Most decision records appended in one atomic batch (the server's limit is 1,000).
pub const BATCH: usize = 1000;
/// How long the writer waits for one more decision before committing a batch.
const LINGER: Duration = Duration::from_millis(2);
/// Remembered DECISIONS sequences before the acknowledged ones are dropped.
const PRUNE_ABOVE: usize = 100_000;

/// Record ids remembered to refuse a second copy of a record.
const RECENT_IDS: usize = 100_000;

/// The ids of the last [`RECENT_IDS`] records appended.
#[derive(Default)]
struct RecentIds {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    fn contains(&self, id: &str) -> bool {
        !id.is_empty() && self.ids.contains(id)
    }

    fn insert(&mut self, id: String) {
        if !id.is_empty() && self.ids.insert(id.clone()) {
            self.order.push_back(id);
        }
        while self.order.len() > RECENT_IDS {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }
}

/// The record id of an encoded `AuditRecord` (empty if it does not decode).
fn record_id(record: &[u8]) -> String {
    AuditRecord::decode(record)
        .map(|r| r.record_id)
        .unwrap_or_default()
}

/// The `audit.append` span of a record that carries a trace context: the
/// record's ids, kind, operation, decision and code, nothing of its content.
fn append_span(message: &jetstream::Message, record: &AuditRecord, batch: usize) -> Option<Hop> {
    let context = trace::extract(message.headers.as_ref())?;
    let name = |valid: bool, value: &str| {
        if valid {
            value.to_owned()
        } else {
            String::new()
        }
    };
    let span = info_span!(
        "audit.append",
        otel.kind = "consumer",
        operation = Operation::try_from(record.operation).map_or("", |o| o.as_str_name()),
        decision = Decision::try_from(record.decision).map_or("", |d| d.as_str_name()),
        code = record.code.as_str(),
        kind = record.kind.as_str(),
        agency = name(AgencyId::parse(&record.agency).is_ok(), &record.agency),
        envelope_id = name(
            liaison_kit::ids::validate_envelope_id(&record.envelope_id).is_ok(),
            &record.envelope_id
        ),
        batch,
    );
    Some(Hop::continuing(span, Some(context)))
}

/// What the writer knows of the ledger.
struct Ledger {
    tail: Tail,
    /// DECISIONS sequences already in the ledger, above the consumer's
    /// acknowledgement floor: a redelivered record is skipped only if it is
    /// here (redeliveries can come after later records).
    appended: BTreeSet<u64>,
    /// Sequences at or below this were acknowledged and forgotten.
    forgotten_below: u64,
    /// Record ids of the most recent entries: a record published twice under
    /// the same id (a sender's retry around a nats-server crash, when the
    /// server's own de-duplication did not hold) is chained once.
    recent: RecentIds,
    tree: CompactRange,
    /// Size of the last signed checkpoint.
    checkpointed: u64,
    latest_note: Option<String>,
}

/// The single writer of LEDGER and CHECKPOINTS.
pub struct Writer {
    js: jetstream::Context,
    signer: NoteSigner,
    origin: String,
    every: u64,
    ledger: Mutex<Ledger>,
    /// The ledger's gauges and counters, served at `/metrics`.
    pub metrics: crate::metrics::Metrics,
}

/// Reads and verifies the ledger and its checkpoints.
async fn recover(js: &jetstream::Context, verifier: &NoteVerifier) -> Result<Ledger, String> {
    let mut appended = BTreeSet::new();
    let mut recent = RecentIds::default();
    let inspector = crate::verify::scan(js, verifier, |entry| {
        appended.insert(entry.source_seq);
        recent.insert(record_id(&entry.record));
    })
    .await?;
    let (tail, tree, checkpointed) = inspector.into_state().map_err(|finding| {
        format!(
            "the ledger is broken and will not be extended: {finding} (run `liaison audit verify`)"
        )
    })?;
    let notes = crate::verify::checkpoints(js).await?;
    Ok(Ledger {
        tail,
        appended,
        forgotten_below: 0,
        recent,
        tree,
        checkpointed,
        latest_note: notes.last().cloned(),
    })
}

/// When the latest checkpoint in CHECKPOINTS was published (Unix seconds;
/// 0 if there is none or it cannot be read).
async fn last_checkpoint_time(js: &jetstream::Context) -> u64 {
    let Ok(stream) = js.get_stream(subjects::CHECKPOINTS_STREAM).await else {
        return 0;
    };
    stream
        .get_last_raw_message_by_subject(subjects::LEDGER_CHECKPOINTS)
        .await
        .ok()
        .and_then(|m| u64::try_from(m.time.unix_timestamp()).ok())
        .unwrap_or(0)
}

impl Writer {
    /// Recovers the ledger's state; fails if it is broken.
    pub async fn start(
        js: jetstream::Context,
        signer: NoteSigner,
        origin: String,
        every: u64,
    ) -> Result<Self, String> {
        let ledger = recover(&js, &signer.verifier()).await?;
        info!(
            records = ledger.tree.size(),
            "Ledger recovered and verified"
        );
        let metrics = crate::metrics::Metrics::new();
        metrics.height.set(&[], ledger.tree.size());
        metrics.last_checkpoint_size.set(&[], ledger.checkpointed);
        metrics
            .last_checkpoint_time
            .set(&[], last_checkpoint_time(&js).await);
        Ok(Self {
            js,
            signer,
            origin,
            every: every.max(1),
            ledger: Mutex::new(ledger),
            metrics,
        })
    }

    /// Appends `batch` (record bytes and DECISIONS sequences, in order) as
    /// one atomic batch publish (ADR-50): all of it is stored, or none; the
    /// first entry states the sequence LEDGER must end at, and the one
    /// acknowledgement comes after the whole batch is stored. `Ok(false)` if
    /// another writer moved the ledger first.
    async fn append(
        &self,
        ledger: &mut Ledger,
        batch: &[(&[u8], u64, &str)],
    ) -> Result<bool, String> {
        use async_nats::header;
        let mut tail = ledger.tail.clone();
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        let client = self.js.client();
        let mut commit = None;
        for (k, (record, source_seq, _)) in batch.iter().enumerate() {
            let entry = tail.append(record.to_vec(), *source_seq);
            let mut headers = HeaderMap::new();
            headers.insert(header::NATS_BATCH_ID, batch_id.as_str());
            headers.insert(header::NATS_BATCH_SEQUENCE, (k + 1).to_string().as_str());
            if k == 0 {
                headers.insert(
                    header::NATS_EXPECTED_LAST_SEQUENCE,
                    tail.next_index.to_string().as_str(),
                );
            }
            let payload = entry.encode_to_vec().into();
            if k + 1 == batch.len() {
                headers.insert(header::NATS_BATCH_COMMIT, header::NATS_BATCH_COMMIT_FINAL);
                commit = Some(
                    self.js
                        .publish_with_headers(subjects::LEDGER_ENTRIES, headers, payload)
                        .await
                        .map_err(|e| e.to_string())?,
                );
            } else {
                client
                    .publish_with_headers(subjects::LEDGER_ENTRIES, headers, payload)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            tail = Tail::after(&entry)?;
        }
        if let Some(commit) = commit {
            match commit.await {
                Ok(_) => {}
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => return Ok(false),
                Err(e) => return Err(e.to_string()),
            }
        }
        ledger.tail = tail;
        for (record, source_seq, id) in batch {
            ledger.tree.push(leaf_hash(record));
            ledger.appended.insert(*source_seq);
            ledger.recent.insert((*id).to_owned());
        }
        let appended = batch.len() as u64;
        self.metrics.appended.add(&[], appended);
        self.metrics.batch_records.observe(appended as f64);
        self.metrics.height.set(&[], ledger.tree.size());
        if ledger.tree.size() - ledger.checkpointed >= self.every {
            self.checkpoint(ledger).await?;
        }
        Ok(true)
    }

    /// Signs and publishes a checkpoint if records were added since the last.
    async fn checkpoint(&self, ledger: &mut Ledger) -> Result<(), String> {
        let size = ledger.tree.size();
        if size == 0 || size <= ledger.checkpointed {
            return Ok(());
        }
        let note = self.signer.sign(&Checkpoint {
            origin: self.origin.clone(),
            size,
            root: ledger.tree.root(),
        });
        self.js
            .publish(subjects::LEDGER_CHECKPOINTS, note.clone().into())
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        debug!(size, "Checkpoint signed");
        ledger.checkpointed = size;
        self.metrics.last_checkpoint_size.set(&[], size);
        self.metrics
            .last_checkpoint_time
            .set(&[], liaison_kit::time::unix_now());
        ledger.latest_note = Some(note);
        Ok(())
    }

    /// Drops remembered sequences the consumer will never redeliver (at or
    /// below its acknowledgement floor), once there are many.
    async fn forget_acknowledged(&self, consumer: &PullConsumer) {
        if self.ledger.lock().await.appended.len() < PRUNE_ABOVE {
            return;
        }
        if let Ok(info) = consumer.get_info().await {
            let floor = info.ack_floor.stream_sequence;
            let mut ledger = self.ledger.lock().await;
            ledger.appended = ledger.appended.split_off(&(floor + 1));
            ledger.forgotten_below = ledger.forgotten_below.max(floor);
        }
    }

    /// Waits until the decision at DECISIONS sequence `seq` is in the ledger.
    pub async fn wait_chained(&self, seq: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ticks = tokio::time::interval(Duration::from_millis(5));
        while tokio::time::Instant::now() < deadline {
            ticks.tick().await;
            let ledger = self.ledger.lock().await;
            if ledger.appended.contains(&seq) || seq <= ledger.forgotten_below {
                return true;
            }
        }
        false
    }

    /// Checkpoints now (if needed) and returns the latest signed note.
    pub async fn checkpoint_now(&self) -> Result<Option<String>, String> {
        let mut ledger = self.ledger.lock().await;
        self.checkpoint(&mut ledger).await?;
        Ok(ledger.latest_note.clone())
    }

    /// Appends decision records until `shutdown`; the batch in hand is finished first.
    ///
    /// Records arrive in DECISIONS order; whatever is already waiting, or
    /// arrives within [`LINGER`] of the last, is taken with the first (up to
    /// [`BATCH`]) and appended as one atomic batch.
    pub async fn serve(
        &self,
        consumer: PullConsumer,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(BATCH)
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        while let Some(first) =
            consume::next(&mut messages, &shutdown, subjects::LEDGER_WRITER_CONSUMER).await?
        {
            // Each atomic commit costs the server a few milliseconds whatever
            // its size, so gather what arrives within LINGER of the last one.
            let mut batch = vec![first];
            while batch.len() < BATCH {
                let next = match messages.next().now_or_never() {
                    Some(next) => next,
                    None => match tokio::time::timeout(LINGER, messages.next()).await {
                        Ok(next) => next,
                        Err(_) => break,
                    },
                };
                match next {
                    Some(Ok(m)) => batch.push(m),
                    _ => break,
                }
            }
            let mut records = Vec::with_capacity(batch.len());
            // Open until the batch is appended and acknowledged.
            let mut spans = Vec::new();
            for message in &batch {
                let source_seq = message.info().map_err(|e| e.to_string())?.stream_sequence;
                let Ok(record) = AuditRecord::decode(message.payload.as_ref()) else {
                    error!(source_seq, "Undecodable decision record, not chained");
                    let _ = message.ack_with(AckKind::Term).await;
                    continue;
                };
                spans.extend(append_span(message, &record, batch.len()));
                records.push((message.payload.as_ref(), source_seq, record.record_id));
            }
            loop {
                let mut ledger = self.ledger.lock().await;
                // Records appended before a crash or a conflict, and second
                // copies of a record, are not appended again.
                let mut ids = HashSet::new();
                let pending: Vec<(&[u8], u64, &str)> = records
                    .iter()
                    .filter(|(_, seq, id)| {
                        !ledger.appended.contains(seq)
                            && !ledger.recent.contains(id)
                            && ids.insert(id.as_str())
                    })
                    .map(|(record, seq, id)| (*record, *seq, id.as_str()))
                    .collect();
                if pending.is_empty() {
                    break;
                }
                let started = std::time::Instant::now();
                let appended = self.append(&mut ledger, &pending).await;
                debug!(
                    records = pending.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "Batch appended"
                );
                match appended {
                    Ok(true) => break,
                    Ok(false) => {
                        warn!("LEDGER moved under this writer; re-reading it");
                        *ledger = recover(&self.js, &self.signer.verifier()).await?;
                    }
                    Err(e) => {
                        error!(error = %e, "Ledger append failed; retrying");
                        drop(ledger);
                        tokio::select! {
                            () = shutdown.cancelled() => return Ok(()),
                            () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                        let mut ledger = self.ledger.lock().await;
                        if let Ok(recovered) = recover(&self.js, &self.signer.verifier()).await {
                            *ledger = recovered;
                        }
                    }
                }
            }
            // Each message acknowledged on its own: one ack for the whole batch
            // (AckPolicy::All) was tried and loses records — after a writer
            // restart it also acknowledges earlier decisions still waiting to
            // be redelivered (tests/tests/restart.rs caught it).
            for message in &batch {
                if let Err(e) = message.ack().await {
                    error!(error = %e, "Could not acknowledge decision record");
                }
            }
            drop(spans);
            self.forget_acknowledged(&consumer).await;
        }
        Ok(())
    }
}
