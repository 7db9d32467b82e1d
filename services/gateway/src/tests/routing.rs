//! Indexed routing is exactly as strict as asking about every agency: on
//! random registries (kinds, areas, sectors, regions, clearances, caveats)
//! and random envelopes (every kind, sender, purpose, legal basis,
//! classification, caveat, case, addressees, the envelope answered, alert
//! sectors and region), the shipped policies give the same verdict, the
//! same recipients, the same labels withheld and the same clauses whether
//! the candidates come from the registry's indexes or from the whole
//! registry. And no referral leaves its sender's areas.

use crate::policy::{Facts, Policy, Replied};
use liaison_core::AgencyId;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{Classification, Envelope};
use liaison_runtime::registry::Registry;
use std::fmt::Write as _;
use std::path::PathBuf;

/// A small deterministic generator (SplitMix64): the same cases every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// Up to `most` distinct items of `items`.
    fn some<'a>(&mut self, items: &[&'a str], most: usize) -> Vec<&'a str> {
        let mut out: Vec<&str> = (0..self.below(most + 1))
            .map(|_| self.pick(items))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

const KEY: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const KINDS: &[&str] = &[
    "police",
    "health",
    "social-care",
    "education",
    "council",
    "probation",
    "business",
];
const AREAS: &[&str] = &["north", "south", "east", "west", "london", "coast"];
const SECTORS: &[&str] = &["retail", "transport", "energy"];
const REGIONS: &[&str] = &["london", "north", "south", "national"];
const CLEARANCES: &[&str] = &["OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET", "TOP-SECRET"];
const PURPOSES: &[&str] = &["safeguarding", "counter-terrorism", "protective-security"];
const BASES: &[&str] = &[
    "CTSA-2015-s26",
    "CTSA-2015-s36",
    "DPA-2018-s35",
    "DPA-2018-sch1-p18",
    "DPA-2018-sch8-p4",
];
const CAVEATS: &[&str] = &["UK-EYES-ONLY", "LOCSEN"];

fn registry(rng: &mut Rng) -> Registry {
    let mut text = String::new();
    let quoted = |items: &[&str]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for n in 0..(4 + rng.below(30)) {
        let kind = rng.pick(KINDS);
        let areas = if rng.chance(5) {
            vec!["national"]
        } else {
            let mut areas = rng.some(AREAS, 3);
            if areas.is_empty() {
                areas.push(rng.pick(AREAS));
            }
            areas
        };
        let mut attributes = format!(
            "kind = \"{kind}\"\nclearance = \"{}\"\nareas = [{}]\ncaveats = [{}]\n",
            rng.pick(CLEARANCES),
            quoted(&areas),
            quoted(&rng.some(CAVEATS, 2)),
        );
        if kind == "business" || rng.chance(10) {
            let _ = writeln!(attributes, "sector = \"{}\"", rng.pick(SECTORS));
        }
        if rng.chance(70) {
            let _ = writeln!(attributes, "region = \"{}\"", rng.pick(REGIONS));
        }
        // Often several agencies alike (the schools of an area): one
        // attribute class, decided once for all of them.
        let alike = if rng.chance(40) { 1 + rng.below(4) } else { 1 };
        for twin in 0..alike {
            let _ = write!(
                text,
                "[[agency]]\nid = \"a{n}-{twin}-{kind}\"\nname = \"A{n}\"\n{attributes}[[agency.keys]]\npublic_key = \"{KEY}\"\n\n"
            );
        }
    }
    Registry::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Senders, purposes and legal bases the shipped clauses allow for some
/// kinds: most cases are built from these, so that most are allowed and
/// delivered; the rest are wholly random.
fn plausible(
    kind: &str,
) -> Option<(
    &'static [&'static str],
    &'static str,
    &'static [&'static str],
)> {
    Some(match kind {
        "referral" => (
            &["education", "health", "police", "council"],
            "safeguarding",
            &["CTSA-2015-s26", "DPA-2018-sch1-p18", "CTSA-2015-s36"],
        ),
        "alert" => (
            &["police"],
            "protective-security",
            &["DPA-2018-s35", "DPA-2018-sch8-p4"],
        ),
        "case_update"
        | "case_status"
        | "participation"
        | "risk_assessment"
        | "information_request" => (
            &["police", "council", "health", "probation"],
            "safeguarding",
            &["CTSA-2015-s36", "DPA-2018-s35"],
        ),
        _ => return None,
    })
}

fn envelope(rng: &mut Rng, registry: &Registry, ids: &[AgencyId]) -> (AgencyId, Envelope, Facts) {
    let kind = if rng.chance(70) {
        rng.pick(&[
            "referral",
            "referral",
            "alert",
            "case_update",
            "case_status",
            "risk_assessment",
        ])
    } else {
        rng.pick(liaison_proto::KINDS)
    };
    let template = plausible(kind).filter(|_| rng.chance(85));
    let senders: Vec<&AgencyId> = match template {
        Some((kinds, _, _)) => ids
            .iter()
            .filter(|id| {
                registry
                    .get(id)
                    .is_some_and(|a| kinds.contains(&a.kind.as_str()))
            })
            .collect(),
        None => ids.iter().collect(),
    };
    let sender = if senders.is_empty() {
        ids[rng.below(ids.len())].clone()
    } else {
        senders[rng.below(senders.len())].clone()
    };
    let some = |rng: &mut Rng, most: usize| -> Vec<AgencyId> {
        let mut out: Vec<AgencyId> = (0..rng.below(most + 1))
            .map(|_| ids[rng.below(ids.len())].clone())
            .collect();
        out.sort();
        out.dedup();
        out
    };
    let mut body = Body::empty(kind).unwrap_or_else(|| panic!("kind {kind}"));
    match &mut body {
        Body::Alert(alert) => {
            alert.sectors = rng
                .some(SECTORS, 2)
                .into_iter()
                .map(str::to_owned)
                .collect();
            alert.region = match rng.below(4) {
                0 => String::new(),
                _ => rng
                    .pick(&["london", "north", "national", "west", "coast"])
                    .to_owned(),
            };
        }
        Body::Participation(p) => {
            p.added = some(rng, 2).iter().map(|a| a.to_string()).collect();
        }
        _ => {}
    }
    let mut addressees: Vec<String> = some(rng, 3).iter().map(|a| a.to_string()).collect();
    if rng.chance(5) {
        addressees.push("not-registered".into());
    }
    let case = rng.chance(60);
    let mut participants = if case { some(rng, 4) } else { vec![] };
    if case && template.is_some() && rng.chance(80) && !participants.contains(&sender) {
        participants.insert(0, sender.clone());
    }
    let facts = Facts {
        owner: participants.first().cloned(),
        participants,
        replied: rng.chance(30).then(|| Replied {
            sender: ids[rng.below(ids.len())].clone(),
            recipients: some(rng, 3),
            kind: rng.pick(liaison_proto::KINDS).to_owned(),
        }),
    };
    let envelope = Envelope {
        id: "routing-case".into(),
        sender_agency: sender.to_string(),
        purpose: template.map_or_else(|| rng.pick(PURPOSES), |t| t.1).into(),
        legal_basis: rng.pick(template.map_or(BASES, |t| t.2)).into(),
        classification: [
            Classification::Official,
            Classification::Official,
            Classification::OfficialSensitive,
            Classification::OfficialSensitive,
            Classification::Secret,
            Classification::TopSecret,
        ][rng.below(6)] as i32,
        handling_caveats: if rng.chance(70) {
            vec![]
        } else {
            rng.some(CAVEATS, 2)
                .into_iter()
                .map(str::to_owned)
                .collect()
        },
        case_id: if case { "CASE-1".into() } else { String::new() },
        addressees,
        body: Some(body),
        ..Default::default()
    };
    (sender, envelope, facts)
}

fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/policies")
}

#[test]
fn indexed_routing_equals_asking_every_agency() {
    let mut rng = Rng(0x1234_5678);
    let (mut compared, mut delivered, mut allowed, mut mates) = (0, 0, 0, 0);
    for _ in 0..60 {
        let registry = registry(&mut rng);
        let policy = Policy::load(&policies(), &registry).unwrap_or_else(|e| panic!("{e}"));
        let ids = registry.ids();
        for _ in 0..80 {
            let (sender, envelope, facts) = envelope(&mut rng, &registry, &ids);
            let indexed = policy
                .evaluate(&sender, &envelope, &registry, &facts)
                .unwrap_or_else(|e| panic!("{e}"));
            let every = policy
                .evaluate_every_agency(&sender, &envelope, &registry, &facts)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                indexed,
                every,
                "{} from {sender} ({:?}) with {facts:?}",
                envelope.kind(),
                registry.get(&sender).map(|a| &a.areas),
            );
            compared += 1;
            // The same envelope from a class-mate of the sender (same
            // attributes): answered from the cache, as if worked out anew.
            let mate = ids
                .iter()
                .find(|id| *id != &sender && registry.class_of(id) == registry.class_of(&sender));
            if let Some(mate) = mate {
                let mut theirs = envelope.clone();
                theirs.sender_agency = mate.to_string();
                let cached = policy
                    .evaluate(mate, &theirs, &registry, &facts)
                    .unwrap_or_else(|e| panic!("{e}"));
                let every = policy
                    .evaluate_every_agency(mate, &theirs, &registry, &facts)
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    cached,
                    every,
                    "{} from {mate}, a class-mate of {sender}",
                    theirs.kind()
                );
                mates += 1;
            }
            allowed += usize::from(indexed.0.allowed);
            delivered += indexed.1.len();
            if envelope.kind() == "referral" {
                let from = registry
                    .get(&sender)
                    .map(|a| a.areas.clone())
                    .unwrap_or_default();
                for route in &indexed.1 {
                    let to = registry
                        .get(&route.recipient)
                        .map(|a| a.areas.clone())
                        .unwrap_or_default();
                    assert!(
                        to.iter().any(|a| from.contains(a)),
                        "a referral from {sender} ({from:?}) reached {} ({to:?})",
                        route.recipient
                    );
                }
            }
        }
    }
    // The cases are worth comparing: many are allowed and delivered.
    assert_eq!(compared, 4_800);
    assert!(mates > 500, "{mates} envelopes from class-mates");
    assert!(allowed > 1_500, "{allowed} of {compared} allowed");
    assert!(delivered > 1_500, "{delivered} copies");
}
