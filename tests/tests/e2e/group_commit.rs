//! Group commit (docs/decisions/0024-group-commit.md): envelopes accepted
//! together are stored as one commit, judged duplicates across gateways
//! without per-message ids.

use anyhow::{Result, ensure};
use liaison_gateway::events::Events;
use liaison_proto::v1::{CommittedEnvelope, Envelope, EnvelopeAccepted};
use liaison_runtime::users;
use liaison_tests::start;
use std::collections::BTreeMap;
use std::time::Duration;

/// A committed envelope as a gateway would hand it to its writer (what is
/// sealed does not matter here).
fn entry(sender: &str, id: &str) -> CommittedEnvelope {
    CommittedEnvelope {
        scoped_id: format!("{sender}/{id}"),
        fact: Some(EnvelopeAccepted {
            envelope: Some(Envelope {
                id: id.into(),
                sender_agency: sender.into(),
                ..Envelope::default()
            }),
            ..EnvelopeAccepted::default()
        }),
        event: b"sealed".to_vec(),
        ..CommittedEnvelope::default()
    }
}

/// Two gateways' writers are handed the same 60 envelopes at once: each is
/// stored once, in one commit or another, and exactly one of the two is
/// told it was new. The writers share nothing but EVENTS: the second to
/// commit is refused by the guard, reads what the first committed, and
/// answers those duplicate.
#[tokio::test]
async fn two_gateways_accepting_the_same_envelopes_store_each_once() -> Result<()> {
    let system = start().await?;
    let window = Duration::from_secs(3600);
    let first = Events::start(system.connect_as(users::GATEWAY).await?, window);
    let second = Events::start(system.connect_as(users::GATEWAY).await?, window);
    let ids: Vec<String> = (0..60).map(|n| format!("twice-{n}")).collect();
    let sends = ids.iter().flat_map(|id| {
        [first.clone(), second.clone()]
            .into_iter()
            .map(move |writer| {
                let id = id.clone();
                async move {
                    let answer = writer.store(entry("school-a", &id)).await;
                    (id, answer)
                }
            })
    });
    let mut answers: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for (id, answer) in futures_util::future::join_all(sends).await {
        let duplicate = answer.map_err(anyhow::Error::msg)?;
        answers.entry(id).or_default().push(duplicate);
    }
    for (id, mut said) in answers {
        said.sort_unstable();
        ensure!(
            said == [false, true],
            "{id}: answered {said:?}, not once new and once duplicate"
        );
    }
    let inspector = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let commits = liaison_tests::commits(&inspector).await?;
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for (_, commit) in &commits {
        for e in &commit.envelopes {
            *stored.entry(e.scoped_id.clone()).or_default() += 1;
        }
    }
    ensure!(
        stored.len() == ids.len() && stored.values().all(|n| *n == 1),
        "EVENTS holds {stored:?}"
    );
    // Gathered: far fewer commits than envelopes.
    ensure!(
        commits.len() < ids.len(),
        "{} commits for {} envelopes",
        commits.len(),
        ids.len()
    );
    // A third writer, started after, reads the window and knows them all.
    let third = Events::start(system.connect_as(users::GATEWAY).await?, window);
    ensure!(
        third
            .store(entry("school-a", "twice-7"))
            .await
            .map_err(anyhow::Error::msg)?,
        "a writer started later took twice-7 for new"
    );
    system.shutdown().await
}

/// Entries too large to share a commit, handed to one writer together:
/// each commit stays under the server's 1 MiB `max_payload` (an entry that
/// would not fit closes the commit and opens the next), so every one is
/// stored — none refused with the others of an oversized commit.
#[tokio::test]
async fn entries_too_large_to_share_a_commit_are_each_committed() -> Result<()> {
    let system = start().await?;
    let writer = Events::start(
        system.connect_as(users::GATEWAY).await?,
        Duration::from_secs(3600),
    );
    let large = |n: usize| CommittedEnvelope {
        event: vec![7u8; 520 * 1024],
        ..entry("school-a", &format!("large-{n}"))
    };
    let stored = futures_util::future::join_all((0..6).map(|n| writer.store(large(n)))).await;
    for (n, answer) in stored.into_iter().enumerate() {
        let duplicate = answer.map_err(|e| anyhow::anyhow!("large-{n}: {e}"))?;
        ensure!(!duplicate, "large-{n} answered duplicate");
    }
    let inspector = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let commits = liaison_tests::commits(&inspector).await?;
    ensure!(
        commits.len() == 6 && commits.iter().all(|(_, c)| c.envelopes.len() == 1),
        "{} commits",
        commits.len()
    );
    system.shutdown().await
}
