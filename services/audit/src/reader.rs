//! Reading a stream's messages in order, fast, for verification and replay.
//!
//! One task reads — an ephemeral pull consumer without acknowledgements,
//! asking for [`PULL`] messages a pull — and hands the messages over in
//! parts of [`PART`] (each a sequence and the shared payload bytes), while
//! the caller works through the parts before, in order. Measured against
//! one ordered consumer (500 a pull) in `cargo bench -p liaison-tests
//! --bench ledger`: less CPU per message on both sides, here and in
//! nats-server. Checking entries on the reading task too was tried: moving
//! the decoded, checked entries between tasks cost more CPU than the
//! checks it moved, on a machine whose two cores are busy anyway.
//!
//! Nothing is hidden: a sequence missing from the stream is simply not
//! there (the caller sees the next one), and a message lost in transit (a
//! gap in the consumer's own sequence) makes the reader start again from
//! the sequence it lacks, with a new consumer. So does a consumer that
//! sees the stream end before `last` (the streams read here never lose
//! messages: on a cluster, a consumer's view can lag just after a node
//! restarts), after a pause; a view still short after [`ATTEMPTS`] is an
//! error, never a shorter ledger.
//!
//! Where the consumers come from is the [`Source`]'s business: the audit
//! service (and an operator) create their own on the stream; an auditor may
//! not, and reads LEDGER only through consumers the audit service creates
//! for a consultation it has recorded ([`crate::consult::Grant`]).

use crate::consult::Grant;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::Stream;
use bytes::Bytes;
use futures_util::StreamExt as _;
use liaison_core::{NatsContext as _, NatsError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Messages asked for in one pull.
pub const PULL: usize = 5_000;
/// Bytes asked for in one pull: LEDGER messages are blocks of up to 512 KiB,
/// and 5,000 of them at once would overrun the connection (nats-server
/// closes a client more than 64 MiB behind).
pub const PULL_BYTES: usize = 8 * 1024 * 1024;
/// Messages handed over at once, or fewer once they hold [`PART_BYTES`].
pub const PART: usize = 1_000;
/// Bytes handed over at once (so that the parts read ahead stay small).
pub const PART_BYTES: usize = 4 * 1024 * 1024;
/// Parts read ahead of the caller.
const AHEAD: usize = 8;
/// Times the reader starts again before giving up.
const ATTEMPTS: u32 = 5;
/// Pause before starting again, times the attempt (0.2 s, 0.4 s, ... 0.8 s).
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Why the ledger (or another stream) could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error("messages keep going missing from {next} (the stream ends at {last})")]
    Missing { next: u64, last: u64 },
    #[error("the reading consumer ended")]
    Ended,
    #[error("the reading task stopped")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Grant(#[from] crate::consult::GrantError),
    #[error("reading {stream}")]
    Reading {
        stream: String,
        #[source]
        source: Box<ReadError>,
    },
}

impl ReadError {
    /// `source`, met while reading `stream`.
    pub fn reading(stream: &str, source: ReadError) -> Self {
        Self::Reading {
            stream: stream.to_owned(),
            source: Box::new(source),
        }
    }
}

/// The reading task; it stops if the caller does.
struct Reader(JoinHandle<Result<(), ReadError>>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where the reading consumers come from.
#[derive(Clone)]
pub enum Source {
    /// Consumers created on the stream by the reader itself (the audit
    /// service; an operator), deleted when done.
    Stream(Box<Stream>),
    /// Consumers the audit service creates for a granted consultation; the
    /// reader may only pull from them (they expire when left idle).
    Granted(Grant),
}

impl From<Stream> for Source {
    fn from(stream: Stream) -> Self {
        Self::Stream(Box::new(stream))
    }
}

impl From<&Stream> for Source {
    fn from(stream: &Stream) -> Self {
        Self::Stream(Box::new(stream.clone()))
    }
}

impl Source {
    /// A consumer delivering from sequence `from`, without acknowledgements.
    async fn open(&self, from: u64) -> Result<consumer::Consumer<pull::Config>, ReadError> {
        match self {
            Self::Stream(stream) => stream
                .create_consumer(pull::Config {
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: from,
                    },
                    ack_policy: AckPolicy::None,
                    memory_storage: true,
                    inactive_threshold: Duration::from_secs(30),
                    ..Default::default()
                })
                .await
                .nats(format!("a reader from {from}"))
                .map_err(ReadError::from),
            Self::Granted(grant) => Ok(grant.open(from).await?),
        }
    }

    /// Lets go of a consumer this reader is done with.
    async fn close(&self, name: &str) {
        if let Self::Stream(stream) = self {
            let _ = stream.delete_consumer(name).await;
        }
    }
}

/// Reads `first..=last` of `source` in order, handing each message's
/// sequence and payload to `each` until it returns false.
pub async fn read_range(
    source: impl Into<Source>,
    first: u64,
    last: u64,
    mut each: impl FnMut(u64, Bytes) -> bool,
) -> Result<(), ReadError> {
    if first > last {
        return Ok(());
    }
    let (parts, mut taken) = mpsc::channel(AHEAD);
    let mut reader = Reader(tokio::spawn(read(source.into(), first, last, parts)));
    while let Some(part) = taken.recv().await {
        for (seq, payload) in part {
            if !each(seq, payload) {
                return Ok(());
            }
        }
    }
    (&mut reader.0).await?
}

/// Reads `first..=last` into `parts`, starting again from the first
/// sequence it lacks after a message went missing or an error.
async fn read(
    source: Source,
    first: u64,
    last: u64,
    parts: mpsc::Sender<Vec<(u64, Bytes)>>,
) -> Result<(), ReadError> {
    let mut next = first;
    let mut attempt = 0;
    loop {
        let reader = source.open(next).await?;
        let name = reader.cached_info().name.clone();
        let read = if reader.cached_info().num_pending == 0 {
            // Nothing to read from `next`: done only if `last` was read.
            Ok(next > last)
        } else {
            drain(&reader, &mut next, last, &parts).await
        };
        source.close(&name).await;
        match read {
            Ok(true) => return Ok(()),
            Ok(false) | Err(_) if attempt + 1 < ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(RETRY_PAUSE * attempt).await;
            }
            Ok(false) => return Err(ReadError::Missing { next, last }),
            Err(e) => return Err(e),
        }
    }
}

/// Takes messages from `reader` until `last`: `Ok(true)` when done (or the
/// caller stopped taking), `Ok(false)` after a message went missing in
/// transit or the consumer saw the stream end before `last`.
async fn drain(
    reader: &consumer::Consumer<pull::Config>,
    next: &mut u64,
    last: u64,
    parts: &mpsc::Sender<Vec<(u64, Bytes)>>,
) -> Result<bool, ReadError> {
    let wanted = usize::try_from(last - *next + 1).unwrap_or(PULL);
    let mut messages = reader
        .stream()
        .max_messages_per_batch(PULL.min(wanted).max(1))
        .max_bytes_per_batch(PULL_BYTES)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .nats("the reader's messages")?;
    let mut part = Vec::with_capacity(PART);
    let mut part_bytes = 0;
    let mut delivered = 0;
    let done = loop {
        let Some(message) = messages.next().await else {
            return Err(ReadError::Ended);
        };
        let message = message.nats("next message")?;
        let info = message.info().nats("message metadata")?;
        if info.consumer_sequence != delivered + 1 {
            break false;
        }
        delivered = info.consumer_sequence;
        let (seq, pending) = (info.stream_sequence, info.pending);
        if seq > last {
            break true;
        }
        part_bytes += message.message.payload.len();
        part.push((seq, message.message.payload));
        *next = seq + 1;
        if seq == last {
            break true;
        }
        if pending == 0 {
            // The consumer's view ends before `last`: read again.
            break false;
        }
        if part.len() == PART || part_bytes >= PART_BYTES {
            part_bytes = 0;
            let full = std::mem::replace(&mut part, Vec::with_capacity(PART));
            if parts.send(full).await.is_err() {
                return Ok(true);
            }
        }
    };
    if !part.is_empty() && parts.send(part).await.is_err() {
        return Ok(true);
    }
    Ok(done)
}
