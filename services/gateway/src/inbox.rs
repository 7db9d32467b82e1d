//! Agencies' inboxes, read through the gateway
//! (docs/decisions/0019-delivery-at-national-size.md). An inbox is a subject
//! of DELIVERY, `liaison.deliver.<agency>.>`, whose copies are numbered 1,
//! 2, 3 … ([`crate::sequencer`]); what the agency has acknowledged is its
//! **position** in the KV bucket INBOX. There is no object per agency on the
//! server: 25,000 idle schools cost nothing but the keys of those that ever
//! acknowledged something.
//!
//! - **Next** (`liaison.ingress.<agency>.inbox.next` over NATS, `GET
//!   /v1/inbox` over HTTPS): copies after the position are read with
//!   batched direct gets, those acknowledged ahead of it or handed out less
//!   than `streams.ack_wait_secs` ago skipped, and handed out with an ack
//!   id. A read that finds nothing waits (up to 30 s) for a copy to arrive.
//! - **Ack** (`….inbox.ack`, `POST /v1/inbox/ack`): each ack id is checked
//!   to be a copy of *this* agency's inbox, then the position is advanced by
//!   compare-and-set on the key's revision (two gateways never lose each
//!   other's acknowledgements). A copy acknowledged is never handed out
//!   again. A `nak` hands copies back (now, or after a delay).
//!
//! Copies handed out and not acknowledged in time are handed out again, as
//! is everything above the position after a gateway restarts (what is handed
//! out lives in this process's memory): at-least-once, de-duplicated by the
//! agency on the envelope id, as the wire contract says.

use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::Delivery;
use liaison_runtime::direct;
use liaison_runtime::inbox::{self, Position};
use liaison_runtime::seal::SealError;
use prost::Message as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::{debug, error, warn};

/// Most copies handed out by one read.
pub const MAX_BATCH: usize = 256;
/// Most ack ids in one acknowledgement.
pub const MAX_ACKS: usize = 1000;
/// Longest a read waits for the first copy.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most copies acknowledged ahead of the position that a position keeps.
const MAX_AHEAD: usize = 20_000;
/// Most copies a read looks at (skipping those handed out or acknowledged).
const MAX_SCAN: usize = 4_096;
/// How long one direct get may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting read looks again without being woken (a copy stored
/// by another gateway does not wake this one).
const POLL: Duration = Duration::from_millis(500);
/// Times a position is written again after another gateway wrote it first.
const CAS_ATTEMPTS: usize = 16;

/// Why an inbox request was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    #[error("{0}")]
    InvalidAckId(String),
    #[error("{0}")]
    Malformed(String),
    #[error("the inbox is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Suspended(crate::refusal::Refusal),
}

impl InboxError {
    /// The refusal code, as in a verdict.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidAckId(_) => "invalid_ack_id",
            Self::Malformed(_) => "malformed",
            Self::Unavailable(_) => "unavailable",
            Self::Suspended(_) => "agency_suspended",
        }
    }
}

/// One copy handed out, not yet acknowledged.
#[derive(Debug, Clone)]
pub struct Handout {
    pub delivery: Delivery,
    pub recipient_seq: u64,
    pub ack_id: String,
    pub delivery_count: u32,
    pub traceparent: String,
    pub tracestate: String,
}

/// A copy handed out by this gateway.
#[derive(Debug, Clone, Copy)]
struct Out {
    stream_seq: u64,
    until: Instant,
    count: u32,
}

/// What this gateway has handed out of one inbox, by number.
#[derive(Debug, Default)]
struct Local {
    out: BTreeMap<u64, Out>,
    /// Acknowledged, not yet written to INBOX (the store refused it: full,
    /// or no leader): applied to every read here, written at the next
    /// chance ([`Inboxes::flush`]).
    unwritten: BTreeMap<u64, u64>,
}

/// Every agency's inbox, as this gateway serves it.
pub struct Inboxes {
    client: async_nats::Client,
    /// Opens the sealed copies (ADR 0022).
    keys: liaison_runtime::seal::Keyring,
    positions: async_nats::jetstream::kv::Store,
    ack_wait: Duration,
    local: Mutex<HashMap<AgencyId, Arc<tokio::sync::Mutex<Local>>>>,
    wakers: Mutex<HashMap<AgencyId, Arc<Notify>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// `<number>-<stream sequence>`.
fn ack_id(number: u64, stream_seq: u64) -> String {
    format!("{number}-{stream_seq}")
}

fn parse_ack_id(agency: &AgencyId, ack_id: &str) -> Result<(u64, u64), InboxError> {
    let bad = || {
        InboxError::InvalidAckId(format!(
            "{:?} is not an ack id of {agency}'s inbox",
            ack_id.chars().take(32).collect::<String>()
        ))
    };
    let number = |t: &str| {
        (!t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u64>().ok())
            .flatten()
            .filter(|n| *n > 0)
    };
    let (n, s) = ack_id.split_once('-').ok_or_else(bad)?;
    Ok((number(n).ok_or_else(bad)?, number(s).ok_or_else(bad)?))
}

impl Inboxes {
    /// Binds to the INBOX bucket.
    pub async fn open(
        client: &async_nats::Client,
        keys: liaison_runtime::seal::Keyring,
        ack_wait: Duration,
    ) -> Result<Self, liaison_core::NatsError> {
        use liaison_core::NatsContext as _;
        let positions = async_nats::jetstream::new(client.clone())
            .get_key_value(subjects::INBOX_BUCKET)
            .await
            .nats(format!("KV bucket {}", subjects::INBOX_BUCKET))?;
        Ok(Self {
            client: client.clone(),
            keys,
            positions,
            ack_wait,
            local: Mutex::new(HashMap::new()),
            wakers: Mutex::new(HashMap::new()),
        })
    }

    /// The agencies that have read their inbox through this gateway since
    /// it started.
    pub fn agencies(&self) -> Vec<AgencyId> {
        lock(&self.local).keys().cloned().collect()
    }

    fn local(&self, agency: &AgencyId) -> Arc<tokio::sync::Mutex<Local>> {
        lock(&self.local).entry(agency.clone()).or_default().clone()
    }

    fn waker(&self, agency: &AgencyId) -> Arc<Notify> {
        lock(&self.wakers)
            .entry(agency.clone())
            .or_default()
            .clone()
    }

    /// A copy was stored in `agency`'s inbox: wake a read waiting for one.
    pub fn wake(&self, agency: &AgencyId) {
        if let Some(waker) = lock(&self.wakers).get(agency) {
            waker.notify_waiters();
        }
    }

    /// `agency`'s position and the revision it was read at (0: none yet).
    pub async fn position(&self, agency: &AgencyId) -> Result<(Position, u64), InboxError> {
        let entry = self
            .positions
            .entry(agency.as_str())
            .await
            .map_err(|e| InboxError::Unavailable(format!("the inbox position: {e}")))?;
        match entry {
            Some(entry) if !entry.value.is_empty() => {
                let position = serde_json::from_slice(&entry.value).map_err(|e| {
                    InboxError::Unavailable(format!("an unreadable inbox position: {e}"))
                })?;
                Ok((position, entry.revision))
            }
            Some(entry) => Ok((Position::default(), entry.revision)),
            None => Ok((Position::default(), 0)),
        }
    }

    /// Hands out up to `max` copies (and about `max_bytes`), waiting up to
    /// `wait` for the first.
    pub async fn next(
        &self,
        agency: &AgencyId,
        max: usize,
        wait: Duration,
        max_bytes: usize,
    ) -> Result<Vec<Handout>, InboxError> {
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        let waker = self.waker(agency);
        loop {
            let woken = waker.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let (out, soonest) = self
                .take(agency, max.clamp(1, MAX_BATCH), max_bytes)
                .await?;
            let now = Instant::now();
            if !out.is_empty() || now >= deadline {
                return Ok(out);
            }
            let until = soonest
                .map_or(deadline, |s| s.min(deadline))
                .min(now + POLL);
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }

    /// One look at the inbox: the copies handed out, and when the soonest
    /// copy handed out earlier may be handed out again.
    async fn take(
        &self,
        agency: &AgencyId,
        max: usize,
        max_bytes: usize,
    ) -> Result<(Vec<Handout>, Option<Instant>), InboxError> {
        let (mut position, _) = self.position(agency).await?;
        let local = self.local(agency);
        let mut local = local.lock().await;
        position.take(local.unwritten.iter().map(|(n, s)| (*n, *s)));
        local.out.retain(|n, _| !position.acknowledged(*n));
        let filter = subjects::delivery_filter(agency);
        // From the pack holding the last copy acknowledged in a run: the
        // rest of that pack may be waiting (ADR 0024).
        let mut from = position.through_stream_seq.max(1);
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut scanned = 0;
        let now = Instant::now();
        'read: while scanned < MAX_SCAN {
            let ask = (max * 2).clamp(16, direct::MAX_BATCH);
            let stored = direct::next_batch(
                &self.client,
                subjects::DELIVERY_STREAM,
                &filter,
                from,
                ask,
                max_bytes.max(1),
                READ_TIMEOUT,
            )
            .await
            .map_err(|e| InboxError::Unavailable(e.to_string()))?;
            let ended = stored.len() < ask;
            for message in stored {
                from = message.sequence + 1;
                let (first, count) = inbox::numbers(&message.headers);
                if first == 0 {
                    // Stored before numbering began (ADR 0019): not served.
                    continue;
                }
                let waiting = (first..first + count).any(|number| {
                    !position.acknowledged(number)
                        && local.out.get(&number).is_none_or(|o| o.until <= now)
                });
                if !waiting {
                    scanned += 1;
                    continue;
                }
                let copies = match inbox::copies(&message.payload) {
                    Ok(copies) if copies.len() as u64 == count => copies,
                    Ok(copies) => {
                        error!(agency = %agency, stream_seq = message.sequence, count,
                            held = copies.len(), "A pack of copies not as numbered, skipped");
                        continue;
                    }
                    Err(e) => {
                        // Only the gateway writes DELIVERY: a bug, not the agency's doing.
                        error!(agency = %agency, stream_seq = message.sequence, error = %e,
                            "Unreadable pack of copies skipped");
                        continue;
                    }
                };
                for (number, packed) in (first..).zip(copies) {
                    scanned += 1;
                    if position.acknowledged(number)
                        || local.out.get(&number).is_some_and(|o| o.until > now)
                    {
                        continue;
                    }
                    let opened = match self
                        .keys
                        .open(
                            &subjects::copy_sealed_to(agency, &packed.scoped_id),
                            &packed.copy,
                        )
                        .await
                    {
                        Ok((_, plain)) => {
                            Delivery::decode(plain.as_slice()).map_err(|e| e.to_string())
                        }
                        Err(SealError::Erased(_)) => {
                            // Erased (its subject, or its retention ended):
                            // there is nothing left to hand out; it counts as read.
                            local.unwritten.insert(number, message.sequence);
                            position.take([(number, message.sequence)]);
                            continue;
                        }
                        Err(e @ SealError::Corrupt(_)) => Err(e.to_string()),
                        Err(e) => return Err(InboxError::Unavailable(e.to_string())),
                    };
                    let delivery = match opened {
                        Ok(delivery) => delivery,
                        Err(e) => {
                            // Only the gateway writes DELIVERY: a bug, not the agency's doing.
                            error!(agency = %agency, stream_seq = message.sequence, number,
                                error = %e, "Unopenable copy skipped");
                            continue;
                        }
                    };
                    let count = local.out.get(&number).map_or(0, |o| o.count) + 1;
                    local.out.insert(
                        number,
                        Out {
                            stream_seq: message.sequence,
                            until: now + self.ack_wait,
                            count,
                        },
                    );
                    bytes += packed.copy.len();
                    out.push(Handout {
                        delivery,
                        recipient_seq: number,
                        ack_id: ack_id(number, message.sequence),
                        delivery_count: count,
                        traceparent: packed.traceparent,
                        tracestate: packed.tracestate,
                    });
                    if out.len() >= max || bytes >= max_bytes {
                        break 'read;
                    }
                }
            }
            if ended {
                break;
            }
        }
        let soonest = local
            .out
            .values()
            .map(|o| o.until)
            .filter(|u| *u > now)
            .min();
        Ok((out, soonest))
    }

    /// Acknowledges the copies named by `ack_ids` (every id checked before
    /// any is taken); returns how many. Once answered, this gateway never
    /// hands them out again; the position is written to INBOX at once, or,
    /// if the store refuses it (full, no leader), kept here and written at
    /// the next chance — until then a restart hands them out again, which
    /// the agency's de-duplication on envelope ids absorbs.
    pub async fn ack(&self, agency: &AgencyId, ack_ids: &[String]) -> Result<usize, InboxError> {
        if ack_ids.len() > MAX_ACKS {
            return Err(InboxError::Malformed(format!(
                "{} ack ids in one acknowledgement: at most {MAX_ACKS}",
                ack_ids.len()
            )));
        }
        let mut acked = Vec::with_capacity(ack_ids.len());
        for id in ack_ids {
            acked.push(self.check(agency, id).await?);
        }
        {
            let local = self.local(agency);
            let mut local = local.lock().await;
            for (number, stream_seq) in &acked {
                local.out.remove(number);
                local.unwritten.insert(*number, *stream_seq);
            }
        }
        match self.write_position(agency).await {
            Ok(()) => {}
            Err(e @ InboxError::Malformed(_)) => {
                let local = self.local(agency);
                let mut local = local.lock().await;
                for (number, _) in &acked {
                    local.unwritten.remove(number);
                }
                return Err(e);
            }
            Err(e) => {
                warn!(agency = %agency, error = %e,
                    "Inbox acknowledgement kept in memory until the store takes it");
            }
        }
        Ok(acked.len())
    }

    /// Writes the acknowledgements kept in memory (the store refused them
    /// earlier); called every few seconds.
    pub async fn flush(&self) {
        let waiting: Vec<AgencyId> = {
            let locals: Vec<(AgencyId, Arc<tokio::sync::Mutex<Local>>)> = lock(&self.local)
                .iter()
                .map(|(a, l)| (a.clone(), l.clone()))
                .collect();
            let mut waiting = Vec::new();
            for (agency, local) in locals {
                if !local.lock().await.unwritten.is_empty() {
                    waiting.push(agency);
                }
            }
            waiting
        };
        for agency in waiting {
            if let Err(e) = self.write_position(&agency).await {
                debug!(agency = %agency, error = %e, "Inbox acknowledgements still not written");
            }
        }
    }

    /// Writes the acknowledgements kept in memory for `agency` into its
    /// position, by compare-and-set on the key's revision.
    async fn write_position(&self, agency: &AgencyId) -> Result<(), InboxError> {
        let unwritten: Vec<(u64, u64)> = {
            let local = self.local(agency);
            let local = local.lock().await;
            local.unwritten.iter().map(|(n, s)| (*n, *s)).collect()
        };
        if unwritten.is_empty() {
            return Ok(());
        }
        for _ in 0..CAS_ATTEMPTS {
            let (mut position, revision) = self.position(agency).await?;
            let before = position.clone();
            position.take(unwritten.iter().copied());
            self.close_holes(agency, &mut position).await?;
            if position.ahead.len() > MAX_AHEAD {
                return Err(InboxError::Malformed(format!(
                    "more than {MAX_AHEAD} copies acknowledged ahead of copy {}, which is \
                     not acknowledged: acknowledge it first",
                    position.through + 1
                )));
            }
            let written = if position == before {
                Ok(())
            } else {
                let value = serde_json::to_vec(&position)
                    .map_err(|e| InboxError::Unavailable(e.to_string()))?;
                // Revision 0 means "no position yet": JetStream's expected
                // last subject sequence 0, so a first write races like any.
                self.positions
                    .update(agency.as_str(), value.into(), revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        matches!(
                            e.kind(),
                            async_nats::jetstream::kv::UpdateErrorKind::WrongLastRevision
                        )
                        .then_some(())
                        .ok_or_else(|| e.to_string())
                    })
            };
            match written {
                Ok(()) => {
                    let local = self.local(agency);
                    let mut local = local.lock().await;
                    for (number, _) in &unwritten {
                        local.unwritten.remove(number);
                    }
                    return Ok(());
                }
                // Another gateway wrote it first: read it again and redo.
                Err(Ok(())) => continue,
                Err(Err(e)) => {
                    return Err(InboxError::Unavailable(format!("the inbox position: {e}")));
                }
            }
        }
        Err(InboxError::Unavailable(format!(
            "the inbox position kept changing over {CAS_ATTEMPTS} attempts"
        )))
    }

    /// Hands the copies named back, to be handed out again after `delay`.
    pub async fn nak(
        &self,
        agency: &AgencyId,
        ack_ids: &[String],
        delay: Duration,
    ) -> Result<usize, InboxError> {
        let parsed: Vec<(u64, u64)> = ack_ids
            .iter()
            .map(|id| parse_ack_id(agency, id))
            .collect::<Result<_, _>>()?;
        let local = self.local(agency);
        let mut local = local.lock().await;
        let until = Instant::now() + delay;
        let mut count = 0;
        for (number, _) in parsed {
            if let Some(out) = local.out.get_mut(&number) {
                out.until = until;
                count += 1;
            }
        }
        Ok(count)
    }

    /// The (number, stream sequence) an ack id names, checked to be a copy
    /// of `agency`'s inbox: handed out by this gateway, or read back from
    /// DELIVERY (handed out by another, or before a restart).
    async fn check(&self, agency: &AgencyId, id: &str) -> Result<(u64, u64), InboxError> {
        let (number, stream_seq) = parse_ack_id(agency, id)?;
        let handed = {
            let local = self.local(agency);
            let local = local.lock().await;
            local.out.get(&number).map(|o| o.stream_seq)
        };
        if handed == Some(stream_seq) {
            return Ok((number, stream_seq));
        }
        let stored = direct::next_batch(
            &self.client,
            subjects::DELIVERY_STREAM,
            &subjects::delivery_filter(agency),
            stream_seq,
            1,
            1,
            READ_TIMEOUT,
        )
        .await
        .map_err(|e| InboxError::Unavailable(e.to_string()))?;
        let matches = stored.first().is_some_and(|m| {
            let (first, count) = inbox::numbers(&m.headers);
            m.sequence == stream_seq && first > 0 && (first..first + count).contains(&number)
        });
        if matches {
            Ok((number, stream_seq))
        } else {
            Err(InboxError::InvalidAckId(format!(
                "{id:?} names no copy in {agency}'s inbox (or one no longer kept)"
            )))
        }
    }

    /// Moves `through` over numbers that no longer exist in the stream
    /// (expired with `streams.delivery_max_age_days`, or deleted): when the
    /// first pack after the one holding `through` is one holding a copy
    /// acknowledged ahead, and starts above `through + 1`, the numbers
    /// between are gone.
    async fn close_holes(
        &self,
        agency: &AgencyId,
        position: &mut Position,
    ) -> Result<(), InboxError> {
        for _ in 0..64 {
            let Some((_, &ahead_seq)) = position.ahead.iter().next() else {
                return Ok(());
            };
            let mut from = position.through_stream_seq.max(1);
            let found = loop {
                let next = direct::next_batch(
                    &self.client,
                    subjects::DELIVERY_STREAM,
                    &subjects::delivery_filter(agency),
                    from,
                    1,
                    1,
                    READ_TIMEOUT,
                )
                .await
                .map_err(|e| InboxError::Unavailable(e.to_string()))?;
                let Some(message) = next.into_iter().next() else {
                    return Ok(());
                };
                let (first, count) = inbox::numbers(&message.headers);
                if first + count <= position.through + 1 {
                    // The pack holding `through` (or one before it).
                    from = message.sequence + 1;
                    continue;
                }
                break (message.sequence, first);
            };
            let (stream_seq, first) = found;
            if stream_seq != ahead_seq || first <= position.through + 1 {
                return Ok(());
            }
            position.through = first - 1;
            position.through_stream_seq = stream_seq;
            position.take([]);
        }
        Ok(())
    }
}

/// Largest inbox request read (before decoding): a thousand ack ids.
const MAX_REQUEST_BYTES: usize = 128 * 1024;
/// Room left in an answer for its framing, under the server's `max_payload`.
const ANSWER_HEADROOM: usize = 64 * 1024;

/// Answers one inbox request over NATS (`liaison.ingress.<agency>.inbox.next`
/// or `.ack`): the agency is the one in the subject, which only its own NATS
/// user may publish on.
pub async fn answer(
    shared: &crate::Shared,
    op: subjects::InboxOp,
    message: async_nats::Message,
    shutdown: &tokio_util::sync::CancellationToken,
) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    let agency = if message.payload.len() > MAX_REQUEST_BYTES {
        Err(InboxError::Malformed(format!(
            "the request is {} bytes, more than the {MAX_REQUEST_BYTES} allowed",
            message.payload.len()
        )))
    } else {
        subjects::agency_of_ingress(&message.subject)
            .map_err(|e| InboxError::Malformed(format!("the agency in the subject: {e}")))
    };
    let answer = match op {
        subjects::InboxOp::Next => {
            let handed = match &agency {
                Ok(agency) => read(shared, agency, &message.payload, shutdown).await,
                Err(e) => Err(e.clone()),
            };
            copies_answer(agency.as_ref().ok(), handed)
        }
        subjects::InboxOp::Ack => {
            let acked = match &agency {
                Ok(agency) => acknowledge(shared, agency, &message.payload).await,
                Err(e) => Err(e.clone()),
            };
            acked_answer(agency.as_ref().ok(), acked)
        }
    };
    if let Err(e) = shared.client.publish(reply, answer.into()).await {
        tracing::warn!(error = %e, "Inbox answer not sent");
    }
}

/// A suspended agency's copies are held: not handed out, not acknowledged.
fn held(shared: &crate::Shared, agency: &AgencyId) -> Result<(), InboxError> {
    shared
        .membership
        .check(agency)
        .map_err(InboxError::Suspended)
}

/// An `InboxRead`: copies handed out, waiting as it asks.
async fn read(
    shared: &crate::Shared,
    agency: &AgencyId,
    payload: &[u8],
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Vec<Handout>, InboxError> {
    held(shared, agency)?;
    let request = liaison_proto::v1::InboxRead::decode(payload)
        .map_err(|e| InboxError::Malformed(format!("not a liaison.v1.InboxRead: {e}")))?;
    let max = (request.max as usize).max(1);
    if max > MAX_BATCH {
        return Err(InboxError::Malformed(format!(
            "max is {max}: at most {MAX_BATCH}"
        )));
    }
    let wait = Duration::from_millis(request.wait_ms.into());
    if wait > MAX_WAIT {
        return Err(InboxError::Malformed(format!(
            "wait_ms is {}: at most {}",
            request.wait_ms,
            MAX_WAIT.as_millis()
        )));
    }
    let max_bytes = shared
        .client
        .server_info()
        .max_payload
        .saturating_sub(ANSWER_HEADROOM)
        .max(1);
    tokio::select! {
        handed = shared.inboxes.next(agency, max, wait, max_bytes) => handed,
        () = shutdown.cancelled() => {
            Err(InboxError::Unavailable("the gateway is stopping".to_owned()))
        }
    }
}

/// An `InboxAck`: copies acknowledged, or handed back.
async fn acknowledge(
    shared: &crate::Shared,
    agency: &AgencyId,
    payload: &[u8],
) -> Result<usize, InboxError> {
    held(shared, agency)?;
    let request = liaison_proto::v1::InboxAck::decode(payload)
        .map_err(|e| InboxError::Malformed(format!("not a liaison.v1.InboxAck: {e}")))?;
    if request.nak {
        let delay = Duration::from_millis(request.delay_ms.into()).min(MAX_WAIT * 20);
        shared.inboxes.nak(agency, &request.ack_ids, delay).await
    } else {
        shared.inboxes.ack(agency, &request.ack_ids).await
    }
}

/// A refusal logged (by code, never content) as the agency's, if known.
fn refused(agency: Option<&AgencyId>, what: &str, e: InboxError) -> (String, String) {
    tracing::info!(
        agency = agency.map_or("", AgencyId::as_str),
        code = e.code(),
        "{what} refused"
    );
    (e.code().to_owned(), e.to_string())
}

fn copies_answer(agency: Option<&AgencyId>, handed: Result<Vec<Handout>, InboxError>) -> Vec<u8> {
    let answer = match handed {
        Ok(handed) => liaison_proto::v1::InboxCopies {
            copies: handed
                .into_iter()
                .map(|h| liaison_proto::v1::InboxCopy {
                    delivery: Some(h.delivery),
                    recipient_seq: h.recipient_seq,
                    ack_id: h.ack_id,
                    delivery_count: h.delivery_count,
                    traceparent: h.traceparent,
                    tracestate: h.tracestate,
                })
                .collect(),
            ..Default::default()
        },
        Err(e) => {
            let (code, reason) = refused(agency, "Inbox read", e);
            liaison_proto::v1::InboxCopies {
                code,
                reason,
                copies: vec![],
            }
        }
    };
    answer.encode_to_vec()
}

fn acked_answer(agency: Option<&AgencyId>, acked: Result<usize, InboxError>) -> Vec<u8> {
    let answer = match acked {
        Ok(count) => liaison_proto::v1::InboxAcked {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            ..Default::default()
        },
        Err(e) => {
            let (code, reason) = refused(agency, "Inbox acknowledgement", e);
            liaison_proto::v1::InboxAcked {
                code,
                reason,
                count: 0,
            }
        }
    };
    answer.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn police() -> AgencyId {
        AgencyId::parse("police").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn ack_ids_are_two_positive_numbers_and_nothing_else() {
        assert_eq!(parse_ack_id(&police(), &ack_id(3, 1042)), Ok((3, 1042)));
        for bad in [
            "",
            "3",
            "3-",
            "-4",
            "0-4",
            "3-0",
            "3-4-5",
            "a-4",
            "3-4x",
            "+3-4",
            " 3-4",
            "99999999999999999999999-1",
            "$JS.ACK.DELIVERY.deliver-police.1.42.7.1763900000000000000.3",
            "\u{1F600}",
        ] {
            assert!(
                matches!(
                    parse_ack_id(&police(), bad),
                    Err(InboxError::InvalidAckId(_))
                ),
                "{bad:?}"
            );
        }
        let long = "1".repeat(10_000);
        assert!(parse_ack_id(&police(), &format!("{long}-{long}")).is_err());
    }
}
