//! An agency's inbox over HTTPS: the same reader as over NATS
//! ([`crate::inbox`]), its copies in the protobuf JSON mapping, each with its
//! number in the agency's inbox and an opaque ack id that is accepted only
//! from the agency it was given to.
//!
//! It does not authenticate: the routes do, before calling it.

use super::problem::Problem;
use crate::Shared;
use crate::inbox::{Handout, InboxError};
use liaison_core::AgencyId;
use std::time::Duration;

pub use crate::inbox::{MAX_ACKS, MAX_BATCH, MAX_WAIT};

/// Most bytes of copies in one answer.
const MAX_BYTES: usize = 8 * 1024 * 1024;

impl From<InboxError> for Problem {
    fn from(e: InboxError) -> Self {
        match e {
            InboxError::InvalidAckId(why) => Problem::InvalidAckId(why),
            InboxError::Malformed(why) => Problem::InvalidRequest(why),
            InboxError::Unavailable(why) => Problem::Unavailable(why),
            InboxError::Suspended(refusal) => Problem::Refused(refusal),
        }
    }
}

/// One copy as the HTTPS door hands it out.
pub fn to_json(handout: Handout) -> serde_json::Value {
    serde_json::json!({
        "ack_id": handout.ack_id,
        "recipient_seq": handout.recipient_seq,
        "delivery_count": handout.delivery_count,
        "delivery": liaison_proto::json::to_json("Delivery", &handout.delivery),
    })
}

/// Takes up to `max` copies from `agency`'s inbox, waiting up to `wait`
/// for the first, and leaves them unacknowledged.
pub async fn pull(
    shared: &Shared,
    agency: &AgencyId,
    max: usize,
    wait: Duration,
) -> Result<Vec<serde_json::Value>, Problem> {
    let handed = shared.inboxes.next(agency, max, wait, MAX_BYTES).await?;
    Ok(handed.into_iter().map(to_json).collect())
}

/// Acknowledges the copies named (every id checked before any is taken).
pub async fn ack(shared: &Shared, agency: &AgencyId, ack_ids: &[String]) -> Result<usize, Problem> {
    Ok(shared.inboxes.ack(agency, ack_ids).await?)
}
