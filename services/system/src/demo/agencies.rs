//! Each agency's system during the demo: reads its inbox as deliveries
//! arrive, acknowledges each, and answers what asks for an answer, as a
//! partner's case system would: information requests are answered (except
//! by a school closed for the day), business partners acknowledge alerts
//! (the transport partner only once reminded by an escalation), and a
//! referral withdrawn as wrongly shared is erased and the erasure confirmed.

use super::envelopes::answer;
use super::tally::{Tally, outcome};
use anyhow::Result;
use liaison_client::AgencyClient;
use liaison_client::ReplyDue;
use liaison_core::AgencyId;
use liaison_proto::v1::{Delivery, Envelope};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The school that answers no request today (an INSET day).
pub const CLOSED_TODAY: &str = "school-b";
/// The business partner that acknowledges alerts only when reminded.
pub const BUSY_PARTNER: &str = "transport-bsp";

/// How long a reply is re-sent while the gateway is busy.
const PATIENCE: Duration = Duration::from_secs(30);

/// One client per agency of the registry, each signing with its key in
/// `keys` (`AGENCY.pem`), and the business partners among them.
pub async fn connect(
    system: &crate::system::System,
    config: &liaison_runtime::config::Config,
    keys: &std::path::Path,
) -> Result<(BTreeMap<AgencyId, Arc<AgencyClient>>, Vec<AgencyId>)> {
    connect_these(system, config, keys, &system.registry.ids()).await
}

/// As [`connect`], for `agencies` of the registry only (a national registry:
/// the partnership whose keys are at hand).
pub async fn connect_these(
    system: &crate::system::System,
    config: &liaison_runtime::config::Config,
    keys: &std::path::Path,
    agencies: &[AgencyId],
) -> Result<(BTreeMap<AgencyId, Arc<AgencyClient>>, Vec<AgencyId>)> {
    let mut clients = BTreeMap::new();
    let mut business = Vec::new();
    for agency in agencies.iter().cloned() {
        let pem = crate::keys::read_key(&keys.join(format!("{agency}.pem")))?;
        let auth =
            liaison_client::NatsAuth::NKeySeedFile(crate::keys::nkey_path(keys, agency.as_str()));
        let client = AgencyClient::connect(
            &system.url(),
            &auth,
            agency.clone(),
            &pem,
            &config.gateway.audience,
        )
        .await?;
        if system
            .registry
            .get(&agency)
            .is_some_and(|a| a.kind == liaison_runtime::registry::AgencyKind::Business)
        {
            business.push(agency.clone());
        }
        clients.insert(agency, Arc::new(client));
    }
    Ok((clients, business))
}

/// The agencies' readers, running until stopped and drained.
pub struct Readers {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<Result<()>>>,
}

impl Readers {
    /// Starts one reader per agency; `business` names the business partners.
    pub fn spawn(
        clients: &BTreeMap<AgencyId, Arc<AgencyClient>>,
        business: &[AgencyId],
        tally: &Tally,
    ) -> Self {
        let stop = CancellationToken::new();
        let tasks = clients
            .iter()
            .map(|(agency, client)| {
                let reader = Reader {
                    agency: agency.clone(),
                    client: client.clone(),
                    business: business.contains(agency),
                    tally: tally.clone(),
                };
                tokio::spawn(reader.run(stop.clone()))
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the readers once their inboxes are empty.
    pub async fn finish(self) -> Result<()> {
        self.stop.cancel();
        for task in self.tasks {
            task.await??;
        }
        Ok(())
    }
}

struct Reader {
    agency: AgencyId,
    client: Arc<AgencyClient>,
    business: bool,
    tally: Tally,
}

impl Reader {
    async fn run(self, stop: CancellationToken) -> Result<()> {
        loop {
            let batch = self.client.inbox(256, Duration::from_millis(200)).await?;
            if batch.is_empty() {
                if stop.is_cancelled() {
                    return Ok(());
                }
                continue;
            }
            let replies: Vec<Envelope> = batch.iter().filter_map(|d| self.read(d)).collect();
            for reply in replies {
                let started = Instant::now();
                let verdict = self.client.send_until_answered(&reply, PATIENCE).await?;
                self.tally.verdict(
                    self.agency.as_str(),
                    reply.kind(),
                    &reply.id,
                    outcome(&verdict),
                    started.elapsed(),
                );
            }
        }
    }

    /// Counts one delivery and returns the reply it calls for, if any.
    fn read(&self, delivery: &Delivery) -> Option<Envelope> {
        let envelope = delivery.envelope.as_ref()?;
        let me = self.agency.as_str();
        self.tally.delivery(
            me,
            envelope.kind(),
            &envelope.id,
            !delivery.withheld_labels.is_empty(),
        );
        let author = format!("{me}-case-system");
        let reply = match ReplyDue::of(envelope)? {
            ReplyDue::Answer if me != CLOSED_TODAY => {
                self.client.answer(&author, envelope, answer(me))
            }
            ReplyDue::Acknowledge
                if self.business
                    && (me != BUSY_PARTNER || envelope.kind() == "alert_escalated") =>
            {
                self.client.acknowledge(&author, envelope, "actioned")
            }
            ReplyDue::ConfirmErasure => self.client.confirm_erasure(&author, envelope, 1),
            _ => return None,
        };
        reply.ok()
    }
}
