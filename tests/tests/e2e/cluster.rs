//! Liaison on a 3-node nats-server cluster with R3 streams: the node that
//! leads the EVENTS stream is killed (SIGKILL) while schools send referrals
//! through the gateway, and started again later. Every envelope
//! acknowledged to its sender is in EVENTS once, delivered once to each
//! recipient and recorded once in the intact ledger; the time from the kill
//! to the next acknowledged envelope is reported (`FIGURE` line), with the
//! stream's new leader's election and the node's rejoining.
//!
//! The gateway, the audit service and every client are given all three
//! URLs. CI runs 600 envelopes; a larger run (20,000 by default, or
//! `LIAISON_CLUSTER_ENVELOPES`) is ignored unless asked for:
//!
//! ```sh
//! cargo test -p liaison-tests --test cluster -- --nocapture
//! LIAISON_CLUSTER_ENVELOPES=50000 cargo test -p liaison-tests --test cluster -- --ignored --nocapture
//! ```

use anyhow::{Context as _, Result, ensure};
use async_nats::jetstream;
use liaison_core::subjects;
use liaison_runtime::registry::Registry;
use liaison_runtime::users;
use liaison_system::system::{System, UpOptions};
use liaison_tests::cluster::Cluster;
use liaison_tests::fault::{self, Outcome, figure};
use liaison_tests::{Burst, agency, config, eventually, repo_root};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_leader_killed_mid_traffic_loses_nothing_acknowledged() -> Result<()> {
    leader_killed_during(600, 4).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a larger run takes minutes: run with --ignored (see the module docs)"]
async fn the_stream_leader_killed_during_a_large_run() -> Result<()> {
    let envelopes = match std::env::var("LIAISON_CLUSTER_ENVELOPES") {
        Ok(n) => n
            .parse()
            .with_context(|| format!("LIAISON_CLUSTER_ENVELOPES={n:?} is not a count"))?,
        Err(_) => 20_000,
    };
    leader_killed_during(envelopes, 8).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nation_registered_starts_on_the_cluster_and_inboxes_stay_whole() -> Result<()> {
    national_on_the_cluster(6, 20).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "25,000 agencies on three nodes takes a minute: run with --ignored"]
async fn a_nation_of_25000_agencies_starts_on_the_cluster() -> Result<()> {
    national_on_the_cluster(150, 164).await
}

/// A generated nation (`areas` × `schools` schools, with their councils,
/// trusts, forces and partners) registered beside the development
/// partnership on a 3-node cluster with R3 streams: how long the cluster
/// and the system take to be ready (`FIGURE` lines), then referrals from
/// school-a reach the police and council, each inbox numbered 1, 2, 3 …
/// with no gap, and nothing is created per agency on the server (the
/// consumers are the services' own).
async fn national_on_the_cluster(areas: usize, schools: usize) -> Result<()> {
    const REFERRALS: usize = 50;
    let dir = tempfile::tempdir()?;
    let mut config = config();
    config.streams.replicas = 3;
    let options = liaison_system::national::Options::new(areas, schools);
    config.paths.registry = dir.path().join("registry.toml");
    std::fs::write(
        &config.paths.registry,
        liaison_system::national::with_partnership(&repo_root(), &options)?,
    )?;
    let registry = Registry::load(&config.paths.registry)?;
    let mut plan = users::plan();
    plan.push(users::inspector());

    let started = Instant::now();
    let cluster = Cluster::start(3, &plan).await?;
    let formed = started.elapsed();
    let started = Instant::now();
    let system = System::start_on(
        config,
        &cluster.urls(),
        &plan,
        UpOptions {
            inspector: true,
            ..UpOptions::default()
        },
    )
    .await?;
    let ready = started.elapsed();
    fault::measured(
        "national cluster",
        &format!(
            "{} agencies; 3 nodes formed in {} ms, system ready (R3 streams, every service) in {} ms",
            registry.len(),
            formed.as_millis(),
            ready.as_millis()
        ),
    );
    let js = jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let account = js.query_account().await?;
    // EVENTS' router, DECISIONS' ledger writer, the services' own, and each
    // gateway's watches (membership, registry, data keys, restrictions): none
    // per agency.
    ensure!(
        account.consumers < 20,
        "{} consumers for {} agencies",
        account.consumers,
        registry.len()
    );

    let school = agency(&system, "school-a").await?;
    let sent = Instant::now();
    let mut ids = Vec::new();
    for n in 0..REFERRALS {
        let id = format!("national-{n:03}");
        let verdict = school
            .send_until_answered(
                &liaison_tests::referral("school-a", &id),
                Duration::from_secs(30),
            )
            .await?;
        ensure!(
            verdict.outcome == liaison_proto::v1::verdict::Outcome::Accepted as i32
                && verdict.recipients == ["council", "police"],
            "{verdict:?}"
        );
        ids.push(id);
    }
    for recipient in ["police", "council"] {
        let client = agency(&system, recipient).await?;
        let copies = fault::read_inbox(&system, &client, &ids, Duration::from_secs(60)).await?;
        let outcome = copies.against(&ids)?;
        ensure!(
            outcome
                == Outcome {
                    lost: 0,
                    duplicates: 0
                },
            "{recipient}: {outcome:?}"
        );
        let mut gaps = liaison_client::Gaps::starting_after(0);
        for copy in &copies.0 {
            gaps.saw(copy.recipient_seq);
        }
        ensure!(
            gaps.through() == REFERRALS as u64 && gaps.missing().is_empty(),
            "{recipient}: {gaps:?}"
        );
    }
    fault::measured(
        "national cluster",
        &format!(
            "{REFERRALS} referrals sent and read by police and council, numbered without gaps, in {} ms",
            sent.elapsed().as_millis()
        ),
    );
    system.shutdown().await?;
    drop(cluster);
    Ok(())
}

/// Where EVENTS is led from, as its leader reports it (`None` while there is none).
async fn events_leader(js: &jetstream::Context) -> Option<String> {
    let mut stream = js.get_stream(subjects::EVENTS_STREAM).await.ok()?;
    let info = stream.info().await.ok()?;
    info.cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .filter(|l| !l.is_empty())
}

/// Whether every replica of EVENTS is current and online.
async fn events_replicas_current(js: &jetstream::Context, replicas: usize) -> bool {
    let Ok(mut stream) = js.get_stream(subjects::EVENTS_STREAM).await else {
        return false;
    };
    let Ok(info) = stream.info().await else {
        return false;
    };
    info.cluster.as_ref().is_some_and(|c| {
        c.replicas.len() + 1 == replicas && c.replicas.iter().all(|p| p.current && !p.offline)
    })
}

/// How many times each envelope id is stored in EVENTS (across its commits).
async fn events_by_id(js: &jetstream::Context) -> Result<BTreeMap<String, usize>> {
    let mut ids = BTreeMap::new();
    for (_, commit) in liaison_tests::commits(js).await? {
        for entry in commit.envelopes {
            // De-duplicated per sender (`SENDER/ID`): counted by envelope id.
            let id = entry
                .scoped_id
                .split_once('/')
                .map_or(entry.scoped_id.clone(), |(_, id)| id.to_owned());
            *ids.entry(id).or_insert(0) += 1;
        }
    }
    Ok(ids)
}

/// `envelopes` referrals from `senders` senders (each re-sent with the same
/// id until answered); the EVENTS leader killed after a third, started
/// again after two thirds.
async fn leader_killed_during(envelopes: usize, senders: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = config();
    config.streams.replicas = 3;
    // School-a sends everything: lift its rate limit so that the cluster,
    // not the limiter, sets the pace.
    let registry = std::fs::read_to_string(repo_root().join("deploy/agencies/registry.toml"))?
        .replace(
            "name = \"Northfield Academy\"",
            "name = \"Northfield Academy\"\nrate_per_sec = 100000\nburst = 100000",
        );
    config.paths.registry = dir.path().join("registry.toml");
    std::fs::write(&config.paths.registry, registry)?;
    let mut plan = users::plan();
    plan.push(users::inspector());

    let formed = Instant::now();
    let mut cluster = Cluster::start(3, &plan).await?;
    let formed = formed.elapsed();
    let system = System::start_on(
        config,
        &cluster.urls(),
        &plan,
        UpOptions {
            inspector: true,
            ..UpOptions::default()
        },
    )
    .await?;
    let js = jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let replicas = js
        .get_stream(subjects::EVENTS_STREAM)
        .await?
        .info()
        .await?
        .config
        .num_replicas;
    ensure!(replicas == 3, "EVENTS has {replicas} replicas, not 3");

    let started = Instant::now();
    let mut bursts = Vec::new();
    for sender in 0..senders {
        let school = agency(&system, "school-a")
            .await?
            .with_verdict_timeout(Duration::from_millis(500));
        bursts.push(Burst::start(
            school,
            &format!("c{sender}"),
            envelopes / senders,
        ));
    }
    let total = senders * (envelopes / senders);
    let counters: Vec<_> = bursts.iter().map(|b| b.answered.clone()).collect();
    let answered = || {
        counters
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .sum::<usize>()
    };
    let long = Duration::from_secs(60 + total as u64 / 20);

    eventually("a third answered", long, || async {
        Ok((answered() >= total / 3).then_some(()))
    })
    .await?;
    let leader = events_leader(&js).await.context("EVENTS has no leader")?;
    let victim = cluster.index_of(&leader)?;
    let killed = Instant::now();
    cluster.kill(victim)?;
    let before = answered();
    ensure!(before < total, "the node was killed mid-traffic");
    // Polled together: the next acknowledged envelope, and EVENTS' new leader.
    let (mut recovery, mut election, mut elected) = (None, None, String::new());
    let deadline = Instant::now() + long;
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    while recovery.is_none() || election.is_none() {
        ticks.tick().await;
        if recovery.is_none() && answered() > before {
            recovery = Some(killed.elapsed());
        }
        if election.is_none()
            && let Ok(Some(now)) =
                tokio::time::timeout(Duration::from_millis(300), events_leader(&js)).await
            && now != leader
        {
            elected = now;
            election = Some(killed.elapsed());
        }
        ensure!(
            Instant::now() < deadline,
            "within {long:?} of the kill: answer {recovery:?}, new leader {election:?}"
        );
    }
    let (recovery, election) = (recovery.unwrap_or_default(), election.unwrap_or_default());

    eventually("two thirds answered", long, || async {
        Ok((answered() >= 2 * total / 3).then_some(()))
    })
    .await?;
    let restarted = Instant::now();
    tokio::task::block_in_place(|| cluster.restart(victim))?;
    eventually("the node to catch up", long, || async {
        Ok(events_replicas_current(&js, 3).await.then_some(()))
    })
    .await?;
    let rejoin = restarted.elapsed();

    let mut acknowledged = Vec::new();
    for burst in bursts {
        acknowledged.extend(burst.finish().await?);
    }
    ensure!(acknowledged.len() == total, "every envelope answered");
    let answered_in = started.elapsed();

    system
        .wait_until_settled(long)
        .await
        .context("waiting for the system to settle")?;
    // Read again if a JetStream request times out while the cluster settles.
    let stored = eventually("EVENTS read whole", long, || async {
        Ok(events_by_id(&js).await.ok())
    })
    .await?;
    let mut outcome = Outcome {
        lost: acknowledged
            .iter()
            .filter(|id| !stored.contains_key(*id))
            .count(),
        duplicates: acknowledged
            .iter()
            .map(|id| stored.get(id).copied().unwrap_or(1).saturating_sub(1))
            .sum(),
    };
    let in_events = acknowledged.len() - outcome.lost;
    let ledger = fault::ledger_shares(&system, &acknowledged, 2)
        .await
        .context("reading the ledger's shares")?;
    outcome.lost += ledger.lost;
    outcome.duplicates += ledger.duplicates;
    let mut delivered = Vec::new();
    for recipient in ["police", "council"] {
        let client = agency(&system, recipient).await?;
        let copies = fault::read_inbox(&system, &client, &acknowledged, long)
            .await
            .with_context(|| format!("reading {recipient}'s inbox"))?;
        let seen = copies.against(&acknowledged)?;
        delivered.push(format!(
            "{recipient} {} copies of {} ids",
            copies.0.len(),
            copies.ids().len()
        ));
        outcome.lost += seen.lost;
        outcome.duplicates += seen.duplicates;
    }
    figure(
        &format!("EVENTS leader SIGKILL on a 3-node cluster (R3) during {total} envelopes"),
        &outcome,
        recovery,
        &format!(
            "kill to the next acknowledged envelope; senders {senders}; killed {leader}, new \
             leader {elected} after {} ms; node restarted and current after {} ms; cluster \
             formed in {} ms; acknowledged {}, found in EVENTS {in_events}; {}; all answered \
             in {:.1} s",
            election.as_millis(),
            rejoin.as_millis(),
            formed.as_millis(),
            acknowledged.len(),
            delivered.join(", "),
            answered_in.as_secs_f64()
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
