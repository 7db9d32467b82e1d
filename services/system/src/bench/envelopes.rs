//! The envelopes the bench sends and the configuration it runs: a police
//! Prevent referral (one recipient, the council), a school referral (two:
//! police and council) and a national alert to every sector (three: the
//! council and both business partners). Every subject is a made-up token,
//! unique per envelope so linkage matches nobody; no names, no dates. The
//! registry is the configured one with every agency's rate limit lifted, as
//! the pipeline bench does, so the figures measure the pipeline, not the
//! limiter.

use anyhow::{Context as _, Result};
use liaison_proto::v1::alert_issued::ThreatLevel;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{AlertIssued, Classification, Envelope, Person, ReferralMade};
use liaison_runtime::config::Config;
use prost::Message as _;
use std::path::Path;

/// What a bench envelope is, and who sends it.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Police to the council (ISA-PREVENT-01): 1 recipient.
    PoliceReferral,
    /// School to police and council (ISA-EDU-01): 2 recipients.
    SchoolReferral,
    /// Police to the council and every business partner (ISA-PSA-01): 3 recipients.
    Alert,
}

impl Kind {
    pub fn sender(self) -> &'static str {
        match self {
            Kind::PoliceReferral | Kind::Alert => "police",
            Kind::SchoolReferral => "school-a",
        }
    }

    pub fn author(self) -> String {
        format!("{}-bench", self.sender())
    }

    pub fn recipients(self) -> usize {
        match self {
            Kind::PoliceReferral => 1,
            Kind::SchoolReferral => 2,
            Kind::Alert => 3,
        }
    }

    /// Envelope `id` of this kind, encoded.
    pub fn encode(self, id: &str) -> Vec<u8> {
        self.envelope(id).encode_to_vec()
    }

    pub fn envelope(self, id: &str) -> Envelope {
        let (purpose, legal_basis, classification, body) = match self {
            Kind::PoliceReferral => (
                "safeguarding",
                "CTSA-2015-s36",
                Classification::OfficialSensitive,
                referral(id, "hotline"),
            ),
            Kind::SchoolReferral => (
                "safeguarding",
                "CTSA-2015-s26",
                Classification::OfficialSensitive,
                referral(id, "school"),
            ),
            Kind::Alert => (
                "protective-security",
                "DPA-2018-s35",
                Classification::Official,
                Body::Alert(AlertIssued {
                    threat_level: ThreatLevel::Low as i32,
                    // A regional alert, as most are: the same three
                    // recipients in the development registry whatever else
                    // is registered (a national registry adds only the
                    // national sector leads, who receive every region's).
                    sectors: vec![],
                    region: "london".into(),
                    headline: "Bench alert".into(),
                    protective_advice: "None: a benchmark".into(),
                    location: "Nowhere".into(),
                }),
            ),
        };
        Envelope {
            id: id.into(),
            sender_agency: self.sender().into(),
            author: self.author(),
            sent_at: Some(liaison_core::time::timestamp_now()),
            classification: classification as i32,
            purpose: purpose.into(),
            legal_basis: legal_basis.into(),
            body: Some(body),
            ..Default::default()
        }
    }
}

fn referral(id: &str, source: &str) -> Body {
    let token: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Body::Referral(ReferralMade {
        subject: Some(Person {
            token: format!("tok-bench-{token}"),
            category: "bench".into(),
            ..Default::default()
        }),
        source: source.into(),
        concern: "Benchmark referral".into(),
        ..Default::default()
    })
}

/// The size of the school referral the raw baselines publish, in bytes.
pub fn envelope_size() -> usize {
    Kind::SchoolReferral.encode("bench-000000").len()
}

/// `config` for the bench: JetStream's default flush (as the other
/// benches), no HTTPS door, no operations listeners, alerts not escalated
/// during the run, and the registry with rate limits lifted, written in `dir`.
pub fn bench_config(mut config: Config, dir: &Path) -> Result<Config> {
    let registry = std::fs::read_to_string(&config.paths.registry).with_context(|| {
        format!(
            "reading the agency registry {}",
            config.paths.registry.display()
        )
    })?;
    let lifted = registry.replace(
        "[[agency]]\n",
        "[[agency]]\nrate_per_sec = 1000000\nburst = 1000000\n",
    );
    let path = dir.join("registry.toml");
    std::fs::write(&path, lifted)
        .with_context(|| format!("writing the bench registry {}", path.display()))?;
    config.paths.registry = path;
    // The shipped durability (`always`), unless the bench was asked for the
    // server's default flush (`liaison bench --flush default`: "default").
    config.nats.sync_interval = match config.nats.sync_interval.as_str() {
        "" => "always".into(),
        "default" => String::new(),
        other => other.to_owned(),
    };
    config.https.listen = String::new();
    config.telemetry.listen = String::new();
    config.telemetry.otlp_endpoint = String::new();
    config.alerts.escalate_low_secs = 24 * 3600;
    Ok(config)
}
