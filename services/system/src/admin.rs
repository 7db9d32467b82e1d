//! Membership changes as a named operator (docs/decisions/0020-live-membership.md):
//! an operator token signed with the operator's own key, and a change sent to
//! the gateways on `liaison.admin.agencies`. Shared by `liaison agencies` and
//! `liaison bench --agencies`.

use anyhow::{Context as _, Result, bail};
use liaison_core::subjects;
use std::path::Path;
use std::time::Duration;

/// A token of `operator`, signed with the Ed25519 key at `key`, valid for
/// `lifetime_secs`.
pub fn operator_token(key: &Path, operator: &str, lifetime_secs: u64) -> Result<String> {
    let pem = crate::keys::read_key(key)?;
    let signer = liaison_core::tokens::Signer::from_pem(&pem, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    signer
        .mint(
            operator,
            operator,
            liaison_gateway::membership::AUDIENCE,
            liaison_core::time::unix_now(),
            lifetime_secs,
        )
        .map_err(|e| anyhow::anyhow!(e))
}

/// Sends the change `body` with `token`; the gateway's answer, or what was
/// wrong with the change.
pub async fn ask(
    client: &async_nats::Client,
    token: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    ask_on(client, subjects::ADMIN_AGENCIES, token, body).await
}

/// [`ask`] on another operators' subject (`liaison.admin.subjects`).
pub async fn ask_on(
    client: &async_nats::Client,
    subject: &str,
    token: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(subjects::TOKEN_HEADER, token);
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request_with_headers(subject.to_owned(), headers, body.to_string().into()),
    )
    .await
    .context("no gateway answered within 10 s")?
    .context("asking the gateways")?;
    let answer: serde_json::Value =
        serde_json::from_slice(&reply.payload).context("the gateway's answer")?;
    if answer["ok"].as_bool() != Some(true) {
        bail!(
            "{} {} refused: {}",
            body["action"].as_str().unwrap_or_default(),
            body["agency"]
                .as_str()
                .or(body["token"].as_str())
                .unwrap_or_default(),
            answer["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(answer)
}
