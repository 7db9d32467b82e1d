//! An agency site's leaf node, configured by `liaison nats-config --leaf`'s
//! renderer and connected to a 3-node cluster as the agency's own NATS user:
//! the site's systems send through the gateway and read their own
//! consumer, and reach nothing else — not another agency's ingress or
//! consumer, not a subject outside the agency's permissions.

use anyhow::{Result, bail, ensure};
use futures_util::StreamExt as _;
use liaison::system::{System, UpOptions};
use liaison_client::AgencyClient;
use liaison_kit::nats_conf::{self, LeafSite};
use liaison_kit::registry::Registry;
use liaison_kit::users::{self, Credentials, password};
use liaison_kit::{AgencyId, subjects};
use liaison_proto::v1::verdict::Outcome;
use liaison_tests::cluster::Cluster;
use liaison_tests::nats_process::{NatsProcess, free_ports};
use liaison_tests::{agency, config, each_delivered_once, eventually, key_pem, referral};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A request through the leaf: the reply, or why none came.
async fn ask(client: &async_nats::Client, subject: String) -> Result<String, String> {
    match tokio::time::timeout(Duration::from_secs(2), client.request(subject, "".into())).await {
        Ok(Ok(reply)) => Ok(String::from_utf8_lossy(&reply.payload).into_owned()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no reply within 2 s".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_behind_a_leaf_node_reaches_only_what_its_agency_may() -> Result<()> {
    let mut config = config();
    config.streams.replicas = 3;
    let plan = users::plan(&Registry::load(&config.paths.registry)?.ids());
    let cluster = Cluster::start(3, &plan).await?;
    let system = System::start_on(config, &cluster.urls(), &plan, UpOptions::default()).await?;

    let school = AgencyId::parse("school-a")?;
    let port = free_ports(1)?[0];
    let hubs = (0..3)
        .map(|i| cluster.leaf_addr(i))
        .collect::<Result<Vec<_>>>()?;
    let work = tempfile::tempdir()?;
    let conf = work.path().join("leaf.conf");
    std::fs::write(
        &conf,
        nats_conf::leaf(&LeafSite {
            agency: school.clone(),
            host: "127.0.0.1".into(),
            port,
            hubs: hubs.clone(),
        }),
    )?;
    let local = password();
    let env = BTreeMap::from([
        (nats_conf::LOCAL_PASSWORD_ENV.to_owned(), local.clone()),
        (
            nats_conf::HUB_URLS_ENV.to_owned(),
            nats_conf::hub_urls(&system.credentials("school-a")?, &hubs),
        ),
    ]);
    let _leaf = NatsProcess::start(&conf, &env, &work.path().join("leaf.log"), port)?;
    eventually(
        "the leaf node to connect",
        Duration::from_secs(20),
        || async {
            let mut leafs = 0;
            for i in 0..3 {
                leafs += cluster.monitor(i, "/leafz").await?["leafnodes"]
                    .as_u64()
                    .unwrap_or_default();
            }
            Ok((leafs > 0).then_some(()))
        },
    )
    .await?;
    let leaf_url = format!("nats://127.0.0.1:{port}");
    let site = Credentials {
        user: school.to_string(),
        password: local,
    };

    // The site's system sends through the gateway and is answered.
    let sender = AgencyClient::connect(
        &leaf_url,
        &site,
        school.clone(),
        &key_pem("school-a")?,
        &system.config.gateway.audience,
    )
    .await?;
    let envelope = referral("school-a", "leaf-0001");
    let verdict = sender
        .send_until_answered(&envelope, Duration::from_secs(20))
        .await?;
    ensure!(verdict.outcome == Outcome::Accepted as i32, "{verdict:?}");
    let police = agency(&system, "police").await?;
    each_delivered_once(&police, &[envelope.id.clone()]).await?;

    // Its own consumer answers through the leaf; another agency's does not,
    // nor does another agency's ingress.
    let raw = async_nats::ConnectOptions::with_user_and_password(site.user.clone(), site.password)
        .custom_inbox_prefix(subjects::inbox_prefix(school.as_str()))
        .connect(&leaf_url)
        .await?;
    let info = |consumer: &str| {
        format!(
            "$JS.API.CONSUMER.INFO.{}.{consumer}",
            subjects::DELIVERY_STREAM
        )
    };
    let own = ask(&raw, info("deliver-school-a")).await;
    ensure!(
        own.as_ref().is_ok_and(|r| r.contains("deliver-school-a")),
        "its own consumer: {own:?}"
    );
    let other = ask(&raw, info("deliver-police")).await;
    ensure!(
        other.is_err(),
        "police's consumer answered the site: {other:?}"
    );
    let police_id = AgencyId::parse("police")?;
    let ingress = ask(&raw, subjects::ingress(&police_id)).await;
    ensure!(
        ingress.is_err(),
        "police's ingress answered the site: {ingress:?}"
    );

    // Nothing outside the agency's permissions comes down to the site.
    let mut replies = raw
        .subscribe(format!("{}.probe", subjects::inbox_prefix("school-a")))
        .await?;
    let mut elsewhere = raw.subscribe("liaison.probe.>").await?;
    raw.flush().await?;
    let operator = system.connect_as(users::OPERATOR).await?;
    let marker = format!("{}.probe", subjects::inbox_prefix("school-a"));
    // Polled: the subscriptions' interest takes a moment to reach the cluster.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        operator.publish("liaison.probe.other", "no".into()).await?;
        operator.publish(marker.clone(), "yes".into()).await?;
        operator.flush().await?;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), replies.next()).await
        {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "a subject the agency may read never reached the site"
        );
    }
    if let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(300), elsewhere.next()).await
    {
        bail!(
            "the site received {:?}, outside its agency's permissions",
            message.subject
        );
    }
    system.shutdown().await
}
