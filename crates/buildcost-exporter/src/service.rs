//! The running service's state: the last encoded business snapshot, how the refreshes went, and
//! the ingest counters — everything `/metrics`, `/healthz` and `/readyz` answer from.
//!
//! A scrape never waits for a refresh: the refresh loop encodes each new snapshot once, and
//! deflates it once, and swaps it in; a scrape copies the last one and appends the service's own
//! metrics, read from counters the ingest loop keeps. A scraper that accepts gzip (Prometheus
//! does) gets the deflated text with the own metrics deflated behind it, as one gzip member.

use std::io::Write as _;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use buildcost_ingest::{ConsumerStatus, IngestSummary};
use buildcost_model::RejectReason;
use chrono::{DateTime, Utc};
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::business::gauge;
use crate::names::*;
use crate::Result;

/// What a process does; shown in `buildcost_build_info{role}` and deciding readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Consume, store, refresh and serve.
    Run,
    /// Consume and store; serve only the service's own metrics.
    Ingest,
    /// Refresh from the shared store and serve.
    Serve,
    /// `buildcost demo`: `run` on an in-process cluster.
    Demo,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Run => "run",
            Role::Ingest => "ingest",
            Role::Serve => "serve",
            Role::Demo => "demo",
        }
    }

    /// Whether this role computes the business gauges.
    pub fn refreshes(self) -> bool {
        self != Role::Ingest
    }
}

/// The ingest loop's shared counters, for a role that consumes.
#[derive(Clone)]
pub struct IngestHandles {
    pub topic: String,
    pub summary: Arc<Mutex<IngestSummary>>,
    pub status: Arc<Mutex<ConsumerStatus>>,
}

/// How the refreshes have gone.
#[derive(Debug, Clone, Default)]
pub struct RefreshStatus {
    pub refreshes: u64,
    pub failures: u64,
    pub last_duration: Option<Duration>,
    pub last_success: Option<DateTime<Utc>>,
    /// The evaluation instant of the snapshot being served.
    pub snapshot_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The business text of one snapshot, plain and deflated.
struct Published {
    text: String,
    /// Raw deflate of `text`, flushed to a byte boundary but not finished, so more deflate
    /// data can follow it in one stream.
    deflated: Vec<u8>,
    /// CRC-32 of `text`, for the gzip trailer.
    crc: u32,
}

impl Published {
    fn new(text: String) -> Self {
        let crc = zlib_rs::crc32::crc32(0, text.as_bytes());
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing into a Vec cannot fail; a failure leaves an empty body that the scrape then
        // replaces with the plain text.
        let deflated = match encoder
            .write_all(text.as_bytes())
            .and_then(|()| encoder.flush())
        {
            Ok(()) => std::mem::take(encoder.get_mut()),
            Err(_) => Vec::new(),
        };
        Published {
            text,
            deflated,
            crc,
        }
    }
}

/// Everything the HTTP endpoints answer from.
pub struct ServiceState {
    role: Role,
    started: DateTime<Utc>,
    business: RwLock<Option<Arc<Published>>>,
    refresh: Mutex<RefreshStatus>,
    ingest: Option<IngestHandles>,
    /// The store this process reads or writes, for its quarantine count.
    store: Option<buildcost_store::Store>,
    /// The team API's answers of the last snapshot.
    api: RwLock<Option<Arc<crate::api::Published>>>,
    /// The OpenAPI document.
    openapi: String,
    /// The HTML reports (roles that refresh).
    pages: Option<Arc<crate::pages::ReportPages>>,
}

impl ServiceState {
    /// The state of a process in `role`; `ingest` for the roles that consume.
    pub fn new(role: Role, ingest: Option<IngestHandles>) -> Self {
        ServiceState {
            role,
            started: Utc::now(),
            business: RwLock::new(None),
            refresh: Mutex::new(RefreshStatus::default()),
            ingest,
            store: None,
            api: RwLock::new(None),
            openapi: crate::api::openapi(false),
            pages: None,
        }
    }

    /// Serves the weekly reports of `pages` under `/reports/`.
    pub fn with_report_pages(mut self, pages: Arc<crate::pages::ReportPages>) -> Self {
        self.pages = Some(pages);
        self
    }

    /// Declares basic auth in the OpenAPI document (when the endpoints ask for it).
    pub fn with_basic_auth(mut self, basic_auth: bool) -> Self {
        self.openapi = crate::api::openapi(basic_auth);
        self
    }

    /// The reports served under `/reports/`, if any.
    pub fn report_pages(&self) -> Option<Arc<crate::pages::ReportPages>> {
        self.pages.clone()
    }

    /// The OpenAPI document of the team API.
    pub fn openapi(&self) -> &str {
        &self.openapi
    }

    /// Swaps in the team API's answers of a new snapshot.
    pub(crate) fn publish_api(&self, api: crate::api::Published) {
        if let Ok(mut a) = self.api.write() {
            *a = Some(Arc::new(api));
        }
    }

    /// The team API's answers, once a snapshot was published.
    pub(crate) fn api(&self) -> Option<Arc<crate::api::Published>> {
        self.api.read().ok().and_then(|a| a.clone())
    }

    /// Reports the files `store` (or any clone of it) quarantines.
    pub fn with_store(mut self, store: buildcost_store::Store) -> Self {
        self.store = Some(store);
        self
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Swaps in a new encoded snapshot evaluated at `at`, computed in `took`.
    pub fn publish(&self, text: String, at: DateTime<Utc>, took: Duration) {
        let published = Arc::new(Published::new(text));
        if let Ok(mut b) = self.business.write() {
            *b = Some(published);
        }
        if let Ok(mut r) = self.refresh.lock() {
            r.refreshes += 1;
            r.last_duration = Some(took);
            r.last_success = Some(Utc::now());
            r.snapshot_at = Some(at);
            r.last_error = None;
        }
    }

    /// Records a failed refresh; the last good snapshot stays served.
    pub fn refresh_failed(&self, error: &str, took: Duration) {
        if let Ok(mut r) = self.refresh.lock() {
            r.refreshes += 1;
            r.failures += 1;
            r.last_duration = Some(took);
            r.last_error = Some(error.to_owned());
        }
    }

    /// How the refreshes have gone.
    pub fn refresh_status(&self) -> RefreshStatus {
        self.refresh.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The ingest counters so far (zero for a role that does not consume).
    pub fn ingest_summary(&self) -> IngestSummary {
        self.ingest
            .as_ref()
            .and_then(|i| i.summary.lock().ok().map(|s| s.clone()))
            .unwrap_or_default()
    }

    /// The consumer's lag and broker state (default for a role that does not consume).
    pub fn consumer_status(&self) -> ConsumerStatus {
        self.ingest
            .as_ref()
            .and_then(|i| i.status.lock().ok().map(|s| s.clone()))
            .unwrap_or_default()
    }

    /// `Ok` when the process can do its job: a snapshot to serve (roles that refresh) and a
    /// broker connection (roles that consume); else why not.
    pub fn readiness(&self) -> std::result::Result<(), String> {
        if self.role.refreshes() && self.business.read().map(|b| b.is_none()).unwrap_or(true) {
            let why = self.refresh_status().last_error.map_or_else(
                || "the first refresh has not finished".to_owned(),
                |e| format!("no refresh has succeeded yet: {e}"),
            );
            return Err(why);
        }
        if self.ingest.is_some() {
            let status = self.consumer_status();
            if !status.reported {
                return Err("the Kafka consumer has not reported yet".into());
            }
            if status.brokers_up == 0 {
                return Err("the Kafka consumer has no broker connection".into());
            }
        }
        Ok(())
    }

    /// The `/metrics` body: the last business snapshot, then the service's own metrics.
    ///
    /// # Errors
    /// Only on a bug (a metric that cannot be registered).
    pub fn metrics_text(&self) -> Result<String> {
        let own = crate::encode(&self.own_registry()?)?;
        let business = self.business.read().ok().and_then(|b| b.clone());
        let mut out =
            String::with_capacity(business.as_ref().map_or(0, |b| b.text.len()) + own.len());
        if let Some(b) = business {
            out.push_str(&b.text);
        }
        out.push_str(&own);
        Ok(out)
    }

    /// The `/metrics` body as gzip: the business text deflated at publication, the own
    /// metrics deflated now, one gzip member around both (RFC 1952).
    ///
    /// # Errors
    /// Only on a bug (a metric that cannot be registered, or deflate failing on memory).
    pub fn metrics_gzip(&self) -> Result<Vec<u8>> {
        let own = crate::encode(&self.own_registry()?)?;
        let business = self.business.read().ok().and_then(|b| b.clone());
        let (deflated, crc, len) = match &business {
            Some(b) if !b.deflated.is_empty() || b.text.is_empty() => {
                (b.deflated.as_slice(), b.crc, b.text.len())
            }
            _ => {
                let text = business.as_ref().map_or("", |b| b.text.as_str());
                return gzip_all(&[text, &own]);
            }
        };
        let mut tail = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        tail.write_all(own.as_bytes())
            .map_err(|e| crate::Error::Compress(e.to_string()))?;
        let tail = tail
            .finish()
            .map_err(|e| crate::Error::Compress(e.to_string()))?;
        let crc = zlib_rs::crc32::crc32(crc, own.as_bytes());
        // ISIZE: the length modulo 2^32.
        let len = (len + own.len()) as u32;
        let mut out = Vec::with_capacity(GZIP_HEADER.len() + deflated.len() + tail.len() + 8);
        out.extend_from_slice(&GZIP_HEADER);
        out.extend_from_slice(deflated);
        out.extend_from_slice(&tail);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        Ok(out)
    }

    /// A registry of the service's own metrics as they are now. Built per scrape from the
    /// counters the loops keep (a few dozen series; microseconds).
    fn own_registry(&self) -> Result<Registry> {
        let r = Registry::new();
        let info = IntGaugeVec::new(
            Opts::new(
                BUILD_INFO,
                "Version and role of this buildcost process; always 1.",
            ),
            &["version", "role"],
        )?;
        r.register(Box::new(info.clone()))?;
        info.with_label_values(&[env!("CARGO_PKG_VERSION"), self.role.as_str()])
            .set(1);
        gauge(&r, UP_SINCE, "Start time of the process, in Unix seconds.")?
            .set(unix_seconds(self.started));

        if self.role.refreshes() {
            let status = self.refresh_status();
            counter(
                &r,
                REFRESHES,
                "Refreshes of the business gauges, failed ones included.",
                status.refreshes,
            )?;
            counter(
                &r,
                REFRESH_FAILURES,
                "Refreshes that failed; the last good snapshot stays served.",
                status.failures,
            )?;
            gauge(
                &r,
                REFRESH_DURATION,
                "Duration of the last refresh, in seconds.",
            )?
            .set(status.last_duration.map_or(0.0, |d| d.as_secs_f64()));
            gauge(
                &r,
                REFRESH_LAST_SUCCESS,
                "Time of the last successful refresh, in Unix seconds (0: none yet).",
            )?
            .set(status.last_success.map_or(0.0, unix_seconds));
            gauge(
                &r,
                SNAPSHOT_AT,
                "Evaluation instant of the business gauges served, in Unix seconds (0: none yet).",
            )?
            .set(status.snapshot_at.map_or(0.0, unix_seconds));
        }

        if let Some(store) = &self.store {
            counter(
                &r,
                STORE_QUARANTINED,
                "Damaged store files moved into <store.path>/quarantine (never read as data).",
                store.quarantined(),
            )?;
        }

        if let Some(ingest) = &self.ingest {
            let s = self.ingest_summary();
            counter(
                &r,
                EVENTS_ACCEPTED,
                "Events accepted and stored.",
                s.accepted,
            )?;
            let rejected = IntCounterVec::new(
                Opts::new(
                    EVENTS_REJECTED,
                    "Events rejected, by reason; each is dead-lettered.",
                ),
                &["reason"],
            )?;
            r.register(Box::new(rejected.clone()))?;
            for reason in RejectReason::ALL {
                rejected
                    .with_label_values(&[reason.as_str()])
                    .inc_by(s.rejected_by_reason.get(*reason));
            }
            counter(
                &r,
                EVENTS_DUPLICATE,
                "Events whose event_id was stored already (not stored again).",
                s.duplicates,
            )?;
            counter(
                &r,
                DEAD_LETTERS,
                "Rejected events acknowledged by the dead-letter topic.",
                s.dead_lettered,
            )?;
            counter(&r, BUILDS_UNPRICED, "Accepted builds on a runner class missing from the price table (priced at pricing.default).", s.unpriced)?;
            counter(
                &r,
                FILES_WRITTEN,
                "Parquet files written durably.",
                s.files_written,
            )?;
            counter(
                &r,
                ROWS_WRITTEN,
                "Rows written durably to Parquet.",
                s.rows_written,
            )?;
            counter(
                &r,
                CONSUMER_ERRORS,
                "Errors reported by the Kafka consumer (retried with backoff).",
                s.consumer_errors,
            )?;
            counter(
                &r,
                STORE_WRITE_FAILURES,
                "Batch writes the store refused (disk full, an I/O error); retried, nothing past them committed.",
                s.store_write_failures,
            )?;
            counter(
                &r,
                STORE_READ_FAILURES,
                "Reads of stored event ids that failed because the store was unreachable; retried with backoff, the message held.",
                s.store_read_failures,
            )?;
            counter(
                &r,
                COMMIT_FAILURES,
                "Offset commits that failed (retried; the rows were durable).",
                s.commit_failures,
            )?;
            let status = self.consumer_status();
            let lag = IntGaugeVec::new(
                Opts::new(CONSUMER_LAG, "Messages between the committed offset and the high watermark, per assigned partition."),
                &["topic", "partition"],
            )?;
            r.register(Box::new(lag.clone()))?;
            for (partition, n) in &status.lag {
                lag.with_label_values(&[ingest.topic.as_str(), &partition.to_string()])
                    .set(*n);
            }
            let up = IntGauge::with_opts(Opts::new(
                CONSUMER_BROKERS_UP,
                "Brokers the consumer is connected to.",
            ))?;
            r.register(Box::new(up.clone()))?;
            up.set(i64::try_from(status.brokers_up).unwrap_or(i64::MAX));
            let pending = IntGauge::with_opts(Opts::new(
                CONSUMER_PENDING,
                "Messages consumed and held in batches not yet durable (not committed).",
            ))?;
            r.register(Box::new(pending.clone()))?;
            pending.set(i64::try_from(status.pending_messages).unwrap_or(i64::MAX));
        }
        Ok(r)
    }
}

fn counter(r: &Registry, name: &str, help: &str, value: u64) -> Result<()> {
    let c = IntCounter::with_opts(Opts::new(name, help))?;
    r.register(Box::new(c.clone()))?;
    c.inc_by(value);
    Ok(())
}

fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// A gzip header: deflate, no name, no time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// `parts` one after the other, gzipped.
fn gzip_all(parts: &[&str]) -> Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for p in parts {
        gz.write_all(p.as_bytes())
            .map_err(|e| crate::Error::Compress(e.to_string()))?;
    }
    gz.finish()
        .map_err(|e| crate::Error::Compress(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gzip body is one member (a single-member reader reads it all, checking CRC and
    /// length) holding the business text, then the own metrics; before the first snapshot
    /// too.
    #[test]
    fn the_gzip_body_is_the_plain_body_compressed() {
        use std::io::Read as _;
        let gunzip = |body: Vec<u8>| {
            let mut text = String::new();
            flate2::read::GzDecoder::new(body.as_slice())
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        let state = ServiceState::new(Role::Serve, None);
        assert!(gunzip(state.metrics_gzip().unwrap()).contains("buildcost_refreshes_total 0"));
        let business: String = (0..20_000)
            .map(|i| {
                format!(
                    "buildcost_team_cost_euros{{team=\"t{i}\"}} {}\n",
                    i as f64 / 7.0
                )
            })
            .collect();
        state.publish(business.clone(), Utc::now(), Duration::from_millis(1));
        let body = state.metrics_gzip().unwrap();
        assert!(
            body.len() * 4 < business.len(),
            "compressed: {} bytes",
            body.len()
        );
        let text = gunzip(body);
        assert!(text.starts_with(&business));
        assert!(text[business.len()..].contains("buildcost_refreshes_total 1"));
        assert_eq!(text.len(), state.metrics_text().unwrap().len());
    }

    #[test]
    fn a_serve_role_is_not_ready_before_its_first_snapshot_and_serves_it_after() {
        let state = ServiceState::new(Role::Serve, None);
        assert!(state.readiness().is_err());
        let text = state.metrics_text().unwrap();
        assert!(
            text.contains("buildcost_build_info{role=\"serve\""),
            "{text}"
        );
        assert!(
            text.contains("buildcost_refresh_last_success_timestamp_seconds 0"),
            "{text}"
        );
        assert!(
            !text.contains(EVENTS_ACCEPTED),
            "a serve role does not consume: {text}"
        );

        state.refresh_failed("teams file missing", Duration::from_millis(3));
        assert_eq!(
            state.readiness().unwrap_err(),
            "no refresh has succeeded yet: teams file missing"
        );

        let at = Utc::now();
        state.publish(
            "buildcost_org_developers 7\n".into(),
            at,
            Duration::from_millis(12),
        );
        assert_eq!(state.readiness(), Ok(()));
        let text = state.metrics_text().unwrap();
        assert!(text.starts_with("buildcost_org_developers 7\n"), "{text}");
        assert!(
            text.contains("buildcost_refresh_failures_total 1"),
            "{text}"
        );
        assert!(text.contains("buildcost_refreshes_total 2"), "{text}");
        assert!(
            text.contains("buildcost_refresh_duration_seconds 0.012"),
            "{text}"
        );
    }

    #[test]
    fn an_ingest_role_reports_counts_by_reason_and_lag_per_partition() {
        let mut summary = IngestSummary {
            accepted: 40,
            duplicates: 3,
            ..IngestSummary::default()
        };
        summary.rejected_by_reason.add(RejectReason::InvalidJson, 2);
        let handles = IngestHandles {
            topic: "ci.build-events".into(),
            summary: Arc::new(Mutex::new(summary)),
            status: Arc::new(Mutex::new(ConsumerStatus::default())),
        };
        let state = ServiceState::new(Role::Ingest, Some(handles.clone()));
        assert_eq!(
            state.readiness().unwrap_err(),
            "the Kafka consumer has not reported yet"
        );
        *handles.status.lock().unwrap() = ConsumerStatus {
            assigned: [0, 3].into_iter().collect(),
            lag: [(0, 5), (3, 0)].into_iter().collect(),
            brokers_up: 1,
            reported: true,
            ..ConsumerStatus::default()
        };
        assert_eq!(
            state.readiness(),
            Ok(()),
            "an ingest role needs no snapshot"
        );
        let text = state.metrics_text().unwrap();
        for line in [
            "buildcost_events_accepted_total 40",
            "buildcost_events_duplicate_total 3",
            "buildcost_events_rejected_total{reason=\"invalid_json\"} 2",
            "buildcost_events_rejected_total{reason=\"too_large\"} 0",
            "buildcost_consumer_lag_messages{partition=\"0\",topic=\"ci.build-events\"} 5",
            "buildcost_consumer_lag_messages{partition=\"3\",topic=\"ci.build-events\"} 0",
            "buildcost_consumer_brokers_up 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        assert!(
            !text.contains(REFRESHES),
            "an ingest role does not refresh: {text}"
        );
    }
}
