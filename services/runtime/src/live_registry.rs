//! The agency registry as live state (docs/decisions/0020-live-membership.md):
//! the KV bucket `REGISTRY`, one key per agency holding its `[[agency]]`
//! block in the registry file's own TOML form, with history, so every
//! version of every entry stays readable. The file is the seed
//! ([`seed`], run by `liaison up` and `liaison provision` when the bucket is
//! empty) and the import format.
//!
//! Only the gateway writes it, on a named operator's signed request, after
//! checking the change with the file's rules and recording it in the ledger.
//! Every gateway and every service that reads the registry follows it
//! ([`Follower`]): a change is in force everywhere within milliseconds,
//! nothing restarted.

use crate::registry::{Agency, Registry};
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;
use liaison_core::ids::AgencyId;
use liaison_core::{NatsContext as _, NatsError};
use std::collections::BTreeMap;
use std::time::Duration;

/// The live registry's KV bucket.
pub const BUCKET: &str = "REGISTRY";

/// Versions of each entry kept (the ledger keeps every change for ever).
pub const HISTORY: i64 = 64;

/// Largest entry: one agency's block, keys included.
pub const MAX_ENTRY: i32 = 64 * 1024;

/// How long a follower gathers changes arriving together (an import) before
/// it builds the registry once for all of them.
const GATHER: Duration = Duration::from_millis(25);

/// The `REGISTRY` bucket's configuration.
pub fn bucket_config(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: BUCKET.to_owned(),
        description:
            "The agency registry: one [[agency]] block per agency, every change by a named operator"
                .to_owned(),
        history: HISTORY,
        max_value_size: MAX_ENTRY,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// Reads one entry as the gateway wrote it.
pub fn parse_entry(key: &str, value: &[u8]) -> Result<Agency, String> {
    let text = std::str::from_utf8(value).map_err(|_| format!("entry {key}: not UTF-8"))?;
    let agency = Registry::parse_one(text).map_err(|e| format!("entry {key}: {e}"))?;
    if agency.id.as_str() != key {
        return Err(format!("entry {key} holds agency {}, not {key}", agency.id));
    }
    Ok(agency)
}

/// What [`seed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// The bucket was empty: this many agencies written from the file.
    Written(usize),
    /// The bucket already held this many entries: left as it is (the live
    /// registry, not the file, is what is in force).
    Already(u64),
}

/// Creates the bucket if needed and, if it holds nothing, writes `registry`
/// into it (create-only, so two seeders never overwrite each other).
pub async fn seed(
    js: &jetstream::Context,
    registry: &Registry,
    replicas: usize,
) -> Result<Seeded, NatsError> {
    let kv = js
        .create_key_value(bucket_config(replicas))
        .await
        .nats(format!("KV bucket {BUCKET}"))?;
    let held = kv
        .status()
        .await
        .nats(format!("KV bucket {BUCKET} status"))?
        .values();
    if held > 0 {
        return Ok(Seeded::Already(held));
    }
    let writes = registry.agencies().map(|agency| {
        let kv = kv.clone();
        let entry = agency.to_toml();
        let key = agency.id.to_string();
        async move {
            match kv.create(&key, entry.into()).await {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(e).nats(format!("seed {BUCKET} entry {key}")),
            }
        }
    });
    let mut writes = futures_util::stream::iter(writes).buffer_unordered(128);
    while let Some(done) = writes.next().await {
        done?;
    }
    Ok(Seeded::Written(registry.len()))
}

/// The live registry as one reader follows it.
pub struct Follower {
    watch: kv::Watch,
    entries: BTreeMap<AgencyId, std::sync::Arc<Agency>>,
    /// Entries that could not be read (never written by a gateway; logged).
    skipped: u64,
}

impl Follower {
    /// Reads the whole live registry and follows it from there. Fails,
    /// naming the fix, if the bucket is missing or empty.
    pub async fn open(js: &jetstream::Context) -> Result<(Registry, Self), String> {
        let kv = js.get_key_value(BUCKET).await.map_err(|e| {
            format!("the live registry (KV bucket {BUCKET}): {e}: `liaison up` or `liaison provision` creates it")
        })?;
        let held = kv
            .status()
            .await
            .map_err(|e| format!("KV bucket {BUCKET}: {e}"))?
            .values();
        if held == 0 {
            return Err(format!(
                "the live registry (KV bucket {BUCKET}) is empty: `liaison up` or `liaison provision` seeds it from paths.registry"
            ));
        }
        let watch = kv
            .watch_with_history(">")
            .await
            .map_err(|e| format!("watch KV bucket {BUCKET}: {e}"))?;
        let mut follower = Self {
            watch,
            entries: BTreeMap::new(),
            skipped: 0,
        };
        loop {
            let entry = tokio::time::timeout(Duration::from_secs(30), follower.watch.next())
                .await
                .map_err(|_| format!("KV bucket {BUCKET}: not read whole within 30 s"))?;
            let Some(entry) = entry else {
                return Err(format!("KV bucket {BUCKET}: the watch ended"));
            };
            let entry = entry.map_err(|e| format!("KV bucket {BUCKET}: {e}"))?;
            let last = entry.delta == 0;
            follower.apply(entry);
            if last {
                break;
            }
        }
        let registry = follower.build()?;
        Ok((registry, follower))
    }

    /// Waits for the next change (gathering those that arrive together) and
    /// returns the registry with it; `None` once the watch ends.
    pub async fn next(&mut self) -> Option<Result<Registry, String>> {
        let first = self.watch.next().await?;
        match first {
            Ok(entry) => self.apply(entry),
            Err(e) => return Some(Err(format!("KV bucket {BUCKET}: {e}"))),
        }
        while let Ok(Some(Ok(entry))) = tokio::time::timeout(GATHER, self.watch.next()).await {
            self.apply(entry);
        }
        Some(self.build())
    }

    /// Entries skipped because they could not be read.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn apply(&mut self, entry: kv::Entry) {
        let Ok(id) = AgencyId::parse(&entry.key) else {
            self.skipped += 1;
            tracing::warn!(key = %entry.key, "Live registry entry with an invalid id skipped");
            return;
        };
        match entry.operation {
            kv::Operation::Put => match parse_entry(&entry.key, &entry.value) {
                Ok(agency) => {
                    self.entries.insert(id, std::sync::Arc::new(agency));
                }
                Err(e) => {
                    self.skipped += 1;
                    tracing::warn!(error = %e, "Live registry entry skipped");
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                self.entries.remove(&id);
            }
        }
    }

    fn build(&self) -> Result<Registry, String> {
        Registry::from_agencies(self.entries.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_the_agencys_block_and_reads_back_the_same() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/agencies/registry.toml"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let registry = Registry::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert!(registry.len() >= 8);
        for agency in registry.agencies() {
            let block = agency.to_toml();
            let back = parse_entry(agency.id.as_str(), block.as_bytes())
                .unwrap_or_else(|e| panic!("{block}: {e}"));
            assert_eq!(&back, agency, "{block}");
        }
        let police = registry
            .agencies()
            .next()
            .unwrap_or_else(|| panic!("an agency"));
        let block = police.to_toml();
        assert!(
            parse_entry("someone-else", block.as_bytes())
                .is_err_and(|e| e.contains("holds agency"))
        );
        let second = registry
            .agencies()
            .nth(1)
            .unwrap_or_else(|| panic!("a second agency"));
        let twice = format!("{block}\n{}", second.to_toml());
        assert!(
            parse_entry(police.id.as_str(), twice.as_bytes())
                .is_err_and(|e| e.contains("exactly one"))
        );
    }
}
