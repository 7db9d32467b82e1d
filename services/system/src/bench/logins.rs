//! What NATS identity through the live registry costs
//! (docs/decisions/0020-live-membership.md), at each registry size of
//! `liaison bench --agencies`: an agency's login (NKey, signature checked
//! and permissions granted by the gateway's auth callout) beside a static
//! password login on the same server in the same run; and how long a
//! membership change takes to be in force: an agency added until it logs
//! in, an agency suspended until its connection is closed.

use super::routing::percentiles;
use crate::keys;
use crate::system::System;
use anyhow::{Context as _, Result, bail};
use liaison_core::subjects;
use liaison_runtime::users;
use std::path::Path;
use std::time::{Duration, Instant};

/// One size's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logins {
    /// An agency's NKey login through the callout: p50, p99.
    pub nkey: (Duration, Duration),
    /// A service's static password login (no callout): p50, p99.
    pub password: (Duration, Duration),
    /// `agencies add` answered → the new agency's first login.
    pub added_to_login: Duration,
    /// `agencies suspend` sent → the agency's open connection closed.
    pub suspended_to_closed: Duration,
}

async fn login_once(url: &str, options: async_nats::ConnectOptions) -> Result<Duration> {
    let started = Instant::now();
    let client = options.connect(url).await?;
    client.flush().await?;
    let took = started.elapsed();
    drop(client);
    Ok(took)
}

/// Measures `count` logins of each kind, then the two changes.
pub async fn measure(system: &System, root: &Path, count: usize) -> Result<Logins> {
    let url = system.url();
    let seed = std::fs::read_to_string(keys::nkey_path(&root.join(keys::DEV_KEYS), "police"))
        .context("the police's development NKey")?;
    // A static password user with few rights, as a login baseline.
    let password = system.credentials(users::OPERATOR)?;
    let (mut nkey, mut static_) = (Vec::new(), Vec::new());
    // Interleaved, so that drift on a shared machine falls on both alike.
    for _ in 0..count {
        nkey.push(
            login_once(
                &url,
                async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
                    .custom_inbox_prefix(subjects::inbox_prefix("police")),
            )
            .await?,
        );
        static_.push(
            login_once(
                &url,
                async_nats::ConnectOptions::with_user_and_password(
                    password.user.clone(),
                    password.password.expose().to_owned(),
                ),
            )
            .await?,
        );
    }
    let (added_to_login, suspended_to_closed) = change_to_effect(system, root).await?;
    Ok(Logins {
        nkey: percentiles(nkey),
        password: percentiles(static_),
        added_to_login,
        suspended_to_closed,
    })
}

/// Adds an agency, times its first login; suspends it, times its
/// connection's closing.
async fn change_to_effect(system: &System, root: &Path) -> Result<(Duration, Duration)> {
    let token = crate::admin::operator_token(
        &root.join("deploy/operators/dev-operator-keys/duty-officer.pem"),
        "duty-officer",
        120,
    )?;
    let operator = system.connect_as(users::INSPECTOR).await?;
    let ask = |body: serde_json::Value| {
        let (operator, token) = (operator.clone(), token.clone());
        async move { crate::admin::ask(&operator, &token, &body).await.map(drop) }
    };
    let (_, key_entry) = keys::generate(liaison_core::tokens::KeyAlg::EdDSA)?;
    let (seed, nkey) = keys::generate_nkey()?;
    let id = format!("bench-added-{}", liaison_core::time::unix_now());
    let entry = format!(
        "[[agency]]\nid = \"{id}\"\nname = \"bench\"\nkind = \"council\"\nclearance = \"OFFICIAL\"\nareas = [\"bench-area\"]\nnats_keys = [\"{nkey}\"]\n[[agency.keys]]\n{key_entry}\n"
    );
    let login = || {
        async_nats::ConnectOptions::with_nkey(seed.clone())
            .custom_inbox_prefix(subjects::inbox_prefix(&id))
            .connect(system.url())
    };
    let asked = Instant::now();
    ask(serde_json::json!({"action": "add", "agency": id, "reason": "bench", "entry": entry}))
        .await?;
    let client = loop {
        if let Ok(client) = login().await {
            break client;
        }
        if asked.elapsed() > Duration::from_secs(30) {
            bail!("an agency added live could not log in within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let added_to_login = asked.elapsed();
    let asked = Instant::now();
    ask(serde_json::json!({"action": "suspend", "agency": id, "reason": "bench"})).await?;
    while client.connection_state() == async_nats::connection::State::Connected {
        if asked.elapsed() > Duration::from_secs(30) {
            bail!("a suspended agency's connection was still open after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok((added_to_login, asked.elapsed()))
}
