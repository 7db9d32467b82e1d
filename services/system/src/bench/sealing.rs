//! What encryption at rest costs the pipeline (ADR 0022): the same school
//! referrals (two recipients each, every copy in DELIVERY) through a fresh
//! system that seals what it stores and through one that does not, one
//! after the other on this machine, with the shipped durability. The row's
//! ratio is sealed over unsealed.

use super::envelopes::Kind;
use super::pipeline::{Clients, send_all};
use super::{Figure, Row, settle};
use crate::system::{System, UpOptions};
use anyhow::Result;
use async_nats::jetstream;
use liaison_runtime::config::Config;
use liaison_runtime::users;
use std::time::{Duration, Instant};

/// Envelopes a second through a fresh system, sealing or not.
async fn delivered(config: &Config, plaintext_store: bool, count: usize) -> Result<f64> {
    let system = System::start(
        config.clone(),
        UpOptions {
            inspector: true,
            plaintext_store,
            ..UpOptions::default()
        },
    )
    .await?;
    let js = jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let clients = Clients::connect(&system).await?;
    let kind = Kind::SchoolReferral;
    let client = clients.get(kind.sender())?;
    let ids: Vec<String> = (0..count).map(|i| format!("sealing-{i:06}")).collect();
    let started = Instant::now();
    send_all(&client, kind, &ids).await?;
    settle::settled(&js, Duration::from_secs(600)).await?;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    drop(clients);
    system.shutdown().await?;
    Ok(rate)
}

/// The sealed and unsealed rows.
pub async fn cost(config: &Config, count: usize) -> Result<Vec<Row>> {
    let sealed = delivered(config, false, count).await?;
    let plain = delivered(config, true, count).await?;
    let n = Kind::SchoolReferral.recipients();
    Ok(vec![
        Row::new(
            "encryption",
            format!("every copy in DELIVERY, {n} recipients, stored unsealed (benchmark only)"),
            Figure::Rate(plain),
            1.0,
        ),
        Row::new(
            "encryption",
            format!("every copy in DELIVERY, {n} recipients, stored sealed (as shipped)"),
            Figure::Rate(sealed),
            sealed / plain,
        )
        .goal("≥ 0.8 of unsealed", sealed / plain >= 0.8),
    ])
}
