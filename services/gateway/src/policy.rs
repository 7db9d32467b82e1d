//! Access policy: Cedar policies over agencies, messages and data labels,
//! loaded from a directory (`*.cedarschema` and `*.cedar`) and validated
//! against the schema at start. Answers three questions for the gateway: may
//! this agency send this message; which agencies receive a copy; which labels
//! each may see. Every answer names the policies (ISA clauses) that decided.

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use liaison_core::AgencyId;
use liaison_proto::v1::{DataLabel, Envelope};
use liaison_runtime::registry::{Agency, Registry};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy directory {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("policy directory {path} has no schema (*.cedarschema)")]
    NoSchema { path: String },
    #[error("invalid Cedar schema {path}: {reason}")]
    Schema { path: String, reason: String },
    #[error("invalid Cedar policy {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("policies in {path} do not validate against the schema: {reason}")]
    Invalid { path: String, reason: String },
    #[error("cannot build policy entities: {0}")]
    Entities(String),
    #[error("vocabulary {path}: {reason}")]
    Vocabulary { path: String, reason: String },
    #[error("policy {0} permits without naming its clause: add @id(\"ISA-…/…\")")]
    Unnamed(String),
    #[error(
        "clause {clause}: @retention({value:?}) is not a period: a number then y (365 days), m (30 days), d, h or s, e.g. \"6y\" or \"90d\""
    )]
    Retention { clause: String, value: String },
    #[error("clause {clause}: @{annotation}({value:?}) is not a date (YYYY-MM-DD)")]
    Date {
        clause: String,
        annotation: &'static str,
        value: String,
    },
}

/// A clause's dates, from its annotations: `@expires("YYYY-MM-DD")`, the
/// last day it permits anything (an information-sharing agreement lapses),
/// and `@review("YYYY-MM-DD")`, when the partnership must review it. Days
/// since 1970-01-01 (UTC). And `@retention("6y")`: how long what it lets
/// be shared is kept (in seconds here), after which its data keys are
/// destroyed (ADR 0022).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Terms {
    pub expires: Option<u64>,
    pub review: Option<u64>,
    pub retention: Option<u64>,
}

/// Seconds of a retention period: a number then `y` (365 days), `m` (30
/// days), `d`, `h` or `s`.
pub fn parse_period(text: &str) -> Option<u64> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number: u64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        'y' => 365 * 86_400,
        'm' => 30 * 86_400,
        'd' => 86_400,
        'h' => 3_600,
        's' => 1,
        _ => return None,
    };
    number
        .checked_mul(secs)
        .filter(|s| *s <= 200 * 365 * 86_400)
}

/// A retention period in words, e.g. `6y`, `90d`, `2s`.
pub fn format_period(secs: u64) -> String {
    for (unit, size) in [('y', 365 * 86_400), ('d', 86_400), ('h', 3_600)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian).
pub fn parse_day(text: &str) -> Option<u64> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in[m as usize - 1]
    {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

/// `YYYY-MM-DD` of a day since 1970-01-01.
pub fn format_day(day: u64) -> String {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Today, in days since 1970-01-01 (UTC).
pub fn today() -> u64 {
    liaison_core::time::unix_now() / 86_400
}

/// The purposes, legal bases and handling caveats an envelope may carry
/// (`vocabulary.toml` beside the policies), each with what it means.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    pub purposes: BTreeMap<String, String>,
    pub legal_bases: BTreeMap<String, String>,
    #[serde(default)]
    pub caveats: BTreeMap<String, String>,
}

impl Vocabulary {
    /// Checks the envelope's purpose, legal basis and caveats are known terms,
    /// naming the field and the terms allowed.
    pub fn check(&self, envelope: &Envelope) -> Result<(), (&'static str, String)> {
        let known =
            |terms: &BTreeMap<String, String>| terms.keys().cloned().collect::<Vec<_>>().join(", ");
        if !self.purposes.contains_key(&envelope.purpose) {
            return Err((
                "purpose",
                format!("must be one of: {}", known(&self.purposes)),
            ));
        }
        if !self.legal_bases.contains_key(&envelope.legal_basis) {
            return Err((
                "legal_basis",
                format!("must be a code of: {}", known(&self.legal_bases)),
            ));
        }
        if let Some(caveat) = envelope
            .handling_caveats
            .iter()
            .find(|c| !self.caveats.contains_key(*c))
        {
            return Err((
                "handling_caveats",
                format!(
                    "{:?} is not a caveat of the vocabulary ({})",
                    caveat.chars().take(64).collect::<String>(),
                    known(&self.caveats)
                ),
            ));
        }
        Ok(())
    }
}

/// A decision and the clauses behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// `@id` annotations of the policies that decided (permits when allowed, forbids when denied).
    pub clauses: Vec<String>,
    /// Errors met while evaluating (a policy that errors does not permit).
    pub errors: Vec<String>,
    /// Clauses that would have permitted it but have lapsed (`@expires`
    /// passed), each with its date: then it is not allowed.
    pub lapsed: Vec<String>,
}

/// One recipient's copy: who, which labels are withheld, and which clauses allowed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub recipient: AgencyId,
    pub withheld: BTreeSet<DataLabel>,
    pub clauses: Vec<String>,
}

/// The loaded, validated policy set with the registry's agencies as entities.
pub struct Policy {
    schema: Schema,
    policies: PolicySet,
    vocabulary: Vocabulary,
    /// SHA-256 over the schema, policies and vocabulary as read.
    digest: String,
    /// Liaison's own services as entities. Agencies' entities are built
    /// from the registry for each decision, only for the few it is about:
    /// kept for all, 25,000 of them held ~90 MiB.
    systems: HashMap<AgencyId, Entity>,
    authorizer: Authorizer,
    /// Agencies a policy names by id (`Liaison::Agency::"police"`): each is
    /// decided on its own, never as one of an attribute class.
    named: BTreeSet<AgencyId>,
    /// Decisions already taken, by everything the policy can see of a
    /// message (never its id or body): most traffic repeats a few shapes, so
    /// most envelopes cost a lookup, not ~60 Cedar evaluations. Belongs to
    /// this policy set: a reload starts a new one.
    decided: std::sync::Mutex<HashMap<Shape, Decided>>,
    /// Each policy's dates ([`Terms`]).
    terms: HashMap<cedar_policy::PolicyId, Terms>,
    /// Each clause's `@retention` (seconds), by `@id`: asked per envelope.
    retentions: HashMap<String, u64>,
    /// How many expiry dates had passed when the cached decisions were
    /// taken: when another passes, the cache is emptied.
    lapses: std::sync::atomic::AtomicUsize,
}

/// A cached decision, and the sender it was worked out for.
#[derive(Clone)]
struct Decided {
    outcome: Outcome,
    routes: Vec<Route>,
    sender: AgencyId,
}

/// Who sent, as the decision cache knows it: the agency, or — when neither
/// the message nor a policy names it — its attribute class, which all its
/// class-mates share (the schools of an area: one decision for all).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SenderKey {
    Agency(AgencyId),
    Class(u32),
}

/// What the gateway looked up about an envelope before asking the policy:
/// its case (from the cases service's participation) and the envelope it
/// answers (from the receipts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Facts {
    /// Agencies participating in the envelope's case (empty if none).
    pub participants: Vec<AgencyId>,
    /// The owner of the envelope's case, if the case exists.
    pub owner: Option<AgencyId>,
    /// The envelope named in `in_reply_to`, if any.
    pub replied: Option<Replied>,
}

/// Who sent, and who received, the envelope an envelope answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Replied {
    pub sender: AgencyId,
    pub recipients: Vec<AgencyId>,
    pub kind: String,
}

impl Facts {
    /// Facts about a case only (no reply).
    pub fn case(participants: &[AgencyId]) -> Self {
        Self {
            owner: participants.first().cloned(),
            participants: participants.to_vec(),
            replied: None,
        }
    }
}

/// Most message shapes remembered; the cache starts again when full.
const MAX_SHAPES: usize = 4096;

/// What the policy sees of a message: the Cedar entity's attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Shape {
    sender: SenderKey,
    kind: &'static str,
    classification: i32,
    purpose: String,
    legal_basis: String,
    caveats: Vec<String>,
    has_case: bool,
    facts: Facts,
    addressees: Vec<String>,
    added: Vec<String>,
    sectors: Vec<String>,
    region: String,
}

fn type_name(name: &str) -> EntityTypeName {
    // Literal names from our own schema always parse.
    #[allow(clippy::expect_used)]
    EntityTypeName::from_str(name).expect("valid Cedar type name")
}

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name(kind), EntityId::new(id))
}

fn action(name: &str) -> EntityUid {
    uid("Liaison::Action", name)
}

fn agency_uid(id: &AgencyId) -> EntityUid {
    uid("Liaison::Agency", id.as_str())
}

/// What a policy directory holds, as read.
struct Sources {
    schema_path: String,
    schema: String,
    policies: String,
    vocabulary_path: String,
    vocabulary: String,
    digest: String,
}

fn read_dir(dir: &Path) -> Result<Sources, PolicyError> {
    let path = dir.display().to_string();
    let read_err = |e: std::io::Error| PolicyError::Read {
        path: path.clone(),
        reason: e.to_string(),
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut schema = None;
    let mut policies = String::new();
    let mut hasher = Sha256::new();
    let vocabulary_file = dir.join("vocabulary.toml");
    for file in files {
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if ext != "cedar" && ext != "cedarschema" && file != vocabulary_file {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(read_err)?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
        if file == vocabulary_file {
            continue;
        }
        if ext == "cedarschema" {
            schema = Some((file.display().to_string(), text));
        } else {
            // Parse each file on its own so errors name the file.
            PolicySet::from_str(&text).map_err(|e| PolicyError::Parse {
                path: file.display().to_string(),
                reason: format!("{e:?}"),
            })?;
            policies.push_str(&text);
            policies.push('\n');
        }
    }
    let (schema_path, schema) = schema.ok_or(PolicyError::NoSchema { path: path.clone() })?;
    let vocabulary_path = vocabulary_file.display().to_string();
    let vocabulary =
        std::fs::read_to_string(&vocabulary_file).map_err(|e| PolicyError::Vocabulary {
            path: vocabulary_path.clone(),
            reason: e.to_string(),
        })?;
    Ok(Sources {
        schema_path,
        schema,
        policies,
        vocabulary_path,
        vocabulary,
        digest: hex::encode(hasher.finalize()),
    })
}

/// Every policy's [`Terms`], from its `@expires` and `@review` annotations.
fn terms_of(policies: &PolicySet) -> Result<HashMap<cedar_policy::PolicyId, Terms>, PolicyError> {
    let mut terms = HashMap::new();
    for policy in policies.policies() {
        let clause = policy
            .annotation("id")
            .map_or_else(|| policy.id().to_string(), str::to_owned);
        let date = |annotation: &'static str| -> Result<Option<u64>, PolicyError> {
            policy
                .annotation(annotation)
                .map(|value| {
                    parse_day(value).ok_or_else(|| PolicyError::Date {
                        clause: clause.clone(),
                        annotation,
                        value: value.to_owned(),
                    })
                })
                .transpose()
        };
        let retention = policy
            .annotation("retention")
            .map(|value| {
                parse_period(value).ok_or_else(|| PolicyError::Retention {
                    clause: clause.clone(),
                    value: value.to_owned(),
                })
            })
            .transpose()?;
        let t = Terms {
            expires: date("expires")?,
            review: date("review")?,
            retention,
        };
        if t != Terms::default() {
            terms.insert(policy.id().clone(), t);
        }
    }
    Ok(terms)
}

impl Policy {
    /// Loads and validates the schema and policies in `dir` for `registry`'s agencies.
    pub fn load(dir: &Path, registry: &Registry) -> Result<Self, PolicyError> {
        let sources = read_dir(dir)?;
        let vocabulary: Vocabulary =
            toml::from_str(&sources.vocabulary).map_err(|e| PolicyError::Vocabulary {
                path: sources.vocabulary_path.clone(),
                reason: e.to_string(),
            })?;
        let (schema, _warnings) =
            Schema::from_cedarschema_str(&sources.schema).map_err(|e| PolicyError::Schema {
                path: sources.schema_path.clone(),
                reason: format!("{e:?}"),
            })?;
        let policies = PolicySet::from_str(&sources.policies).map_err(|e| PolicyError::Parse {
            path: dir.display().to_string(),
            reason: format!("{e:?}"),
        })?;
        if let Some(unnamed) = policies
            .policies()
            .find(|p| p.effect() == cedar_policy::Effect::Permit && p.annotation("id").is_none())
        {
            return Err(PolicyError::Unnamed(unnamed.id().to_string()));
        }
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let reasons: Vec<String> = result.validation_errors().map(|e| format!("{e}")).collect();
            return Err(PolicyError::Invalid {
                path: dir.display().to_string(),
                reason: reasons.join("; "),
            });
        }
        let named = named_agencies(&sources.policies);
        Self::assemble(
            schema,
            policies,
            vocabulary,
            sources.digest,
            named,
            registry,
        )
    }

    /// This policy set for another registry (the live registry changed):
    /// the same rules, checked against the new registry's agencies, with a
    /// fresh decision cache (attribute classes are the registry's).
    pub fn for_registry(&self, registry: &Registry) -> Result<Self, PolicyError> {
        Self::assemble(
            self.schema.clone(),
            self.policies.clone(),
            self.vocabulary.clone(),
            self.digest.clone(),
            self.named.clone(),
            registry,
        )
    }

    fn assemble(
        schema: Schema,
        policies: PolicySet,
        vocabulary: Vocabulary,
        digest: String,
        named: BTreeSet<AgencyId>,
        registry: &Registry,
    ) -> Result<Self, PolicyError> {
        // Liaison's own services send through the internal door as
        // principals of kind "system".
        let caveats: Vec<String> = vocabulary.caveats.keys().cloned().collect();
        let mut systems = HashMap::new();
        for service in liaison_core::system::Service::ALL {
            let system = Agency::system(service.sender(), caveats.clone());
            systems.insert(system.id.clone(), agency_entity(&system)?);
        }
        // Every agency's entity is built the same way from values of the
        // same types, so one of each attribute class stands for its class:
        // checked against the schema here, once.
        let mut classes = HashSet::new();
        let representatives = registry
            .agencies()
            .filter(|a| registry.class_of(&a.id).is_some_and(|c| classes.insert(c)))
            .map(agency_entity)
            .collect::<Result<Vec<_>, _>>()?;
        Entities::from_entities(
            representatives.into_iter().chain(systems.values().cloned()),
            Some(&schema),
        )
        .map_err(|e| PolicyError::Entities(format!("agencies: {e}")))?;
        let terms = terms_of(&policies)?;
        let retentions = terms
            .iter()
            .filter_map(|(id, t)| {
                let clause = policies
                    .annotation(id, "id")
                    .map_or_else(|| id.to_string(), str::to_owned);
                t.retention.map(|r| (clause, r))
            })
            .collect();
        let policy = Self {
            retentions,
            named,
            schema,
            policies,
            vocabulary,
            digest,
            systems,
            authorizer: Authorizer::new(),
            decided: std::sync::Mutex::new(HashMap::new()),
            terms,
            lapses: std::sync::atomic::AtomicUsize::new(0),
        };
        policy.lapses.store(
            policy.lapsed_count(today()),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(policy)
    }

    /// Every clause's dates, by clause (`@id`), for `liaison policy check`.
    pub fn terms(&self) -> BTreeMap<String, Terms> {
        self.terms
            .iter()
            .map(|(id, t)| (self.clause(id), *t))
            .collect()
    }

    /// How long data shared under `clauses` is kept: the longest retention
    /// any of them states, `default` if none states one.
    pub fn retention<'a>(&self, clauses: impl IntoIterator<Item = &'a str>, default: u64) -> u64 {
        let longest = clauses
            .into_iter()
            .filter_map(|clause| self.retentions.get(clause).copied())
            .max();
        longest.unwrap_or(default)
    }

    /// How many clauses' expiry dates are before `day`.
    fn lapsed_count(&self, day: u64) -> usize {
        self.terms
            .values()
            .filter(|t| t.expires.is_some_and(|e| e < day))
            .count()
    }

    /// The lapse of `id` on `day`, worded, if it has lapsed.
    fn lapse(&self, id: &cedar_policy::PolicyId, day: u64) -> Option<String> {
        let expires = self.terms.get(id)?.expires.filter(|e| *e < day)?;
        Some(format!(
            "{} (lapsed: expired {})",
            self.clause(id),
            format_day(expires)
        ))
    }

    /// The digest [`Policy::load`] would give the directory's files now,
    /// without parsing them (the reload watcher's cheap look).
    pub fn digest_of(dir: &Path) -> Result<String, PolicyError> {
        read_dir(dir).map(|s| s.digest)
    }

    /// The vocabulary envelopes are checked against.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// SHA-256 (hex) of the schema, policies and vocabulary this set was loaded from.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The clause (`@id`) of every policy, in order.
    pub fn clauses(&self) -> Vec<String> {
        let mut clauses: Vec<String> = self
            .policies
            .policies()
            .map(|p| self.clause(p.id()))
            .collect();
        clauses.sort();
        clauses
    }

    /// How many policies the set holds.
    pub fn len(&self) -> usize {
        self.policies.policies().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn clause(&self, id: &cedar_policy::PolicyId) -> String {
        self.policies
            .annotation(id, "id")
            .map_or_else(|| id.to_string(), str::to_owned)
    }

    fn decide(
        &self,
        principal: EntityUid,
        action_name: &str,
        resource: EntityUid,
        context: Context,
        entities: &Entities,
    ) -> Outcome {
        let request = match Request::new(
            principal,
            action(action_name),
            resource,
            context,
            Some(&self.schema),
        ) {
            Ok(r) => r,
            Err(e) => {
                return Outcome {
                    allowed: false,
                    clauses: vec![],
                    errors: vec![e.to_string()],
                    lapsed: vec![],
                };
            }
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, entities);
        // A clause past its expiry date permits nothing: when every permit
        // that allowed it has lapsed, it is not allowed, and says why.
        let day = today();
        let mut allowed = response.decision() == Decision::Allow;
        let (mut lapsed, mut live) = (Vec::new(), Vec::new());
        for id in response.diagnostics().reason() {
            match allowed.then(|| self.lapse(id, day)).flatten() {
                Some(lapse) => lapsed.push(lapse),
                None => live.push(self.clause(id)),
            }
        }
        if allowed && live.is_empty() && !lapsed.is_empty() {
            allowed = false;
        }
        live.sort();
        lapsed.sort();
        Outcome {
            allowed,
            clauses: live,
            errors: response
                .diagnostics()
                .errors()
                .map(|e| e.to_string())
                .collect(),
            lapsed,
        }
    }

    /// This message, its sender and the agencies asked about: what a
    /// decision can read (the policies read the attributes of the principal
    /// and of the message's sender only; other agencies appear in the
    /// message as references).
    fn entities_with<'a>(
        &self,
        message: Entity,
        registry: &Registry,
        agencies: impl IntoIterator<Item = &'a AgencyId>,
    ) -> Result<Entities, PolicyError> {
        let mut known = vec![message];
        for id in agencies {
            if let Some(system) = self.systems.get(id) {
                known.push(system.clone());
            } else if let Some(agency) = registry.get(id) {
                known.push(agency_entity(agency)?);
            }
        }
        Entities::from_entities(known, Some(&self.schema))
            .map_err(|e| PolicyError::Entities(e.to_string()))
    }

    /// Decides whether `sender` may send `envelope`, and if so who receives it
    /// and what each may see. `participants`: the agencies participating in
    /// the envelope's case (empty when it has none).
    pub fn evaluate(
        &self,
        sender: &AgencyId,
        envelope: &Envelope,
        registry: &Registry,
        facts: &Facts,
    ) -> Result<(Outcome, Vec<Route>), PolicyError> {
        let alert = alert_addressing(envelope);
        let named = crate::candidates::named(envelope, facts);
        let unnamed = !self.named.contains(sender) && !named.contains(sender);
        let sender_key = match registry.class_of(sender) {
            Some(class) if unnamed => SenderKey::Class(class),
            _ => SenderKey::Agency(sender.clone()),
        };
        let shape = Shape {
            sender: sender_key,
            kind: envelope.kind(),
            classification: envelope.classification,
            purpose: envelope.purpose.clone(),
            legal_basis: envelope.legal_basis.clone(),
            caveats: envelope.handling_caveats.clone(),
            has_case: !envelope.case_id.is_empty(),
            facts: facts.clone(),
            addressees: envelope.addressees.clone(),
            added: added(envelope).to_vec(),
            sectors: alert.0.to_vec(),
            region: alert.1.to_owned(),
        };
        // A clause lapsed since these decisions were cached: decide afresh.
        let lapses = self.lapsed_count(today());
        if self
            .lapses
            .swap(lapses, std::sync::atomic::Ordering::Relaxed)
            != lapses
            && let Ok(mut cache) = self.decided.lock()
        {
            cache.clear();
        }
        if let Some(decided) = self
            .decided
            .lock()
            .ok()
            .and_then(|d| d.get(&shape).cloned())
        {
            return Ok((
                decided.outcome,
                as_sent_by(decided.routes, &decided.sender, sender),
            ));
        }
        let (outcome, routes) = self.decide_named(sender, envelope, registry, facts, &named)?;
        if let Ok(mut cache) = self.decided.lock() {
            if cache.len() >= MAX_SHAPES {
                cache.clear();
            }
            cache.insert(
                shape,
                Decided {
                    outcome: outcome.clone(),
                    routes: routes.clone(),
                    sender: sender.clone(),
                },
            );
        }
        Ok((outcome, routes))
    }

    /// The decision, uncached, for the candidates of `named` (the agencies
    /// the message names, [`crate::candidates::named`]).
    fn decide_named(
        &self,
        sender: &AgencyId,
        envelope: &Envelope,
        registry: &Registry,
        facts: &Facts,
        named: &BTreeSet<AgencyId>,
    ) -> Result<(Outcome, Vec<Route>), PolicyError> {
        let candidates = crate::candidates::candidates(registry, sender, envelope, named);
        // Candidates the message does not name, and no policy names, are
        // decided once per attribute class: the policy can tell them apart
        // only by their attributes, which a class shares.
        let mut classes: BTreeMap<u32, Vec<AgencyId>> = BTreeMap::new();
        let mut groups = Vec::new();
        for id in candidates {
            match registry.class_of(&id) {
                Some(class) if !named.contains(&id) && !self.named.contains(&id) => {
                    classes.entry(class).or_default().push(id);
                }
                _ => groups.push(vec![id]),
            }
        }
        groups.extend(classes.into_values());
        self.decide_for(sender, envelope, registry, facts, groups)
    }

    /// [`Policy::evaluate`] without its cache: a whole decision every
    /// time (for benchmarks; the gateway uses [`Policy::evaluate`]).
    pub fn evaluate_uncached(
        &self,
        sender: &AgencyId,
        envelope: &Envelope,
        registry: &Registry,
        facts: &Facts,
    ) -> Result<(Outcome, Vec<Route>), PolicyError> {
        let named = crate::candidates::named(envelope, facts);
        self.decide_named(sender, envelope, registry, facts, &named)
    }

    /// [`Policy::evaluate`] asking about every registered agency, not only
    /// the candidates: what indexed routing must equal (its cost grows with
    /// the registry; for tests and checks, never the gateway's path).
    pub fn evaluate_every_agency(
        &self,
        sender: &AgencyId,
        envelope: &Envelope,
        registry: &Registry,
        facts: &Facts,
    ) -> Result<(Outcome, Vec<Route>), PolicyError> {
        let everyone = registry
            .ids()
            .into_iter()
            .filter(|a| a != sender)
            .map(|a| vec![a])
            .collect();
        self.decide_for(sender, envelope, registry, facts, everyone)
    }

    /// Decides for each group of candidates (agencies the policy cannot
    /// tell apart) by asking about its first member; routes come out in
    /// agency order.
    fn decide_for(
        &self,
        sender: &AgencyId,
        envelope: &Envelope,
        registry: &Registry,
        facts: &Facts,
        groups: Vec<Vec<AgencyId>>,
    ) -> Result<(Outcome, Vec<Route>), PolicyError> {
        let groups: Vec<Vec<AgencyId>> = groups
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .filter(|a| registry.get(a).is_some())
                    .collect::<Vec<_>>()
            })
            .filter(|g| !g.is_empty())
            .collect();
        let question = self.question(
            sender,
            envelope,
            registry,
            facts,
            groups.iter().map(|g| &g[0]),
        )?;
        let send = question.send(self);
        if !send.allowed {
            return Ok((send, vec![]));
        }
        let mut routes = Vec::new();
        for group in &groups {
            let copy = question.copy_for(self, &group[0]);
            if !copy.receive.allowed {
                continue;
            }
            let mut clauses: BTreeSet<String> = copy.receive.clauses.into_iter().collect();
            let mut withheld = BTreeSet::new();
            for (label, see) in copy.labels {
                if see.allowed {
                    clauses.extend(see.clauses);
                } else {
                    withheld.insert(label);
                }
            }
            let clauses: Vec<String> = clauses.into_iter().collect();
            routes.extend(group.iter().map(|recipient| Route {
                recipient: recipient.clone(),
                withheld: withheld.clone(),
                clauses: clauses.clone(),
            }));
        }
        routes.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        Ok((send, routes))
    }

    /// Every decision about one envelope and one would-be recipient, with the
    /// clauses behind each: what `liaison policy explain` prints.
    pub fn explain(
        &self,
        sender: &AgencyId,
        envelope: &Envelope,
        registry: &Registry,
        facts: &Facts,
        recipient: &AgencyId,
    ) -> Result<Explanation, PolicyError> {
        let question = self.question(sender, envelope, registry, facts, [recipient])?;
        Ok(Explanation {
            send: question.send(self),
            copy: question.copy_for(self, recipient),
        })
    }

    fn question<'a>(
        &self,
        sender: &'a AgencyId,
        envelope: &Envelope,
        registry: &Registry,
        facts: &Facts,
        asked: impl IntoIterator<Item = &'a AgencyId>,
    ) -> Result<Question, PolicyError> {
        // One uid for every message: a decision may depend only on the
        // attributes (what the cache is keyed by), never on the envelope id.
        let message = uid("Liaison::Message", "message");
        let entities = self.entities_with(
            message_entity(&message, sender, envelope, facts)?,
            registry,
            std::iter::once(sender).chain(asked),
        )?;
        let label_context = Context::from_pairs([(
            "message".to_owned(),
            RestrictedExpression::new_entity_uid(message.clone()),
        )])
        .map_err(|e| PolicyError::Entities(e.to_string()))?;
        Ok(Question {
            sender: sender.clone(),
            message,
            entities,
            label_context,
        })
    }
}

/// What was decided for one recipient: whether it receives a copy, and for
/// each data label whether it may see the fields so labelled.
#[derive(Debug, Clone)]
pub struct Copy {
    pub receive: Outcome,
    pub labels: Vec<(DataLabel, Outcome)>,
}

/// `liaison policy explain`'s answer.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub send: Outcome,
    pub copy: Copy,
}

/// One envelope, ready to ask the policy about.
struct Question {
    sender: AgencyId,
    message: EntityUid,
    entities: Entities,
    label_context: Context,
}

impl Question {
    fn send(&self, policy: &Policy) -> Outcome {
        policy.decide(
            agency_uid(&self.sender),
            "send",
            self.message.clone(),
            Context::empty(),
            &self.entities,
        )
    }

    fn copy_for(&self, policy: &Policy, recipient: &AgencyId) -> Copy {
        let receive = policy.decide(
            agency_uid(recipient),
            "receive",
            self.message.clone(),
            Context::empty(),
            &self.entities,
        );
        let labels = if receive.allowed {
            DataLabel::all()
                .map(|label| {
                    let see = policy.decide(
                        agency_uid(recipient),
                        "see-label",
                        uid("Liaison::Label", label.short_name()),
                        self.label_context.clone(),
                        &self.entities,
                    );
                    (label, see)
                })
                .collect()
        } else {
            vec![]
        };
        Copy { receive, labels }
    }
}

fn agency_entity(agency: &Agency) -> Result<Entity, PolicyError> {
    let attrs: HashMap<String, RestrictedExpression> = [
        (
            "kind",
            RestrictedExpression::new_string(agency.kind.as_str().to_owned()),
        ),
        (
            "clearance",
            RestrictedExpression::new_long(agency.clearance.level() as i64),
        ),
        (
            "sector",
            RestrictedExpression::new_string(agency.sector.clone().unwrap_or_default()),
        ),
        (
            "region",
            RestrictedExpression::new_string(agency.region.clone().unwrap_or_default()),
        ),
        ("areas", strings(&agency.areas)),
        ("caveats", strings(&agency.caveats)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Entity::new(agency_uid(&agency.id), attrs, HashSet::new())
        .map_err(|e| PolicyError::Entities(format!("agency {}: {e}", agency.id)))
}

/// Routes worked out for `decided_for`, as they are for its class-mate
/// `sender`: the two are indistinguishable to the policy, so `sender`'s own
/// route (it never receives its own envelope) becomes `decided_for`'s.
fn as_sent_by(mut routes: Vec<Route>, decided_for: &AgencyId, sender: &AgencyId) -> Vec<Route> {
    if decided_for == sender {
        return routes;
    }
    if let Some(route) = routes.iter_mut().find(|r| &r.recipient == sender) {
        route.recipient = decided_for.clone();
        routes.sort_by(|a, b| a.recipient.cmp(&b.recipient));
    }
    routes
}

/// The agency ids policy text names as `Agency::"id"` (with any namespace
/// and spacing Cedar allows around `::`).
fn named_agencies(text: &str) -> BTreeSet<AgencyId> {
    let mut named = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("Agency") {
        rest = &rest[at + "Agency".len()..];
        let after = rest.trim_start();
        let Some(after) = after.strip_prefix("::") else {
            continue;
        };
        let Some(quoted) = after.trim_start().strip_prefix('"') else {
            continue;
        };
        if let Some(id) = quoted
            .split('"')
            .next()
            .and_then(|id| AgencyId::parse(id).ok())
        {
            named.insert(id);
        }
    }
    named
}

fn strings(items: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(items.iter().cloned().map(RestrictedExpression::new_string))
}

/// Agencies as a set of entity references; ids that are not valid agency ids
/// are left out (validation refuses them before policy is asked).
fn agency_set<'a>(ids: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(
        ids.into_iter()
            .filter_map(|id| AgencyId::parse(id).ok())
            .map(|id| RestrictedExpression::new_entity_uid(agency_uid(&id))),
    )
}

/// The agencies a participation change adds (they are told, as addressees).
pub(crate) fn added(envelope: &Envelope) -> &[String] {
    match &envelope.body {
        Some(liaison_proto::v1::envelope::Body::Participation(p)) => &p.added,
        _ => &[],
    }
}

/// The sectors and region an alert is addressed to (none for other kinds).
fn alert_addressing(envelope: &Envelope) -> (&[String], &str) {
    match &envelope.body {
        Some(liaison_proto::v1::envelope::Body::Alert(a)) => (&a.sectors, &a.region),
        _ => (&[], ""),
    }
}

fn message_entity(
    uid: &EntityUid,
    sender: &AgencyId,
    envelope: &Envelope,
    facts: &Facts,
) -> Result<Entity, PolicyError> {
    let (sectors, region) = alert_addressing(envelope);
    let replied = facts.replied.as_ref();
    let attrs: HashMap<String, RestrictedExpression> = [
        (
            "kind",
            RestrictedExpression::new_string(envelope.kind().to_owned()),
        ),
        (
            "classification",
            RestrictedExpression::new_long(i64::from(envelope.classification)),
        ),
        (
            "sender",
            RestrictedExpression::new_entity_uid(agency_uid(sender)),
        ),
        (
            "purpose",
            RestrictedExpression::new_string(envelope.purpose.clone()),
        ),
        (
            "legal_basis",
            RestrictedExpression::new_string(envelope.legal_basis.clone()),
        ),
        (
            "has_case",
            RestrictedExpression::new_bool(!envelope.case_id.is_empty()),
        ),
        ("caveats", strings(&envelope.handling_caveats)),
        (
            "participants",
            agency_set(facts.participants.iter().map(AgencyId::as_str)),
        ),
        (
            "owner",
            agency_set(facts.owner.iter().map(AgencyId::as_str)),
        ),
        (
            "addressees",
            agency_set(
                envelope
                    .addressees
                    .iter()
                    .chain(added(envelope))
                    .map(String::as_str),
            ),
        ),
        (
            "added",
            agency_set(added(envelope).iter().map(String::as_str)),
        ),
        (
            "reply_sender",
            agency_set(replied.map(|r| r.sender.as_str())),
        ),
        (
            "reply_recipients",
            agency_set(
                replied
                    .into_iter()
                    .flat_map(|r| r.recipients.iter().map(AgencyId::as_str)),
            ),
        ),
        (
            "reply_kind",
            RestrictedExpression::new_string(replied.map(|r| r.kind.clone()).unwrap_or_default()),
        ),
        ("sectors", strings(sectors)),
        (
            "region",
            RestrictedExpression::new_string(region.to_owned()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Entity::new(uid.clone(), attrs, HashSet::new())
        .map_err(|e| PolicyError::Entities(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clause_dates_are_read_and_written_as_calendar_days() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2026-12-07"), Some(20_794));
        assert_eq!(
            parse_day("2024-02-29").map(format_day).as_deref(),
            Some("2024-02-29")
        );
        for day in [0, 365, 20_794, 2_932_896] {
            assert_eq!(parse_day(&format_day(day)), Some(day));
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026-01-01T00",
            "x",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    fn route(to: &str) -> Route {
        Route {
            recipient: AgencyId::parse(to).unwrap_or_else(|e| panic!("{e}")),
            withheld: BTreeSet::new(),
            clauses: vec!["X/receive".into()],
        }
    }

    fn id(text: &str) -> AgencyId {
        AgencyId::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_decision_for_one_class_mate_is_given_to_another_as_if_worked_out_anew() {
        // Worked out for a-1 (so a-1 is not among its recipients).
        let routes = vec![route("a-2"), route("b"), route("c")];
        // For a-2: its own route becomes a-1's, in agency order.
        let theirs = as_sent_by(routes.clone(), &id("a-1"), &id("a-2"));
        let recipients: Vec<&str> = theirs.iter().map(|r| r.recipient.as_str()).collect();
        assert_eq!(recipients, ["a-1", "b", "c"]);
        // For a-3, which the decision did not reach: unchanged.
        assert_eq!(as_sent_by(routes.clone(), &id("a-1"), &id("a-3")), routes);
        assert_eq!(as_sent_by(routes.clone(), &id("a-1"), &id("a-1")), routes);
    }

    #[test]
    fn agencies_named_in_policy_text_are_found() {
        let text = r#"permit (principal == Liaison::Agency::"police", action, resource)
            when { resource.owner.contains(Agency :: "council") && principal.kind == "Agency" };"#;
        let named: Vec<String> = named_agencies(text).iter().map(|a| a.to_string()).collect();
        assert_eq!(named, ["council", "police"]);
    }
}
