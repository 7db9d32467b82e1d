//! The ledger writer chains each decision record once, even when NATS's own
//! de-duplication does not hold (a record published twice under different
//! message ids, as happens when a retry straddles a nats-server crash).

use async_nats::HeaderMap;
use liaison_proto::v1::{AuditRecord, Operation};
use liaison_runtime::users;
use liaison_tests::{ledger, start};
use prost::Message;

#[tokio::test]
async fn a_record_published_twice_is_chained_once() -> anyhow::Result<()> {
    let system = start().await?;
    let js = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let record = |id: &str| AuditRecord {
        record_id: id.into(),
        operation: Operation::Collection as i32,
        agency: "school-a".into(),
        ..Default::default()
    };
    for (msg_id, record_id) in [("m1", "r-1"), ("m2", "r-1"), ("m3", "r-2"), ("m4", "r-1")] {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        js.publish_with_headers(
            "liaison.decisions.gateway",
            headers,
            record(record_id).encode_to_vec().into(),
        )
        .await?
        .await?;
    }
    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let ids: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, vec!["r-1", "r-2"]);
    system.shutdown().await
}

/// Several thousand records: the writer's batches and the readers' batched
/// direct gets (1,000 per request, several in flight) cross many boundaries,
/// and every record is read back once, in order.
#[tokio::test]
async fn a_ledger_of_thousands_is_read_back_whole_and_in_order() -> anyhow::Result<()> {
    let system = start().await?;
    let js = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let n = 3_456;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut acks = Vec::new();
        for i in chunk {
            let record = AuditRecord {
                record_id: format!("bulk-{i}"),
                operation: Operation::Disclosure as i32,
                agency: "school-a".into(),
                ..Default::default()
            };
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("bulk-{i}").as_str());
            acks.push(
                js.publish_with_headers(
                    "liaison.decisions.gateway",
                    headers,
                    record.encode_to_vec().into(),
                )
                .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
    }
    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let ids: Vec<String> = records.iter().map(|r| r.record_id.clone()).collect();
    let expected: Vec<String> = (0..n).map(|i| format!("bulk-{i}")).collect();
    assert_eq!(ids, expected);
    system.shutdown().await
}

/// Two writers at once (a misconfiguration the ledger must survive): they
/// share the decisions and race for LEDGER. Each append states where LEDGER
/// must end, so the loser re-reads the ledger and appends again, and a batch
/// staged behind one that lost is never committed: the chain stays whole,
/// every record in it once.
#[tokio::test]
async fn two_writers_at_once_keep_one_chain_with_every_record_once() -> anyhow::Result<()> {
    let system = start().await?;
    let js = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let second = async_nats::jetstream::new(system.connect_as(users::AUDIT).await?);
    let writer = liaison_audit::writer::Writer::start(
        second.clone(),
        liaison_audit::signer(&system.config)?,
        system.config.audit.origin.clone(),
        system.config.audit.checkpoint_every,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let consumer = second
        .get_consumer_from_stream("audit-ledger", "DECISIONS")
        .await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn({
        let stop = stop.clone();
        async move { writer.serve(consumer, stop).await }
    });
    let n = 3_000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let mut acks = Vec::new();
        for i in chunk {
            let record = AuditRecord {
                record_id: format!("race-{i}"),
                operation: Operation::Disclosure as i32,
                agency: "school-a".into(),
                ..Default::default()
            };
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("race-{i}").as_str());
            acks.push(
                js.publish_with_headers(
                    "liaison.decisions.gateway",
                    headers,
                    record.encode_to_vec().into(),
                )
                .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
    }
    let (report, records) = ledger(&system).await?;
    stop.cancel();
    serving.await?.map_err(anyhow::Error::msg)?;
    assert!(report.intact(), "{report:?}");
    let mut ids: Vec<String> = records.iter().map(|r| r.record_id.clone()).collect();
    ids.sort();
    let mut expected: Vec<String> = (0..n).map(|i| format!("race-{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
    system.shutdown().await
}

/// The system with its audit service stopped, and what its ledger writer
/// would know on starting: a test sends blocks as that writer would.
async fn writer_stopped() -> anyhow::Result<(
    liaison_system::system::System,
    async_nats::jetstream::Context,
    liaison_audit::checkpoint::NoteVerifier,
    liaison_audit::state::Ledger,
)> {
    let mut system = start().await?;
    system.stop_audit().await;
    let js = async_nats::jetstream::new(system.connect_as(users::AUDIT).await?);
    let verifier = liaison_audit::signer(&system.config)?.verifier();
    let ledger = liaison_audit::state::recover(&js, &verifier)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok((system, js, verifier, ledger))
}

/// The pipelined writer's guarantee, at the server: a block sent behind one
/// that was refused is refused too, even when another writer appended
/// exactly one message meanwhile, so that the stream sequence it expects
/// matches — it also names the message id of the block it was chained on,
/// which was never stored.
#[tokio::test]
async fn a_block_sent_behind_a_refused_one_is_refused_whatever_the_sequence() -> anyhow::Result<()>
{
    use liaison_audit::batch::{self, Outcome};
    use liaison_audit::intake::Record;
    let (system, js, verifier, ledger) = writer_stopped().await?;
    let record = |n: u64| Record {
        bytes: AuditRecord {
            record_id: format!("pipe-{n}"),
            operation: Operation::Disclosure as i32,
            agency: "school-a".into(),
            ..Default::default()
        }
        .encode_to_vec()
        .into(),
        source_seq: 1_000_000 + n,
        part: 0,
        id: format!("pipe-{n}"),
    };
    // Another writer appends a block at the end first.
    let theirs = record(1);
    let mut other = batch::send(&js, &[&theirs], &ledger.tail, &ledger.end).await;
    assert!(matches!(other.outcome().await, Outcome::Stored));
    // This writer's block, sent on the same end, is refused; the one sent
    // behind it expects the very sequence the other writer's block got.
    let (a, b) = (record(2), record(3));
    let mut first = batch::send(&js, &[&a], &ledger.tail, &ledger.end).await;
    let mut behind = batch::send(&js, &[&b], &first.staged.tail, &first.staged.end).await;
    assert_eq!(first.staged.end.seq, other.staged.end.seq);
    let (first, behind) = (first.outcome().await, behind.outcome().await);
    assert!(matches!(first, Outcome::Moved), "{first:?}");
    assert!(matches!(behind, Outcome::Moved), "{behind:?}");
    let report = liaison_audit::verify::verify(&js, &verifier, |_, _| {}).await?;
    assert!(
        report.intact() && report.verified == ledger.tail.next_index + 1,
        "{report:?}"
    );
    system.shutdown().await
}

/// Large records: a batch larger than a block's 512 KiB is sent as several
/// blocks at once, each its own message chained behind the one before (the
/// expected last message id within a batch), and more than 64 MiB of blocks
/// are read back whole. (Reading 5,000 blocks a pull overran the connection
/// in the benchmark's 350 MB ledger, where nats-server closed it as a slow
/// consumer; this test's 72 MB did not, with or without the reader's byte
/// bound.)
#[tokio::test]
async fn a_batch_of_large_records_is_split_into_blocks_and_read_back_whole() -> anyhow::Result<()> {
    use liaison_audit::batch::{self, Outcome};
    use liaison_audit::intake::Record;
    let (system, js, verifier, ledger) = writer_stopped().await?;
    let records: Vec<Record> = (0..160u64)
        .map(|n| Record {
            bytes: AuditRecord {
                record_id: format!("large-{n}"),
                operation: Operation::Disclosure as i32,
                agency: "school-a".into(),
                purpose: "x".repeat(450 * 1024),
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
            source_seq: 2_000_000 + n,
            part: 0,
            id: format!("large-{n}"),
        })
        .collect();
    let batch: Vec<&Record> = records.iter().collect();
    let mut flight = batch::send(&js, &batch, &ledger.tail, &ledger.end).await;
    let outcome = flight.outcome().await;
    assert!(matches!(outcome, Outcome::Stored), "{outcome:?}");
    assert_eq!(flight.staged.blocks, 160);
    let mut read = 0;
    let report = liaison_audit::verify::verify(&js, &verifier, |entry, _| {
        read += u64::from(entry.index >= ledger.tail.next_index)
    })
    .await?;
    assert!(report.intact(), "{report:?}");
    assert_eq!(read, 160);
    system.shutdown().await
}
