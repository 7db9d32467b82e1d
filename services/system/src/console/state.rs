//! What the console shows (`GET /console/state`, the page's only input):
//! agencies and their lag, flows and refusals over the recent window and
//! since the gateway started, consumers, the ledger's height and latest
//! checkpoints, the services seen. Counts by agency, kind and reason, sizes,
//! roots and times only: nothing personal, no envelope or case id.
//! [`super::sampler`] gathers it.

use serde::Serialize;

/// One agency (a node of the picture).
#[derive(Debug, Clone, Serialize)]
pub struct Agency {
    pub id: String,
    pub name: String,
    /// `police`, `health`, ... or `system` for a Liaison service.
    pub kind: String,
    /// Copies waiting for it: pending plus unacknowledged (`null`: unknown).
    pub lag: Option<u64>,
}

/// Copies delivered from one agency to another (an edge).
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    pub from: String,
    pub to: String,
    /// In the recent window.
    pub recent: u64,
    /// Since the gateway started.
    pub total: u64,
}

/// Envelopes refused, for one agency and reason.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub agency: String,
    pub code: String,
    pub recent: u64,
    pub total: u64,
}

/// A consumer of a Liaison service and how far behind it is.
#[derive(Debug, Clone, Serialize)]
pub struct Consumer {
    pub stream: String,
    pub name: String,
    pub lag: u64,
}

/// One signed checkpoint of the ledger.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    /// Records it covers (the tree size).
    pub size: u64,
    /// The Merkle root it signs (base64, as in the note).
    pub root: String,
    /// When it was published, Unix seconds.
    pub time: i64,
}

/// A service instance that answered discovery.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceSeen {
    pub name: String,
    pub version: String,
    pub endpoints: Vec<String>,
}

/// Everything the page draws.
#[derive(Debug, Clone, Default, Serialize)]
pub struct State {
    /// When gathered, Unix seconds (0: not yet).
    pub generated_at: u64,
    pub window_secs: u64,
    pub agencies: Vec<Agency>,
    pub flows: Vec<Flow>,
    pub refusals: Vec<Refusal>,
    pub consumers: Vec<Consumer>,
    pub ledger_height: Option<u64>,
    pub checkpoints: Vec<Checkpoint>,
    pub services: Vec<ServiceSeen>,
    /// What could not be read this time, said plainly.
    pub problems: Vec<String>,
}
