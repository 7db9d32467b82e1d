//! Reading a stream's messages in order, fast, for verification and replay.
//!
//! One task reads: an ephemeral pull consumer without acknowledgements,
//! asking for [`PULL`] messages a pull, *prepares* each message (decodes and
//! hashes it: the work that needs no other message) and hands them over in
//! parts of [`PART`], while the caller takes the parts before, in order, and
//! does what needs the messages in order. Measured against one ordered
//! consumer doing everything on one task in `cargo bench -p liaison-tests
//! --bench ledger` (and the ways of reading side by side in `--bench
//! jetstream_modes`).
//!
//! Nothing is hidden: a sequence missing from the stream is simply not
//! there (the caller sees the next one), and a message lost in transit (a
//! gap in the consumer's own sequence) makes the reader start again from
//! the sequence it lacks, with a new consumer.

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::Stream;
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Messages asked for in one pull.
pub const PULL: usize = 5_000;
/// Prepared messages handed over at once.
pub const PART: usize = 1_000;
/// Parts read ahead of the caller.
const AHEAD: usize = 8;
/// Times the reader starts again before giving up.
const ATTEMPTS: u32 = 5;

/// The reading task; it stops if the caller does.
struct Reader(JoinHandle<Result<(), String>>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads `first..=last` of `stream` in order, preparing each message with
/// `prepare(seq, payload)` on the reading task and handing the results to
/// `each` on the caller's, until it returns false.
pub async fn read_range<T, P>(
    stream: &Stream,
    first: u64,
    last: u64,
    prepare: P,
    mut each: impl FnMut(T) -> bool,
) -> Result<(), String>
where
    T: Send + 'static,
    P: Fn(u64, Bytes) -> T + Send + Sync + 'static,
{
    if first > last {
        return Ok(());
    }
    let (parts, mut taken) = mpsc::channel(AHEAD);
    let mut reader = Reader(tokio::spawn(read(
        stream.clone(),
        first,
        last,
        prepare,
        parts,
    )));
    while let Some(part) = taken.recv().await {
        for item in part {
            if !each(item) {
                return Ok(());
            }
        }
    }
    (&mut reader.0).await.map_err(|e| e.to_string())?
}

/// Reads `first..=last` into `parts`, starting again from the first
/// sequence it lacks after a message went missing or an error.
async fn read<T, P>(
    stream: Stream,
    first: u64,
    last: u64,
    prepare: P,
    parts: mpsc::Sender<Vec<T>>,
) -> Result<(), String>
where
    P: Fn(u64, Bytes) -> T + Sync,
{
    let mut next = first;
    let mut attempt = 0;
    loop {
        let reader = stream
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: next,
                },
                ack_policy: AckPolicy::None,
                memory_storage: true,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("reading from {next}: {e}"))?;
        let name = reader.cached_info().name.clone();
        let read = if reader.cached_info().num_pending == 0 {
            Ok(true)
        } else {
            drain(&reader, &mut next, last, &prepare, &parts).await
        };
        let _ = stream.delete_consumer(&name).await;
        match read {
            Ok(true) => return Ok(()),
            Ok(false) | Err(_) if attempt + 1 < ATTEMPTS => attempt += 1,
            Ok(false) => return Err(format!("messages keep going missing from {next}")),
            Err(e) => return Err(e),
        }
    }
}

/// Takes messages from `reader` until `last` (or the end of the stream):
/// `Ok(true)` when done (or the caller stopped taking), `Ok(false)` after a
/// message went missing in transit.
async fn drain<T>(
    reader: &consumer::Consumer<pull::Config>,
    next: &mut u64,
    last: u64,
    prepare: &impl Fn(u64, Bytes) -> T,
    parts: &mpsc::Sender<Vec<T>>,
) -> Result<bool, String> {
    let wanted = usize::try_from(last - *next + 1).unwrap_or(PULL);
    let mut messages = reader
        .stream()
        .max_messages_per_batch(PULL.min(wanted).max(1))
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    let mut part = Vec::with_capacity(PART);
    let mut delivered = 0;
    let done = loop {
        let Some(message) = messages.next().await else {
            return Err("the reading consumer ended".into());
        };
        let message = message.map_err(|e| e.to_string())?;
        let info = message.info().map_err(|e| e.to_string())?;
        if info.consumer_sequence != delivered + 1 {
            break false;
        }
        delivered = info.consumer_sequence;
        let (seq, pending) = (info.stream_sequence, info.pending);
        if seq > last {
            break true;
        }
        part.push(prepare(seq, message.message.payload));
        *next = seq + 1;
        if seq == last || pending == 0 {
            break true;
        }
        if part.len() == PART {
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
