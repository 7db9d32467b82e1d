//! The operator console as an operator sees it: a real system, real traffic
//! (referrals delivered to the police and the council, refusals of two
//! kinds, a signed checkpoint), then the page loaded in a real headless
//! Chromium. The rendered page names the agencies, the refusal reasons,
//! each agency's lag and the ledger's height; its JSON holds counts only,
//! never the referrals' personal data or ids. Set LIAISON_CONSOLE_SCREENSHOT
//! to a path to keep the screenshot (docs/console.png is one).

use anyhow::{Result, ensure};
use liaison_tests::browser::{Chromium, png_size};
use liaison_tests::observed::{start_observed, traffic};
use liaison_tests::{eventually, http_get};
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn the_console_shows_flows_refusals_lag_and_checkpoints_in_a_real_browser() -> Result<()> {
    let chromium = Chromium::find()?;
    let system = start_observed().await?;
    let Some(console) = system.console_addr() else {
        anyhow::bail!("the console is not open");
    };
    let sent = traffic(&system, "ref-console", 3).await?;

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
            .any(|a| a["id"] == "police" && a["lag"] == 3);
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
        "deliver-police",
        "lag 3",
        "liaison-gateway",
        "liaison-alerts",
        &format!("id=\"ledger-height\">{}<", sent.height),
        "class=\"flow\" data-from=\"school-a\" data-to=\"police\"",
        "class=\"refused\"",
    ] {
        assert!(dom.contains(shown), "{shown:?} not on the page: {dom}");
    }
    assert!(
        !dom.contains("not updated"),
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
