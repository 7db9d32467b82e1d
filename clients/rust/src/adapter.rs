//! A file-drop adapter between an agency's case-management system and
//! Liaison, for systems that can write and read files but not speak NATS.
//! Four directories under one root:
//!
//! | directory | who writes | what |
//! |---|---|---|
//! | `outbox/` | the case system | envelopes to send, one JSON file each (the protobuf JSON mapping of `liaison.v1.Envelope`, like `deploy/examples/referral.json`) |
//! | `sent/` | the adapter | each file the gateway accepted (or had already accepted), with `<name>.verdict.json` beside it |
//! | `refused/` | the adapter | each file refused, locally or by the gateway, with `<name>.reason.txt` beside it |
//! | `inbox/` | the adapter | each delivery received, as `<envelope id>.json` (the JSON mapping of `liaison.v1.Delivery`) |
//!
//! Forwarding ([`Adapter::forward_outbox`]) is idempotent: before the first
//! attempt an envelope without an id gets one (a UUID), written back into the
//! outbox file, so a file sent again after a crash keeps its id and is
//! answered `DUPLICATE`, never delivered twice. A file that could not be sent
//! now (gateway unavailable, rate-limited, unreachable until the client's
//! retry deadline) stays in `outbox/`, with those after it, for the next pass.
//!
//! Filing ([`Adapter::file_inbox`]) writes each delivery atomically (a
//! temporary file, synced, then renamed) and acknowledges it only once the
//! file is on disk. A delivery that comes again because an acknowledgement
//! was lost finds its file already there and is acknowledged without being
//! written twice.
//!
//! Files whose names start with `.` are the adapter's own temporary files,
//! or the case system's files still being written; they are skipped.

mod filing;
mod outbox;

pub use filing::Filed;
pub use outbox::{Forwarded, Outcome};

use crate::client::AgencyClient;
use crate::error::InboxError;
use crate::tokens::SigningError;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why a pass of the adapter stopped.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("cannot {action} {path}: {reason}")]
    Io {
        action: &'static str,
        path: String,
        reason: String,
    },
    #[error(transparent)]
    Inbox(#[from] InboxError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The gateway checks envelope ids, so this means a broken gateway; the
    /// delivery is not acknowledged.
    #[error("a delivery's envelope id {0:?} cannot name a file")]
    UnfitId(String),
}

fn io_error(action: &'static str, path: &Path, e: std::io::Error) -> AdapterError {
    AdapterError::Io {
        action,
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The adapter's directories.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub outbox: PathBuf,
    pub sent: PathBuf,
    pub refused: PathBuf,
    pub inbox: PathBuf,
}

impl Dirs {
    /// `outbox/`, `sent/`, `refused/` and `inbox/` under `root`.
    pub fn under(root: &Path) -> Self {
        Self {
            outbox: root.join("outbox"),
            sent: root.join("sent"),
            refused: root.join("refused"),
            inbox: root.join("inbox"),
        }
    }

    /// Creates the directories that do not exist.
    pub fn create(&self) -> Result<(), AdapterError> {
        for dir in [&self.outbox, &self.sent, &self.refused, &self.inbox] {
            std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
        }
        Ok(())
    }
}

/// The adapter of one agency: its client, directories, and the author its
/// envelopes are sent by (the system's own id, the token's subject).
pub struct Adapter<'a> {
    client: &'a AgencyClient,
    dirs: Dirs,
    author: String,
}

impl<'a> Adapter<'a> {
    /// An adapter over `dirs` (created if missing) sending as `author`.
    pub fn new(
        client: &'a AgencyClient,
        dirs: Dirs,
        author: impl Into<String>,
    ) -> Result<Self, AdapterError> {
        dirs.create()?;
        Ok(Self {
            client,
            dirs,
            author: author.into(),
        })
    }

    pub fn dirs(&self) -> &Dirs {
        &self.dirs
    }
}

/// Writes `bytes` to `path` so that a reader sees either nothing or all of
/// it: a temporary file beside it, synced, renamed, and the directory synced.
/// A new file is readable by its owner only (deliveries carry personal
/// data); a replaced one keeps its permissions.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AdapterError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0o600);
        options.mode(mode);
    }
    let write = || -> std::io::Result<()> {
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        io_error("write", path, e)
    })
}

/// Moves `from` into `dir` under its own name, or under `<stem>-<suffix>.<ext>`
/// if that name is taken; returns where it went.
fn move_into(from: &Path, dir: &Path, suffix: &str) -> Result<PathBuf, AdapterError> {
    let name = from.file_name().map(Path::new).unwrap_or(from);
    let mut to = dir.join(name);
    if to.exists() {
        let stem = name.file_stem().unwrap_or_default().to_string_lossy();
        let ext = name.extension().unwrap_or_default().to_string_lossy();
        to = dir.join(format!("{stem}-{suffix}.{ext}"));
    }
    std::fs::rename(from, &to).map_err(|e| io_error("move", from, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync", dir, e))?;
    Ok(to)
}

/// `dir/<name without extension><suffix>`: the file written beside a moved one.
fn beside(moved: &Path, suffix: &str) -> PathBuf {
    let stem = moved.file_stem().unwrap_or_default().to_string_lossy();
    moved.with_file_name(format!("{stem}{suffix}"))
}

/// A JSON document as the adapter writes it: indented, for people reading the directories too.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_whole_and_private_and_moves_never_overwrite() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("a.json");
        write_atomically(&path, b"one").unwrap_or_else(|e| panic!("{e}"));
        write_atomically(&path, b"two").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some("two"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
        let into = dir.path().join("sent");
        std::fs::create_dir(&into).unwrap_or_else(|e| panic!("{e}"));
        let first = move_into(&path, &into, "id-1").unwrap_or_else(|e| panic!("{e}"));
        write_atomically(&path, b"three").unwrap_or_else(|e| panic!("{e}"));
        let second = move_into(&path, &into, "id-2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, into.join("a.json"));
        assert_eq!(second, into.join("a-id-2.json"));
        assert_eq!(
            beside(&second, ".reason.txt"),
            into.join("a-id-2.reason.txt")
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["sent"], "no temporary file is left behind");
    }
}
