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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
        Ok(message) => {
            let (first, count) = numbers(&message.headers);
            Ok((message.sequence, (first + count).saturating_sub(1)))
        }
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

/// The numbers a DELIVERY message holds: its first, and how many (a pack of
/// copies, ADR 0024); `(0, 0)` for a message stored before numbering began.
pub fn numbers(headers: &async_nats::HeaderMap) -> (u64, u64) {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.as_str().parse::<u64>().ok())
    };
    match value(subjects::RECIPIENT_SEQ_HEADER) {
        Some(first) if first > 0 => (first, value(subjects::COPIES_HEADER).unwrap_or(1).max(1)),
        _ => (0, 0),
    }
}

/// The copies of a DELIVERY message (largest decoded: a message is at most
/// the server's `max_payload`).
pub fn copies(payload: &[u8]) -> Result<Vec<liaison_proto::v1::PackedCopy>, String> {
    use prost::Message as _;
    liaison_proto::v1::CopyPack::decode(payload)
        .map(|p| p.copies)
        .map_err(|e| format!("an undecodable pack of copies: {e}"))
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

/// Most inboxes asked about in one request to a gateway.
pub const MAX_ASKED: usize = 1_000;

/// An operator's question to the gateways: how far are these inboxes read?
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacklogRequest {
    pub agencies: Vec<String>,
}

/// One inbox in a gateway's answer: its backlog, or why it was not read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BacklogAnswer {
    pub agency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<Backlog>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// The gateway's side: reads each inbox asked about (at most
/// [`MAX_ASKED`]; ids checked before they go into a subject).
pub async fn answer_backlogs(
    js: &async_nats::jetstream::Context,
    body: &[u8],
) -> Result<Vec<BacklogAnswer>, String> {
    if body.len() > MAX_ASKED * 80 {
        return Err(format!(
            "the request is larger than {} bytes",
            MAX_ASKED * 80
        ));
    }
    let request: BacklogRequest =
        serde_json::from_slice(body).map_err(|e| format!("not a backlog request: {e}"))?;
    if request.agencies.len() > MAX_ASKED {
        return Err(format!(
            "{} inboxes asked about; at most {MAX_ASKED} at once",
            request.agencies.len()
        ));
    }
    let mut answers = Vec::with_capacity(request.agencies.len());
    for agency in request.agencies {
        let read = match AgencyId::parse(&agency) {
            Ok(id) => backlog(js, &id).await,
            Err(e) => Err(format!("agency id: {e}")),
        };
        answers.push(match read {
            Ok(b) => BacklogAnswer {
                agency,
                backlog: Some(b),
                error: String::new(),
            },
            Err(error) => BacklogAnswer {
                agency,
                backlog: None,
                error,
            },
        });
    }
    Ok(answers)
}

/// The operator's side: asks a gateway how far `agencies`' inboxes are read
/// (`liaison status`, the console, tests), in the order asked.
pub async fn ask_backlogs(
    client: &async_nats::Client,
    agencies: &[AgencyId],
) -> Result<Vec<(AgencyId, Result<Backlog, String>)>, String> {
    let mut out = Vec::with_capacity(agencies.len());
    for chunk in agencies.chunks(MAX_ASKED) {
        let request = BacklogRequest {
            agencies: chunk.iter().map(|a| a.to_string()).collect(),
        };
        let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        let reply = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.request(subjects::ADMIN_INBOXES, body.into()),
        )
        .await
        .map_err(|_| "no gateway answered about inboxes in 10 s".to_owned())?
        .map_err(|e| format!("asking the gateways about inboxes: {e}"))?;
        let answers: Result<Vec<BacklogAnswer>, String> =
            serde_json::from_slice::<Result<Vec<BacklogAnswer>, String>>(&reply.payload)
                .map_err(|e| format!("the gateway's answer about inboxes: {e}"))?;
        for (agency, answer) in chunk.iter().zip(answers?) {
            out.push((agency.clone(), answer.backlog.ok_or(answer.error)));
        }
    }
    Ok(out)
}

/// [`ask_backlogs`] for one agency.
pub async fn ask_backlog(
    client: &async_nats::Client,
    agency: &AgencyId,
) -> Result<Backlog, String> {
    ask_backlogs(client, std::slice::from_ref(agency))
        .await?
        .pop()
        .map_or_else(
            || Err("the gateway did not answer about it".to_owned()),
            |(_, b)| b,
        )
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
