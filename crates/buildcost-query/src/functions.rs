//! The product's rules as DataFusion functions, so the SQL views an analyst reads
//! (`crates/buildcost-query/sql/`) run exactly the code that makes the gauges:
//!
//! | function | rule |
//! | --- | --- |
//! | `build_cost(runner_class, duration_s, cpu_cores, memory_gb, gpus)` | [`Prices::cost`] (spec 5) |
//! | `is_unpriced(runner_class)` | [`Prices::is_priced`] |
//! | `billed_cpu_cores`, `billed_memory_gb`, `billed_gpus` `(runner_class, value)` | [`Prices::billed`] |
//! | `waste_class(status, superseded, failure_category, repeat_success)` | [`WasteClass::of_build`] (spec 6) |
//! | `waste_owner(waste_class)` | [`WasteClass::owner`] |
//! | `team_size(listed_developers, distinct_authors)` | [`peer::team_size`] (spec 7) |
//! | `main_product(product)` (aggregate) | [`peer::main_product`] |
//! | `is_eligible(developers, cost, min_team_size)` | [`peer::eligible`] |
//! | `log_cost_per_developer(cost, developers)` | [`peer::log_cost_per_developer`] |
//! | `peer_median(y)` (aggregate) | [`peer::median`] |
//! | `peer_spread(mad)` | [`peer::spread`] |
//! | `band_zscore(y, m, s)`, `band_status(z, k)` | [`peer::zscore`], [`peer::status`] |
//! | `band_expected(n, m)`, `band_lower(n, m, s, k)`, `band_upper(n, m, s, k)` | [`peer::band`] |

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, StringArray,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, UInt32Type};
use buildcost_model::{FailureCategory, Prices, Status, WasteClass};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    create_udaf, create_udf, Accumulator, ColumnarValue, ScalarFunctionImplementation, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::peer;

type DfResult<T> = datafusion::error::Result<T>;

/// Registers every function of the table above on `ctx`, pricing with `prices`.
pub fn register(ctx: &SessionContext, prices: &Prices) {
    let prices = Arc::new(prices.clone());
    use DataType::{Boolean, Float64, Int64, UInt32, Utf8};
    let scalar =
        |name: &str, inputs: Vec<DataType>, output: DataType, f: ScalarFunctionImplementation| {
            ctx.register_udf(create_udf(name, inputs, output, Volatility::Immutable, f));
        };

    let p = prices.clone();
    scalar(
        "build_cost",
        vec![Utf8, Float64, Float64, Float64, Int64],
        Float64,
        Arc::new(move |args| {
            let a = arrays(args)?;
            let (class, duration) = (strings(&a[0])?, floats(&a[1])?);
            let (cpu, memory, gpus) = (floats(&a[2])?, floats(&a[3])?, ints(&a[4])?);
            let out: Float64Array = (0..class.len())
                .map(|i| {
                    (class.is_valid(i) && duration.is_valid(i)).then(|| {
                        p.cost(
                            class.value(i),
                            duration.value(i),
                            opt(cpu, i),
                            opt(memory, i),
                            opt(gpus, i),
                        )
                    })
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    );
    let p = prices.clone();
    scalar(
        "is_unpriced",
        vec![Utf8],
        Boolean,
        Arc::new(move |args| {
            let a = arrays(args)?;
            let class = strings(&a[0])?;
            let out: BooleanArray = class.iter().map(|c| c.map(|c| !p.is_priced(c))).collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    );
    for (name, pick) in [
        ("billed_cpu_cores", Billed::Cpu),
        ("billed_memory_gb", Billed::Memory),
        ("billed_gpus", Billed::Gpus),
    ] {
        let p = prices.clone();
        let input = if pick == Billed::Gpus { Int64 } else { Float64 };
        scalar(
            name,
            vec![Utf8, input],
            Float64,
            Arc::new(move |args| {
                let a = arrays(args)?;
                let class = strings(&a[0])?;
                let value = |i: usize| -> DfResult<Option<f64>> {
                    if !class.is_valid(i) {
                        return Ok(None);
                    }
                    let c = class.value(i);
                    Ok(Some(match pick {
                        Billed::Cpu => p.billed(c, opt(floats(&a[1])?, i), None, None).cpu_cores,
                        Billed::Memory => p.billed(c, None, opt(floats(&a[1])?, i), None).memory_gb,
                        Billed::Gpus => p.billed(c, None, None, opt(ints(&a[1])?, i)).gpus,
                    }))
                };
                let out: Float64Array = (0..class.len()).map(value).collect::<DfResult<_>>()?;
                Ok(ColumnarValue::Array(Arc::new(out)))
            }),
        );
    }
    scalar(
        "waste_class",
        vec![Utf8, Boolean, Utf8, Boolean],
        Utf8,
        Arc::new(|args| {
            let a = arrays(args)?;
            let (status, superseded) = (strings(&a[0])?, a[1].as_boolean());
            let (category, repeat) = (strings(&a[2])?, a[3].as_boolean());
            let out: StringArray = (0..status.len())
                .map(|i| {
                    let s = Status::parse(status.value(i)).filter(|_| status.is_valid(i))?;
                    let c = category
                        .is_valid(i)
                        .then(|| FailureCategory::parse(category.value(i)))
                        .flatten();
                    Some(
                        WasteClass::of_build(
                            s,
                            superseded.is_valid(i) && superseded.value(i),
                            c,
                            repeat.is_valid(i) && repeat.value(i),
                        )
                        .as_str(),
                    )
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    );
    scalar(
        "waste_owner",
        vec![Utf8],
        Utf8,
        Arc::new(|args| {
            let a = arrays(args)?;
            let out: StringArray = strings(&a[0])?
                .iter()
                .map(|w| w.and_then(WasteClass::parse).map(WasteClass::owner))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    );
    scalar(
        "team_size",
        vec![UInt32, Int64],
        Int64,
        Arc::new(|args| {
            let a = arrays(args)?;
            let listed = a[0].as_primitive::<UInt32Type>();
            let authors = ints(&a[1])?;
            let out: Int64Array = (0..listed.len())
                .map(|i| {
                    let n = peer::team_size(
                        opt(listed, i),
                        opt(authors, i)
                            .and_then(|n| u64::try_from(n).ok())
                            .unwrap_or(0),
                    );
                    i64::try_from(n).ok()
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    );
    scalar(
        "is_eligible",
        vec![Int64, Float64, Int64],
        Boolean,
        Arc::new(|args| {
            let a = arrays(args)?;
            let (n, cost, min) = (ints(&a[0])?, floats(&a[1])?, ints(&a[2])?);
            let out: BooleanArray = (0..n.len())
                .map(|i| {
                    let n = u64::try_from(opt(n, i)?).ok()?;
                    let min = u32::try_from(opt(min, i)?).ok()?;
                    Some(peer::eligible(n, opt(cost, i)?, min))
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    );
    scalar(
        "log_cost_per_developer",
        vec![Float64, Int64],
        Float64,
        float_fn(2, |v| {
            let n = u64::try_from(v[1] as i64).ok()?;
            Some(peer::log_cost_per_developer(v[0], n))
        }),
    );
    scalar(
        "peer_spread",
        vec![Float64],
        Float64,
        float_fn(1, |v| Some(peer::spread(v[0]))),
    );
    scalar(
        "band_zscore",
        vec![Float64, Float64, Float64],
        Float64,
        float_fn(3, |v| Some(peer::zscore(v[0], v[1], v[2]))),
    );
    for (name, which) in [
        ("band_expected", 0usize),
        ("band_lower", 1),
        ("band_upper", 2),
    ] {
        scalar(
            name,
            vec![Int64, Float64, Float64, Float64],
            Float64,
            float_fn(4, move |v| {
                let n = u64::try_from(v[0] as i64).ok()?;
                let (e, lo, hi) = peer::band(n, v[1], v[2], v[3]);
                Some([e, lo, hi][which])
            }),
        );
    }
    scalar(
        "band_status",
        vec![Float64, Float64],
        Utf8,
        Arc::new(|args| {
            let a = arrays(args)?;
            let (z, k) = (floats(&a[0])?, floats(&a[1])?);
            let out: StringArray = (0..z.len())
                .map(|i| Some(peer::status(opt(z, i)?, opt(k, i)?)))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    );

    ctx.register_udaf(create_udaf(
        "main_product",
        vec![Utf8],
        Arc::new(Utf8),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(Votes::default()))),
        Arc::new(vec![
            DataType::List(Arc::new(Field::new_list_field(Utf8, true))),
            DataType::List(Arc::new(Field::new_list_field(DataType::UInt64, true))),
        ]),
    ));
    ctx.register_udaf(create_udaf(
        "peer_median",
        vec![Float64],
        Arc::new(Float64),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(Median::default()))),
        Arc::new(vec![DataType::List(Arc::new(Field::new_list_field(
            Float64, true,
        )))]),
    ));
}

/// A scalar function of `n` DOUBLE-convertible arguments (DOUBLE or BIGINT), null when any is.
fn float_fn(
    n: usize,
    f: impl Fn(&[f64]) -> Option<f64> + Send + Sync + 'static,
) -> ScalarFunctionImplementation {
    Arc::new(move |args| {
        let a = arrays(args)?;
        let columns: Vec<Float64Array> = a[..n]
            .iter()
            .map(|c| {
                arrow::compute::cast(c, &DataType::Float64)
                    .map(|c| c.as_primitive::<Float64Type>().clone())
            })
            .collect::<Result<_, _>>()?;
        let rows = columns.first().map_or(0, Array::len);
        let mut values = vec![0.0; n];
        let out: Float64Array = (0..rows)
            .map(|i| {
                for (v, c) in values.iter_mut().zip(&columns) {
                    *v = opt(c, i)?;
                }
                f(&values)
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    })
}

/// Which resource a `billed_*` function gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Billed {
    Cpu,
    Memory,
    Gpus,
}

fn arrays(args: &[ColumnarValue]) -> DfResult<Vec<ArrayRef>> {
    ColumnarValue::values_to_arrays(args)
}

fn opt<T: arrow::datatypes::ArrowPrimitiveType>(
    a: &arrow::array::PrimitiveArray<T>,
    i: usize,
) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

fn strings(a: &ArrayRef) -> DfResult<&StringArray> {
    a.as_string_opt::<i32>()
        .ok_or_else(|| DataFusionError::Internal("expected a string argument".into()))
}

fn floats(a: &ArrayRef) -> DfResult<&Float64Array> {
    a.as_primitive_opt::<Float64Type>()
        .ok_or_else(|| DataFusionError::Internal("expected a DOUBLE argument".into()))
}

fn ints(a: &ArrayRef) -> DfResult<&Int64Array> {
    a.as_primitive_opt::<Int64Type>()
        .ok_or_else(|| DataFusionError::Internal("expected a BIGINT argument".into()))
}

/// `main_product`: builds per product, then [`peer::main_product`].
#[derive(Debug, Default)]
struct Votes {
    votes: BTreeMap<String, u64>,
}

impl Accumulator for Votes {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        for p in strings(&values[0])?.iter().flatten() {
            *self.votes.entry(p.to_owned()).or_default() += 1;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let winner = peer::main_product(self.votes.iter().map(|(p, n)| (p.as_str(), *n)));
        Ok(ScalarValue::Utf8(winner.map(str::to_owned)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.votes.keys().map(|k| k.len() + 32).sum::<usize>()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let products: Vec<ScalarValue> = self
            .votes
            .keys()
            .map(|k| ScalarValue::Utf8(Some(k.clone())))
            .collect();
        let counts: Vec<ScalarValue> = self
            .votes
            .values()
            .map(|n| ScalarValue::UInt64(Some(*n)))
            .collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&products, &DataType::Utf8)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::UInt64)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let (products, counts) = (list(&states[0])?, list(&states[1])?);
        for row in 0..products.len() {
            let (p, n) = (products.value(row), counts.value(row));
            let (p, n) = (
                strings(&p)?,
                n.as_primitive_opt::<arrow::datatypes::UInt64Type>()
                    .cloned()
                    .unwrap_or_else(|| UInt64Array::from(Vec::<u64>::new())),
            );
            for i in 0..p.len().min(n.len()) {
                *self.votes.entry(p.value(i).to_owned()).or_default() += n.value(i);
            }
        }
        Ok(())
    }
}

/// `peer_median`: the values, then [`peer::median`].
#[derive(Debug, Default)]
struct Median {
    values: Vec<f64>,
}

impl Accumulator for Median {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.values.extend(floats(&values[0])?.iter().flatten());
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let m = peer::median(&mut self.values);
        Ok(ScalarValue::Float64((!m.is_nan()).then_some(m)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 8
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self
            .values
            .iter()
            .map(|v| ScalarValue::Float64(Some(*v)))
            .collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &DataType::Float64,
        ))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let lists = list(&states[0])?;
        for row in 0..lists.len() {
            let v = lists.value(row);
            self.values.extend(floats(&v)?.iter().flatten());
        }
        Ok(())
    }
}

fn list(a: &ArrayRef) -> DfResult<&ListArray> {
    a.as_list_opt::<i32>()
        .ok_or_else(|| DataFusionError::Internal("expected a list state".into()))
}
