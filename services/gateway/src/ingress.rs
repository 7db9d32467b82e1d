//! Ingress: the request/reply door agencies send envelopes through, and the
//! one path every door's envelopes take ([`submit`]; the HTTPS door is the
//! other caller). For each envelope, in order: size (before decoding), the
//! agency in the subject or URL, its limits (size, rate), the token, decoding
//! (protobuf or its JSON mapping), required fields, vocabulary, policy. An
//! accepted envelope is stored in EVENTS, in the gateway's next group commit
//! (de-duplicated on its sender and id: ADR 0024), before the sender is told
//! "accepted", so an acknowledged envelope is never lost; its collection is
//! recorded as its commit is routed. Every refusal is recorded and answered
//! with a code and a reason.
//!
//! Each envelope is handled in a `gateway.ingress` span, the child of the
//! sender's trace context (its `traceparent` header, else the envelope's
//! `traceparent` field), and stored in EVENTS with this span's context in
//! its headers, for the router to continue (docs/decisions/0009-tracing.md).

use crate::Shared;
use crate::decode::{Encoding, decode};
use crate::metrics::agency_label;
use crate::policy::{Facts, Replied};
use crate::records;
use crate::refusal::Refusal;
use crate::validate;
use async_nats::Message;
use futures_util::StreamExt;
use liaison_core::hop::Hop;
use liaison_core::time::timestamp_now;
use liaison_core::trace::{self, TraceContext};
use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{CaseStatus, Envelope, EnvelopeAccepted, Route, Verdict};
use liaison_runtime::seal;
use prost::Message as _;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, field, info, info_span, warn};

/// Inbox requests (mostly reads waiting for copies) served at once.
const INBOX_READERS: usize = 8192;

/// Serves ingress until `shutdown`, then finishes the requests in hand.
pub async fn serve(
    shared: Arc<Shared>,
    mut requests: crate::Requests,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(shared.config.gateway.concurrency.max(1)));
    // Inbox reads wait (up to 30 s) for copies: they have their own, larger
    // allowance, so that agencies waiting never hold up envelopes.
    let readers = Arc::new(Semaphore::new(INBOX_READERS));
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = requests.next() => message,
        };
        let Some(message) = message else { break };
        if let Some(refusal) = foreign_reply(&message) {
            // Not served, not answered: recorded.
            let shared = shared.clone();
            tracker.spawn(async move {
                let hop =
                    Hop::continuing(info_span!("gateway.ingress", otel.kind = "server"), None);
                refuse(&shared, &hop, refusal).await;
            });
            continue;
        }
        if let Some(op) = subjects::inbox_op(&message.subject) {
            let Ok(permit) = readers.clone().acquire_owned().await else {
                break;
            };
            let shared = shared.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                crate::inbox::answer(&shared, op, message, &shutdown).await;
                drop(permit);
            });
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        tracker.spawn(async move {
            handle(&shared, message).await;
            drop(permit);
        });
    }
    let (mut ingress, mut internal) = requests.into_inner();
    let _ = ingress.unsubscribe().await;
    let _ = internal.unsubscribe().await;
    tracker.close();
    tracker.wait().await;
}

/// A request whose reply subject is not in its sender's own inbox: the
/// agency the ingress subject names (`_INBOX_<agency>.`), or the service of
/// the internal door (`_INBOX_svc-<service>.`). The refusal to record.
fn foreign_reply(message: &Message) -> Option<Rejected> {
    let reply = message.reply.as_ref()?;
    let (owner, agency) = match subjects::service_of_internal(&message.subject) {
        Some(service) => (service.user(), String::new()),
        None => {
            let agency = subjects::ingress_agency_part(&message.subject).to_owned();
            (agency.clone(), agency)
        }
    };
    if subjects::reply_is_inbox_of(reply, &owner) {
        return None;
    }
    let mut rejected = Rejected::new(Refusal::InvalidReply(format!(
        "the reply subject is not in {}'s own inbox ({}.…): nothing is answered elsewhere",
        owner,
        subjects::inbox_prefix(&owner)
    )));
    if liaison_core::AgencyId::parse(&agency).is_ok() {
        rejected.agency = agency;
    }
    Some(rejected)
}

async fn handle(shared: &Shared, message: Message) {
    let token = message
        .headers
        .as_ref()
        .and_then(|h| h.get(subjects::TOKEN_HEADER))
        .map(|v| v.as_str());
    let context = trace::extract(message.headers.as_ref());
    if subjects::is_ingress_query(&message.subject) {
        let agency = subjects::ingress_agency_part(&message.subject);
        let answer = crate::query::answer(shared, agency, token, &message.payload).await;
        if let Some(reply) = message.reply
            && let Err(e) = shared.client.publish(reply, answer.into()).await
        {
            warn!(error = %e, "Case query answer not sent");
        }
        return;
    }
    let verdict = if let Some(service) = subjects::service_of_internal(&message.subject) {
        submit_internal(shared, service, &message.payload, context).await
    } else if message.subject.starts_with("liaison.internal.") {
        let hop = Hop::continuing(info_span!("gateway.ingress", otel.kind = "server"), None);
        refuse(
            shared,
            &hop,
            Rejected::new(Refusal::InvalidAgencyId(
                "no Liaison service sends on this internal subject".to_owned(),
            )),
        )
        .await
    } else {
        let agency = subjects::ingress_agency_part(&message.subject);
        submit(
            shared,
            agency,
            token,
            &message.payload,
            Encoding::Protobuf,
            context,
        )
        .await
    };
    if let Some(reply) = message.reply
        && let Err(e) = shared
            .client
            .publish(reply, verdict.encode_to_vec().into())
            .await
    {
        warn!(error = %e, "Verdict not sent");
    }
}

/// The one ingress path, whatever door the envelope came through (NATS
/// request/reply or HTTPS): `agency` as the transport named it (the ingress
/// subject's token, the URL path), unvalidated; `token` the agency's JWT;
/// `payload` the envelope as received, in `encoding`, not yet decoded;
/// `context` the W3C trace context the door received with it. Every
/// refusal is recorded before the verdict is returned; an acceptance is
/// stored first.
pub async fn submit(
    shared: &Shared,
    agency: &str,
    token: Option<&str>,
    payload: &[u8],
    encoding: Encoding,
    context: Option<TraceContext>,
) -> Verdict {
    let started = Instant::now();
    let mut hop = Hop::continuing(
        info_span!(
            "gateway.ingress",
            otel.kind = "server",
            agency = field::Empty,
            kind = field::Empty,
            envelope_id = field::Empty,
            recipients = field::Empty,
            code = field::Empty,
        ),
        context,
    );
    let admitted = admit(shared, &mut hop, agency, token, payload, encoding).await;
    conclude(shared, &hop, admitted, started).await
}

/// The verdict of one request through either door: a refusal is recorded
/// in the request's span; the time to decide is observed either way.
async fn conclude(
    shared: &Shared,
    hop: &Hop,
    admitted: Result<Verdict, Rejected>,
    started: Instant,
) -> Verdict {
    let verdict = match admitted {
        Ok(verdict) => verdict,
        Err(rejected) => {
            let span = hop.span().clone();
            refuse(shared, hop, rejected).instrument(span).await
        }
    };
    shared
        .metrics
        .verdict_seconds
        .observe(started.elapsed().as_secs_f64());
    verdict
}

/// Refuses, and records, an envelope a door would not read whole because it
/// is longer than `limit` (`size`: its declared length, or what was read
/// before the limit was passed). The same refusal [`submit`] gives first.
pub async fn refuse_too_large(shared: &Shared, size: usize, limit: usize) -> Verdict {
    let hop = Hop::continuing(info_span!("gateway.ingress", otel.kind = "server"), None);
    let span = hop.span().clone();
    refuse(
        shared,
        &hop,
        Rejected::new(Refusal::TooLarge { size, limit }),
    )
    .instrument(span)
    .await
}

/// The internal door: one of Liaison's own services sends its event. NATS
/// permissions authenticate it (only the service's user may publish on its
/// subject), so no token; everything after is the path agencies' envelopes
/// take.
pub async fn submit_internal(
    shared: &Shared,
    service: liaison_core::system::Service,
    payload: &[u8],
    context: Option<TraceContext>,
) -> Verdict {
    let started = Instant::now();
    let sender = service.sender();
    let mut hop = Hop::continuing(
        info_span!(
            "gateway.ingress",
            otel.kind = "server",
            agency = sender.as_str(),
            kind = field::Empty,
            envelope_id = field::Empty,
            recipients = field::Empty,
            code = field::Empty,
        ),
        context,
    );
    let admitted = async {
        let limit = shared.config.gateway.max_envelope_bytes;
        if payload.len() > limit {
            return Err(Rejected::new(Refusal::TooLarge {
                size: payload.len(),
                limit,
            })
            .by(&sender));
        }
        let mut envelope = decode(payload, Encoding::Protobuf)
            .map_err(|e| Rejected::new(Refusal::Malformed(e)).by(&sender))?;
        follow(&mut hop, &mut envelope);
        let span = hop.span().clone();
        let author = envelope.author.clone();
        decide(shared, sender.clone(), author, envelope, hop.context())
            .instrument(span)
            .await
    }
    .await;
    conclude(shared, &hop, admitted, started).await
}

/// A refusal, with what was known of the request when it was refused.
pub(crate) struct Rejected {
    refusal: Refusal,
    agency: String,
    envelope: Option<Envelope>,
    policy_ids: Vec<String>,
}

impl Rejected {
    pub(crate) fn new(refusal: Refusal) -> Self {
        Self {
            refusal,
            agency: String::new(),
            envelope: None,
            policy_ids: vec![],
        }
    }

    pub(crate) fn by(mut self, agency: &AgencyId) -> Self {
        self.agency = agency.to_string();
        self
    }

    fn about(mut self, envelope: &Envelope) -> Self {
        self.envelope = Some(envelope.clone());
        self
    }

    fn under(mut self, policy_ids: Vec<String>) -> Self {
        self.policy_ids = policy_ids;
        self
    }
}

/// Records a refusal (unless nothing could be stored at all) and words the verdict.
pub(crate) async fn refuse(shared: &Shared, hop: &Hop, rejected: Rejected) -> Verdict {
    let Rejected {
        refusal,
        agency,
        envelope,
        policy_ids,
    } = rejected;
    hop.span().record("code", refusal.code());
    info!(agency = %agency, code = refusal.code(), "Envelope refused");
    shared
        .metrics
        .refused
        .inc(&[agency_label(shared, &agency), refusal.code()]);
    if !matches!(refusal, Refusal::Unavailable(_)) {
        let mut record = records::refusal(&agency, envelope.as_ref(), &refusal, &policy_ids);
        if record.trace_id.is_empty() {
            record.trace_id = hop.trace_id().unwrap_or_default();
        }
        shared.recorder.keep(record).await;
    }
    Verdict {
        outcome: Outcome::Refused as i32,
        envelope_id: envelope.map(|e| e.id).unwrap_or_default(),
        code: refusal.code().to_owned(),
        reason: refusal.to_string(),
        recipients: vec![],
        policy_ids,
    }
}

/// Decides on one request; on success the envelope is stored and recorded.
/// The checks before decoding run outside `hop`'s span, so that an envelope
/// whose sender set no `traceparent` header can still name its parent in
/// its `traceparent` field.
async fn admit(
    shared: &Shared,
    hop: &mut Hop,
    agency: &str,
    token: Option<&str>,
    payload: &[u8],
    encoding: Encoding,
) -> Result<Verdict, Rejected> {
    let limit = shared.config.gateway.max_envelope_bytes;
    if payload.len() > limit {
        return Err(Rejected::new(Refusal::TooLarge {
            size: payload.len(),
            limit,
        }));
    }
    let agency = AgencyId::parse(agency)
        .map_err(|e| Rejected::new(Refusal::InvalidAgencyId(e.to_string())))?;
    let from_agency = |refusal: Refusal| Rejected::new(refusal).by(&agency);
    shared.membership.check(&agency).map_err(from_agency)?;
    shared
        .limits
        .admit(&agency, payload.len(), Instant::now())
        .map_err(from_agency)?;
    let token = token.ok_or_else(|| from_agency(Refusal::MissingToken))?;
    let claims = shared
        .authenticate(&agency, token)
        .await
        .map_err(from_agency)?;
    hop.span().record("agency", agency.as_str());
    let mut envelope = decode(payload, encoding).map_err(|e| from_agency(Refusal::Malformed(e)))?;
    follow(hop, &mut envelope);
    let span = hop.span().clone();
    if envelope.author != claims.sub {
        validate::check(&envelope, &agency)
            .map_err(|r| Rejected::new(r).by(&agency).about(&envelope))?;
        return Err(Rejected::new(Refusal::InvalidField {
            field: "author",
            reason: format!("must be the token subject {:?}", claims.sub),
        })
        .by(&agency)
        .about(&envelope));
    }
    decide(shared, agency, claims.sub, envelope, hop.context())
        .instrument(span)
        .await
}

/// The header wins, the envelope's field is the fallback: the hop's parent
/// is the first of them that is well formed, and the envelope keeps that
/// one, so that EVENTS, the deliveries and the records agree.
fn follow(hop: &mut Hop, envelope: &mut Envelope) {
    let span = hop.span();
    span.record("kind", envelope.kind());
    if liaison_core::ids::validate_envelope_id(&envelope.id).is_ok() {
        span.record("envelope_id", envelope.id.as_str());
    }
    let field = TraceContext::from_field(&envelope.traceparent);
    // A malformed field is left as it is, to be refused as any bad field.
    if field.is_none() && !envelope.traceparent.is_empty() {
        return;
    }
    if let Some(field) = field {
        hop.adopt(field);
    }
    if let Some(received) = hop.received() {
        envelope.traceparent = received.parent.to_string();
    }
}

/// Decides on a decoded envelope from an authenticated agency or service
/// (`subject`: the person or system that signed for it); `context` is the
/// ingress span's, to store with it. On acceptance the envelope is stored
/// and its collection recorded.
async fn decide(
    shared: &Shared,
    agency: AgencyId,
    subject: String,
    envelope: Envelope,
    context: Option<TraceContext>,
) -> Result<Verdict, Rejected> {
    let from_agency = |refusal: Refusal| Rejected::new(refusal).by(&agency);
    let about = |refusal: Refusal| from_agency(refusal).about(&envelope);
    validate::check(&envelope, &agency).map_err(about)?;
    let kind = envelope.kind();
    let system = liaison_core::system::is_reserved(&agency);
    if liaison_proto::SYSTEM_KINDS.contains(&kind) != system {
        return Err(about(Refusal::InvalidField {
            field: "body",
            reason: if system {
                format!("a Liaison service may not send a {kind}")
            } else {
                format!("a {kind} is raised only by Liaison's own services")
            },
        }));
    }
    let live = shared.live();
    let policy = &live.policy;
    policy
        .vocabulary()
        .check(&envelope)
        .map_err(|(field, reason)| about(Refusal::InvalidField { field, reason }))?;
    let (facts, status) = facts(shared, &agency, &envelope).await.map_err(about)?;
    case_rules(&live, &agency, &envelope, &facts, status).map_err(about)?;
    above_own_clearance(&live.registry, &agency, &envelope).map_err(about)?;
    shared.restrictions.check(&envelope).map_err(about)?;
    let (send, routes) = policy
        .evaluate(&agency, &envelope, &live.registry, &facts)
        .map_err(|e| {
            about(Refusal::PolicyDenied(format!(
                "policy could not be evaluated: {e}"
            )))
        })?;
    if !send.allowed {
        let reason = if !send.lapsed.is_empty() {
            format!(
                "the information-sharing agreement that would let {agency} send this has lapsed: {}",
                send.lapsed.join(", ")
            )
        } else if send.clauses.is_empty() {
            format!(
                "no information-sharing agreement lets {agency} send a {} for purpose {:?} under legal basis {:?}{}",
                envelope.kind(),
                envelope.purpose,
                envelope.legal_basis,
                need_to_know(&agency, &envelope, &facts)
            )
        } else {
            format!("forbidden by {}", send.clauses.join(", "))
        };
        return Err(about(Refusal::PolicyDenied(reason)).under(send.clauses));
    }
    if routes.is_empty() && MUST_REACH.contains(&envelope.kind()) {
        return Err(
            about(no_recipient(&live.registry, &agency, &envelope, &facts)).under(send.clauses),
        );
    }
    let accepted = EnvelopeAccepted {
        envelope: Some(envelope.clone()),
        accepted_at: Some(timestamp_now()),
        token_subject: subject,
        policy_ids: send.clauses.clone(),
        routes: routes
            .into_iter()
            .map(|r| Route {
                recipient: r.recipient.to_string(),
                withheld_labels: r.withheld.into_iter().map(|l| l as i32).collect(),
                policy_ids: r.clauses,
            })
            .collect(),
    };
    // Stored in EVENTS is accepted: the router records the collection as it
    // routes the event (docs/decisions/0001-ingress-and-routing.md).
    let duplicate = store(shared, &accepted, context.as_ref())
        .await
        .map_err(about)?;
    let recipients: Vec<String> = accepted
        .routes
        .iter()
        .map(|r| r.recipient.clone())
        .collect();
    shared
        .metrics
        .accepted
        .inc(&[agency_label(shared, agency.as_str()), envelope.kind()]);
    tracing::Span::current().record("recipients", recipients.len());
    info!(agency = %agency, kind = envelope.kind(), envelope_id = %envelope.id, recipients = recipients.len(), duplicate, "Envelope accepted");
    Ok(Verdict {
        outcome: if duplicate {
            Outcome::Duplicate
        } else {
            Outcome::Accepted
        } as i32,
        envelope_id: envelope.id,
        code: String::new(),
        reason: String::new(),
        recipients,
        policy_ids: send.clauses,
    })
}

/// The kinds whose point is to reach other agencies: one that none may
/// receive is refused `no_recipient`, never accepted (a sender must not
/// believe it shared what reached nobody). Other kinds (a case's status or
/// panel, an acknowledgement) are recorded for the case even when no other
/// agency receives them.
pub const MUST_REACH: [&str; 5] = [
    "referral",
    "alert",
    "case_update",
    "information_request",
    "information_response",
];

/// A classification as people write it (`SECRET`).
fn classification_name(level: i32) -> &'static str {
    match liaison_proto::v1::Classification::try_from(level) {
        Ok(liaison_proto::v1::Classification::Official) => "OFFICIAL",
        Ok(liaison_proto::v1::Classification::OfficialSensitive) => "OFFICIAL-SENSITIVE",
        Ok(liaison_proto::v1::Classification::Secret) => "SECRET",
        Ok(liaison_proto::v1::Classification::TopSecret) => "TOP-SECRET",
        _ => "UNSPECIFIED",
    }
}

/// An agency may not send above its own clearance (Liaison's own services,
/// not in the registry, are cleared for everything).
fn above_own_clearance(
    registry: &liaison_runtime::registry::Registry,
    agency: &AgencyId,
    envelope: &Envelope,
) -> Result<(), Refusal> {
    let Some(sender) = registry.get(agency) else {
        return Ok(());
    };
    let cleared = sender.clearance.level() as i32;
    if envelope.classification > cleared {
        return Err(Refusal::PolicyDenied(format!(
            "{agency} is cleared to {} and may not send an envelope classified {}",
            classification_name(cleared),
            classification_name(envelope.classification)
        )));
    }
    Ok(())
}

/// Why no agency may receive `envelope`: among the agencies that could
/// (its candidates), how many are cleared below its classification, how
/// many are not registered for its caveats, how many no clause lets
/// receive it.
fn no_recipient(
    registry: &liaison_runtime::registry::Registry,
    agency: &AgencyId,
    envelope: &Envelope,
    facts: &Facts,
) -> Refusal {
    let named = crate::candidates::named(envelope, facts);
    let candidates: Vec<AgencyId> =
        crate::candidates::candidates(registry, agency, envelope, &named)
            .into_iter()
            .filter(|c| c != agency)
            .collect();
    if candidates.is_empty() {
        return Refusal::NoRecipient(format!(
            "no other agency could receive a {} from {agency}: none serves its areas, takes part in its case or is addressed",
            envelope.kind()
        ));
    }
    let (mut below, mut caveats, mut unpermitted) = (Vec::new(), Vec::new(), Vec::new());
    for id in &candidates {
        let Some(candidate) = registry.get(id) else {
            continue;
        };
        if (candidate.clearance.level() as i32) < envelope.classification {
            below.push(id.as_str());
        } else if envelope
            .handling_caveats
            .iter()
            .any(|c| !candidate.caveats.contains(c))
        {
            caveats.push(id.as_str());
        } else {
            unpermitted.push(id.as_str());
        }
    }
    let some = |ids: &[&str]| {
        let shown: Vec<&str> = ids.iter().take(5).copied().collect();
        if ids.len() > shown.len() {
            format!("{}, … {} in all", shown.join(", "), ids.len())
        } else {
            shown.join(", ")
        }
    };
    let mut why = Vec::new();
    if !below.is_empty() {
        why.push(format!(
            "{} cleared below its classification {} ({})",
            below.len(),
            classification_name(envelope.classification),
            some(&below)
        ));
    }
    if !caveats.is_empty() {
        why.push(format!(
            "{} not registered for its caveats {} ({})",
            caveats.len(),
            envelope.handling_caveats.join(", "),
            some(&caveats)
        ));
    }
    if !unpermitted.is_empty() {
        why.push(format!(
            "{} that no information-sharing agreement lets receive a {} for purpose {:?} ({})",
            unpermitted.len(),
            envelope.kind(),
            envelope.purpose,
            some(&unpermitted)
        ));
    }
    Refusal::NoRecipient(format!(
        "of the {} agencies that could receive it, {}",
        candidates.len(),
        why.join("; ")
    ))
}

/// The part of a refusal's reason that says the sender is not on the case's
/// panel, when it is not (the usual cause of a case share refused).
fn need_to_know(agency: &AgencyId, envelope: &Envelope, facts: &Facts) -> String {
    if envelope.case_id.is_empty() || facts.participants.contains(agency) {
        String::new()
    } else if facts.owner.is_none() {
        format!(" (case {} is not known to Liaison)", envelope.case_id)
    } else {
        format!(
            " ({agency} does not take part in case {}: need to know)",
            envelope.case_id
        )
    }
}

/// What policy needs to know beyond the envelope: who participates in its
/// case and who owns it (need to know; from the cases service), and who sent
/// and received the envelope it answers (from the receipts); with the case's
/// lifecycle status, if the case exists.
async fn facts(
    shared: &Shared,
    agency: &AgencyId,
    envelope: &Envelope,
) -> Result<(Facts, Option<CaseStatus>), Refusal> {
    let mut facts = Facts::default();
    let mut status = None;
    if !envelope.case_id.is_empty() {
        let found = shared
            .participation
            .get(&envelope.case_id)
            .await
            .map_err(|e| Refusal::Unavailable(format!("case participation: {e}")))?;
        if let Some(p) = found {
            status = Some(CaseStatus::try_from(p.status).unwrap_or(CaseStatus::Unspecified));
            facts.owner = Some(p.owner);
            facts.participants = p.participants;
        }
    }
    if !envelope.in_reply_to.is_empty() {
        let receipt = replied_to(shared, agency, &envelope.in_reply_to).await?;
        facts.replied = Some(Replied {
            sender: receipt.sender,
            recipients: receipt.recipients,
            kind: receipt.kind,
        });
    }
    Ok((facts, status))
}

/// The envelope `in_reply_to` (`ID`, or `SENDER/ID`) names, as `agency`
/// knows it: one it sent or received (Liaison's own services may answer
/// any). Ids are each sender's own, so an id two senders chose is told
/// apart by who answers, or by the sender named.
async fn replied_to(
    shared: &Shared,
    agency: &AgencyId,
    in_reply_to: &str,
) -> Result<liaison_runtime::receipts::Receipt, Refusal> {
    let invalid = |reason: String| Refusal::InvalidField {
        field: "in_reply_to",
        reason,
    };
    let (sender, id) = match in_reply_to.split_once('/') {
        Some((sender, id)) => (AgencyId::parse(sender).ok(), id),
        None => (None, in_reply_to),
    };
    let receipts = shared
        .receipts
        .get(id)
        .await
        .map_err(|e| Refusal::Unavailable(format!("receipts: {e}")))?;
    if receipts.is_empty() {
        return Err(invalid(format!("no envelope {id:?} was delivered")));
    }
    let system = liaison_core::system::Service::of_sender(agency.as_str()).is_some();
    let mut known: Vec<_> = receipts
        .into_iter()
        .filter(|r| sender.as_ref().is_none_or(|s| &r.sender == s))
        .filter(|r| system || &r.sender == agency || r.recipients.contains(agency))
        .collect();
    match known.len() {
        0 => Err(Refusal::PolicyDenied(format!(
            "{agency} neither sent nor received an envelope {in_reply_to:?}: it may answer only what it sent or received"
        ))),
        1 => Ok(known.remove(0)),
        _ => Err(invalid(format!(
            "{id:?} names envelopes from {} that {agency} took part in: give in_reply_to as SENDER/{id}",
            known
                .iter()
                .map(|r| r.sender.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        ))),
    }
}

/// The case rules policy cannot state alone: a lifecycle move must be one
/// the case's status allows; a participation change may add only agencies
/// the information-sharing agreements let receive the case's updates, and
/// may not remove the owner.
fn case_rules(
    live: &crate::live::Live,
    agency: &AgencyId,
    envelope: &Envelope,
    facts: &Facts,
    status: Option<CaseStatus>,
) -> Result<(), Refusal> {
    use liaison_proto::v1::envelope::Body;
    let invalid = |field: &'static str, reason: String| Refusal::InvalidField { field, reason };
    match &envelope.body {
        Some(Body::CaseStatus(c)) => {
            let to = CaseStatus::try_from(c.status).unwrap_or(CaseStatus::Unspecified);
            liaison_core::lifecycle::check(status, to)
                .map_err(|reason| invalid("case_status.status", reason))?;
        }
        Some(Body::Participation(p)) => {
            if status.is_none() {
                return Err(invalid("case_id", "the case does not exist".to_owned()));
            }
            if let Some(owner) = &facts.owner
                && p.removed.iter().any(|r| r == owner.as_str())
            {
                return Err(invalid(
                    "participation.removed",
                    format!("{owner} owns the case and cannot be removed"),
                ));
            }
            for added in &p.added {
                let Ok(id) = AgencyId::parse(added) else {
                    continue;
                };
                if live.registry.get(&id).is_none() {
                    return Err(invalid(
                        "participation.added",
                        format!("{id} is not a registered agency"),
                    ));
                }
                // As if it already took part: would it receive the case's updates?
                let mut joined = facts.clone();
                joined.participants.push(id.clone());
                let probe = Envelope {
                    body: Some(Body::CaseUpdate(liaison_proto::v1::CaseUpdated::default())),
                    addressees: vec![],
                    ..envelope.clone()
                };
                let receives = live
                    .policy
                    .explain(agency, &probe, &live.registry, &joined, &id)
                    .map(|e| e.copy.receive.allowed)
                    .unwrap_or(false);
                if !receives {
                    return Err(Refusal::PolicyDenied(format!(
                        "no information-sharing agreement lets {id} receive this case's updates, so it cannot participate"
                    )));
                }
            }
        }
        Some(Body::Reprioritisation(_) | Body::RiskAssessment(_) | Body::InformationRequest(_))
            if status.is_none() =>
        {
            return Err(invalid("case_id", "the case does not exist".to_owned()));
        }
        _ => {}
    }
    Ok(())
}

/// Stores the accepted envelope in EVENTS: sealed whole, beside its fact
/// (the envelope without its labelled fields, which Liaison's services read:
/// ADR 0021) and the ingress span's trace context, in the next group commit
/// ([`crate::events`], ADR 0024); `Ok(true)` if it was already there.
async fn store(
    shared: &Shared,
    accepted: &EnvelopeAccepted,
    context: Option<&TraceContext>,
) -> Result<bool, Refusal> {
    let envelope = accepted
        .envelope
        .as_ref()
        .map(|e| (e.id.as_str(), e.sender_agency.as_str()))
        .unwrap_or_default();
    // De-duplicated per sender: an id is the sender's own, and another
    // agency choosing the same id is a different envelope.
    let scoped_id = liaison_core::ids::scoped_id(envelope.1, envelope.0);
    let fact = crate::redact::fact(accepted)
        .map_err(|e| Refusal::Unavailable(format!("the envelope's fact: {e}")))?;
    // Sealed (ADR 0022) under the keys of its subjects (or case) and of the
    // end of its retention: the longest any clause that let it be shared states.
    let clauses = accepted
        .policy_ids
        .iter()
        .chain(accepted.routes.iter().flat_map(|r| r.policy_ids.iter()))
        .map(String::as_str);
    let retention = shared
        .policy()
        .retention(clauses, shared.config.data.default_retention_days * 86_400);
    let until = seal::retained_until(liaison_core::time::unix_now(), retention);
    let names = accepted
        .envelope
        .as_ref()
        .map(|e| seal::keys_for(e, until))
        .unwrap_or_default();
    let event = shared
        .keys
        .seal(
            &names,
            &subjects::committed(&scoped_id),
            &accepted.encode_to_vec(),
        )
        .await
        .map_err(|e| Refusal::Unavailable(format!("the envelope could not be sealed: {e}")))?;
    let (traceparent, tracestate) = trace::fields(context);
    let entry = liaison_proto::v1::CommittedEnvelope {
        scoped_id,
        fact: Some(fact),
        event: event.to_vec(),
        traceparent,
        tracestate,
    };
    shared
        .events
        .store(entry)
        .await
        .map_err(Refusal::Unavailable)
}
