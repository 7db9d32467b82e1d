//! Storing accepted envelopes in EVENTS by group commit
//! (docs/decisions/0024-group-commit.md).
//!
//! nats-server makes each stored message durable on its own: with
//! `sync_interval = always` every message is written and flushed to disk
//! before it is acknowledged, in an atomic batch as much as alone (and an
//! atomic batch is first staged, about 2.5 ms a commit). So one writer per
//! gateway gathers every envelope accepted while its previous commit was
//! being stored and writes them as **one message**, a `Commit`: one flushed
//! write makes them all durable, and each sender is answered once it is. A
//! lone envelope is not held back: it goes as soon as the writer is free.
//!
//! **Exactly once.** A re-sent envelope (the same sender and id) within
//! `streams.duplicate_window_secs` is answered duplicate and stored once.
//! The writer keeps the scoped ids of the window's commits, read from EVENTS
//! at start, and stores each commit only where it read EVENTS to end: the
//! commit carries `Nats-Expected-Last-Subject-Sequence`, the sequence of the
//! last commit it has read or written. If another gateway committed since,
//! JetStream refuses the commit; the writer reads what was committed, answers
//! duplicate any envelope it finds there, and commits the rest. So whichever
//! gateways accept an envelope twice, one commit holds it.

use liaison_core::NatsContext as _;
use liaison_core::subjects;
use liaison_proto::v1::{Commit, CommittedEnvelope};
use liaison_runtime::fold::{Commits, From};
use prost::Message as _;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// Most envelopes in one commit.
const MAX_ENVELOPES: usize = 250;
/// Most bytes of envelopes in one commit, under the server's 1 MiB
/// `max_payload` (an envelope is at most `gateway.max_envelope_bytes`,
/// 256 KiB as shipped, sealed beside its fact: one always fits).
const MAX_BYTES: usize = 768 * 1024;
/// Envelopes waiting for the writer at most; beyond, senders wait.
const QUEUE: usize = 4_096;
/// Times a commit is tried again after another gateway committed first.
const ATTEMPTS: usize = 16;

struct Waiting {
    entry: CommittedEnvelope,
    done: oneshot::Sender<Result<bool, String>>,
}

/// The writer's door.
#[derive(Clone)]
pub struct Events {
    queue: mpsc::Sender<Waiting>,
}

impl Events {
    /// Starts the writer on `client`, judging duplicates over `window`; it
    /// stops when every [`Events`] is dropped.
    pub fn start(client: async_nats::Client, window: Duration) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(Writer::new(&client, window).run(waiting));
        Self { queue }
    }

    /// Stores `entry`; `Ok(true)` when its envelope was stored before.
    pub async fn store(&self, entry: CommittedEnvelope) -> Result<bool, String> {
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

/// The scoped ids committed within the duplicate window.
#[derive(Default)]
struct Accepted {
    /// Each id, and the Unix second its commit was read or written.
    ids: HashMap<String, u64>,
    /// The same, oldest first, to forget them as the window moves.
    order: VecDeque<(u64, String)>,
}

impl Accepted {
    fn insert(&mut self, id: String, at: u64) {
        self.order.push_back((at, id.clone()));
        self.ids.insert(id, at);
    }

    fn contains(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// Forgets what was committed before `since`.
    fn forget_before(&mut self, since: u64) {
        while let Some((at, _)) = self.order.front() {
            if *at >= since {
                break;
            }
            if let Some((at, id)) = self.order.pop_front()
                && self.ids.get(&id) == Some(&at)
            {
                self.ids.remove(&id);
            }
        }
    }
}

/// How a commit's publish ended.
enum Stored {
    /// At this sequence.
    At(u64),
    /// Another gateway committed first.
    Moved,
}

struct Writer {
    js: async_nats::jetstream::Context,
    window: Duration,
    accepted: Accepted,
    /// Whether the duplicate window's commits have been read.
    loaded: bool,
    /// The sequence of the last commit read or written (0: none).
    known: u64,
    /// What the next commit expects EVENTS' last commit to be; `None` when
    /// EVENTS must be read first (at start, after another gateway committed,
    /// and after a commit whose outcome is unknown).
    last: Option<u64>,
    instance: String,
    serial: u64,
}

impl Writer {
    fn new(client: &async_nats::Client, window: Duration) -> Self {
        Self {
            js: async_nats::jetstream::new(client.clone()),
            window,
            accepted: Accepted::default(),
            loaded: false,
            known: 0,
            last: None,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            serial: 0,
        }
    }

    async fn run(mut self, mut waiting: mpsc::Receiver<Waiting>) {
        // An envelope taken that did not fit the last commit: the next one's first.
        let mut carried: Option<Waiting> = None;
        loop {
            let first = match carried.take() {
                Some(first) => first,
                None => match waiting.recv().await {
                    Some(first) => first,
                    None => break,
                },
            };
            let mut bytes = first.entry.encoded_len();
            let mut group = vec![first];
            while group.len() < MAX_ENVELOPES {
                let Ok(next) = waiting.try_recv() else { break };
                let len = next.entry.encoded_len();
                if bytes + len > MAX_BYTES {
                    carried = Some(next);
                    break;
                }
                bytes += len;
                group.push(next);
            }
            self.commit(group).await;
        }
    }

    /// Stores `group` as one commit (its envelopes found committed before
    /// answered duplicate) and answers each sender.
    async fn commit(&mut self, mut group: Vec<Waiting>) {
        for _ in 0..ATTEMPTS {
            if self.last.is_none()
                && let Err(e) = self.catch_up().await
            {
                warn!(error = %e, "EVENTS not read: envelopes not stored");
                return answer(group, || Err(e.clone()));
            }
            // What is already committed is a duplicate; so is a second copy
            // of one envelope in this group, once the first is stored.
            let mut fresh = Vec::with_capacity(group.len());
            let mut again = Vec::new();
            let mut ids = HashSet::with_capacity(group.len());
            for w in group {
                if self.accepted.contains(&w.entry.scoped_id) {
                    let _ = w.done.send(Ok(true));
                } else if ids.insert(w.entry.scoped_id.clone()) {
                    fresh.push(w);
                } else {
                    again.push(w);
                }
            }
            if fresh.is_empty() {
                return;
            }
            self.serial += 1;
            let id = format!("{}-{}", self.instance, self.serial);
            let (entries, done): (Vec<_>, Vec<_>) =
                fresh.into_iter().map(|w| (w.entry, w.done)).unzip();
            let commit = Commit {
                id: id.clone(),
                envelopes: entries,
            };
            let payload = commit.encode_to_vec();
            let entries = commit.envelopes;
            match self.publish(&id, payload).await {
                Ok(Stored::At(seq)) => {
                    self.last = Some(seq);
                    self.known = seq;
                    let now = liaison_core::time::unix_now();
                    for entry in &entries {
                        self.accepted.insert(entry.scoped_id.clone(), now);
                    }
                    answer_each(done, Ok(false));
                    answer_each(again.into_iter().map(|w| w.done).collect(), Ok(true));
                    return;
                }
                Ok(Stored::Moved) => {
                    // Read what the other gateway committed; try again.
                    self.last = None;
                    group = entries
                        .into_iter()
                        .zip(done)
                        .map(|(entry, done)| Waiting { entry, done })
                        .chain(again)
                        .collect();
                }
                Err(e) => {
                    // Stored or not: EVENTS is read again before the next.
                    self.last = None;
                    warn!(error = %e, "EVENTS commit not stored");
                    answer_each(done, Err(e.clone()));
                    answer_each(again.into_iter().map(|w| w.done).collect(), Err(e));
                    return;
                }
            }
        }
        answer(group, || {
            Err(format!(
                "other gateways committed first {ATTEMPTS} times running"
            ))
        });
    }

    /// Publishes one commit where this writer read EVENTS to end.
    async fn publish(&self, id: &str, payload: Vec<u8>) -> Result<Stored, String> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            self.last.unwrap_or_default().to_string().as_str(),
        );
        let ack = self
            .js
            .publish_with_headers(subjects::COMMITS, headers, payload.into())
            .await
            .map_err(|e| format!("publish: {e}"))?
            .await;
        match ack {
            Ok(ack) => Ok(Stored::At(ack.sequence)),
            Err(e)
                if matches!(
                    e.kind(),
                    async_nats::jetstream::context::PublishErrorKind::WrongLastSequence
                ) =>
            {
                Ok(Stored::Moved)
            }
            Err(e) => Err(format!("stored acknowledgement: {e}")),
        }
    }

    /// Reads the commits this writer has not seen: the whole duplicate
    /// window at start, else those after the last it read or wrote.
    async fn catch_up(&mut self) -> Result<(), String> {
        let now = liaison_core::time::unix_now();
        let since = now.saturating_sub(self.window.as_secs());
        self.accepted.forget_before(since);
        let from = if self.loaded {
            From::Sequence(self.known + 1)
        } else {
            From::Time(since)
        };
        // Read to the end as it is now: a commit stored meanwhile makes the
        // next commit's guard fail, and is read then.
        let end = self.end().await?;
        let mut commits = Commits::from(&self.js, from)
            .await
            .map_err(|e| format!("reading EVENTS: {e}"))?;
        let mut read = 0usize;
        let mut last = self.known;
        while !commits.caught_up() && last < end {
            let (seq, commit) = commits
                .next()
                .await
                .map_err(|e| format!("reading EVENTS: {e}"))?;
            for entry in commit.envelopes {
                self.accepted.insert(entry.scoped_id, now);
            }
            last = seq;
            read += 1;
        }
        if !self.loaded {
            info!(
                commits = read,
                envelopes = self.accepted.ids.len(),
                "Envelopes accepted within the duplicate window read from EVENTS"
            );
        }
        self.loaded = true;
        self.known = last.max(end);
        self.last = Some(self.known);
        Ok(())
    }

    /// EVENTS' last sequence (every message in it is a commit).
    async fn end(&self) -> Result<u64, String> {
        let mut stream = self
            .js
            .get_stream(subjects::EVENTS_STREAM)
            .await
            .nats("stream EVENTS")
            .map_err(|e| e.to_string())?;
        Ok(stream
            .info()
            .await
            .nats("stream EVENTS")
            .map_err(|e| e.to_string())?
            .state
            .last_sequence)
    }
}

fn answer(group: Vec<Waiting>, outcome: impl Fn() -> Result<bool, String>) {
    for w in group {
        let _ = w.done.send(outcome());
    }
}

fn answer_each(done: Vec<oneshot::Sender<Result<bool, String>>>, outcome: Result<bool, String>) {
    for done in done {
        let _ = done.send(outcome.clone());
    }
}
