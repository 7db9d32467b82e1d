//! What an operator's tools see of a running system: the five services
//! registered with the NATS service API (`$SRV.PING`, `$SRV.INFO`,
//! `$SRV.STATS`, as `nats micro ls` asks), each with its name, version and
//! endpoints, its `status` endpoint answering; every service's `/metrics`,
//! with the new families and bounded labels only; and the Grafana dashboard
//! using only metric names the services export.

use anyhow::{Result, bail};
use futures_util::StreamExt as _;
use liaison_runtime::discovery::{Member, Status, VERSION};
use liaison_runtime::users;
use liaison_system::console::scrape::exported_names;
use liaison_tests::observed::{SERVICES, start_observed, traffic};
use liaison_tests::{eventually, http_get, metric};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Every answer to one request on `subject`, collected until `expected`
/// distinct services answered (asked again every round, until a deadline).
async fn ask_all(
    client: &async_nats::Client,
    subject: &str,
    expected: usize,
) -> Result<BTreeMap<String, Value>> {
    eventually(subject, Duration::from_secs(20), || async {
        let inbox = client.new_inbox();
        let mut answers = client.subscribe(inbox.clone()).await?;
        client
            .publish_with_reply(subject.to_owned(), inbox, "".into())
            .await?;
        client.flush().await?;
        let mut found = BTreeMap::new();
        while found.len() < expected {
            match tokio::time::timeout(Duration::from_secs(1), answers.next()).await {
                Ok(Some(m)) => {
                    let v: Value = serde_json::from_slice(&m.payload)?;
                    found.insert(v["name"].as_str().unwrap_or_default().to_owned(), v);
                }
                _ => break,
            }
        }
        Ok((found.len() == expected).then_some(found))
    })
    .await
}

#[tokio::test]
async fn every_service_is_discoverable_and_observable() -> Result<()> {
    let system = start_observed().await?;
    let operator = system.connect_as(users::INSPECTOR).await?;
    let names: BTreeSet<String> = Member::ALL
        .iter()
        .map(|m| m.service_name().to_owned())
        .collect();

    let pings = ask_all(&operator, "$SRV.PING", names.len()).await?;
    assert_eq!(pings.keys().cloned().collect::<BTreeSet<_>>(), names);
    for (name, pong) in &pings {
        assert_eq!(pong["version"], VERSION, "{name}: {pong}");
        assert_eq!(pong["type"], "io.nats.micro.v1.ping_response", "{pong}");
    }
    let infos = ask_all(&operator, "$SRV.INFO", names.len()).await?;
    let endpoints = |name: &str| -> Vec<(String, String)> {
        infos[name]["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or_default().to_owned(),
                    e["subject"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    for member in Member::ALL {
        let name = member.service_name();
        assert!(
            !infos[name]["description"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{name}"
        );
        assert!(
            endpoints(name)
                .contains(&("status".into(), format!("liaison.status.{}", member.name()))),
            "{name}: {:?}",
            endpoints(name)
        );
    }
    assert!(endpoints("liaison-cases").contains(&("query".into(), "liaison.cases.query".into())));
    assert!(
        endpoints("liaison-audit")
            .contains(&("checkpoint".into(), "liaison.audit.checkpoint".into()))
    );

    // A status endpoint answers, and its service's STATS count the request.
    let answer = operator
        .request(Member::Linkage.status_subject(), "".into())
        .await?;
    let status: Status = serde_json::from_slice(&answer.payload)?;
    assert_eq!(
        status,
        Status {
            service: "liaison-linkage".into(),
            version: VERSION.into(),
            ready: true
        }
    );
    let stats = operator
        .request("$SRV.STATS.liaison-linkage", "".into())
        .await?;
    let stats: Value = serde_json::from_slice(&stats.payload)?;
    let served = stats["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "status")
        .and_then(|e| e["num_requests"].as_u64());
    assert_eq!(served, Some(1), "{stats}");

    // Every service's /metrics, after real traffic.
    traffic(&system, "ref-ops", 2).await?;
    let mut exported = BTreeSet::new();
    let mut pages = BTreeMap::new();
    for service in SERVICES {
        let Some(addr) = system.telemetry_addr(service) else {
            bail!("{service} has no operations listener");
        };
        assert_eq!(
            http_get(addr, "/readyz").await?,
            (200, "ready\n".to_owned()),
            "{service}"
        );
        let (status, page) = http_get(addr, "/metrics").await?;
        assert_eq!(status, 200, "{service}");
        assert!(
            page.contains(&format!(
                "liaison_service_info{{service=\"{service}\",version=\"{VERSION}\"}} 1"
            )),
            "{service}: {page}"
        );
        exported.extend(exported_names(&page));
        pages.insert(service, page);
    }
    let gateway = &pages["gateway"];
    assert_eq!(
        metric(
            gateway,
            "liaison_gateway_flows_total{sender=\"school-a\",recipient=\"police\"}"
        ),
        Some(2.0),
        "{gateway}"
    );
    assert_eq!(
        metric(gateway, "liaison_gateway_end_to_end_seconds_count"),
        Some(4.0),
        "{gateway}"
    );
    let Some(cases_addr) = system.telemetry_addr("cases") else {
        bail!("the cases service has no operations listener");
    };
    let cases = eventually(
        "the cases service's folds",
        Duration::from_secs(10),
        || async {
            let (_, page) = http_get(cases_addr, "/metrics").await?;
            Ok((metric(
                &page,
                "liaison_cases_events_folded_total{kind=\"referral\"}",
            ) == Some(2.0))
            .then_some(page))
        },
    )
    .await?;
    assert!(
        cases.contains("liaison_cases_cases{status=\"open\"} 0"),
        "{cases}"
    );
    assert!(
        metric(
            &pages["audit"],
            "liaison_ledger_last_checkpoint_timestamp_seconds"
        )
        .is_some_and(|t| t > 0.0),
        "{}",
        pages["audit"]
    );
    for (service, page) in &pages {
        for personal in ["ref-ops", "Alex Example", "tok-test-", "Demo Street"] {
            assert!(
                !page.contains(personal),
                "{personal} in {service}'s metrics"
            );
        }
    }

    // The dashboard uses only names some service exports.
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(
        liaison_tests::repo_root().join("deploy/grafana/liaison.json"),
    )?)?;
    let mut expressions = Vec::new();
    collect_exprs(&dashboard, &mut expressions);
    assert!(expressions.len() >= 20, "{expressions:?}");
    let referenced: BTreeSet<String> = expressions.iter().flat_map(|e| metric_names(e)).collect();
    let missing: Vec<&String> = referenced.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard uses {missing:?}, which no service exports"
    );
    for needed in [
        "liaison_gateway_envelopes_refused_total",
        "liaison_gateway_deliveries_total",
        "liaison_gateway_end_to_end_seconds_bucket",
        "liaison_delivery_pending",
        "liaison_ledger_height",
        "liaison_ledger_last_checkpoint_timestamp_seconds",
        "liaison_service_info",
    ] {
        assert!(
            referenced.contains(needed),
            "the dashboard has no panel on {needed}"
        );
    }
    system.shutdown().await
}

/// Every `expr` string in a Grafana dashboard.
fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The identifiers matching `liaison_[a-z_]+` in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("liaison_") {
        let tail = &rest[at + "liaison_".len()..];
        let len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        if len > 0 {
            names.push(format!("liaison_{}", &tail[..len]));
        }
        rest = &tail[len..];
    }
    names
}
