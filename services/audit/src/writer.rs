//! The ledger writer: appends the decision records waiting in DECISIONS, in
//! stream order, to LEDGER as the next links of the hash chain and the next
//! leaves of the Merkle tree, and signs checkpoints of the tree.
//!
//! A pipeline of three stages, each on its own task: the intake reads and
//! decodes the next batches ([`crate::intake::read`]) while this writer
//! chains one batch into blocks of entries and sends them ([`crate::batch`])
//! while the server stores the one before; acknowledgements to DECISIONS go
//! out behind ([`crate::intake::acknowledge`]). Every guarantee of one batch
//! at a time holds:
//!
//! - **One writer.** Each block is one LEDGER message, stored whole or not
//!   at all, and only if LEDGER ends with the block before it: its stream
//!   sequence (`Nats-Expected-Last-Sequence`) and, when this writer sent that
//!   block and it is not yet known to be stored, its message id
//!   (`Nats-Expected-Last-Msg-Id`, the hash of its last entry). So the next
//!   batch is sent while the one before is in flight, yet can only be stored
//!   right after it: if that batch was refused (another writer appended
//!   first), every block sent behind it is refused too, even if the other
//!   writer appended exactly as many messages. After a refusal the writer
//!   waits for every block it sent, re-reads the ledger and appends what is
//!   missing.
//! - **Exactly once.** Each entry records the DECISIONS sequence it came from;
//!   a record redelivered after a crash (appended, not yet acknowledged), or
//!   while its first copy is in flight, is recognised by that sequence and
//!   skipped, whatever order it comes back in. Records are acknowledged only
//!   once every block of their batch is stored.
//! - **What is reported is stored.** The writer's state ([`crate::state`]),
//!   which checkpoints and [`Writer::wait_chained`] read, only ever holds
//!   stored batches, taken in in order.
//!
//! At start the writer reads and verifies the whole ledger, and refuses to
//! extend one that is broken.

mod pipeline;

use crate::batch;
use crate::checkpoint::{Checkpoint, NoteSigner};
use crate::state::{Ledger, recover};
use async_nats::jetstream;
use async_nats::jetstream::consumer::PullConsumer;
use liaison_core::NatsContext as _;
use liaison_core::subjects;
use std::time::Duration;
use tokio::sync::Mutex;
use tracing::{debug, error, info};

pub use crate::intake::BATCH;
/// Remembered DECISIONS sequences before the acknowledged ones are dropped.
const PRUNE_ABOVE: usize = 100_000;

/// The single writer of LEDGER and CHECKPOINTS.
pub struct Writer {
    js: jetstream::Context,
    signer: NoteSigner,
    origin: String,
    every: u64,
    ledger: std::sync::Arc<Mutex<Ledger>>,
    /// Each checkpoint signed (its note and size), for the witnesses.
    signed: tokio::sync::watch::Sender<Option<(String, u64)>>,
    /// The ledger's gauges and counters, served at `/metrics`.
    pub metrics: crate::metrics::Metrics,
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

/// Why the ledger writer could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error(transparent)]
    Read(#[from] crate::reader::ReadError),
    #[error("the ledger is broken and will not be extended (run `liaison audit verify`)")]
    Broken(#[source] crate::inspect::Finding),
    #[error("a batch stored from index {first}, but the ledger ends at {end}")]
    OutOfPlace { first: u64, end: u64 },
    #[error(transparent)]
    Nats(#[from] liaison_core::NatsError),
    #[error(transparent)]
    Consumer(#[from] liaison_runtime::consume::ConsumerEnded),
    #[error("the DECISIONS reader stopped")]
    Reader(#[from] tokio::task::JoinError),
}

impl Writer {
    /// The verifier of the checkpoints this writer signs.
    pub fn verifier(&self) -> crate::checkpoint::NoteVerifier {
        self.signer.verifier()
    }

    /// Recovers the ledger's state; fails if it is broken.
    pub async fn start(
        js: jetstream::Context,
        signer: NoteSigner,
        origin: String,
        every: u64,
    ) -> Result<Self, WriterError> {
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
            signed: tokio::sync::watch::Sender::new(
                ledger
                    .latest_note
                    .clone()
                    .map(|note| (note, ledger.checkpointed)),
            ),
            ledger: std::sync::Arc::new(Mutex::new(ledger)),
            metrics,
        })
    }

    /// The ledger as the writer keeps it (the witnesses' proofs read its leaves).
    pub fn ledger(&self) -> std::sync::Arc<Mutex<Ledger>> {
        self.ledger.clone()
    }

    /// Each checkpoint signed from now on (and the latest one), for the witnesses.
    pub fn signed(&self) -> tokio::sync::watch::Receiver<Option<(String, u64)>> {
        self.signed.subscribe()
    }

    /// Takes in a batch the server stored, and checkpoints if one is due.
    async fn stored(&self, staged: &batch::Staged) -> Result<(), WriterError> {
        let mut ledger = self.ledger.lock().await;
        ledger.stored(staged)?;
        let appended = staged.leaves.len() as u64;
        self.metrics.appended.add(&[], appended);
        self.metrics.batch_records.observe(appended as f64);
        self.metrics.height.set(&[], ledger.tree.size());
        debug!(records = appended, "Batch stored");
        if ledger.tree.size() - ledger.checkpointed >= self.every
            && let Err(e) = self.checkpoint(&mut ledger).await
        {
            error!(error = %liaison_core::error::chain(&e), "Checkpoint failed");
        }
        Ok(())
    }

    /// Signs and publishes a checkpoint if records were added since the last.
    async fn checkpoint(&self, ledger: &mut Ledger) -> Result<(), WriterError> {
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
            .nats("publish a checkpoint")?
            .await
            .nats("stored acknowledgement of a checkpoint")?;
        debug!(size, "Checkpoint signed");
        ledger.checkpointed = size;
        self.metrics.last_checkpoint_size.set(&[], size);
        self.metrics
            .last_checkpoint_time
            .set(&[], liaison_core::time::unix_now());
        self.signed.send_replace(Some((note.clone(), size)));
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
    pub async fn checkpoint_now(&self) -> Result<Option<String>, WriterError> {
        let mut ledger = self.ledger.lock().await;
        self.checkpoint(&mut ledger).await?;
        Ok(ledger.latest_note.clone())
    }
}
