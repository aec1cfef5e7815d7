//! The Arrow schema of a stored build and a builder that turns rows into record batches.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, MapBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use crate::event::BuildRow;
use crate::Result;

/// Timezone of every stored timestamp.
pub const TIMEZONE: &str = "UTC";

pub(crate) fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(TIMEZONE.into()))
}

fn labels_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(
                vec![
                    Field::new("keys", DataType::Utf8, false),
                    Field::new("values", DataType::Utf8, true),
                ]
                .into(),
            ),
            false,
        )),
        false,
    )
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::{Boolean, Float64, Int64, Utf8};
    Arc::new(Schema::new(vec![
        Field::new("event_id", Utf8, false),
        Field::new("source", Utf8, false),
        Field::new("build_id", Utf8, false),
        Field::new("pipeline", Utf8, false),
        Field::new("repository", Utf8, false),
        Field::new("branch", Utf8, true),
        Field::new("commit", Utf8, true),
        Field::new("trigger", Utf8, false),
        Field::new("team", Utf8, false),
        Field::new("product", Utf8, false),
        Field::new("author_key", Utf8, true),
        Field::new("queued_at", ts(), true),
        Field::new("started_at", ts(), false),
        Field::new("finished_at", ts(), false),
        Field::new("duration_s", Float64, false),
        Field::new("status", Utf8, false),
        Field::new("failure_stage", Utf8, true),
        Field::new("failure_category", Utf8, true),
        Field::new("category_source", Utf8, true),
        Field::new("runner_class", Utf8, false),
        Field::new("cpu_cores", Float64, true),
        Field::new("memory_gb", Float64, true),
        Field::new("gpus", Int64, true),
        Field::new("attempt", Int64, false),
        Field::new("superseded", Boolean, false),
        Field::new("correlation_id", Utf8, true),
        Field::new("labels", labels_type(), true),
        Field::new("ingested_at", ts(), false),
        Field::new("request_ids", text_list(), true),
    ]))
});

/// A list of strings (request ids), its items never null: `List<Utf8>` as every Parquet
/// reader reads it.
pub(crate) fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, false)))
}

/// A builder of [`text_list`] columns.
pub(crate) fn text_list_builder(rows: usize) -> ListBuilder<StringBuilder> {
    ListBuilder::with_capacity(StringBuilder::new(), rows).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        false,
    )))
}

/// The Arrow schema of a stored build (one row per accepted event).
pub fn build_schema() -> SchemaRef {
    SCHEMA.clone()
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Accumulates [`BuildRow`]s column by column and emits a [`RecordBatch`].
pub struct BatchBuilder {
    event_id: StringBuilder,
    source: StringBuilder,
    build_id: StringBuilder,
    pipeline: StringBuilder,
    repository: StringBuilder,
    branch: StringBuilder,
    commit: StringBuilder,
    trigger: StringBuilder,
    team: StringBuilder,
    product: StringBuilder,
    author_key: StringBuilder,
    queued_at: TimestampMicrosecondBuilder,
    started_at: TimestampMicrosecondBuilder,
    finished_at: TimestampMicrosecondBuilder,
    duration_s: Float64Builder,
    status: StringBuilder,
    failure_stage: StringBuilder,
    failure_category: StringBuilder,
    category_source: StringBuilder,
    runner_class: StringBuilder,
    cpu_cores: Float64Builder,
    memory_gb: Float64Builder,
    gpus: Int64Builder,
    attempt: Int64Builder,
    superseded: BooleanBuilder,
    correlation_id: StringBuilder,
    labels: MapBuilder<StringBuilder, StringBuilder>,
    ingested_at: TimestampMicrosecondBuilder,
    request_ids: ListBuilder<StringBuilder>,
    rows: usize,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    /// An empty builder with room for `rows` rows before it grows (each growth copies the
    /// columns built so far).
    pub fn with_capacity(rows: usize) -> Self {
        let t = || TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(TIMEZONE);
        // Bytes per value a column's text usually takes: ids and names are short.
        let text = |bytes: usize| StringBuilder::with_capacity(rows, rows * bytes);
        BatchBuilder {
            event_id: text(40),
            source: text(8),
            build_id: text(12),
            pipeline: text(16),
            repository: text(24),
            branch: text(24),
            commit: text(40),
            trigger: text(8),
            team: text(16),
            product: text(12),
            author_key: text(16),
            queued_at: t(),
            started_at: t(),
            finished_at: t(),
            duration_s: Float64Builder::with_capacity(rows),
            status: text(8),
            failure_stage: text(8),
            failure_category: text(8),
            category_source: text(8),
            runner_class: text(8),
            cpu_cores: Float64Builder::with_capacity(rows),
            memory_gb: Float64Builder::with_capacity(rows),
            gpus: Int64Builder::with_capacity(rows),
            attempt: Int64Builder::with_capacity(rows),
            superseded: BooleanBuilder::with_capacity(rows),
            correlation_id: text(8),
            labels: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            ingested_at: t(),
            request_ids: text_list_builder(rows),
            rows: 0,
        }
    }

    /// Rows appended since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row is pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row.
    pub fn append(&mut self, row: &BuildRow) {
        self.event_id.append_value(&row.event_id);
        self.source.append_value(&row.source);
        self.build_id.append_value(&row.build_id);
        self.pipeline.append_value(&row.pipeline);
        self.repository.append_value(&row.repository);
        self.branch.append_option(row.branch.as_deref());
        self.commit.append_option(row.commit.as_deref());
        self.trigger.append_value(row.trigger.as_str());
        self.team.append_value(&row.team);
        self.product.append_value(&row.product);
        self.author_key.append_option(row.author_key.as_deref());
        self.queued_at.append_option(row.queued_at.map(micros));
        self.started_at.append_value(micros(row.started_at));
        self.finished_at.append_value(micros(row.finished_at));
        self.duration_s.append_value(row.duration_s);
        self.status.append_value(row.status.as_str());
        self.failure_stage
            .append_option(row.failure_stage.map(|s| s.as_str()));
        self.failure_category
            .append_option(row.failure_category.map(|c| c.as_str()));
        self.category_source
            .append_option(row.category_source.map(|c| c.as_str()));
        self.runner_class.append_value(&row.runner_class);
        self.cpu_cores.append_option(row.cpu_cores);
        self.memory_gb.append_option(row.memory_gb);
        self.gpus.append_option(row.gpus);
        self.attempt.append_value(row.attempt);
        self.superseded.append_value(row.superseded);
        self.correlation_id
            .append_option(row.correlation_id.as_deref());
        if row.labels.is_empty() {
            self.labels.append(false).unwrap_or_default();
        } else {
            for (k, v) in &row.labels {
                self.labels.keys().append_value(k);
                self.labels.values().append_value(v);
            }
            self.labels.append(true).unwrap_or_default();
        }
        self.ingested_at.append_value(micros(row.ingested_at));
        for id in &row.request_ids {
            self.request_ids.values().append_value(id);
        }
        self.request_ids.append(true);
        self.rows += 1;
    }

    /// Emits the pending rows as a batch and starts afresh.
    ///
    /// # Errors
    /// Only on a bug (the builder and the schema disagree).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.build_id.finish()),
            Arc::new(self.pipeline.finish()),
            Arc::new(self.repository.finish()),
            Arc::new(self.branch.finish()),
            Arc::new(self.commit.finish()),
            Arc::new(self.trigger.finish()),
            Arc::new(self.team.finish()),
            Arc::new(self.product.finish()),
            Arc::new(self.author_key.finish()),
            Arc::new(self.queued_at.finish()),
            Arc::new(self.started_at.finish()),
            Arc::new(self.finished_at.finish()),
            Arc::new(self.duration_s.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.failure_stage.finish()),
            Arc::new(self.failure_category.finish()),
            Arc::new(self.category_source.finish()),
            Arc::new(self.runner_class.finish()),
            Arc::new(self.cpu_cores.finish()),
            Arc::new(self.memory_gb.finish()),
            Arc::new(self.gpus.finish()),
            Arc::new(self.attempt.finish()),
            Arc::new(self.superseded.finish()),
            Arc::new(self.correlation_id.finish()),
            Arc::new(self.labels.finish()),
            Arc::new(self.ingested_at.finish()),
            Arc::new(self.request_ids.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(build_schema(), columns)?)
    }
}
