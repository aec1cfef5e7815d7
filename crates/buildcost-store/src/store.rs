//! The folder of day partitions and the atomic Parquet writer.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{Array, StringArray};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::{Error, EventIndex, Result};

/// Sub-folder of the store holding dead letters (never read as data).
pub const DEAD_LETTER_DIR: &str = "dead-letter";
/// Sub-folder of the store holding derived per-day objects (the figures engine's day
/// rollups): `_rollups/<version>/<YYYY-MM-DD>.…`, deleted with their day by the retention.
pub const ROLLUPS_DIR: &str = "_rollups";
const PARTITION_PREFIX: &str = "date=";
pub(crate) const DATA_SUFFIX: &str = ".parquet";
pub(crate) const TEMP_SUFFIX: &str = ".parquet.tmp";

/// One stored Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DataFile {
    pub day: NaiveDate,
    pub path: PathBuf,
    /// Size in bytes, as listed.
    pub size: u64,
    /// Last modification, in microseconds since the epoch, as listed: with the size and the
    /// name it tells a file rewritten under the same name.
    pub modified: i64,
}

impl DataFile {
    /// The file's name inside its day's folder.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A store rooted at a local folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Files this process moved into the quarantine (shared by clones).
    quarantined: Arc<AtomicU64>,
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync folder", dir))
}

impl Store {
    /// Opens (and creates if needed) the store at `root`.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(Error::io("create store folder", &root))?;
        Ok(Store {
            root,
            quarantined: Arc::default(),
        })
    }

    /// How many files this process (through any clone of this store) has quarantined.
    pub fn quarantined(&self) -> u64 {
        self.quarantined.load(Ordering::Relaxed)
    }

    pub(crate) fn count_quarantined(&self) {
        self.quarantined.fetch_add(1, Ordering::Relaxed);
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of one day.
    pub fn partition_dir(&self, day: NaiveDate) -> PathBuf {
        self.root
            .join(format!("{PARTITION_PREFIX}{}", day.format("%Y-%m-%d")))
    }

    /// Writes `batch` as `<root>/date=<day>/<name>.parquet`, atomically: a reader sees the whole
    /// file or none of it, and once this returns the file survives a power cut. Writing the same
    /// name again replaces the file (replays are idempotent).
    ///
    /// # Errors
    /// Any I/O or Parquet error; the temporary file is removed and nothing is visible.
    pub fn write_batch(&self, day: NaiveDate, name: &str, batch: &RecordBatch) -> Result<PathBuf> {
        self.stage(day, name, batch)?.publish()
    }

    /// The first half of [`Store::write_batch`]: `batch` written and synced to a hidden
    /// temporary file in its day's folder, not yet visible. Staging several days (in parallel)
    /// and publishing them only once all are staged makes a failure of one leave nothing of any
    /// visible.
    ///
    /// # Errors
    /// Any I/O or Parquet error; the temporary file is removed.
    pub fn stage(&self, day: NaiveDate, name: &str, batch: &RecordBatch) -> Result<Staged> {
        let dir = self.partition_dir(day);
        let created = !dir.exists();
        std::fs::create_dir_all(&dir).map_err(Error::io("create partition", &dir))?;
        if created {
            sync_dir(&self.root)?;
        }
        let final_path = dir.join(format!("{name}{DATA_SUFFIX}"));
        let temp_path = dir.join(format!(".{name}{TEMP_SUFFIX}"));
        if let Err(e) = write_parquet(&temp_path, batch) {
            let _ = std::fs::remove_file(&temp_path);
            return Err(e);
        }
        Ok(Staged {
            dir,
            temp_path,
            final_path,
        })
    }

    /// Every data file, sorted by day then path (a stable order, so results are reproducible).
    ///
    /// # Errors
    /// The store folder cannot be listed.
    pub fn list_files(&self) -> Result<Vec<DataFile>> {
        let mut files = Vec::new();
        for (day, dir) in self.list_partitions()? {
            let entries = std::fs::read_dir(&dir).map_err(Error::io("list", &dir))?;
            for path in data_files(&dir, entries)? {
                // A file that went between the listing and this look (retention, the
                // quarantine) is left out, as a later listing would.
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
                files.push(DataFile {
                    day,
                    path,
                    size: meta.len(),
                    modified,
                });
            }
        }
        files.sort();
        Ok(files)
    }

    /// Every `date=YYYY-MM-DD` folder with its day, sorted by day.
    ///
    /// # Errors
    /// The store folder cannot be listed.
    pub fn list_partitions(&self) -> Result<Vec<(NaiveDate, PathBuf)>> {
        let mut parts = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(Error::io("list", &self.root))? {
            let entry = entry.map_err(Error::io("list", &self.root))?;
            let name = entry.file_name();
            let Some(day) = name
                .to_str()
                .and_then(|n| n.strip_prefix(PARTITION_PREFIX))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if entry.path().is_dir() {
                parts.push((day, entry.path()));
            }
        }
        parts.sort();
        Ok(parts)
    }

    /// The index of stored event ids, reading each day from this store when an event of that
    /// day first arrives (see [`EventIndex`]).
    pub fn event_index(&self) -> EventIndex {
        EventIndex::for_store(self.clone())
    }

    /// The data files of one day, sorted (none when the day has no folder, or something
    /// other than a folder stands in its place, as [`Store::list_files`] sees it).
    ///
    /// # Errors
    /// The day's folder exists but cannot be listed.
    pub fn day_files(&self, day: NaiveDate) -> Result<Vec<PathBuf>> {
        let dir = self.partition_dir(day);
        if dir.exists() && !dir.is_dir() {
            return Ok(Vec::new());
        }
        match std::fs::read_dir(&dir) {
            Ok(entries) => data_files(&dir, entries),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("list", &dir)(e)),
        }
    }

    /// Appends the hashed `event_id`s of the file at `path` to `ids`; `false` when the column
    /// cannot be read and the file was quarantined instead (see [`Store::quarantine`]): its ids
    /// are then unknown, so a replay of its events stores them again rather than losing them.
    ///
    /// # Errors
    /// A damaged file cannot be moved.
    pub(crate) fn read_ids(&self, path: &Path, ids: &mut Vec<u128>) -> Result<bool> {
        let mut hashes = Vec::new();
        match for_each_event_id(path, |id| hashes.push(EventIndex::hash(id))) {
            Ok(()) => {
                ids.append(&mut hashes);
                Ok(true)
            }
            Err(e) => {
                self.quarantine(path, format!("its event ids cannot be read: {e}"))?;
                Ok(false)
            }
        }
    }

    /// How many stored rows carry each `event_id` (rows stored twice show up as 2): for checks
    /// that nothing was stored twice.
    ///
    /// # Errors
    /// A file cannot be read; the error names it.
    pub fn event_id_counts(&self) -> Result<std::collections::HashMap<String, u32>> {
        let mut counts = std::collections::HashMap::new();
        for file in self.list_files()? {
            for_each_event_id(&file.path, |id| {
                *counts.entry(id.to_owned()).or_insert(0) += 1;
            })?;
        }
        Ok(counts)
    }

    /// Deletes every day partition older than `retention_days` before `today`
    /// (a day is kept while `day >= today - retention_days`). Returns the deleted days.
    ///
    /// # Errors
    /// A partition cannot be deleted.
    pub fn apply_retention(&self, today: NaiveDate, retention_days: u32) -> Result<Vec<NaiveDate>> {
        let oldest_kept = today - chrono::Duration::days(i64::from(retention_days));
        let mut deleted = Vec::new();
        for (day, dir) in self.list_partitions()? {
            if day < oldest_kept {
                std::fs::remove_dir_all(&dir).map_err(Error::io("delete partition", &dir))?;
                deleted.push(day);
            }
        }
        if !deleted.is_empty() {
            sync_dir(&self.root)?;
            tracing::info!(days = deleted.len(), oldest_kept = %oldest_kept, "retention deleted old partitions");
        }
        // Derived objects of deleted days go with them.
        let old = |name: &str| {
            name.get(..10)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .is_some_and(|d| d < oldest_kept)
        };
        let rollups = self.root.join(ROLLUPS_DIR);
        if let Ok(versions) = std::fs::read_dir(&rollups) {
            for version in versions.flatten() {
                let prefix = format!("{ROLLUPS_DIR}/{}", version.file_name().to_string_lossy());
                self.delete_blobs(&prefix, &old)?;
            }
        }
        Ok(deleted)
    }
}

impl Store {
    /// Calls `f` with every batch of `columns` (by name) of one stored file.
    ///
    /// # Errors
    /// The file cannot be read, or lacks one of `columns`; or `f` failed.
    pub fn read_columns<E: From<Error>>(
        &self,
        file: &DataFile,
        columns: &[&str],
        f: &mut dyn FnMut(&RecordBatch) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let path = &file.path;
        let parquet_err = |source| Error::Parquet {
            path: path.clone(),
            source,
        };
        let handle = File::open(path).map_err(Error::io("open", path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(handle).map_err(parquet_err)?;
        let roots = columns
            .iter()
            .map(|c| builder.schema().index_of(c))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|source| Error::Arrow {
                path: path.clone(),
                source,
            })?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(16_384)
            .build()
            .map_err(parquet_err)?;
        for batch in reader {
            let batch = batch.map_err(|source| Error::Arrow {
                path: path.clone(),
                source,
            })?;
            f(&batch)?;
        }
        Ok(())
    }

    /// The bytes of an auxiliary object of the store (a cache file such as a day's rollup),
    /// by its key relative to the root (`_rollups/…`); `None` when there is none.
    ///
    /// # Errors
    /// The object exists but cannot be read.
    pub fn read_blob(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.root.join(key);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path)(e)),
        }
    }

    /// Writes an auxiliary object atomically (a reader sees the old bytes or the new ones);
    /// the same key replaces it.
    ///
    /// # Errors
    /// The object cannot be written.
    pub fn write_blob(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.root.join(key);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.tmp"));
        let result = std::fs::write(&temp, bytes)
            .map_err(Error::io("write", &temp))
            .and_then(|()| std::fs::rename(&temp, &path).map_err(Error::io("rename", &path)));
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    /// Deletes the auxiliary objects under `prefix` (a key relative to the root) for which
    /// `doomed` says so; returns how many went.
    ///
    /// # Errors
    /// The folder cannot be listed or an object cannot be deleted.
    pub fn delete_blobs(&self, prefix: &str, doomed: &dyn Fn(&str) -> bool) -> Result<usize> {
        let dir = self.root.join(prefix);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io("list", &dir)(e)),
        };
        let mut deleted = 0;
        for entry in entries {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if doomed(&name) {
                std::fs::remove_file(entry.path()).map_err(Error::io("delete", entry.path()))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    let file = File::create(path).map_err(Error::io("create", path))?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!("buildcost {}", env!("CARGO_PKG_VERSION")));
    // Instants of nearby builds differ little: deltas pack them into a few bits, where a
    // dictionary of (nearly all distinct) values costs more than the values.
    for column in ["queued_at", "started_at", "finished_at"] {
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_encoding(ColumnPath::from(column), Encoding::DELTA_BINARY_PACKED);
    }
    // Durations: the bytes of each float position compress better apart.
    props = props
        .set_column_dictionary_enabled(ColumnPath::from("duration_s"), false)
        .set_column_encoding(ColumnPath::from("duration_s"), Encoding::BYTE_STREAM_SPLIT);
    // Ids and commits are (nearly) all distinct: a dictionary only adds its indexes.
    for column in ["event_id", "build_id", "commit"] {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    let props = props.build();
    let parquet_err = |source| Error::Parquet {
        path: path.into(),
        source,
    };
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(parquet_err)?;
    writer.write(batch).map_err(parquet_err)?;
    writer.flush().map_err(parquet_err)?;
    crate::crash_point("mid_write");
    let file = writer.into_inner().map_err(parquet_err)?;
    file.sync_all().map_err(Error::io("sync", path))
}

/// Calls `f` with every `event_id` in one file, reading only that column.
///
/// # Errors
/// The file is not a readable Parquet file of the build schema.
pub(crate) fn for_each_event_id(path: &Path, mut f: impl FnMut(&str)) -> Result<()> {
    let file = File::open(path).map_err(Error::io("open", path))?;
    let parquet_err = |source| Error::Parquet {
        path: path.into(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?;
    let column = builder
        .schema()
        .index_of("event_id")
        .map_err(|source| Error::Arrow {
            path: path.into(),
            source,
        })?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
    let reader = builder.with_projection(mask).build().map_err(parquet_err)?;
    for batch in reader {
        let batch = batch.map_err(|source| Error::Arrow {
            path: path.into(),
            source,
        })?;
        if let Some(ids) = batch.column(0).as_any().downcast_ref::<StringArray>() {
            for i in 0..ids.len() {
                if ids.is_valid(i) {
                    f(ids.value(i));
                }
            }
        }
    }
    Ok(())
}

/// Whether a file name is that of a data file: a finished write, not a temporary or hidden one.
pub(crate) fn is_data_file(name: &str) -> bool {
    name.ends_with(DATA_SUFFIX) && !name.starts_with('.')
}

/// The data files among `entries`, the listing of the folder `dir`, sorted.
fn data_files(dir: &Path, entries: std::fs::ReadDir) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::io("list", dir))?;
        if is_data_file(&entry.file_name().to_string_lossy()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// A file written and synced under a hidden temporary name, waiting to be published
/// ([`Store::stage`]). Dropped without [`Staged::publish`], it is removed.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    temp_path: PathBuf,
    final_path: PathBuf,
}

impl Staged {
    /// Renames the file into place (atomically) and syncs its folder; returns its path.
    ///
    /// # Errors
    /// The rename or the sync failed; the temporary file is removed.
    pub fn publish(mut self) -> Result<PathBuf> {
        std::fs::rename(&self.temp_path, &self.final_path)
            .map_err(Error::io("rename into place", &self.final_path))?;
        // The temporary name is gone: nothing left for `drop` to remove.
        self.temp_path = PathBuf::new();
        sync_dir(&self.dir)?;
        Ok(std::mem::take(&mut self.final_path))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.temp_path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
