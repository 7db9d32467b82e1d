//! The catalogue of what the policy set lets be shared (`liaison policy
//! catalogue`): for every channel — a sender, a kind, a purpose, a legal
//! basis, a classification and the situation (a new share, on a case, in
//! reply to another envelope) — the clauses that let it be sent, who
//! receives a copy under which clauses, which labels each sees, and how
//! long it is kept; grouped by clause, with each clause's retention, expiry
//! and review dates. For a partner, an auditor or the ICO.
//!
//! It is not written by hand: it asks the gateway's own evaluator
//! ([`Policy::evaluate`]) every question in the grid the registry and the
//! vocabulary span, with one sender for each class of agencies the policy
//! cannot tell apart, so it says what the gateway enforces.
//! `tests::the_catalogue_agrees_with_every_policy_test_case` checks it against
//! the partnership's policy test cases.

use crate::policy::{Facts, Policy, Replied, format_day, format_period};
use liaison_core::AgencyId;
use liaison_core::system::Service;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{Classification, DataLabel, Envelope};
use liaison_runtime::registry::Registry;
use serde::Serialize;
use std::collections::BTreeMap;

/// Where an envelope is sent from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Situation {
    /// A new share, answering nothing: on no case, or (a case's kinds)
    /// on a case not yet opened.
    New,
    /// On a case every registered agency participates in, owned by one of
    /// `owner` (the sender's class, for an agency; each class in turn, for
    /// Liaison's services): a real case's copies go only to its participants.
    Case { owner: Vec<String> },
    /// Answering an envelope of `kind` that one of `from` (agencies the
    /// policy cannot tell apart) sent and the sender received.
    Reply { kind: String, from: Vec<String> },
}

impl Situation {
    pub fn words(&self) -> String {
        match self {
            Self::New => "a new share (or a new case)".into(),
            Self::Case { owner } => format!(
                "on a case owned by {}, to its participants",
                owner.join(" or ")
            ),
            Self::Reply { kind, from } => {
                format!("in reply to a {kind} from {}", from.join(" or "))
            }
        }
    }
}

/// One recipient's copy on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    pub agency: String,
    pub kind: String,
    pub areas: Vec<String>,
    /// The labels it sees (the others are removed from its copy).
    pub sees: Vec<String>,
    /// The clauses that let it receive and see them.
    pub clauses: Vec<String>,
}

/// One question the catalogue asked that the policy set allows.
#[derive(Debug, Clone, Serialize)]
pub struct Share {
    /// The senders it holds for (agencies the policy cannot tell apart).
    pub senders: Vec<String>,
    pub sender_kind: String,
    pub sender_areas: Vec<String>,
    pub kind: String,
    pub purpose: String,
    pub legal_basis: String,
    pub classification: String,
    pub situation: Situation,
    /// It reaches only the agencies it names (addressees): the copies are
    /// those of one naming every agency.
    pub addressed: bool,
    /// The clauses that let it be sent.
    pub clauses: Vec<String>,
    pub copies: Vec<Copy>,
    /// How long it is kept: the longest retention of its clauses.
    pub kept: String,
}

/// What one sender may send of one kind in one situation: each set of
/// terms (classifications, purposes and legal bases) with what follows.
#[derive(Debug, Clone, Serialize)]
pub struct Channel {
    pub senders: Vec<String>,
    pub sender_kind: String,
    pub sender_areas: Vec<String>,
    pub kind: String,
    pub situation: Situation,
    pub addressed: bool,
    pub terms: Vec<Terms>,
}

/// Terms a channel is open on, and what follows from them.
#[derive(Debug, Clone, Serialize)]
pub struct Terms {
    pub classifications: Vec<String>,
    /// Each purpose, with the legal bases it may be sent under.
    pub allowed: BTreeMap<String, Vec<String>>,
    /// The clauses that let it be sent.
    pub clauses: Vec<String>,
    pub copies: Vec<Copy>,
    pub kept: String,
}

impl Terms {
    fn names(&self, clause: &str) -> bool {
        self.clauses.iter().any(|c| c == clause)
            || self
                .copies
                .iter()
                .any(|c| c.clauses.iter().any(|c| c == clause))
    }
}

/// Groups the shares into channels: one per sender class, kind and
/// situation; in each, one set of terms per outcome (same clauses, copies
/// and retention), its purposes and bases per classification merged where
/// they are the same.
/// A share's clauses, copies and retention.
type Outcome = (Vec<String>, Vec<Copy>, String);
/// An outcome, with the (classification, purpose, legal basis) it follows from.
type Outcomes = Vec<(Outcome, Vec<(String, String, String)>)>;
/// Purposes, each with its legal bases.
type Allowed = BTreeMap<String, Vec<String>>;

fn group(shares: &[Share]) -> Vec<Channel> {
    let mut channels: Vec<(Channel, Outcomes)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for share in shares {
        let key = format!(
            "{}|{}|{:?}|{}",
            share.senders.join(","),
            share.kind,
            share.situation,
            share.addressed
        );
        let at = *index.entry(key).or_insert_with(|| {
            channels.push((
                Channel {
                    senders: share.senders.clone(),
                    sender_kind: share.sender_kind.clone(),
                    sender_areas: share.sender_areas.clone(),
                    kind: share.kind.clone(),
                    situation: share.situation.clone(),
                    addressed: share.addressed,
                    terms: vec![],
                },
                vec![],
            ));
            channels.len() - 1
        });
        let outcome: Outcome = (
            share.clauses.clone(),
            share.copies.clone(),
            share.kept.clone(),
        );
        let triple = (
            share.classification.clone(),
            share.purpose.clone(),
            share.legal_basis.clone(),
        );
        let outcomes = &mut channels[at].1;
        match outcomes.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, triples)) => triples.push(triple),
            None => outcomes.push((outcome, vec![triple])),
        }
    }
    channels
        .into_iter()
        .map(|(mut channel, outcomes)| {
            for ((clauses, copies, kept), triples) in outcomes {
                let mut by_class: BTreeMap<String, Allowed> = BTreeMap::new();
                for (c, purpose, basis) in triples {
                    by_class
                        .entry(c)
                        .or_default()
                        .entry(purpose)
                        .or_default()
                        .push(basis);
                }
                let mut merged: Vec<(Vec<String>, Allowed)> = Vec::new();
                for c in CLASSIFICATIONS.map(classification_name) {
                    let Some(allowed) = by_class.remove(c) else {
                        continue;
                    };
                    match merged.iter_mut().find(|(_, a)| *a == allowed) {
                        Some((cs, _)) => cs.push(c.to_owned()),
                        None => merged.push((vec![c.to_owned()], allowed)),
                    }
                }
                for (classifications, allowed) in merged {
                    channel.terms.push(Terms {
                        classifications,
                        allowed,
                        clauses: clauses.clone(),
                        copies: copies.clone(),
                        kept: kept.clone(),
                    });
                }
            }
            channel
        })
        .collect()
}

/// A clause and its terms.
#[derive(Debug, Clone, Serialize)]
pub struct Clause {
    pub clause: String,
    pub retention: Option<String>,
    pub expires: Option<String>,
    pub review: Option<String>,
    /// The channels it opens or delivers on (indexes into `channels`).
    pub channels: Vec<usize>,
}

/// The whole catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct Catalogue {
    /// The policy set's SHA-256.
    pub policy: String,
    pub default_retention: String,
    pub clauses: Vec<Clause>,
    pub channels: Vec<Channel>,
    /// Every question asked that the policy set allows, one by one.
    #[serde(skip)]
    pub shares: Vec<Share>,
}

const CLASSIFICATIONS: [Classification; 4] = [
    Classification::Official,
    Classification::OfficialSensitive,
    Classification::Secret,
    Classification::TopSecret,
];

/// The classification as envelopes and policy tests write it.
pub fn classification_name(c: Classification) -> &'static str {
    match c {
        Classification::Official => "OFFICIAL",
        Classification::OfficialSensitive => "OFFICIAL-SENSITIVE",
        Classification::Secret => "SECRET",
        Classification::TopSecret => "TOP-SECRET",
        Classification::Unspecified => "UNSPECIFIED",
    }
}

/// One sender of each class of agencies the policy cannot tell apart, with
/// the class's members; and Liaison's services.
fn senders(registry: &Registry) -> Vec<(AgencyId, Vec<AgencyId>)> {
    let mut classes: BTreeMap<String, (AgencyId, Vec<AgencyId>)> = BTreeMap::new();
    for agency in registry.agencies() {
        let class = registry.class_of(&agency.id).map_or_else(
            || format!("agency:{}", agency.id),
            |c| format!("class:{c:08}"),
        );
        classes
            .entry(class)
            .or_insert_with(|| (agency.id.clone(), Vec::new()))
            .1
            .push(agency.id.clone());
    }
    let mut out: Vec<(AgencyId, Vec<AgencyId>)> = classes.into_values().collect();
    for service in Service::ALL {
        out.push((service.sender(), vec![service.sender()]));
    }
    out
}

/// The envelope a question is about (bodies empty but for an alert's
/// addressing, to every sector nationally: policy sees only the shape).
fn envelope(
    sender: &AgencyId,
    kind: &str,
    purpose: &str,
    basis: &str,
    c: Classification,
    situation: &Situation,
) -> Option<Envelope> {
    let body = Body::empty(kind)?;
    // A case's kinds always name one: a new one, or one that exists.
    let case = matches!(situation, Situation::Case { .. })
        || liaison_core::envelope_rules::CASE_KINDS.contains(&kind);
    let reply = matches!(situation, Situation::Reply { .. });
    Some(Envelope {
        id: "catalogue".into(),
        sender_agency: sender.to_string(),
        author: "catalogue".into(),
        classification: c as i32,
        purpose: purpose.into(),
        legal_basis: basis.into(),
        case_id: if case {
            "CASE-CATALOGUE".into()
        } else {
            String::new()
        },
        in_reply_to: if reply {
            "catalogue-answered".into()
        } else {
            String::new()
        },
        body: Some(body),
        ..Default::default()
    })
}

/// What the grid asks about: the policy, the registry, and every agency.
struct Grid<'a> {
    policy: &'a Policy,
    registry: &'a Registry,
    default_retention: u64,
    everyone: Vec<AgencyId>,
}

impl Grid<'_> {
    fn describe(&self, id: &AgencyId) -> (String, Vec<String>) {
        self.registry.get(id).map_or_else(
            || ("system".to_owned(), vec![]),
            |a| (a.kind.as_str().to_owned(), a.areas.clone()),
        )
    }

    /// The channels `sender` (for its class, `members`) opens with `kind` in
    /// each of `situations`. Each purpose and legal basis is asked at the
    /// sender's usual classification first (OFFICIAL-SENSITIVE, or its
    /// clearance if lower); those it may send are then asked at every
    /// classification up to its clearance (above it, the gateway refuses
    /// whatever the clauses say).
    fn explore(
        &self,
        sender: &AgencyId,
        members: &[AgencyId],
        kind: &str,
        situations: &[(Situation, Facts)],
        channels: &mut Vec<Share>,
    ) {
        let vocabulary = self.policy.vocabulary();
        let cleared = self
            .registry
            .get(sender)
            .map_or(Classification::TopSecret, |a| a.clearance.level());
        let usual = cleared.min(Classification::OfficialSensitive);
        for (situation, facts) in situations {
            let ask_to = |purpose: &str, basis: &str, c: Classification, addressed: bool| {
                envelope(sender, kind, purpose, basis, c, situation).and_then(|mut e| {
                    if addressed {
                        e.addressees = self.everyone.iter().map(ToString::to_string).collect();
                    }
                    self.policy.evaluate(sender, &e, self.registry, facts).ok()
                })
            };
            let ask =
                |purpose: &str, basis: &str, c: Classification| ask_to(purpose, basis, c, false);
            for purpose in vocabulary.purposes.keys() {
                for basis in vocabulary.legal_bases.keys() {
                    let Some(first) = ask(purpose, basis, usual).filter(|(send, _)| send.allowed)
                    else {
                        continue;
                    };
                    for c in CLASSIFICATIONS.into_iter().filter(|c| *c <= cleared) {
                        let asked = if c == usual {
                            Some(first.clone())
                        } else {
                            ask(purpose, basis, c)
                        };
                        let Some((send, mut routes)) = asked else {
                            continue;
                        };
                        if !send.allowed {
                            continue;
                        }
                        // A kind that reaches only the agencies it names
                        // (an information request): named to every agency.
                        let mut addressed = false;
                        if routes.is_empty()
                            && let Some((again, to)) = ask_to(purpose, basis, c, true)
                            && again.allowed
                            && !to.is_empty()
                        {
                            routes = to;
                            addressed = true;
                        }
                        // The gateway refuses these when they reach no agency.
                        if routes.is_empty() && crate::ingress::MUST_REACH.contains(&kind) {
                            continue;
                        }
                        let copies: Vec<Copy> = routes
                            .iter()
                            .map(|r| {
                                let (kind, areas) = self.describe(&r.recipient);
                                Copy {
                                    agency: r.recipient.to_string(),
                                    kind,
                                    areas,
                                    sees: DataLabel::all()
                                        .filter(|l| !r.withheld.contains(l))
                                        .map(|l| l.short_name().to_owned())
                                        .collect(),
                                    clauses: r.clauses.clone(),
                                }
                            })
                            .collect();
                        let all: Vec<&str> = send
                            .clauses
                            .iter()
                            .chain(routes.iter().flat_map(|r| r.clauses.iter()))
                            .map(String::as_str)
                            .collect();
                        let (sender_kind, sender_areas) = self.describe(sender);
                        channels.push(Share {
                            senders: members.iter().map(ToString::to_string).collect(),
                            sender_kind,
                            sender_areas,
                            kind: kind.to_owned(),
                            purpose: purpose.clone(),
                            legal_basis: basis.clone(),
                            classification: classification_name(c).to_owned(),
                            situation: situation.clone(),
                            addressed,
                            clauses: send.clauses.clone(),
                            copies,
                            kept: format_period(self.policy.retention(all, self.default_retention)),
                        });
                    }
                }
            }
        }
    }
}

/// Builds the catalogue of `policy` for `registry`'s agencies.
///
/// First every kind that answers nothing, from each class of senders (a
/// case's kinds on a case every agency participates in, owned by the
/// sender). Then the kinds that answer another envelope, in reply to what
/// the sender could have received: each channel already found, answered by
/// each class of its recipients and by its sender (Liaison's services
/// answer any), for up to
/// three rounds (an erasure confirmed, answering a correction, answering a
/// referral).
pub fn build(policy: &Policy, registry: &Registry, default_retention: u64) -> Catalogue {
    let grid = Grid {
        policy,
        registry,
        default_retention,
        everyone: registry.ids(),
    };
    let senders = senders(registry);
    let class_of: BTreeMap<String, usize> = senders
        .iter()
        .enumerate()
        .flat_map(|(i, (_, members))| members.iter().map(move |m| (m.to_string(), i)))
        .collect();
    let sends = |sender: &AgencyId, kind: &str| {
        liaison_proto::SYSTEM_KINDS.contains(&kind) == liaison_core::system::is_reserved(sender)
            && kind != "erasure_required"
    };
    let mut channels = Vec::new();
    for (sender, members) in &senders {
        for &kind in liaison_proto::KINDS {
            if !sends(sender, kind) || liaison_proto::REPLY_KINDS.contains(&kind) {
                continue;
            }
            let mut situations = vec![(Situation::New, Facts::default())];
            if liaison_core::envelope_rules::CASE_KINDS.contains(&kind) {
                let owners: Vec<&(AgencyId, Vec<AgencyId>)> =
                    if liaison_core::system::is_reserved(sender) {
                        senders
                            .iter()
                            .filter(|(s, _)| !liaison_core::system::is_reserved(s))
                            .collect()
                    } else {
                        senders.iter().filter(|(s, _)| s == sender).collect()
                    };
                for (owner, owners) in owners {
                    let mut facts = Facts::case(&grid.everyone);
                    facts.owner = Some(owner.clone());
                    situations.push((
                        Situation::Case {
                            owner: owners.iter().map(ToString::to_string).collect(),
                        },
                        facts,
                    ));
                }
            }
            grid.explore(sender, members, kind, &situations, &mut channels);
        }
    }
    let mut asked: std::collections::BTreeSet<(usize, String, usize)> = Default::default();
    let mut from = 0;
    for _round in 0..3 {
        let found = channels.len();
        // (replying class, answered kind, answering whose class)
        let mut answers: std::collections::BTreeSet<(usize, String, usize)> = Default::default();
        for channel in &channels[from..found] {
            let Some(&origin) = channel.senders.first().and_then(|s| class_of.get(s)) else {
                continue;
            };
            // Its recipients answer it; its sender corrects it.
            answers.insert((origin, channel.kind.clone(), origin));
            for copy in &channel.copies {
                if let Some(&replier) = class_of.get(&copy.agency) {
                    answers.insert((replier, channel.kind.clone(), origin));
                }
            }
            for (i, (sender, _)) in senders.iter().enumerate() {
                if liaison_core::system::is_reserved(sender) {
                    answers.insert((i, channel.kind.clone(), origin));
                }
            }
        }
        from = found;
        let mut by_replier: BTreeMap<usize, Vec<(String, usize)>> = BTreeMap::new();
        for (replier, kind, origin) in answers {
            if asked.insert((replier, kind.clone(), origin)) {
                by_replier.entry(replier).or_default().push((kind, origin));
            }
        }
        if by_replier.is_empty() {
            break;
        }
        for (replier, answered) in by_replier {
            let (sender, members) = &senders[replier];
            let situations: Vec<(Situation, Facts)> = answered
                .iter()
                .map(|(kind, origin)| {
                    let (origin_sender, origin_members) = &senders[*origin];
                    (
                        Situation::Reply {
                            kind: kind.clone(),
                            from: origin_members.iter().map(ToString::to_string).collect(),
                        },
                        Facts {
                            participants: vec![],
                            owner: None,
                            replied: Some(Replied {
                                sender: origin_sender.clone(),
                                recipients: grid.everyone.clone(),
                                kind: kind.clone(),
                            }),
                        },
                    )
                })
                .collect();
            for &kind in liaison_proto::REPLY_KINDS {
                if sends(sender, kind) {
                    grid.explore(sender, members, kind, &situations, &mut channels);
                }
            }
        }
    }
    let grouped = group(&channels);
    let terms = policy.terms();
    let clauses = policy
        .clauses()
        .into_iter()
        .map(|clause| {
            let t = terms.get(&clause).copied().unwrap_or_default();
            let on = grouped
                .iter()
                .enumerate()
                .filter(|(_, ch)| ch.terms.iter().any(|t| t.names(&clause)))
                .map(|(i, _)| i)
                .collect();
            Clause {
                retention: t.retention.map(format_period),
                expires: t.expires.map(format_day),
                review: t.review.map(format_day),
                clause,
                channels: on,
            }
        })
        .collect();
    Catalogue {
        policy: policy.digest().to_owned(),
        default_retention: format_period(default_retention),
        clauses,
        channels: grouped,
        shares: channels,
    }
}

impl Catalogue {
    /// The channel a sender, kind, purpose, legal basis, classification and
    /// situation open, if any.
    pub fn find(
        &self,
        sender: &str,
        kind: &str,
        purpose: &str,
        basis: &str,
        classification: &str,
        situation: &Situation,
    ) -> Option<&Share> {
        self.shares.iter().find(|c| {
            c.senders.iter().any(|s| s == sender)
                && c.kind == kind
                && c.purpose == purpose
                && c.legal_basis == basis
                && c.classification == classification
                && match (&c.situation, situation) {
                    (
                        Situation::Reply { kind, from },
                        Situation::Reply {
                            kind: wanted,
                            from: whom,
                        },
                    ) => kind == wanted && whom.iter().all(|w| from.contains(w)),
                    (Situation::Case { owner }, Situation::Case { owner: whom }) => {
                        whom.iter().all(|w| owner.contains(w))
                    }
                    (a, b) => a == b,
                }
        })
    }

    /// For people: by clause, each channel it opens, then who receives what.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Policy set sha256:{}: {} clauses, {} channels (data kept {} where no clause says)\n",
            self.policy,
            self.clauses.len(),
            self.channels.len(),
            self.default_retention
        );
        for clause in &self.clauses {
            out.push_str(&format!("\n{}{}\n", clause.clause, terms(clause)));
            let mut delivered = 0;
            for &i in &clause.channels {
                let channel = &self.channels[i];
                let opened: Vec<&Terms> = channel
                    .terms
                    .iter()
                    .filter(|t| t.clauses.contains(&clause.clause))
                    .collect();
                if opened.is_empty() {
                    delivered += 1;
                    continue;
                }
                out.push_str(&format!(
                    "  {} ({}{}) send {}, {}{}\n",
                    channel.senders.join(", "),
                    channel.sender_kind,
                    if channel.sender_areas.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", channel.sender_areas.join(", "))
                    },
                    channel.kind,
                    channel.situation.words(),
                    if channel.addressed {
                        ", to the agencies it names among"
                    } else {
                        ""
                    },
                ));
                for t in opened {
                    out.push_str(&format!(
                        "    {} for {}; kept {}\n",
                        t.classifications.join(", "),
                        t.allowed
                            .iter()
                            .map(|(p, b)| format!("{p} under {}", b.join(" | ")))
                            .collect::<Vec<_>>()
                            .join("; "),
                        t.kept
                    ));
                    if t.copies.is_empty() {
                        out.push_str("      to no agency (Liaison's services only)\n");
                    }
                    for copy in &t.copies {
                        out.push_str(&format!(
                            "      to {} ({}) seeing {}\n",
                            copy.agency,
                            copy.kind,
                            if copy.sees.is_empty() {
                                "no labelled field".to_owned()
                            } else {
                                copy.sees.join(", ")
                            }
                        ));
                    }
                }
            }
            if delivered > 0 {
                out.push_str(&format!(
                    "  delivers, or shows labels, on {delivered} channel(s) other clauses open\n"
                ));
            }
        }
        out
    }

    /// The catalogue as one self-contained HTML page (every value escaped).
    pub fn html(&self) -> String {
        let mut rows = String::new();
        for clause in &self.clauses {
            for &i in &clause.channels {
                let c = &self.channels[i];
                for t in c
                    .terms
                    .iter()
                    .filter(|t| t.clauses.contains(&clause.clause))
                {
                    let copies: Vec<String> = t
                        .copies
                        .iter()
                        .map(|copy| {
                            format!("{} ({}): {}", copy.agency, copy.kind, copy.sees.join(", "))
                        })
                        .collect();
                    let allowed: Vec<String> = t
                        .allowed
                        .iter()
                        .map(|(p, b)| format!("{p} under {}", b.join(" | ")))
                        .collect();
                    rows.push_str(&format!(
                        "<tr><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                        escape(&clause.clause),
                        escape(&terms(clause)),
                        escape(&c.senders.join(", ")),
                        escape(&c.sender_kind),
                        escape(&c.kind),
                        escape(&t.classifications.join(", ")),
                        escape(&allowed.join("; ")),
                        escape(&c.situation.words()),
                        escape(&copies.join("; ")),
                        escape(&t.kept),
                    ));
                }
            }
        }
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Who may share what with whom</title></head><body>\n\
             <h1>Who may share what with whom</h1>\n<p>Policy set sha256:{}; data kept {} where no clause says.</p>\n\
             <table border=\"1\"><tr><th>clause</th><th>terms</th><th>senders</th><th>kind</th><th>classification</th><th>purposes and legal bases</th><th>situation</th><th>copies (labels seen)</th><th>kept</th></tr>\n{rows}</table>\n</body></html>\n",
            escape(&self.policy),
            escape(&self.default_retention),
        )
    }
}

fn terms(clause: &Clause) -> String {
    let mut terms = Vec::new();
    if let Some(r) = &clause.retention {
        terms.push(format!("kept {r}"));
    }
    if let Some(e) = &clause.expires {
        terms.push(format!("expires {e}"));
    }
    if let Some(r) = &clause.review {
        terms.push(format!("review {r}"));
    }
    if terms.is_empty() {
        String::new()
    } else {
        format!("  ({})", terms.join(", "))
    }
}

use liaison_core::html::escape;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::{self, Expect};

    fn repo() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Every policy test case the partnership wrote comes out of the
    /// catalogue as the evaluator (`policy explain`, `policy test`) says:
    /// an allowed one is a channel whose copies include each expected
    /// recipient's kind seeing exactly its expected labels; a denied one
    /// that depends on nothing but its shape is no channel at all.
    #[test]
    fn the_catalogue_agrees_with_every_policy_test_case() -> Result<(), String> {
        let registry = Registry::load(&repo().join("deploy/agencies/registry.toml"))
            .map_err(|e| e.to_string())?;
        let policy =
            Policy::load(&repo().join("deploy/policies"), &registry).map_err(|e| e.to_string())?;
        let catalogue = build(&policy, &registry, 6 * 365 * 86_400);
        assert!(
            catalogue.channels.len() > 20,
            "{} channels",
            catalogue.channels.len()
        );
        let mut checked = 0;
        for (file, cases) in scenarios::load_dir(&repo().join("deploy/policies/tests"))? {
            for case in cases {
                let situation = match (&case.reply, case.participants.first()) {
                    (Some(r), _) => Situation::Reply {
                        kind: r.kind.clone(),
                        from: vec![r.sender.to_string()],
                    },
                    (None, Some(first)) => Situation::Case {
                        owner: vec![case.owner.as_ref().unwrap_or(first).to_string()],
                    },
                    (None, None) => Situation::New,
                };
                // Narrower than the catalogue's questions (named addressees,
                // added participants, an alert's sectors): not comparable.
                if !case.addressees.is_empty()
                    || !case.added.is_empty()
                    || !case.caveats.is_empty()
                    || !case.sectors.is_empty()
                    || !case.region.is_empty()
                {
                    continue;
                }
                let find = |situation: &Situation| {
                    catalogue.find(
                        case.sender.as_str(),
                        &case.kind,
                        &case.purpose,
                        &case.legal_basis,
                        &case.classification,
                        situation,
                    )
                };
                // The catalogue asks about a case owned by the sender (by
                // each agency, for Liaison's services); a case owned by
                // another agency is compared with it.
                let found = find(&situation).or_else(|| match &situation {
                    Situation::Case { .. } => catalogue.shares.iter().find(|c| {
                        c.senders.iter().any(|s| s == case.sender.as_str())
                            && c.kind == case.kind
                            && c.purpose == case.purpose
                            && c.legal_basis == case.legal_basis
                            && c.classification == case.classification
                            && matches!(c.situation, Situation::Case { .. })
                    }),
                    _ => None,
                });
                let name = format!("{}: {}", file.display(), case.name);
                // Above the sender's clearance the gateway refuses before any
                // clause is asked (the case checks the clauses alone).
                let cleared = registry
                    .get(&case.sender)
                    .map_or(Classification::TopSecret, |a| a.clearance.level());
                if classification_name(cleared) != case.classification
                    && CLASSIFICATIONS
                        .iter()
                        .position(|c| classification_name(*c) == case.classification)
                        > CLASSIFICATIONS.iter().position(|c| *c == cleared)
                {
                    assert!(found.is_none(), "{name}: above clearance, yet {found:?}");
                    continue;
                }
                match case.send {
                    Expect::Allow => {
                        let channel =
                            found.ok_or_else(|| format!("{name}: no channel in the catalogue"))?;
                        for (agency, sees) in &case.recipients {
                            let mut sees = sees.clone();
                            sees.sort();
                            let copy = channel
                                .copies
                                .iter()
                                .find(|c| c.agency == agency.as_str())
                                .ok_or_else(|| {
                                    format!("{name}: the catalogue has no copy for {agency}")
                                })?;
                            let mut got = copy.sees.clone();
                            got.sort();
                            assert_eq!(got, sees, "{name}: {agency}");
                        }
                        checked += 1;
                    }
                    Expect::Deny if situation == Situation::New => {
                        assert!(found.is_none(), "{name}: the catalogue opens {found:?}");
                        checked += 1;
                    }
                    _ => {}
                }
            }
        }
        assert!(checked >= 20, "only {checked} policy test cases compared");
        Ok(())
    }
}
