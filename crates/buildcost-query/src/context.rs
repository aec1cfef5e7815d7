//! The DataFusion session over a store, with the views of the product registered.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use buildcost_store::Store;
use chrono::{DateTime, Duration, Utc};
use datafusion::catalog::Session;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::settings::QuerySettings;
use crate::Result;

/// The SQL of the `builds` view.
pub const BUILDS_SQL: &str = include_str!("../sql/builds.sql");
/// The SQL of the `teams` view.
pub const TEAMS_SQL: &str = include_str!("../sql/teams.sql");
/// The SQL of the `baseline` view.
pub const BASELINE_SQL: &str = include_str!("../sql/baseline.sql");
/// The SQL of one window's totals.
pub const WINDOW_TOTALS_SQL: &str = include_str!("../sql/window_totals.sql");

/// A value for a `$name` parameter of a SQL template.
#[derive(Debug, Clone)]
pub enum Param {
    Time(DateTime<Utc>),
    Int(i64),
    Float(f64),
}

impl Param {
    fn scalar(&self) -> ScalarValue {
        match self {
            Param::Time(t) => {
                ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into()))
            }
            Param::Int(i) => ScalarValue::Int64(Some(*i)),
            Param::Float(f) => ScalarValue::Float64(Some(*f)),
        }
    }
}

/// DataFusion's parameter values for `$name` placeholders.
fn param_values(params: &BTreeMap<&str, Param>) -> ParamValues {
    ParamValues::from(
        params
            .iter()
            .map(|(name, value)| (name.to_string(), value.scalar()))
            .collect::<Vec<_>>(),
    )
}

/// A DataFusion session over the store, with the tables and views of the product:
///
/// - `raw_builds`: the stored rows as they are (duplicates of a replay included);
/// - `builds`: one row per distinct build, with `cost_eur`, `waste_class`, `waste_owner`;
/// - `teams`: every team with builds in the 28 days before `at`, its product, size, peer group;
/// - `baseline`: each eligible team's cost per developer against its peer group's band;
/// - `runner_prices`, `default_price`, `teams_file`: the configuration as tables;
///
/// and the product's rules as SQL functions ([`crate::functions`]): `build_cost`,
/// `waste_class`, `team_size`, `peer_median`, `band_status`, ….
pub struct BuildcostContext {
    ctx: SessionContext,
    settings: QuerySettings,
    at: DateTime<Utc>,
    /// `builds` computed once and kept in memory (see [`BuildcostContext::materialize`]).
    materialized: Option<Arc<MemTable>>,
    /// The object store the raw rows are read from (`None`: local files).
    objects: Objects,
}

/// Where DataFusion finds the stored files of an object store: its URL and a client.
type Objects = Option<(
    ObjectStoreUrl,
    Arc<dyn datafusion::object_store::ObjectStore>,
)>;

impl BuildcostContext {
    /// Opens a session over `store`, evaluating time-dependent views at `at`.
    ///
    /// # Errors
    /// The store cannot be listed or a view does not plan.
    pub async fn open(store: &Store, settings: &QuerySettings, at: DateTime<Utc>) -> Result<Self> {
        let (raw, objects) = raw_builds(store).await?;
        Self::assemble_with(settings, at, Builds::Raw(raw), 1, objects).await
    }

    /// A session like [`BuildcostContext::open`] whose queries run on `partitions` threads
    /// (ad-hoc queries over a long history). Sums then add up in an order that may change
    /// from run to run, in the last bits; the gauges and reports use one partition.
    ///
    /// # Errors
    /// The store cannot be listed or a view does not plan.
    pub async fn open_parallel(
        store: &Store,
        settings: &QuerySettings,
        at: DateTime<Utc>,
        partitions: usize,
    ) -> Result<Self> {
        let (raw, objects) = raw_builds(store).await?;
        Self::assemble_with(settings, at, Builds::Raw(raw), partitions, objects).await
    }

    /// A context whose `builds` is computed once, over the whole store (waste classes such
    /// as `duplicate` depend on earlier builds), kept in memory for `finished_at` in
    /// `[from, to)` only, and shared by every context [`BuildcostContext::at_instant`] makes
    /// from it: evaluating many instants (a report's weeks) then prices and classifies each
    /// build once. `raw_builds` is not registered in it. `columns` keeps only those columns of
    /// `builds` (every one when `None`); the `teams` and `baseline` views need `team`,
    /// `product`, `author_key`, `finished_at` and `cost_eur`.
    ///
    /// # Errors
    /// The store cannot be read or a view does not run.
    pub async fn materialize(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        columns: Option<&[&str]>,
    ) -> Result<Self> {
        let projection = columns.map_or_else(|| "*".to_owned(), |c| c.join(", "));
        let frame = self
            .planned(
                &format!(
                    "SELECT {projection} FROM builds WHERE finished_at >= $from AND finished_at < $to"
                ),
                &BTreeMap::from([("from", Param::Time(from)), ("to", Param::Time(to))]),
            )
            .await?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await?;
        let table = Arc::new(MemTable::try_new(schema, vec![batches])?);
        Self::assemble_with(
            &self.settings,
            self.at,
            Builds::Materialized(table),
            1,
            None,
        )
        .await
    }

    /// The same builds evaluated at another instant: `teams` and `baseline` at `at`. Cheap on
    /// a [materialized](BuildcostContext::materialize) context; otherwise `builds` stays a
    /// view over the store.
    ///
    /// # Errors
    /// A view does not plan.
    pub async fn at_instant(&self, at: DateTime<Utc>) -> Result<Self> {
        let builds = match &self.materialized {
            Some(table) => Builds::Materialized(table.clone()),
            None => Builds::Raw(self.ctx.table_provider("raw_builds").await?),
        };
        Self::assemble_with(&self.settings, at, builds, 1, self.objects.clone()).await
    }

    /// A session with the configuration tables, `builds` (a view over the raw rows, or the
    /// materialized table) and the `teams` and `baseline` views at `at`, on `partitions`
    /// threads, reading the raw rows from `objects` when they are on an object store.
    async fn assemble_with(
        settings: &QuerySettings,
        at: DateTime<Utc>,
        builds: Builds,
        partitions: usize,
        objects: Objects,
    ) -> Result<Self> {
        let ctx = new_session(partitions, &objects);
        crate::functions::register(&ctx, &buildcost_model::Prices::new(&settings.pricing));
        register_prices(&ctx, settings)?;
        register_teams_file(&ctx, settings)?;
        let mut this = BuildcostContext {
            ctx,
            settings: settings.clone(),
            at,
            materialized: None,
            objects: objects.clone(),
        };
        match builds {
            Builds::Raw(raw) => {
                this.ctx.register_table(
                    "copies",
                    Arc::new(Copies {
                        raw: raw.clone(),
                        partitions,
                        objects: objects.clone(),
                        ids: tokio::sync::OnceCell::new(),
                    }),
                )?;
                this.ctx.register_table("raw_builds", raw)?;
                this.create_view("builds", BUILDS_SQL).await?;
            }
            Builds::Materialized(table) => {
                this.ctx.register_table("builds", table.clone())?;
                this.materialized = Some(table);
            }
        }
        this.create_view("teams", TEAMS_SQL).await?;
        this.create_view("baseline", BASELINE_SQL).await?;
        Ok(this)
    }

    /// The evaluation instant of the views.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// The settings the views were built with.
    pub fn settings(&self) -> &QuerySettings {
        &self.settings
    }

    /// The underlying DataFusion session.
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// The parameters every template may use.
    pub fn params(&self) -> BTreeMap<&'static str, Param> {
        let b = &self.settings.baseline;
        BTreeMap::from([
            ("at", Param::Time(self.at)),
            (
                "window_28d_start",
                Param::Time(self.at - Duration::days(28)),
            ),
            (
                "baseline_start",
                Param::Time(self.at - Duration::days(i64::from(b.window_days))),
            ),
            (
                "min_team_size",
                Param::Int(i64::from(self.settings.min_team_size)),
            ),
            ("min_peers", Param::Int(i64::from(b.min_peers))),
            ("k_sigma", Param::Float(b.k_sigma)),
        ])
    }

    /// Registers the delivery views (spec section 12): `deployments` (the stored rows, with
    /// `production` from `delivery.production_environments`), `requests` and `repositories`
    /// (rows of `figures`, the engine's delivery figures at this context's instant).
    ///
    /// # Errors
    /// The store cannot be listed, or a table cannot be made (a bug).
    pub async fn register_delivery(
        &self,
        store: &Store,
        figures: &crate::DeliveryFigures,
    ) -> Result<()> {
        let files: Vec<String> = store
            .list_table(buildcost_store::Table::Deployments)?
            .iter()
            .map(|f| store.file_url(f))
            .collect();
        let raw = stored_table(&files, buildcost_model::deployment_schema())?;
        self.ctx.register_table("raw_deployments", raw)?;
        let config = self.settings.delivery.clone();
        self.ctx.register_udf(datafusion::logical_expr::create_udf(
            "is_production",
            vec![DataType::Utf8],
            DataType::Boolean,
            datafusion::logical_expr::Volatility::Immutable,
            Arc::new(move |args| {
                let a = datafusion::logical_expr::ColumnarValue::values_to_arrays(args)?;
                let environments = a[0].as_string::<i32>();
                let out: arrow::array::BooleanArray = environments
                    .iter()
                    .map(|e| e.map(|e| config.is_production(e)))
                    .collect();
                Ok(datafusion::logical_expr::ColumnarValue::Array(Arc::new(
                    out,
                )))
            }),
        ));
        self.create_view(
            "deployments",
            "SELECT *, is_production(environment) AS production FROM raw_deployments \
             WHERE finished_at < $at",
        )
        .await?;
        self.ctx
            .register_batch("requests", crate::delivery::requests_batch(figures)?)?;
        self.ctx.register_batch(
            "repositories",
            crate::delivery::repositories_batch(figures)?,
        )?;
        Ok(())
    }

    async fn create_view(&self, name: &str, template: &str) -> Result<()> {
        let frame = self.planned(template, &self.params()).await?;
        self.ctx.register_table(name, frame.into_view())?;
        Ok(())
    }

    /// `sql` planned with its `$name` parameters bound.
    async fn planned(
        &self,
        sql: &str,
        params: &BTreeMap<&str, Param>,
    ) -> Result<datafusion::dataframe::DataFrame> {
        Ok(self
            .ctx
            .sql(sql)
            .await?
            .with_param_values(param_values(params))?)
    }

    /// Runs one SQL statement and collects its result.
    ///
    /// # Errors
    /// The statement does not parse, plan or run.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }

    /// Runs a template with the standard parameters plus `extra`.
    ///
    /// # Errors
    /// As [`BuildcostContext::sql`], or a parameter is missing.
    pub async fn template(
        &self,
        template: &str,
        extra: &[(&'static str, Param)],
    ) -> Result<Vec<RecordBatch>> {
        let mut params = self.params();
        params.extend(extra.iter().cloned());
        Ok(self.planned(template, &params).await?.collect().await?)
    }
}

/// One partition keeps every sum in a fixed order, so the same store and instant give the
/// same figures to the last bit.
fn new_session(partitions: usize, objects: &Objects) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(partitions.max(1))
        .with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    if let Some((url, store)) = objects {
        ctx.register_object_store(url.as_ref(), store.clone());
    }
    ctx
}

/// `copies`: the event ids stored more than once (two ingesters that raced on a re-sent
/// event), for the `builds` view's de-duplication. Computed by the first query that plans a
/// scan of it (one aggregation over every stored id) and kept for the session, so a query
/// reading `builds` several times computes it once; a query that never reads `builds` never
/// computes it. Its exact size then lets the joins hold it in memory, not the store.
#[derive(Debug)]
struct Copies {
    raw: Arc<dyn TableProvider>,
    partitions: usize,
    objects: Objects,
    ids: tokio::sync::OnceCell<Arc<MemTable>>,
}

fn copies_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "event_id",
        DataType::Utf8,
        false,
    )]))
}

#[async_trait::async_trait]
impl TableProvider for Copies {
    fn schema(&self) -> SchemaRef {
        copies_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let table = self
            .ids
            .get_or_try_init::<datafusion::error::DataFusionError, _, _>(|| async {
                let ctx = new_session(self.partitions, &self.objects);
                ctx.register_table("raw_builds", self.raw.clone())?;
                let batches = ctx
                    .sql("SELECT event_id FROM raw_builds GROUP BY event_id HAVING COUNT(*) > 1")
                    .await?
                    .collect()
                    .await?;
                let table = MemTable::try_new(copies_schema(), vec![batches])?;
                Ok(Arc::new(table))
            })
            .await?;
        table.scan(state, projection, filters, limit).await
    }
}

/// Where `builds` comes from.
enum Builds {
    /// The stored rows (`raw_builds`), priced and classified by the `builds` view.
    Raw(Arc<dyn TableProvider>),
    /// `builds` computed once and kept in memory.
    Materialized(Arc<MemTable>),
}

async fn raw_builds(store: &Store) -> Result<(Arc<dyn TableProvider>, Objects)> {
    let files: Vec<String> = store
        .list_files()?
        .iter()
        .map(|f| store.file_url(f))
        .collect();
    let objects = match store.query_object_store()? {
        Some((url, client)) => Some((ObjectStoreUrl::parse(url)?, client)),
        None => None,
    };
    Ok((raw_files(&files)?, objects))
}

/// The stored rows of `files` (absolute paths or object URLs) as a table (an empty one for
/// no files).
fn raw_files(files: &[String]) -> Result<Arc<dyn TableProvider>> {
    stored_table(files, buildcost_model::build_schema())
}

/// The rows of stored `files` of `schema` as a table (an empty one for no files).
fn stored_table(files: &[String], schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    if files.is_empty() {
        let empty = MemTable::try_new(schema.clone(), vec![vec![RecordBatch::new_empty(schema)]])?;
        return Ok(Arc::new(empty));
    }
    let urls = files
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

fn price_columns() -> Vec<Field> {
    [
        "cpu_cores",
        "memory_gb",
        "gpus",
        "eur_per_cpu_hour",
        "eur_per_gb_hour",
        "eur_per_gpu_hour",
        "eur_per_build",
    ]
    .into_iter()
    .map(|n| Field::new(n, DataType::Float64, false))
    .collect()
}

fn register_prices(ctx: &SessionContext, settings: &QuerySettings) -> Result<()> {
    let pricing = &settings.pricing;
    let resolved: Vec<_> = pricing
        .runner_classes
        .iter()
        .map(|(name, class)| (name.clone(), class.resolve(&pricing.default)))
        .collect();
    let mut fields = vec![Field::new("runner_class", DataType::Utf8, false)];
    fields.extend(price_columns());
    let column = |f: fn(&buildcost_model::config::PriceDefaults) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            resolved.iter().map(|(_, p)| f(p)),
        ))
    };
    let classes = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        vec![
            Arc::new(StringArray::from_iter_values(
                resolved.iter().map(|(n, _)| n.as_str()),
            )),
            column(|p| p.cpu_cores),
            column(|p| p.memory_gb),
            column(|p| p.gpus),
            column(|p| p.eur_per_cpu_hour),
            column(|p| p.eur_per_gb_hour),
            column(|p| p.eur_per_gpu_hour),
            column(|p| p.eur_per_build),
        ],
    )?;
    ctx.register_batch("runner_prices", classes)?;
    let d = &pricing.default;
    let one = |v: f64| -> ArrayRef { Arc::new(Float64Array::from(vec![v])) };
    let default = RecordBatch::try_new(
        Arc::new(Schema::new(price_columns())),
        vec![
            one(d.cpu_cores),
            one(d.memory_gb),
            one(d.gpus),
            one(d.eur_per_cpu_hour),
            one(d.eur_per_gb_hour),
            one(d.eur_per_gpu_hour),
            one(d.eur_per_build),
        ],
    )?;
    ctx.register_batch("default_price", default)?;
    Ok(())
}

fn register_teams_file(ctx: &SessionContext, settings: &QuerySettings) -> Result<()> {
    let entries = &settings.teams.entries;
    let schema = Schema::new(vec![
        Field::new("team", DataType::Utf8, false),
        Field::new("product", DataType::Utf8, false),
        Field::new("developers", DataType::UInt32, false),
        Field::new("peer_group", DataType::Utf8, true),
        Field::new("listed", DataType::Boolean, false),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|e| e.team.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|e| e.product.as_str()),
            )),
            Arc::new(UInt32Array::from_iter_values(
                entries.iter().map(|e| e.developers),
            )),
            Arc::new(StringArray::from_iter(
                entries.iter().map(|e| e.peer_group.as_deref()),
            )),
            Arc::new(BooleanArray::from(vec![true; entries.len()])),
        ],
    )?;
    ctx.register_batch("teams_file", batch)?;
    Ok(())
}
