//! NATS is never open: each agency has its own user, limited to its own
//! ingress and its own deliveries, so no client can bypass the gateway or read
//! another agency's copies. Checked against the real server's permissions.

use async_nats::jetstream;
use liaison_kit::connect::connect;
use liaison_kit::subjects;
use liaison_kit::users::{self, Credentials};
use liaison_proto::v1::verdict::Outcome;
use liaison_tests::{agency, inbox_exactly, referral, start};
use prost::Message;
use std::time::Duration;

async fn fails_within<T, E>(what: &str, fut: impl std::future::Future<Output = Result<T, E>>) {
    let outcome = tokio::time::timeout(Duration::from_secs(1), fut).await;
    assert!(
        !matches!(outcome, Ok(Ok(_))),
        "{what} should have been refused"
    );
}

#[tokio::test]
async fn agencies_reach_only_their_own_subjects() -> anyhow::Result<()> {
    let system = start().await?;
    let police_nats = system.connect_as("police").await?;
    let js = jetstream::new(police_nats.clone());

    // Police may not read the council's deliveries ...
    fails_within(
        "reading another agency's consumer",
        js.get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
            "deliver-council",
            subjects::DELIVERY_STREAM,
        ),
    )
    .await;
    // ... nor write into EVENTS or DELIVERY around the gateway ...
    let forged = referral("police", "forged-event").encode_to_vec();
    fails_within("publishing into EVENTS", async {
        js.publish(subjects::event("referral"), forged.clone().into())
            .await?
            .await
    })
    .await;
    fails_within("publishing into DELIVERY", async {
        js.publish("liaison.deliver.council.referral", forged.clone().into())
            .await?
            .await
    })
    .await;
    // ... nor send as another agency.
    fails_within(
        "sending on another agency's ingress",
        police_nats.request("liaison.ingress.school-a.envelope", forged.clone().into()),
    )
    .await;

    // A wrong password is refused outright.
    let wrong = Credentials {
        user: "police".into(),
        password: "guess".into(),
    };
    assert!(
        connect(&system.url(), &wrong, &Default::default(), "intruder")
            .await
            .is_err()
    );

    // The streams hold nothing the refused attempts tried to put there.
    let operator = jetstream::new(system.connect_as(users::OPERATOR).await?);
    for stream in [subjects::EVENTS_STREAM, subjects::DELIVERY_STREAM] {
        let info = operator.get_stream(stream).await?.get_info().await?;
        assert_eq!(
            info.state.messages, 0,
            "{stream} was written around the gateway"
        );
    }

    // The proper path still works for the same users.
    let school = agency(&system, "school-a").await?;
    assert_eq!(
        school.send(&referral("school-a", "ref-ok")).await?.outcome,
        Outcome::Accepted as i32
    );
    inbox_exactly(&agency(&system, "police").await?, 1).await?;
    inbox_exactly(&agency(&system, "council").await?, 1).await?;
    system.shutdown().await
}
