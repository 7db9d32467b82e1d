//! The file behind the records the gateway keeps for a later attempt
//! ([`crate::records::Recorder::keep`]), so that a refusal recorded while the
//! store could not take its record is not lost when the gateway stops or
//! crashes before the store takes it.
//!
//! Each kept record is appended (its length as 4 bytes little-endian, then
//! the encoded `AuditRecord`) and flushed to disk before the refusal it
//! records is answered; the file is emptied once every kept record is
//! stored, and rewritten with only the records still waiting when it has
//! grown to twice [`crate::records::MAX_KEPT`]. A gateway started again
//! stores what the file holds first, in order. A record stored just before a
//! crash and stored again after it is chained once: DECISIONS de-duplicates
//! on its record id, and the ledger writer remembers recent record ids.
//!
//! A record cut short by a crash while it was being written (its refusal was
//! never answered) is dropped with a warning, as is everything after an
//! unreadable record.

use liaison_proto::v1::AuditRecord;
use prost::Message as _;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use tracing::warn;

/// Largest record read back (records hold ids and codes, a few hundred bytes).
const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Why the kept-records file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("kept records file {path}: {reason}")]
pub struct SpoolError {
    path: PathBuf,
    reason: String,
}

/// The kept-records file, open for appending.
pub struct Spool {
    path: PathBuf,
    file: File,
    /// Records appended since the file was last emptied or rewritten.
    appended: usize,
}

impl Spool {
    /// Opens (creating it and its directory if need be) the file at `path`
    /// and reads the records it holds, in the order they were kept.
    pub fn open(path: &Path) -> Result<(Self, Vec<AuditRecord>), SpoolError> {
        let fail = |reason: String| SpoolError {
            path: path.to_owned(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| fail(format!("opening: {e}")))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| fail(format!("reading: {e}")))?;
        let records = parse(path, &bytes);
        let spool = Self {
            path: path.to_owned(),
            file,
            appended: records.len(),
        };
        Ok((spool, records))
    }

    /// Appends `record` and flushes it to disk.
    pub fn append(&mut self, record: &AuditRecord) -> Result<(), SpoolError> {
        let bytes = frame(record);
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| self.error(format!("appending a record: {e}")))?;
        self.appended += 1;
        Ok(())
    }

    /// Records appended since the file was last emptied or rewritten.
    pub fn appended(&self) -> usize {
        self.appended
    }

    /// Empties the file: every kept record is stored.
    pub fn clear(&mut self) -> Result<(), SpoolError> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| self.error(format!("emptying: {e}")))?;
        self.appended = 0;
        Ok(())
    }

    /// Replaces the file's content with `records` (those still waiting),
    /// written beside it and renamed over it.
    pub fn rewrite<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a AuditRecord>,
    ) -> Result<(), SpoolError> {
        let next = self.path.with_extension("rewrite");
        let mut count = 0;
        let written = (|| -> std::io::Result<File> {
            let mut out = File::create(&next)?;
            for record in records {
                out.write_all(&frame(record))?;
                count += 1;
            }
            out.sync_all()?;
            std::fs::rename(&next, &self.path)?;
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            OpenOptions::new().append(true).open(&self.path)
        })()
        .map_err(|e| self.error(format!("rewriting: {e}")))?;
        self.file = written;
        self.appended = count;
        Ok(())
    }

    fn error(&self, reason: String) -> SpoolError {
        SpoolError {
            path: self.path.clone(),
            reason,
        }
    }
}

fn frame(record: &AuditRecord) -> Vec<u8> {
    let body = record.encode_to_vec();
    let mut bytes = Vec::with_capacity(4 + body.len());
    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&body);
    bytes
}

/// The records in `bytes`, up to the first that is cut short or unreadable.
fn parse(path: &Path, mut bytes: &[u8]) -> Vec<AuditRecord> {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let Some((head, rest)) = bytes.split_first_chunk::<4>() else {
            warn!(path = %path.display(), "Kept records file ends in a cut-short record; dropped");
            break;
        };
        let len = u32::from_le_bytes(*head) as usize;
        let body = rest.get(..len).filter(|_| len <= MAX_RECORD_BYTES);
        let Some(record) = body.and_then(|b| AuditRecord::decode(b).ok()) else {
            warn!(
                path = %path.display(),
                kept = records.len(),
                "Kept records file has a cut-short or unreadable record; it and what follows dropped"
            );
            break;
        };
        records.push(record);
        bytes = &rest[len..];
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> AuditRecord {
        AuditRecord {
            record_id: id.into(),
            code: "malformed".into(),
            ..Default::default()
        }
    }

    fn ids(records: &[AuditRecord]) -> Vec<&str> {
        records.iter().map(|r| r.record_id.as_str()).collect()
    }

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn records_survive_a_reopen_in_order_and_are_gone_once_cleared() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("gateway/kept-records");
        let (mut spool, found) = Spool::open(&path)?;
        assert!(found.is_empty());
        for id in ["a", "b", "c"] {
            spool.append(&record(id))?;
        }
        drop(spool);
        let (mut spool, found) = Spool::open(&path)?;
        assert_eq!(ids(&found), ["a", "b", "c"]);
        assert_eq!(spool.appended(), 3);
        spool.clear()?;
        spool.append(&record("d"))?;
        drop(spool);
        let (_, found) = Spool::open(&path)?;
        assert_eq!(ids(&found), ["d"]);
        Ok(())
    }

    #[test]
    fn a_rewrite_keeps_only_the_records_given() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kept-records");
        let (mut spool, _) = Spool::open(&path)?;
        for id in ["a", "b", "c"] {
            spool.append(&record(id))?;
        }
        let waiting = [record("b"), record("c")];
        spool.rewrite(&waiting)?;
        spool.append(&record("e"))?;
        assert_eq!(spool.appended(), 3);
        drop(spool);
        let (_, found) = Spool::open(&path)?;
        assert_eq!(ids(&found), ["b", "c", "e"]);
        Ok(())
    }

    #[test]
    fn a_record_cut_short_is_dropped_and_the_ones_before_kept() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kept-records");
        let (mut spool, _) = Spool::open(&path)?;
        spool.append(&record("a"))?;
        spool.append(&record("b"))?;
        drop(spool);
        let full = std::fs::read(&path)?;
        for cut in [full.len() - 1, full.len() - 5, full.len() / 2 + 2] {
            std::fs::write(&path, &full[..cut])?;
            let (_, found) = Spool::open(&path)?;
            assert_eq!(ids(&found), ["a"], "cut at {cut} of {}", full.len());
        }
        // A length past the limit is not believed.
        let mut huge = full.clone();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(b"junk");
        std::fs::write(&path, &huge)?;
        let (_, found) = Spool::open(&path)?;
        assert_eq!(ids(&found), ["a", "b"]);
        Ok(())
    }

    #[test]
    fn a_path_that_cannot_be_a_file_is_named() -> TestResult {
        let dir = tempfile::tempdir()?;
        let err = Spool::open(dir.path()).err().map(|e| e.to_string());
        let named = dir.path().display().to_string();
        assert!(err.as_ref().is_some_and(|e| e.contains(&named)), "{err:?}");
        Ok(())
    }
}
