//! The operator console as an operator sees it: a real system, real traffic
//! (referrals delivered to the police and the council, refusals of two
//! kinds, a police alert to business partners and an acknowledgement, a
//! former subject re-engaging and the linkage service's alert, a signed
//! checkpoint), then the page loaded in a real headless Chromium. The
//! rendered page names the agencies, the refusal reasons, each agency's lag
//! and the ledger's height; its JSON holds counts only, never the
//! referrals' personal data or ids. Set LIAISON_CONSOLE_SCREENSHOT to a
//! path to keep the screenshot (docs/console.png is one).

use anyhow::{Result, ensure};
use liaison_proto::v1::alert_issued::ThreatLevel;
use liaison_system::system::System;
use liaison_tests::alerts::{ack, alert};
use liaison_tests::browser::{Chromium, png_size};
use liaison_tests::casework::{close_case, open_case, refer};
use liaison_tests::observed::{settle, shares, start_observed};
use liaison_tests::{agency, eventually, http_get, metric};
use serde_json::Value;
use std::time::Duration;

/// A police alert to the retail and transport partners, acknowledged by
/// retail; a former subject referred again, which the linkage service tells
/// the police about.
async fn a_busier_day(system: &System) -> Result<()> {
    let police = agency(system, "police").await?;
    let verdict = police
        .send(&alert(
            "alert-console-1",
            ThreatLevel::Severe,
            &["retail", "transport"],
            "london",
        ))
        .await?;
    ensure!(verdict.recipients.len() == 3, "{verdict:?}");
    let retail = agency(system, "retail-bsp").await?;
    retail
        .send(&ack("retail-bsp", "ack-console-1", "alert-console-1"))
        .await?;
    let (school, nhs) = (
        agency(system, "school-b").await?,
        agency(system, "nhs-trust").await?,
    );
    refer(&school, "ref-console-former", "tok-console-former").await?;
    open_case(
        system,
        &police,
        "CASE-CONSOLE-1",
        &["tok-console-former"],
        "ref-console-former",
    )
    .await?;
    close_case(&police, "CASE-CONSOLE-1").await?;
    refer(&nhs, "ref-console-again", "tok-console-former").await?;
    let Some(gateway) = system.gateway_telemetry_addr() else {
        anyhow::bail!("the gateway's operations listener is not open");
    };
    eventually(
        "the re-engagement alert",
        Duration::from_secs(20),
        || async {
            let (_, page) = http_get(gateway, "/metrics").await?;
            let series =
                "liaison_gateway_flows_total{sender=\"liaison-linkage\",recipient=\"police\"}";
            Ok((metric(&page, series) == Some(1.0)).then_some(()))
        },
    )
    .await
}

/// Copies in `agency`'s inbox it has not acknowledged.
async fn waiting(system: &System, agency: &str) -> Result<u64> {
    liaison_tests::fault::inbox_pending(system, &liaison_core::AgencyId::parse(agency)?).await
}

#[tokio::test]
async fn the_console_shows_flows_refusals_lag_and_checkpoints_in_a_real_browser() -> Result<()> {
    let chromium = Chromium::find()?;
    let system = start_observed().await?;
    let Some(console) = system.console_addr() else {
        anyhow::bail!("the console is not open");
    };
    shares(&system, "ref-console", 3).await?;
    a_busier_day(&system).await?;
    let sent = settle(&system).await?;
    let police_lag = waiting(&system, "police").await?;

    // The state the page draws, once the console has read all of it.
    let state: Value = eventually("the console's state", Duration::from_secs(30), || async {
        let (status, body) = http_get(console, "/console/state").await?;
        ensure!(status == 200, "{status} {body}");
        let state: Value = serde_json::from_str(&body)?;
        let flow = |to: &str| {
            state["flows"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["from"] == "school-a" && f["to"] == to && f["recent"] == 3)
        };
        let checkpointed = state["checkpoints"][0]["size"].as_u64() == Some(sent.height);
        let lag = state["agencies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["id"] == "police" && a["lag"].as_u64() == Some(police_lag));
        let services = state["services"].as_array().map_or(0, Vec::len);
        Ok((flow("police")
            && flow("council")
            && checkpointed
            && lag
            && services == 5
            && state["ledger_height"].as_u64() == Some(sent.height))
        .then_some(state))
    })
    .await?;
    let refusals: Vec<(&str, &str)> = state["refusals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["agency"].as_str()?, r["code"].as_str()?)))
        .collect();
    assert!(refusals.contains(&("school-a", "missing_token")), "{state}");
    assert!(
        refusals.contains(&("retail-bsp", "policy_denied")),
        "{state}"
    );
    let text = state.to_string();
    for personal in [
        "Alex Example",
        "2010-04-12",
        "12 Demo Street",
        "tok-test-",
        "ref-console",
    ] {
        assert!(
            !text.contains(personal),
            "{personal} in the console's state"
        );
    }

    // The page, as a browser renders it.
    let url = format!("http://{console}/console");
    let (status, page) = http_get(console, "/console").await?;
    assert_eq!(status, 200);
    assert_eq!(
        page.matches("http").count(),
        page.matches("http://www.w3.org/2000/svg").count(),
        "the page names no address but SVG's namespace: it fetches nothing from elsewhere"
    );
    let dom = chromium.dump_dom(&url).await?;
    for agency in [
        "police",
        "council",
        "school-a",
        "nhs-trust",
        "retail-bsp",
        "transport-bsp",
    ] {
        assert!(
            dom.contains(&format!("data-agency=\"{agency}\"")),
            "{agency} not drawn: {dom}"
        );
    }
    for shown in [
        "missing_token",
        "policy_denied",
        &format!("lag {police_lag}"),
        "liaison-gateway",
        "liaison-alerts",
        &format!("id=\"ledger-height\">{}<", sent.height),
        "class=\"flow\" data-from=\"school-a\" data-to=\"police\"",
        "class=\"flow\" data-from=\"liaison-linkage\" data-to=\"police\"",
        "class=\"flow\" data-from=\"police\" data-to=\"transport-bsp\"",
        "data-agency=\"liaison-linkage\"",
        "class=\"refused\"",
    ] {
        assert!(dom.contains(shown), "{shown:?} not on the page: {dom}");
    }
    assert!(
        dom.contains("id=\"generated\">as of "),
        "the page could not read its state: {dom}"
    );

    let dir = tempfile::tempdir()?;
    let shot = dir.path().join("console.png");
    chromium.screenshot(&url, &shot).await?;
    let png = std::fs::read(&shot)?;
    assert_eq!(png_size(&png), Some((1280, 900)), "not a 1280x900 PNG");
    assert!(png.len() > 20_000, "a blank page? {} bytes", png.len());
    if let Some(keep) = std::env::var_os("LIAISON_CONSOLE_SCREENSHOT") {
        std::fs::copy(&shot, keep)?;
    }
    system.shutdown().await
}
