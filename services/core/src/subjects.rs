//! Every NATS subject, stream and consumer name Liaison uses, and the only
//! functions that build subjects. Subjects are built from validated ids only.
//!
//! | subject | who publishes | stream |
//! |---|---|---|
//! | `liaison.ingress.<agency>.envelope` | the agency (request/reply) | — |
//! | `liaison.ingress.<agency>.query` | the agency: case queries (request/reply) | — |
//! | `liaison.internal.<service>.envelope` | a Liaison service: its own events (request/reply) | — |
//! | `liaison.cases.query` | gateway, for an authenticated agency (request/reply) | — |
//! | `liaison.commits` | gateway: group commits of accepted envelopes | EVENTS |
//! | `liaison.deliver.<agency>.copies` | gateway: packs of copies for an inbox | DELIVERY |
//! | `liaison.decisions.<service>` | gateway, other services | DECISIONS |
//! | `liaison.ledger.entries` | audit (single writer) | LEDGER |
//! | `liaison.ledger.checkpoints` | audit | CHECKPOINTS |
//! | `liaison.audit.checkpoint` | auditors (request/reply) | — |
//! | `liaison.audit.consult` | auditors (request/reply) | — |
//! | `liaison.status.<service>` | the operator: a service's status endpoint (request/reply) | — |
//! | `$SRV.<verb>[.<name>[.<id>]]` | the operator: NATS service discovery (`PING`, `INFO`, `STATS`) | — |

use crate::ids::{AgencyId, IdError};

pub const EVENTS_STREAM: &str = "EVENTS";
pub const DELIVERY_STREAM: &str = "DELIVERY";
pub const DECISIONS_STREAM: &str = "DECISIONS";
pub const LEDGER_STREAM: &str = "LEDGER";
pub const CHECKPOINTS_STREAM: &str = "CHECKPOINTS";

pub const INGRESS_ALL: &str = "liaison.ingress.>";
pub const INTERNAL_ALL: &str = "liaison.internal.>";
/// Request/reply: the gateway asks the cases service on an agency's behalf.
pub const CASES_QUERY: &str = "liaison.cases.query";
/// EVENTS' one subject: group commits (`liaison.v1.Commit`), each the
/// envelopes one gateway accepted together, every one sealed whole beside
/// its fact (the envelope without its labelled fields, all Liaison's other
/// services may read: docs/decisions/0021-a-rogue-agency-gets-nothing.md,
/// 0024-group-commit.md).
pub const COMMITS: &str = "liaison.commits";
pub const DELIVERY_ALL: &str = "liaison.deliver.>";
pub const DECISIONS_ALL: &str = "liaison.decisions.>";
pub const LEDGER_ENTRIES: &str = "liaison.ledger.entries";
/// Signed checkpoints of the ledger (C2SP signed notes).
pub const LEDGER_CHECKPOINTS: &str = "liaison.ledger.checkpoints";
/// Request/reply: ask the audit service for a checkpoint of the ledger now.
pub const CHECKPOINT_REQUEST: &str = "liaison.audit.checkpoint";

/// `liaison bench`'s raw baselines, on its own nats-server only: core
/// pub/sub, and JetStream publishes to their own stream.
pub const BENCH_CORE: &str = "bench.core";
pub const BENCH_RAW: &str = "bench.raw";
pub const BENCH_RAW_STREAM: &str = "BENCH_RAW";
/// The raw baseline of the pipeline's hops: a request answered once its
/// payload is stored in one stream, relayed by a consumer to a second
/// stream, read from there.
pub const BENCH_HOP_REQUEST: &str = "bench.hop.request";
pub const BENCH_HOP_STORED: &str = "bench.hop.stored";
pub const BENCH_HOP_STORED_STREAM: &str = "BENCH_HOP_STORED";
pub const BENCH_HOP_RELAYED: &str = "bench.hop.relayed";
pub const BENCH_HOP_RELAYED_STREAM: &str = "BENCH_HOP_RELAYED";
/// Request/reply: an auditor states who they are and why before reading the ledger.
pub const CONSULT_REQUEST: &str = "liaison.audit.consult";
/// Request/reply: an auditor whose consultation was granted asks for a
/// consumer on LEDGER (auditors cannot create their own).
pub const READ_REQUEST: &str = "liaison.audit.read";
/// Where an auditor with a scope asks the audit service for the records of
/// a granted consultation within it (`liaison_audit::scoped`).
pub const RECORDS_REQUEST: &str = "liaison.audit.records";
/// Prefix of the consumers the audit service creates for auditors.
pub const GRANT_CONSUMER_PREFIX: &str = "grant-";

/// Prefix of the NATS service API (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`).
pub const SERVICE_API: &str = "$SRV";

/// Queue group the gateways share for ingress.
pub const GATEWAY_QUEUE: &str = "gateway";
/// Durable consumer on EVENTS that routes accepted envelopes to recipients.
pub const ROUTER_CONSUMER: &str = "gateway-router";
/// Durable consumer on DECISIONS that appends to the ledger.
pub const LEDGER_WRITER_CONSUMER: &str = "audit-ledger";

/// The JetStream domain of a Liaison cluster. An agency site's leaf node
/// (no JetStream of its own) sends its systems' JetStream API requests into
/// this domain (`$JS.liaison.API.…`): nats-server carries the plain
/// `$JS.API.…` across a leaf-node connection for no one.
pub const JETSTREAM_DOMAIN: &str = "liaison";

/// A JetStream API subject (`$JS.API.…`) as a leaf node sends it into
/// [`JETSTREAM_DOMAIN`]; other subjects are returned unchanged.
pub fn in_domain(api_subject: &str) -> String {
    match api_subject.strip_prefix("$JS.API.") {
        Some(rest) => format!("$JS.{JETSTREAM_DOMAIN}.API.{rest}"),
        None => api_subject.to_owned(),
    }
}

/// Where named operators change membership (suspend, resume an agency),
/// answered by the gateways.
pub const ADMIN_AGENCIES: &str = "liaison.admin.agencies";

/// Where operators ask the gateways how far agencies' inboxes are read
/// (`liaison status`, the console): the gateway may read DELIVERY, the
/// operator may not (docs/decisions/0021-a-rogue-agency-gets-nothing.md).
pub const ADMIN_INBOXES: &str = "liaison.admin.inboxes";

/// Operators' requests on a subject's data: restrict, unrestrict, erase
/// (DPA 2018 ss.47–48; `liaison subject …`).
pub const ADMIN_SUBJECTS: &str = "liaison.admin.subjects";

/// Every operators' request to the gateways.
pub const ADMIN_ALL: &str = "liaison.admin.*";

/// Where nats-server asks the auth callout (the gateway) about each new
/// connection that is not a service's: an agency logging in with its NKey
/// (docs/decisions/0020-live-membership.md).
pub const AUTH_CALLOUT: &str = "$SYS.REQ.USER.AUTH";

/// Header carrying the agency's signed JWT on ingress.
pub const TOKEN_HEADER: &str = "Liaison-Token";

const INGRESS_PREFIX: &str = "liaison.ingress.";
const INTERNAL_PREFIX: &str = "liaison.internal.";

/// Where a Liaison service sends its own events, through the gateway.
pub fn internal(service: crate::system::Service) -> String {
    format!("{INTERNAL_PREFIX}{}.envelope", service.name())
}

/// The service an internal subject belongs to, if it is one.
pub fn service_of_internal(subject: &str) -> Option<crate::system::Service> {
    let rest = subject.strip_prefix(INTERNAL_PREFIX)?;
    let (name, tail) = rest.split_once('.')?;
    (tail == "envelope")
        .then(|| crate::system::Service::of_name(name))
        .flatten()
}

/// Where an agency asks about its cases (through the gateway).
pub fn ingress_query(agency: &AgencyId) -> String {
    format!("{INGRESS_PREFIX}{agency}.query")
}

/// Whether an ingress subject is a case query rather than an envelope.
pub fn is_ingress_query(subject: &str) -> bool {
    subject.ends_with(".query") && inbox_op(subject).is_none()
}

/// Where an agency sends envelopes.
pub fn ingress(agency: &AgencyId) -> String {
    format!("{INGRESS_PREFIX}{agency}.envelope")
}

/// Publish permission pattern for an agency's ingress.
pub fn ingress_of(agency: &AgencyId) -> String {
    format!("{INGRESS_PREFIX}{agency}.>")
}

/// The agency an ingress subject belongs to, validated.
pub fn agency_of_ingress(subject: &str) -> Result<AgencyId, IdError> {
    AgencyId::parse(ingress_agency_part(subject))
}

/// The agency token of an ingress subject, not yet validated ("" if none).
pub fn ingress_agency_part(subject: &str) -> &str {
    subject
        .strip_prefix(INGRESS_PREFIX)
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_default()
}

/// What an accepted envelope is sealed to in a commit (its associated
/// data): the commit subject and the envelope's scoped id, so that a sealed
/// event moved to another entry does not open.
pub fn committed(scoped_id: &str) -> String {
    format!("{COMMITS}/{scoped_id}")
}

/// Subject of a pack of copies in `agency`'s inbox (ADR 0024).
pub fn copies(agency: &AgencyId) -> String {
    format!("liaison.deliver.{agency}.copies")
}

/// What a copy in `agency`'s inbox is sealed to (its associated data):
/// the inbox and the envelope it is a copy of.
pub fn copy_sealed_to(agency: &AgencyId, scoped_id: &str) -> String {
    format!("liaison.deliver.{agency}/{scoped_id}")
}

/// Header of a DELIVERY message: how many copies its pack holds (numbered
/// from its [`RECIPIENT_SEQ_HEADER`] on).
pub const COPIES_HEADER: &str = "Liaison-Copies";

/// An agency's inbox: every copy for it in DELIVERY, whatever its kind.
pub fn delivery_filter(agency: &AgencyId) -> String {
    format!("liaison.deliver.{agency}.>")
}

/// The header of a copy in DELIVERY that carries its number in its
/// recipient's inbox: 1, 2, 3 … per agency, no gap, no repeat.
pub const RECIPIENT_SEQ_HEADER: &str = "Liaison-Recipient-Seq";

/// Header of a DECISIONS message that is a `liaison.v1.AuditRecordPack`
/// (several records, each chained as if published alone: ADR 0024).
pub const RECORD_PACK_HEADER: &str = "Liaison-Record-Pack";

/// The KV bucket of inbox positions: one key per agency that has
/// acknowledged something (docs/decisions/0019-delivery-at-national-size.md).
pub const INBOX_BUCKET: &str = "INBOX";

/// What an agency asks of its inbox, through the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxOp {
    /// `liaison.ingress.<agency>.inbox.next`: hand out copies.
    Next,
    /// `liaison.ingress.<agency>.inbox.ack`: acknowledge (or hand back) copies.
    Ack,
}

impl InboxOp {
    fn tail(self) -> &'static str {
        match self {
            Self::Next => "inbox.next",
            Self::Ack => "inbox.ack",
        }
    }
}

/// Where an agency reads (`Next`) or acknowledges (`Ack`) its inbox.
pub fn inbox(agency: &AgencyId, op: InboxOp) -> String {
    format!("{INGRESS_PREFIX}{agency}.{}", op.tail())
}

/// Whether an ingress subject is an inbox request, and which.
pub fn inbox_op(subject: &str) -> Option<InboxOp> {
    let rest = subject.strip_prefix(INGRESS_PREFIX)?;
    let (_, tail) = rest.split_once('.')?;
    [InboxOp::Next, InboxOp::Ack]
        .into_iter()
        .find(|op| op.tail() == tail)
}

/// Where a service publishes its decision records.
pub fn decisions(service: &'static str) -> String {
    format!("liaison.decisions.{service}")
}

/// Where a service's `status` endpoint answers (NATS service API), e.g.
/// `liaison.status.gateway`. `service` is one of Liaison's own names.
pub fn status(service: &'static str) -> String {
    format!("liaison.status.{service}")
}

/// What a service registered as `name` with the NATS service API subscribes
/// to: `$SRV.<verb>`, `$SRV.<verb>.<name>` and `$SRV.<verb>.<name>.<id>`
/// (the id is random, chosen at start).
pub fn service_api(name: &str) -> Vec<String> {
    vec![
        format!("{SERVICE_API}.*"),
        format!("{SERVICE_API}.*.{name}"),
        format!("{SERVICE_API}.*.{name}.*"),
    ]
}

/// Inbox prefix of a NATS user: replies to one user cannot be read by another.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// Whether `reply` is a subject in `user`'s own inbox (`_INBOX_<user>.…`,
/// no wildcard): the only place a Liaison service writes an answer to.
/// Answering on any reply subject would let a requester have the service
/// publish, with the service's own rights, into a stream or a KV bucket
/// (found by the hostile-agency suite, ADR 0021).
pub fn reply_is_inbox_of(reply: &str, user: &str) -> bool {
    reply
        .strip_prefix(&inbox_prefix(user))
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(['*', '>', ' ']))
}

/// Whether `reply` is in some client's inbox (`_INBOX_…`, no wildcard):
/// for requests whose asker the subject does not name (operators,
/// auditors). No stream or bucket captures `_INBOX_` subjects.
pub fn reply_is_an_inbox(reply: &str) -> bool {
    reply.starts_with("_INBOX_") && reply.contains('.') && !reply.contains(['*', '>', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_goes_only_to_the_askers_own_inbox() {
        assert!(reply_is_inbox_of("_INBOX_school-a.abc.1", "school-a"));
        for foreign in [
            "_INBOX_school-a",
            "_INBOX_school-a.",
            "_INBOX_school-ab.x",
            "_INBOX_school-b.x",
            "_INBOX_school-a.*",
            "_INBOX_school-a.>",
            "$KV.INBOX.probation",
            "liaison.deliver.council.referral",
            "liaison.events.referral",
        ] {
            assert!(!reply_is_inbox_of(foreign, "school-a"), "{foreign}");
        }
        assert!(reply_is_an_inbox("_INBOX_operator.x"));
        assert!(!reply_is_an_inbox("liaison.ledger.entries"));
        assert!(!reply_is_an_inbox("_INBOX_operator"));
        assert!(!reply_is_an_inbox("_INBOX_operator.>"));
    }

    #[test]
    fn ingress_subjects_round_trip_and_refuse_bad_agencies() {
        let police = AgencyId::parse("police").ok();
        let subject = police.as_ref().map(ingress);
        assert_eq!(subject.as_deref(), Some("liaison.ingress.police.envelope"));
        assert_eq!(
            subject.as_deref().map(agency_of_ingress),
            Some(Ok(
                AgencyId::parse("police").unwrap_or_else(|e| panic!("{e}"))
            ))
        );
        assert!(agency_of_ingress("liaison.ingress.POLICE.envelope").is_err());
        assert!(agency_of_ingress("liaison.ingress.").is_err());
        assert!(agency_of_ingress("other.subject").is_err());
    }

    #[test]
    fn inbox_requests_are_told_apart_from_envelopes_and_queries() {
        let police = AgencyId::parse("police").unwrap_or_else(|e| panic!("{e}"));
        let next = inbox(&police, InboxOp::Next);
        assert_eq!(next, "liaison.ingress.police.inbox.next");
        assert_eq!(inbox_op(&next), Some(InboxOp::Next));
        assert_eq!(inbox_op(&inbox(&police, InboxOp::Ack)), Some(InboxOp::Ack));
        assert_eq!(agency_of_ingress(&next).ok(), Some(police.clone()));
        for other in [
            ingress(&police),
            ingress_query(&police),
            "liaison.ingress.police.inbox".to_owned(),
            "liaison.ingress.police.inbox.next.more".to_owned(),
            "liaison.ingress.inbox.next".to_owned(),
        ] {
            assert_eq!(inbox_op(&other), None, "{other}");
        }
        assert!(!is_ingress_query(&next));
    }
}
