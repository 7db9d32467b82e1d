//! What an agency's inbox holds and what it has acknowledged
//! (docs/decisions/0019-delivery-at-national-size.md): its copies are the
//! subject `liaison.deliver.<agency>.>` of DELIVERY, numbered 1, 2, 3 … in
//! `Liaison-Recipient-Seq`; its position is its key in the KV bucket INBOX.
//! The gateway writes both; the console and `liaison status` read them here.

use liaison_core::{AgencyId, subjects};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What an agency has acknowledged: every copy numbered up to `through`
/// (the last of them at stream sequence `through_stream_seq`), and those
/// above it in `ahead` (number → stream sequence).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub through: u64,
    pub through_stream_seq: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ahead: BTreeMap<u64, u64>,
}

impl Position {
    /// Whether the copy numbered `number` is acknowledged.
    pub fn acknowledged(&self, number: u64) -> bool {
        number <= self.through || self.ahead.contains_key(&number)
    }

    /// Takes in acknowledged copies (number, stream sequence) and moves
    /// `through` over every run that is now complete.
    pub fn take(&mut self, acked: impl IntoIterator<Item = (u64, u64)>) {
        for (number, stream_seq) in acked {
            if number > self.through {
                self.ahead.insert(number, stream_seq);
            }
        }
        while let Some(stream_seq) = self.ahead.remove(&(self.through + 1)) {
            self.through += 1;
            self.through_stream_seq = stream_seq;
        }
    }

    /// Copies not acknowledged, out of `last` numbered.
    pub fn waiting(&self, last: u64) -> u64 {
        let ahead = self.ahead.keys().filter(|n| **n <= last).count() as u64;
        last.saturating_sub(self.through).saturating_sub(ahead)
    }
}

/// An inbox at a glance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// The number of the inbox's last copy (0: none yet).
    pub last: u64,
    /// Copies not acknowledged.
    pub waiting: u64,
}

/// The stream sequence and number of `agency`'s last copy in DELIVERY,
/// read from the stream leader (a replica may lag behind it); `(0, 0)` for
/// an empty inbox, number 0 for a copy stored before numbering began.
pub async fn last_copy(
    delivery: &async_nats::jetstream::stream::Stream,
    agency: &AgencyId,
) -> Result<(u64, u64), String> {
    let last = delivery
        .raw_message_builder()
        .last_by_subject(subjects::delivery_filter(agency))
        .send()
        .await;
    match last {
        Ok(message) => Ok((
            message.sequence,
            message
                .headers
                .get(subjects::RECIPIENT_SEQ_HEADER)
                .and_then(|v| v.as_str().parse().ok())
                .unwrap_or(0),
        )),
        Err(e)
            if matches!(
                e.kind(),
                async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound
            ) =>
        {
            Ok((0, 0))
        }
        Err(e) => Err(format!("the end of {agency}'s inbox: {e}")),
    }
}

/// Reads `agency`'s backlog: the inbox's last copy and its position.
pub async fn backlog(
    js: &async_nats::jetstream::Context,
    agency: &AgencyId,
) -> Result<Backlog, String> {
    let delivery = js
        .get_stream(subjects::DELIVERY_STREAM)
        .await
        .map_err(|e| format!("stream DELIVERY: {e}"))?;
    let (_, last) = last_copy(&delivery, agency).await?;
    let position = match js.get_key_value(subjects::INBOX_BUCKET).await {
        Ok(kv) => match kv.get(agency.as_str()).await {
            Ok(Some(value)) => serde_json::from_slice(&value)
                .map_err(|e| format!("{agency}'s inbox position: {e}"))?,
            Ok(None) => Position::default(),
            Err(e) => return Err(format!("{agency}'s inbox position: {e}")),
        },
        Err(e) => return Err(format!("KV bucket {}: {e}", subjects::INBOX_BUCKET)),
    };
    Ok(Backlog {
        last,
        waiting: position.waiting(last),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_moves_over_complete_runs_only() {
        let mut p = Position::default();
        p.take([(2, 20), (3, 30)]);
        assert_eq!((p.through, p.ahead.len()), (0, 2));
        assert!(p.acknowledged(2) && !p.acknowledged(1));
        assert_eq!(p.waiting(4), 2);
        p.take([(1, 10)]);
        assert_eq!((p.through, p.through_stream_seq), (3, 30));
        assert!(p.ahead.is_empty());
        // Again, or below: nothing changes.
        p.take([(1, 10), (3, 30)]);
        assert_eq!((p.through, p.through_stream_seq), (3, 30));
        p.take([(5, 50)]);
        assert_eq!((p.through, p.ahead.len()), (3, 1));
        assert_eq!(p.waiting(5), 1);
        assert_eq!(p.waiting(0), 0);
        let json = serde_json::to_string(&p).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<Position>(&json).unwrap_or_default(),
            p
        );
    }
}
