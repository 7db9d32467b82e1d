//! Two gateway replicas behind the same queue group, as `deploy/k8s` runs
//! them: a token's `jti` is bound where both see it (the `JTI` bucket), so a
//! replay is refused whichever replica it reaches, while the same token
//! reused is accepted on either; an agency's rate limit is its own, not
//! each replica's (each enforces its share); and a suspension made through
//! one replica is in force at both within a second.

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

/// A second gateway on `system`'s NATS, as another replica: the same
/// configuration (from `config`) without an HTTPS door or listener of its
/// own. Stopped by cancelling the token; its task ends with its result.
pub(crate) async fn second_gateway(
    system: &liaison_system::system::System,
    mut config: liaison_runtime::config::Config,
) -> anyhow::Result<(
    CancellationToken,
    tokio::task::JoinHandle<Result<(), liaison_gateway::GatewayError>>,
)> {
    config.https.listen = String::new();
    config.telemetry.listen = String::new();
    // Its password: it answers agencies' logins too (the auth callout).
    let credentials = system.credentials(users::GATEWAY)?;
    config.nats.url = system.url();
    config.nats.user = credentials.user;
    config.nats.password = credentials.password;
    let second = Gateway::start(config, system.connect_as(users::GATEWAY).await?).await?;
    let stop = CancellationToken::new();
    let running = tokio::spawn(second.run(stop.clone()));
    Ok((stop, running))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_jti_is_refused_by_every_gateway_replica() -> anyhow::Result<()> {
    let system = start().await?;
    let (stop, running) = second_gateway(&system, system.config.clone()).await?;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agencys_rate_is_shared_by_the_gateway_replicas() -> anyhow::Result<()> {
    const BURST: usize = 6;
    let dir = tempfile::tempdir()?;
    let registry =
        std::fs::read_to_string(liaison_tests::repo_root().join("deploy/agencies/registry.toml"))?
            .replace(
                "name = \"Southgate College\"",
                &format!("name = \"Southgate College\"\nrate_per_sec = 1\nburst = {BURST}"),
            );
    let path = dir.path().join("registry.toml");
    std::fs::write(&path, registry)?;
    let mut config = liaison_tests::config();
    config.paths.registry = path;
    let options = liaison_system::system::UpOptions {
        inspector: true,
        gateway_telemetry: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let system = liaison_system::system::System::start(config.clone(), options).await?;
    let (stop, running) = second_gateway(&system, config).await?;
    // The first gateway has counted the second.
    let Some(metrics) = system.telemetry_addr("gateway") else {
        anyhow::bail!("the gateway's metrics are not served");
    };
    liaison_tests::eventually(
        "the first gateway counting two replicas",
        std::time::Duration::from_secs(10),
        || async {
            let (_, page) = liaison_tests::http_get(metrics, "/metrics").await?;
            Ok(page
                .lines()
                .any(|l| l == "liaison_gateway_replicas 2")
                .then_some(()))
        },
    )
    .await?;

    // A flood from one agency, spread over both replicas by the queue group:
    // together they admit about its burst, not twice it.
    let school = agency(&system, "school-b").await?;
    let mut admitted = 0;
    for n in 0..4 * BURST {
        let verdict = school
            .send(&referral("school-b", &format!("shared-rate-{n:02}")))
            .await?;
        if verdict.outcome == Outcome::Accepted as i32 {
            admitted += 1;
        } else {
            assert_refused(&verdict, "rate_limited", "school-b", "over its rate");
        }
    }
    // Each replica: half the burst, plus what refills (0.5/s) while the
    // flood lasts; per replica it would be up to twice the burst.
    assert!(
        (BURST / 2..=BURST + 2).contains(&admitted),
        "{admitted} of {} admitted with a burst of {BURST}",
        4 * BURST
    );

    stop.cancel();
    running.await??;
    system.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_is_in_force_at_every_replica_within_a_second() -> anyhow::Result<()> {
    let system = start().await?;
    let (stop, running) = second_gateway(&system, system.config.clone()).await?;
    let school = agency(&system, "school-b").await?;
    let verdict = school.send(&referral("school-b", "before")).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");

    let token = crate::membership::operator_token("duty-officer", crate::membership::DUTY_KEY)?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(liaison_core::subjects::TOKEN_HEADER, token.as_str());
    let body =
        serde_json::json!({"action": "suspend", "agency": "school-b", "reason": "compromised"});
    let operator = system.connect_as(users::INSPECTOR).await?;
    let asked = std::time::Instant::now();
    let reply = operator
        .request_with_headers(
            liaison_core::subjects::ADMIN_AGENCIES,
            headers,
            body.to_string().into(),
        )
        .await?;
    let answer: serde_json::Value = serde_json::from_slice(&reply.payload)?;
    assert_eq!(answer["ok"], true, "{answer}");
    // Its own connection is closed; whatever still reaches its ingress
    // (here through the operator's connection) is refused. A second after
    // the command (the bound), every replica refuses: each of
    // these sends lands on either at random, so one that had not applied
    // the change would accept some of them.
    let stray = liaison_client::AgencyClient::new(
        liaison_tests::speaking_for(&system, "school-b").await?,
        liaison_core::AgencyId::parse("school-b")?,
        liaison_core::tokens::Signer::from_pem(&liaison_tests::key_pem("school-b")?, None)
            .map_err(anyhow::Error::msg)?,
        &system.config.gateway.audience,
    );
    tokio::time::sleep_until((asked + std::time::Duration::from_secs(1)).into()).await;
    assert_ne!(
        school.nats().connection_state(),
        async_nats::connection::State::Connected,
        "the suspended school's connection is closed"
    );
    for n in 0..SENDS {
        let verdict = stray
            .send(&referral("school-b", &format!("after-{n:02}")))
            .await?;
        assert_refused(&verdict, "agency_suspended", "compromised", "suspended");
    }

    stop.cancel();
    running.await??;
    system.shutdown().await
}
