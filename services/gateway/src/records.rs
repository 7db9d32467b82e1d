//! Decision records: the gateway's account of each collection, refusal and
//! disclosure, published to DECISIONS (de-duplicated on the record id) for the
//! audit service to chain into the ledger. Records hold ids, codes and
//! categories, never the envelope's personal fields. Each record carries
//! its trace id, and is published with the trace context of the span it is
//! made in, so the audit service's append joins the envelope's trace.

use crate::refusal::Refusal;
use crate::spool::Spool;
use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use liaison_core::NatsContext as _;
use liaison_core::subjects;
use liaison_core::time::timestamp_now;
use liaison_proto::v1::{AuditRecord, Decision, Envelope, EnvelopeAccepted, Operation, Route};
use liaison_runtime::metrics::{Counter, Gauge};
use prost::Message;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{error, info, warn};

/// Records in one pack at most ([`Recorder::publish_packs`]): a record is
/// ids, codes and categories, well under 2 KiB, so a pack stays far below
/// the server's 1 MiB `max_payload` and fits a ledger block with room
/// (`liaison_audit::chain::HARD_BLOCK_BYTES`). By count, not bytes, so that
/// a commit routed again is packed the same way.
pub const PACK_RECORDS: usize = 128;
/// Records kept for a later attempt at most; past it the oldest is dropped
/// (and counted): the gateway's memory stays bounded while the store is full.
pub const MAX_KEPT: usize = 10_000;
/// Pauses between attempts to store kept records: the first, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_LONGEST: Duration = Duration::from_secs(5);

/// Publishes decision records and waits for JetStream to store each.
///
/// Most records are part of an answer that waits for them (an envelope is
/// accepted only once its collection record is stored). Some record what
/// has already happened whatever the store says — a refusal answered, a
/// policy set taken into force — and must not be lost when the store cannot
/// take them (full, or no leader for a moment): those are [`keep`](Self::keep)ed
/// and stored in the background, in order, once it can (the record id
/// de-duplicates an attempt that was stored but not acknowledged). With a
/// kept-records file ([`crate::spool`]) they also outlive the gateway.
#[derive(Clone)]
pub struct Recorder {
    js: Context,
    subject: String,
    kept: Arc<Kept>,
}

/// Records waiting for the store, and whether a task is storing them.
struct Kept {
    /// The records, and the file that mirrors them (if configured): both
    /// changed under this one lock, so the file holds the queue's order.
    queue: Mutex<Queue>,
    storing: AtomicBool,
    waiting: Gauge,
    dropped: Counter,
}

struct Queue {
    records: VecDeque<AuditRecord>,
    spool: Option<Spool>,
    /// Records appended to the file past which it is rewritten.
    rewrite_at: usize,
}

impl Queue {
    fn new(spool: Option<Spool>) -> Self {
        Self {
            records: VecDeque::new(),
            spool,
            rewrite_at: 2 * MAX_KEPT,
        }
    }

    /// Keeps `record` behind those waiting (dropping the oldest past
    /// [`MAX_KEPT`]; `true` if one was) and mirrors it in the file.
    fn keep(&mut self, record: AuditRecord) -> bool {
        let dropped = self.records.len() >= MAX_KEPT && self.records.pop_front().is_some();
        self.records.push_back(record);
        self.spool_last();
        dropped
    }

    /// Mirrors the record just kept in the file, or rewrites the file with
    /// every record waiting (that one included) once it has grown to
    /// `rewrite_at` records.
    fn spool_last(&mut self) {
        let (Some(spool), Some(record)) = (self.spool.as_mut(), self.records.back()) else {
            return;
        };
        let written = if spool.appended() >= self.rewrite_at {
            spool.rewrite(&self.records)
        } else {
            spool.append(record)
        };
        if let Err(e) = written {
            error!(error = %e, "Kept record not written to disk: it is lost if the gateway stops before the store takes it");
        }
    }

    /// Empties the file once nothing is waiting.
    fn stored_all(&mut self) {
        if let Some(spool) = self.spool.as_mut()
            && let Err(e) = spool.clear()
        {
            error!(error = %e, "Kept records file not emptied: its records will be stored again (once each) at the next start");
        }
    }
}

impl Recorder {
    /// `waiting` and `dropped` report the records kept for later; `spool`
    /// is the kept-records file, if one is configured.
    pub fn new(js: Context, waiting: Gauge, dropped: Counter, spool: Option<Spool>) -> Self {
        Self {
            js,
            subject: subjects::decisions("gateway"),
            kept: Arc::new(Kept {
                queue: Mutex::new(Queue::new(spool)),
                storing: AtomicBool::new(false),
                waiting,
                dropped,
            }),
        }
    }

    /// Stores, in the background and in order, the records a gateway kept
    /// before it stopped (read from the kept-records file), ahead of any
    /// kept from now on.
    pub fn resume(&self, records: Vec<AuditRecord>) {
        if records.is_empty() {
            return;
        }
        let len = {
            let mut queue = lock(&self.kept.queue);
            let newest = records.len().saturating_sub(MAX_KEPT);
            for (i, record) in records.into_iter().enumerate() {
                if i < newest {
                    self.kept.dropped.inc(&[]);
                } else {
                    queue.records.push_back(record);
                }
            }
            queue.records.len()
        };
        info!(
            waiting = len,
            "Records kept before the gateway stopped are being stored"
        );
        self.kept.waiting.set(&[], len as u64);
        if !self.kept.storing.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().store_kept());
        }
    }

    pub async fn publish(&self, record: &AuditRecord) -> Result<(), liaison_core::NatsError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", record.record_id.as_str());
        if let Some(context) = liaison_core::hop::current() {
            liaison_core::trace::inject(&mut headers, &context);
        }
        let ack = self
            .js
            .publish_with_headers(self.subject.clone(), headers, record.encode_to_vec().into())
            .await
            .nats("publish a decision record")?;
        ack.await
            .nats("stored acknowledgement of a decision record")?;
        Ok(())
    }

    /// Publishes `records` (each with the trace context of the span it was
    /// made in) as packs of at most [`PACK_RECORDS`], the `n`th with the
    /// `Nats-Msg-Id` `<id>:<n>`, and waits for JetStream to store them all.
    /// Given the same `id` and records, the packs are the same, so records
    /// published again (a commit routed again after a crash) are stored once.
    pub async fn publish_packs(
        &self,
        id: &str,
        records: &[(AuditRecord, Option<liaison_core::trace::TraceContext>)],
    ) -> Result<(), liaison_core::NatsError> {
        let mut acks = Vec::new();
        for (n, chunk) in records.chunks(PACK_RECORDS).enumerate() {
            let pack = liaison_proto::v1::AuditRecordPack {
                records: chunk
                    .iter()
                    .map(|(record, context)| {
                        let (traceparent, tracestate) =
                            liaison_core::trace::fields(context.as_ref());
                        liaison_proto::v1::PackedRecord {
                            record: record.encode_to_vec(),
                            traceparent,
                            tracestate,
                        }
                    })
                    .collect(),
            };
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{id}:{n}").as_str());
            headers.insert(subjects::RECORD_PACK_HEADER, "1");
            acks.push(
                self.js
                    .publish_with_headers(
                        self.subject.clone(),
                        headers,
                        pack.encode_to_vec().into(),
                    )
                    .await
                    .nats("publish decision records")?,
            );
        }
        for ack in acks {
            ack.await
                .nats("stored acknowledgement of decision records")?;
        }
        Ok(())
    }

    /// Stores `record` now if the store takes it, else keeps it and stores
    /// it in the background. For records of what has already happened.
    pub async fn keep(&self, record: AuditRecord) {
        // Behind records already waiting, so that the ledger keeps their order.
        if self.waiting() == 0 {
            match self.publish(&record).await {
                Ok(()) => return,
                Err(e) => warn!(error = %e, "Record not stored now; kept to store later"),
            }
        }
        let len = {
            let mut queue = lock(&self.kept.queue);
            if queue.keep(record) {
                self.kept.dropped.inc(&[]);
                error!(
                    kept = MAX_KEPT,
                    "Oldest kept record dropped: the store has refused records for too long"
                );
            }
            queue.records.len()
        };
        self.kept.waiting.set(&[], len as u64);
        if !self.kept.storing.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().store_kept());
        }
    }

    /// Records kept and not yet stored.
    pub fn waiting(&self) -> usize {
        lock(&self.kept.queue).records.len()
    }

    /// Stores the kept records in order, pausing longer after each failure,
    /// until none is left.
    async fn store_kept(self) {
        let mut pause = RETRY_FIRST;
        loop {
            let next = lock(&self.kept.queue).records.front().cloned();
            let Some(record) = next else {
                self.kept.storing.store(false, Ordering::Release);
                // One kept just as this task was finishing would wait for
                // the next failure: take it on.
                if self.waiting() > 0 && !self.kept.storing.swap(true, Ordering::AcqRel) {
                    continue;
                }
                return;
            };
            match self.publish(&record).await {
                Ok(()) => {
                    let len = {
                        let mut queue = lock(&self.kept.queue);
                        if queue
                            .records
                            .front()
                            .is_some_and(|r| r.record_id == record.record_id)
                        {
                            queue.records.pop_front();
                        }
                        if queue.records.is_empty() {
                            queue.stored_all();
                        }
                        queue.records.len()
                    };
                    self.kept.waiting.set(&[], len as u64);
                    if len == 0 {
                        info!("Every kept record is stored");
                    }
                    pause = RETRY_FIRST;
                }
                Err(e) => {
                    warn!(error = %e, waiting = self.waiting(), "Kept records still not stored");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RETRY_LONGEST);
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The trace id of the envelope's W3C `traceparent` (at ingress, the one
/// the sender gave), if it is well formed; else that of the span the record
/// is made in, if any.
fn trace_id(traceparent: &str) -> String {
    liaison_core::trace::TraceParent::parse(traceparent)
        .ok()
        .map(|p| p.trace_id_hex())
        .or_else(|| liaison_core::hop::current().map(|c| c.parent.trace_id_hex()))
        .unwrap_or_default()
}

fn from_envelope(envelope: &Envelope) -> AuditRecord {
    AuditRecord {
        purpose: envelope.purpose.clone(),
        legal_basis: envelope.legal_basis.clone(),
        time: Some(timestamp_now()),
        agency: envelope.sender_agency.clone(),
        author: envelope.author.clone(),
        envelope_id: envelope.id.clone(),
        case_id: envelope.case_id.clone(),
        kind: envelope.kind().to_owned(),
        classification: envelope.classification,
        subject_tokens: envelope.subject_tokens(),
        in_reply_to: envelope.in_reply_to.clone(),
        trace_id: trace_id(&envelope.traceparent),
        service: "gateway".into(),
        ..Default::default()
    }
}

/// Collection of an accepted envelope; the id makes a re-send idempotent.
/// The accepted envelope, without copying it.
fn envelope_of(accepted: &EnvelopeAccepted) -> Cow<'_, Envelope> {
    accepted
        .envelope
        .as_ref()
        .map_or_else(|| Cow::Owned(Envelope::default()), Cow::Borrowed)
}

pub fn collection(accepted: &EnvelopeAccepted) -> AuditRecord {
    let envelope = envelope_of(accepted);
    AuditRecord {
        record_id: format!(
            "{}:collection",
            liaison_core::ids::scoped_id(&envelope.sender_agency, &envelope.id)
        ),
        // What the sender did, in s.62's words: an erasure confirmation
        // records an erasure, a correction an alteration.
        operation: match envelope.kind() {
            "erasure_confirmed" => Operation::Erasure,
            "correction" => Operation::Alteration,
            _ => Operation::Collection,
        } as i32,
        decision: Decision::Accepted as i32,
        recipients: accepted
            .routes
            .iter()
            .map(|r| r.recipient.clone())
            .collect(),
        policy_ids: accepted.policy_ids.clone(),
        author: accepted.token_subject.clone(),
        time: accepted.accepted_at,
        ..from_envelope(&envelope)
    }
}

/// Disclosure of one copy to one recipient.
pub fn disclosure(accepted: &EnvelopeAccepted, route: &Route, removed: &[i32]) -> AuditRecord {
    let envelope = envelope_of(accepted);
    AuditRecord {
        record_id: format!(
            "{}:disclosure:{}",
            liaison_core::ids::scoped_id(&envelope.sender_agency, &envelope.id),
            route.recipient
        ),
        operation: Operation::Disclosure as i32,
        decision: Decision::Delivered as i32,
        recipients: vec![route.recipient.clone()],
        policy_ids: route.policy_ids.clone(),
        withheld_labels: removed.to_vec(),
        author: accepted.token_subject.clone(),
        ..from_envelope(&envelope)
    }
}

/// A refusal at ingress. `agency` is the validated sender, if it got that far.
pub fn refusal(
    agency: &str,
    envelope: Option<&Envelope>,
    refusal: &Refusal,
    policy_ids: &[String],
) -> AuditRecord {
    let base = envelope.map(from_envelope).unwrap_or_else(|| AuditRecord {
        time: Some(timestamp_now()),
        service: "gateway".into(),
        ..Default::default()
    });
    AuditRecord {
        record_id: uuid::Uuid::new_v4().to_string(),
        operation: Operation::Collection as i32,
        decision: Decision::Refused as i32,
        code: refusal.code().to_owned(),
        reason: refusal.to_string(),
        agency: agency.to_owned(),
        policy_ids: policy_ids.to_vec(),
        ..base
    }
}

/// An agency consulting the case record (`liaison cases list|show`): who,
/// which case (for one), which cases' subjects it touched. `id` is unique
/// per query.
pub fn consultation(
    id: &str,
    agency: &str,
    author: &str,
    case_id: &str,
    cases: usize,
    subject_tokens: Vec<String>,
) -> AuditRecord {
    AuditRecord {
        record_id: format!("consultation:{id}"),
        operation: Operation::Consultation as i32,
        decision: Decision::Accepted as i32,
        code: "case_query".into(),
        reason: format!("{cases} case(s) returned"),
        agency: agency.to_owned(),
        author: author.to_owned(),
        recipients: vec![agency.to_owned()],
        case_id: case_id.to_owned(),
        kind: "case_query".into(),
        subject_tokens,
        time: Some(timestamp_now()),
        service: "gateway".into(),
        ..Default::default()
    }
}

/// An agency's case query the cases service refused (`code`, `reason`):
/// who asked, and for which case id.
pub fn consultation_refused(
    id: &str,
    agency: &str,
    author: &str,
    case_id: &str,
    code: &str,
    reason: &str,
) -> AuditRecord {
    AuditRecord {
        decision: Decision::Refused as i32,
        code: code.to_owned(),
        reason: reason.to_owned(),
        recipients: vec![],
        ..consultation(id, agency, author, case_id, 0, vec![])
    }
}

/// A change of the policy set in force: `applied` when the new set replaced
/// the old, refused (the old set kept) when it did not load. `id` makes the
/// record unique per change; `reason` says what changed or what was wrong.
pub fn policy_change(id: &str, applied: bool, reason: String) -> AuditRecord {
    AuditRecord {
        record_id: format!("policy:{id}"),
        operation: Operation::PolicyChange as i32,
        decision: if applied {
            Decision::Accepted
        } else {
            Decision::Refused
        } as i32,
        code: if applied {
            "policy_applied"
        } else {
            "policy_invalid"
        }
        .into(),
        reason,
        time: Some(timestamp_now()),
        service: "gateway".into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::{AuditRecord, Queue, Spool};

    #[test]
    fn the_file_holds_every_record_waiting_across_rewrites()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kept-records");
        let (spool, _) = Spool::open(&path)?;
        let mut queue = Queue::new(Some(spool));
        queue.rewrite_at = 3;
        let record = |i: usize| AuditRecord {
            record_id: format!("r{i}"),
            ..Default::default()
        };
        for i in 0..4 {
            queue.keep(record(i));
        }
        // Two stored (as the storing task pops them), then more kept: the
        // file is rewritten on the way, and holds exactly those waiting.
        queue.records.pop_front();
        queue.records.pop_front();
        for i in 4..9 {
            queue.keep(record(i));
        }
        let waiting: Vec<String> = queue.records.iter().map(|r| r.record_id.clone()).collect();
        drop(queue);
        let (_, found) = Spool::open(&path)?;
        let found: Vec<String> = found.into_iter().map(|r| r.record_id).collect();
        // Records stored may still be in the file (stored again, chained once);
        // every record waiting is, in order, and nothing else is new.
        assert!(
            found.ends_with(&waiting),
            "{found:?} should end with {waiting:?}"
        );
        assert!(found.len() <= waiting.len() + 2, "{found:?}");
        Ok(())
    }

    #[test]
    fn trace_ids_are_taken_only_from_well_formed_traceparents() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(super::trace_id(tp), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(super::trace_id("00-Robert Smith-x-01"), "");
        assert_eq!(super::trace_id(""), "");
    }
}
