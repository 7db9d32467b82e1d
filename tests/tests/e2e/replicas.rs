//! Two gateway replicas behind the same queue group, as `deploy/k8s` runs
//! them: a token's `jti` is bound where both see it (the `JTI` bucket), so a
//! replay is refused whichever replica it reaches, while the same token
//! reused is accepted on either.

use liaison_gateway::Gateway;
use liaison_proto::v1::verdict::Outcome;
use liaison_runtime::users;
use liaison_tests::attacks::valid_claims;
use liaison_tests::{agency, assert_refused, referral, sign, start};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

/// Sends to the gateways this many times: with two replicas behind one
/// queue group, the chance that all land on the one that saw the first
/// token is 2^-(SENDS-1).
const SENDS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_jti_is_refused_by_every_gateway_replica() -> anyhow::Result<()> {
    let system = start().await?;
    // A second gateway: same configuration, no HTTPS door or listener of its own.
    let mut config = system.config.clone();
    config.https.listen = String::new();
    config.telemetry.listen = String::new();
    let second = Gateway::start(config, system.connect_as(users::GATEWAY).await?).await?;
    let stop = CancellationToken::new();
    let running = tokio::spawn(second.run(stop.clone()));
    let school = agency(&system, "school-a").await?;

    let first_claims = valid_claims();
    let first = sign("school-a", &first_claims)?;
    let send = |id: String, token: String| {
        let school = &school;
        async move {
            school
                .send_raw(
                    referral("school-a", &id).encode_to_vec().into(),
                    Some(&token),
                )
                .await
        }
    };
    // The first token once: one replica sees it, the other does not.
    let verdict = send("replica-first".into(), first.clone()).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    // Another token with its jti, many times: refused by both, including the
    // replica that never saw the first (without the shared binding it would
    // accept it).
    let mut replay_claims = first_claims.clone();
    replay_claims["iat"] = serde_json::json!(first_claims["iat"].as_u64().unwrap_or(0) + 1);
    let replay = sign("school-a", &replay_claims)?;
    for n in 0..SENDS {
        let verdict = send(format!("replica-replay-{n:02}"), replay.clone()).await?;
        assert_refused(&verdict, "token_replayed", "jti", "a replayed jti");
    }
    // The first token again, many times: accepted by whichever replica
    // answers, including the one that sees it for the first time now.
    for n in 0..SENDS {
        let verdict = send(format!("replica-same-{n:02}"), first.clone()).await?;
        assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    }

    stop.cancel();
    running.await??;
    system.shutdown().await
}
