//! Gathering the console's [`State`] every few seconds: the flows between
//! agencies and the refusals by reason in the recent window (from the
//! gateway's `/metrics`), each agency's consumer lag and the services'
//! consumers (JetStream consumer info, as the operator), the audit ledger's
//! height and its latest signed checkpoints (LEDGER and CHECKPOINTS stream
//! state: sizes, roots and times, never a record), and the services that
//! answer `$SRV.INFO`.

use super::scrape;
use super::state::{Agency, Checkpoint, Consumer, Flow, Refusal, ServiceSeen, State};
use super::window::{Counts, Window};
use async_nats::jetstream::{self, consumer::PullConsumer};
use liaison_core::subjects;
use std::time::{Duration, Instant};

/// Checkpoints listed, newest first.
const CHECKPOINTS_SHOWN: u64 = 5;

/// Where the console reads from.
pub struct Sources {
    /// An operator connection (reads consumer info and stream state).
    pub operator: async_nats::Client,
    /// Registered agencies: id, name, kind.
    pub agencies: Vec<(String, String, String)>,
    /// The gateway's operations listener, e.g. `127.0.0.1:9464`.
    pub gateway: Option<String>,
}

/// Gathers [`State`]s, keeping the gateway's counters over the window.
pub struct Sampler {
    sources: Sources,
    js: jetstream::Context,
    window: Window,
}

/// Most inboxes sampled one by one.
const INBOXES_SAMPLED: usize = 200;

impl Sampler {
    pub fn new(sources: Sources, window: Duration) -> Self {
        Self {
            js: jetstream::new(sources.operator.clone()),
            sources,
            window: Window::new(window),
        }
    }

    /// Reads everything once.
    pub async fn sample(&mut self) -> State {
        let mut state = State {
            generated_at: liaison_core::time::unix_now(),
            window_secs: self.window.span().as_secs(),
            ..State::default()
        };
        self.counters(&mut state).await;
        self.lag(&mut state).await;
        self.ledger(&mut state).await;
        match crate::discover::services(&self.sources.operator).await {
            Ok(found) => {
                state.services = found
                    .into_iter()
                    .map(|i| ServiceSeen {
                        name: i.name,
                        version: i.version,
                        endpoints: i.endpoints.into_iter().map(|e| e.name).collect(),
                    })
                    .collect();
            }
            Err(e) => state.problems.push(format!("service discovery: {e}")),
        }
        state
    }

    async fn counters(&mut self, state: &mut State) {
        match &self.sources.gateway {
            None => state
                .problems
                .push("the gateway's operations listener is off: no flows".into()),
            Some(addr) => {
                match crate::ops_http::get(addr, "/metrics", Duration::from_secs(3)).await {
                    Ok((200, page)) => self
                        .window
                        .push(Instant::now(), Counts::from_samples(&scrape::parse(&page))),
                    Ok((status, _)) => state
                        .problems
                        .push(format!("gateway /metrics answered {status}")),
                    Err(e) => state.problems.push(format!("gateway /metrics: {e}")),
                }
            }
        }
        let (recent, total) = (self.window.recent(), self.window.total());
        state.flows = total
            .flows
            .iter()
            .map(|((from, to), &n)| Flow {
                from: from.clone(),
                to: to.clone(),
                recent: recent
                    .flows
                    .get(&(from.clone(), to.clone()))
                    .copied()
                    .unwrap_or(0),
                total: n,
            })
            .collect();
        state.refusals = total
            .refusals
            .iter()
            .map(|((agency, code), &n)| Refusal {
                agency: agency.clone(),
                code: code.clone(),
                recent: recent
                    .refusals
                    .get(&(agency.clone(), code.clone()))
                    .copied()
                    .unwrap_or(0),
                total: n,
            })
            .collect();
        state.agencies = self
            .sources
            .agencies
            .iter()
            .map(|(id, name, kind)| Agency {
                id: id.clone(),
                name: name.clone(),
                kind: kind.clone(),
                lag: None,
            })
            .collect();
        // Liaison's services appear as senders of the events they raise.
        for flow in &state.flows {
            if liaison_core::system::Service::of_sender(&flow.from).is_some()
                && !state.agencies.iter().any(|a| a.id == flow.from)
            {
                state.agencies.push(Agency {
                    id: flow.from.clone(),
                    name: flow.from.clone(),
                    kind: "system".into(),
                    lag: None,
                });
            }
        }
    }

    async fn lag(&self, state: &mut State) {
        let consumers: Vec<(String, String)> = vec![
            (
                subjects::EVENTS_STREAM.into(),
                subjects::ROUTER_CONSUMER.into(),
            ),
            (
                subjects::DECISIONS_STREAM.into(),
                subjects::LEDGER_WRITER_CONSUMER.into(),
            ),
        ];
        for (stream, name) in consumers {
            let found: Result<PullConsumer, _> = self
                .js
                .get_consumer_from_stream(name.as_str(), stream.as_str())
                .await;
            let info = match found {
                Ok(mut c) => c
                    .info()
                    .await
                    .map(|i| i.num_pending + i.num_ack_pending as u64),
                Err(e) => {
                    state
                        .problems
                        .push(format!("consumer {name} on {stream}: {e}"));
                    continue;
                }
            };
            match info {
                Ok(lag) => state.consumers.push(Consumer { stream, name, lag }),
                Err(e) => state
                    .problems
                    .push(format!("consumer {name} on {stream}: {e}")),
            }
        }
        // Inboxes are subjects, not consumers (ADR 0019): one read each,
        // so only the first agencies of a national registry are sampled.
        // Asked of a gateway: the operator may not read DELIVERY (ADR 0021).
        let sampled: Vec<liaison_core::AgencyId> = state
            .agencies
            .iter()
            .filter(|a| a.kind != "system")
            .filter_map(|a| liaison_core::AgencyId::parse(&a.id).ok())
            .take(INBOXES_SAMPLED)
            .collect();
        let backlogs =
            match liaison_runtime::inbox::ask_backlogs(&self.sources.operator, &sampled).await {
                Ok(backlogs) => backlogs,
                Err(e) => {
                    state.problems.push(format!("inboxes: {e}"));
                    Vec::new()
                }
            };
        let at: std::collections::HashMap<String, usize> = state
            .agencies
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        for (agency, backlog) in backlogs {
            let Some(a) = at.get(agency.as_str()).map(|i| &mut state.agencies[*i]) else {
                continue;
            };
            match backlog {
                Ok(backlog) => a.lag = Some(backlog.waiting),
                Err(e) => state.problems.push(format!("inbox of {}: {e}", a.id)),
            }
        }
    }

    async fn ledger(&self, state: &mut State) {
        // Records, not messages: a LEDGER message holds a block of entries,
        // and its last one says how many records there are.
        match liaison_audit::verify::ledger_end(&self.js).await {
            Ok((_, _, records)) => state.ledger_height = Some(records),
            Err(e) => state.problems.push(format!("LEDGER: {e}")),
        }
        let stream = match self.js.get_stream(subjects::CHECKPOINTS_STREAM).await {
            Ok(s) => s,
            Err(e) => return state.problems.push(format!("CHECKPOINTS: {e}")),
        };
        let (first, last) = (
            stream.cached_info().state.first_sequence,
            stream.cached_info().state.last_sequence,
        );
        let mut seq = last;
        while seq >= first.max(1) && last - seq < CHECKPOINTS_SHOWN {
            if let Ok(message) = stream.get_raw_message(seq).await
                && let Some((size, root)) = note(&String::from_utf8_lossy(&message.payload))
            {
                state.checkpoints.push(Checkpoint {
                    size,
                    root,
                    time: message.time.unix_timestamp(),
                });
            }
            seq -= 1;
        }
    }
}

/// A signed note's tree size and root hash (lines two and three); its
/// signature is checked by `liaison audit verify`, not here.
fn note(text: &str) -> Option<(u64, String)> {
    let mut lines = text.lines().skip(1);
    let size = lines.next()?.trim().parse().ok()?;
    let root = lines.next()?.trim();
    (!root.is_empty() && root.len() <= 64).then(|| (size, root.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_note_gives_its_size_and_root() {
        assert_eq!(
            super::note("liaison.example/ledger\n4\nSESAB=\n\n— sig\n"),
            Some((4, "SESAB=".to_owned()))
        );
        assert_eq!(super::note("origin only\n"), None);
    }
}
