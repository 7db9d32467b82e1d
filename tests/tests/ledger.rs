//! The ledger writer chains each decision record once, even when NATS's own
//! de-duplication does not hold (a record published twice under different
//! message ids, as happens when a retry straddles a nats-server crash).

use async_nats::HeaderMap;
use liaison_kit::users;
use liaison_proto::v1::{AuditRecord, Operation};
use liaison_tests::{ledger, start};
use prost::Message;

#[tokio::test]
async fn a_record_published_twice_is_chained_once() -> anyhow::Result<()> {
    let system = start().await?;
    let js = async_nats::jetstream::new(system.connect_as(users::OPERATOR).await?);
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
