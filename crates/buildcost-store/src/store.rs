//! The folder of day partitions and the atomic Parquet writer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{Array, StringArray};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::backend::{sync_dir, write_synced, Backend, Entry, Remote};
use crate::config::StoreConfig;
use crate::{Error, EventIndex, Result};

/// Sub-folder of the store holding dead letters (never read as data).
pub const DEAD_LETTER_DIR: &str = "dead-letter";
/// Sub-folder of the store holding derived per-day objects (the figures engine's day
/// rollups): `_rollups/<version>/<YYYY-MM-DD>.…`, deleted with their day by the retention.
pub const ROLLUPS_DIR: &str = "_rollups";
const PARTITION_PREFIX: &str = "date=";
pub(crate) const DATA_SUFFIX: &str = ".parquet";
pub(crate) const TEMP_SUFFIX: &str = ".parquet.tmp";

/// Build columns added after the first version of the store: files written before lack them.
pub const LATER_COLUMNS: &[&str] = &["request_ids"];

/// One stored Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DataFile {
    pub day: NaiveDate,
    /// Where it is, for people and logs: a local path, or the object's URL.
    pub path: PathBuf,
    /// Its key relative to the store's root (`date=2026-11-02/<name>.parquet`).
    pub key: String,
    /// Size in bytes, as listed.
    pub size: u64,
    /// Last modification, in microseconds since the epoch, as listed: with the size and the
    /// name it tells a file rewritten under the same name.
    pub modified: i64,
}

impl DataFile {
    /// The file's name inside its day's folder.
    pub fn name(&self) -> String {
        key_name(&self.key).to_owned()
    }
}

/// The tables of the store, each a folder of day partitions of its own Parquet schema: builds
/// at the root (`date=…/`, as since the first version), deployments under `deployments/date=…/`
/// and requests under `requests/date=…/`, so a reader of `date=*/*.parquet` sees builds only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Builds,
    Deployments,
    Requests,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 3] = [Table::Builds, Table::Deployments, Table::Requests];

    /// The table's name (and its SQL view's).
    pub fn name(self) -> &'static str {
        match self {
            Table::Builds => "builds",
            Table::Deployments => "deployments",
            Table::Requests => "requests",
        }
    }

    /// The folder below the root holding its day folders (empty for builds: the root).
    pub fn folder(self) -> &'static str {
        match self {
            Table::Builds => "",
            other => other.name(),
        }
    }

    /// The key of one day's folder of the table.
    pub fn partition_key(self, day: NaiveDate) -> String {
        match self {
            Table::Builds => partition_key(day),
            other => format!("{}/{}", other.folder(), partition_key(day)),
        }
    }

    /// A file name of this table from a writer's base name: builds keep it, the others are
    /// prefixed with the table, so the names of one day are distinct across tables (the
    /// event-id index, one space for every kind, tells a day's files by name).
    pub fn file_name(self, base: &str) -> String {
        match self {
            Table::Builds => base.to_owned(),
            other => format!("{}-{base}", other.name()),
        }
    }
}

/// A store rooted at a local folder or at a prefix of an object store.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// The local folder, or the store's URL (for messages).
    root: PathBuf,
    /// Files this process moved into the quarantine (shared by clones).
    quarantined: Arc<AtomicU64>,
}

/// The key of a day's folder.
fn partition_key(day: NaiveDate) -> String {
    format!("{PARTITION_PREFIX}{}", day.format("%Y-%m-%d"))
}

fn partition_day(name: &str) -> Option<NaiveDate> {
    name.strip_prefix(PARTITION_PREFIX)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

/// The last segment of a key.
pub(crate) fn key_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

impl Store {
    /// Opens (and creates if needed) the store in the local folder `root`.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(Error::io("create store folder", &root))?;
        Ok(Store {
            backend: Backend::Local(root.clone()),
            root,
            quarantined: Arc::default(),
        })
    }

    /// Opens the store `[store]` describes: a local folder, or a prefix of an object store
    /// (`s3://BUCKET/PREFIX`, reached as `[store.s3]` says, with credentials from the
    /// environment), checked at once so a missing bucket, refused credentials or an
    /// unreachable endpoint fail here, naming the setting.
    ///
    /// # Errors
    /// The folder cannot be created, or the object store does not answer as it should.
    pub fn open_config(config: &StoreConfig) -> Result<Self> {
        if !config.is_remote() {
            return Store::open(&config.path);
        }
        let url = config
            .path
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned();
        let remote = Remote::connect(&url, &config.s3)?;
        Ok(Store {
            backend: Backend::Remote(Arc::new(remote)),
            root: PathBuf::from(url),
            quarantined: Arc::default(),
        })
    }

    /// Whether the store is on an object store.
    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::Remote(_))
    }

    /// How many files this process (through any clone of this store) has quarantined.
    pub fn quarantined(&self) -> u64 {
        self.quarantined.load(Ordering::Relaxed)
    }

    pub(crate) fn count_quarantined(&self) {
        self.quarantined.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The store's folder, or its URL (`s3://bucket/prefix`) on an object store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of one day (a path locally, a URL on an object store).
    pub fn partition_dir(&self, day: NaiveDate) -> PathBuf {
        self.backend.locate(&partition_key(day))
    }

    /// Writes `batch` as `<root>/date=<day>/<name>.parquet`, atomically: a reader sees the whole
    /// file or none of it, and once this returns the file survives a power cut (locally) or is
    /// stored (an object store's PUT). Writing the same name again replaces the file (replays
    /// are idempotent).
    ///
    /// # Errors
    /// Any I/O, object-store or Parquet error; nothing is visible then.
    pub fn write_batch(&self, day: NaiveDate, name: &str, batch: &RecordBatch) -> Result<PathBuf> {
        self.stage(day, name, batch)?.publish()
    }

    /// The first half of [`Store::write_batch`]: `batch` encoded, and locally written and
    /// synced to a hidden temporary file in its day's folder; not yet visible. Staging several
    /// days (in parallel) and publishing them only once all are staged makes a failure of one
    /// leave nothing of any visible (locally; on an object store a failed publish of one day
    /// may follow published others, whose deterministic names a retry rewrites identically).
    ///
    /// # Errors
    /// Any I/O or Parquet error; the temporary file is removed.
    pub fn stage(&self, day: NaiveDate, name: &str, batch: &RecordBatch) -> Result<Staged> {
        self.stage_in(Table::Builds, day, name, batch)
    }

    /// [`Store::stage`] into `table`'s day folder (`batch` has that table's schema).
    ///
    /// # Errors
    /// As [`Store::stage`].
    pub fn stage_in(
        &self,
        table: Table,
        day: NaiveDate,
        name: &str,
        batch: &RecordBatch,
    ) -> Result<Staged> {
        let key = format!("{}/{name}{DATA_SUFFIX}", table.partition_key(day));
        let location = self.backend.locate(&key);
        match &self.backend {
            Backend::Local(root) => {
                let dir = root.join(table.partition_key(day));
                let created = !dir.exists();
                std::fs::create_dir_all(&dir).map_err(Error::io("create partition", &dir))?;
                if created {
                    sync_dir(dir.parent().unwrap_or(root))?;
                }
                let temp_path = dir.join(format!(".{name}{TEMP_SUFFIX}"));
                let written = encode(batch, &location, Some(&temp_path))
                    .and_then(|bytes| write_synced(&temp_path, &bytes));
                if let Err(e) = written {
                    let _ = std::fs::remove_file(&temp_path);
                    return Err(e);
                }
                Ok(Staged {
                    store: self.clone(),
                    key,
                    content: Content::Local { dir, temp_path },
                })
            }
            Backend::Remote(_) => Ok(Staged {
                store: self.clone(),
                content: Content::Remote(encode(batch, &location, None)?),
                key,
            }),
        }
    }

    /// Every data file, sorted by day then path (a stable order, so results are reproducible).
    ///
    /// # Errors
    /// The store cannot be listed.
    pub fn list_files(&self) -> Result<Vec<DataFile>> {
        self.list_table(Table::Builds)
    }

    /// Every data file of `table`, sorted by day then path.
    ///
    /// # Errors
    /// The store cannot be listed.
    pub fn list_table(&self, table: Table) -> Result<Vec<DataFile>> {
        let entries = match table {
            Table::Builds => self.partition_entries()?,
            other => self.backend.list(other.folder())?,
        };
        let mut files: Vec<DataFile> = entries
            .into_iter()
            .filter_map(|e| self.data_file_of(table, e))
            .collect();
        files.sort();
        Ok(files)
    }

    /// Every object inside the `date=` folders, and on an object store others too (callers
    /// keep what is under `date=`): an object store is listed once for the whole prefix, a
    /// request per 1,000 objects rather than one per day; a local store folder by folder, so
    /// the quarantine, the ledger and the rollups are not walked.
    pub(crate) fn partition_entries(&self) -> Result<Vec<Entry>> {
        match &self.backend {
            Backend::Remote(_) => self.backend.list(""),
            Backend::Local(_) => {
                let mut entries = Vec::new();
                for (day, _) in self.list_partitions()? {
                    entries.extend(self.backend.list(&partition_key(day))?);
                }
                Ok(entries)
            }
        }
    }

    /// The data file of `table` an entry of a listing is, if it is one:
    /// `[<table folder>/]date=<day>/<name>.parquet`.
    fn data_file_of(&self, table: Table, entry: Entry) -> Option<DataFile> {
        let inside = match table {
            Table::Builds => entry.key.as_str(),
            other => entry
                .key
                .strip_prefix(other.folder())
                .and_then(|k| k.strip_prefix('/'))?,
        };
        let (folder, name) = inside.split_once('/')?;
        let day = partition_day(folder)?;
        if name.contains('/') || !is_data_file(name) {
            return None;
        }
        Some(DataFile {
            day,
            path: self.backend.locate(&entry.key),
            key: entry.key,
            size: entry.size,
            modified: entry.modified,
        })
    }

    /// Every `date=YYYY-MM-DD` folder with its day, sorted by day.
    ///
    /// # Errors
    /// The store cannot be listed.
    pub fn list_partitions(&self) -> Result<Vec<(NaiveDate, PathBuf)>> {
        let mut parts: Vec<(NaiveDate, PathBuf)> = self
            .backend
            .top_folders()?
            .into_iter()
            .filter_map(|name| partition_day(&name).map(|day| (day, self.partition_dir(day))))
            .collect();
        parts.sort();
        Ok(parts)
    }

    /// The index of stored event ids, reading each day from this store when an event of that
    /// day first arrives (see [`EventIndex`]).
    pub fn event_index(&self) -> EventIndex {
        EventIndex::for_store(self.clone())
    }

    /// The keys of the data files of one day, sorted (none when the day has no folder, or
    /// something other than a folder stands in its place, as [`Store::list_files`] sees it).
    ///
    /// # Errors
    /// The day's folder exists but cannot be listed.
    pub fn day_files(&self, day: NaiveDate) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        for table in Table::ALL {
            keys.extend(
                self.backend
                    .list(&table.partition_key(day))?
                    .into_iter()
                    .filter_map(|e| self.data_file_of(table, e).map(|f| f.key)),
            );
        }
        keys.sort();
        Ok(keys)
    }

    /// Appends the hashed `event_id`s of the file under `key` to `ids`; `false` when the column
    /// cannot be read and the file was quarantined instead (see [`Store::quarantine`]): its ids
    /// are then unknown, so a replay of its events stores them again rather than losing them.
    ///
    /// # Errors
    /// The store cannot be reached, or a damaged file cannot be moved.
    pub(crate) fn read_ids(&self, key: &str, ids: &mut Vec<u128>) -> Result<bool> {
        let mut hashes = Vec::new();
        match self.for_each_event_id(key, |id| hashes.push(EventIndex::hash(id))) {
            Ok(()) => {
                ids.append(&mut hashes);
                Ok(true)
            }
            // An unreachable object store is not damage: the caller retries.
            Err(e @ Error::Object { .. }) => Err(e),
            Err(e) => {
                self.quarantine(key, format!("its event ids cannot be read: {e}"))?;
                Ok(false)
            }
        }
    }

    /// How many stored rows of every table carry each `event_id` (rows stored twice show up as
    /// 2; the kinds share one id space): for checks that nothing was stored twice.
    ///
    /// # Errors
    /// A file cannot be read; the error names it.
    pub fn event_id_counts(&self) -> Result<std::collections::HashMap<String, u32>> {
        let mut counts = std::collections::HashMap::new();
        let mut files = Vec::new();
        for table in Table::ALL {
            files.extend(self.list_table(table)?);
        }
        for file in files {
            self.for_each_event_id(&file.key, |id| {
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
        for (day, _) in self.list_partitions()? {
            if day < oldest_kept {
                self.backend.delete_folder(&partition_key(day))?;
                deleted.push(day);
            }
        }
        for table in [Table::Deployments, Table::Requests] {
            let mut days: Vec<NaiveDate> = self
                .list_table(table)?
                .into_iter()
                .map(|f| f.day)
                .filter(|d| *d < oldest_kept)
                .collect();
            days.dedup();
            for day in days {
                self.backend.delete_folder(&table.partition_key(day))?;
            }
        }
        if !deleted.is_empty() {
            tracing::info!(days = deleted.len(), oldest_kept = %oldest_kept, "retention deleted old partitions");
        }
        // Derived objects of deleted days go with them.
        for entry in self.backend.list(ROLLUPS_DIR)? {
            let old = key_name(&entry.key)
                .get(..10)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .is_some_and(|d| d < oldest_kept);
            if old {
                self.backend.delete(&entry.key)?;
            }
        }
        Ok(deleted)
    }

    /// The URL of `table`'s folder (a local path, or `s3://bucket/prefix/deployments`).
    pub fn table_url(&self, table: Table) -> String {
        self.backend.url(table.folder())
    }

    /// The URL DataFusion reads a data file by (a local path, or `s3://bucket/key`).
    pub fn file_url(&self, file: &DataFile) -> String {
        self.backend.url(&file.key)
    }

    /// For DataFusion on an object store: the URL to register the object store under
    /// (`s3://bucket`) and a client of its own; `None` for a local store.
    ///
    /// # Errors
    /// The client cannot be built.
    pub fn query_object_store(
        &self,
    ) -> Result<Option<(String, Arc<dyn object_store::ObjectStore>)>> {
        self.backend.query_store()
    }
}

impl Store {
    /// Calls `f` with every batch of `columns` (by name) of one stored file. A column of
    /// [`LATER_COLUMNS`] that an older file lacks is left out of its batches (readers look
    /// columns up by name and read it as empty).
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
        let source = self.backend.source(&file.key)?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(source).map_err(parquet_err)?;
        let roots = columns
            .iter()
            .filter(|c| {
                !LATER_COLUMNS.contains(c) || builder.schema().column_with_name(c).is_some()
            })
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
        Ok(self.backend.get(key)?.map(|b| b.to_vec()))
    }

    /// Writes an auxiliary object atomically (a reader sees the old bytes or the new ones);
    /// the same key replaces it.
    ///
    /// # Errors
    /// The object cannot be written.
    pub fn write_blob(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.backend.put(key, Bytes::copy_from_slice(bytes))
    }

    /// Deletes the auxiliary objects directly under `prefix` (a key relative to the root) for
    /// which `doomed` says so (given the object's name); returns how many went.
    ///
    /// # Errors
    /// The folder cannot be listed or an object cannot be deleted.
    pub fn delete_blobs(&self, prefix: &str, doomed: &dyn Fn(&str) -> bool) -> Result<usize> {
        let prefix = prefix.trim_matches('/');
        let mut deleted = 0;
        for entry in self.backend.list(prefix)? {
            let Some(name) = entry
                .key
                .strip_prefix(prefix)
                .map(|rest| rest.trim_start_matches('/'))
            else {
                continue;
            };
            if !name.contains('/') && doomed(name) {
                self.backend.delete(&entry.key)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Calls `f` with every `event_id` in one file, reading only that column.
    ///
    /// # Errors
    /// The file is not a readable Parquet file of the build schema (or cannot be fetched).
    pub(crate) fn for_each_event_id(&self, key: &str, mut f: impl FnMut(&str)) -> Result<()> {
        let path = self.backend.locate(key);
        let source = self.backend.source(key)?;
        let parquet_err = |source| Error::Parquet {
            path: path.clone(),
            source,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(source).map_err(parquet_err)?;
        let column = builder
            .schema()
            .index_of("event_id")
            .map_err(|source| Error::Arrow {
                path: path.clone(),
                source,
            })?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
        let reader = builder.with_projection(mask).build().map_err(parquet_err)?;
        for batch in reader {
            let batch = batch.map_err(|source| Error::Arrow {
                path: path.clone(),
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
}

/// `batch` as the bytes of a Parquet file. `half_written`: where a crash test's `mid_write`
/// crash leaves the rows written so far (no footer), as a killed local write would.
fn encode(batch: &RecordBatch, location: &Path, half_written: Option<&Path>) -> Result<Bytes> {
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
        path: location.into(),
        source,
    };
    let mut writer =
        ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).map_err(parquet_err)?;
    writer.write(batch).map_err(parquet_err)?;
    writer.flush().map_err(parquet_err)?;
    if crate::crash_due("mid_write") {
        if let Some(path) = half_written {
            let _ = std::fs::write(path, writer.inner());
        }
        crate::crash_now();
    }
    writer.into_inner().map(Bytes::from).map_err(parquet_err)
}

/// Whether a file name is that of a data file: a finished write, not a temporary or hidden one.
pub(crate) fn is_data_file(name: &str) -> bool {
    name.ends_with(DATA_SUFFIX) && !name.starts_with('.')
}

/// A file encoded (and locally written and synced under a hidden temporary name), waiting to be
/// published ([`Store::stage`]). Dropped without [`Staged::publish`], it leaves nothing.
#[derive(Debug)]
pub struct Staged {
    store: Store,
    key: String,
    content: Content,
}

#[derive(Debug)]
enum Content {
    Local { dir: PathBuf, temp_path: PathBuf },
    Remote(Bytes),
    Published,
}

impl Staged {
    /// Makes the file visible (an atomic rename and a sync of its folder locally, one PUT on an
    /// object store); returns where it is.
    ///
    /// # Errors
    /// The rename, the sync or the PUT failed; nothing is visible (the temporary file is
    /// removed).
    pub fn publish(mut self) -> Result<PathBuf> {
        let location = self.store.backend.locate(&self.key);
        match std::mem::replace(&mut self.content, Content::Published) {
            Content::Local { dir, temp_path } => {
                let renamed = std::fs::rename(&temp_path, &location)
                    .map_err(Error::io("rename into place", &location));
                if let Err(e) = renamed {
                    let _ = std::fs::remove_file(&temp_path);
                    return Err(e);
                }
                sync_dir(&dir)?;
            }
            Content::Remote(bytes) => self.store.backend.put(&self.key, bytes)?,
            Content::Published => {}
        }
        Ok(location)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Content::Local { temp_path, .. } = &self.content {
            let _ = std::fs::remove_file(temp_path);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
