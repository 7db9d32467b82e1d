//! Agency sites' leaf nodes, configured by `liaison nats-config --leaf`'s
//! renderer and connected to a 3-node cluster as their agency's own NATS
//! user: a school's system sends through the gateway from its site, the
//! police's system reads and acknowledges its copy from its own (JetStream
//! requests cross into the cluster's domain), and neither reaches anything
//! else — not another agency's ingress or consumer, not a subject outside
//! its agency's permissions. As in production, the cluster serves its
//! clients, routes and leaf nodes over TLS only (certificates made for the
//! test): the services connect with TLS, the sites' leaf nodes check the
//! cluster against the partnership's CA.

use anyhow::{Result, bail, ensure};
use futures_util::StreamExt as _;
use liaison_client::AgencyClient;
use liaison_core::Credentials;
use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::verdict::Outcome;
use liaison_runtime::nats_conf::ServerTls;
use liaison_runtime::nats_leaf::{self, LeafSite};
use liaison_runtime::users::{self, password};
use liaison_system::devtls::{DevCa, SERVER_NAMES, write};
use liaison_system::system::{System, UpOptions};
use liaison_tests::cluster::Cluster;
use liaison_tests::fault::inbox_pending;
use liaison_tests::nats_process::{NatsProcess, free_ports};
use liaison_tests::{config, each_delivered_once, eventually, key_pem, referral};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// A request through the leaf: the reply, or why none came.
async fn ask(client: &async_nats::Client, subject: String) -> Result<String, String> {
    match tokio::time::timeout(Duration::from_secs(2), client.request(subject, "".into())).await {
        Ok(Ok(reply)) => Ok(String::from_utf8_lossy(&reply.payload).into_owned()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no reply within 2 s".into()),
    }
}

/// An agency's site: its leaf node and how its systems log in to it.
struct Site {
    _leaf: NatsProcess,
    _work: tempfile::TempDir,
    url: String,
    login: Credentials,
}

/// Starts `agency`'s leaf node (the renderer of `liaison nats-config --leaf`)
/// connected to every node of `cluster` with the agency's own credentials,
/// and waits until the cluster sees it.
async fn site(cluster: &Cluster, agency: &str, hub_ca: &Path) -> Result<Site> {
    let port = free_ports(1)?[0];
    let hubs = (0..3)
        .map(|i| cluster.leaf_addr(i))
        .collect::<Result<Vec<_>>>()?;
    let work = tempfile::tempdir()?;
    let conf = work.path().join("leaf.conf");
    std::fs::write(
        &conf,
        nats_leaf::leaf(&LeafSite {
            agency: AgencyId::parse(agency)?,
            host: "127.0.0.1".into(),
            port,
            hubs: hubs.clone(),
            hub_ca: Some(hub_ca.to_owned()),
        }),
    )?;
    let local = password();
    let env = BTreeMap::from([
        (
            nats_leaf::LOCAL_PASSWORD_ENV.to_owned(),
            local.expose().to_owned(),
        ),
        (
            nats_leaf::HUB_URLS_ENV.to_owned(),
            nats_leaf::hub_urls(&hubs),
        ),
        (
            nats_leaf::HUB_NKEY_ENV.to_owned(),
            std::fs::read_to_string(liaison_tests::nkey_path(agency))?
                .trim()
                .to_owned(),
        ),
    ]);
    let before = leaf_count(cluster).await?;
    let leaf = NatsProcess::start(&conf, &env, &work.path().join("leaf.log"), port)?;
    eventually(
        "the leaf node to connect",
        Duration::from_secs(20),
        || async { Ok((leaf_count(cluster).await? > before).then_some(())) },
    )
    .await?;
    Ok(Site {
        _leaf: leaf,
        _work: work,
        url: format!("nats://127.0.0.1:{port}"),
        login: Credentials {
            user: agency.to_owned(),
            password: local,
        },
    })
}

/// Leaf nodes connected to the cluster, over all its nodes.
async fn leaf_count(cluster: &Cluster) -> Result<u64> {
    let mut leafs = 0;
    for i in 0..cluster.nodes().len() {
        leafs += cluster.monitor(i, "/leafz").await?["leafnodes"]
            .as_u64()
            .unwrap_or_default();
    }
    Ok(leafs)
}

/// A system of `site` as the agency's client.
async fn client_at(site: &Site, system: &System) -> Result<AgencyClient> {
    let agency = AgencyId::parse(&site.login.user)?;
    Ok(AgencyClient::connect(
        &site.url,
        &liaison_client::NatsAuth::UserPassword(site.login.clone()),
        agency,
        &key_pem(&site.login.user)?,
        &system.config.gateway.audience,
    )
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_behind_leaf_nodes_reach_only_what_their_agency_may() -> Result<()> {
    let pki = tempfile::tempdir()?;
    let ca = DevCa::new("Liaison test partnership CA")?;
    let node = ca.node(&SERVER_NAMES)?;
    let at = |name: &str| pki.path().join(name);
    write(&at("ca.pem"), &ca.cert_pem(), 0o644)?;
    write(&at("node.pem"), &node.cert_pem, 0o644)?;
    write(&at("node-key.pem"), &node.key_pem, 0o600)?;
    let tls = ServerTls {
        cert: at("node.pem"),
        key: at("node-key.pem"),
        ca: Some(at("ca.pem")),
        verify: false,
    };
    let mut config = config();
    config.streams.replicas = 3;
    config.nats.tls_required = true;
    config.nats.tls_ca = at("ca.pem");
    let mut plan = users::plan();
    plan.push(users::inspector());
    let cluster = Cluster::start_with_tls(3, &plan, Some(tls)).await?;
    for i in 0..3 {
        let varz = cluster.monitor(i, "/varz").await?;
        ensure!(
            varz["tls_required"] == true && varz["leaf"]["tls_required"] == true,
            "node {i} accepts clients or leaf nodes without TLS: {varz}"
        );
    }
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
    let school = site(&cluster, "school-a", &at("ca.pem")).await?;
    let police = site(&cluster, "police", &at("ca.pem")).await?;

    // The school's system sends through its leaf node and is answered; the
    // police's system reads and acknowledges its copy through its own.
    let envelope = referral("school-a", "leaf-0001");
    let verdict = client_at(&school, &system)
        .await?
        .send_until_answered(&envelope, Duration::from_secs(20))
        .await?;
    ensure!(verdict.outcome == Outcome::Accepted as i32, "{verdict:?}");
    each_delivered_once(
        &client_at(&police, &system).await?,
        std::slice::from_ref(&envelope.id),
    )
    .await?;
    let pending = inbox_pending(&system, &AgencyId::parse("police")?).await?;
    ensure!(
        pending == 0,
        "{pending} police deliveries left unacknowledged"
    );

    // At the police's site: its own inbox answers (through the gateway);
    // the school's does not, nor does the school's ingress.
    let raw = async_nats::ConnectOptions::with_user_and_password(
        police.login.user.clone(),
        police.login.password.expose().to_owned(),
    )
    .custom_inbox_prefix(subjects::inbox_prefix("police"))
    .connect(&police.url)
    .await?;
    let inbox_of = |agency: &str| -> Result<String> {
        Ok(subjects::inbox(
            &AgencyId::parse(agency)?,
            subjects::InboxOp::Next,
        ))
    };
    // An empty request is a read of one copy without waiting: an empty answer.
    let own = ask(&raw, inbox_of("police")?).await;
    ensure!(own == Ok(String::new()), "its own inbox: {own:?}");
    let other = ask(&raw, inbox_of("school-a")?).await;
    ensure!(other.is_err(), "the school's inbox answered: {other:?}");
    let ingress = ask(&raw, subjects::ingress(&AgencyId::parse("school-a")?)).await;
    ensure!(
        ingress.is_err(),
        "the school's ingress answered: {ingress:?}"
    );

    // Nothing outside the agency's permissions comes down to the site.
    let marker = format!("{}.probe", subjects::inbox_prefix("police"));
    let mut replies = raw.subscribe(marker.clone()).await?;
    let mut elsewhere = raw.subscribe("liaison.probe.>").await?;
    raw.flush().await?;
    let operator = system.connect_as(users::INSPECTOR).await?;
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
