//! Filing what the agency receives into `inbox/`: one file per delivery,
//! named by envelope id, written atomically, acknowledged only once it is on
//! disk; a delivery already filed (it came again after a lost
//! acknowledgement) is acknowledged without being written again.

use super::{Adapter, AdapterError, pretty, write_atomically};
use liaison_core::ids::validate_envelope_id;
use liaison_proto::json;
use std::time::Duration;

/// One delivery taken from the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    pub envelope_id: String,
    /// The sending agency.
    pub from: String,
    /// The file was already there: a redelivery, acknowledged again.
    pub already_filed: bool,
}

impl Adapter<'_> {
    /// Takes up to `max` deliveries (waiting up to `wait` for the first),
    /// writes each to `inbox/<envelope id>.json` and acknowledges it. Stops
    /// at the first delivery it cannot file, leaving it and the rest of the
    /// batch unacknowledged: they come again after the ack wait.
    pub async fn file_inbox(&self, max: usize, wait: Duration) -> Result<Vec<Filed>, AdapterError> {
        let mut filed = Vec::new();
        for received in self.client.next_batch(max, wait).await? {
            let id = received.envelope_id().to_owned();
            // ".json" is appended, so a valid id (no '/') cannot leave inbox/.
            validate_envelope_id(&id).map_err(|_| AdapterError::UnfitId(id.clone()))?;
            let path = self.dirs.inbox.join(format!("{id}.json"));
            let already_filed = path.exists();
            if !already_filed {
                let mut text = pretty(&json::to_json("Delivery", &received.delivery));
                text.push('\n');
                write_atomically(&path, text.as_bytes())?;
            }
            received.ack().await?;
            let from = received
                .delivery
                .envelope
                .as_ref()
                .map(|e| e.sender_agency.clone())
                .unwrap_or_default();
            tracing::debug!(envelope_id = %id, from, already_filed, "Delivery filed");
            filed.push(Filed {
                envelope_id: id,
                from,
                already_filed,
            });
        }
        Ok(filed)
    }
}
