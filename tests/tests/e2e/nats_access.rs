//! NATS is never open: each agency logs in with its own NKey, through the
//! gateway's auth callout, and is limited to its own ingress and its own
//! inbox (both through the gateway, with no JetStream rights), so no client
//! can bypass the gateway or read another agency's copies. Checked against
//! the real server's permissions.

use async_nats::jetstream;
use liaison_core::Credentials;
use liaison_core::connect::connect;
use liaison_core::subjects;
use liaison_proto::v1::verdict::Outcome;
use liaison_runtime::users;
use liaison_tests::{agency, eventually, inbox_exactly, referral, start};
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
    let police_nats = agency(&system, "police").await?.nats().clone();
    let js = jetstream::new(police_nats.clone());

    // Police may not read the council's deliveries: not through the
    // council's inbox at the gateway, nor DELIVERY itself ...
    let council = liaison_core::AgencyId::parse("council")?;
    fails_within(
        "reading another agency's inbox",
        police_nats.request(
            subjects::inbox(&council, subjects::InboxOp::Next),
            liaison_proto::v1::InboxRead {
                max: 10,
                wait_ms: 0,
            }
            .encode_to_vec()
            .into(),
        ),
    )
    .await;
    fails_within(
        "acknowledging another agency's copies",
        police_nats.request(
            subjects::inbox(&council, subjects::InboxOp::Ack),
            liaison_proto::v1::InboxAck {
                ack_ids: vec!["1-1".into()],
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        ),
    )
    .await;
    fails_within(
        "a direct get on DELIVERY",
        police_nats.request(
            format!("$JS.API.DIRECT.GET.{}", subjects::DELIVERY_STREAM),
            r#"{"seq":1,"next_by_subj":"liaison.deliver.council.>"}"#.into(),
        ),
    )
    .await;
    fails_within(
        "creating a consumer on DELIVERY",
        js.create_consumer_on_stream(
            jetstream::consumer::pull::Config {
                filter_subject: "liaison.deliver.council.>".into(),
                ..Default::default()
            },
            subjects::DELIVERY_STREAM,
        ),
    )
    .await;
    // ... nor write into EVENTS or DELIVERY around the gateway ...
    let forged = referral("police", "forged-event").encode_to_vec();
    fails_within("publishing into EVENTS", async {
        js.publish(subjects::COMMITS, forged.clone().into())
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

    // A password is refused outright, for an agency or a service: agencies
    // have none, and a wrong one reaches the callout, which wants an NKey.
    for user in ["police", users::GATEWAY] {
        let wrong = Credentials {
            user: user.into(),
            password: "guess".into(),
        };
        assert!(
            connect(&system.url(), &wrong, &Default::default(), "intruder")
                .await
                .is_err(),
            "{user} with a guessed password"
        );
    }
    // So is an NKey nobody registered.
    let (stranger, _) = liaison_system::keys::generate_nkey()?;
    let refused = liaison_client::AgencyClient::connect(
        &system.url(),
        &liaison_client::NatsAuth::NKeySeed(stranger.into()),
        liaison_core::AgencyId::parse("police")?,
        &liaison_tests::key_pem("police")?,
        &system.config.gateway.audience,
    )
    .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("did not let this NKey in")),
        "{:?}",
        refused.map(|_| ())
    );

    // The streams hold nothing the refused attempts tried to put there.
    let operator = jetstream::new(system.connect_as(users::INSPECTOR).await?);
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

/// An auditor's NATS user cannot read LEDGER on its own (no consumer, no
/// direct read): only through the consumers the audit service opens for a
/// consultation it has recorded, so every read is on the record. A request
/// naming no granted consultation is refused, and the refusal recorded.
#[tokio::test]
async fn auditors_read_the_ledger_only_through_a_recorded_consultation() -> anyhow::Result<()> {
    use liaison_audit::consult::{ConsultReply, Grant};
    use liaison_audit::verify::{Access, verify};
    use liaison_proto::v1::{Decision, Operation};

    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    assert_eq!(
        school
            .send(&referral("school-a", "ref-audited"))
            .await?
            .outcome,
        Outcome::Accepted as i32
    );
    system.wait_until_settled(Duration::from_secs(30)).await?;

    // On its own, the auditor user can see the ledger's size, not its records.
    let auditor = liaison_tests::auditor(&system, "ig-officer").await?;
    let js = jetstream::new(auditor.clone());
    let mut ledger = js.get_stream(subjects::LEDGER_STREAM).await?;
    assert!(ledger.info().await?.state.messages > 0);
    fails_within(
        "creating a consumer on LEDGER",
        ledger.create_consumer(jetstream::consumer::pull::Config::default()),
    )
    .await;
    fails_within("reading a LEDGER message directly", ledger.direct_get(1)).await;
    fails_within(
        "reading a LEDGER message by sequence",
        ledger.get_raw_message(1),
    )
    .await;

    // A grant it was never given opens nothing, and is on the record.
    let forged = ConsultReply {
        granted: true,
        record_id: String::new(),
        code: String::new(),
        reason: String::new(),
        grant: "0123456789abcdef0123456789abcdef".into(),
        last: 1,
        scoped: false,
        scope: String::new(),
    };
    let refused = Grant::new(auditor.clone(), &forged).open(1).await;
    assert!(
        matches!(&refused, Err(liaison_audit::consult::GrantError::Refused { code, .. }) if code == "unknown_grant"),
        "{:?}",
        refused.map(|_| ())
    );

    // A recorded consultation opens the ledger, its own record included.
    let (client, reply) = liaison_tests::operations::consultation(
        &system,
        "replay",
        "deploy/audit/dev-auditor-keys/ig-officer.pem",
    )
    .await?;
    assert!(reply.granted, "{reply:?}");
    let access = Access::Granted(jetstream::new(client.clone()), Grant::new(client, &reply));
    let verifier = liaison_audit::signer(&system.config)?.verifier();
    let mut read = Vec::new();
    let report = verify(access, &verifier, |_, record| read.push(record.clone())).await?;
    assert!(report.intact(), "{report:?}");
    assert!(
        read.iter().any(|r| r.record_id == reply.record_id
            && r.operation == Operation::Consultation as i32
            && r.decision == Decision::Accepted as i32),
        "the consultation's own record was not among those it read"
    );
    assert!(
        read.iter()
            .any(|r| r.operation == Operation::Collection as i32),
        "the referral's record was not read"
    );

    // The refused read is in the ledger too.
    let (_, records) = liaison_tests::ledger_all(&system).await?;
    assert_eq!(
        records
            .iter()
            .filter(|r| r.operation == Operation::Consultation as i32
                && r.decision == Decision::Refused as i32
                && r.code == "unknown_grant")
            .count(),
        1
    );
    system.shutdown().await
}

/// Logs in by hand, in the NATS protocol: CONNECT naming `nkey` with
/// `signer`'s signature of the server's nonce; what the server says to PING.
async fn raw_login(url: &str, nkey: &str, signer: &nkeys::KeyPair) -> anyhow::Result<String> {
    use base64::Engine as _;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let address = url.trim_start_matches("nats://");
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    let info = lines.next_line().await?.unwrap_or_default();
    let info: serde_json::Value = serde_json::from_str(info.trim_start_matches("INFO "))?;
    let nonce = info["nonce"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!nonce.is_empty(), "the server sent no nonce: {info}");
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(signer.sign(nonce.as_bytes()).map_err(anyhow::Error::msg)?);
    let connect = serde_json::json!({
        "verbose": false, "pedantic": false, "protocol": 1,
        "nkey": nkey, "sig": sig, "name": "hand-made",
    });
    write
        .write_all(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())
        .await?;
    let answer = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await??;
    Ok(answer.unwrap_or_default())
}

/// nats-server hands an NKey login to the callout without checking its
/// signature: the gateway checks it. Claiming the police's NKey with
/// another key's signature is refused; with the police's own, let in.
#[tokio::test]
async fn a_login_claiming_another_agencys_nkey_is_refused() -> anyhow::Result<()> {
    let system = start().await?;
    let seed = |agency: &str| -> anyhow::Result<nkeys::KeyPair> {
        let text = std::fs::read_to_string(liaison_tests::nkey_path(agency))?;
        nkeys::KeyPair::from_seed(text.trim()).map_err(anyhow::Error::msg)
    };
    let police = seed("police")?;
    let school = seed("school-a")?;
    // Let in once a gateway answers.
    let own = liaison_tests::eventually(
        "the police's own login",
        Duration::from_secs(10),
        || async {
            let answer = raw_login(&system.url(), &police.public_key(), &police).await?;
            Ok(answer.starts_with("PONG").then_some(answer))
        },
    )
    .await?;
    assert!(own.starts_with("PONG"), "{own}");
    let forged = raw_login(&system.url(), &police.public_key(), &school).await?;
    assert!(
        forged.contains("Authorization Violation"),
        "the police's NKey signed by the school: {forged}"
    );
    system.shutdown().await
}

/// The operator administers the stores but reads no message agencies
/// shared (ADR 0021), and a stream it re-publishes to itself is on the
/// ledger, named.
#[tokio::test]
async fn the_operator_administers_streams_but_reads_no_shared_message() -> anyhow::Result<()> {
    let mut system = start().await?;
    let school = agency(&system, "school-a").await?;
    let verdict = school.send(&referral("school-a", "op-1")).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    let operator = system.connect_as(users::OPERATOR).await?;
    let js = jetstream::new(operator.clone());

    // Administering: stream and consumer state, inbox backlogs via the gateway.
    let mut events = js.get_stream(subjects::EVENTS_STREAM).await?;
    assert!(events.info().await?.state.messages >= 1);
    // Routed after the verdict: its copies are in DELIVERY soon after.
    let copies = eventually("the copies in DELIVERY", Duration::from_secs(20), || {
        let js = js.clone();
        async move {
            let n = js
                .get_stream(subjects::DELIVERY_STREAM)
                .await?
                .info()
                .await?
                .state
                .messages;
            Ok((n >= 1).then_some(n))
        }
    })
    .await?;
    let mut delivery = js.get_stream(subjects::DELIVERY_STREAM).await?;
    assert!(copies >= 1, "{copies}");
    js.get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
        subjects::ROUTER_CONSUMER,
        subjects::EVENTS_STREAM,
    )
    .await?;
    let police = liaison_core::AgencyId::parse("police")?;
    let backlog = liaison_runtime::inbox::ask_backlog(&operator, &police)
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(backlog.last, 1, "{backlog:?}");

    // Reading: no message of EVENTS, DELIVERY, receipts or the cases
    // service's state, by any of JetStream's ways.
    fails_within("a direct get on DELIVERY", delivery.direct_get(1)).await;
    fails_within("a message get on EVENTS", events.get_raw_message(1)).await;
    fails_within(
        "a consumer on EVENTS",
        events.create_consumer(jetstream::consumer::pull::Config::default()),
    )
    .await;
    fails_within(
        "an ordered consumer on DELIVERY",
        delivery.create_consumer(jetstream::consumer::pull::OrderedConfig::default()),
    )
    .await;
    fails_within(
        "the router's consumer",
        liaison_tests::pull_from_router(&js),
    )
    .await;
    fails_within("a snapshot of EVENTS", async {
        operator
            .request(
                "$JS.API.STREAM.SNAPSHOT.EVENTS",
                r#"{"deliver_subject":"_INBOX_operator.snap"}"#.into(),
            )
            .await
            .map_err(anyhow::Error::from)
            .and_then(|m| {
                let text = String::from_utf8_lossy(&m.payload).to_string();
                if text.contains("error") {
                    Err(anyhow::anyhow!(text))
                } else {
                    Ok(text)
                }
            })
    })
    .await;
    fails_within("purging DELIVERY", async { delivery.purge().await }).await;
    fails_within("deleting EVENTS", js.delete_stream(subjects::EVENTS_STREAM)).await;
    fails_within("subscribing to the events' subjects", async {
        let mut sub = operator.subscribe(subjects::COMMITS).await?;
        operator.flush().await?;
        let again = school.send(&referral("school-a", "op-2")).await?;
        assert_eq!(again.outcome, Outcome::Accepted as i32);
        use futures_util::StreamExt as _;
        sub.next().await.ok_or_else(|| anyhow::anyhow!("closed"))
    })
    .await;
    let cases = liaison_core::system::Service::Cases.bucket();
    fails_within("a key of the cases service's state", async {
        js.get_key_value(cases)
            .await?
            .get("case.C1")
            .await
            .map_err(anyhow::Error::from)
    })
    .await;

    // A stream changed to re-publish its messages to the operator is on
    // the ledger, named, by the audit service.
    let mut config = events.info().await?.config.clone();
    config.republish = Some(jetstream::stream::Republish {
        source: subjects::COMMITS.to_owned(),
        destination: "_INBOX_operator.copy.commits".to_owned(),
        headers_only: false,
    });
    js.update_stream(config).await?;
    let recorded = liaison_tests::eventually(
        "the stream change on the ledger",
        Duration::from_secs(10),
        || async {
            let (_, records) = liaison_tests::ledger(&system).await?;
            Ok(records.into_iter().find(|r| {
                r.operation == liaison_proto::v1::Operation::StoreChange as i32
                    && r.code == "stream_routes_elsewhere"
            }))
        },
    )
    .await?;
    assert!(
        recorded.reason.contains("stream EVENTS")
            && recorded
                .reason
                .contains("republishes liaison.commits to _INBOX_operator.copy.commits"),
        "{recorded:?}"
    );

    // A change made while the audit service is down sends its advisory to
    // no one: the audit service finds it when it starts again.
    system.stop_audit().await;
    let mut config = delivery.info().await?.config.clone();
    config.republish = Some(jetstream::stream::Republish {
        source: subjects::DELIVERY_ALL.to_owned(),
        destination: "_INBOX_operator.copies.>".to_owned(),
        headers_only: false,
    });
    js.update_stream(config).await?;
    system.start_audit().await?;
    let found = liaison_tests::eventually(
        "the change made while the audit service was down, on the ledger",
        Duration::from_secs(10),
        || async {
            let (_, records) = liaison_tests::ledger(&system).await?;
            Ok(records.into_iter().find(|r| {
                r.record_id.starts_with("store:survey:") && r.reason.contains("stream DELIVERY")
            }))
        },
    )
    .await?;
    assert!(
        found.reason.contains("found at start")
            && found.reason.contains("_INBOX_operator.copies.>"),
        "{found:?}"
    );
    system.shutdown().await
}

/// Each auditor logs in to NATS as themselves (their own NKey, through the
/// gateway's callout), and an auditor with a scope reads only the records
/// inside it: read and filtered for them by the audit service; LEDGER
/// itself, and any action needing the whole ledger, is refused and
/// recorded (ADR 0021).
#[tokio::test]
async fn a_scoped_auditor_reads_only_the_records_of_their_agencies() -> anyhow::Result<()> {
    use futures_util::StreamExt as _;
    use liaison_audit::scoped::{Page, RecordsRequest};
    use liaison_proto::v1::{Decision, Operation};
    use liaison_tests::operations::consultation_by;
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let verdict = school.send(&referral("school-a", "scope-1")).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    let key = "deploy/audit/dev-auditor-keys/police-dpo.pem";

    // No shared auditor user any more; an NKey nobody registered is refused.
    let plan = users::plan();
    assert!(!plan.iter().any(|u| u.credentials.user == "auditor"));
    let stranger = nkeys::KeyPair::new_user();
    let dir = tempfile::tempdir()?;
    let seed = dir.path().join("stranger.nk");
    std::fs::write(&seed, stranger.seed()?)?;
    let refused = liaison_core::connect::connect_nkey(
        &system.url(),
        &seed,
        "auditor_stranger",
        &Default::default(),
    )
    .await;
    assert!(refused.is_err(), "an unregistered NKey logged in");

    // The police's DPO: a verification needs the whole ledger, refused.
    let (dpo, reply) = consultation_by(&system, "police-dpo", "verify", key).await?;
    assert!(!reply.granted, "{reply:?}");
    assert_eq!(reply.code, "out_of_scope", "{reply:?}");
    assert!(reply.reason.contains("agencies police"), "{reply:?}");
    // ... and LEDGER itself is out of reach of their NATS user.
    let js = jetstream::new(dpo.clone());
    fails_within("the DPO reading LEDGER's info", async {
        js.get_stream(subjects::LEDGER_STREAM).await
    })
    .await;

    // A replay is granted, and read for them: only records where the police
    // acted or received, though the school's collection is in the ledger.
    let (dpo, reply) = consultation_by(&system, "police-dpo", "replay", key).await?;
    assert!(reply.granted && reply.scoped, "{reply:?}");
    assert_eq!(reply.scope, "agencies police");
    let fetch = async |request: RecordsRequest| -> anyhow::Result<Vec<Page>> {
        let inbox = dpo.new_inbox();
        let mut answers = dpo.subscribe(inbox.clone()).await?;
        dpo.publish_with_reply(
            subjects::RECORDS_REQUEST,
            inbox,
            serde_json::to_vec(&request)?.into(),
        )
        .await?;
        let mut pages = Vec::new();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), answers.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("the answer ended early"))?;
            let page: Page = serde_json::from_slice(&message.payload)?;
            let more = page.more;
            pages.push(page);
            if !more {
                return Ok(pages);
            }
        }
    };
    let pages = fetch(RecordsRequest {
        grant: reply.grant.clone(),
        ..RecordsRequest::default()
    })
    .await?;
    let last = pages.last().ok_or_else(|| anyhow::anyhow!("no page"))?;
    assert!(last.intact && last.code.is_empty(), "{last:?}");
    let records: Vec<&serde_json::Value> = pages.iter().flat_map(|p| &p.records).collect();
    assert!(!records.is_empty());
    for record in &records {
        let acted = record["agency"] == "police";
        let received = record["recipients"]
            .as_array()
            .is_some_and(|r| r.iter().any(|a| a == "police"));
        assert!(acted || received, "outside the DPO's scope: {record}");
    }
    // The school's share to the police and the police's copy are theirs to
    // see; the council's copy of the same referral is not.
    let ids: Vec<&str> = records
        .iter()
        .filter_map(|r| r["recordId"].as_str())
        .collect();
    assert!(
        ids.contains(&"school-a/scope-1:collection")
            && ids.contains(&"school-a/scope-1:disclosure:police"),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&"school-a/scope-1:disclosure:council"),
        "{ids:?}"
    );
    // Its own grant only: another's is unknown, and that refusal recorded.
    let forged = fetch(RecordsRequest {
        grant: "0123456789abcdef0123456789abcdef".into(),
        ..RecordsRequest::default()
    })
    .await?;
    assert_eq!(forged[0].code, "unknown_grant", "{forged:?}");

    // The whole-ledger auditor still verifies, and the ledger holds the
    // DPO's refused verification and granted replay, by name and scope.
    let (_, whole) = liaison_tests::operations::consultation(
        &system,
        "verify",
        "deploy/audit/dev-auditor-keys/ig-officer.pem",
    )
    .await?;
    assert!(whole.granted && !whole.scoped, "{whole:?}");
    let (_, ledger) = liaison_tests::ledger(&system).await?;
    let by_dpo: Vec<_> = ledger
        .iter()
        .filter(|r| r.operation == Operation::Consultation as i32 && r.agency == "police-dpo")
        .collect();
    assert!(
        by_dpo
            .iter()
            .any(|r| r.decision == Decision::Refused as i32 && r.code == "out_of_scope"),
        "{by_dpo:?}"
    );
    assert!(
        by_dpo
            .iter()
            .any(|r| r.decision == Decision::Accepted as i32
                && r.reason.contains("replay")
                && r.reason.contains("within agencies police")),
        "{by_dpo:?}"
    );
    system.shutdown().await
}

/// Liaison's services read only each envelope's fact — the envelope without
/// its labelled fields — never the whole envelope (data minimisation, ADR
/// 0021): EVENTS' commits hold each envelope sealed beside its fact (ADR
/// 0024), a service's NATS user can open only consumers filtered to the
/// commits, and what it reads holds no labelled field in plain text.
#[tokio::test]
async fn services_read_facts_without_labelled_fields_and_never_whole_envelopes()
-> anyhow::Result<()> {
    use async_nats::jetstream::consumer;
    use futures_util::StreamExt as _;
    use liaison_proto::v1::{Commit, EnvelopeAccepted};
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let sent = referral("school-a", "min-1");
    let verdict = school.send(&sent).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");

    // EVENTS holds one commit: the envelope sealed (ADR 0022), beside its
    // fact, which holds no labelled field.
    let inspector = jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let commits = liaison_tests::commits(&inspector).await?;
    let [(_, commit)] = commits.as_slice() else {
        anyhow::bail!("EVENTS holds {} commits", commits.len());
    };
    let [entry] = commit.envelopes.as_slice() else {
        anyhow::bail!("the commit holds {} envelopes", commit.envelopes.len());
    };
    assert_eq!(entry.scoped_id, "school-a/min-1");
    let keys = system.keyring().await?;
    let (_, opened) = keys
        .open(&subjects::committed(&entry.scoped_id), &entry.event)
        .await?;
    let whole = EnvelopeAccepted::decode(opened.as_slice())?;
    let minimised = entry
        .fact
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no fact"))?;
    let body = |a: &EnvelopeAccepted| match a.envelope.as_ref().and_then(|e| e.body.clone()) {
        Some(liaison_proto::v1::envelope::Body::Referral(r)) => Ok(r),
        other => Err(anyhow::anyhow!("not a referral: {other:?}")),
    };
    let (whole_body, fact_body) = (body(&whole)?, body(&minimised)?);
    assert!(!whole_body.concern.is_empty());
    assert!(
        fact_body.concern.is_empty()
            && fact_body.health_notes.is_empty()
            && fact_body
                .subject
                .as_ref()
                .is_some_and(|p| p.full_name.is_empty()),
        "{fact_body:?}"
    );
    // What the services decide on is kept: the subject token, the routes.
    assert_eq!(
        fact_body.subject.as_ref().map(|p| p.token.as_str()),
        whole_body.subject.as_ref().map(|p| p.token.as_str())
    );
    assert_eq!(minimised.routes, whole.routes);

    // A service's user: the commits through a filtered consumer, nothing
    // else; and in what it reads, no labelled field in plain text.
    let linkage = system
        .connect_as(&liaison_core::system::Service::Linkage.user())
        .await?;
    let js = jetstream::new(linkage);
    let stream = js.get_stream(subjects::EVENTS_STREAM).await?;
    let facts = stream
        .create_consumer(consumer::pull::OrderedConfig {
            name: Some("test-facts".into()),
            filter_subject: subjects::COMMITS.into(),
            ..Default::default()
        })
        .await?;
    let first = facts
        .messages()
        .await?
        .next()
        .await
        .ok_or_else(|| anyhow::anyhow!("no commit"))??;
    assert_eq!(first.subject.as_str(), subjects::COMMITS);
    let read = Commit::decode(first.payload.as_ref())?;
    assert_eq!(read.envelopes.len(), 1);
    let subject = match &sent.body {
        Some(liaison_proto::v1::envelope::Body::Referral(r)) => {
            r.subject.clone().unwrap_or_default()
        }
        _ => anyhow::bail!("the sent envelope is not a referral"),
    };
    for (what, text) in [
        ("the concern", whole_body.concern.as_str()),
        ("the name", subject.full_name.as_str()),
        ("the address", subject.address.as_str()),
    ] {
        assert!(!text.is_empty(), "{what} is empty in the test referral");
        assert!(
            !first
                .payload
                .windows(text.len())
                .any(|w| w == text.as_bytes()),
            "{what} is readable in the commit a service reads"
        );
    }
    fails_within("a direct get of an event", stream.direct_get(1)).await;
    fails_within("a message get of an event", stream.get_raw_message(1)).await;
    fails_within(
        "an unfiltered consumer",
        stream.create_consumer(consumer::pull::OrderedConfig {
            name: Some("test-all".into()),
            ..Default::default()
        }),
    )
    .await;
    fails_within(
        "a consumer filtered otherwise",
        stream.create_consumer(consumer::pull::OrderedConfig {
            name: Some("test-other".into()),
            filter_subject: ">".into(),
            ..Default::default()
        }),
    )
    .await;
    fails_within(
        "the router's consumer",
        liaison_tests::pull_from_router(&js),
    )
    .await;
    system.shutdown().await
}
