//! The Arrow schemas of stored deployments and requests, and their batch builders.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, ListBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::{DeploymentRow, RequestRow};
use crate::batch::{micros, text_list, text_list_builder, ts, TIMEZONE};
use crate::Result;

static DEPLOYMENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::Utf8;
    Arc::new(Schema::new(vec![
        Field::new("event_id", Utf8, false),
        Field::new("source", Utf8, false),
        Field::new("repository", Utf8, false),
        Field::new("commit", Utf8, false),
        Field::new("environment", Utf8, false),
        Field::new("team", Utf8, false),
        Field::new("product", Utf8, false),
        Field::new("status", Utf8, false),
        Field::new("started_at", ts(), true),
        Field::new("finished_at", ts(), false),
        Field::new("correlation_ids", text_list(), false),
        Field::new("ingested_at", ts(), false),
    ]))
});

static REQUESTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::Utf8;
    Arc::new(Schema::new(vec![
        Field::new("event_id", Utf8, false),
        Field::new("source", Utf8, false),
        Field::new("correlation_id", Utf8, false),
        Field::new("requested_at", ts(), false),
        Field::new("team", Utf8, true),
        Field::new("product", Utf8, true),
        Field::new("ingested_at", ts(), false),
    ]))
});

/// The Arrow schema of a stored deployment.
pub fn deployment_schema() -> SchemaRef {
    DEPLOYMENTS.clone()
}

/// The Arrow schema of a stored request.
pub fn request_schema() -> SchemaRef {
    REQUESTS.clone()
}

fn timestamps(rows: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(TIMEZONE)
}

/// Accumulates [`DeploymentRow`]s and emits a [`RecordBatch`].
pub struct DeploymentBuilder {
    text: [StringBuilder; 8],
    started_at: TimestampMicrosecondBuilder,
    finished_at: TimestampMicrosecondBuilder,
    correlation_ids: ListBuilder<StringBuilder>,
    ingested_at: TimestampMicrosecondBuilder,
    rows: usize,
}

impl DeploymentBuilder {
    /// An empty builder with room for `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        DeploymentBuilder {
            text: std::array::from_fn(|_| StringBuilder::with_capacity(rows, rows * 16)),
            started_at: timestamps(rows),
            finished_at: timestamps(rows),
            correlation_ids: text_list_builder(rows),
            ingested_at: timestamps(rows),
            rows: 0,
        }
    }

    /// Rows pending.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row is pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row.
    pub fn append(&mut self, row: &DeploymentRow) {
        let values = [
            &row.event_id,
            &row.source,
            &row.repository,
            &row.commit,
            &row.environment,
            &row.team,
            &row.product,
        ];
        for (builder, value) in self.text.iter_mut().zip(values) {
            builder.append_value(value);
        }
        self.text[7].append_value(row.status.as_str());
        self.started_at.append_option(row.started_at.map(micros));
        self.finished_at.append_value(micros(row.finished_at));
        for id in &row.correlation_ids {
            self.correlation_ids.values().append_value(id);
        }
        self.correlation_ids.append(true);
        self.ingested_at.append_value(micros(row.ingested_at));
        self.rows += 1;
    }

    /// Emits the pending rows as a batch and starts afresh.
    ///
    /// # Errors
    /// Only on a bug (the builder and the schema disagree).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = self
            .text
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        columns.extend([
            Arc::new(self.started_at.finish()) as ArrayRef,
            Arc::new(self.finished_at.finish()),
            Arc::new(self.correlation_ids.finish()),
            Arc::new(self.ingested_at.finish()),
        ]);
        self.rows = 0;
        Ok(RecordBatch::try_new(deployment_schema(), columns)?)
    }
}

/// Accumulates [`RequestRow`]s and emits a [`RecordBatch`].
pub struct RequestBuilder {
    text: [StringBuilder; 3],
    requested_at: TimestampMicrosecondBuilder,
    team: StringBuilder,
    product: StringBuilder,
    ingested_at: TimestampMicrosecondBuilder,
    rows: usize,
}

impl RequestBuilder {
    /// An empty builder with room for `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        let text = || StringBuilder::with_capacity(rows, rows * 16);
        RequestBuilder {
            text: std::array::from_fn(|_| text()),
            requested_at: timestamps(rows),
            team: text(),
            product: text(),
            ingested_at: timestamps(rows),
            rows: 0,
        }
    }

    /// Rows pending.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row is pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row.
    pub fn append(&mut self, row: &RequestRow) {
        for (builder, value) in
            self.text
                .iter_mut()
                .zip([&row.event_id, &row.source, &row.correlation_id])
        {
            builder.append_value(value);
        }
        self.requested_at.append_value(micros(row.requested_at));
        self.team.append_option(row.team.as_deref());
        self.product.append_option(row.product.as_deref());
        self.ingested_at.append_value(micros(row.ingested_at));
        self.rows += 1;
    }

    /// Emits the pending rows as a batch and starts afresh.
    ///
    /// # Errors
    /// Only on a bug (the builder and the schema disagree).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = self
            .text
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        columns.extend([
            Arc::new(self.requested_at.finish()) as ArrayRef,
            Arc::new(self.team.finish()),
            Arc::new(self.product.finish()),
            Arc::new(self.ingested_at.finish()),
        ]);
        self.rows = 0;
        Ok(RecordBatch::try_new(request_schema(), columns)?)
    }
}
