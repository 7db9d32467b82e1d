//! Suspending and resuming an agency, live (docs/decisions/0020-live-membership.md).
//! A named operator, registered with their key in `paths.operators`, sends
//! a signed request on `liaison.admin.agencies` (token `aud`
//! `liaison-admin`; body `{"action": "suspend"|"resume", "agency": ID,
//! "reason": TEXT}`). Any gateway checks it, records it in the ledger
//! (operation MEMBERSHIP_CHANGE: who, what, why, when) and writes the
//! agency's status to the KV bucket `MEMBERSHIP`; every gateway watches
//! the bucket and applies it within milliseconds. A suspended agency is
//! refused `agency_suspended` at both doors — envelopes, case queries and
//! its inbox, whose copies are held, not lost, until it is resumed.
//!
//! A key revoked (`"action": "revoke"`, with its `kid`) is refused at once on
//! every replica, cached verifications or not: `bad_signature`, the reason
//! naming the revocation. Revocations are kept under `<agency>.revoked.<kid>`
//! and never lifted (a new key is registered instead).

use crate::Shared;
use crate::refusal::Refusal;
use liaison_core::tokens::TokenVerifier;
use liaison_core::{AgencyId, NatsContext as _, subjects};
use liaison_proto::v1::{AuditRecord, Decision, Operation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The KV bucket of agencies' membership status.
pub use liaison_runtime::provision::MEMBERSHIP_BUCKET as BUCKET;
/// The audience of operators' tokens.
pub const AUDIENCE: &str = "liaison-admin";
/// Largest request read (an agency's entry is at most 64 KiB).
const MAX_REQUEST: usize = 80 * 1024;
/// Longest reason.
const MAX_REASON: usize = 500;

/// An agency's status as last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub suspended: bool,
    pub reason: String,
    /// The operator who changed it.
    pub by: String,
    /// Unix seconds.
    pub at: u64,
}

/// What an operator asks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    action: String,
    agency: String,
    reason: String,
    /// With `revoke` and `retire-key`: the key.
    #[serde(default)]
    kid: Option<String>,
    /// With `add` and `update`: the agency's `[[agency]]` block; with
    /// `add-key`: the key entry (TOML).
    #[serde(default)]
    entry: Option<String>,
}

/// What a key's revocation says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub reason: String,
    pub by: String,
    pub at: u64,
}

/// The KV key of `agency`'s revoked key `kid`.
fn revocation_key(agency: &AgencyId, kid: &str) -> String {
    format!("{agency}.revoked.{kid}")
}

/// What the gateway answers.
#[derive(Debug, Serialize)]
struct Answer {
    ok: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    /// A registry change: what changed, in words.
    #[serde(skip_serializing_if = "String::is_empty")]
    changed: String,
}

/// What a request changed.
enum Changed {
    Status(Status),
    Registry(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorFile {
    operator: Vec<Operator>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Operator {
    id: AgencyId,
    #[allow(dead_code)] // shown to people reading the file
    name: String,
    keys: Vec<liaison_core::tokens::KeySpec>,
}

/// Loads the operators' registry into a token verifier; `None` when the
/// file does not exist (then nobody may change membership).
pub fn load_operators(
    path: &Path,
    skew: u64,
    max_lifetime: u64,
) -> Result<Option<TokenVerifier>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("operators {}: {e}", path.display())),
    };
    let file: OperatorFile =
        toml::from_str(&text).map_err(|e| format!("operators {}: {e}", path.display()))?;
    let keys = file
        .operator
        .iter()
        .map(|o| (o.id.as_str(), o.keys.as_slice()));
    TokenVerifier::new(keys, AUDIENCE, skew, max_lifetime)
        .map(Some)
        .map_err(|e| format!("operators {}: {e}", path.display()))
}

/// Membership as this gateway knows it.
pub struct Membership {
    kv: async_nats::jetstream::kv::Store,
    operators: Option<TokenVerifier>,
    operators_path: String,
    suspended: RwLock<HashMap<AgencyId, Status>>,
    /// By agency, then kid: a token's header is read only for an agency
    /// with a revoked key.
    revoked: RwLock<HashMap<AgencyId, HashMap<String, Revocation>>>,
}

impl Membership {
    pub async fn open(
        js: &async_nats::jetstream::Context,
        config: &liaison_runtime::config::Config,
    ) -> Result<Self, crate::GatewayError> {
        let operators = load_operators(
            &config.paths.operators,
            config.gateway.clock_skew_secs,
            config.gateway.max_token_lifetime_secs,
        )
        .map_err(crate::GatewayError::Keys)?;
        let kv = js
            .get_key_value(BUCKET)
            .await
            .nats(format!("KV bucket {BUCKET}"))?;
        Ok(Self {
            kv,
            operators,
            operators_path: config.paths.operators.display().to_string(),
            suspended: RwLock::new(HashMap::new()),
            revoked: RwLock::new(HashMap::new()),
        })
    }

    /// The `MEMBERSHIP` bucket.
    pub fn store(&self) -> &async_nats::jetstream::kv::Store {
        &self.kv
    }

    /// Refuses a suspended agency.
    pub fn check(&self, agency: &AgencyId) -> Result<(), Refusal> {
        let suspended = match self.suspended.read() {
            Ok(map) => map.get(agency).cloned(),
            Err(poisoned) => poisoned.into_inner().get(agency).cloned(),
        };
        match suspended {
            Some(status) => Err(Refusal::AgencySuspended {
                agency: agency.to_string(),
                reason: status.reason,
            }),
            None => Ok(()),
        }
    }

    /// Refuses a token signed with a revoked key of `agency`.
    pub fn check_key(&self, agency: &AgencyId, token: &str) -> Result<(), Refusal> {
        let revoked = match self.revoked.read() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(keys) = revoked.get(agency) else {
            return Ok(());
        };
        let Some((kid, r)) =
            liaison_core::tokens::token_kid(token).and_then(|kid| keys.get(&kid).map(|r| (kid, r)))
        else {
            return Ok(());
        };
        Err(Refusal::BadSignature(format!(
            "key {kid} of {agency} was revoked by {} ({})",
            r.by, r.reason
        )))
    }

    fn revoke(&self, agency: AgencyId, kid: String, revocation: Revocation) {
        let mut map = match self.revoked.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(agency).or_default().insert(kid, revocation);
    }

    fn apply(&self, agency: AgencyId, status: Option<Status>) {
        let mut map = match self.suspended.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        match status {
            Some(status) if status.suspended => {
                map.insert(agency, status);
            }
            _ => {
                map.remove(&agency);
            }
        }
    }

    /// Reads the bucket whole, then follows it until `shutdown`.
    ///
    /// `on_suspended` is called for each suspension made while this gateway
    /// follows the bucket (not those replayed at start): every replica then
    /// closes the agency's connections, so they are closed even if the
    /// gateway that made the change stops before it does.
    pub async fn watch(
        &self,
        shutdown: CancellationToken,
        on_suspended: impl Fn(AgencyId),
    ) -> Result<(), liaison_core::NatsError> {
        liaison_runtime::consume::follow_bucket(&self.kv, "membership", &shutdown, |entry| {
            if let Some((agency, kid)) = entry.key.split_once(".revoked.") {
                if let (Ok(agency), Ok(revocation)) = (
                    AgencyId::parse(agency),
                    serde_json::from_slice::<Revocation>(&entry.value),
                ) {
                    self.revoke(agency, kid.to_owned(), revocation);
                }
                return;
            }
            let Ok(agency) = AgencyId::parse(&entry.key) else {
                return;
            };
            let status = serde_json::from_slice::<Status>(&entry.value).ok();
            let suspended = status.as_ref().is_some_and(|s| s.suspended);
            self.apply(agency.clone(), status);
            if suspended && entry.seen_current {
                on_suspended(agency);
            }
        })
        .await
    }

    /// The operator who signed `token` (aud `liaison-admin`), verified.
    pub fn operator(&self, token: Option<&str>) -> Result<String, String> {
        let Some(operators) = &self.operators else {
            return Err(format!(
                "no operators are registered (paths.operators: {}): nobody may ask this",
                self.operators_path
            ));
        };
        let token = token.ok_or("no operator token (header Liaison-Token)")?;
        let operator = liaison_core::tokens::token_issuer(token)
            .ok_or("the operator token names no issuer")?;
        let claims = operators
            .verify(&operator, token, liaison_core::time::unix_now())
            .map_err(|e| format!("operator token refused: {e}"))?;
        Ok(claims.iss)
    }

    /// The status in force after one watch round: whether the change was
    /// written (for tests and the CLI's answer).
    async fn change(
        &self,
        shared: &Shared,
        token: Option<&str>,
        body: &[u8],
    ) -> Result<Changed, String> {
        if self.operators.is_none() {
            return Err(format!(
                "no operators are registered (paths.operators: {}): nobody may change membership",
                self.operators_path
            ));
        }
        if body.len() > MAX_REQUEST {
            return Err(format!("the request is over {MAX_REQUEST} bytes"));
        }
        let request: Request = serde_json::from_slice(body).map_err(|e| {
            format!(
                "the request must be {{\"action\": ACTION, \"agency\": ID, \"reason\": TEXT, \"kid\"?: KID, \"entry\"?: TOML}} (line {} column {})",
                e.line(),
                e.column()
            )
        })?;
        let operator = self.operator(token)?;
        let agency = AgencyId::parse(&request.agency).map_err(|e| e.to_string())?;
        let reason = request.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON {
            return Err(format!("give a reason of 1 to {MAX_REASON} characters"));
        }
        if crate::enrolment::ACTIONS.contains(&request.action.as_str()) {
            let change = crate::enrolment::Change {
                action: &request.action,
                agency,
                entry: request.entry.as_deref(),
                kid: request.kid.as_deref(),
                reason,
                operator: &operator,
            };
            return crate::enrolment::make(shared, change)
                .await
                .map(Changed::Registry);
        }
        if shared.registry().get(&agency).is_none() {
            return Err(format!("{agency} is not a registered agency"));
        }
        let suspended = match request.action.as_str() {
            "suspend" => true,
            "resume" | "revoke" => false,
            other => {
                return Err(format!(
                    "action {:?}: give one of suspend, resume, revoke, {}",
                    other.chars().take(32).collect::<String>(),
                    crate::enrolment::ACTIONS.join(", ")
                ));
            }
        };
        if request.action == "revoke" {
            let kid = request.kid.as_deref().ok_or("revoke: give the key's kid")?;
            return self
                .revoke_key(shared, &agency, kid, reason, &operator)
                .await
                .map(Changed::Status);
        }
        let status = Status {
            suspended,
            reason: reason.to_owned(),
            by: operator.clone(),
            at: liaison_core::time::unix_now(),
        };
        // Recorded before it takes effect: no change without its record.
        shared
            .recorder
            .publish(&record(&agency, &status))
            .await
            .map_err(|e| format!("the change's ledger record could not be stored: {e}"))?;
        let value = serde_json::to_vec(&status).map_err(|e| e.to_string())?;
        self.kv
            .put(agency.as_str(), value.into())
            .await
            .map_err(|e| format!("the membership bucket: {e}"))?;
        // This gateway at once; the others (and this one again) by the watch.
        self.apply(agency.clone(), Some(status.clone()));
        info!(agency = %agency, operator = %status.by, suspended, "Membership changed");
        // Its open connections are closed by every replica, this one
        // included, as the bucket's watch delivers the suspension (`watch`).
        Ok(Changed::Status(status))
    }
}

impl Membership {
    /// Revokes `agency`'s registered key `kid`: recorded, written, applied.
    async fn revoke_key(
        &self,
        shared: &Shared,
        agency: &AgencyId,
        kid: &str,
        reason: &str,
        by: &str,
    ) -> Result<Status, String> {
        let registered = shared
            .registry()
            .get(agency)
            .map(|a| {
                a.keys
                    .iter()
                    .filter_map(|k| k.key_id().ok())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if !registered.iter().any(|k| k == kid) {
            return Err(format!(
                "{:?} is not a registered key of {agency} (its keys: {})",
                kid.chars().take(64).collect::<String>(),
                registered.join(", ")
            ));
        }
        let revocation = Revocation {
            reason: reason.to_owned(),
            by: by.to_owned(),
            at: liaison_core::time::unix_now(),
        };
        let mut entry = record(
            agency,
            &Status {
                suspended: false,
                reason: format!("key {kid} revoked: {reason}"),
                by: by.to_owned(),
                at: revocation.at,
            },
        );
        entry.record_id = format!("membership:{agency}:revoke:{kid}:{}", revocation.at);
        entry.code = "key_revoked".into();
        shared
            .recorder
            .publish(&entry)
            .await
            .map_err(|e| format!("the revocation's ledger record could not be stored: {e}"))?;
        let value = serde_json::to_vec(&revocation).map_err(|e| e.to_string())?;
        self.kv
            .put(revocation_key(agency, kid), value.into())
            .await
            .map_err(|e| format!("the membership bucket: {e}"))?;
        self.revoke(agency.clone(), kid.to_owned(), revocation.clone());
        info!(agency = %agency, operator = %by, "Key revoked");
        // The agency's standing is unchanged: what the answer reports.
        let suspended = self.check(agency).is_err();
        Ok(Status {
            suspended,
            reason: format!("key {kid} revoked: {reason}"),
            by: by.to_owned(),
            at: revocation.at,
        })
    }
}

/// The ledger record of a membership change.
fn record(agency: &AgencyId, status: &Status) -> AuditRecord {
    AuditRecord {
        record_id: format!("membership:{agency}:{}:{}", status.at, status.suspended),
        operation: Operation::MembershipChange as i32,
        decision: Decision::Accepted as i32,
        code: if status.suspended {
            "agency_suspended"
        } else {
            "agency_resumed"
        }
        .into(),
        reason: status.reason.clone(),
        agency: agency.to_string(),
        author: status.by.clone(),
        time: Some(liaison_core::time::timestamp_now()),
        service: "gateway".into(),
        ..Default::default()
    }
}

/// The ledger record of a refused membership change (who asked is not
/// known until the token is verified: the reason says what was wrong).
fn refused_record(error: &str) -> AuditRecord {
    let at = liaison_core::time::timestamp_now();
    AuditRecord {
        record_id: format!("membership-refused:{}.{}", at.seconds, at.nanos),
        operation: Operation::MembershipChange as i32,
        decision: Decision::Refused as i32,
        code: "membership_refused".into(),
        reason: error.chars().take(500).collect(),
        time: Some(at),
        service: "gateway".into(),
        ..Default::default()
    }
}

/// Answers an operator's question about inboxes (`liaison.admin.inboxes`):
/// the operator may not read DELIVERY, the gateway may.
pub async fn answer_backlogs(shared: &Shared, message: async_nats::Message) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    let answer = liaison_runtime::inbox::answer_backlogs(&shared.js, &message.payload).await;
    let body = serde_json::to_vec(&answer).unwrap_or_default();
    if let Err(e) = shared.client.publish(reply, body.into()).await {
        warn!(error = %e, "Inbox backlog answer not sent");
    }
}

/// Answers one operator request on `liaison.admin.agencies`.
pub async fn answer(shared: &Shared, message: async_nats::Message) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    let token = message
        .headers
        .as_ref()
        .and_then(|h| h.get(subjects::TOKEN_HEADER))
        .map(|v| v.as_str().to_owned());
    let answer = match shared
        .membership
        .change(shared, token.as_deref(), &message.payload)
        .await
    {
        Ok(Changed::Status(status)) => Answer {
            ok: true,
            error: String::new(),
            status: Some(status),
            changed: String::new(),
        },
        Ok(Changed::Registry(changed)) => Answer {
            ok: true,
            error: String::new(),
            status: None,
            changed,
        },
        Err(error) => {
            warn!(error = %error, "Membership change refused");
            shared.recorder.keep(refused_record(&error)).await;
            Answer {
                ok: false,
                error,
                status: None,
                changed: String::new(),
            }
        }
    };
    let body = serde_json::to_vec(&answer).unwrap_or_default();
    if let Err(e) = shared.client.publish(reply, body.into()).await {
        warn!(error = %e, "Membership answer not sent");
    }
}
