//! `HIST(x [, min, max, size | , [edges]])`: a histogram of `x` over fixed bins, as Amplitude's
//! session-length distribution, with an open-ended bin on each side so that the values outside
//! the requested bins are counted too; the bins are constant arguments, validated at planning.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion_macros::user_doc;

use crate::time_unit::{is_span_type, span_array_to_seconds};

make_udaf_function!(Hist, hist_udaf, hist, x);

/// The most bins a call may ask for (the two open-ended bins come on top): every group holds
/// one counter per bin.
pub const MAX_BINS: usize = 10_000;

/// Amplitude's default session-length bin edges in milliseconds: 0, 3 s, 10 s, 30 s, 1 min,
/// 3 min, 10 min, 30 min, 1 h, 1 day.
pub const DEFAULT_EDGES_MS: [f64; 10] = [
    0.0,
    3_000.0,
    10_000.0,
    30_000.0,
    60_000.0,
    180_000.0,
    600_000.0,
    1_800_000.0,
    3_600_000.0,
    86_400_000.0,
];

#[user_doc(
    doc_section(label = "Session Functions"),
    description = "A histogram of `x`: a list of `{lo, hi, count}` structs in ascending order, \
one per requested bin and one open-ended bin on each side, so that every non-NULL value is \
counted exactly once. With bin edges `e0 < e1 < ... < en`, the first bin is \
`{lo: -inf, hi: e0}` with the values below `e0`; each requested bin `[lo, hi)` holds the values \
`v` with `lo <= v < hi` (a value equal to an edge counts in the bin above it); the last bin is \
`{lo: en, hi: +inf}` with the values at or above `en` (+inf included). Empty bins are included, \
so a call always gives its requested bins plus two, whatever the data, and the counts add up to \
the number of values. NULLs are skipped, and so is NaN, which lies in no order with the edges. \
Over no rows every count is 0.\n\n\
Units: a numeric `x` is binned as it is, and the bin arguments are in the same unit, except that \
`HIST(x)` without bin arguments on a numeric `x` reads `x` as milliseconds (it is meant for \
`sessions(...).duration_ms`), so its `lo` and `hi` are milliseconds: 0, 3000, 10000, ... A \
duration (of any unit) or an interval without months is converted to seconds (fractional for \
sub-second parts), and `lo`, `hi` and the bin arguments are then seconds: `HIST(x)` gives 0, 3, \
10, ... An interval with months is an error, since a month's length varies.\n\n\
Bins: `HIST(x)` uses Amplitude's default session-length bins with edges 0, 3 s, 10 s, 30 s, \
1 min, 3 min, 10 min, 30 min, 1 h and 1 day (9 bins, plus the open-ended ones: sessions of a \
day or more are in the last, `[1 day, +inf)`). `HIST(x, min, max, size)` makes bins of width \
`size` starting at `min`, `[min, min + size)`, `[min + size, min + 2 size)`, ...; the last \
requested bin is cut at `max`, so it is narrower when `max - min` is not a multiple of `size`. \
`HIST(x, [e0, e1, ..., en])` makes the bins `[e0, e1)`, ..., `[en-1, en)`. Bin arguments must \
be constants: `size <= 0`, `min >= max`, more than 10000 requested bins, fewer than two edges, \
or edges that are not strictly ascending are planning errors.",
    syntax_example = "HIST(x) | HIST(x, min, max, size) | HIST(x, [edges])",
    sql_example = r#"```sql
> SELECT HIST(duration_ms) FROM sessions('events');
> SELECT HIST(duration_ms, 0, 3600000, 300000) FROM sessions('events');
> SELECT HIST(session_end - session_start, [0, 60, 600, 3600]) FROM sessions('events');
> SELECT b['lo'], b['hi'], b['count']
  FROM (SELECT unnest(HIST(duration_ms)) AS b FROM sessions('events'));
```"#,
    argument(
        name = "x",
        description = "The values to count: a number, a duration or an interval without months."
    ),
    argument(
        name = "min",
        description = "Constant number: the lower edge of the first requested bin (inclusive)."
    ),
    argument(
        name = "max",
        description = "Constant number: the upper edge of the last requested bin (exclusive); \
greater than `min`."
    ),
    argument(
        name = "size",
        description = "Constant positive number: the width of every requested bin but possibly \
the last."
    ),
    argument(
        name = "edges",
        description = "Constant array of at least two strictly ascending numbers, such as \
`[0, 60, 600, 3600]`: the bin edges."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Hist {
    signature: Signature,
}

impl Default for Hist {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Hist {
    fn name(&self) -> &str {
        "hist"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let Some(x_type) = arg_types.first() else {
            return wrong_arity(0);
        };
        let x_type = match x_type {
            t if is_span_type(t) => t.clone(),
            t if t.is_numeric() || t.is_null() => DataType::Float64,
            other => {
                return plan_err!(
                    "HIST: argument 'x' must be a number, a duration or an interval without \
                     months, found {other}"
                );
            }
        };
        let mut coerced = vec![x_type];
        match arg_types.len() {
            1 => {}
            2 => {
                let edges_type = &arg_types[1];
                let element_type = match edges_type {
                    DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                        Some(f.data_type())
                    }
                    _ => None,
                };
                if !element_type.is_some_and(|t| t.is_numeric() || t.is_null()) {
                    return plan_err!(
                        "HIST: argument 'edges' must be an array of numbers such as \
                         [0, 60, 600], found {edges_type}"
                    );
                }
                coerced.push(edges_type.clone());
            }
            4 => {
                for (name, arg_type) in ["min", "max", "size"].iter().zip(&arg_types[1..]) {
                    if !arg_type.is_numeric() && !arg_type.is_null() {
                        return plan_err!(
                            "HIST: argument '{name}' must be a constant number, found {arg_type}"
                        );
                    }
                    coerced.push(arg_type.clone());
                }
            }
            n => return wrong_arity(n),
        }
        Ok(coerced)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(hist_type())
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[counts]", args.name),
            counts_type(),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let bins = Bins::from_args(args.exprs, args.expr_fields)?;
        Ok(Box::new(HistAccumulator {
            counts: vec![0; bins.len()],
            bins,
        }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let bins = Bins::from_args(args.exprs, args.expr_fields)?;
        Ok(Box::new(HistGroupsAccumulator {
            bins,
            counts: Vec::new(),
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

fn wrong_arity<T>(found: usize) -> Result<T> {
    plan_err!(
        "HIST: expected HIST(x), HIST(x, min, max, size) or HIST(x, [edges]), found {found} \
         arguments"
    )
}

/// `{lo, hi, count}`, the element type of the result.
fn bin_fields() -> Fields {
    Fields::from(vec![
        Field::new("lo", DataType::Float64, false),
        Field::new("hi", DataType::Float64, false),
        Field::new("count", DataType::Int64, false),
    ])
}

fn bin_field() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Struct(bin_fields()), false))
}

/// `List<Struct<lo Float64, hi Float64, count Int64>>`.
fn hist_type() -> DataType {
    DataType::List(bin_field())
}

/// The partial state: one list of per-bin counts per group, open-ended bins included.
fn counts_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true)))
}

/// The bin edges of one call, in the unit `x` is converted to. A histogram has `edges + 1` bins:
/// bin 0 is `[-inf, edges[0])`, bin `i` is `[edges[i - 1], edges[i])`, the last is
/// `[edges[last], +inf)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    edges: Vec<f64>,
}

impl Bins {
    /// Bins from ascending, finite edges (at least two).
    pub fn from_edges(edges: Vec<f64>) -> Result<Self> {
        if edges.len() < 2 {
            return plan_err!(
                "HIST: argument 'edges' needs at least two edges, found {}",
                edges.len()
            );
        }
        if edges.len() - 1 > MAX_BINS {
            return plan_err!(
                "HIST: argument 'edges' gives {} bins, more than the limit of {MAX_BINS}",
                edges.len() - 1
            );
        }
        if let Some(edge) = edges.iter().find(|e| !e.is_finite()) {
            return plan_err!("HIST: argument 'edges' must be finite numbers, found {edge}");
        }
        if let Some(pair) = edges.windows(2).find(|pair| pair[0] >= pair[1]) {
            return plan_err!(
                "HIST: argument 'edges' must be strictly ascending, found {} before {}",
                pair[0],
                pair[1]
            );
        }
        Ok(Self { edges })
    }

    /// Bins of width `size` from `min`, the last one cut at `max`.
    pub fn uniform(min: f64, max: f64, size: f64) -> Result<Self> {
        for (name, value) in [("min", min), ("max", max), ("size", size)] {
            if !value.is_finite() {
                return plan_err!("HIST: argument '{name}' must be a finite number, found {value}");
            }
        }
        if size <= 0.0 {
            return plan_err!("HIST: argument 'size' must be positive, found {size}");
        }
        if min >= max {
            return plan_err!(
                "HIST: argument 'min' must be less than argument 'max', found min {min} and \
                 max {max}"
            );
        }
        // the estimate may be one off through rounding; the exact count is checked below
        let estimate = ((max - min) / size).ceil();
        if estimate > (MAX_BINS + 1) as f64 {
            return too_many_bins(estimate);
        }
        // each edge from `min` directly, so rounding does not accumulate along the bins
        let mut edges: Vec<f64> = (0..)
            .map(|i| min + f64::from(i) * size)
            .take_while(|&lo| lo < max)
            .take(MAX_BINS + 1)
            .collect();
        edges.push(max);
        if edges.len() - 1 > MAX_BINS {
            return too_many_bins((edges.len() - 1) as f64);
        }
        Ok(Self { edges })
    }

    /// Amplitude's default session-length bins, in milliseconds or in seconds.
    pub fn default_bins(in_seconds: bool) -> Self {
        let scale = if in_seconds { 1_000.0 } else { 1.0 };
        Self {
            edges: DEFAULT_EDGES_MS.iter().map(|e| e / scale).collect(),
        }
    }

    /// The bins of a call, from its constant arguments.
    fn from_args(exprs: &[Arc<dyn PhysicalExpr>], fields: &[FieldRef]) -> Result<Self> {
        let Some(x_field) = fields.first() else {
            return wrong_arity(0);
        };
        match exprs.len() {
            1 => Ok(Self::default_bins(
                x_field.data_type() != &DataType::Float64,
            )),
            2 => Self::from_edges(edges_literal(&exprs[1])?),
            4 => Self::uniform(
                number_literal(&exprs[1], "min")?,
                number_literal(&exprs[2], "max")?,
                number_literal(&exprs[3], "size")?,
            ),
            n => wrong_arity(n),
        }
    }

    /// The number of bins of a histogram: the requested ones and the two open-ended ones.
    pub fn len(&self) -> usize {
        self.edges.len() + 1
    }

    /// Always false: there are at least three bins.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn edges(&self) -> &[f64] {
        &self.edges
    }

    /// The bin holding `value`; NaN, in no order with the edges, is in none.
    #[inline]
    pub fn bin_of(&self, value: f64) -> Option<usize> {
        // the number of edges <= value: 0 below the first edge, edges.len() at or above the last
        (!value.is_nan()).then(|| self.edges.partition_point(|&edge| edge <= value))
    }

    /// The lower bounds of the bins, `-inf` first.
    fn lows(&self) -> impl Iterator<Item = f64> + Clone + '_ {
        std::iter::once(f64::NEG_INFINITY).chain(self.edges.iter().copied())
    }

    /// The upper bounds of the bins, `+inf` last.
    fn highs(&self) -> impl Iterator<Item = f64> + Clone + '_ {
        self.edges
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
    }

    fn size(&self) -> usize {
        self.edges.capacity() * size_of::<f64>()
    }
}

fn too_many_bins<T>(bins: f64) -> Result<T> {
    plan_err!(
        "HIST: argument 'size' gives {bins} bins between 'min' and 'max', more than the limit of \
         {MAX_BINS}"
    )
}

fn literal_value<'a>(expr: &'a Arc<dyn PhysicalExpr>, name: &str) -> Result<&'a ScalarValue> {
    match expr.downcast_ref::<Literal>() {
        Some(literal) => Ok(literal.value()),
        None => plan_err!("HIST: argument '{name}' must be a constant, found {expr}"),
    }
}

fn number_literal(expr: &Arc<dyn PhysicalExpr>, name: &str) -> Result<f64> {
    let value = literal_value(expr, name)?;
    if value.is_null() {
        return plan_err!("HIST: argument '{name}' must not be NULL");
    }
    match value.cast_to(&DataType::Float64) {
        Ok(ScalarValue::Float64(Some(number))) => Ok(number),
        _ => plan_err!(
            "HIST: argument '{name}' must be a constant number, found {}",
            value.data_type()
        ),
    }
}

fn edges_literal(expr: &Arc<dyn PhysicalExpr>) -> Result<Vec<f64>> {
    let value = literal_value(expr, "edges")?;
    let elements: ArrayRef = match value {
        ScalarValue::List(list) if list.is_valid(0) => list.value(0),
        ScalarValue::LargeList(list) if list.is_valid(0) => list.value(0),
        ScalarValue::FixedSizeList(list) if list.is_valid(0) => list.value(0),
        other if other.is_null() => return plan_err!("HIST: argument 'edges' must not be NULL"),
        other => {
            return plan_err!(
                "HIST: argument 'edges' must be an array of numbers such as [0, 60, 600], \
                 found {}",
                other.data_type()
            );
        }
    };
    if elements.null_count() > 0 {
        return plan_err!("HIST: argument 'edges' must not contain NULL");
    }
    let Ok(numbers) = cast(&elements, &DataType::Float64) else {
        return plan_err!(
            "HIST: argument 'edges' must be an array of numbers, found elements of type {}",
            elements.data_type()
        );
    };
    Ok(numbers.as_primitive::<Float64Type>().values().to_vec())
}

/// `x` as Float64 in the unit the bins are in: numbers as they are, durations and intervals
/// in seconds.
fn values_in_bin_unit(x: &ArrayRef) -> Result<Float64Array> {
    match x.data_type() {
        DataType::Float64 => Ok(x.as_primitive::<Float64Type>().clone()),
        DataType::Null => Ok(Float64Array::new_null(x.len())),
        t if is_span_type(t) => span_array_to_seconds("HIST: argument 'x'", x),
        other => internal_err!("HIST: unexpected type {other} for argument 'x'"),
    }
}

/// Calls `count(row, bin)` for every row with a value (not NULL, not NaN) that passes the
/// filter.
fn for_each_binned(
    bins: &Bins,
    x: &ArrayRef,
    opt_filter: Option<&BooleanArray>,
    mut count: impl FnMut(usize, usize),
) -> Result<()> {
    let values = values_in_bin_unit(x)?;
    let filter_nulls = opt_filter.and_then(|f| f.nulls());
    let keep = |row: usize| {
        values.is_valid(row)
            && opt_filter
                .is_none_or(|f| f.value(row) && filter_nulls.is_none_or(|n| n.is_valid(row)))
    };
    for (row, &value) in values.values().iter().enumerate() {
        if let Some(bin) = bins.bin_of(value)
            && keep(row)
        {
            count(row, bin);
        }
    }
    Ok(())
}

/// Calls `add(row, counts)` for every non-NULL row of a partial state.
fn for_each_state_row(
    bins: &Bins,
    state: &ArrayRef,
    mut add: impl FnMut(usize, &[i64]),
) -> Result<()> {
    let Some(lists) = state.as_list_opt::<i32>() else {
        return internal_err!(
            "HIST: the partial state is {}, expected {}",
            state.data_type(),
            counts_type()
        );
    };
    let Some(counts) = lists
        .values()
        .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
    else {
        return internal_err!(
            "HIST: the partial state holds {}",
            lists.values().data_type()
        );
    };
    if counts.null_count() > 0 {
        return internal_err!("HIST: the partial state holds NULL counts");
    }
    let offsets = lists.value_offsets();
    for row in 0..lists.len() {
        if lists.is_null(row) {
            continue;
        }
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        if end - start != bins.len() {
            return internal_err!(
                "HIST: a partial state has {} bins, expected {}",
                end - start,
                bins.len()
            );
        }
        add(row, &counts.values()[start..end]);
    }
    Ok(())
}

/// One histogram per group from `groups * bins.len()` counts, group after group.
fn histogram_lists(bins: &Bins, counts: Vec<i64>) -> Result<ListArray> {
    let width = bins.len();
    let groups = counts.len() / width;
    let lows: Vec<f64> = bins.lows().cycle().take(counts.len()).collect();
    let highs: Vec<f64> = bins.highs().cycle().take(counts.len()).collect();
    let structs = StructArray::try_new(
        bin_fields(),
        vec![
            Arc::new(Float64Array::from(lows)),
            Arc::new(Float64Array::from(highs)),
            Arc::new(Int64Array::from(counts)),
        ],
        None,
    )?;
    Ok(ListArray::try_new(
        bin_field(),
        OffsetBuffer::from_repeated_length(width, groups),
        Arc::new(structs),
        None,
    )?)
}

/// The partial state of `groups` groups: a list of `bins.len()` counts each.
fn counts_lists(bins: &Bins, counts: Vec<i64>, nulls: Option<NullBuffer>) -> Result<ListArray> {
    let groups = counts.len() / bins.len();
    Ok(ListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Int64, true)),
        OffsetBuffer::from_repeated_length(bins.len(), groups),
        Arc::new(Int64Array::from(counts)),
        nulls,
    )?)
}

/// `HIST` over one group.
#[derive(Debug)]
struct HistAccumulator {
    bins: Bins,
    counts: Vec<i64>,
}

impl Accumulator for HistAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(x) = values.first() else {
            return internal_err!("HIST: argument 'x' is missing");
        };
        let counts = &mut self.counts;
        for_each_binned(&self.bins, x, None, |_, bin| counts[bin] += 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let lists = histogram_lists(&self.bins, self.counts.clone())?;
        Ok(ScalarValue::List(Arc::new(lists)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.counts.capacity() * size_of::<i64>() + self.bins.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let lists = counts_lists(&self.bins, self.counts.clone(), None)?;
        Ok(vec![ScalarValue::List(Arc::new(lists))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(state) = states.first() else {
            return internal_err!("HIST: the partial state is missing");
        };
        let counts = &mut self.counts;
        for_each_state_row(&self.bins, state, |_, partial| {
            for (total, add) in counts.iter_mut().zip(partial) {
                *total += add;
            }
        })
    }
}

/// `HIST` over many groups: the counts of group `g` are `counts[g * bins .. (g + 1) * bins]`.
struct HistGroupsAccumulator {
    bins: Bins,
    counts: Vec<i64>,
}

impl HistGroupsAccumulator {
    fn grow(&mut self, total_num_groups: usize) {
        let needed = total_num_groups * self.bins.len();
        if self.counts.len() < needed {
            self.counts.resize(needed, 0);
        }
    }

    /// Removes and returns the counts of the groups `emit_to` names.
    fn take_counts(&mut self, emit_to: EmitTo) -> Vec<i64> {
        match emit_to {
            EmitTo::All => std::mem::take(&mut self.counts),
            EmitTo::First(groups) => {
                let rest = self.counts.split_off(groups * self.bins.len());
                std::mem::replace(&mut self.counts, rest)
            }
        }
    }
}

impl GroupsAccumulator for HistGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let Some(x) = values.first() else {
            return internal_err!("HIST: argument 'x' is missing");
        };
        self.grow(total_num_groups);
        let width = self.bins.len();
        let counts = &mut self.counts;
        for_each_binned(&self.bins, x, opt_filter, |row, bin| {
            counts[group_indices[row] * width + bin] += 1;
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let counts = self.take_counts(emit_to);
        Ok(Arc::new(histogram_lists(&self.bins, counts)?))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let counts = self.take_counts(emit_to);
        Ok(vec![Arc::new(counts_lists(&self.bins, counts, None)?)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let Some(state) = values.first() else {
            return internal_err!("HIST: the partial state is missing");
        };
        self.grow(total_num_groups);
        let width = self.bins.len();
        let counts = &mut self.counts;
        for_each_state_row(&self.bins, state, |row, partial| {
            let start = group_indices[row] * width;
            for (total, add) in counts[start..start + width].iter_mut().zip(partial) {
                *total += add;
            }
        })
    }

    /// One dense list of counts per row (a single 1, or all zeros). This is as large as the
    /// partial aggregation it replaces, which also holds one list per group when nearly every
    /// row is a group of its own.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let Some(x) = values.first() else {
            return internal_err!("HIST: argument 'x' is missing");
        };
        let width = self.bins.len();
        let mut counts = vec![0_i64; x.len() * width];
        for_each_binned(&self.bins, x, opt_filter, |row, bin| {
            counts[row * width + bin] = 1;
        })?;
        Ok(vec![Arc::new(counts_lists(&self.bins, counts, None)?)])
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.counts.capacity() * size_of::<i64>() + self.bins.size()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        DurationMillisecondArray, DurationNanosecondArray, IntervalMonthDayNanoArray,
    };
    use datafusion::arrow::datatypes::{IntervalMonthDayNano, TimeUnit};

    use super::*;
    use crate::aggregate_testing::{Arg, Call, Row, Subject, check_against_naive, property_float};

    /// The arguments of `HIST(x, params...)`.
    fn hist_args(x: Arg, params: Vec<ScalarValue>) -> Vec<Arg> {
        [x].into_iter()
            .chain(params.into_iter().map(Arg::Literal))
            .collect()
    }

    /// `HIST(x, params...)` with `x` of `x_type`.
    fn call(x_type: DataType, params: Vec<ScalarValue>) -> Call {
        Call::new(&hist_udaf(), &hist_args(Arg::Column(x_type), params))
    }

    fn accumulator(x_type: DataType, params: Vec<ScalarValue>) -> Result<Box<dyn Accumulator>> {
        call(x_type, params).accumulator()
    }

    fn groups_accumulator(
        x_type: DataType,
        params: Vec<ScalarValue>,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        call(x_type, params).groups_accumulator()
    }

    fn floats(params: &[f64]) -> Vec<ScalarValue> {
        params
            .iter()
            .map(|&p| ScalarValue::Float64(Some(p)))
            .collect()
    }

    fn edges_param(edges: &[i64]) -> ScalarValue {
        ScalarValue::List(ScalarValue::new_list_nullable(
            &edges
                .iter()
                .map(|&e| ScalarValue::Int64(Some(e)))
                .collect::<Vec<_>>(),
            &DataType::Int64,
        ))
    }

    /// `(lo, hi, count)` of every bin of one histogram.
    fn bins_of(lists: &ListArray, row: usize) -> Vec<(f64, f64, i64)> {
        let bins = lists.value(row);
        let bins = bins.as_struct();
        let lo = bins.column(0).as_primitive::<Float64Type>();
        let hi = bins.column(1).as_primitive::<Float64Type>();
        let count = bins
            .column(2)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        (0..bins.len())
            .map(|i| (lo.value(i), hi.value(i), count.value(i)))
            .collect()
    }

    fn evaluate(acc: &mut dyn Accumulator) -> Vec<(f64, f64, i64)> {
        match acc.evaluate().unwrap() {
            ScalarValue::List(lists) => bins_of(&lists, 0),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn counts(acc: &mut dyn Accumulator) -> Vec<i64> {
        evaluate(acc).into_iter().map(|(_, _, c)| c).collect()
    }

    fn float_column(values: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    const NEG_INF: f64 = f64::NEG_INFINITY;
    const INF: f64 = f64::INFINITY;

    #[test]
    fn edges_go_to_the_upper_bin_and_outside_values_to_the_open_ended_bins() {
        let mut acc = accumulator(DataType::Float64, floats(&[0.0, 10.0, 5.0])).unwrap();
        let x = float_column(&[
            Some(NEG_INF),
            Some(-0.5),
            Some(-0.0),
            Some(0.0),
            Some(4.999),
            Some(5.0),
            Some(9.999),
            Some(10.0),
            Some(INF),
            None,
        ]);
        acc.update_batch(&[x]).unwrap();
        assert_eq!(
            evaluate(acc.as_mut()),
            vec![
                (NEG_INF, 0.0, 2),
                (0.0, 5.0, 3),
                (5.0, 10.0, 2),
                (10.0, INF, 2)
            ]
        );
    }

    /// NaN is skipped like NULL, by both accumulators and by `convert_to_state`.
    #[test]
    fn nan_is_in_no_bin() {
        let x = float_column(&[Some(f64::NAN), Some(-f64::NAN), Some(1.0), None]);
        let mut acc = accumulator(DataType::Float64, floats(&[0.0, 2.0, 1.0])).unwrap();
        acc.update_batch(&[Arc::clone(&x)]).unwrap();
        assert_eq!(counts(acc.as_mut()), vec![0, 0, 1, 0]);

        let mut groups = groups_accumulator(DataType::Float64, floats(&[0.0, 2.0, 1.0])).unwrap();
        groups
            .update_batch(&[Arc::clone(&x)], &[0, 0, 0, 0], None, 1)
            .unwrap();
        let state = groups.convert_to_state(&[x], None).unwrap();
        groups.merge_batch(&state, &[0, 0, 0, 0], 1).unwrap();
        let lists = groups.evaluate(EmitTo::All).unwrap();
        let counts: Vec<i64> = bins_of(lists.as_list::<i32>(), 0)
            .into_iter()
            .map(|(_, _, c)| c)
            .collect();
        assert_eq!(counts, vec![0, 0, 2, 0]);
    }

    #[test]
    fn the_last_uniform_bin_is_cut_at_max() {
        let mut acc = accumulator(DataType::Float64, floats(&[0.0, 25.0, 10.0])).unwrap();
        acc.update_batch(&[float_column(&[Some(24.0), Some(25.0), Some(20.0)])])
            .unwrap();
        assert_eq!(
            evaluate(acc.as_mut()),
            vec![
                (NEG_INF, 0.0, 0),
                (0.0, 10.0, 0),
                (10.0, 20.0, 0),
                (20.0, 25.0, 2),
                (25.0, INF, 1)
            ]
        );
        // no float drift: 0.1-wide bins up to 1 make exactly 10 bins (11 edges)
        assert_eq!(Bins::uniform(0.0, 1.0, 0.1).unwrap().edges().len(), 11);
    }

    #[test]
    fn explicit_edges() {
        let mut acc = accumulator(DataType::Float64, vec![edges_param(&[0, 60, 600])]).unwrap();
        acc.update_batch(&[float_column(&[
            Some(59.0),
            Some(60.0),
            Some(600.0),
            Some(1.0),
        ])])
        .unwrap();
        assert_eq!(
            evaluate(acc.as_mut()),
            vec![
                (NEG_INF, 0.0, 0),
                (0.0, 60.0, 2),
                (60.0, 600.0, 1),
                (600.0, INF, 1)
            ]
        );
    }

    #[test]
    fn default_bins_on_milliseconds() {
        let mut acc = accumulator(DataType::Float64, vec![]).unwrap();
        let x = float_column(&[
            Some(0.0),
            Some(2_999.0),
            Some(3_000.0),
            Some(59_999.0),
            Some(3_600_000.0),
            Some(86_399_999.0),
            Some(86_400_000.0),
            Some(-1.0),
            None,
        ]);
        acc.update_batch(&[x]).unwrap();
        let bins = evaluate(acc.as_mut());
        let lows: Vec<f64> = bins.iter().map(|b| b.0).collect();
        let highs: Vec<f64> = bins.iter().map(|b| b.1).collect();
        assert_eq!(lows, [&[NEG_INF][..], &DEFAULT_EDGES_MS].concat());
        assert_eq!(highs, [&DEFAULT_EDGES_MS[..], &[INF]].concat());
        // -1 below; 86400000 (a day) at or above the last edge
        assert_eq!(
            bins.iter().map(|b| b.2).collect::<Vec<_>>(),
            vec![1, 2, 1, 0, 1, 0, 0, 0, 0, 2, 1]
        );
    }

    #[test]
    fn default_bins_on_durations_and_intervals_are_seconds() {
        let millis: ArrayRef = Arc::new(DurationMillisecondArray::from(vec![
            Some(2_999),
            Some(3_000),
            Some(60_000),
            None,
        ]));
        let mut acc = accumulator(millis.data_type().clone(), vec![]).unwrap();
        acc.update_batch(&[millis]).unwrap();
        let bins = evaluate(acc.as_mut());
        assert_eq!((bins[1].0, bins[1].1, bins[9].1), (0.0, 3.0, 86_400.0));
        assert_eq!(
            bins.iter().map(|b| b.2).collect::<Vec<_>>(),
            vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0]
        );

        let nanos: ArrayRef = Arc::new(DurationNanosecondArray::from(vec![10_000_000_000]));
        let mut acc = accumulator(nanos.data_type().clone(), vec![]).unwrap();
        acc.update_batch(&[nanos]).unwrap();
        assert_eq!(counts(acc.as_mut())[3], 1);

        let intervals: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(0, 0, 30_000_000_000),
            IntervalMonthDayNano::new(0, 1, 0),
        ]));
        let mut acc = accumulator(intervals.data_type().clone(), vec![]).unwrap();
        acc.update_batch(&[Arc::clone(&intervals)]).unwrap();
        // 30 s is in [30 s, 1 min); one day is at the last edge, so in the open-ended bin
        assert_eq!(counts(acc.as_mut()), vec![0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);

        let months: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(1, 0, 0),
        ]));
        let err = acc.update_batch(&[months]).unwrap_err();
        assert!(err.to_string().contains("with months"), "{err}");
    }

    #[test]
    fn no_rows_give_every_bin_with_count_zero() {
        let mut acc = accumulator(DataType::Float64, floats(&[0.0, 3.0, 1.0])).unwrap();
        assert_eq!(counts(acc.as_mut()), vec![0, 0, 0, 0, 0]);
        let mut groups = groups_accumulator(DataType::Float64, floats(&[0.0, 3.0, 1.0])).unwrap();
        groups
            .update_batch(&[float_column(&[])], &[], None, 2)
            .unwrap();
        let lists = groups.evaluate(EmitTo::All).unwrap();
        let lists = lists.as_list::<i32>();
        assert_eq!(lists.len(), 2);
        assert_eq!(
            bins_of(lists, 1),
            vec![
                (NEG_INF, 0.0, 0),
                (0.0, 1.0, 0),
                (1.0, 2.0, 0),
                (2.0, 3.0, 0),
                (3.0, INF, 0)
            ]
        );
    }

    fn plan_error(x_type: DataType, params: Vec<ScalarValue>) -> String {
        accumulator(x_type, params).unwrap_err().to_string()
    }

    #[test]
    fn bad_bins_are_planning_errors() {
        let cases = [
            (
                floats(&[0.0, 10.0, 0.0]),
                "HIST: argument 'size' must be positive, found 0",
            ),
            (
                floats(&[0.0, 10.0, -1.0]),
                "argument 'size' must be positive, found -1",
            ),
            (
                floats(&[5.0, 5.0, 1.0]),
                "argument 'min' must be less than argument 'max'",
            ),
            (floats(&[0.0, 10001.0, 1.0]), "more than the limit of 10000"),
            (
                vec![edges_param(&[0, 10, 10])],
                "strictly ascending, found 10 before 10",
            ),
            (
                vec![edges_param(&[10, 0])],
                "strictly ascending, found 10 before 0",
            ),
            (vec![edges_param(&[1])], "needs at least two edges, found 1"),
            (
                vec![
                    ScalarValue::Float64(None),
                    ScalarValue::Float64(Some(1.0)),
                    ScalarValue::Float64(Some(1.0)),
                ],
                "argument 'min' must not be NULL",
            ),
        ];
        for (params, expected) in cases {
            let err = plan_error(DataType::Float64, params);
            assert!(err.contains(expected), "{err}");
            assert!(err.starts_with("Error during planning: HIST"), "{err}");
        }
        // 10,000 requested bins are allowed, and the two open-ended ones come on top
        assert_eq!(Bins::uniform(0.0, 10_000.0, 1.0).unwrap().len(), 10_002);
        // a non-constant bin argument
        let mut args = hist_args(Arg::Column(DataType::Float64), floats(&[0.0, 1.0]));
        args.insert(1, Arg::Column(DataType::Float64));
        let err = Call::new(&hist_udaf(), &args).accumulator().unwrap_err();
        assert!(
            err.to_string()
                .contains("HIST: argument 'min' must be a constant"),
            "{err}"
        );
    }

    #[test]
    fn bad_argument_types_are_planning_errors() {
        let hist = Hist::default();
        let err = hist.coerce_types(&[DataType::Utf8]).unwrap_err();
        assert!(
            err.to_string()
                .contains("HIST: argument 'x' must be a number"),
            "{err}"
        );
        let err = hist
            .coerce_types(&[DataType::Float64, DataType::Int64, DataType::Int64])
            .unwrap_err();
        assert!(err.to_string().contains("found 3 arguments"), "{err}");
        let err = hist
            .coerce_types(&[DataType::Float64, DataType::Int64])
            .unwrap_err();
        assert!(err.to_string().contains("HIST: argument 'edges'"), "{err}");
        assert_eq!(
            hist.coerce_types(&[DataType::Int32]).unwrap(),
            vec![DataType::Float64]
        );
    }

    /// A property value as `x`: eighths, from -125 to 125.
    fn x_of(value: i64) -> f64 {
        value as f64 / 8.0
    }

    /// The histogram of the rows' values (as `x`) over `edges`, each bin counted by a scan of
    /// the rows: below the first edge, each `[lo, hi)`, at or above the last edge.
    fn naive_histogram(edges: &[f64], x: fn(i64) -> f64, rows: &[&Row]) -> ScalarValue {
        let values: Vec<f64> = rows.iter().filter_map(|r| r.value.map(x)).collect();
        let count = |inside: &dyn Fn(f64) -> bool| -> i64 {
            values.iter().filter(|&&v| inside(v)).count() as i64
        };
        let (first, last) = (edges[0], edges[edges.len() - 1]);
        let mut bins = vec![(f64::NEG_INFINITY, first, count(&|v| v < first))];
        for bin in edges.windows(2) {
            bins.push((bin[0], bin[1], count(&|v| bin[0] <= v && v < bin[1])));
        }
        bins.push((last, f64::INFINITY, count(&|v| v >= last)));
        let bins = StructArray::new(
            bin_fields(),
            vec![
                Arc::new(Float64Array::from_iter_values(bins.iter().map(|b| b.0))),
                Arc::new(Float64Array::from_iter_values(bins.iter().map(|b| b.1))),
                Arc::new(Int64Array::from_iter_values(bins.iter().map(|b| b.2))),
            ],
            None,
        );
        let lists = ListArray::new(
            bin_field(),
            OffsetBuffer::from_lengths([bins.len()]),
            Arc::new(bins),
            None,
        );
        ScalarValue::List(Arc::new(lists))
    }

    /// `HIST(x, params...)` against the naive histogram over `edges`, `x(value)` being the
    /// value the aggregate sees for a row's property value.
    fn subject(
        x: Arg,
        params: Vec<ScalarValue>,
        edges: Vec<f64>,
        x_value: fn(i64) -> f64,
    ) -> Subject {
        let naive = move |rows: &[&Row]| naive_histogram(&edges, x_value, rows);
        Subject::new(&hist_udaf(), &hist_args(x, params), naive)
    }

    /// Uniform bins and explicit edges over floats, and uniform bins over durations (in
    /// seconds), with values below, inside, on the edges of and above the bins; and floats with
    /// NaN of both signs and both zeros, NaN counted nowhere.
    #[test]
    fn accumulators_match_naive() {
        let uniform: Vec<f64> = (0..13)
            .map(|i| f64::from(i) * 10.0)
            .chain([125.0])
            .collect();
        let floats_x = || Arg::Property(DataType::Float64, |v| ScalarValue::from(x_of(v)));
        // v * 125 ms is v / 8 s
        let durations_x = Arg::Property(DataType::Duration(TimeUnit::Millisecond), |v| {
            ScalarValue::DurationMillisecond(Some(v * 125))
        });
        let subjects = [
            subject(
                floats_x(),
                floats(&[0.0, 125.0, 10.0]),
                uniform.clone(),
                x_of,
            ),
            subject(
                floats_x(),
                vec![edges_param(&[-10, 0, 30, 31, 100])],
                vec![-10.0, 0.0, 30.0, 31.0, 100.0],
                x_of,
            ),
            subject(durations_x, floats(&[0.0, 125.0, 10.0]), uniform, x_of),
            // property floats run from -2 to 3.5 in halves, with NaN, -NaN, -0.0 and 0.0
            subject(
                Arg::float_values(),
                vec![edges_param(&[-1, 0, 2])],
                vec![-1.0, 0.0, 2.0],
                property_float,
            ),
        ];
        check_against_naive(&subjects, 7);
    }

    #[test]
    fn size_grows_with_groups() {
        let mut acc = groups_accumulator(DataType::Float64, floats(&[0.0, 100.0, 1.0])).unwrap();
        let before = acc.size();
        acc.update_batch(&[float_column(&[Some(1.0)])], &[999], None, 1_000)
            .unwrap();
        // 100 requested bins and the two open-ended ones per group
        assert!(acc.size() >= before + 1_000 * 102 * size_of::<i64>());
    }
}
