//! Bytes → validated [`BuildRow`] or [`Rejection`] (spec sections 2–4).
//!
//! The decoder is total: every byte string gives a row or exactly one rejection reason, checked
//! in the spec's order (`too_large`, `invalid_json`, `unsupported_version`, `missing_field`,
//! `invalid_field`, `invalid_timestamp`). Fields are first captured as raw JSON text, so an
//! unknown field is skipped without being interpreted (a huge number in a field we do not know
//! does not reject the event), and each known field is then read by its own rule.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::classify::Classifier;
use crate::delivery::{
    DeploymentRow, DeploymentStatus, Event, EventKind, RequestIds, RequestRow,
    MAX_CHANGE_TITLE_BYTES, MAX_CORRELATION_IDS,
};
use crate::event::{
    BuildRow, CategorySource, FailureCategory, FailureStage, Status, Trigger, Vocabulary,
};
use crate::pseudonym::Pseudonymiser;
use crate::reject::{RejectReason, Rejection};

/// Default `max_event_bytes`: 64 KiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024;
/// Longest name or id, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest `log_excerpt`, in bytes (8 KiB).
pub const MAX_LOG_EXCERPT_BYTES: usize = 8 * 1024;
/// Longest build: 7 days.
pub const MAX_BUILD_DURATION: Duration = Duration::days(7);
/// How far in the future of ingestion `finished_at` may be: 1 hour (clock skew).
pub const MAX_FUTURE_SKEW: Duration = Duration::hours(1);

/// The fields of a schema-1 event, each as raw JSON text.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    schema_version: Option<&'a RawValue>,
    #[serde(borrow)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    build_id: Option<&'a RawValue>,
    #[serde(borrow)]
    pipeline: Option<&'a RawValue>,
    #[serde(borrow)]
    repository: Option<&'a RawValue>,
    #[serde(borrow)]
    branch: Option<&'a RawValue>,
    #[serde(borrow)]
    commit: Option<&'a RawValue>,
    #[serde(borrow)]
    trigger: Option<&'a RawValue>,
    #[serde(borrow)]
    team: Option<&'a RawValue>,
    #[serde(borrow)]
    product: Option<&'a RawValue>,
    #[serde(borrow)]
    author: Option<&'a RawValue>,
    #[serde(borrow)]
    queued_at: Option<&'a RawValue>,
    #[serde(borrow)]
    started_at: Option<&'a RawValue>,
    #[serde(borrow)]
    finished_at: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<&'a RawValue>,
    #[serde(borrow)]
    failure_stage: Option<&'a RawValue>,
    #[serde(borrow)]
    failure_category: Option<&'a RawValue>,
    #[serde(borrow)]
    log_excerpt: Option<&'a RawValue>,
    #[serde(borrow)]
    runner_class: Option<&'a RawValue>,
    #[serde(borrow)]
    cpu_cores: Option<&'a RawValue>,
    #[serde(borrow)]
    memory_gb: Option<&'a RawValue>,
    #[serde(borrow)]
    gpus: Option<&'a RawValue>,
    #[serde(borrow)]
    attempt: Option<&'a RawValue>,
    #[serde(borrow)]
    superseded: Option<&'a RawValue>,
    #[serde(borrow)]
    correlation_id: Option<&'a RawValue>,
    #[serde(borrow)]
    labels: Option<&'a RawValue>,
    #[serde(borrow)]
    change_title: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    environment: Option<&'a RawValue>,
    #[serde(borrow)]
    correlation_ids: Option<&'a RawValue>,
    #[serde(borrow)]
    requested_at: Option<&'a RawValue>,
}

/// Decodes, validates, normalises, pseudonymises and classifies events of every kind (builds,
/// deployments, requests).
#[derive(Debug, Clone)]
pub struct Decoder {
    max_event_bytes: usize,
    pseudonymiser: Pseudonymiser,
    classifier: Classifier,
    request_ids: RequestIds,
    /// Builds that finished longer ago than this before ingestion are `invalid_timestamp`
    /// (`store.retention_days`: they would be stored and then deleted).
    max_age: Option<Duration>,
}

type Check<T> = Result<T, Rejection>;

fn invalid(field: &str, rule: impl std::fmt::Display) -> Rejection {
    Rejection::new(RejectReason::InvalidField, format!("`{field}` {rule}"))
}

/// A field the caller has checked to be present; `null` otherwise (then rejected as wrong type).
fn req(raw: Option<&RawValue>) -> &RawValue {
    raw.unwrap_or(RawValue::NULL)
}

/// The field's raw JSON when it is present and not `null` (a JSON `null` counts as absent).
fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|r| r.get() != "null")
}

/// A JSON string's content, or a rejection naming the field.
fn text<'a>(field: &str, raw: &'a RawValue) -> Check<std::borrow::Cow<'a, str>> {
    let json = raw.get();
    if !json.starts_with('"') {
        return Err(invalid(field, "must be a string"));
    }
    let inner = &json[1..json.len() - 1];
    if !inner.contains('\\') {
        return Ok(std::borrow::Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(json)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| {
            Rejection::new(
                RejectReason::InvalidJson,
                format!("`{field}` holds an escape that is not valid Unicode (a lone surrogate?)"),
            )
        })
}

/// A non-empty name or id of at most [`MAX_NAME_CHARS`] characters.
fn name<'a>(field: &str, raw: &'a RawValue) -> Check<std::borrow::Cow<'a, str>> {
    let value = text(field, raw)?;
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(invalid(
            field,
            format!("is {chars} characters long; the limit is {MAX_NAME_CHARS}"),
        ));
    }
    Ok(value)
}

/// The first C0 control character (U+0000–U+001F) or U+007F in `value`, if any: not allowed
/// in names (they would break CSV and Markdown rows and label readability).
fn control_char(value: &str) -> Option<char> {
    value.chars().find(|c| (*c as u32) < 0x20 || *c == '\u{7f}')
}

/// A [`name`] that is shown in rows and labels: no control character.
fn shown_name<'a>(field: &str, raw: &'a RawValue) -> Check<std::borrow::Cow<'a, str>> {
    let value = name(field, raw)?;
    if let Some(c) = control_char(&value) {
        return Err(invalid(
            field,
            format!("holds the control character U+{:04X}", c as u32),
        ));
    }
    Ok(value)
}

/// An optional field checked by `check` when present (neither absent nor null).
fn optional<'a, T>(
    field: &str,
    raw: Option<&'a RawValue>,
    check: fn(&str, &'a RawValue) -> Check<T>,
) -> Check<Option<T>> {
    present(raw).map(|r| check(field, r)).transpose()
}

fn opt_shown_name<'a>(
    field: &str,
    raw: Option<&'a RawValue>,
) -> Check<Option<std::borrow::Cow<'a, str>>> {
    optional(field, raw, shown_name)
}

fn opt_name<'a>(
    field: &str,
    raw: Option<&'a RawValue>,
) -> Check<Option<std::borrow::Cow<'a, str>>> {
    optional(field, raw, name)
}

/// Trimmed and lower-cased, for `team` and `product`.
fn normalised(field: &str, value: &str) -> Check<String> {
    let n = value.trim().to_lowercase();
    if n.is_empty() {
        return Err(invalid(field, "must not be blank"));
    }
    Ok(n)
}

fn vocabulary<T: Vocabulary>(field: &str, raw: Option<&RawValue>) -> Check<Option<T>> {
    match opt_name(field, raw)? {
        None => Ok(None),
        Some(v) => T::parse(&v)
            .map(Some)
            .ok_or_else(|| invalid(field, format!("must be one of {}", T::spellings()))),
    }
}

fn number(field: &str, raw: &RawValue) -> Check<f64> {
    let json = raw.get();
    let first = json.as_bytes().first().copied().unwrap_or(b' ');
    if !(first == b'-' || first.is_ascii_digit()) {
        return Err(invalid(field, "must be a number"));
    }
    match serde_json::from_str::<f64>(json) {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(invalid(field, "is out of range (not a finite number)")),
    }
}

fn opt_number(field: &str, raw: Option<&RawValue>) -> Check<Option<f64>> {
    match present(raw) {
        Some(r) => number(field, r).map(Some),
        _ => Ok(None),
    }
}

fn opt_integer(field: &str, raw: Option<&RawValue>, min: i64) -> Check<Option<i64>> {
    let Some(v) = opt_number(field, raw)? else {
        return Ok(None);
    };
    // JSON Schema's "integer" is a mathematical integer: 2 and 2.0 both qualify.
    if v.fract() != 0.0 {
        return Err(invalid(field, "must be a whole number"));
    }
    if !(min as f64..=9.007_199_254_740_992e15).contains(&v) {
        return Err(invalid(
            field,
            format!("must be at least {min} and at most 2^53"),
        ));
    }
    Ok(Some(v as i64))
}

fn timestamp_text<'a>(
    field: &str,
    raw: Option<&'a RawValue>,
) -> Check<Option<std::borrow::Cow<'a, str>>> {
    match present(raw) {
        Some(r) => {
            let value = text(field, r)?;
            if value.is_empty() {
                return Err(invalid(field, "must not be empty"));
            }
            Ok(Some(value))
        }
        _ => Ok(None),
    }
}

fn parse_time(field: &str, value: &str) -> Check<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Rejection::new(
                RejectReason::InvalidTimestamp,
                format!("`{field}` is not an RFC 3339 timestamp ({e})"),
            )
        })
}

const REQUIRED: &[&str] = &[
    "event_id",
    "source",
    "build_id",
    "pipeline",
    "repository",
    "team",
    "started_at",
    "finished_at",
    "status",
    "runner_class",
];

impl Decoder {
    /// A decoder with the given size limit, pseudonymiser and classifier.
    pub fn new(
        max_event_bytes: usize,
        pseudonymiser: Pseudonymiser,
        classifier: Classifier,
    ) -> Self {
        Decoder {
            max_event_bytes,
            pseudonymiser,
            classifier,
            request_ids: RequestIds::default(),
            max_age: None,
        }
    }

    /// Finds request ids in branches and change titles with `request_ids`
    /// (`delivery.request_id_pattern`; default [`crate::DEFAULT_REQUEST_ID_PATTERN`]).
    #[must_use]
    pub fn with_request_ids(mut self, request_ids: RequestIds) -> Self {
        self.request_ids = request_ids;
        self
    }

    /// Rejects builds that finished more than `days` before ingestion as `invalid_timestamp`
    /// (the store's retention: such a build would be stored and then deleted).
    #[must_use]
    pub fn with_retention_days(mut self, days: u32) -> Self {
        self.max_age = Some(Duration::days(i64::from(days)));
        self
    }

    /// The size limit in bytes.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Decodes one message received at `now`.
    ///
    /// # Errors
    /// A [`Rejection`] with exactly one reason; the message is then dead-lettered by the caller.
    pub fn decode(&self, bytes: &[u8], now: DateTime<Utc>) -> Result<Event, Rejection> {
        if bytes.len() > self.max_event_bytes {
            return Err(Rejection::new(
                RejectReason::TooLarge,
                format!(
                    "{} bytes; the limit is {}",
                    bytes.len(),
                    self.max_event_bytes
                ),
            ));
        }
        let json = std::str::from_utf8(bytes)
            .map_err(|e| Rejection::new(RejectReason::InvalidJson, format!("not UTF-8: {e}")))?;
        let raw: RawEvent<'_> = serde_json::from_str(json).map_err(|e| {
            let what = if e.is_data() {
                "not a JSON object"
            } else {
                "not JSON"
            };
            Rejection::new(RejectReason::InvalidJson, format!("{what}: {e}"))
        })?;

        match raw.schema_version {
            None => {
                return Err(Rejection::new(
                    RejectReason::UnsupportedVersion,
                    "`schema_version` is missing; this decoder reads version 1",
                ))
            }
            Some(v) if serde_json::from_str::<f64>(v.get()).ok() != Some(1.0) => {
                return Err(Rejection::new(
                    RejectReason::UnsupportedVersion,
                    format!(
                        "`schema_version` is {}; this decoder reads version 1",
                        truncate(v.get(), 40)
                    ),
                ))
            }
            Some(_) => {}
        }
        let kind = match present(raw.kind) {
            None => EventKind::Build,
            Some(t) => match t.get() {
                r#""build""# => EventKind::Build,
                r#""deployment""# => EventKind::Deployment,
                r#""request""# => EventKind::Request,
                other => {
                    return Err(invalid(
                        "type",
                        format!(
                            "is {}; it must be \"build\", \"deployment\" or \"request\"",
                            truncate(other, 40)
                        ),
                    ))
                }
            },
        };
        match kind {
            EventKind::Build => {}
            EventKind::Deployment => return self.deployment(&raw, now).map(Event::Deployment),
            EventKind::Request => return self.request(&raw, now).map(Event::Request),
        }

        let required = [
            raw.event_id,
            raw.source,
            raw.build_id,
            raw.pipeline,
            raw.repository,
            raw.team,
            raw.started_at,
            raw.finished_at,
            raw.status,
            raw.runner_class,
        ];
        let missing: Vec<&str> = REQUIRED
            .iter()
            .zip(required)
            .filter(|(_, r)| present(*r).is_none())
            .map(|(f, _)| *f)
            .collect();
        missing_fields(&missing)?;
        self.fields(&raw, now).map(Event::Build)
    }

    fn fields<'a>(&self, raw: &RawEvent<'a>, now: DateTime<Utc>) -> Check<BuildRow> {
        // Every required field is present (checked by the caller); `req` only unwraps that.
        let event_id = shown_name("event_id", req(raw.event_id))?.into_owned();
        let source = shown_name("source", req(raw.source))?.into_owned();
        let build_id = shown_name("build_id", req(raw.build_id))?.into_owned();
        let pipeline = shown_name("pipeline", req(raw.pipeline))?.into_owned();
        let repository = shown_name("repository", req(raw.repository))?.into_owned();
        let branch = opt_shown_name("branch", raw.branch)?.map(|s| s.into_owned());
        let commit = opt_name("commit", raw.commit)?.map(|s| s.into_owned());
        let trigger = vocabulary::<Trigger>("trigger", raw.trigger)?.unwrap_or(Trigger::Other);
        let team = normalised("team", &shown_name("team", req(raw.team))?)?;
        let product = match opt_shown_name("product", raw.product)? {
            Some(p) => normalised("product", &p)?,
            None => "unassigned".to_owned(),
        };
        let author = opt_name("author", raw.author)?;
        if let Some(a) = &author {
            if a.trim().is_empty() {
                return Err(invalid("author", "must not be blank"));
            }
        }
        let queued_at = timestamp_text("queued_at", raw.queued_at)?;
        let started_at = timestamp_text("started_at", raw.started_at)?;
        let finished_at = timestamp_text("finished_at", raw.finished_at)?;
        let status = vocabulary::<Status>("status", raw.status)?
            .ok_or_else(|| invalid("status", "is required"))?;
        let failure_stage = vocabulary::<FailureStage>("failure_stage", raw.failure_stage)?;
        let failure_category =
            vocabulary::<FailureCategory>("failure_category", raw.failure_category)?;
        let log_excerpt = match present(raw.log_excerpt) {
            Some(r) => {
                let log = text("log_excerpt", r)?;
                if log.is_empty() {
                    return Err(invalid("log_excerpt", "must not be empty"));
                }
                if log.len() > MAX_LOG_EXCERPT_BYTES {
                    return Err(invalid(
                        "log_excerpt",
                        format!(
                            "is {} bytes; the limit is {MAX_LOG_EXCERPT_BYTES}",
                            log.len()
                        ),
                    ));
                }
                Some(log)
            }
            _ => None,
        };
        let runner_class = shown_name("runner_class", req(raw.runner_class))?.into_owned();
        let cpu_cores = opt_number("cpu_cores", raw.cpu_cores)?;
        if cpu_cores.is_some_and(|c| c <= 0.0) {
            return Err(invalid("cpu_cores", "must be greater than 0"));
        }
        let memory_gb = opt_number("memory_gb", raw.memory_gb)?;
        if memory_gb.is_some_and(|m| m < 0.0) {
            return Err(invalid("memory_gb", "must be 0 or more"));
        }
        let gpus = opt_integer("gpus", raw.gpus, 0)?;
        let attempt = opt_integer("attempt", raw.attempt, 1)?.unwrap_or(1);
        let superseded = match present(raw.superseded) {
            Some(r) => match r.get() {
                "true" => true,
                "false" => false,
                _ => return Err(invalid("superseded", "must be true or false")),
            },
            _ => false,
        };
        let correlation_id =
            opt_name("correlation_id", raw.correlation_id)?.map(|s| s.into_owned());
        let change_title = match present(raw.change_title) {
            Some(r) => {
                let title = text("change_title", r)?;
                if title.is_empty() {
                    return Err(invalid("change_title", "must not be empty"));
                }
                if title.len() > MAX_CHANGE_TITLE_BYTES {
                    return Err(invalid(
                        "change_title",
                        format!(
                            "is {} bytes; the limit is {MAX_CHANGE_TITLE_BYTES}",
                            title.len()
                        ),
                    ));
                }
                Some(title)
            }
            _ => None,
        };
        let labels = match present(raw.labels) {
            Some(r) => {
                if !r.get().starts_with('{') {
                    return Err(invalid("labels", "must be an object of strings"));
                }
                let labels: Vec<(String, String)> =
                    serde_json::from_str::<BTreeMap<String, String>>(r.get())
                        .map_err(|_| {
                            invalid("labels", "must be an object whose values are strings")
                        })?
                        .into_iter()
                        .collect();
                for (k, v) in &labels {
                    if let Some(c) = control_char(k).or_else(|| control_char(v)) {
                        return Err(invalid(
                            &format!("labels.{}", k.escape_default()),
                            format!("holds the control character U+{:04X}", c as u32),
                        ));
                    }
                }
                labels
            }
            _ => Vec::new(),
        };

        // Time rules come last: `invalid_timestamp` is the last reason in the order.
        let started = parse_time("started_at", &started_at.unwrap_or_default())?;
        let finished = parse_time("finished_at", &finished_at.unwrap_or_default())?;
        let queued = queued_at.map(|q| parse_time("queued_at", &q)).transpose()?;
        let time_rule = |detail: String| Rejection::new(RejectReason::InvalidTimestamp, detail);
        if finished < started {
            return Err(time_rule("`finished_at` is before `started_at`".into()));
        }
        if finished - started > MAX_BUILD_DURATION {
            return Err(time_rule("the build lasted more than 7 days".into()));
        }
        Self::not_future("finished_at", finished, now)?;
        if queued.is_some_and(|q| q > started) {
            return Err(time_rule("`queued_at` is after `started_at`".into()));
        }
        self.within_retention("finished_at", finished, now)?;

        let (failure_category, category_source) = match (status, failure_category) {
            (_, Some(c)) => (Some(c), Some(CategorySource::Event)),
            (Status::Failure, None) => {
                let (c, s) = self
                    .classifier
                    .classify(log_excerpt.as_deref(), failure_stage);
                (Some(c), Some(s))
            }
            _ => (None, None),
        };
        let request_ids = self.request_ids.of_build(
            correlation_id.as_deref(),
            branch.as_deref(),
            change_title.as_deref(),
        );
        let duration = finished - started;
        let duration_s = duration.num_seconds() as f64 + f64::from(duration.subsec_nanos()) / 1e9;

        Ok(BuildRow {
            event_id,
            source,
            build_id,
            pipeline,
            repository,
            branch,
            commit,
            trigger,
            team,
            product,
            author_key: author.map(|a| self.pseudonymiser.author_key(&a)),
            queued_at: queued,
            started_at: started,
            finished_at: finished,
            duration_s,
            status,
            failure_stage,
            failure_category,
            category_source,
            runner_class,
            cpu_cores,
            memory_gb,
            gpus,
            attempt,
            superseded,
            correlation_id,
            request_ids,
            labels,
            ingested_at: now,
        })
    }

    /// `invalid_timestamp` when `instant` is older than the retention before `now`.
    fn within_retention(
        &self,
        field: &str,
        instant: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Check<()> {
        match self.max_age {
            Some(max_age) if instant < now - max_age => Err(Rejection::new(
                RejectReason::InvalidTimestamp,
                format!(
                    "`{field}` is older than the retention ({} days before the time of \
                     ingestion); raise store.retention_days to backfill older history",
                    max_age.num_days()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// `invalid_timestamp` when `instant` is more than an hour after `now`.
    fn not_future(field: &str, instant: DateTime<Utc>, now: DateTime<Utc>) -> Check<()> {
        if instant > now + MAX_FUTURE_SKEW {
            return Err(Rejection::new(
                RejectReason::InvalidTimestamp,
                format!(
                    "`{field}` is more than 1 hour after the time of ingestion ({})",
                    now.to_rfc3339()
                ),
            ));
        }
        Ok(())
    }

    /// A deployment (spec section 12); `author` is ignored, never stored.
    fn deployment(&self, raw: &RawEvent<'_>, now: DateTime<Utc>) -> Check<DeploymentRow> {
        let fields = [
            ("event_id", raw.event_id),
            ("source", raw.source),
            ("repository", raw.repository),
            ("commit", raw.commit),
            ("environment", raw.environment),
            ("team", raw.team),
            ("status", raw.status),
            ("finished_at", raw.finished_at),
        ];
        missing_fields(&absent(&fields))?;
        let event_id = shown_name("event_id", req(raw.event_id))?.into_owned();
        let source = shown_name("source", req(raw.source))?.into_owned();
        let repository = shown_name("repository", req(raw.repository))?.into_owned();
        let commit = name("commit", req(raw.commit))?.into_owned();
        let environment = normalised(
            "environment",
            &shown_name("environment", req(raw.environment))?,
        )?;
        let team = normalised("team", &shown_name("team", req(raw.team))?)?;
        let product = match opt_shown_name("product", raw.product)? {
            Some(p) => normalised("product", &p)?,
            None => "unassigned".to_owned(),
        };
        let status = vocabulary::<DeploymentStatus>("status", raw.status)?
            .ok_or_else(|| invalid("status", "is required"))?;
        let mut correlation_ids = match present(raw.correlation_ids) {
            Some(r) => id_list("correlation_ids", r)?,
            None => Vec::new(),
        };
        correlation_ids.sort();
        correlation_ids.dedup();
        let started_at = timestamp_text("started_at", raw.started_at)?;
        let finished_at = timestamp_text("finished_at", raw.finished_at)?;
        let finished = parse_time("finished_at", &finished_at.unwrap_or_default())?;
        let started = started_at
            .map(|s| parse_time("started_at", &s))
            .transpose()?;
        if started.is_some_and(|s| s > finished) {
            return Err(Rejection::new(
                RejectReason::InvalidTimestamp,
                "`started_at` is after `finished_at`",
            ));
        }
        Self::not_future("finished_at", finished, now)?;
        self.within_retention("finished_at", finished, now)?;
        Ok(DeploymentRow {
            event_id,
            source,
            repository,
            commit,
            environment,
            team,
            product,
            status,
            started_at: started,
            finished_at: finished,
            correlation_ids,
            ingested_at: now,
        })
    }

    /// A business request (spec section 12); titles, reporters and `author` are ignored.
    fn request(&self, raw: &RawEvent<'_>, now: DateTime<Utc>) -> Check<RequestRow> {
        let fields = [
            ("event_id", raw.event_id),
            ("source", raw.source),
            ("correlation_id", raw.correlation_id),
            ("requested_at", raw.requested_at),
        ];
        missing_fields(&absent(&fields))?;
        let event_id = shown_name("event_id", req(raw.event_id))?.into_owned();
        let source = shown_name("source", req(raw.source))?.into_owned();
        let correlation_id = name("correlation_id", req(raw.correlation_id))?.into_owned();
        let team = opt_shown_name("team", raw.team)?
            .map(|t| normalised("team", &t))
            .transpose()?;
        let product = opt_shown_name("product", raw.product)?
            .map(|p| normalised("product", &p))
            .transpose()?;
        let requested_at = timestamp_text("requested_at", raw.requested_at)?;
        let requested = parse_time("requested_at", &requested_at.unwrap_or_default())?;
        Self::not_future("requested_at", requested, now)?;
        self.within_retention("requested_at", requested, now)?;
        Ok(RequestRow {
            event_id,
            source,
            correlation_id,
            requested_at: requested,
            team,
            product,
            ingested_at: now,
        })
    }
}

/// The names of the fields that are absent or null.
fn absent<'a>(fields: &[(&'a str, Option<&RawValue>)]) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(_, r)| present(*r).is_none())
        .map(|(f, _)| *f)
        .collect()
}

/// `missing_field` naming `missing`, unless it is empty.
fn missing_fields(missing: &[&str]) -> Check<()> {
    if missing.is_empty() {
        return Ok(());
    }
    Err(Rejection::new(
        RejectReason::MissingField,
        format!("required field(s) missing or null: {}", missing.join(", ")),
    ))
}

/// An array of at most [`MAX_CORRELATION_IDS`] ids, each a [`name`].
fn id_list(field: &str, raw: &RawValue) -> Check<Vec<String>> {
    if !raw.get().starts_with('[') {
        return Err(invalid(field, "must be an array of strings"));
    }
    let items: Vec<&RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| invalid(field, "must be an array of strings"))?;
    if items.len() > MAX_CORRELATION_IDS {
        return Err(invalid(
            field,
            format!(
                "holds {} ids; the limit is {MAX_CORRELATION_IDS}",
                items.len()
            ),
        ));
    }
    items
        .into_iter()
        .map(|item| name(&format!("{field}[]"), item).map(|id| id.into_owned()))
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests;
