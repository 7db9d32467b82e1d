//! Forwarding the case system's `outbox/`: each JSON envelope gets its id
//! written back before it is first sent, goes through
//! [`AgencyClient::submit`] (local checks, retries with the same id), and is
//! moved to `sent/` or `refused/` once answered.

use super::{Adapter, AdapterError, beside, io_error, move_into, pretty, write_atomically};
use crate::client::Receipt;
use crate::envelope::complete;
use crate::error::SendError;
use liaison_proto::json;
use liaison_proto::v1::verdict::Outcome as VerdictOutcome;
use liaison_proto::v1::{Envelope, Verdict};
use std::path::{Path, PathBuf};

/// What became of one outbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted, or already accepted under its id: moved to `sent/`.
    Sent(Receipt),
    /// Refused, locally or by the gateway: moved to `refused/` with the reason.
    Refused { code: String, reason: String },
    /// Not answered (unavailable, rate-limited, unreachable): left in
    /// `outbox/`, to be sent again with the same id on the next pass.
    Deferred(String),
}

/// One outbox file forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The file's name in `outbox/`.
    pub file: String,
    /// The envelope's id, if the file held an envelope.
    pub envelope_id: Option<String>,
    pub outcome: Outcome,
}

/// The `.json` files of `dir` the adapter may take, by name.
pub(super) fn json_files(dir: &Path) -> Result<Vec<PathBuf>, AdapterError> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error("read", dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error("read", dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_file() && name.ends_with(".json") && !name.starts_with('.') {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

impl Adapter<'_> {
    /// Sends the envelopes waiting in `outbox/`, in file-name order, and
    /// says what became of each. The pass stops at the first one that could
    /// not be sent now ([`Outcome::Deferred`]): the gateway is down or the
    /// agency over its rate, the rest would wait as long, and the next pass
    /// starts again there, so files go in order.
    pub async fn forward_outbox(&self) -> Result<Vec<Forwarded>, AdapterError> {
        let mut forwarded = Vec::new();
        for path in json_files(&self.dirs.outbox)? {
            let one = self.forward(&path).await?;
            let deferred = matches!(one.outcome, Outcome::Deferred(_));
            forwarded.push(one);
            if deferred {
                break;
            }
        }
        Ok(forwarded)
    }

    async fn forward(&self, path: &Path) -> Result<Forwarded, AdapterError> {
        let file = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(path).map_err(|e| io_error("read", path, e))?;
        let mut envelope: Envelope = match json::from_json("Envelope", &text) {
            Ok(envelope) => envelope,
            Err(e) => {
                let reason = format!("{e} (found before sending: nothing was sent)");
                let outcome = self.refuse(path, "malformed_envelope", &reason, "local")?;
                return Ok(Forwarded {
                    file,
                    envelope_id: None,
                    outcome,
                });
            }
        };
        let before = envelope.clone();
        complete(&mut envelope, self.client.agency(), &self.author);
        if envelope != before {
            // The id must be on disk before the first attempt, so that a
            // re-send after a crash is the same envelope to the gateway.
            let mut filled = pretty(&json::to_json("Envelope", &envelope));
            filled.push('\n');
            write_atomically(path, filled.as_bytes())?;
        }
        let envelope_id = Some(envelope.id.clone());
        let outcome = match self.client.submit(&envelope).await {
            Ok(receipt) => self.sent(path, &envelope, receipt)?,
            Err(SendError::Refused(refusal)) => {
                self.refuse(path, refusal.code(), refusal.reason(), &envelope.id)?
            }
            Err(SendError::Invalid(invalid)) => {
                let reason = format!("{invalid} (found before sending: nothing was sent)");
                self.refuse(path, "invalid_field", &reason, &envelope.id)?
            }
            Err(SendError::Token(e)) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(file, envelope_id = %envelope.id, error = %e, "Envelope deferred to the next pass");
                Outcome::Deferred(e.to_string())
            }
        };
        Ok(Forwarded {
            file,
            envelope_id,
            outcome,
        })
    }

    /// Moves an answered file to `sent/`, its verdict beside it.
    fn sent(
        &self,
        path: &Path,
        envelope: &Envelope,
        receipt: Receipt,
    ) -> Result<Outcome, AdapterError> {
        let verdict = Verdict {
            outcome: if receipt.duplicate {
                VerdictOutcome::Duplicate
            } else {
                VerdictOutcome::Accepted
            } as i32,
            envelope_id: receipt.envelope_id.clone(),
            recipients: receipt.recipients.clone(),
            policy_ids: receipt.policy_ids.clone(),
            ..Default::default()
        };
        let moved = move_into(path, &self.dirs.sent, &envelope.id)?;
        let mut text = pretty(&json::to_json("Verdict", &verdict));
        text.push('\n');
        write_atomically(&beside(&moved, ".verdict.json"), text.as_bytes())?;
        Ok(Outcome::Sent(receipt))
    }

    /// Moves a refused file to `refused/`, the reason beside it.
    fn refuse(
        &self,
        path: &Path,
        code: &str,
        reason: &str,
        suffix: &str,
    ) -> Result<Outcome, AdapterError> {
        let moved = move_into(path, &self.dirs.refused, suffix)?;
        write_atomically(
            &beside(&moved, ".reason.txt"),
            format!("{code}: {reason}\n").as_bytes(),
        )?;
        Ok(Outcome::Refused {
            code: code.to_owned(),
            reason: reason.to_owned(),
        })
    }
}
