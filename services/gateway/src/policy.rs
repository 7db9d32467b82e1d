//! Access policy: Cedar policies over agencies, messages and data labels,
//! loaded from a directory (`*.cedarschema` and `*.cedar`) and validated
//! against the schema at start. Answers three questions for the gateway: may
//! this agency send this message; which agencies receive a copy; which labels
//! each may see. Every answer names the policies (ISA clauses) that decided.

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use liaison_kit::AgencyId;
use liaison_kit::registry::{Agency, Registry};
use liaison_proto::v1::{DataLabel, Envelope};
use std::collections::{BTreeSet, HashMap, HashSet};
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
}

/// A decision and the clauses behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// `@id` annotations of the policies that decided (permits when allowed, forbids when denied).
    pub clauses: Vec<String>,
    /// Errors met while evaluating (a policy that errors does not permit).
    pub errors: Vec<String>,
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
    /// The registry's agencies, validated against the schema once, at load.
    agencies: Entities,
    authorizer: Authorizer,
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

fn read_dir(dir: &Path) -> Result<(String, String, String), PolicyError> {
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
    for file in files {
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if ext != "cedar" && ext != "cedarschema" {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(read_err)?;
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
    let (schema_path, schema_text) = schema.ok_or(PolicyError::NoSchema { path: path.clone() })?;
    Ok((schema_path, schema_text, policies))
}

impl Policy {
    /// Loads and validates the schema and policies in `dir` for `registry`'s agencies.
    pub fn load(dir: &Path, registry: &Registry) -> Result<Self, PolicyError> {
        let (schema_path, schema_text, policy_text) = read_dir(dir)?;
        let (schema, _warnings) =
            Schema::from_cedarschema_str(&schema_text).map_err(|e| PolicyError::Schema {
                path: schema_path,
                reason: format!("{e:?}"),
            })?;
        let policies = PolicySet::from_str(&policy_text).map_err(|e| PolicyError::Parse {
            path: dir.display().to_string(),
            reason: format!("{e:?}"),
        })?;
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let reasons: Vec<String> = result.validation_errors().map(|e| format!("{e}")).collect();
            return Err(PolicyError::Invalid {
                path: dir.display().to_string(),
                reason: reasons.join("; "),
            });
        }
        let agencies = registry
            .agencies()
            .map(agency_entity)
            .collect::<Result<Vec<_>, _>>()?;
        let agencies = Entities::from_entities(agencies, Some(&schema))
            .map_err(|e| PolicyError::Entities(format!("agencies: {e}")))?;
        Ok(Self {
            schema,
            policies,
            agencies,
            authorizer: Authorizer::new(),
        })
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
                };
            }
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, entities);
        let mut clauses: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| self.clause(id))
            .collect();
        clauses.sort();
        Outcome {
            allowed: response.decision() == Decision::Allow,
            clauses,
            errors: response
                .diagnostics()
                .errors()
                .map(|e| e.to_string())
                .collect(),
        }
    }

    /// The agencies plus this message; only the message is validated here.
    fn entities_with(&self, message: Entity) -> Result<Entities, PolicyError> {
        self.agencies
            .clone()
            .add_entities([message], Some(&self.schema))
            .map_err(|e| PolicyError::Entities(e.to_string()))
    }

    /// Decides whether `sender` may send `envelope`, and if so who receives it
    /// and what each may see.
    pub fn evaluate(
        &self,
        sender: &AgencyId,
        envelope: &Envelope,
        registry: &Registry,
    ) -> Result<(Outcome, Vec<Route>), PolicyError> {
        let message_uid = uid("Liaison::Message", &envelope.id);
        let entities = self.entities_with(message_entity(&message_uid, sender, envelope)?)?;
        let send = self.decide(
            agency_uid(sender),
            "send",
            message_uid.clone(),
            Context::empty(),
            &entities,
        );
        if !send.allowed {
            return Ok((send, vec![]));
        }
        let label_context = Context::from_pairs([(
            "message".to_owned(),
            RestrictedExpression::new_entity_uid(message_uid.clone()),
        )])
        .map_err(|e| PolicyError::Entities(e.to_string()))?;
        let mut routes = Vec::new();
        for agency in registry.agencies().filter(|a| &a.id != sender) {
            let receive = self.decide(
                agency_uid(&agency.id),
                "receive",
                message_uid.clone(),
                Context::empty(),
                &entities,
            );
            if !receive.allowed {
                continue;
            }
            let mut withheld = BTreeSet::new();
            let mut clauses: HashSet<String> = receive.clauses.into_iter().collect();
            for label in DataLabel::all() {
                let see = self.decide(
                    agency_uid(&agency.id),
                    "see-label",
                    uid("Liaison::Label", label.short_name()),
                    label_context.clone(),
                    &entities,
                );
                if see.allowed {
                    clauses.extend(see.clauses);
                } else {
                    withheld.insert(label);
                }
            }
            let mut clauses: Vec<String> = clauses.into_iter().collect();
            clauses.sort();
            routes.push(Route {
                recipient: agency.id.clone(),
                withheld,
                clauses,
            });
        }
        Ok((send, routes))
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
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Entity::new(agency_uid(&agency.id), attrs, HashSet::new())
        .map_err(|e| PolicyError::Entities(format!("agency {}: {e}", agency.id)))
}

fn message_entity(
    uid: &EntityUid,
    sender: &AgencyId,
    envelope: &Envelope,
) -> Result<Entity, PolicyError> {
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
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Entity::new(uid.clone(), attrs, HashSet::new())
        .map_err(|e| PolicyError::Entities(e.to_string()))
}
