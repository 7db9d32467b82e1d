//! Asking the configured witnesses to cosign each checkpoint
//! (docs/decisions/0023-witnesses.md), and checking that the ledger is
//! witnessed.
//!
//! After each checkpoint, the audit service sends it to every witness that
//! has not cosigned it yet, by C2SP tlog-witness `add-checkpoint` with the
//! RFC 6962 consistency proof from the size that witness cosigned last
//! (learnt from its 409 answer when not known). It checks each cosignature
//! it gets and stores the checkpoint with it in CHECKPOINTS, beside the
//! log's own note. A witness that is down is asked again every checkpoint
//! interval, so it catches up when it returns; records meanwhile are
//! accepted as ever, and `audit verify` reports the tail no quorum has
//! cosigned yet.

use crate::checkpoint::NoteVerifier;
use crate::merkle::{Hash, consistency_proof};
use crate::state::Ledger;
use crate::witness::{CosignatureVerifier, split_note};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use liaison_core::{NatsContext as _, subjects};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// How long one request to a witness may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from a witness.
const MAX_ANSWER: usize = 64 * 1024;

/// A configured witness.
pub struct Remote {
    url: String,
    verifier: CosignatureVerifier,
    /// The size it cosigned last, as far as the audit service knows.
    cosigned: u64,
}

impl Remote {
    /// From the configuration's `url` and verifier key.
    pub fn new(url: &str, vkey: &str) -> Result<Self, String> {
        let verifier = CosignatureVerifier::parse(vkey).map_err(|e| e.to_string())?;
        if !url.starts_with("http://") {
            return Err(format!(
                "witness {}: url {url:?} must be http://HOST:PORT[/PREFIX] (cosignatures are signed; TLS can be a proxy's)",
                verifier.name()
            ));
        }
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            verifier,
            cosigned: 0,
        })
    }
}

/// A witness's HTTP answer.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// POSTs `body` to `url` over HTTP/1.1 (one request per connection).
async fn post(url: &str, body: &str) -> Result<Answer, String> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream
            .take(MAX_ANSWER as u64 + 4096)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(raw)
    };
    let raw = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {TIMEOUT:?}"))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("not an HTTP answer")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    let mut content_type = String::new();
    let mut chunked = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-type" {
                content_type = value.to_owned();
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let body = if chunked {
        unchunk(body)
    } else {
        body.to_owned()
    };
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

/// The body of a chunked HTTP/1.1 answer.
fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Asks `remote` to cosign `note` (of `size` records); the note with its
/// cosignature when it does.
async fn ask(
    remote: &mut Remote,
    note: &str,
    size: u64,
    ledger: &Mutex<Ledger>,
) -> Result<Option<String>, String> {
    let name = remote.verifier.name().to_owned();
    for _ in 0..3 {
        let old = remote.cosigned;
        if old >= size {
            return Ok(None);
        }
        let proof: Vec<Hash> = if old == 0 {
            vec![]
        } else {
            let ledger = ledger.lock().await;
            let leaves = ledger
                .leaves
                .get(..size as usize)
                .ok_or("the ledger is shorter than its checkpoint")?;
            consistency_proof(old, leaves).map_err(|e| e.to_string())?
        };
        let mut body = format!("old {old}\n");
        for hash in &proof {
            body.push_str(&B64.encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(note);
        let answer = post(&format!("{}/add-checkpoint", remote.url), &body).await?;
        match answer.status {
            200 => {
                let cosigned = format!("{note}{}", answer.body);
                remote
                    .verifier
                    .verify(&cosigned)
                    .map_err(|e| format!("{name} answered, but {e}"))?;
                remote.cosigned = size;
                return Ok(Some(cosigned));
            }
            409 if answer.content_type.starts_with("text/x.tlog.size") => {
                let last: u64 = answer
                    .body
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name} answered 409 with no size"))?;
                if last > size {
                    return Err(format!(
                        "{name} has cosigned {last} records, more than this ledger's {size}: the ledger was cut short, or rewritten"
                    ));
                }
                remote.cosigned = last;
            }
            status => {
                return Err(format!("{name} refused ({status}): {}", answer.body.trim()));
            }
        }
    }
    Err(format!("{name} kept answering with another size"))
}

/// Asks every witness to cosign the latest checkpoint, whenever there is a
/// new one and every `interval` (a witness that was down catches up), and
/// stores each cosigned checkpoint in CHECKPOINTS. Until `shutdown`.
pub async fn run(
    js: async_nats::jetstream::Context,
    ledger: Arc<Mutex<Ledger>>,
    mut remotes: Vec<Remote>,
    mut latest: watch::Receiver<Option<(String, u64)>>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = latest.changed() => if changed.is_err() { return },
            _ = ticks.tick() => {}
        }
        let Some((note, size)) = latest.borrow_and_update().clone() else {
            continue;
        };
        for remote in &mut remotes {
            if remote.cosigned >= size {
                continue;
            }
            match ask(remote, &note, size, &ledger).await {
                Ok(Some(cosigned)) => {
                    let stored = js
                        .publish(subjects::LEDGER_CHECKPOINTS, cosigned.into())
                        .await
                        .nats("publish a cosigned checkpoint");
                    match stored {
                        Ok(ack) => match ack.await {
                            Ok(_) => info!(
                                witness = remote.verifier.name(),
                                size, "Checkpoint cosigned"
                            ),
                            Err(e) => error!(error = %e, "A cosigned checkpoint was not stored"),
                        },
                        Err(e) => error!(error = %e, "A cosigned checkpoint was not stored"),
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(error = %e, witness = remote.verifier.name(), "Checkpoint not cosigned; asked again later")
                }
            }
        }
    }
}

/// Whether the ledger is witnessed: what each witness cosigned, and the
/// largest checkpoint a quorum of them did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessing {
    pub quorum: usize,
    /// Each configured witness with the largest checkpoint it cosigned that
    /// the verified ledger matches (0: none).
    pub witnesses: Vec<(String, u64)>,
    /// The largest size cosigned by at least `quorum` of them (0: none).
    pub witnessed: u64,
    /// The verified ledger's size.
    pub size: u64,
}

impl Witnessing {
    /// Checks the cosignatures in `notes` (CHECKPOINTS as stored) by
    /// `witnesses`: only on checkpoints the log signed, of the verified
    /// ledger (at most `size` records, each of which the verification
    /// matched against the tree).
    pub fn of(
        log: &NoteVerifier,
        notes: &[String],
        witnesses: &[CosignatureVerifier],
        quorum: usize,
        size: u64,
    ) -> Self {
        let mut roots: BTreeMap<u64, Hash> = BTreeMap::new();
        for note in notes {
            if let Ok(cp) = log.open(note)
                && cp.size <= size
            {
                roots.entry(cp.size).or_insert(cp.root);
            }
        }
        let mut best: Vec<(String, u64)> =
            witnesses.iter().map(|w| (w.name().to_owned(), 0)).collect();
        for note in notes {
            let Ok(cp) = log.open(note) else { continue };
            if roots.get(&cp.size) != Some(&cp.root) || split_note(note).is_none() {
                continue;
            }
            for (witness, (_, largest)) in witnesses.iter().zip(best.iter_mut()) {
                if witness.verify(note).is_ok() {
                    *largest = (*largest).max(cp.size);
                }
            }
        }
        let mut sizes: Vec<u64> = best.iter().map(|(_, s)| *s).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let witnessed = if quorum == 0 {
            size
        } else {
            sizes.get(quorum - 1).copied().unwrap_or(0)
        };
        Self {
            quorum,
            witnesses: best,
            witnessed,
            size,
        }
    }

    /// Whether a quorum has cosigned some checkpoint of the ledger (or none
    /// is required).
    pub fn holds(&self) -> bool {
        self.quorum == 0 || self.size == 0 || self.witnessed > 0
    }

    /// In words, for `audit verify`.
    pub fn words(&self) -> String {
        if self.quorum == 0 {
            return "no witness quorum is configured (audit.witness_quorum = 0)".into();
        }
        let each: Vec<String> = self
            .witnesses
            .iter()
            .map(|(name, size)| {
                if *size == 0 {
                    format!("{name}: no cosignature")
                } else {
                    format!("{name} up to {size}")
                }
            })
            .collect();
        if !self.holds() {
            let missing: Vec<&str> = self
                .witnesses
                .iter()
                .filter(|(_, s)| *s == 0)
                .map(|(n, _)| n.as_str())
                .collect();
            return format!(
                "NOT WITNESSED: no checkpoint of this ledger is cosigned by {} of its witnesses (missing cosignature by {}; {})",
                self.quorum,
                missing.join(", "),
                each.join("; ")
            );
        }
        let tail = self.size - self.witnessed;
        format!(
            "witnessed: {} records cosigned by a quorum of {} ({}){}",
            self.witnessed,
            self.quorum,
            each.join("; "),
            if tail > 0 {
                format!("; the last {tail} records are not cosigned yet")
            } else {
                String::new()
            }
        )
    }
}

/// The witnesses `config` names.
pub fn verifiers(
    config: &liaison_runtime::config::Config,
) -> Result<Vec<CosignatureVerifier>, String> {
    config
        .audit
        .witnesses
        .iter()
        .map(|w| CosignatureVerifier::parse(&w.key).map_err(|e| e.to_string()))
        .collect()
}
