//! The refresh loop: every `refresh.interval`, compute the business snapshot from the store and
//! swap its encoded text into the [`ServiceState`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use buildcost_query::{Engine, FiguresConfig, Snapshot};
use buildcost_report::WeeklyReport;
use buildcost_store::Store;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::pages::ReportPages;
use crate::service::ServiceState;
use crate::Result;

/// Computes snapshots of one store, incrementally: closed days are priced and classified once
/// and kept ([`Incremental`]), so a refresh costs the same whatever the history's length.
pub struct Refresher {
    figures: FiguresConfig,
    store: Store,
    at: Option<DateTime<Utc>>,
    cache: tokio::sync::Mutex<Engine>,
    /// The last complete week's reports (the API's trend), with the day they were computed on:
    /// computed again each day, for events that arrive late.
    weekly: std::sync::Mutex<Option<(chrono::NaiveDate, Arc<WeeklyReport>)>>,
    pages: Option<Arc<ReportPages>>,
}

impl Refresher {
    /// A refresher of `store` through `engine` (the binary makes it
    /// [persisting](Engine::persisting) unless `store.rollups = false`). With `at`, every
    /// snapshot is evaluated at that instant (replays and tests); else at the time of the
    /// refresh.
    pub fn new(
        figures: FiguresConfig,
        store: Store,
        engine: Engine,
        at: Option<DateTime<Utc>>,
    ) -> Self {
        Refresher {
            figures,
            store,
            at,
            cache: tokio::sync::Mutex::new(engine),
            weekly: std::sync::Mutex::new(None),
            pages: None,
        }
    }

    /// Hands the last complete week's reports, computed for the API's trend, to `pages`.
    pub fn with_report_pages(mut self, pages: Arc<ReportPages>) -> Self {
        self.pages = Some(pages);
        self
    }

    /// The last complete week's reports at `at`, computed once a day through the engine.
    fn weekly(&self, engine: &mut Engine, at: DateTime<Utc>) -> Result<Arc<WeeklyReport>> {
        let week = crate::api::trend_week(at);
        let today = Utc::now().date_naive();
        if let Some((day, report)) = self.weekly.lock().ok().and_then(|w| w.clone()) {
            if day == today && report.week == week {
                return Ok(report);
            }
        }
        let settings = self.figures.settings()?;
        let report = buildcost_report::week_report(engine, &self.store, &settings, week)
            .map_err(|e| crate::Error::Report(e.to_string()))?;
        let report = Arc::new(report);
        if let Ok(mut w) = self.weekly.lock() {
            *w = Some((today, report.clone()));
        }
        if let Some(pages) = &self.pages {
            pages.keep(report.clone());
        }
        Ok(report)
    }

    /// One snapshot, now. The teams file is read again each time, so edits are picked up.
    ///
    /// # Errors
    /// The teams file, the store or a query failed.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let at = self.at.unwrap_or_else(Utc::now);
        let settings = self.figures.settings()?;
        let mut cache = self.cache.lock().await;
        let snapshot = cache.snapshot(&self.store, &settings, at).await?;
        let work = cache.last_work();
        tracing::debug!(
            days_classified = work.days_classified,
            days_loaded = work.days_loaded,
            history_rescanned = work.history_rescanned,
            "incremental refresh"
        );
        Ok(snapshot)
    }

    /// Refreshes once and publishes the result; a failure is logged, counted and leaves the
    /// last snapshot served.
    pub async fn refresh_once(&self, state: &ServiceState) -> bool {
        let started = Instant::now();
        let result = match self.snapshot().await {
            Ok(snapshot) => {
                let weekly = {
                    let mut engine = self.cache.lock().await;
                    self.weekly(&mut engine, snapshot.at)
                };
                let weekly = match weekly {
                    Ok(w) => Some(w),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot compute the last week's reports: the API shows no trend");
                        None
                    }
                };
                state.publish_api(crate::api::Published::new(
                    &snapshot,
                    weekly.as_deref(),
                    &self.figures.pricing.currency,
                ));
                crate::business_text(&snapshot).map(|text| (snapshot.at, text))
            }
            Err(e) => Err(e),
        };
        let took = started.elapsed();
        match result {
            Ok((at, text)) => {
                tracing::debug!(seconds = took.as_secs_f64(), %at, bytes = text.len(), "refreshed the business gauges");
                state.publish(text, at, took);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "refresh failed; serving the last good snapshot");
                state.refresh_failed(&e.to_string(), took);
                false
            }
        }
    }

    /// Refreshes at once, then every `interval`, until `shutdown` turns true. A refresh in
    /// progress at shutdown is dropped (it only reads).
    pub async fn run(
        self,
        state: Arc<ServiceState>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(interval);
        // A refresh slower than the interval delays the next one instead of piling them up.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    tokio::select! {
                        _ = self.refresh_once(&state) => {}
                        _ = shutdown.wait_for(|s| *s) => {}
                    }
                }
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Runs [`Refresher::run`] on a thread of its own, so the CPU-bound queries never hold up
    /// the consumer or a scrape.
    ///
    /// # Errors
    /// The thread or its runtime could not be started.
    pub fn spawn(
        self,
        state: Arc<ServiceState>,
        interval: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("buildcost-refresh".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the refresh runtime");
                        return;
                    }
                };
                runtime.block_on(self.run(state, interval, shutdown));
            })
    }
}
