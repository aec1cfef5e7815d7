//! Where the store's bytes live: a local folder or an object store (S3 and S3-compatible
//! servers, Google Cloud Storage, Azure Blob Storage) through the `object_store` crate. Every
//! reader and writer of the store goes through the few operations here, keyed by a path
//! relative to the store's root (`date=2026-11-02/kafka-….parquet`), so each guarantee is kept
//! in one place per medium:
//!
//! - **a file appears whole or not at all**: locally a temporary file, fsync and rename; on an
//!   object store a single PUT, which is atomic;
//! - **a rewrite under the same name is idempotent**: the same key replaces the object;
//! - **an outage is an error, not a hang**: every request has a timeout and a bounded number of
//!   retries with backoff; the callers (the ingester's write loop) retry further and commit
//!   nothing meanwhile.
//!
//! The store's API is synchronous (it is called from rayon workers and from the ingester's
//! loop); object-store requests run on one small process-wide Tokio runtime of their own, so
//! calling the store from inside another runtime neither panics nor starves it.

use std::fs::File;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::file::reader::{ChunkReader, Length};

use crate::config::S3Config;
use crate::{Error, Result};

/// One object (or file) below the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The key relative to the root, `/`-separated.
    pub key: String,
    pub size: u64,
    /// Last modification, microseconds since the epoch.
    pub modified: i64,
}

/// The medium of a store.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Local(PathBuf),
    Remote(Arc<Remote>),
}

/// An object store and the prefix the store lives under.
#[derive(Debug)]
pub(crate) struct Remote {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket`: what DataFusion registers the store under.
    base: String,
    /// The prefix inside the bucket, without slashes at either end (may be empty).
    prefix: String,
    /// Builds another client for the same bucket (DataFusion's, on its own runtime).
    build: Builder,
}

#[derive(Debug, Clone)]
enum Builder {
    S3(Box<object_store::aws::AmazonS3Builder>),
    Gcs(Box<object_store::gcp::GoogleCloudStorageBuilder>),
    Azure(Box<object_store::azure::MicrosoftAzureBuilder>),
}

impl Builder {
    fn build(&self) -> object_store::Result<Arc<dyn ObjectStore>> {
        Ok(match self {
            Builder::S3(b) => Arc::new((**b).clone().build()?),
            Builder::Gcs(b) => Arc::new((**b).clone().build()?),
            Builder::Azure(b) => Arc::new((**b).clone().build()?),
        })
    }
}

/// Whether `path` names an object store (`s3://`, `gs://`, `az://`…) rather than a folder.
pub fn is_remote(path: &str) -> bool {
    ["s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://"]
        .iter()
        .any(|scheme| path.starts_with(scheme))
}

/// Requests to the object store: each attempt may take this long...
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// ...and is retried with backoff for at most this long before the error reaches the caller.
const RETRY_FOR: Duration = Duration::from_secs(10);
/// The start-up check gives up after this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

fn client_options(allow_http: bool) -> object_store::ClientOptions {
    object_store::ClientOptions::new()
        .with_timeout(REQUEST_TIMEOUT)
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_allow_http(allow_http)
}

fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: RETRY_FOR,
    }
}

/// The runtime object-store requests run on (never dropped: dropping a runtime inside another
/// one panics, and clients keep connections on it).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("buildcost-store-io")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the store's I/O runtime: {e}"))
    })
}

/// Runs `fut` on the store's runtime and waits for it, from any thread (inside another
/// runtime too: the caller's thread blocks, nothing nests).
fn block<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    // The runtime lives as long as the process and every task sends once.
    rx.recv()
        .unwrap_or_else(|_| panic!("the store's I/O runtime dropped a request"))
}

impl Remote {
    /// Connects to the object store named by `url` (`s3://bucket/prefix`), with credentials
    /// from the environment (never from the configuration file), and checks that the bucket
    /// answers.
    ///
    /// # Errors
    /// A URL that is not understood, or a bucket that cannot be listed (missing, refused
    /// credentials, unreachable endpoint): each named with the setting to look at.
    pub(crate) fn connect(url: &str, s3: &S3Config) -> Result<Remote> {
        let config_err =
            |setting: &'static str, message: String| Error::Config { setting, message };
        let parsed = url::Url::parse(url)
            .map_err(|e| config_err("store.path", format!("`{url}` is not a URL: {e}")))?;
        let bucket = parsed.host_str().unwrap_or_default().to_owned();
        if bucket.is_empty() {
            return Err(config_err(
                "store.path",
                format!("`{url}` names no bucket: write it as s3://BUCKET/PREFIX"),
            ));
        }
        let prefix = parsed.path().trim_matches('/').to_owned();
        let base = format!("{}://{bucket}", parsed.scheme());
        let build = match parsed.scheme() {
            "s3" | "s3a" => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_region(&s3.region)
                    .with_allow_http(s3.allow_http)
                    .with_client_options(client_options(s3.allow_http))
                    .with_retry(retry());
                if let Some(endpoint) = &s3.endpoint {
                    b = b.with_endpoint(endpoint);
                }
                Builder::S3(Box::new(b))
            }
            "gs" => Builder::Gcs(Box::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&bucket)
                    .with_client_options(client_options(false))
                    .with_retry(retry()),
            )),
            "az" | "abfs" | "abfss" => Builder::Azure(Box::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(&bucket)
                    .with_client_options(client_options(false))
                    .with_retry(retry()),
            )),
            other => {
                return Err(config_err(
                    "store.path",
                    format!("`{other}://` is not a known object store; use s3://, gs:// or az://"),
                ))
            }
        };
        let store = build.build().map_err(|e| {
            config_err(
                "store.path",
                format!("cannot set up the object store for `{url}`: {e}"),
            )
        })?;
        let remote = Remote {
            store,
            base,
            prefix,
            build,
        };
        remote.probe(url, s3)?;
        Ok(remote)
    }

    /// Lists the prefix once, so a missing bucket, refused credentials or an unreachable
    /// endpoint stop the process at start-up with the setting to fix, not at the first write.
    fn probe(&self, url: &str, s3: &S3Config) -> Result<()> {
        let store = self.store.clone();
        let prefix = self.object_path("");
        let outcome = block(async move {
            tokio::time::timeout(PROBE_TIMEOUT, async move {
                store.list_with_delimiter(Some(&prefix)).await.map(|_| ())
            })
            .await
        });
        let endpoint = s3.endpoint.as_deref().unwrap_or("the default AWS endpoint");
        let (setting, message) = match outcome {
            Ok(Ok(())) => return Ok(()),
            Err(_) => (
                "store.s3.endpoint",
                format!(
                    "`{url}`: no answer from {endpoint} within {} s; check the endpoint and the network",
                    PROBE_TIMEOUT.as_secs()
                ),
            ),
            Ok(Err(e)) => explain(url, endpoint, &e),
        };
        Err(Error::Config { setting, message })
    }

    fn object_path(&self, key: &str) -> ObjectPath {
        let key = key.trim_matches('/');
        match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => ObjectPath::from(key),
            (false, true) => ObjectPath::from(self.prefix.as_str()),
            (false, false) => ObjectPath::from(format!("{}/{key}", self.prefix)),
        }
    }

    /// The key relative to the root of an object's full path.
    fn relative(&self, path: &ObjectPath) -> String {
        let full = path.as_ref();
        if self.prefix.is_empty() {
            return full.to_owned();
        }
        full.strip_prefix(self.prefix.as_str())
            .map(|rest| rest.trim_start_matches('/').to_owned())
            .unwrap_or_else(|| full.to_owned())
    }
}

/// The setting to look at for a failed request, and a sentence for the operator.
fn explain(url: &str, endpoint: &str, e: &object_store::Error) -> (&'static str, String) {
    let text = e.to_string();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&["169.254.169.254", "169.254.170.2"]) {
        (
            "store.path",
            format!(
                "`{url}`: found no credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not \
                 set and no web identity, container or instance role answered ({text})"
            ),
        )
    } else if has(&["NoSuchBucket", "bucket does not exist", "specified bucket"])
        || matches!(e, object_store::Error::NotFound { .. })
    {
        (
            "store.path",
            format!("`{url}`: the bucket does not exist at {endpoint}; create it or fix the name"),
        )
    } else if has(&[
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "403",
        "401",
        "credential",
        "Credential",
    ]) || matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        (
            "store.path",
            format!(
                "`{url}`: the object store refused the credentials ({text}); they come from \
                 AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the pod's web identity or \
                 instance role), never from the configuration file"
            ),
        )
    } else {
        (
            "store.s3.endpoint",
            format!("`{url}`: {endpoint} cannot be reached: {text}"),
        )
    }
}

impl Backend {
    /// How a key is shown to people: a local path or the object's URL.
    pub(crate) fn locate(&self, key: &str) -> PathBuf {
        match self {
            Backend::Local(root) => root.join(key),
            Backend::Remote(r) => PathBuf::from(format!("{}/{}", r.base, r.object_path(key))),
        }
    }

    fn object_err(
        &self,
        action: &'static str,
        key: &str,
    ) -> impl FnOnce(object_store::Error) -> Error {
        let location = self.locate(key);
        move |source| Error::Object {
            action,
            location,
            source: Box::new(source),
        }
    }

    /// Writes `bytes` under `key`, whole or not at all, durably once this returns; the same key
    /// replaces the object.
    pub(crate) fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        match self {
            Backend::Local(root) => {
                let path = root.join(key);
                let dir = path.parent().unwrap_or(root).to_path_buf();
                std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let temp = dir.join(format!(".{name}.tmp"));
                let result = write_synced(&temp, &bytes)
                    .and_then(|()| {
                        std::fs::rename(&temp, &path).map_err(Error::io("rename into place", &path))
                    })
                    .and_then(|()| sync_dir(&dir));
                if result.is_err() {
                    let _ = std::fs::remove_file(&temp);
                }
                result
            }
            Backend::Remote(r) => {
                let store = r.store.clone();
                let path = r.object_path(key);
                block(async move { store.put(&path, PutPayload::from(bytes)).await })
                    .map(|_| ())
                    .map_err(self.object_err("write", key))
            }
        }
    }

    /// The bytes under `key`; `None` when there is no such object.
    pub(crate) fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self {
            Backend::Local(root) => {
                let path = root.join(key);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io("read", &path)(e)),
                }
            }
            Backend::Remote(r) => {
                let store = r.store.clone();
                let path = r.object_path(key);
                match block(async move {
                    match store.get(&path).await {
                        Ok(got) => got.bytes().await.map(Some),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                }) {
                    Ok(bytes) => Ok(bytes),
                    Err(e) => Err(self.object_err("read", key)(e)),
                }
            }
        }
    }

    /// A Parquet reader's view of the object under `key`: the open file locally (read by
    /// ranges), the whole object's bytes from an object store.
    pub(crate) fn source(&self, key: &str) -> Result<Source> {
        match self {
            Backend::Local(root) => {
                let path = root.join(key);
                File::open(&path)
                    .map(Source::File)
                    .map_err(Error::io("open", &path))
            }
            Backend::Remote(_) => match self.get(key)? {
                Some(bytes) => Ok(Source::Bytes(bytes)),
                None => Err(Error::Object {
                    action: "read",
                    location: self.locate(key),
                    source: Box::new(object_store::Error::NotFound {
                        path: key.to_owned(),
                        source: "gone since it was listed".into(),
                    }),
                }),
            },
        }
    }

    /// Every object below the folder `prefix` (recursively), hidden ones included, sorted by key.
    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let mut entries = match self {
            Backend::Local(root) => {
                let mut out = Vec::new();
                list_local(root, &root.join(prefix), &mut out)?;
                out
            }
            Backend::Remote(r) => {
                let store = r.store.clone();
                let path = r.object_path(prefix);
                let listed =
                    block(async move { store.list(Some(&path)).try_collect::<Vec<_>>().await })
                        .map_err(self.object_err("list", prefix))?;
                listed
                    .into_iter()
                    .map(|meta| Entry {
                        key: r.relative(&meta.location),
                        size: meta.size,
                        modified: meta.last_modified.timestamp_micros(),
                    })
                    .collect()
            }
        };
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// The names of the folders directly below the root (`date=…`, `rejections`…), sorted.
    pub(crate) fn top_folders(&self) -> Result<Vec<String>> {
        let mut names = match self {
            Backend::Local(root) => {
                let mut names = Vec::new();
                for entry in std::fs::read_dir(root).map_err(Error::io("list", root))? {
                    let entry = entry.map_err(Error::io("list", root))?;
                    if entry.path().is_dir() {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                names
            }
            Backend::Remote(r) => {
                let store = r.store.clone();
                let path = r.object_path("");
                let prefix = (!r.prefix.is_empty()).then_some(path);
                let listed = block(async move { store.list_with_delimiter(prefix.as_ref()).await })
                    .map_err(self.object_err("list", ""))?;
                listed
                    .common_prefixes
                    .iter()
                    .filter_map(|p| p.filename().map(str::to_owned))
                    .collect()
            }
        };
        names.sort();
        Ok(names)
    }

    /// Deletes the object under `key`; one already gone is not an error.
    pub(crate) fn delete(&self, key: &str) -> Result<()> {
        match self {
            Backend::Local(root) => {
                let path = root.join(key);
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(Error::io("delete", &path)(e)),
                }
            }
            Backend::Remote(r) => {
                let store = r.store.clone();
                let path = r.object_path(key);
                match block(async move { store.delete(&path).await }) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.object_err("delete", key)(e)),
                }
            }
        }
    }

    /// Deletes the folder `prefix` and everything below it.
    pub(crate) fn delete_folder(&self, prefix: &str) -> Result<()> {
        match self {
            Backend::Local(root) => {
                let dir = root.join(prefix);
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => sync_dir(root),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(Error::io("delete folder", &dir)(e)),
                }
            }
            Backend::Remote(_) => {
                for entry in self.list(prefix)? {
                    self.delete(&entry.key)?;
                }
                Ok(())
            }
        }
    }

    /// Moves the object `from` to `to` (a rename locally, a copy then a delete remotely).
    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<()> {
        match self {
            Backend::Local(root) => {
                let (src, dst) = (root.join(from), root.join(to));
                let dst_dir = dst.parent().unwrap_or(root).to_path_buf();
                std::fs::create_dir_all(&dst_dir).map_err(Error::io("create", &dst_dir))?;
                std::fs::rename(&src, &dst).map_err(Error::io("move", &src))?;
                if let Some(dir) = src.parent() {
                    sync_dir(dir)?;
                }
                sync_dir(&dst_dir)
            }
            Backend::Remote(r) => {
                let store = r.store.clone();
                let (src, dst) = (r.object_path(from), r.object_path(to));
                block(async move {
                    store.copy(&src, &dst).await?;
                    store.delete(&src).await
                })
                .map_err(self.object_err("move", from))
            }
        }
    }

    /// Whether an object exists under `key`.
    pub(crate) fn exists(&self, key: &str) -> Result<bool> {
        match self {
            Backend::Local(root) => Ok(root.join(key).exists()),
            Backend::Remote(r) => {
                let store = r.store.clone();
                let path = r.object_path(key);
                match block(async move { store.head(&path).await }) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(self.object_err("look up", key)(e)),
                }
            }
        }
    }

    /// For DataFusion: the URL to register an object store under and a client of its own
    /// (`None` for a local store, which DataFusion reads as files).
    pub(crate) fn query_store(&self) -> Result<Option<(String, Arc<dyn ObjectStore>)>> {
        match self {
            Backend::Local(_) => Ok(None),
            Backend::Remote(r) => {
                let store = r.build.build().map_err(self.object_err("connect", ""))?;
                Ok(Some((r.base.clone(), store)))
            }
        }
    }

    /// The URL DataFusion reads the object under `key` by.
    pub(crate) fn url(&self, key: &str) -> String {
        match self {
            Backend::Local(root) => {
                let path = root.join(key);
                std::path::absolute(&path)
                    .unwrap_or(path)
                    .to_string_lossy()
                    .into_owned()
            }
            Backend::Remote(r) => format!("{}/{}", r.base, r.object_path(key)),
        }
    }
}

fn list_local(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Something other than a folder stands where one was expected: nothing below it.
        Err(_) if dir.exists() && !dir.is_dir() => return Ok(()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("list", dir))?;
        let path = entry.path();
        // A file that went between the listing and this look (retention, the quarantine)
        // is left out, as a later listing would.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            list_local(root, &path, out)?;
            continue;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let key = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        out.push(Entry {
            key,
            size: meta.len(),
            modified,
        });
    }
    Ok(())
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(Error::io("create", path))?;
    std::io::Write::write_all(&mut file, bytes).map_err(Error::io("write", path))?;
    file.sync_all().map_err(Error::io("sync", path))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync folder", dir))
}

/// A stored file as Parquet reads it: an open local file, or an object's bytes.
pub(crate) enum Source {
    File(File),
    Bytes(Bytes),
}

impl Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::File(f) => Length::len(f),
            Source::Bytes(b) => Length::len(b),
        }
    }
}

/// What [`Source`] reads from.
pub(crate) enum SourceRead {
    File(<File as ChunkReader>::T),
    Bytes(<Bytes as ChunkReader>::T),
}

impl Read for SourceRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SourceRead::File(r) => r.read(buf),
            SourceRead::Bytes(r) => r.read(buf),
        }
    }
}

impl ChunkReader for Source {
    type T = SourceRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            Source::File(f) => SourceRead::File(f.get_read(start)?),
            Source::Bytes(b) => SourceRead::Bytes(b.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Source::File(f) => f.get_bytes(start, length),
            Source::Bytes(b) => b.get_bytes(start, length),
        }
    }
}
