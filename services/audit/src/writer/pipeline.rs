//! The writer's pipeline ([`Writer::serve`]): the intake reads ahead, one
//! batch is chained and sent while the one before is being stored,
//! acknowledgements go out behind; and the way back, one batch at a time,
//! when an append fails ([`Writer::append_now`]). The guarantees are the
//! writer's ([`super`]).

use super::{Writer, WriterError};
use crate::batch::{self, InFlight, Outcome};
use crate::intake::{self, BATCH, Intake};
use crate::state::recover;
use async_nats::jetstream;
use async_nats::jetstream::consumer::PullConsumer;
use liaison_core::NatsContext as _;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

/// A batch sent, its acknowledgements awaited, and what it came from.
type Ahead = (InFlight, Intake);

/// How a batch ahead was settled.
#[derive(Debug, PartialEq, Eq)]
enum Settled {
    /// Stored as it was sent.
    AsSent,
    /// Not stored as sent; its records were appended again.
    Again,
    /// Not stored, and the writer is stopping.
    Stopped,
}

impl Writer {
    /// Appends what `intake` still needs, one batch at a time, re-reading the
    /// ledger after a conflict and retrying after an error; `false` if
    /// `shutdown` came first. The way back after a failed commit.
    async fn append_now(
        &self,
        intake: &Intake,
        shutdown: &CancellationToken,
    ) -> Result<bool, WriterError> {
        loop {
            let (pending, tail, end) = {
                let ledger = self.ledger.lock().await;
                (
                    ledger.pending(intake, None),
                    ledger.tail.clone(),
                    ledger.end.clone(),
                )
            };
            if pending.is_empty() {
                return Ok(true);
            }
            let mut flight = batch::send(&self.js, &pending, &tail, &end).await;
            let outcome = match flight.outcome().await {
                Outcome::Stored => {
                    self.stored(&flight.staged).await?;
                    continue;
                }
                failed => failed,
            };
            if let Outcome::Failed(e) = &outcome {
                error!(error = %e, "Ledger append failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(false),
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            } else {
                warn!("LEDGER moved under this writer; re-reading it");
            }
            let recovered = recover(&self.js, &self.signer.verifier()).await;
            match (recovered, outcome) {
                (Ok(ledger), _) => *self.ledger.lock().await = ledger,
                (Err(e), Outcome::Moved) => return Err(e),
                (Err(_), _) => {}
            }
        }
    }

    /// Settles the batch ahead: once stored its records are acknowledged;
    /// if it was not stored as sent they are appended again.
    async fn settle(
        &self,
        (mut flight, intake): Ahead,
        acks: &mpsc::UnboundedSender<Vec<jetstream::Message>>,
        shutdown: &CancellationToken,
    ) -> Result<Settled, WriterError> {
        let settled = match flight.outcome().await {
            Outcome::Stored => {
                self.stored(&flight.staged).await?;
                Settled::AsSent
            }
            Outcome::Moved => {
                warn!("LEDGER moved under this writer; re-reading it");
                *self.ledger.lock().await = recover(&self.js, &self.signer.verifier()).await?;
                self.again(&intake, shutdown).await?
            }
            Outcome::Failed(e) => {
                error!(error = %e, "Ledger append failed; retrying");
                self.again(&intake, shutdown).await?
            }
        };
        if settled != Settled::Stopped {
            let _ = acks.send(intake.messages);
        }
        Ok(settled)
    }

    /// [`Self::append_now`], as a [`Settled`].
    async fn again(
        &self,
        intake: &Intake,
        shutdown: &CancellationToken,
    ) -> Result<Settled, WriterError> {
        Ok(if self.append_now(intake, shutdown).await? {
            Settled::Again
        } else {
            Settled::Stopped
        })
    }

    /// Chains `intake` behind the batch `ahead` (if any) and sends it at
    /// once, then settles `ahead`. Returns the batch now ahead.
    async fn take(
        &self,
        intake: Intake,
        ahead: Option<Ahead>,
        acks: &mpsc::UnboundedSender<Vec<jetstream::Message>>,
        shutdown: &CancellationToken,
    ) -> Result<Option<Ahead>, WriterError> {
        let mut flight = {
            let ledger = self.ledger.lock().await;
            let in_flight = ahead.as_ref().map(|(f, _)| &f.staged);
            let pending = ledger.pending(&intake, in_flight);
            let (tail, end) = in_flight.map_or_else(
                || (ledger.tail.clone(), ledger.end.clone()),
                |s| (s.tail.clone(), s.end.clone()),
            );
            drop(ledger);
            if pending.is_empty() {
                None
            } else {
                Some(batch::send(&self.js, &pending, &tail, &end).await)
            }
        };
        if let Some(mut ahead) = ahead {
            if !matches!(ahead.0.outcome().await, Outcome::Stored) {
                // This batch was sent behind one that was not stored as
                // sent: its first block expects LEDGER to end with that
                // batch's last block, so it is refused (or, if that batch
                // was stored after all and only its acknowledgement lost,
                // stored behind it). Either way its outcome is awaited, so
                // that nothing is in flight while the ledger is re-read and
                // the records appended on their own.
                if let Some(flight) = flight.as_mut() {
                    let _ = flight.outcome().await;
                }
            }
            if self.settle(ahead, acks, shutdown).await? != Settled::AsSent {
                if self.append_now(&intake, shutdown).await? {
                    let _ = acks.send(intake.messages);
                }
                return Ok(None);
            }
        }
        match flight {
            None => {
                let _ = acks.send(intake.messages);
                Ok(None)
            }
            Some(flight) => Ok(Some((flight, intake))),
        }
    }

    /// Appends decision records until `shutdown`; the batch in hand is finished first.
    pub async fn serve(
        &self,
        consumer: PullConsumer,
        shutdown: CancellationToken,
    ) -> Result<(), WriterError> {
        let messages = consumer
            .stream()
            .max_messages_per_batch(BATCH)
            .messages()
            .await
            .nats("the writer's DECISIONS messages")?;
        let (to_writer, mut batches) = mpsc::channel(2);
        let reading = tokio::spawn(intake::read(messages, to_writer, shutdown.clone()));
        let (acks, stored) = mpsc::unbounded_channel();
        let acking = tokio::spawn(intake::acknowledge(stored));
        let mut ahead: Option<Ahead> = None;
        let served = loop {
            // The next batch, or else the outcome of the one ahead.
            let next = match ahead.as_mut() {
                Some((flight, _)) => tokio::select! {
                    biased;
                    intake = batches.recv() => intake,
                    _ = flight.outcome() => None,
                },
                None => tokio::select! {
                    () = shutdown.cancelled() => break Ok(()),
                    intake = batches.recv() => match intake {
                        Some(intake) => Some(intake),
                        None => break Ok(()),
                    },
                },
            };
            let step = match next {
                Some(intake) => self.take(intake, ahead.take(), &acks, &shutdown).await,
                None => match ahead.take() {
                    Some(done) => self.settle(done, &acks, &shutdown).await.map(|_| None),
                    None => break Ok(()),
                },
            };
            match step {
                Ok(next) => ahead = next,
                Err(e) => break Err(e),
            }
            self.forget_acknowledged(&consumer).await;
        };
        // The batch in hand is finished, and its records acknowledged.
        let finished = match ahead.take() {
            Some(done) => self.settle(done, &acks, &shutdown).await.map(|_| ()),
            None => Ok(()),
        };
        drop(batches);
        drop(acks);
        let _ = acking.await;
        served?;
        finished?;
        reading.await?
    }
}
