//! The case record in KV: `case.<id>` (a case, JSON), `unit.<owner>.<unit>`
//! (a priority list, JSON), beside the cursor and outbox kept by liaison-runtime's fold
//! module; and each case's participation in the `PARTICIPATION` bucket the
//! gateway reads.

use crate::state::{Case, Changes, State, Unit, UnitKey};
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use liaison_core::AgencyId;
use liaison_core::participation::{self, Participation};
use liaison_core::system::Service;
use liaison_runtime::fold::FoldError;

fn fail(reason: String) -> FoldError {
    FoldError::Store {
        service: Service::Cases.name(),
        bucket: Service::Cases.bucket(),
        reason,
    }
}

fn unit_key(key: &UnitKey) -> String {
    format!("unit.{}.{}", key.0, key.1)
}

/// What one event changed, copied out of the state to store.
pub struct Snapshot {
    cases: Vec<Case>,
    units: Vec<(UnitKey, Unit)>,
    participation: Vec<(String, Participation)>,
}

impl Snapshot {
    pub fn of(state: &State, changes: &Changes) -> Self {
        let mut case_ids = changes.cases.clone();
        case_ids.sort();
        case_ids.dedup();
        let mut unit_keys = changes.units.clone();
        unit_keys.sort();
        unit_keys.dedup();
        Self {
            cases: case_ids
                .iter()
                .filter_map(|id| state.cases.get(id).cloned())
                .collect(),
            units: unit_keys
                .into_iter()
                .filter_map(|k| state.units.get(&k).cloned().map(|u| (k, u)))
                .collect(),
            participation: changes
                .participation
                .iter()
                .filter_map(|id| state.cases.get(id))
                .map(|c| {
                    (
                        c.id.clone(),
                        Participation {
                            owner: c.owner.clone(),
                            participants: c.participants.clone(),
                            status: c.status,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The cases service's stores.
pub struct Store {
    bucket: kv::Store,
    participation: participation::Store,
}

impl Store {
    pub async fn open(js: &jetstream::Context, bucket: kv::Store) -> Result<Self, FoldError> {
        let participation = participation::Store::open(js)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            bucket,
            participation,
        })
    }

    /// Reads every case and priority list.
    pub async fn load(&self) -> Result<State, FoldError> {
        let mut keys = self.bucket.keys().await.map_err(|e| fail(e.to_string()))?;
        let mut names = vec![];
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| fail(e.to_string()))?;
            if key.starts_with("case.") || key.starts_with("unit.") {
                names.push(key);
            }
        }
        let mut cases = vec![];
        let mut units = vec![];
        for key in names {
            let Some(value) = self
                .bucket
                .get(&key)
                .await
                .map_err(|e| fail(e.to_string()))?
            else {
                continue;
            };
            let bad = |e: serde_json::Error| fail(format!("{key}: {e}"));
            if key.starts_with("case.") {
                cases.push(serde_json::from_slice::<Case>(&value).map_err(bad)?);
            } else if let Some((owner, unit)) = key
                .strip_prefix("unit.")
                .and_then(|rest| rest.split_once('.'))
            {
                let owner = AgencyId::parse(owner).map_err(|e| fail(format!("{key}: {e}")))?;
                let list = serde_json::from_slice::<Unit>(&value).map_err(bad)?;
                units.push(((owner, unit.to_owned()), list));
            }
        }
        Ok(State::from_parts(cases, units))
    }

    /// Stores what one event changed: priority lists and cases, then the
    /// participation the gateway reads.
    pub async fn save(&self, snapshot: &Snapshot) -> Result<(), FoldError> {
        let json = |v: &dyn erased::Json| v.to_json().map_err(|e| fail(e.to_string()));
        for (key, unit) in &snapshot.units {
            self.bucket
                .put(unit_key(key), json(unit)?.into())
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        for case in &snapshot.cases {
            self.bucket
                .put(format!("case.{}", case.id), json(case)?.into())
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        for (case, participation) in &snapshot.participation {
            self.participation
                .put(case, participation)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        Ok(())
    }
}

mod erased {
    /// Serialisable to JSON, object-safe.
    pub trait Json {
        fn to_json(&self) -> Result<Vec<u8>, serde_json::Error>;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
            serde_json::to_vec(self)
        }
    }
}
