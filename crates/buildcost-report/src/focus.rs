//! The FOCUS 1.2 export (spec section 13): CI cost as a FinOps Open Cost and Usage
//! Specification dataset, so the FinOps tools that read cloud bills read CI next to them.
//!
//! One row per (UTC day, team row, CI system, repository, runner class, waste class), from the
//! figures engine's [`Charge`]s (classified as the gauges are), teams placed by the one
//! small-team rule ([`RowOf`]): a team below `privacy.min_team_size` is its product's
//! `_small_teams` row (or the org-wide `_small_teams` / `_all`), its repositories merged
//! (`ResourceId` null); an org-wide bucket itself below the minimum is `_unattributed` (its cost
//! kept: FinOps totals reconcile). Cost columns are `Decimal128(38, 12)` in Parquet, the engine's
//! exact sums as they are; instants UTC.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
    UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use buildcost_model::config::ConfigError;
use buildcost_model::{Exact, WasteClass};
use buildcost_query::{Charge, RowOf, TeamInfo, ALL_PRODUCTS, SMALL_TEAMS};
use chrono::{Datelike, NaiveDate, NaiveTime};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where a small team's cost goes when the org-wide small-teams bucket is itself below the
/// minimum size (the spec's amendment): kept, attributed to no one.
pub const UNATTRIBUTED: &str = "_unattributed";
/// Decimal scale of the cost and quantity columns: the engine's exact 10⁻¹² units.
pub const SCALE: i8 = 12;

/// `[focus]`: who the export says bills the CI cost.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FocusConfig {
    /// `ProviderName`, `PublisherName`, `InvoiceIssuerName`.
    pub provider_name: String,
    /// `BillingAccountId`.
    pub billing_account_id: String,
    /// `BillingAccountName`.
    pub billing_account_name: String,
}

impl Default for FocusConfig {
    fn default() -> Self {
        FocusConfig {
            provider_name: "Internal CI platform".into(),
            billing_account_id: "internal-ci".into(),
            billing_account_name: "Internal CI platform".into(),
        }
    }
}

impl FocusConfig {
    /// Checks the section.
    ///
    /// # Errors
    /// An empty value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("focus.provider_name", &self.provider_name),
            ("focus.billing_account_id", &self.billing_account_id),
            ("focus.billing_account_name", &self.billing_account_name),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::new(key, "must not be empty"));
            }
        }
        Ok(())
    }
}

/// The export's columns, in order: FOCUS 1.2 columns, then the `x_` ones.
pub fn schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let money = |name: &str| Field::new(name, DataType::Decimal128(38, SCALE), false);
    let instant = |name: &str| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        )
    };
    Arc::new(Schema::new(vec![
        money("BilledCost"),
        text("BillingAccountId", false),
        text("BillingAccountName", false),
        text("BillingCurrency", false),
        instant("BillingPeriodEnd"),
        instant("BillingPeriodStart"),
        text("ChargeCategory", false),
        text("ChargeClass", true),
        text("ChargeDescription", false),
        text("ChargeFrequency", false),
        instant("ChargePeriodEnd"),
        instant("ChargePeriodStart"),
        text("CommitmentDiscountStatus", true),
        money("ConsumedQuantity"),
        text("ConsumedUnit", false),
        money("ContractedCost"),
        money("EffectiveCost"),
        text("InvoiceId", true),
        text("InvoiceIssuerName", false),
        money("ListCost"),
        text("PricingCategory", false),
        money("PricingQuantity"),
        text("PricingUnit", false),
        text("ProviderName", false),
        text("PublisherName", false),
        text("ResourceId", true),
        text("ResourceName", true),
        text("ResourceType", true),
        text("ServiceCategory", false),
        text("ServiceName", false),
        text("ServiceSubcategory", false),
        text("SkuId", false),
        text("SubAccountId", false),
        text("SubAccountName", false),
        text("SubAccountType", false),
        text("Tags", false),
        text("x_WasteClass", false),
        text("x_WasteOwner", true),
        Field::new("x_Builds", DataType::UInt64, false),
        Field::new("x_UnpricedBuilds", DataType::UInt64, false),
    ]))
}

/// One row of the export before it is a column of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct FocusRow {
    pub day: NaiveDate,
    /// `SubAccountId` / `SubAccountName`: a team, `_small_teams` or `_unattributed`.
    pub team: String,
    pub product: String,
    pub source: String,
    /// `ResourceId`: `None` for merged rows.
    pub repository: Option<String>,
    pub runner_class: String,
    pub waste: WasteClass,
    pub builds: u64,
    pub unpriced: u64,
    pub cost: Exact,
    pub hours: Exact,
}

/// Places each day's charges on the export's rows: the one small-team rule, merged rows
/// summed (and their repositories merged).
pub struct Placement {
    teams: BTreeMap<String, TeamInfo>,
    row_of: RowOf,
    priced: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

impl Placement {
    /// `teams`: every team with its product and size at the end of the export
    /// ([`buildcost_query::Engine::charges`]); `priced`: whether a runner class is in the
    /// price table (else its builds are counted as unpriced).
    pub fn new(
        teams: BTreeMap<String, TeamInfo>,
        min_size: u64,
        priced: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        let row_of = RowOf::new(&teams, min_size);
        Placement {
            teams,
            row_of,
            priced: Box::new(priced),
        }
    }

    /// The team row of `team` (as `SubAccountId`) and its product. A team without builds in
    /// the 28 days before the export's end has no size there: it counts as a team of no
    /// developers of the product its builds carry.
    pub fn row(&self, team: &str, product: &str) -> (String, String) {
        let info = self.teams.get(team).cloned().unwrap_or(TeamInfo {
            product: product.to_owned(),
            developers: 0,
        });
        let row = self.row_of.place(team, &info);
        if self.row_of.shown(&row) {
            row
        } else {
            (UNATTRIBUTED.to_owned(), ALL_PRODUCTS.to_owned())
        }
    }

    /// The rows of one day.
    pub fn rows(&self, day: NaiveDate, charges: &[Charge]) -> Vec<FocusRow> {
        type Key = (String, String, String, Option<String>, String, u8);
        let mut rows: BTreeMap<Key, FocusRow> = BTreeMap::new();
        for c in charges {
            let (team, product) = self.row(&c.team, &c.product);
            let merged = team == SMALL_TEAMS || team == UNATTRIBUTED;
            let repository = (!merged).then(|| c.repository.clone());
            let key = (
                team.clone(),
                product.clone(),
                c.source.clone(),
                repository.clone(),
                c.runner_class.clone(),
                c.waste.index(),
            );
            let unpriced = if (self.priced)(&c.runner_class) {
                0
            } else {
                c.builds
            };
            let row = rows.entry(key).or_insert_with(|| FocusRow {
                day,
                team,
                product,
                source: c.source.clone(),
                repository,
                runner_class: c.runner_class.clone(),
                waste: c.waste,
                builds: 0,
                unpriced: 0,
                cost: Exact::ZERO,
                hours: Exact::ZERO,
            });
            row.builds += c.builds;
            row.unpriced += unpriced;
            row.cost += c.cost;
            row.hours += c.hours;
        }
        rows.into_values().collect()
    }
}

/// The first day of `day`'s month and of the next.
fn billing_period(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let start = day.with_day(1).unwrap_or(day);
    let next = if start.month() == 12 {
        NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
    };
    (start, next.unwrap_or(start))
}

fn micros(day: NaiveDate) -> i64 {
    day.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
}

/// The `Tags` JSON of a row.
fn tags(row: &FocusRow) -> String {
    serde_json::json!({
        "team": row.team,
        "product": row.product,
        "waste_class": row.waste.as_str(),
    })
    .to_string()
}

/// `rows` as a record batch of [`schema`], billed in `currency` by `config`.
///
/// # Errors
/// Only on a bug (columns of different lengths).
pub fn batch(rows: &[FocusRow], config: &FocusConfig, currency: &str) -> Result<RecordBatch> {
    let n = rows.len();
    let decimal = |values: &mut dyn Iterator<Item = i128>| -> Result<ArrayRef> {
        let mut b = Decimal128Builder::with_capacity(n);
        for v in values {
            b.append_value(v);
        }
        Ok(Arc::new(
            b.finish()
                .with_precision_and_scale(38, SCALE)
                .map_err(|e| Error::Encode(e.to_string()))?,
        ))
    };
    let text = |f: &dyn Fn(&FocusRow) -> Option<String>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        for r in rows {
            b.append_option(f(r));
        }
        Arc::new(b.finish())
    };
    let constant = |v: &str| text(&|_| Some(v.to_owned()));
    let instant = |f: &dyn Fn(&FocusRow) -> NaiveDate| -> ArrayRef {
        let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        for r in rows {
            b.append_value(micros(f(r)));
        }
        Arc::new(b.finish())
    };
    let count = |f: &dyn Fn(&FocusRow) -> u64| -> ArrayRef {
        let mut b = UInt64Builder::with_capacity(n);
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish())
    };
    let cost = || decimal(&mut rows.iter().map(|r| r.cost.0));
    let hours = || decimal(&mut rows.iter().map(|r| r.hours.0));
    let merged = |r: &FocusRow| r.repository.is_none();
    let columns: Vec<ArrayRef> = vec![
        cost()?,
        constant(&config.billing_account_id),
        constant(&config.billing_account_name),
        constant(currency),
        instant(&|r| billing_period(r.day).1),
        instant(&|r| billing_period(r.day).0),
        constant("Usage"),
        text(&|_| None),
        text(&|r| Some(format!("CI builds on {} ({})", r.runner_class, r.source))),
        constant("Usage-Based"),
        instant(&|r| r.day.succ_opt().unwrap_or(r.day)),
        instant(&|r| r.day),
        text(&|_| None),
        hours()?,
        constant("Hours"),
        cost()?,
        cost()?,
        text(&|_| None),
        constant(&config.provider_name),
        cost()?,
        constant("Standard"),
        hours()?,
        constant("Hours"),
        constant(&config.provider_name),
        constant(&config.provider_name),
        text(&|r| r.repository.clone()),
        text(&|r| r.repository.clone()),
        text(&|r| (!merged(r)).then(|| "Repository".to_owned())),
        constant("Developer Tools"),
        text(&|r| Some(r.source.clone())),
        constant("Continuous Integration and Deployment"),
        text(&|r| Some(r.runner_class.clone())),
        text(&|r| Some(r.team.clone())),
        text(&|r| Some(r.team.clone())),
        constant("Team"),
        text(&|r| Some(tags(r))),
        text(&|r| Some(r.waste.as_str().to_owned())),
        text(&|r| (r.waste != WasteClass::None).then(|| r.waste.owner().to_owned())),
        count(&|r| r.builds),
        count(&|r| r.unpriced),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| Error::Encode(e.to_string()))
}

/// The export's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FocusFormat {
    Parquet,
    Csv,
}

impl FocusFormat {
    fn extension(self) -> &'static str {
        match self {
            FocusFormat::Parquet => "parquet",
            FocusFormat::Csv => "csv",
        }
    }
}

enum Sink {
    Parquet(ArrowWriter<File>),
    Csv(arrow::csv::Writer<BufWriter<File>>),
}

/// Writes the export as one file, or as a folder of `billing_period=YYYY-MM/part-0.<ext>` (one
/// file per billing period, as FinOps tools read a recurring export), a batch at a time.
pub struct FocusWriter {
    out: PathBuf,
    format: FocusFormat,
    /// `true`: one file at `out`; `false`: a folder of billing periods.
    single: bool,
    current: Option<(NaiveDate, PathBuf, Sink)>,
    written: Vec<PathBuf>,
    rows: u64,
}

impl FocusWriter {
    /// A writer to `out`: a file when it ends in `.parquet` or `.csv`, else a folder.
    pub fn new(out: &Path, format: FocusFormat) -> Self {
        let single = out
            .extension()
            .is_some_and(|e| e == "parquet" || e == "csv");
        FocusWriter {
            out: out.to_owned(),
            format,
            single,
            current: None,
            written: Vec::new(),
            rows: 0,
        }
    }

    fn open(&self, path: &Path) -> Result<Sink> {
        let write_err = |source| Error::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let file = File::create(path).map_err(write_err)?;
        Ok(match self.format {
            FocusFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .set_created_by(format!("buildcost {}", env!("CARGO_PKG_VERSION")))
                    .build();
                Sink::Parquet(
                    ArrowWriter::try_new(file, schema(), Some(props))
                        .map_err(|e| Error::Encode(e.to_string()))?,
                )
            }
            FocusFormat::Csv => Sink::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .with_timestamp_tz_format("%Y-%m-%dT%H:%M:%SZ".to_owned())
                    .build(BufWriter::new(file)),
            ),
        })
    }

    /// Appends one day's rows.
    ///
    /// # Errors
    /// A file cannot be created or written.
    pub fn write(&mut self, day: NaiveDate, batch: &RecordBatch) -> Result<()> {
        let period = billing_period(day).0;
        let path = if self.single {
            self.out.clone()
        } else {
            self.out
                .join(format!("billing_period={}", period.format("%Y-%m")))
                .join(format!("part-0.{}", self.format.extension()))
        };
        let same = self.current.as_ref().is_some_and(|(_, p, _)| *p == path);
        if !same {
            self.close_current()?;
            let sink = self.open(&path)?;
            self.current = Some((period, path, sink));
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        if let Some((_, path, sink)) = self.current.as_mut() {
            let encode =
                |e: &dyn std::fmt::Display| Error::Encode(format!("{}: {e}", path.display()));
            match sink {
                Sink::Parquet(w) => w.write(batch).map_err(|e| encode(&e))?,
                Sink::Csv(w) => w.write(batch).map_err(|e| encode(&e))?,
            }
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some((_, path, sink)) = self.current.take() {
            let encode =
                |e: &dyn std::fmt::Display| Error::Encode(format!("{}: {e}", path.display()));
            match sink {
                Sink::Parquet(w) => {
                    w.close().map_err(|e| encode(&e))?;
                }
                Sink::Csv(w) => {
                    let mut inner = w.into_inner();
                    inner.flush().map_err(|source| Error::Write {
                        path: path.clone(),
                        source,
                    })?;
                }
            }
            self.written.push(path);
        }
        Ok(())
    }

    /// Closes the last file; returns the files written and the rows in them.
    ///
    /// # Errors
    /// The last file cannot be completed.
    pub fn finish(mut self) -> Result<(Vec<PathBuf>, u64)> {
        self.close_current()?;
        Ok((std::mem::take(&mut self.written), self.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(product: &str, developers: u64) -> TeamInfo {
        TeamInfo {
            product: product.into(),
            developers,
        }
    }

    fn charge(team: &str, product: &str, repository: &str, cost: f64) -> Charge {
        Charge {
            day: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default(),
            team: team.into(),
            product: product.into(),
            source: "gitlab".into(),
            repository: repository.into(),
            runner_class: "linux-small".into(),
            waste: WasteClass::None,
            builds: 2,
            cost: Exact::from_f64(cost),
            hours: Exact::from_f64(0.5),
        }
    }

    #[test]
    fn small_teams_merge_their_repositories_and_a_too_small_org_bucket_is_unattributed() {
        let teams = BTreeMap::from([
            ("big".to_owned(), team("shop", 8)),
            ("s1".to_owned(), team("shop", 3)),
            ("s2".to_owned(), team("shop", 3)),
            ("lone".to_owned(), team("ads", 2)),
        ]);
        let p = Placement::new(teams, 5, |class| class == "linux-small");
        let day = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default();
        let rows = p.rows(
            day,
            &[
                charge("big", "shop", "a/x", 1.0),
                charge("s1", "shop", "a/y", 2.0),
                charge("s2", "shop", "a/z", 3.0),
                charge("lone", "ads", "b/q", 4.0),
            ],
        );
        let by: BTreeMap<(&str, &str), &FocusRow> = rows
            .iter()
            .map(|r| ((r.team.as_str(), r.product.as_str()), r))
            .collect();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(by[&("big", "shop")].repository.as_deref(), Some("a/x"));
        let small = by[&(SMALL_TEAMS, "shop")];
        assert_eq!((small.repository.as_deref(), small.builds), (None, 4));
        assert_eq!(small.cost, Exact::from_f64(2.0) + Exact::from_f64(3.0));
        // The org-wide bucket (2 developers) is below 5: kept, attributed to no one.
        let lone = by[&(UNATTRIBUTED, ALL_PRODUCTS)];
        assert_eq!(
            (lone.repository.as_deref(), lone.cost),
            (None, Exact::from_f64(4.0))
        );
        let batch = batch(&rows, &FocusConfig::default(), "EUR").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.schema(), schema());
    }

    #[test]
    fn billing_periods_are_calendar_months_ending_exclusive() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        assert_eq!(
            billing_period(d(2026, 12, 31)),
            (d(2026, 12, 1), d(2027, 1, 1))
        );
        assert_eq!(
            billing_period(d(2026, 2, 1)),
            (d(2026, 2, 1), d(2026, 3, 1))
        );
    }
}
