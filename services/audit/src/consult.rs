//! Consultations (DPA 2018 s.62: consultation is processing, and is logged).
//! An auditor asks before reading the ledger: who they are (a registered
//! auditor, proved by a short-lived EdDSA token with `aud` = `liaison-audit`),
//! what they will do and why. The audit service writes a consultation record —
//! or a refusal record — and grants the request only once that record is in
//! the ledger, so every replay, export or proof is itself on the record.
//!
//! The grant is what lets the auditor read: the `auditor` NATS user may not
//! create consumers on LEDGER, only pull from those the audit service
//! creates for a granted consultation ([`READ_REQUEST`](subjects::READ_REQUEST),
//! one per starting sequence, so a reader can start again after a message
//! went missing). A read without a recorded consultation is not possible
//! with auditor credentials.

use crate::writer::Writer;
use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::StreamExt;
use liaison_core::NatsContext as _;
use liaison_core::tokens::{Claims, TokenVerifier};
use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::{AuditRecord, Decision, Operation};
use liaison_runtime::auditors::Scope;
use prost::Message as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The audience auditor tokens must name.
pub const AUDIENCE: &str = "liaison-audit";
/// Actions an auditor may state.
pub const ACTIONS: [&str; 6] = [
    "verify",
    "replay",
    "export",
    "prove",
    "consistency",
    "receipt",
];
const MAX_REQUEST: usize = 4096;
/// A grant lapses when no consumer was asked for in this long.
const GRANT_IDLE: Duration = Duration::from_secs(15 * 60);
/// Grants open at once; beyond it new consultations wait for some to lapse.
const MAX_GRANTS: usize = 1_000;
/// A granted consumer is deleted by the server when left idle this long.
const CONSUMER_IDLE: Duration = Duration::from_secs(30);

/// What an auditor sends (JSON), with its token in the `Liaison-Token` header.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsultRequest {
    pub auditor: String,
    pub purpose: String,
    pub action: String,
    #[serde(default)]
    pub scope: String,
}

/// The answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsultReply {
    pub granted: bool,
    pub record_id: String,
    pub code: String,
    pub reason: String,
    /// What opens consumers on LEDGER for this consultation (secret to the
    /// auditor; empty when refused).
    #[serde(default)]
    pub grant: String,
    /// LEDGER's last sequence once the consultation was recorded: the read
    /// goes at least this far (the consultation's own record included).
    #[serde(default)]
    pub last: u64,
    /// The auditor reads only a part of the ledger, through the audit
    /// service ([`crate::scoped`]); `scope` says which.
    #[serde(default)]
    pub scoped: bool,
    #[serde(default)]
    pub scope: String,
}

/// A granted auditor asks for a consumer on LEDGER starting at `from`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    pub grant: String,
    pub from: u64,
}

/// The consumer to pull from, or why not.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReadReply {
    #[serde(default)]
    pub consumer: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub reason: String,
}

/// A granted consultation, on the auditor's side: opens the consumers the
/// reader pulls from ([`crate::reader::Source::Granted`]).
#[derive(Clone)]
pub struct Grant {
    client: async_nats::Client,
    id: String,
    /// LEDGER's last sequence when the consultation was recorded.
    pub last: u64,
}

impl Grant {
    pub fn new(client: async_nats::Client, reply: &ConsultReply) -> Self {
        Self {
            client,
            id: reply.grant.clone(),
            last: reply.last,
        }
    }

    /// Asks the audit service for a consumer delivering from `from`.
    pub async fn open(
        &self,
        from: u64,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, GrantError> {
        let request = serde_json::to_vec(&ReadRequest {
            grant: self.id.clone(),
            from,
        })
        .map_err(GrantError::Encode)?;
        let answer = tokio::time::timeout(
            Duration::from_secs(15),
            self.client.request(subjects::READ_REQUEST, request.into()),
        )
        .await
        .map_err(|_| GrantError::Timeout)?
        .nats("asking the audit service for a reader")?;
        let reply: ReadReply =
            serde_json::from_slice(&answer.payload).map_err(GrantError::Reply)?;
        if reply.consumer.is_empty() {
            return Err(GrantError::Refused {
                code: reply.code,
                reason: reply.reason,
            });
        }
        Ok(jetstream::new(self.client.clone())
            .get_consumer_from_stream(&reply.consumer, subjects::LEDGER_STREAM)
            .await
            .nats(format!("granted reader {}", reply.consumer))?)
    }
}

/// Why a granted reader could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("the read request cannot be encoded")]
    Encode(#[source] serde_json::Error),
    #[error("the audit service did not open a reader within 15 s")]
    Timeout,
    #[error(transparent)]
    Nats(#[from] liaison_core::NatsError),
    #[error("the audit service's reply does not parse")]
    Reply(#[source] serde_json::Error),
    #[error("reading refused ({code}): {reason}")]
    Refused { code: String, reason: String },
}

/// The grants open on the audit service's side.
#[derive(Default)]
struct Grants(HashMap<String, Open>);

struct Open {
    auditor: String,
    record_id: String,
    used: Instant,
    /// The auditor's scope (`None`: the whole ledger).
    scope: Option<Scope>,
}

impl Grants {
    fn lapse(&mut self, now: Instant) {
        self.0
            .retain(|_, open| now.duration_since(open.used) < GRANT_IDLE);
    }
}

/// The auditors' registry as the audit service uses it.
pub struct Auditors {
    pub verifier: TokenVerifier,
    pub purposes: std::collections::BTreeMap<String, String>,
    /// Each auditor's scope (`None`: the whole ledger).
    pub scopes: HashMap<String, Option<Scope>>,
}

/// Reads the auditors' registry ([`liaison_runtime::auditors`]).
pub fn load_auditors(path: &Path, skew: u64, max_lifetime: u64) -> Result<Auditors, String> {
    let registry = liaison_runtime::auditors::Auditors::load(path)?;
    let keys = registry
        .auditors
        .iter()
        .map(|a| (a.id.as_str(), a.keys.as_slice()));
    let verifier = TokenVerifier::new(keys, AUDIENCE, skew, max_lifetime)
        .map_err(|e| format!("auditors {}: {e}", path.display()))?;
    Ok(Auditors {
        verifier,
        scopes: registry
            .auditors
            .iter()
            .map(|a| (a.id.to_string(), a.scope.clone()))
            .collect(),
        purposes: registry.purposes,
    })
}

type Refused = (&'static str, String);

/// Checks a request: its size, shape, purpose and the auditor's token.
fn check(
    auditors: &Auditors,
    token: Option<&str>,
    body: &[u8],
) -> (Option<ConsultRequest>, Result<Claims, Refused>) {
    if body.len() > MAX_REQUEST {
        return (
            None,
            Err((
                "too_large",
                format!("request is larger than {MAX_REQUEST} bytes"),
            )),
        );
    }
    let request: ConsultRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return (
                None,
                Err((
                    "malformed_request",
                    format!("not a consultation request: {e}"),
                )),
            );
        }
    };
    let fail = |code, reason: String| Err((code, reason));
    let verdict = if AgencyId::parse(&request.auditor).is_err() {
        fail(
            "invalid_auditor_id",
            format!("{:?} is not a valid auditor id", request.auditor),
        )
    } else if !auditors.purposes.contains_key(&request.purpose) {
        fail(
            "invalid_purpose",
            format!(
                "purpose {:?} is not one of the purposes the ledger may be consulted for: {}",
                request.purpose.chars().take(64).collect::<String>(),
                auditors
                    .purposes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else if !ACTIONS.contains(&request.action.as_str()) || request.scope.len() > 512 {
        fail(
            "invalid_action",
            format!("action must be one of {ACTIONS:?}, scope at most 512 bytes"),
        )
    } else {
        match token {
            None => fail(
                "missing_token",
                "no token: send a signed JWT in the Liaison-Token header".into(),
            ),
            Some(token) => auditors
                .verifier
                .verify(&request.auditor, token, liaison_core::time::unix_now())
                .map_err(|e| ("invalid_token", e.to_string())),
        }
    };
    (Some(request), verdict)
}

/// Answers consultation requests, and granted auditors' requests for
/// readers, until `shutdown`.
pub async fn serve(
    client: async_nats::Client,
    writer: Arc<Writer>,
    auditors: Auditors,
    subscriptions: Subscriptions,
    shutdown: CancellationToken,
) {
    let Subscriptions {
        mut consultations,
        mut reads,
        mut records,
    } = subscriptions;
    let js = jetstream::new(client.clone());
    let mut grants = Grants::default();
    loop {
        let (message, asked) = tokio::select! {
            () = shutdown.cancelled() => return,
            message = consultations.next() => match message { Some(m) => (m, Asked::Consultation), None => return },
            message = reads.next() => match message { Some(m) => (m, Asked::Reader), None => return },
            message = records.next() => match message { Some(m) => (m, Asked::Records), None => return },
        };
        grants.lapse(Instant::now());
        // Answered only in the asker's inbox: never into LEDGER, DECISIONS
        // or anything else the audit service may write (ADR 0021).
        if !message
            .reply
            .as_ref()
            .is_some_and(|r| subjects::reply_is_an_inbox(r))
        {
            warn!("An auditor's request with a reply subject outside an inbox, not served");
            continue;
        }
        let body = match asked {
            Asked::Consultation => {
                let reply = consult(&js, &writer, &auditors, &message, &mut grants).await;
                serde_json::to_vec(&reply)
            }
            Asked::Reader => {
                let reply = open_reader(&js, &writer, &message.payload, &mut grants).await;
                serde_json::to_vec(&reply)
            }
            Asked::Records => {
                // Read in a task of its own: a whole ledger's verification
                // does not hold up other auditors' consultations.
                let scope = records_for(&js, &writer, &message.payload, &mut grants).await;
                let (client, js, verifier) = (client.clone(), js.clone(), writer.verifier());
                tokio::spawn(async move {
                    let pages = match scope {
                        Ok((filter, scope)) => {
                            crate::scoped::answer(&js, &verifier, &scope, &filter).await
                        }
                        Err((code, reason)) => crate::scoped::refused(code, reason),
                    };
                    let Some(to) = message.reply else { return };
                    for page in pages {
                        let body = serde_json::to_vec(&page).unwrap_or_default();
                        if let Err(e) = client.publish(to.clone(), body.into()).await {
                            warn!(error = %e, "Records page not sent");
                            return;
                        }
                    }
                });
                continue;
            }
        };
        if let Some(to) = message.reply
            && let Err(e) = client.publish(to, body.unwrap_or_default().into()).await
        {
            warn!(error = %e, "Consultation reply not sent");
        }
    }
}

/// What the audit service answers auditors on.
pub struct Subscriptions {
    /// [`subjects::CONSULT_REQUEST`].
    pub consultations: async_nats::Subscriber,
    /// [`subjects::READ_REQUEST`].
    pub reads: async_nats::Subscriber,
    /// [`subjects::RECORDS_REQUEST`].
    pub records: async_nats::Subscriber,
}

enum Asked {
    Consultation,
    Reader,
    Records,
}

/// A records request's filter and the grant's scope (the whole ledger: an
/// empty scope), or why not; a request naming no open grant is recorded.
async fn records_for(
    js: &jetstream::Context,
    writer: &Writer,
    body: &[u8],
    grants: &mut Grants,
) -> Result<(crate::replay::Filter, Scope), Refused> {
    let request: Result<crate::scoped::RecordsRequest, Refused> = if body.len() > MAX_REQUEST {
        Err((
            "too_large",
            format!("request is larger than {MAX_REQUEST} bytes"),
        ))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ("malformed_request", format!("not a records request: {e}")))
    };
    let found = request.and_then(|r| match grants.0.get_mut(&r.grant) {
        Some(open) => {
            open.used = Instant::now();
            Ok((r, open.scope.clone().unwrap_or_default()))
        }
        None => Err((
            "unknown_grant",
            "no open consultation has this grant (it may have lapsed after 15 minutes unused): consult again".to_owned(),
        )),
    });
    match found {
        Ok((request, scope)) => {
            let filter = request.filter().map_err(|e| ("malformed_request", e))?;
            Ok((filter, scope))
        }
        Err((code, reason)) => {
            if code == "unknown_grant" {
                let refused = ConsultRequest {
                    action: "records".into(),
                    ..ConsultRequest::default()
                };
                let _ = record(js, writer, &refused, &Err((code, reason.clone()))).await;
            }
            Err((code, reason))
        }
    }
}

/// Records a consultation and, once it is in the ledger, grants it.
async fn consult(
    js: &jetstream::Context,
    writer: &Writer,
    auditors: &Auditors,
    message: &async_nats::Message,
    grants: &mut Grants,
) -> ConsultReply {
    let token = message
        .headers
        .as_ref()
        .and_then(|h| h.get(subjects::TOKEN_HEADER))
        .map(|v| v.as_str().to_owned());
    let (request, mut verdict) = check(auditors, token.as_deref(), &message.payload);
    let mut request = request.unwrap_or_default();
    if verdict.is_ok() && grants.0.len() >= MAX_GRANTS {
        verdict = Err((
            "too_many_consultations",
            format!("{MAX_GRANTS} consultations are open; try again once some have ended"),
        ));
    }
    // A scoped auditor replays their part of the ledger, read for them;
    // the rest needs the whole ledger.
    let scope = auditors.scopes.get(&request.auditor).cloned().flatten();
    if let Some(scope) = &scope {
        if verdict.is_ok() && request.action != "replay" {
            verdict = Err((
                "out_of_scope",
                format!(
                    "auditor {} may read only part of the ledger ({}): `replay` is read for \
                     them, filtered; `{}` needs the whole ledger",
                    request.auditor,
                    scope.describe(),
                    request.action
                ),
            ));
        }
        request.scope = format!("{} (within {})", request.scope, scope.describe())
            .trim()
            .to_owned();
    }
    let mut reply = record(js, writer, &request, &verdict).await;
    if reply.granted {
        // The ledger's end now, past the consultation's own record.
        let Ok((_, last)) = crate::verify::stream_end(js, subjects::LEDGER_STREAM).await else {
            return ConsultReply {
                granted: false,
                code: "unavailable".into(),
                reason: "the ledger cannot be read now; try again".into(),
                ..reply
            };
        };
        reply.grant = uuid::Uuid::new_v4().simple().to_string();
        reply.last = last;
        reply.scoped = scope.is_some();
        reply.scope = scope.as_ref().map(Scope::describe).unwrap_or_default();
        grants.0.insert(
            reply.grant.clone(),
            Open {
                auditor: request.auditor.clone(),
                record_id: reply.record_id.clone(),
                used: Instant::now(),
                scope: scope.clone(),
            },
        );
    }
    info!(auditor = %request.auditor, action = %request.action, granted = reply.granted, code = %reply.code, "Consultation");
    reply
}

/// Creates a consumer on LEDGER for a granted consultation; a request
/// naming no open grant is refused, and the refusal recorded.
async fn open_reader(
    js: &jetstream::Context,
    writer: &Writer,
    body: &[u8],
    grants: &mut Grants,
) -> ReadReply {
    let request: Result<ReadRequest, Refused> = if body.len() > MAX_REQUEST {
        Err((
            "too_large",
            format!("request is larger than {MAX_REQUEST} bytes"),
        ))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ("malformed_request", format!("not a read request: {e}")))
    };
    let checked = request.and_then(|r| match grants.0.get_mut(&r.grant) {
        Some(open) => {
            open.used = Instant::now();
            Ok((r, open))
        }
        None => Err((
            "unknown_grant",
            "no open consultation has this grant (it may have lapsed after 15 minutes unused): consult again".to_owned(),
        )),
    });
    let checked = checked.and_then(|(r, open)| match &open.scope {
        Some(scope) => Err((
            "out_of_scope",
            format!(
                "auditor {} may read only part of the ledger ({}): ask for records on {}",
                open.auditor,
                scope.describe(),
                subjects::RECORDS_REQUEST
            ),
        )),
        None => Ok((r, open)),
    });
    let (request, open) = match checked {
        Ok(found) => found,
        Err((code, reason)) => {
            // Refused, and on the record like a refused consultation.
            let refused = ConsultRequest {
                action: "read".into(),
                ..ConsultRequest::default()
            };
            let _ = record(js, writer, &refused, &Err((code, reason.clone()))).await;
            return refuse(code, reason);
        }
    };
    let name = format!(
        "{}{}",
        subjects::GRANT_CONSUMER_PREFIX,
        uuid::Uuid::new_v4().simple()
    );
    let created = async {
        js.get_stream(subjects::LEDGER_STREAM)
            .await
            .map_err(|e| e.to_string())?
            .create_consumer(pull::Config {
                name: Some(name.clone()),
                description: Some(format!("consultation {}", open.record_id)),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: request.from.max(1),
                },
                ack_policy: AckPolicy::None,
                memory_storage: true,
                inactive_threshold: CONSUMER_IDLE,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match created {
        Ok(_) => {
            info!(auditor = %open.auditor, from = request.from, "Reader opened for a consultation");
            ReadReply {
                consumer: name,
                ..ReadReply::default()
            }
        }
        Err(e) => {
            warn!(error = %e, "Reader not opened");
            refuse(
                "unavailable",
                "the ledger cannot be read now; try again".into(),
            )
        }
    }
}

/// A refused read request's answer.
fn refuse(code: &str, reason: String) -> ReadReply {
    ReadReply {
        consumer: String::new(),
        code: code.into(),
        reason,
    }
}

/// Writes the consultation (or refusal) record and waits until it is chained.
async fn record(
    js: &jetstream::Context,
    writer: &Writer,
    request: &ConsultRequest,
    verdict: &Result<Claims, Refused>,
) -> ConsultReply {
    let record_id = uuid::Uuid::new_v4().to_string();
    let (decision, code, reason, author) = match verdict {
        Ok(claims) => (
            Decision::Accepted,
            String::new(),
            format!("{} {}", request.action, request.scope),
            claims.sub.clone(),
        ),
        Err((code, reason)) => (
            Decision::Refused,
            (*code).to_owned(),
            reason.clone(),
            String::new(),
        ),
    };
    let audit = AuditRecord {
        record_id: record_id.clone(),
        operation: Operation::Consultation as i32,
        decision: decision as i32,
        code: code.clone(),
        reason: reason.trim().to_owned(),
        purpose: request.purpose.chars().take(256).collect(),
        time: Some(liaison_core::time::timestamp_now()),
        agency: AgencyId::parse(&request.auditor)
            .map(|a| a.to_string())
            .unwrap_or_default(),
        author,
        service: "audit".into(),
        ..Default::default()
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", record_id.as_str());
    let stored = async {
        js.publish_with_headers(
            subjects::decisions("audit"),
            headers,
            audit.encode_to_vec().into(),
        )
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    let chained = match stored {
        Ok(ack) => {
            writer
                .wait_chained(ack.sequence, Duration::from_secs(10))
                .await
        }
        Err(_) => false,
    };
    match (verdict, chained) {
        (Ok(_), true) => ConsultReply {
            granted: true,
            record_id,
            code,
            reason: String::new(),
            grant: String::new(),
            last: 0,
            scoped: false,
            scope: String::new(),
        },
        (Ok(_), false) => ConsultReply {
            granted: false,
            record_id,
            code: "unavailable".into(),
            reason: "the consultation could not be recorded in the ledger now; try again".into(),
            grant: String::new(),
            last: 0,
            scoped: false,
            scope: String::new(),
        },
        (Err(_), _) => ConsultReply {
            granted: false,
            record_id,
            code,
            reason,
            grant: String::new(),
            last: 0,
            scoped: false,
            scope: String::new(),
        },
    }
}
