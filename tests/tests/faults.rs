//! Faults with real processes and real signals (issue 8), each reporting one
//! figure line — acknowledged envelopes lost, duplicates handed to a
//! recipient, time to recover — collected in docs/faults.md:
//!
//! - an agency's consumer stopped (SIGSTOP) past the ack wait, then resumed;
//! - an agency's consumer killed (SIGKILL) after storing a batch, before
//!   acknowledging it;
//! - the gateway, then the audit service, each as its own process, killed
//!   (SIGKILL) mid-stream and started again;
//! - the JetStream store filling up (`max_file_store`, as a small disk).
//!
//! nats-server killed mid-burst is `durability.rs`; the in-process service
//! crashes are `restart.rs`. The separate processes are `src/bin/fault-process.rs`.

use anyhow::{Result, ensure};
use async_nats::jetstream::consumer::PullConsumer;
use liaison::system::{System, UpOptions};
use liaison_kit::{subjects, users};
use liaison_proto::v1::verdict::Outcome as Verdict;
use liaison_tests::fault::{self, Copies, Hold, Outcome, Process, figure};
use liaison_tests::{Burst, agency, config, eventually, referral, start};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_fault-process"))
}

/// The ids a [`Burst`] with `prefix` had acknowledged when `answered` were answered.
fn burst_ids(prefix: &str, answered: usize) -> Vec<String> {
    (0..answered).map(|n| format!("{prefix}-{n:04}")).collect()
}

/// Waits until the recorder writing `out` has stored every id in `ids`.
async fn recorded(out: &Path, ids: &[String], timeout: Duration) -> Result<Copies> {
    eventually("the recorder to store every envelope", timeout, || async {
        let copies = Copies::read(out)?;
        let stored = copies.ids();
        Ok(ids
            .iter()
            .all(|id| stored.contains(id.as_str()))
            .then_some(copies))
    })
    .await
}

/// Waits until the recorders writing `outs` have everything between them and
/// `agency_id`'s consumer is drained, so no further copy can come; returns
/// what they stored.
async fn settled(
    system: &System,
    agency_id: &str,
    outs: &[&Path],
    ids: &[String],
) -> Result<Copies> {
    let agency_id = liaison_kit::AgencyId::parse(agency_id)?;
    let read = || -> Result<Copies> {
        let mut all = Copies::default();
        for out in outs {
            all.0.extend(Copies::read(out)?.0);
        }
        Ok(all)
    };
    eventually("every envelope stored", Duration::from_secs(60), || async {
        let stored = read()?;
        let ids_stored = stored.ids();
        Ok(ids
            .iter()
            .all(|id| ids_stored.contains(id.as_str()))
            .then_some(()))
    })
    .await?;
    eventually("the inbox drained", Duration::from_secs(30), || async {
        Ok((fault::inbox_pending(system, &agency_id).await? == 0).then_some(()))
    })
    .await?;
    read()
}

/// Waits until the recorder is stopped by the kernel holding a stored,
/// unacknowledged batch; returns that batch's ids.
async fn stopped_holding(recorder: &Process, out: &Path) -> Result<BTreeSet<String>> {
    eventually(
        "the recorder stopped holding a batch",
        Duration::from_secs(30),
        || async {
            Ok(match fault::held(out) {
                Some(held) if recorder.is_stopped()? => Some(held),
                _ => None,
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_stopped_past_ack_wait_and_resumed_misses_nothing() -> Result<()> {
    const ENVELOPES: usize = 200;
    let system = start().await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("police.copies");
    let burst = Burst::start(agency(&system, "school-a").await?, "stop", ENVELOPES);
    // A backlog waits, so the recorder's first batch is a full one; it is
    // stopped (SIGSTOP) once that batch is stored, before it is acknowledged.
    burst.until_answered(ENVELOPES / 4).await?;
    let mut police = fault::recorder(binary(), &system, "police", &out, Some(Hold::Stop(1)))?;
    let held = stopped_holding(&police, &out).await?;
    let stopped_at = burst.answered.load(Ordering::SeqCst);
    // Traffic goes on while the consumer is stopped ...
    burst
        .until_answered((stopped_at + ENVELOPES / 4).min(ENVELOPES))
        .await?;
    // ... and the fault is time passing: it stays stopped past the ack wait,
    // so the batch it holds falls due again.
    tokio::time::sleep(Duration::from_secs(system.config.streams.ack_wait_secs + 1)).await;
    let backlog = burst_ids("stop", burst.answered.load(Ordering::SeqCst));
    police.signal("CONT")?;
    let resumed = Instant::now();
    recorded(&out, &backlog, Duration::from_secs(60)).await?;
    let caught_up = resumed.elapsed();

    let acknowledged = burst.finish().await?;
    let copies = settled(&system, "police", &[&out], &acknowledged).await?;
    police.running()?;
    let outcome = copies.against(&acknowledged)?;
    figure(
        "consumer SIGSTOP/SIGCONT",
        &outcome,
        caught_up,
        &format!(
            "stopped holding {} stored, unacknowledged deliveries for {} s (ack wait {} s) \
             while {} more envelopes were accepted; SIGCONT to all {} accepted by then stored",
            held.len(),
            system.config.streams.ack_wait_secs + 1,
            system.config.streams.ack_wait_secs,
            backlog.len() - stopped_at,
            backlog.len()
        ),
    );
    // Its late acknowledgements are taken (nobody else asked for the held
    // batch meanwhile): nothing lost, and any duplicate a redelivery of one
    // envelope id with the same content (`against`), dropped by id.
    assert_eq!(outcome.lost, 0);
    system.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_consumer_instance_is_covered_by_another_with_duplicates_only_by_id() -> Result<()>
{
    const ENVELOPES: usize = 200;
    let system = start().await?;
    let dir = tempfile::tempdir()?;
    let (out_a, out_b) = (dir.path().join("a.copies"), dir.path().join("b.copies"));
    let burst = Burst::start(agency(&system, "school-a").await?, "pair", ENVELOPES);
    burst.until_answered(ENVELOPES / 4).await?;
    // Two instances of the police's system share its durable consumer; one
    // is stopped holding a stored, unacknowledged batch.
    let mut police_a = fault::recorder(binary(), &system, "police", &out_a, Some(Hold::Stop(1)))?;
    let held = stopped_holding(&police_a, &out_a).await?;
    let stopped = Instant::now();
    let mut police_b = fault::recorder(binary(), &system, "police", &out_b, None)?;
    let held_ids: Vec<String> = held.iter().cloned().collect();
    recorded(&out_b, &held_ids, Duration::from_secs(30)).await?;
    let covered = stopped.elapsed();
    police_a.signal("CONT")?;

    let acknowledged = burst.finish().await?;
    let copies = settled(&system, "police", &[&out_a, &out_b], &acknowledged).await?;
    police_a.running()?;
    police_b.running()?;
    let outcome = copies.against(&acknowledged)?;
    figure(
        "consumer SIGSTOP, a second instance reading",
        &outcome,
        covered,
        &format!(
            "{} held by the stopped instance handed to the other after the {} s ack wait; \
             stop to all of them stored by the other",
            held.len(),
            system.config.streams.ack_wait_secs
        ),
    );
    // Both instances stored the held batch: exactly those ids twice, each
    // second copy a redelivery with the same content.
    assert_eq!(
        outcome,
        Outcome {
            lost: 0,
            duplicates: held.len()
        }
    );
    assert_eq!(copies.duplicated_ids(), held);
    system.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_between_storing_and_acknowledging_gets_those_again() -> Result<()> {
    const ENVELOPES: usize = 200;
    let system = start().await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("police.copies");
    let burst = Burst::start(agency(&system, "school-a").await?, "crash", ENVELOPES);
    burst.until_answered(ENVELOPES / 4).await?;
    let mut police = fault::recorder(binary(), &system, "police", &out, Some(Hold::Hang(1)))?;
    let held = eventually(
        "the recorder to store a batch it has not acknowledged",
        Duration::from_secs(30),
        || async { Ok(fault::held(&out)) },
    )
    .await?;

    police.kill9().await?;
    let crashed = Instant::now();
    let mut police = fault::recorder(binary(), &system, "police", &out, None)?;
    eventually(
        "the unacknowledged batch again",
        Duration::from_secs(30),
        || async {
            Ok(Copies::read(&out)?
                .duplicated_ids()
                .is_superset(&held)
                .then_some(()))
        },
    )
    .await?;
    let recovered = crashed.elapsed();

    let acknowledged = burst.finish().await?;
    let copies = settled(&system, "police", &[&out], &acknowledged).await?;
    police.running()?;
    let outcome = copies.against(&acknowledged)?;
    figure(
        "consumer SIGKILL after storing, before acknowledging",
        &outcome,
        recovered,
        &format!(
            "{} stored and unacknowledged at the kill, restarted at once; kill to all of them \
             handed out again (ack wait {} s)",
            held.len(),
            system.config.streams.ack_wait_secs
        ),
    );
    // Nothing lost; exactly the stored-but-unacknowledged batch came twice.
    assert_eq!(
        outcome,
        Outcome {
            lost: 0,
            duplicates: held.len()
        }
    );
    assert_eq!(copies.duplicated_ids(), held);
    system.shutdown().await
}

/// Every acknowledged envelope delivered once to the police and the council,
/// and recorded once (a collection and two disclosures) in the intact ledger.
async fn shared_once(system: &System, acknowledged: &[String]) -> Result<Outcome> {
    let mut total = fault::ledger_shares(system, acknowledged, 2).await?;
    for recipient in ["police", "council"] {
        let client = agency(system, recipient).await?;
        let copies =
            fault::read_inbox(system, &client, acknowledged, Duration::from_secs(60)).await?;
        let outcome = copies.against(acknowledged)?;
        total.lost += outcome.lost;
        total.duplicates += outcome.duplicates;
    }
    Ok(total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_process_killed_mid_stream_loses_nothing_acknowledged() -> Result<()> {
    const ENVELOPES: usize = 200;
    let mut system = start().await?;
    let dir = tempfile::tempdir()?;
    system.stop_gateway().await;
    let mut gateway = fault::service(binary(), &system, "gateway", dir.path())?;
    let school = agency(&system, "school-a")
        .await?
        .with_verdict_timeout(Duration::from_millis(500));
    let burst = Burst::start(school, "gw", ENVELOPES);

    burst.until_answered(ENVELOPES / 3).await?;
    gateway.kill9().await?;
    let killed = Instant::now();
    let at_kill = burst.answered.load(Ordering::SeqCst);
    // Started again at once, as a supervisor would.
    let mut gateway = fault::service(binary(), &system, "gateway", dir.path())?;
    burst.until_answered(at_kill + 1).await?;
    let recovered = killed.elapsed();

    let acknowledged = burst.finish().await?;
    gateway.running()?;
    ensure!(at_kill < ENVELOPES, "the gateway was killed mid-stream");
    let outcome = shared_once(&system, &acknowledged).await?;
    figure(
        "gateway process SIGKILL",
        &outcome,
        recovered,
        &format!(
            "killed after {at_kill} of {ENVELOPES}, restarted at once; kill to the next verdict, \
             deliveries to 2 recipients and ledger records counted"
        ),
    );
    assert_eq!(
        outcome,
        Outcome {
            lost: 0,
            duplicates: 0
        }
    );
    system.shutdown().await
}

/// The DECISIONS stream's last sequence, and how far the ledger writer has
/// chained (its consumer's acknowledgement floor).
async fn decisions(system: &System) -> Result<(u64, u64)> {
    let js = async_nats::jetstream::new(system.connect_as(users::OPERATOR).await?);
    let mut stream = js.get_stream(subjects::DECISIONS_STREAM).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut writer: PullConsumer = stream
        .get_consumer(subjects::LEDGER_WRITER_CONSUMER)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok((last, writer.info().await?.ack_floor.stream_sequence))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_process_killed_mid_stream_chains_every_decision_once() -> Result<()> {
    const ENVELOPES: usize = 200;
    let mut system = start().await?;
    let dir = tempfile::tempdir()?;
    system.stop_audit().await;
    let mut audit = fault::service(binary(), &system, "audit", dir.path())?;
    let burst = Burst::start(agency(&system, "school-a").await?, "audit", ENVELOPES);

    // Killed while decisions arrive; down for a third of the burst (the
    // gateway keeps accepting: decisions wait in DECISIONS).
    burst.until_answered(ENVELOPES / 3).await?;
    audit.kill9().await?;
    burst.until_answered(2 * ENVELOPES / 3).await?;
    let (waiting, _) = decisions(&system).await?;
    let restarted = Instant::now();
    let mut audit = fault::service(binary(), &system, "audit", dir.path())?;
    eventually(
        "the writer to chain what waited",
        Duration::from_secs(60),
        || async { Ok((decisions(&system).await?.1 >= waiting).then_some(())) },
    )
    .await?;
    let recovered = restarted.elapsed();

    let acknowledged = burst.finish().await?;
    audit.running()?;
    let outcome = shared_once(&system, &acknowledged).await?;
    figure(
        "audit process SIGKILL",
        &outcome,
        recovered,
        &format!(
            "killed at {} of {ENVELOPES}, restarted at {}; restart to the {waiting} decisions \
             then waiting all chained (start-up verifies the ledger)",
            ENVELOPES / 3,
            2 * ENVELOPES / 3
        ),
    );
    assert_eq!(
        outcome,
        Outcome {
            lost: 0,
            duplicates: 0
        }
    );
    system.shutdown().await
}

/// Bytes JetStream stores for the system's account.
async fn storage(system: &System) -> Result<u64> {
    let js = async_nats::jetstream::new(system.connect_as(users::OPERATOR).await?);
    Ok(js.query_account().await?.storage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_clearly_and_recovers_when_space_is_freed() -> Result<()> {
    // A small disk: JetStream may store SMALL bytes, room for the system
    // and a few dozen envelopes (each is ~9 JetStream writes) ...
    const SMALL: u64 = 160 * 1024;
    // ... until the volume is grown (nats-server reloads a raised limit).
    const GROWN: u64 = 256 * 1024 * 1024;
    const REFUSALS: usize = 5;
    let options = UpOptions {
        max_file_store: Some(SMALL),
        ..UpOptions::default()
    };
    let mut system = System::start(config(), options).await?;
    let at_start = storage(&system).await?;
    let school = agency(&system, "school-a").await?;
    let council = agency(&system, "council").await?;
    let mut acknowledged = Vec::new();
    let mut next = 0;

    // Traffic until the store is full and the gateway refuses REFUSALS times.
    let mut refused = Vec::new();
    let mut slowest = Duration::ZERO;
    while refused.len() < REFUSALS {
        ensure!(next < 1000, "the store never filled: {SMALL} bytes");
        let id = format!("full-{next:04}");
        next += 1;
        let asked = Instant::now();
        // The gateway keeps answering: a timeout here fails the test.
        let verdict = school.send(&referral("school-a", &id)).await?;
        slowest = slowest.max(asked.elapsed());
        if verdict.outcome == Verdict::Refused as i32 {
            liaison_tests::assert_refused(&verdict, "unavailable", "insufficient resources", &id);
            refused.push(id);
        } else {
            ensure!(verdict.outcome == Verdict::Accepted as i32, "{verdict:?}");
            acknowledged.push(id);
        }
    }
    ensure!(
        acknowledged.len() >= 3,
        "the store was full before traffic began"
    );
    // Recipients still read (and acknowledge) what was delivered.
    let mut council_copies = Copies::default();
    for received in council.next_batch(1000, Duration::from_millis(500)).await? {
        council_copies.0.push(fault::Handed::of(&received));
        received.ack().await?;
    }
    ensure!(
        !council_copies.0.is_empty(),
        "the council could not read while the store was full"
    );

    // Space is freed (the volume grown, the limit raised); senders re-send
    // what was refused, with the same ids.
    let freed = Instant::now();
    tokio::task::block_in_place(|| {
        let server = system.server_mut();
        server.set_max_file_store(Some(GROWN));
        server.reload()
    })?;
    let mut recovered = None;
    for id in &refused {
        let verdict = school
            .send_until_answered(&referral("school-a", id), Duration::from_secs(30))
            .await?;
        let ok = [Verdict::Accepted as i32, Verdict::Duplicate as i32];
        ensure!(ok.contains(&verdict.outcome), "{verdict:?}");
        recovered.get_or_insert(freed.elapsed());
        acknowledged.push(id.clone());
    }
    system.wait_until_settled(Duration::from_secs(60)).await?;
    let settled = freed.elapsed();

    let mut outcome = fault::ledger_shares(&system, &acknowledged, 2).await?;
    let police = agency(&system, "police").await?;
    let police_copies =
        fault::read_inbox(&system, &police, &acknowledged, Duration::from_secs(60)).await?;
    let read_before = council_copies.ids();
    let rest: Vec<String> = acknowledged
        .iter()
        .filter(|id| !read_before.contains(id.as_str()))
        .cloned()
        .collect();
    council_copies.0.extend(
        fault::read_inbox(&system, &council, &rest, Duration::from_secs(60))
            .await?
            .0,
    );
    for copies in [police_copies, council_copies] {
        let o = copies.against(&acknowledged)?;
        outcome.lost += o.lost;
        outcome.duplicates += o.duplicates;
    }
    figure(
        "JetStream store full (max_file_store)",
        &outcome,
        recovered.unwrap_or_default(),
        &format!(
            "store limit {SMALL} bytes ({at_start} used at start): {} accepted, then \
             {REFUSALS} refused `unavailable` (slowest verdict {} ms); limit raised to the \
             first re-send accepted, {} ms to everything routed and chained",
            acknowledged.len() - refused.len(),
            slowest.as_millis(),
            settled.as_millis()
        ),
    );
    assert_eq!(
        outcome,
        Outcome {
            lost: 0,
            duplicates: 0
        }
    );
    system.shutdown().await
}
