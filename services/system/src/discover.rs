//! Finding Liaison's services through the NATS service API: one `$SRV.INFO`
//! (or `$SRV.PING`) request, every instance's answer collected until they
//! stop coming (a short quiet period) or a deadline. What `liaison status`
//! and the operator console list. It asks; it changes nothing.

use async_nats::service::Info;
use futures_util::StreamExt as _;
use std::time::Duration;

/// Stop collecting once no answer came for this long ...
const QUIET: Duration = Duration::from_millis(250);
/// ... or after this long in all.
const DEADLINE: Duration = Duration::from_secs(2);

/// Every service instance that answers `$SRV.INFO`, by name then id.
pub async fn services(client: &async_nats::Client) -> Result<Vec<Info>, String> {
    let inbox = client.new_inbox();
    let mut answers = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| format!("subscribe to {inbox}: {e}"))?;
    client
        .publish_with_reply(
            format!("{}.INFO", liaison_core::subjects::SERVICE_API),
            inbox,
            "".into(),
        )
        .await
        .map_err(|e| format!("$SRV.INFO: {e}"))?;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut found = Vec::new();
    loop {
        let wait = QUIET.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, answers.next()).await {
            Ok(Some(message)) => match serde_json::from_slice::<Info>(&message.payload) {
                Ok(info) => found.push(info),
                Err(e) => tracing::debug!(error = %e, "Unreadable $SRV.INFO answer"),
            },
            Ok(None) | Err(_) => break,
        }
    }
    let _ = answers.unsubscribe().await;
    found.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(found)
}
