//! Damaged files found in the store are moved aside, never read as data and never a panic.
//!
//! A file is damaged when it is zero-length, is not a Parquet file (a truncated file has no
//! footer), has no `event_id` column, or fails to read its `event_id` column. A temporary file
//! left by a write that never finished (a crash between create and rename) is stray once it is
//! older than the grace period given: younger ones may belong to a writer that is still running.
//!
//! Each goes to `<root>/quarantine/date=YYYY-MM-DD/<name>` with an `error` log line that names
//! the file, where it went and why. Queries and the index never look there; an operator can
//! inspect the file and delete it, or move it back if it was readable after all.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::backend::{Backend, Source};
use crate::store::{is_data_file, key_name, TEMP_SUFFIX};
use crate::{Result, Store};

/// Sub-folder of the store holding quarantined files (never read as data).
pub const QUARANTINE_DIR: &str = "quarantine";

/// One file moved into the quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Where the file was.
    pub from: PathBuf,
    /// Where it is now.
    pub to: PathBuf,
    /// Why it was moved, for the log and the operator.
    pub reason: String,
}

/// Why a data file cannot be read as builds, or `None` when its footer and schema are sound.
/// Reads only the footer: cheap enough for every local file at start-up.
pub(crate) fn footer_problem(source: Source) -> Option<String> {
    if parquet::file::reader::Length::len(&source) == 0 {
        return Some("zero-length file".to_owned());
    }
    let reader = match SerializedFileReader::new(source) {
        Ok(r) => r,
        Err(e) => return Some(format!("not a readable Parquet file (truncated?): {e}")),
    };
    let schema = reader.metadata().file_metadata().schema_descr();
    if !schema.columns().iter().any(|c| c.name() == "event_id") {
        return Some("not a build file: no `event_id` column".to_owned());
    }
    None
}

impl Store {
    /// Moves every damaged data file and every stray temporary file older than `stray_after`
    /// into the quarantine; returns what moved. Locally it reads each data file's footer: a
    /// file whose pages are damaged behind a sound footer is caught when it is read (see
    /// [`crate::EventIndex`]). On an object store, where a PUT cannot leave half a file and
    /// reading every footer would cost a request per object at every start, only what the
    /// listing shows is checked here (empty objects, objects too short to be Parquet); the
    /// rest is caught when read.
    ///
    /// # Errors
    /// The store cannot be listed, or a damaged file cannot be moved.
    pub fn quarantine_damaged(&self, stray_after: Duration) -> Result<Vec<Quarantined>> {
        let mut moved = Vec::new();
        let now = SystemTime::now();
        let local = matches!(self.backend(), Backend::Local(_));
        for entry in self.partition_entries()? {
            let Some((folder, name)) = entry.key.split_once('/') else {
                continue;
            };
            if !folder.starts_with("date=") || name.contains('/') {
                continue;
            }
            let reason = if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                let modified = std::time::UNIX_EPOCH
                    + Duration::from_micros(u64::try_from(entry.modified).unwrap_or(0));
                let age = now.duration_since(modified).unwrap_or_default();
                (age >= stray_after).then(|| {
                    format!(
                        "stray temporary file of a write that never finished ({} s old)",
                        age.as_secs()
                    )
                })
            } else if !is_data_file(name) {
                None
            } else if local {
                match self.backend().source(&entry.key) {
                    Ok(source) => footer_problem(source),
                    Err(e) => Some(format!("cannot be opened: {e}")),
                }
            } else if entry.size < 12 {
                Some(format!(
                    "{} bytes: too short to be a Parquet file",
                    entry.size
                ))
            } else {
                None
            };
            if let Some(reason) = reason {
                moved.push(self.quarantine(&entry.key, reason)?);
            }
        }
        Ok(moved)
    }

    /// Moves one file (by its key) into the quarantine, keeping its day folder; logs it and
    /// counts it.
    ///
    /// # Errors
    /// The file cannot be moved.
    pub fn quarantine(&self, key: &str, reason: String) -> Result<Quarantined> {
        let name = key_name(key);
        let day_dir = key
            .strip_suffix(name)
            .map(|d| d.trim_end_matches('/'))
            .and_then(|d| d.rsplit('/').next())
            .unwrap_or_default();
        let target_dir = format!("{QUARANTINE_DIR}/{day_dir}");
        let mut to = format!("{target_dir}/{name}");
        let mut n = 1;
        while self.backend().exists(&to)? {
            to = format!("{target_dir}/{name}.{n}");
            n += 1;
        }
        self.backend().rename(key, &to)?;
        self.count_quarantined();
        let (from, to) = (self.backend().locate(key), self.backend().locate(&to));
        tracing::error!(
            file = %from.display(),
            moved_to = %to.display(),
            reason = %reason,
            "quarantined a damaged store file; it is no longer read"
        );
        Ok(Quarantined { from, to, reason })
    }
}
