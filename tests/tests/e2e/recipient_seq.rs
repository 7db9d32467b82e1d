//! Gap detection (docs/wire-contract.md, "Receiving"; ADR 0019): every copy
//! in an agency's inbox carries its number there, 1, 2, 3 …, with no gap and
//! no repeat — however many envelopes are routed side by side (copies for one
//! recipient gathered into atomic batches), across a restart on the same
//! store, and with a second writer in the inbox — so that a copy removed from
//! DELIVERY behind the agency's back shows as a gap the client names.

use futures_util::StreamExt as _;
use liaison_client::{AgencyClient, Gaps};
use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::verdict::Outcome;
use liaison_runtime::users;
use liaison_system::system::{System, UpOptions};
use liaison_tests::{agency, config, referral, start};
use prost::Message as _;
use std::time::{Duration, Instant};

/// Reads `n` copies from `client`'s inbox, acknowledging each; their
/// numbers in the order read.
async fn numbers(client: &AgencyClient, n: usize) -> anyhow::Result<Vec<u64>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} read {} of {n} copies",
            client.agency(),
            seen.len()
        );
        for received in client
            .next_batch(n - seen.len(), Duration::from_millis(200))
            .await?
        {
            seen.push(received.recipient_seq());
            received.ack().await?;
        }
    }
    Ok(seen)
}

/// Sends referrals `<prefix>-N` for each N of `ids` from school-a, one at a time.
async fn send(system: &System, prefix: &str, ids: std::ops::Range<usize>) -> anyhow::Result<()> {
    let school = agency(system, "school-a").await?;
    for n in ids {
        let verdict = school
            .send(&referral("school-a", &format!("{prefix}-{n}")))
            .await?;
        anyhow::ensure!(verdict.outcome == Outcome::Accepted as i32, "{verdict:?}");
    }
    Ok(())
}

/// The police's inbox ends at copy `last`, every copy acknowledged: nothing
/// waits, and nothing is handed out again.
async fn nothing_waits(system: &System, police: &AgencyClient, last: u64) -> anyhow::Result<()> {
    let backlog = liaison_runtime::inbox::ask_backlog(
        &system.connect_as(users::INSPECTOR).await?,
        &AgencyId::parse("police")?,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    assert_eq!((backlog.last, backlog.waiting), (last, 0), "{backlog:?}");
    assert!(
        police
            .next_batch(10, Duration::from_millis(300))
            .await?
            .is_empty(),
        "a copy handed out again after all were acknowledged"
    );
    Ok(())
}

fn gaps_of(seen: &[u64]) -> Gaps {
    let mut gaps = Gaps::starting_after(0);
    for &s in seen {
        gaps.saw(s);
    }
    gaps
}

fn assert_whole(agency: &str, seen: &[u64], n: u64) {
    let gaps = gaps_of(seen);
    let mut sorted = seen.to_vec();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=n).collect::<Vec<_>>(), "{agency}");
    assert!(
        gaps.missing().is_empty() && gaps.through() == n,
        "{agency}: {gaps:?}"
    );
}

/// police's copies in DELIVERY once there are `n` (copies are stored after
/// the verdict): (stream sequence, number), oldest first.
async fn police_copies_when(system: &System, n: usize) -> anyhow::Result<Vec<(u64, u64)>> {
    liaison_tests::eventually(
        &format!("{n} copies stored for police"),
        Duration::from_secs(10),
        || async {
            let copies = police_copies(system).await?;
            Ok((copies.len() >= n).then_some(copies))
        },
    )
    .await
}

/// police's copies in DELIVERY: (stream sequence, number), oldest first.
async fn police_copies(system: &System) -> anyhow::Result<Vec<(u64, u64)>> {
    let inspector = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    Ok(liaison_tests::copies_in_delivery(&inspector)
        .await?
        .into_iter()
        .filter(|c| c.agency == "police")
        .map(|c| (c.stream_seq, c.number))
        .collect())
}

#[tokio::test]
async fn copies_are_numbered_per_recipient_without_gaps_when_routed_side_by_side()
-> anyhow::Result<()> {
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let sent = futures_util::stream::iter(0..60)
        .map(|n| {
            let school = &school;
            async move {
                school
                    .send(&referral("school-a", &format!("num-{n}")))
                    .await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for verdict in sent {
        let verdict = verdict?;
        assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    }
    for recipient in ["police", "council"] {
        let client = agency(&system, recipient).await?;
        assert_whole(recipient, &numbers(&client, 60).await?, 60);
    }
    // Stored in number order, each number once.
    let stored: Vec<u64> = police_copies_when(&system, 60)
        .await?
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(stored, (1..=60).collect::<Vec<_>>());
    system.shutdown().await
}

#[tokio::test]
async fn numbering_goes_on_after_a_restart_on_the_same_store() -> anyhow::Result<()> {
    let store = tempfile::tempdir()?;
    let start_on = || async {
        let options = UpOptions {
            inspector: true,
            store_dir: Some(store.path().to_path_buf()),
            ..UpOptions::default()
        };
        System::start(config(), options).await
    };
    let first = start_on().await?;
    send(&first, "again", 0..3).await?;
    let police = agency(&first, "police").await?;
    assert_whole("police", &numbers(&police, 2).await?, 2);
    first.shutdown().await?;
    // The new gateway knows nothing of the inboxes: it reads where each
    // ends; the police's position (through 2) was kept in INBOX.
    let second = start_on().await?;
    send(&second, "again", 3..5).await?;
    let police = agency(&second, "police").await?;
    let mut seen = vec![1, 2];
    seen.extend(numbers(&police, 3).await?);
    assert_whole("police", &seen, 5);
    second.shutdown().await
}

#[tokio::test]
async fn a_second_writer_in_an_inbox_is_caught_and_numbering_stays_whole() -> anyhow::Result<()> {
    let system = start().await?;
    send(&system, "first", 0..2).await?;
    // Someone else (a second gateway, here the operator) stores copy 3 in
    // police's inbox, correctly guarded; this gateway still believes the
    // inbox ends at 2.
    let copies = police_copies_when(&system, 2).await?;
    let &(last_seq, last_number) = copies.last().ok_or_else(|| anyhow::anyhow!("no copies"))?;
    assert_eq!(last_number, 2);
    let operator = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(subjects::RECIPIENT_SEQ_HEADER, "3");
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        last_seq.to_string().as_str(),
    );
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence-Subject",
        "liaison.deliver.police.>",
    );
    let copy = liaison_proto::v1::Delivery {
        envelope: Some(referral("school-a", "second-writer")),
        recipient: "police".into(),
        ..Default::default()
    };
    // Sealed as a gateway seals it (ADR 0022).
    let names = liaison_runtime::seal::keys_for(
        copy.envelope.as_ref().unwrap_or(&Default::default()),
        liaison_runtime::seal::retained_until(liaison_core::time::unix_now(), 86_400),
    );
    let sealed = system
        .keyring()
        .await?
        .seal(
            &names,
            "liaison.deliver.police/school-a/second-writer",
            &copy.encode_to_vec(),
        )
        .await?;
    // A pack of one copy, as a gateway packs them (ADR 0024).
    headers.insert(subjects::COPIES_HEADER, "1");
    let pack = liaison_proto::v1::CopyPack {
        copies: vec![liaison_proto::v1::PackedCopy {
            scoped_id: "school-a/second-writer".into(),
            copy: sealed.to_vec(),
            ..Default::default()
        }],
    };
    operator
        .publish_with_headers(
            "liaison.deliver.police.copies",
            headers,
            pack.encode_to_vec().into(),
        )
        .await?
        .await?;
    // The gateway's next copy is refused by the guard, the inbox's end read
    // again, and the copy numbered 4.
    send(&system, "then", 0..2).await?;
    let police = agency(&system, "police").await?;
    assert_whole("police", &numbers(&police, 5).await?, 5);
    system.shutdown().await
}

#[tokio::test]
async fn a_copy_removed_behind_the_agencys_back_is_a_gap_it_can_name() -> anyhow::Result<()> {
    let system = start().await?;
    send(&system, "gap", 0..3).await?;
    // An operator deletes police's copy 2 from DELIVERY.
    let copies = police_copies_when(&system, 3).await?;
    let (second, _) = copies
        .iter()
        .copied()
        .find(|(_, n)| *n == 2)
        .ok_or_else(|| anyhow::anyhow!("no copy 2 in {copies:?}"))?;
    let operator = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    assert!(
        operator
            .get_stream(subjects::DELIVERY_STREAM)
            .await?
            .delete_message(second)
            .await?
    );
    let police = agency(&system, "police").await?;
    let seen = numbers(&police, 2).await?;
    assert_eq!(seen, vec![1, 3]);
    let gaps = gaps_of(&seen);
    assert_eq!(gaps.missing(), vec![2..=2], "{gaps:?}");
    // Its position moves over the hole once 1 and 3 are acknowledged:
    // nothing waits, and nothing is handed out again.
    nothing_waits(&system, &police, 3).await?;
    system.shutdown().await
}

/// Three copies in one pack (one DELIVERY message, ADR 0024), read and
/// settled one by one and out of order: each is handed out, acknowledged
/// and handed back by its own number, the position moves over the pack
/// copy by copy, and once all three are acknowledged nothing is handed out
/// again.
#[tokio::test]
async fn copies_in_one_pack_are_read_and_acknowledged_each_on_its_own() -> anyhow::Result<()> {
    let system = start().await?;
    let keys = system.keyring().await?;
    let names = liaison_runtime::seal::keys_for(
        &referral("school-a", "pack-0"),
        liaison_runtime::seal::retained_until(liaison_core::time::unix_now(), 86_400),
    );
    let police_id = AgencyId::parse("police")?;
    let mut copies = Vec::new();
    for n in 0..3 {
        let copy = liaison_proto::v1::Delivery {
            envelope: Some(referral("school-a", &format!("pack-{n}"))),
            recipient: "police".into(),
            ..Default::default()
        };
        let scoped_id = format!("school-a/pack-{n}");
        let sealed = keys
            .seal(
                &names,
                &subjects::copy_sealed_to(&police_id, &scoped_id),
                &copy.encode_to_vec(),
            )
            .await?;
        copies.push(liaison_proto::v1::PackedCopy {
            scoped_id,
            copy: sealed.to_vec(),
            ..Default::default()
        });
    }
    // Stored as a gateway stores a pack: numbered 1–3, into the empty inbox.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(subjects::RECIPIENT_SEQ_HEADER, "1");
    headers.insert(subjects::COPIES_HEADER, "3");
    headers.insert("Nats-Expected-Last-Subject-Sequence", "0");
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence-Subject",
        "liaison.deliver.police.>",
    );
    let inspector = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    inspector
        .publish_with_headers(
            subjects::copies(&police_id),
            headers,
            liaison_proto::v1::CopyPack { copies }
                .encode_to_vec()
                .into(),
        )
        .await?
        .await?;

    let police = agency(&system, "police").await?;
    let first = police.next_batch(10, Duration::from_secs(5)).await?;
    let seen: Vec<(u64, String)> = first
        .iter()
        .map(|r| (r.recipient_seq(), r.envelope_id().to_owned()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "pack-0".to_owned()),
            (2, "pack-1".to_owned()),
            (3, "pack-2".to_owned())
        ]
    );
    // The first acknowledged (the position now ends inside the pack), the
    // second handed back, the third left out: the pack is read again from
    // where the position ends, and only the second is handed out.
    first[0].ack().await?;
    first[1].nak().await?;
    let again = police.next_batch(10, Duration::from_secs(2)).await?;
    let numbers: Vec<u64> = again.iter().map(|r| r.recipient_seq()).collect();
    assert_eq!(numbers, [2], "only the copy handed back");
    // The third, then the second acknowledged: the position moves over the pack.
    first[2].ack().await?;
    again[0].ack().await?;
    nothing_waits(&system, &police, 3).await?;
    system.shutdown().await
}
