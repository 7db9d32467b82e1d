//! The agency registry: who the partner agencies are, what kind of body each
//! is, the clearance it holds and the public key(s) it signs tokens with. Read
//! from a TOML file (`deploy/agencies/registry.toml` in development).

use liaison_core::ids::AgencyId;
use liaison_core::tokens::{KeySpec, check_keys};
use liaison_proto::v1::Classification;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// What kind of body an agency is; policies are written over kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgencyKind {
    Police,
    Health,
    SocialCare,
    Education,
    Council,
    Probation,
    Business,
    /// One of Liaison's own services (never in a registry file).
    #[serde(skip)]
    System,
}

impl AgencyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Police => "police",
            Self::Health => "health",
            Self::SocialCare => "social-care",
            Self::Education => "education",
            Self::Council => "council",
            Self::Probation => "probation",
            Self::Business => "business",
            Self::System => "system",
        }
    }
}

/// Highest classification an agency may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
pub enum Clearance {
    #[serde(rename = "OFFICIAL")]
    Official,
    #[serde(rename = "OFFICIAL-SENSITIVE")]
    OfficialSensitive,
    #[serde(rename = "SECRET")]
    Secret,
    #[serde(rename = "TOP-SECRET")]
    TopSecret,
}

impl Clearance {
    /// The classification this clearance reaches, as a comparable level.
    pub fn level(self) -> Classification {
        match self {
            Self::Official => Classification::Official,
            Self::OfficialSensitive => Classification::OfficialSensitive,
            Self::Secret => Classification::Secret,
            Self::TopSecret => Classification::TopSecret,
        }
    }
}

/// One agency as registered.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    pub id: AgencyId,
    pub name: String,
    pub kind: AgencyKind,
    pub clearance: Clearance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The local-authority areas it serves: a school's or a council's one, a
    /// police force's several, a regional unit's region, or `["national"]`
    /// for a national body. Policies scope shares by area; the gateway
    /// finds recipients by area ([`Registry::serving`]).
    #[serde(default)]
    pub areas: Vec<String>,
    /// Handling caveats (e.g. "UK-EYES-ONLY") the agency may receive copies under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caveats: Vec<String>,
    /// Envelopes per second it may send (token bucket, checked before decoding) ...
    #[serde(default = "default_rate")]
    pub rate_per_sec: u32,
    /// ... with bursts of up to this many.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Largest envelope it may send, if smaller than the gateway's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_envelope_bytes: Option<usize>,
    /// The NKeys (public, `U...`) its systems connect to NATS with: NATS
    /// identity follows the live registry through the auth callout
    /// (docs/decisions/0020-live-membership.md). More than one while
    /// rotating; none for an agency that comes only through the HTTPS door.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nats_keys: Vec<String>,
    /// The keys its tokens are signed with (more than one while rotating).
    pub keys: Vec<KeySpec>,
}

impl Agency {
    /// A Liaison service as a sender (`liaison-cases`, ...): cleared for
    /// everything, national, registered for every caveat of the vocabulary.
    pub fn system(id: AgencyId, caveats: Vec<String>) -> Self {
        Self {
            name: id.to_string(),
            id,
            kind: AgencyKind::System,
            clearance: Clearance::TopSecret,
            sector: None,
            region: Some(NATIONAL.to_owned()),
            areas: vec![NATIONAL.to_owned()],
            caveats,
            rate_per_sec: default_rate(),
            burst: default_burst(),
            max_envelope_bytes: None,
            nats_keys: vec![],
            keys: vec![],
        }
    }

    /// This agency as one `[[agency]]` block of a registry file: the form
    /// the live registry keeps and `liaison agencies show` prints.
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct Block<'a> {
            agency: [&'a Agency; 1],
        }
        toml::to_string(&Block { agency: [self] })
            .unwrap_or_else(|e| format!("# {} cannot be written as TOML: {e}\n", self.id))
    }

    /// Checks this agency on its own with the registry file's rules,
    /// naming the agency and the field that is wrong.
    pub fn check(&self) -> Result<(), String> {
        let agency = self;
        if liaison_core::system::is_reserved(&agency.id) {
            return Err(format!(
                "agency {}: ids beginning {:?} are reserved for Liaison's own services",
                agency.id,
                liaison_core::system::PREFIX
            ));
        }
        check_keys(&agency.keys).map_err(|e| format!("agency {}: {e}", agency.id))?;
        if agency.rate_per_sec == 0 || agency.burst == 0 {
            return Err(format!(
                "agency {}: rate_per_sec and burst must be at least 1",
                agency.id
            ));
        }
        if agency.areas.is_empty() {
            return Err(format!(
                "agency {}: no areas: give areas = [\"...\"], the local-authority areas it serves (or [\"national\"] for a national body)",
                agency.id
            ));
        }
        if let Some(area) = agency.areas.iter().find(|a| !valid_area(a)) {
            return Err(format!(
                "agency {}: area {area:?} must be 1 to {MAX_AREA_LEN} of a-z, 0-9 and '-'",
                agency.id
            ));
        }
        if agency.areas.len() > 1 && agency.areas.iter().any(|a| a == NATIONAL) {
            return Err(format!(
                "agency {}: \"national\" is an agency's only area, not one among others",
                agency.id
            ));
        }
        if let Some(caveat) = agency.caveats.iter().find(|c| !valid_caveat(c)) {
            return Err(format!(
                "agency {}: caveat {caveat:?} must be 1 to 64 of A-Z, 0-9 and '-'",
                agency.id
            ));
        }
        let mut nats_keys = std::collections::HashSet::new();
        for key in &agency.nats_keys {
            if !valid_nats_key(key) {
                return Err(format!(
                    "agency {}: nats_keys entry {:?} is not an NKey user public key (56 characters beginning 'U', as `liaison keys gen-nats` prints it)",
                    agency.id,
                    key.chars().take(64).collect::<String>()
                ));
            }
            if !nats_keys.insert(key) {
                return Err(format!(
                    "agency {}: NATS key {key} is registered twice",
                    agency.id
                ));
            }
        }
        Ok(())
    }
}

/// Whether `key` is an NKey user public key (`U...`, with a valid checksum).
pub fn valid_nats_key(key: &str) -> bool {
    key.starts_with('U') && key.len() == 56 && nkeys::KeyPair::from_public_key(key).is_ok()
}

/// The area of a national body (and of Liaison's own services).
pub const NATIONAL: &str = "national";

/// Longest area id.
pub const MAX_AREA_LEN: usize = 64;

/// Whether `area` is a valid area id: 1 to 64 of a-z, 0-9 and '-', starting
/// with a letter or digit (e.g. "exampleshire", "e06000001").
pub fn valid_area(area: &str) -> bool {
    !area.is_empty()
        && area.len() <= MAX_AREA_LEN
        && !area.starts_with('-')
        && area
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn default_rate() -> u32 {
    200
}

fn default_burst() -> u32 {
    400
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    agency: Vec<Agency>,
}

/// A piece of a registry file: the text before the first agency, or one
/// `[[agency]]` block with its keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryPiece {
    #[serde(default)]
    agency: Vec<Agency>,
}

/// Parses registry TOML one `[[agency]]` block at a time: the TOML parser
/// holds a whole document in memory several times over while it decodes
/// it, which at 25,000 agencies (7.5 MB) is some 60 MB at its peak, in
/// every process that loads the registry. If any block does not parse on
/// its own (or the file is not laid out in blocks), the whole document is
/// parsed instead, for the error's true line and column.
fn parse_agencies(text: &str) -> Result<Vec<Agency>, String> {
    let whole = || {
        toml::from_str::<RegistryFile>(text)
            .map(|file| file.agency)
            .map_err(|e| e.to_string())
    };
    const HEADER: &str = "\n[[agency]]\n";
    let mut agencies = Vec::new();
    let mut rest = text;
    loop {
        let (piece, next) = match rest.get(1..).and_then(|r| r.find(HEADER)) {
            Some(at) => rest.split_at(at + 1),
            None => (rest, ""),
        };
        match toml::from_str::<RegistryPiece>(piece) {
            Ok(parsed) => agencies.extend(parsed.agency),
            Err(_) => return whole(),
        }
        if next.is_empty() {
            break;
        }
        rest = next;
    }
    if agencies.is_empty() {
        return whole();
    }
    Ok(agencies)
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read agency registry {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("agency registry {path} is invalid: {reason}")]
    Invalid { path: String, reason: String },
}

/// All registered agencies, by id.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Shared (`Arc`): the live registry's follower keeps the same agencies
    /// to build the next registry from, and a change copies none of them.
    agencies: BTreeMap<AgencyId, Arc<Agency>>,
    /// Agencies by each area they serve, and by sector: the indexes the
    /// gateway finds candidate recipients in, whatever the registry's size.
    by_area: HashMap<String, Vec<AgencyId>>,
    by_sector: HashMap<String, Vec<AgencyId>>,
    by_region: HashMap<String, Vec<AgencyId>>,
    by_kind: HashMap<AgencyKind, Vec<AgencyId>>,
    /// Each agency's attribute class: agencies registered with the same
    /// kind, clearance, sector, region, areas and caveats share one (the
    /// schools of an area, say), and a policy that reads only attributes
    /// decides the same for all of them.
    classes: HashMap<AgencyId, u32>,
    /// The agency each NATS key is registered to.
    nats_keys: HashMap<String, AgencyId>,
}

impl Registry {
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text).map_err(|reason| RegistryError::Invalid {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parses registry TOML, naming the agency and field that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut agencies = BTreeMap::new();
        for agency in parse_agencies(text)? {
            agency.check()?;
            let id = agency.id.clone();
            if agencies.insert(id.clone(), Arc::new(agency)).is_some() {
                return Err(format!("agency {id} is registered twice"));
            }
        }
        Self::from_agencies(agencies)
    }

    /// The one agency `text` registers (one `[[agency]]` block, as the live
    /// registry keeps an entry and `liaison agencies add|update` takes it),
    /// checked with the file's rules.
    pub fn parse_one(text: &str) -> Result<Agency, String> {
        let registry = Self::parse(text)?;
        let mut agencies = registry.agencies.into_values();
        match (agencies.next(), agencies.next()) {
            (Some(agency), None) => Ok(Arc::unwrap_or_clone(agency)),
            _ => Err("give exactly one [[agency]] block".to_owned()),
        }
    }

    /// A registry of `agencies`, each already checked on its own
    /// ([`Agency::check`]): refuses what only the whole can show, a NATS key
    /// registered to two agencies.
    pub fn from_agencies(agencies: BTreeMap<AgencyId, Arc<Agency>>) -> Result<Self, String> {
        let mut owners: HashMap<String, AgencyId> = HashMap::new();
        for agency in agencies.values() {
            for key in &agency.nats_keys {
                if let Some(other) = owners.insert(key.clone(), agency.id.clone()) {
                    return Err(format!(
                        "agency {}: NATS key {key} is already registered to {other}",
                        agency.id
                    ));
                }
            }
        }
        let mut registry = Self::index(agencies);
        registry.nats_keys = owners;
        Ok(registry)
    }

    fn index(agencies: BTreeMap<AgencyId, Arc<Agency>>) -> Self {
        let mut by_area: HashMap<String, Vec<AgencyId>> = HashMap::new();
        let mut by_sector: HashMap<String, Vec<AgencyId>> = HashMap::new();
        let mut by_region: HashMap<String, Vec<AgencyId>> = HashMap::new();
        let mut by_kind: HashMap<AgencyKind, Vec<AgencyId>> = HashMap::new();
        let mut classes = HashMap::new();
        let mut class_ids = HashMap::new();
        for agency in agencies.values() {
            let mut areas = agency.areas.clone();
            areas.sort();
            let mut caveats = agency.caveats.clone();
            caveats.sort();
            let key = (
                agency.kind,
                agency.clearance,
                agency.sector.clone(),
                agency.region.clone(),
                areas,
                caveats,
            );
            let next = u32::try_from(class_ids.len()).unwrap_or(u32::MAX);
            let class = *class_ids.entry(key).or_insert(next);
            classes.insert(agency.id.clone(), class);
            by_kind
                .entry(agency.kind)
                .or_default()
                .push(agency.id.clone());
            if let Some(region) = &agency.region {
                by_region
                    .entry(region.clone())
                    .or_default()
                    .push(agency.id.clone());
            }
            for area in &agency.areas {
                by_area
                    .entry(area.clone())
                    .or_default()
                    .push(agency.id.clone());
            }
            if let Some(sector) = &agency.sector {
                by_sector
                    .entry(sector.clone())
                    .or_default()
                    .push(agency.id.clone());
            }
        }
        Self {
            agencies,
            by_area,
            by_sector,
            by_region,
            by_kind,
            classes,
            nats_keys: HashMap::new(),
        }
    }

    /// The agency NATS key `key` (`U...`) is registered to.
    pub fn nats_key_owner(&self, key: &str) -> Option<&AgencyId> {
        self.nats_keys.get(key)
    }

    /// `id`'s attribute class (same attributes, same class);
    /// `None` if not registered.
    pub fn class_of(&self, id: &AgencyId) -> Option<u32> {
        self.classes.get(id).copied()
    }

    /// The agencies whose `region` is `region`.
    pub fn in_region(&self, region: &str) -> &[AgencyId] {
        self.by_region.get(region).map_or(&[], Vec::as_slice)
    }

    /// The agencies of `kind`.
    pub fn of_kind(&self, kind: AgencyKind) -> &[AgencyId] {
        self.by_kind.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// The agencies serving `area` (those whose areas include it).
    pub fn serving(&self, area: &str) -> &[AgencyId] {
        self.by_area.get(area).map_or(&[], Vec::as_slice)
    }

    /// The agencies registered in `sector` (business partners).
    pub fn in_sector(&self, sector: &str) -> &[AgencyId] {
        self.by_sector.get(sector).map_or(&[], Vec::as_slice)
    }

    /// How many agencies are registered.
    pub fn len(&self) -> usize {
        self.agencies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agencies.is_empty()
    }

    pub fn get(&self, id: &AgencyId) -> Option<&Agency> {
        self.agencies.get(id).map(|a| &**a)
    }

    pub fn agencies(&self) -> impl Iterator<Item = &Agency> {
        self.agencies.values().map(|a| &**a)
    }

    pub fn ids(&self) -> Vec<AgencyId> {
        self.agencies.keys().cloned().collect()
    }
}

/// A handling caveat as written in the registry and on envelopes: upper-case
/// letters, digits and '-', e.g. "UK-EYES-ONLY".
pub fn valid_caveat(caveat: &str) -> bool {
    !caveat.is_empty()
        && caveat.len() <= 64
        && caveat
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn a_registry_is_parsed_and_checked() {
        let good = format!(
            "[[agency]]\nid = \"police\"\nname = \"P\"\nkind = \"police\"\nclearance = \"SECRET\"\nareas = [\"exampleshire\", \"westshire\"]\n[[agency.keys]]\npublic_key = \"{KEY}\"\n"
        );
        let registry = Registry::parse(&good).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(registry.ids().len(), 1);

        let bad_id = good.replace("\"police\"\nname", "\"Police!\"\nname");
        assert!(Registry::parse(&bad_id).is_err_and(|e| e.contains("agency id")));
        let bad_key = good.replace(KEY, "abc");
        assert!(Registry::parse(&bad_key).is_err_and(|e| e.contains("32 bytes")));
        let es256 = good.replace("public_key", "alg = \"ES256\"\npublic_key");
        assert!(Registry::parse(&es256).is_err_and(|e| e.contains("65 bytes")));
        let retired = good.replace("public_key", "not_after = 2026-01-01T00:00:00Z\npublic_key");
        assert!(Registry::parse(&retired).is_ok());
        let twice_key = format!("{good}[[agency.keys]]\npublic_key = \"{KEY}\"\n");
        assert!(Registry::parse(&twice_key).is_err_and(|e| e.contains("registered twice")));
        let caveat = good.replace(
            "[[agency.keys]]",
            "caveats = [\"uk eyes\"]\n[[agency.keys]]",
        );
        assert!(Registry::parse(&caveat).is_err_and(|e| e.contains("caveat")));
        let no_keys = good.replace(
            &format!("[[agency.keys]]\npublic_key = \"{KEY}\"\n"),
            "keys = []\n",
        );
        assert!(Registry::parse(&no_keys).is_err_and(|e| e.contains("no keys")));
        let unknown = format!("{good}colour = \"red\"\n");
        assert!(Registry::parse(&unknown).is_err_and(|e| e.contains("colour")));
        let reserved = good.replace("\"police\"\nname", "\"liaison-cases\"\nname");
        assert!(Registry::parse(&reserved).is_err_and(|e| e.contains("reserved")));
        let twice = format!("{good}{good}");
        assert!(Registry::parse(&twice).is_err_and(|e| e.contains("twice")));
        let areas = "areas = [\"exampleshire\", \"westshire\"]\n";
        let no_areas = good.replace(areas, "");
        assert!(
            Registry::parse(&no_areas)
                .is_err_and(|e| e.contains("agency police: no areas") && e.contains("areas = ")),
        );
        let empty = good.replace(areas, "areas = []\n");
        assert!(Registry::parse(&empty).is_err_and(|e| e.contains("agency police: no areas")));
        let bad_area = good.replace(areas, "areas = [\"West Shire\"]\n");
        assert!(Registry::parse(&bad_area).is_err_and(|e| e.contains("\"West Shire\"")));
        let mixed = good.replace(areas, "areas = [\"national\", \"westshire\"]\n");
        assert!(Registry::parse(&mixed).is_err_and(|e| e.contains("only area")));
        assert_eq!(registry.serving("westshire").len(), 1);
        assert!(registry.serving("eastshire").is_empty());
    }
}
