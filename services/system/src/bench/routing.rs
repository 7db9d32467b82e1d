//! How the gateway's routing decision costs as the registry grows: the
//! development registry, then national registries of about 2,000 and
//! 25,000 agencies (`crate::national`), each loaded with the shipped
//! policies; then the same kinds of envelope decided at each size — a
//! school's referral, a case update among a panel, a regional alert — with
//! the decision cache bypassed, so each figure is a whole decision. The
//! same decision asking every agency (how routing worked before areas and
//! indexes) is timed beside it, on fewer envelopes. What `liaison bench
//! --agencies 8,2000,25000` prints.

use crate::national::{self, Options};
use anyhow::{Context as _, Result, anyhow};
use liaison_core::AgencyId;
use liaison_gateway::policy::{Facts, Policy};
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{AlertIssued, Classification, Envelope, ReferralMade};
use liaison_runtime::registry::Registry;
use std::path::Path;
use std::time::{Duration, Instant};

/// One size's figures.
#[derive(Debug, Clone)]
pub struct Size {
    pub agencies: usize,
    /// Loading the registry and the policies (entities, indexes, classes).
    pub load: Duration,
    /// Resident memory the loaded registry added, then the policy.
    pub memory: (u64, u64),
    /// Per kind: (kind, recipients of the last, p50, p99, decisions per second).
    pub decisions: Vec<(&'static str, usize, Duration, Duration, f64)>,
    /// The referral decided by asking every agency: p50 (fewer samples).
    pub every_agency_p50: Duration,
}

/// The registry of about `agencies` agencies: the development one for 8 to
/// 11, else a national one.
fn registry(root: &Path, agencies: usize) -> Result<(Registry, Vec<AgencyId>)> {
    if agencies <= 11 {
        let registry = Registry::load(&root.join("deploy/agencies/registry.toml"))?;
        let schools = vec![
            AgencyId::parse("school-a")?,
            AgencyId::parse("westshire-school")?,
        ];
        return Ok((registry, schools));
    }
    // 166 agencies an area at 164 schools an area; smaller sizes keep the
    // areas as large and have fewer of them.
    let schools_per_area = 164;
    let areas = (agencies / (schools_per_area + 2)).max(1);
    let generated = national::generate(&Options::new(areas, schools_per_area), |_| false)?;
    let registry = Registry::parse(&generated.toml).map_err(|e| anyhow!(e))?;
    let schools = (1..=areas)
        .map(|a| AgencyId::parse(&format!("school-{a:04}-001")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((registry, schools))
}

/// This process's resident set now, in bytes.
fn resident() -> Result<u64> {
    Ok(super::memory::rss(std::process::id())?.1)
}

fn envelope(sender: &AgencyId, body: Body, purpose: &str, basis: &str) -> Envelope {
    Envelope {
        id: "bench".into(),
        sender_agency: sender.to_string(),
        purpose: purpose.into(),
        legal_basis: basis.into(),
        classification: Classification::OfficialSensitive as i32,
        body: Some(body),
        ..Default::default()
    }
}

/// A school's Prevent referral, with no case.
fn referral_from(school: AgencyId) -> (AgencyId, Envelope, Facts) {
    let body = Body::Referral(ReferralMade::default());
    let e = envelope(&school, body, "safeguarding", "CTSA-2015-s26");
    (school, e, Facts::default())
}

pub(crate) fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.50), at(0.99))
}

/// Decides `n` envelopes made by `make(i)`, uncached: (recipients of the
/// last, p50, p99, per second).
fn time(
    policy: &Policy,
    registry: &Registry,
    n: usize,
    cached: bool,
    make: impl Fn(usize) -> (AgencyId, Envelope, Facts),
) -> Result<(usize, Duration, Duration, f64)> {
    let mut samples = Vec::with_capacity(n);
    let mut recipients = 0;
    let started = Instant::now();
    for i in 0..n {
        let (sender, envelope, facts) = make(i);
        let t = Instant::now();
        let (_, routes) = if cached {
            policy.evaluate(&sender, &envelope, registry, &facts)?
        } else {
            policy.evaluate_uncached(&sender, &envelope, registry, &facts)?
        };
        samples.push(t.elapsed());
        recipients = routes.len();
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(samples);
    Ok((recipients, p50, p99, rate))
}

/// Measures each size in `sizes` with `n` decisions of each kind.
pub fn run(
    root: &Path,
    sizes: &[usize],
    n: usize,
    mut progress: impl FnMut(&str),
) -> Result<Vec<Size>> {
    let policies = root.join("deploy/policies");
    let mut out = Vec::new();
    for &wanted in sizes {
        progress(&format!("routing with {wanted} agencies"));
        let before = resident()?;
        let started = Instant::now();
        let (registry, schools) = registry(root, wanted)?;
        let with_registry = resident()?;
        let policy = Policy::load(&policies, &registry)
            .with_context(|| format!("loading the policies for {wanted} agencies"))?;
        let load = started.elapsed();
        let memory = (
            with_registry.saturating_sub(before),
            resident()?.saturating_sub(with_registry),
        );
        let pick = |i: usize| schools[i % schools.len()].clone();
        let referral = |i: usize| referral_from(pick(i));
        let mut decisions = Vec::new();
        let (r, p50, p99, rate) = time(&policy, &registry, n, false, referral)?;
        decisions.push(("referral from a school", r, p50, p99, rate));
        // The gateway's own path, its decision cache on, with referrals from
        // every school in turn: the schools of an area share one decision.
        let every_school: Vec<AgencyId> = registry
            .agencies()
            .filter(|a| a.kind.as_str() == "education")
            .map(|a| a.id.clone())
            .collect();
        let from_any = |i: usize| referral_from(every_school[i % every_school.len()].clone());
        let (r, p50, p99, rate) = time(
            &policy,
            &registry,
            n.max(every_school.len()),
            true,
            from_any,
        )?;
        decisions.push(("referral, cached, every school in turn", r, p50, p99, rate));
        // A case update among the sender's area's force, council and trust.
        let panel: Vec<AgencyId> = {
            let school = pick(0);
            let area = registry
                .get(&school)
                .and_then(|a| a.areas.first().cloned())
                .unwrap_or_default();
            let mut panel: Vec<AgencyId> = registry
                .serving(&area)
                .iter()
                .filter(|id| {
                    registry
                        .get(id)
                        .is_some_and(|a| matches!(a.kind.as_str(), "police" | "council" | "health"))
                })
                .cloned()
                .collect();
            panel.truncate(4);
            panel
        };
        if let Some(owner) = panel.first().cloned() {
            let update = |_: usize| {
                let body = Body::CaseUpdate(Default::default());
                let mut e = envelope(&owner, body, "safeguarding", "CTSA-2015-s36");
                e.case_id = "CASE-1".into();
                (owner.clone(), e, Facts::case(&panel))
            };
            let (r, p50, p99, rate) = time(&policy, &registry, n, false, update)?;
            decisions.push(("case update to a panel", r, p50, p99, rate));
        }
        let police = registry
            .agencies()
            .find(|a| a.kind.as_str() == "police")
            .map(|a| a.id.clone());
        if let Some(police) = police {
            let region = registry
                .get(&police)
                .and_then(|a| a.region.clone())
                .unwrap_or_default();
            let alert = |_: usize| {
                let body = Body::Alert(AlertIssued {
                    sectors: vec!["retail".into()],
                    region: region.clone(),
                    ..Default::default()
                });
                let mut e = envelope(&police, body, "protective-security", "DPA-2018-s35");
                e.classification = Classification::Official as i32;
                (police.clone(), e, Facts::default())
            };
            let (r, p50, p99, rate) = time(&policy, &registry, n, false, alert)?;
            decisions.push(("alert to a region", r, p50, p99, rate));
        }
        let every = (n / 50).clamp(3, 50);
        let mut samples = Vec::with_capacity(every);
        for i in 0..every {
            let (sender, envelope, facts) = referral(i);
            let t = Instant::now();
            policy.evaluate_every_agency(&sender, &envelope, &registry, &facts)?;
            samples.push(t.elapsed());
        }
        out.push(Size {
            agencies: registry.len(),
            load,
            memory,
            decisions,
            every_agency_p50: percentiles(samples).0,
        });
    }
    Ok(out)
}
