//! The linkage service end to end, over a real nats-server: referrals carry
//! subject tokens computed with the partnership key (the client library);
//! a former subject re-engaging alerts the owner of the closed case, two
//! agencies referring one person (or a person on a live case) are told to
//! the right agencies; every match is one COMBINATION record; killing the
//! service mid-stream or emptying its bucket loses nothing and raises
//! nothing twice.

use anyhow::{Result, bail, ensure};
use liaison_client::{AgencyClient, Identifiers, SubjectKey, subject_token};
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{AuditRecord, Delivery, Envelope, Operation};
use liaison_runtime::users;
use liaison_system::system::System;
use liaison_tests::casework::{close_case, open_case, refer};
use liaison_tests::{agency, eventually, ledger, repo_root, start};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn key() -> Result<SubjectKey> {
    Ok(SubjectKey::from_file(
        &repo_root().join("deploy/linkage/dev-partnership.key"),
    )?)
}

/// The token of a (fictional) person, as the referring agency computes it.
fn token(key: &SubjectKey, name: &str, dob: &str) -> Result<String> {
    Ok(subject_token(
        key,
        &Identifiers {
            full_name: name.into(),
            date_of_birth: dob.into(),
            other: vec![],
        },
    )?)
}

/// Everything one agency has read from its inbox so far.
struct Inbox {
    client: AgencyClient,
    read: Vec<Delivery>,
}

fn kind(delivery: &Delivery) -> &'static str {
    delivery.envelope.as_ref().map_or("none", Envelope::kind)
}

impl Inbox {
    async fn of(system: &System, name: &str) -> Result<Self> {
        Ok(Self {
            client: agency(system, name).await?,
            read: vec![],
        })
    }

    fn kinds(&self, of: &str) -> Vec<&Delivery> {
        self.read.iter().filter(|d| kind(d) == of).collect()
    }

    /// Reads until `n` deliveries of kind `of` arrived (failing after 30 s).
    async fn until(&mut self, of: &str, n: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.kinds(of).len() < n {
            if Instant::now() > deadline {
                bail!(
                    "{} received {} of {n} {of}",
                    self.client.agency(),
                    self.kinds(of).len()
                );
            }
            let batch = self.client.inbox(1, Duration::from_millis(50)).await?;
            self.read.extend(batch);
        }
        Ok(())
    }

    /// Reads whatever else arrives within `wait`.
    async fn settle(&mut self, wait: Duration) -> Result<()> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let batch = self.client.inbox(100, Duration::from_millis(100)).await?;
            self.read.extend(batch);
        }
        Ok(())
    }

    /// The envelope ids of kind `of`, checking none arrived twice.
    fn ids_once(&self, of: &str) -> Result<Vec<String>> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for d in self.kinds(of) {
            let id = d
                .envelope
                .as_ref()
                .map(|e| e.id.clone())
                .unwrap_or_default();
            *counts.entry(id).or_default() += 1;
        }
        if let Some((id, n)) = counts.iter().find(|(_, n)| **n > 1) {
            bail!("{} received {of} {id} {n} times", self.client.agency());
        }
        Ok(counts.into_keys().collect())
    }
}

/// The linkage service's COMBINATION records in the (verified) ledger.
async fn combinations(system: &System) -> Result<Vec<AuditRecord>> {
    let (report, records) = ledger(system).await?;
    ensure!(report.intact(), "ledger not intact: {report:?}");
    Ok(records
        .into_iter()
        .filter(|r| r.operation == Operation::Combination as i32)
        .collect())
}

#[tokio::test]
#[allow(clippy::print_stdout)] // the latency, for the evidence notes (--nocapture)
async fn a_former_subject_re_engaging_alerts_the_owner_within_a_second() -> Result<()> {
    let system = start().await?;
    let key = key()?;
    let alex = token(&key, "Alex Example", "2010-04-12")?;
    // The NHS writes the same person its own way: the same token.
    assert_eq!(alex, token(&key, "EXAMPLE, Alex", "12/04/2010")?);
    let (school, nhs) = (
        agency(&system, "school-a").await?,
        agency(&system, "nhs-trust").await?,
    );
    let police_client = agency(&system, "police").await?;

    refer(&school, "re-ref-1", &alex).await?;
    open_case(&system, &police_client, "CASE-RE-1", &[&alex], "re-ref-1").await?;
    close_case(&police_client, "CASE-RE-1").await?;
    let mut police = Inbox::of(&system, "police").await?;
    police.until("referral", 1).await?;

    // Months later the NHS refers the former subject.
    refer(&nhs, "re-ref-2", &alex).await?;
    let verdict_at = Instant::now();
    police.until("reengagement", 1).await?;
    let latency = verdict_at.elapsed();
    println!("re-engagement alert delivered {latency:?} after the referral was accepted");
    assert!(latency <= Duration::from_secs(1), "{latency:?}");

    let alert = police.kinds("reengagement")[0].clone();
    let envelope = alert.envelope.unwrap_or_default();
    assert_eq!(envelope.id, "reengagement:re-ref-2:CASE-RE-1");
    assert_eq!(envelope.sender_agency, "liaison-linkage");
    assert_eq!(envelope.case_id, "CASE-RE-1");
    assert_eq!(envelope.addressees, ["police"]);
    let Some(Body::Reengagement(body)) = envelope.body else {
        bail!("not a re-engagement alert");
    };
    assert_eq!(body.subject_token, alex);
    assert_eq!(body.former_case_id, "CASE-RE-1");
    assert_eq!(body.referral_envelope_id, "re-ref-2");
    assert_eq!(body.referring_agency, "nhs-trust");

    // The council saw both referrals, and no alert: it owns no case. The
    // school's referral is the closed case's own, so it is no duplicate.
    let mut council = Inbox::of(&system, "council").await?;
    council.until("referral", 2).await?;
    police.settle(Duration::from_millis(500)).await?;
    council.settle(Duration::from_millis(300)).await?;
    assert!(council.kinds("reengagement").is_empty());
    assert!(
        police.kinds("duplicate_subject").is_empty()
            && council.kinds("duplicate_subject").is_empty()
    );

    // One match, one COMBINATION record: tokens and ids, no personal data.
    let records = combinations(&system).await?;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(
        record.record_id,
        "combination:reengagement:re-ref-2:CASE-RE-1"
    );
    assert_eq!(record.subject_tokens, std::slice::from_ref(&alex));
    assert_eq!(record.case_id, "CASE-RE-1");
    assert_eq!(record.recipients, ["police"]);
    assert_eq!(record.agency, "liaison-linkage");
    assert!(record.reason.contains("re-ref-2") && record.reason.contains("nhs-trust"));
    let text = format!("{record:?}");
    assert!(!text.contains("Alex") && !text.contains("2010"), "{text}");
    system.shutdown().await
}

#[tokio::test]
async fn one_person_referred_twice_or_on_a_live_case_is_told_to_the_right_agencies() -> Result<()> {
    let system = start().await?;
    let key = key()?;
    let (sam, jo) = (
        token(&key, "Sam Sample", "2009-01-30")?,
        token(&key, "Jo Testfield", "2011-07-02")?,
    );
    let (school, nhs, school_b) = (
        agency(&system, "school-a").await?,
        agency(&system, "nhs-trust").await?,
        agency(&system, "school-b").await?,
    );
    let council_client = agency(&system, "council").await?;

    // Two agencies refer Sam, no case yet: both referrals' recipients are told.
    refer(&school, "dup-ref-1", &sam).await?;
    refer(&nhs, "dup-ref-2", &sam).await?;
    // Jo is on the council's live case: a referral is told to the council only.
    open_case(&system, &council_client, "CASE-DUP-2", &[&jo], "").await?;
    refer(&school_b, "dup-ref-3", &jo).await?;

    let (mut police, mut council) = (
        Inbox::of(&system, "police").await?,
        Inbox::of(&system, "council").await?,
    );
    police.until("duplicate_subject", 1).await?;
    council.until("duplicate_subject", 2).await?;
    police.settle(Duration::from_millis(500)).await?;
    council.settle(Duration::from_millis(300)).await?;
    assert_eq!(
        police.ids_once("duplicate_subject")?,
        ["duplicate:dup-ref-2"]
    );
    assert_eq!(
        council.ids_once("duplicate_subject")?,
        ["duplicate:dup-ref-2", "duplicate:dup-ref-3"]
    );
    for delivery in council.kinds("duplicate_subject") {
        let envelope = delivery.envelope.clone().unwrap_or_default();
        let Some(Body::DuplicateSubject(d)) = envelope.body else {
            bail!("not a duplicate");
        };
        if envelope.id == "duplicate:dup-ref-2" {
            assert_eq!(d.subject_token, sam);
            assert_eq!(d.referral_envelope_ids, ["dup-ref-1", "dup-ref-2"]);
            assert_eq!(d.referring_agencies, ["nhs-trust", "school-a"]);
            assert!(d.case_ids.is_empty());
            assert_eq!(envelope.addressees, ["council", "police"]);
        } else {
            assert_eq!(d.subject_token, jo);
            assert_eq!(d.case_ids, ["CASE-DUP-2"]);
            assert_eq!(envelope.case_id, "CASE-DUP-2");
            assert_eq!(envelope.addressees, ["council"]);
        }
    }

    let records = combinations(&system).await?;
    let mut ids: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "combination:duplicate:dup-ref-2",
            "combination:duplicate:dup-ref-3"
        ]
    );
    system.shutdown().await
}

/// Former subjects closed by the police, for a stream of referrals.
async fn former_subjects(
    system: &System,
    key: &SubjectKey,
    police: &AgencyClient,
    n: usize,
) -> Result<Vec<String>> {
    let mut tokens = vec![];
    for i in 0..n {
        let t = token(key, &format!("Former Subject{}", letters(i)), "2001-02-03")?;
        let case = format!("CASE-F-{i:03}");
        open_case(system, police, &case, &[&t], "").await?;
        close_case(police, &case).await?;
        tokens.push(t);
    }
    Ok(tokens)
}

/// A name part from a number (names have letters, not digits).
fn letters(mut n: usize) -> String {
    let mut s = String::new();
    loop {
        s.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            return s;
        }
    }
}

#[tokio::test]
async fn a_linkage_service_killed_mid_stream_loses_nothing_and_raises_nothing_twice() -> Result<()>
{
    const N: usize = 20;
    let mut system = start().await?;
    let key = key()?;
    let police_client = agency(&system, "police").await?;
    let formers = former_subjects(&system, &key, &police_client, N).await?;
    let (school, nhs) = (
        agency(&system, "school-a").await?,
        agency(&system, "nhs-trust").await?,
    );
    // N re-engagements and N duplicates, interleaved, sent while the
    // linkage service is killed and started again.
    let mut plan = vec![];
    for (i, former) in formers.iter().enumerate() {
        let new = token(&key, &format!("New Person{}", letters(i)), "2012-03-04")?;
        plan.push((format!("kill-re-{i:03}"), former.clone(), false));
        plan.push((format!("kill-a-{i:03}"), new.clone(), true));
        plan.push((format!("kill-b-{i:03}"), new, false));
    }
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = answered.clone();
    let sender = tokio::spawn(async move {
        for (id, token, from_school) in plan {
            let from = if from_school { &school } else { &nhs };
            refer(from, &id, &token).await?;
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        anyhow::Ok(())
    });
    let reached = |n: usize| {
        let answered = answered.clone();
        move || {
            let done = answered.load(std::sync::atomic::Ordering::SeqCst);
            async move { Ok((done >= n).then_some(())) }
        }
    };
    eventually(
        "a third of the referrals",
        Duration::from_secs(60),
        reached(N),
    )
    .await?;
    system.kill_linkage().await;
    eventually(
        "two thirds of the referrals",
        Duration::from_secs(60),
        reached(2 * N),
    )
    .await?;
    system.start_linkage().await?;
    sender.await??;

    let (mut police, mut council) = (
        Inbox::of(&system, "police").await?,
        Inbox::of(&system, "council").await?,
    );
    police.until("reengagement", N).await?;
    police.until("duplicate_subject", N).await?;
    council.until("duplicate_subject", N).await?;
    system.wait_until_folded(Duration::from_secs(30)).await?;
    police.settle(Duration::from_millis(500)).await?;
    council.settle(Duration::from_millis(300)).await?;
    let re = police.ids_once("reengagement")?;
    let expected: Vec<String> = (0..N)
        .map(|i| format!("reengagement:kill-re-{i:03}:CASE-F-{i:03}"))
        .collect();
    assert_eq!(re, expected);
    let dup: Vec<String> = (0..N).map(|i| format!("duplicate:kill-b-{i:03}")).collect();
    assert_eq!(police.ids_once("duplicate_subject")?, dup);
    assert_eq!(council.ids_once("duplicate_subject")?, dup);
    assert!(council.kinds("reengagement").is_empty());

    // Combination records equal matches, each once.
    let records = combinations(&system).await?;
    let mut ids: Vec<String> = records.iter().map(|r| r.record_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2 * N, "{ids:?}");
    assert_eq!(records.len(), 2 * N);
    system.shutdown().await
}

#[tokio::test]
async fn an_emptied_linkage_bucket_is_rebuilt_from_events_without_raising_again() -> Result<()> {
    let mut system = start().await?;
    let key = key()?;
    let police_client = agency(&system, "police").await?;
    let formers = former_subjects(&system, &key, &police_client, 3).await?;
    let (school, nhs) = (
        agency(&system, "school-a").await?,
        agency(&system, "nhs-trust").await?,
    );
    let other = token(&key, "Casey Placeholder", "2008-08-08")?;
    refer(&nhs, "rb-ref-1", &formers[0]).await?;
    refer(&school, "rb-ref-2", &other).await?;
    refer(&nhs, "rb-ref-3", &other).await?;
    let mut police = Inbox::of(&system, "police").await?;
    police.until("reengagement", 1).await?;
    police.until("duplicate_subject", 1).await?;
    system.wait_until_folded(Duration::from_secs(30)).await?;
    let before = combinations(&system).await?.len();
    assert_eq!(before, 2);

    // A clean stop and start resumes from the stored cursor; a referral
    // meanwhile is matched when the service is back.
    system.stop_linkage().await;
    refer(&nhs, "rb-ref-4", &formers[1]).await?;
    system.start_linkage().await?;
    police.until("reengagement", 2).await?;

    // Empty the bucket (the operator's purge): the service rebuilds the
    // index from EVENTS and raises nothing it raised before.
    system.stop_linkage().await;
    let operator = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    operator.get_stream("KV_LINKAGE").await?.purge().await?;
    let bucket = operator.get_key_value("LINKAGE").await?;
    ensure!(
        bucket.get("meta.cursor").await?.is_none(),
        "bucket not emptied"
    );
    system.start_linkage().await?;
    system.wait_until_folded(Duration::from_secs(30)).await?;
    police.settle(Duration::from_millis(800)).await?;
    assert_eq!(police.ids_once("reengagement")?.len(), 2);
    assert_eq!(police.ids_once("duplicate_subject")?.len(), 1);
    assert_eq!(combinations(&system).await?.len(), 3);
    let mut keys = bucket.keys().await?;
    let mut subjects = 0;
    while let Some(k) = futures_util::StreamExt::next(&mut keys).await {
        if k?.starts_with("subject.") {
            subjects += 1;
        }
    }
    assert_eq!(subjects, 4, "three former subjects and one other person");

    // The rebuilt index still knows the former subjects.
    refer(&school, "rb-ref-5", &formers[2]).await?;
    police.until("reengagement", 3).await?;
    assert!(
        police
            .ids_once("reengagement")?
            .contains(&"reengagement:rb-ref-5:CASE-F-002".to_owned())
    );
    system.shutdown().await
}

#[tokio::test]
async fn alerts_waiting_in_the_outbox_when_the_service_dies_are_raised_once() -> Result<()> {
    let mut system = start().await?;
    let key = key()?;
    let police_client = agency(&system, "police").await?;
    let formers = former_subjects(&system, &key, &police_client, 3).await?;
    let nhs = agency(&system, "nhs-trust").await?;
    system.wait_until_folded(Duration::from_secs(30)).await?;

    // Referrals while the service is down; then it comes back while the
    // gateway is down: it decides, keeps the alerts in its outbox, cannot
    // raise them, stores its index, and dies.
    system.kill_linkage().await;
    for (i, former) in formers.iter().enumerate() {
        refer(&nhs, &format!("ob-ref-{i}"), former).await?;
    }
    system.stop_gateway().await;
    system.start_linkage().await?;
    let operator = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let bucket = operator.get_key_value("LINKAGE").await?;
    let end = operator
        .get_stream("EVENTS")
        .await?
        .info()
        .await?
        .state
        .last_sequence;
    eventually(
        "three alerts waiting and the index stored",
        Duration::from_secs(30),
        || {
            let bucket = bucket.clone();
            async move {
                let mut keys = bucket.keys().await?;
                let mut waiting = 0;
                while let Some(k) = futures_util::StreamExt::next(&mut keys).await {
                    if k?.starts_with("outbox.") {
                        waiting += 1;
                    }
                }
                let cursor: u64 = bucket
                    .get("meta.cursor")
                    .await?
                    .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
                    .unwrap_or(0);
                Ok((waiting == 3 && cursor >= end).then_some(()))
            }
        },
    )
    .await?;
    system.kill_linkage().await;

    // Back: each alert raised once, none lost, each recorded once.
    system.start_gateway().await?;
    system.start_linkage().await?;
    let mut police = Inbox::of(&system, "police").await?;
    police.until("reengagement", 3).await?;
    system.wait_until_folded(Duration::from_secs(30)).await?;
    police.settle(Duration::from_millis(500)).await?;
    assert_eq!(
        police.ids_once("reengagement")?,
        [
            "reengagement:ob-ref-0:CASE-F-000",
            "reengagement:ob-ref-1:CASE-F-001",
            "reengagement:ob-ref-2:CASE-F-002"
        ]
    );
    assert_eq!(combinations(&system).await?.len(), 3);
    let mut keys = bucket.keys().await?;
    while let Some(k) = futures_util::StreamExt::next(&mut keys).await {
        ensure!(!k?.starts_with("outbox."), "the outbox is not empty");
    }
    system.shutdown().await
}
