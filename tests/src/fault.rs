//! What the fault suites (`consumer_faults.rs`, `service_faults.rs`,
//! `durability.rs`) measure: the copies a recipient was handed and what they
//! prove ([`Copies`]: lost, duplicated, and whether every duplicate is the
//! same stored copy handed out again — the same envelope id, content and
//! number in the recipient's inbox), the ledger's
//! shares ([`ledger_shares`]), and the one-line figure each fault reports
//! ([`figure`]). The processes they signal are [`crate::fault_process`]; the
//! faults themselves live in the tests.

use crate::ledger;
use anyhow::{Result, bail};
use liaison_client::{AgencyClient, Received};
use liaison_core::AgencyId;
use liaison_proto::v1::{Decision, Operation};
use liaison_runtime::users;
use liaison_system::system::System;
use prost::Message as _;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash as _, Hasher as _};
use std::path::Path;
use std::time::{Duration, Instant};

/// One copy a recipient was handed: envelope id, its number in the
/// recipient's inbox, and a digest of the decoded delivery (the same content
/// gives the same digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handed {
    pub envelope_id: String,
    pub recipient_seq: u64,
    pub digest: u64,
}

impl Handed {
    pub fn of(received: &Received) -> Self {
        let mut digest = std::hash::DefaultHasher::new();
        received.delivery.encode_to_vec().hash(&mut digest);
        Self {
            envelope_id: received.envelope_id().to_owned(),
            recipient_seq: received.recipient_seq(),
            digest: digest.finish(),
        }
    }

    /// `<envelope id> <recipient seq> <digest>`, as the recorder writes it.
    pub fn line(&self) -> String {
        format!(
            "{} {} {:016x}",
            self.envelope_id, self.recipient_seq, self.digest
        )
    }

    fn parse(line: &str) -> Result<Self> {
        let mut parts = line.split(' ');
        let (Some(id), Some(count), Some(digest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            bail!("bad recorder line {line:?}");
        };
        Ok(Self {
            envelope_id: id.to_owned(),
            recipient_seq: count.parse()?,
            digest: u64::from_str_radix(digest, 16)?,
        })
    }
}

/// Every copy a recipient was handed, in order, duplicates included.
#[derive(Debug, Default)]
pub struct Copies(pub Vec<Handed>);

/// What a recipient's copies prove against what senders were told was accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Acknowledged to a sender, never handed to the recipient.
    pub lost: usize,
    /// Copies beyond the first of an envelope id.
    pub duplicates: usize,
}

impl Copies {
    /// What a recorder wrote to `out` so far (none if it has not started).
    pub fn read(out: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(out) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e.into()),
        };
        // A line is written whole and synced before the next; the last may
        // be caught half-written.
        let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
        Ok(Self(
            complete.lines().map(Handed::parse).collect::<Result<_>>()?,
        ))
    }

    /// The distinct envelope ids.
    pub fn ids(&self) -> BTreeSet<&str> {
        self.0.iter().map(|c| c.envelope_id.as_str()).collect()
    }

    /// The copies beyond the first of their envelope id.
    pub fn duplicates(&self) -> usize {
        self.0.len() - self.ids().len()
    }

    /// The envelope ids handed out more than once.
    pub fn duplicated_ids(&self) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        self.0
            .iter()
            .filter(|c| !seen.insert(c.envelope_id.as_str()))
            .map(|c| c.envelope_id.clone())
            .collect()
    }

    /// Checks every copy against `acknowledged`: none that a sender was not
    /// told was accepted, and every duplicate the same stored copy handed out
    /// again (the same number in the recipient's inbox and the content of the
    /// first) — so de-duplicating on the envelope id leaves exactly one of
    /// each, and no envelope was stored twice for one recipient. Returns what
    /// was lost and duplicated.
    pub fn against(&self, acknowledged: &[String]) -> Result<Outcome> {
        let expected: BTreeSet<&str> = acknowledged.iter().map(String::as_str).collect();
        let ids = self.ids();
        if let Some(extra) = ids.difference(&expected).next() {
            bail!("{extra} was delivered but never acknowledged to its sender");
        }
        // Per id: the first copy's digest and number.
        let mut first: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for copy in &self.0 {
            let (digest, number) = *first
                .entry(&copy.envelope_id)
                .or_insert((copy.digest, copy.recipient_seq));
            if digest != copy.digest {
                bail!("two copies of {} differ in content", copy.envelope_id);
            }
            if number != copy.recipient_seq {
                bail!(
                    "{} was stored twice in the recipient's inbox (numbers {number} and {})",
                    copy.envelope_id,
                    copy.recipient_seq
                );
            }
        }
        Ok(Outcome {
            lost: expected.difference(&ids).count(),
            duplicates: self.duplicates(),
        })
    }
}

/// Reads `client`'s inbox, acknowledging each batch, until every id in
/// `expected` came and the agency's consumer has nothing more, within `timeout`.
pub async fn read_inbox(
    system: &System,
    client: &AgencyClient,
    expected: &[String],
    timeout: Duration,
) -> Result<Copies> {
    let wanted: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let deadline = Instant::now() + timeout;
    let mut copies = Copies::default();
    loop {
        let batch = client.next_batch(1000, Duration::from_millis(200)).await?;
        copies.0.extend(batch.iter().map(Handed::of));
        client.ack_all(&batch).await?;
        if batch.is_empty()
            && copies.ids().is_superset(&wanted)
            // Not known (a cluster electing a leader) is not yet drained.
            && inbox_pending(system, client.agency()).await.ok() == Some(0)
        {
            return Ok(copies);
        }
        if Instant::now() > deadline {
            bail!(
                "{} received {} of {} envelopes within {timeout:?}",
                client.agency(),
                copies.ids().intersection(&wanted).count(),
                wanted.len()
            );
        }
    }
}

/// Copies in `agency`'s inbox that it has not acknowledged.
pub async fn inbox_pending(system: &System, agency: &AgencyId) -> Result<u64> {
    let operator = system.connect_as(users::INSPECTOR).await?;
    let backlog = liaison_runtime::inbox::ask_backlog(&operator, agency)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(backlog.waiting)
}

/// The ledger's shares of `acknowledged` envelopes, each to `recipients`
/// agencies, after checking the ledger is intact: the collection and
/// disclosure records missing, and those beyond one per envelope
/// (collection) or per copy (disclosure). Fails on a share of an envelope no
/// sender was told was accepted.
pub async fn ledger_shares(
    system: &System,
    acknowledged: &[String],
    recipients: usize,
) -> Result<Outcome> {
    let (report, records) = ledger(system).await?;
    if !report.intact() {
        bail!("ledger not intact: {report:?}");
    }
    let mut collections: BTreeMap<&str, usize> = BTreeMap::new();
    let mut disclosures: BTreeMap<(&str, &[String]), usize> = BTreeMap::new();
    for record in &records {
        let id = record.envelope_id.as_str();
        if record.operation == Operation::Collection as i32
            && record.decision == Decision::Accepted as i32
        {
            *collections.entry(id).or_default() += 1;
        } else if record.operation == Operation::Disclosure as i32 {
            *disclosures.entry((id, &record.recipients)).or_default() += 1;
        }
    }
    let expected: BTreeSet<&str> = acknowledged.iter().map(String::as_str).collect();
    let recorded = collections
        .keys()
        .chain(disclosures.keys().map(|(id, _)| id));
    if let Some(extra) = recorded.into_iter().find(|id| !expected.contains(*id)) {
        bail!("the ledger records {extra}, never acknowledged to its sender");
    }
    let shares = collections.len() + disclosures.len();
    let duplicates = collections
        .values()
        .chain(disclosures.values())
        .map(|n| n - 1)
        .sum();
    Ok(Outcome {
        lost: (expected.len() * (1 + recipients)).saturating_sub(shares),
        duplicates,
    })
}

/// Prints a measured figure on one line, `FIGURE what: text` (in the test
/// log; `docs/performance.md` collects them).
#[allow(clippy::print_stderr)] // the figure is what the test log is for
pub fn measured(what: &str, text: &str) {
    eprintln!("FIGURE {what}: {text}");
}

/// Prints a fault's figure on one line (in the test log; `docs/faults.md`
/// collects them).
#[allow(clippy::print_stderr)] // the figure is what the test log is for
pub fn figure(fault: &str, outcome: &Outcome, recovery: Duration, how: &str) {
    eprintln!(
        "FIGURE {fault}: lost {}, duplicates {}, recovery {} ms ({how})",
        outcome.lost,
        outcome.duplicates,
        recovery.as_millis()
    );
}
