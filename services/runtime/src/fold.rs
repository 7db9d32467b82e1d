//! What the cases, linkage and alerts services share: each keeps a state
//! folded from EVENTS, in order, in its own KV bucket, and raises events of
//! its own through the gateway's internal door.
//!
//! - [`Cursor`]: the last EVENTS sequence applied, kept in the service's
//!   bucket. A service resumes after it; with an empty bucket (lost, or new)
//!   it folds EVENTS from the start, which rebuilds its state.
//! - [`Events`]: EVENTS' facts read in order from a [`position`] (an
//!   ordered consumer of the commits, ADR 0024): each accepted envelope
//!   without its labelled fields, which is all a service may read (ADR
//!   0021), and whether the reader has caught up with the end of the stream
//!   as it was when reading began.
//! - [`Outbox`]: events the service decided to raise, kept in its bucket
//!   until they come back through EVENTS. The envelope ids are deterministic
//!   (derived from what caused them), the gateway de-duplicates on them, and
//!   an event is raised only once the reader has caught up: replaying EVENTS
//!   after a crash or a rebuild sees the echo of what was already raised and
//!   drops it from the outbox instead of raising it twice.
//! - [`raise`]: sends one event through the internal door and reads the verdict.

use async_nats::jetstream::{self, consumer, kv};
use futures_util::StreamExt;
use liaison_core::subjects;
use liaison_core::system::Service;
use liaison_core::trace::TraceContext;
use liaison_core::{NatsContext as _, NatsError};
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{Commit, CommittedEnvelope, Envelope, EnvelopeAccepted, Verdict};
use prost::Message as _;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Largest EVENTS message decoded (the gateway's own limit is far below).
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;
/// KV key of the cursor.
pub const CURSOR_KEY: &str = "meta.cursor";
/// KV key prefix of the outbox.
const OUTBOX_PREFIX: &str = "outbox.";

/// Why folding could not go on.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    #[error("{service} state in KV bucket {bucket}: {reason}")]
    Store {
        service: &'static str,
        bucket: &'static str,
        reason: String,
    },
    #[error("reading EVENTS")]
    Events(#[from] NatsError),
    #[error("the EVENTS reader ended")]
    EventsEnded,
    #[error("raising {kind} {id}: {reason}")]
    Raise {
        kind: &'static str,
        id: String,
        reason: String,
    },
}

fn store_error(service: Service) -> impl Fn(String) -> FoldError {
    move |reason| FoldError::Store {
        service: service.name(),
        bucket: service.bucket(),
        reason,
    }
}

/// Opens a service's (provisioned) bucket.
pub async fn bucket(js: &jetstream::Context, service: Service) -> Result<kv::Store, FoldError> {
    js.get_key_value(service.bucket())
        .await
        .map_err(|e| store_error(service)(e.to_string()))
}

/// The last EVENTS sequence a service applied.
pub struct Cursor {
    store: kv::Store,
    service: Service,
}

impl Cursor {
    pub fn new(store: kv::Store, service: Service) -> Self {
        Self { store, service }
    }

    /// The sequence last applied (0: none, fold from the start).
    pub async fn get(&self) -> Result<u64, FoldError> {
        let value = self
            .store
            .get(CURSOR_KEY)
            .await
            .map_err(|e| store_error(self.service)(e.to_string()))?;
        match value {
            None => Ok(0),
            Some(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| store_error(self.service)("the cursor is not a number".into())),
        }
    }

    /// Records that every event up to `seq` is applied and stored.
    pub async fn set(&self, seq: u64) -> Result<(), FoldError> {
        self.store
            .put(CURSOR_KEY, seq.to_string().into())
            .await
            .map(|_| ())
            .map_err(|e| store_error(self.service)(e.to_string()))
    }
}

/// Where an event is in EVENTS: its commit's stream sequence and its place
/// in the commit, in one number that orders events as they were accepted
/// (ADR 0024). The last envelope of a commit takes [`LAST`] as its place, so
/// that "every event up to this position" says whether the commit is done.
pub fn position(seq: u64, index: usize, last: bool) -> u64 {
    let place = if last {
        LAST
    } else {
        (index as u64).min(LAST - 1)
    };
    (seq << PLACE_BITS) | place
}

/// Bits of a [`position`] that hold the place in the commit.
const PLACE_BITS: u32 = 16;
/// The place of a commit's last envelope.
const LAST: u64 = (1 << PLACE_BITS) - 1;

/// The last EVENTS sequence whose every event is at or before `position`.
pub fn applied_through(position: u64) -> u64 {
    let seq = position >> PLACE_BITS;
    if position & LAST == LAST {
        seq
    } else {
        seq.saturating_sub(1)
    }
}

/// One accepted envelope read from EVENTS.
pub struct Event {
    /// Its [`position`]: what a service's cursor and state remember.
    pub seq: u64,
    pub accepted: EnvelopeAccepted,
    /// The trace context EVENTS carries (the gateway's ingress span), else
    /// the envelope's `traceparent` field: what a service's span of this
    /// event continues ([`liaison_core::hop::Hop::continuing`]).
    pub trace: Option<TraceContext>,
}

impl Event {
    /// The envelope (an empty one if the event somehow has none).
    pub fn envelope(&self) -> &Envelope {
        static EMPTY: std::sync::OnceLock<Envelope> = std::sync::OnceLock::new();
        self.accepted
            .envelope
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Envelope::default))
    }
}

/// The trace context a commit stored for one of its envelopes.
pub fn committed_trace(entry: &CommittedEnvelope) -> Option<TraceContext> {
    liaison_core::trace::from_fields(&entry.traceparent, &entry.tracestate)
}

/// Where to begin reading EVENTS' commits.
#[derive(Debug, Clone, Copy)]
pub enum From {
    /// At this stream sequence.
    Sequence(u64),
    /// At the first commit stored at or after this Unix second.
    Time(u64),
}

/// EVENTS' commits, read in order with an ordered consumer filtered on
/// [`subjects::COMMITS`] (the filter in the request's subject, which NATS
/// permissions check), each with its stream sequence.
pub struct Commits {
    messages: consumer::pull::Ordered,
    /// Commits left to read when reading began, as the server counted them.
    pending: u64,
}

impl Commits {
    pub async fn from(js: &jetstream::Context, from: From) -> Result<Self, NatsError> {
        let stream = js
            .get_stream(subjects::EVENTS_STREAM)
            .await
            .nats("stream EVENTS")?;
        let deliver_policy = match from {
            From::Sequence(seq) => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: seq.max(1),
            },
            From::Time(unix) => consumer::DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp(
                    i64::try_from(unix).unwrap_or(i64::MAX),
                )
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            },
        };
        let mut consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                name: Some(format!("commits-{}", {
                    use rand_core::RngCore as _;
                    let mut bytes = [0u8; 8];
                    rand_core::OsRng.fill_bytes(&mut bytes);
                    hex::encode(bytes)
                })),
                filter_subject: subjects::COMMITS.to_owned(),
                deliver_policy,
                ..Default::default()
            })
            .await
            .nats(format!("ordered consumer of EVENTS from {from:?}"))?;
        let pending = consumer
            .info()
            .await
            .map(|i| i.num_pending)
            .nats("ordered consumer of EVENTS")?;
        let messages = consumer.messages().await.nats("messages of EVENTS")?;
        Ok(Self { messages, pending })
    }

    /// Whether the commits stored when reading began have all been read.
    pub fn caught_up(&self) -> bool {
        self.pending == 0
    }

    /// The next commit and its sequence; waits for one. A commit that does
    /// not decode (only the gateway writes EVENTS: a bug, not input) is
    /// returned empty, with an error logged.
    pub async fn next(&mut self) -> Result<(u64, Commit), FoldError> {
        let message = self
            .messages
            .next()
            .await
            .ok_or(FoldError::EventsEnded)?
            .nats("next commit")?;
        let info = message.info().nats("commit metadata")?;
        let seq = info.stream_sequence;
        self.pending = self.pending.saturating_sub(1).min(info.pending);
        if message.payload.len() > MAX_EVENT_BYTES {
            tracing::error!(seq, "Oversized commit in EVENTS skipped");
            return Ok((seq, Commit::default()));
        }
        match Commit::decode(message.payload.as_ref()) {
            Ok(commit) => Ok((seq, commit)),
            Err(e) => {
                tracing::error!(seq, error = %e, "Undecodable commit in EVENTS skipped");
                Ok((seq, Commit::default()))
            }
        }
    }
}

/// EVENTS' facts, one accepted envelope at a time, in order from a position.
pub struct Events {
    commits: Commits,
    /// Events of the commit being read, not yet returned.
    ready: std::collections::VecDeque<Event>,
    /// Events at or before this position are passed over (already applied).
    after: u64,
}

impl Events {
    /// Reads the events after position `after` (0: from the start).
    pub async fn after(js: &jetstream::Context, after: u64) -> Result<Self, FoldError> {
        // From the commit after the last done; from the commit itself if
        // only some of its envelopes were applied.
        let commits = Commits::from(js, From::Sequence(applied_through(after) + 1)).await?;
        Ok(Self {
            commits,
            ready: std::collections::VecDeque::new(),
            after,
        })
    }

    /// Whether every event present when reading began has been read.
    pub fn caught_up(&self) -> bool {
        self.ready.is_empty() && self.commits.caught_up()
    }

    /// The next event; waits for one.
    pub async fn next(&mut self) -> Result<Event, FoldError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(event);
            }
            let (seq, commit) = self.commits.next().await?;
            let count = commit.envelopes.len();
            for (i, entry) in commit.envelopes.into_iter().enumerate() {
                let at = position(seq, i, i + 1 == count);
                if at <= self.after {
                    continue;
                }
                let Some(accepted) = entry.fact.clone() else {
                    tracing::error!(seq, "A commit's envelope without its fact skipped");
                    continue;
                };
                let trace = committed_trace(&entry).or_else(|| {
                    accepted
                        .envelope
                        .as_ref()
                        .and_then(|e| TraceContext::from_field(&e.traceparent))
                });
                self.ready.push_back(Event {
                    seq: at,
                    accepted,
                    trace,
                });
            }
        }
    }

    /// The next event, or `None` if none comes within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Event>, FoldError> {
        match tokio::time::timeout(wait, self.next()).await {
            Ok(event) => event.map(Some),
            Err(_) => Ok(None),
        }
    }
}

fn outbox_key(envelope_id: &str) -> String {
    format!(
        "{OUTBOX_PREFIX}{}",
        hex::encode(&Sha256::digest(envelope_id.as_bytes())[..20])
    )
}

/// Events a service has decided to raise and not yet seen come back.
pub struct Outbox {
    store: kv::Store,
    service: Service,
    pending: BTreeMap<String, Envelope>,
    /// Pending events this process already raised (stored in EVENTS): not
    /// raised again while their echo is on its way.
    raised: BTreeSet<String>,
}

impl Outbox {
    /// Loads what was pending when the service last stopped.
    pub async fn load(store: kv::Store, service: Service) -> Result<Self, FoldError> {
        let fail = store_error(service);
        let mut pending = BTreeMap::new();
        let mut keys = store.keys().await.map_err(|e| fail(e.to_string()))?;
        let mut names = vec![];
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| fail(e.to_string()))?;
            if key.starts_with(OUTBOX_PREFIX) {
                names.push(key);
            }
        }
        for key in names {
            if let Some(bytes) = store.get(&key).await.map_err(|e| fail(e.to_string()))? {
                let envelope = Envelope::decode(bytes.as_ref())
                    .map_err(|e| fail(format!("outbox entry {key}: {e}")))?;
                pending.insert(envelope.id.clone(), envelope);
            }
        }
        Ok(Self {
            store,
            service,
            pending,
            raised: BTreeSet::new(),
        })
    }

    /// Keeps `envelope` to raise (once caught up). Idempotent on its id.
    pub async fn add(&mut self, envelope: Envelope) -> Result<(), FoldError> {
        if self.pending.contains_key(&envelope.id) {
            return Ok(());
        }
        self.store
            .put(outbox_key(&envelope.id), envelope.encode_to_vec().into())
            .await
            .map_err(|e| store_error(self.service)(e.to_string()))?;
        self.pending.insert(envelope.id.clone(), envelope);
        Ok(())
    }

    /// An event came back through EVENTS: if it is one of ours, it is done.
    pub async fn seen(&mut self, event: &Event) -> Result<bool, FoldError> {
        let envelope = event.envelope();
        if envelope.sender_agency != self.service.sender().as_str()
            || self.pending.remove(&envelope.id).is_none()
        {
            return Ok(false);
        }
        self.raised.remove(&envelope.id);
        self.store
            .delete(outbox_key(&envelope.id))
            .await
            .map_err(|e| store_error(self.service)(e.to_string()))?;
        Ok(true)
    }

    /// How many events wait to be raised.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether the event with this envelope id waits to be raised.
    pub fn contains(&self, envelope_id: &str) -> bool {
        self.pending.contains_key(envelope_id)
    }

    /// The events waiting to be raised, by envelope id.
    pub fn pending(&self) -> impl Iterator<Item = &Envelope> {
        self.pending.values()
    }

    /// The pending events the next [`Outbox::flush`] will raise (those not
    /// yet raised by this process).
    pub fn to_raise(&self) -> impl Iterator<Item = &Envelope> {
        self.pending
            .values()
            .filter(|e| !self.raised.contains(&e.id))
    }

    /// Raises every pending event through the internal door (once per
    /// process: an accepted one is in EVENTS, and stays pending only until
    /// its echo is [`Outbox::seen`]). An event the gateway refuses is dropped
    /// from the outbox (and the refusal is in the ledger); one it cannot
    /// take now stays for the next flush.
    pub async fn flush(&mut self, client: &async_nats::Client) -> Result<usize, FoldError> {
        let mut raised = 0;
        let ids: Vec<String> = self.to_raise().map(|e| e.id.clone()).collect();
        for id in ids {
            let Some(envelope) = self.pending.get(&id) else {
                continue;
            };
            match raise(client, self.service, envelope).await {
                Ok(_) => {
                    self.raised.insert(id);
                    raised += 1;
                }
                Err(FoldError::Raise { reason, .. }) if reason.starts_with("refused") => {
                    tracing::error!(kind = envelope.kind(), envelope_id = %id, reason, "Event refused by the gateway, dropped");
                    self.pending.remove(&id);
                    self.store
                        .delete(outbox_key(&id))
                        .await
                        .map_err(|e| store_error(self.service)(e.to_string()))?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(raised)
    }
}

/// How long the gateway has to answer the internal door.
const RAISE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one event through the gateway's internal door; `Ok` once it is
/// accepted (or was already). A refusal's reason begins "refused".
pub async fn raise(
    client: &async_nats::Client,
    service: Service,
    envelope: &Envelope,
) -> Result<Verdict, FoldError> {
    let fail = |reason: String| FoldError::Raise {
        kind: envelope.kind(),
        id: envelope.id.clone(),
        reason,
    };
    let reply = tokio::time::timeout(
        RAISE_TIMEOUT,
        client.request(subjects::internal(service), envelope.encode_to_vec().into()),
    )
    .await
    .map_err(|_| fail("the gateway did not answer".into()))?
    .map_err(|e| fail(e.to_string()))?;
    let verdict = Verdict::decode(reply.payload.as_ref()).map_err(|e| fail(e.to_string()))?;
    match Outcome::try_from(verdict.outcome) {
        Ok(Outcome::Accepted | Outcome::Duplicate) => Ok(verdict),
        _ if verdict.code == "unavailable" => Err(fail(verdict.reason)),
        _ => Err(fail(format!(
            "refused: {} ({})",
            verdict.code, verdict.reason
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn outbox_keys_are_safe_kv_keys() {
        let key = super::outbox_key("reengagement:urn:uuid:1");
        assert!(key.starts_with("outbox."));
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'.' || b.is_ascii_lowercase())
        );
        assert_ne!(key, super::outbox_key("reengagement:urn:uuid:2"));
    }

    #[test]
    fn positions_order_events_as_accepted_and_say_which_commits_are_done() {
        use super::{applied_through, position};
        // Three envelopes in commit 7, one in commit 8.
        let events = [
            position(7, 0, false),
            position(7, 1, false),
            position(7, 2, true),
            position(8, 0, true),
        ];
        assert!(events.windows(2).all(|w| w[0] < w[1]), "{events:?}");
        // Older cursors (plain stream sequences) sort before every commit.
        assert!(7 < events[0]);
        // Part of commit 7 applied: commits up to 6 are done; all of it: 7.
        assert_eq!(applied_through(events[0]), 6);
        assert_eq!(applied_through(events[1]), 6);
        assert_eq!(applied_through(events[2]), 7);
        assert_eq!(applied_through(events[3]), 8);
        assert_eq!(applied_through(0), 0);
        // A commit of more envelopes than places: the last still says done.
        assert_eq!(applied_through(position(9, 70_000, false)), 8);
        assert_eq!(applied_through(position(9, 70_000, true)), 9);
    }
}
