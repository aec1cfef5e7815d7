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

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::store::{is_data_file, sync_dir, TEMP_SUFFIX};
use crate::{Error, Result, Store};

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
/// Reads only the footer: cheap enough for every file at start-up.
pub(crate) fn footer_problem(path: &Path) -> Option<String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return Some(format!("cannot be opened: {e}")),
    };
    match file.metadata() {
        Ok(m) if m.len() == 0 => return Some("zero-length file".to_owned()),
        Ok(_) => {}
        Err(e) => return Some(format!("cannot be inspected: {e}")),
    }
    let reader = match SerializedFileReader::new(file) {
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
    /// into the quarantine; returns what moved. Reads each data file's footer only: a file
    /// whose pages are damaged behind a sound footer is caught when it is read (see
    /// [`crate::EventIndex`]).
    ///
    /// # Errors
    /// The store cannot be listed, or a damaged file cannot be moved.
    pub fn quarantine_damaged(&self, stray_after: Duration) -> Result<Vec<Quarantined>> {
        let mut moved = Vec::new();
        let now = SystemTime::now();
        for (_, dir) in self.list_partitions()? {
            for entry in std::fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
                let entry = entry.map_err(Error::io("list", &dir))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let path = entry.path();
                let reason = if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                    let age = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| now.duration_since(t).ok())
                        .unwrap_or_default();
                    (age >= stray_after).then(|| {
                        format!(
                            "stray temporary file of a write that never finished ({} s old)",
                            age.as_secs()
                        )
                    })
                } else if is_data_file(&name) {
                    footer_problem(&path)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    moved.push(self.quarantine(&path, reason)?);
                }
            }
        }
        Ok(moved)
    }

    /// Moves one file into the quarantine, keeping its day folder; logs it and counts it.
    ///
    /// # Errors
    /// The file cannot be moved.
    pub fn quarantine(&self, path: &Path, reason: String) -> Result<Quarantined> {
        let day_dir = path
            .parent()
            .and_then(Path::file_name)
            .map(PathBuf::from)
            .unwrap_or_default();
        let target_dir = self.root().join(QUARANTINE_DIR).join(day_dir);
        std::fs::create_dir_all(&target_dir)
            .map_err(Error::io("create quarantine", &target_dir))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut to = target_dir.join(&name);
        let mut n = 1;
        while to.exists() {
            to = target_dir.join(format!("{name}.{n}"));
            n += 1;
        }
        std::fs::rename(path, &to).map_err(Error::io("move into quarantine", path))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        sync_dir(&target_dir)?;
        self.count_quarantined();
        tracing::error!(
            file = %path.display(),
            moved_to = %to.display(),
            reason = %reason,
            "quarantined a damaged store file; it is no longer read"
        );
        Ok(Quarantined {
            from: path.to_owned(),
            to,
            reason,
        })
    }
}
