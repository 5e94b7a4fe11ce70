//! `sessionize(time [, gap]) OVER (PARTITION BY user ORDER BY time)`: the session key of each
//! row, as a window function, so any query, join or subquery can be sessionized.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    Documentation, LimitEffect, PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion_macros::user_doc;

use crate::session_split::{split_by_event_gaps, split_by_gap};
use crate::time_unit::{
    is_span_type, nanos_to_ticks, scalar_span_nanos, span_array_to_ticks, ticks_to_epoch_ms,
    timestamp_ticks,
};

/// The gap used when the call gives none: 30 minutes, as `sessionlake.gap`'s default.
pub const DEFAULT_GAP_NANOS: i128 = 30 * 60 * 1_000_000_000;

/// The `sessionize` window function, as a shared [`WindowUDF`].
pub fn sessionize_udwf() -> Arc<WindowUDF> {
    static INSTANCE: LazyLock<Arc<WindowUDF>> =
        LazyLock::new(|| Arc::new(WindowUDF::from(SessionizeWindow::new())));
    Arc::clone(&INSTANCE)
}

#[user_doc(
    doc_section(label = "Session Functions"),
    description = "The session key of each row: the start of its session in epoch \
milliseconds. Rows of one partition (one user) are ordered by time; a session stays open until \
the previous row's time plus that row's gap, and a row strictly after that moment starts a new \
session (a gap exactly equal to the timeout stays in the session). Rows with a NULL time get \
NULL. The window function applies no maximum length and sees no activity flag: filter inactive \
events and NULL users in WHERE, or use the `sessionize('<table>')` table function.",
    syntax_example = "sessionize(time [, gap]) OVER (PARTITION BY user ORDER BY time)",
    sql_example = r#"```sql
> SELECT user_id, event_time,
    sessionize(event_time, INTERVAL '30 minutes')
      OVER (PARTITION BY user_id ORDER BY event_time) AS session_key
  FROM events WHERE is_active;
```"#,
    argument(
        name = "time",
        description = "A timestamp column of any unit and time zone."
    ),
    argument(
        name = "gap",
        description = "Inactivity timeout: an interval or duration, strictly positive, without \
months. May vary per row (for example `CASE platform WHEN 'web' THEN INTERVAL '30 minutes' ELSE \
INTERVAL '5 minutes' END`). Default 30 minutes."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SessionizeWindow {
    signature: Signature,
}

impl SessionizeWindow {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for SessionizeWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowUDFImpl for SessionizeWindow {
    fn name(&self) -> &str {
        "sessionize"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.is_empty() || arg_types.len() > 2 {
            return plan_err!(
                "sessionize: expected sessionize(time [, gap]), found {} arguments",
                arg_types.len()
            );
        }
        if !matches!(arg_types[0], DataType::Timestamp(_, _)) {
            return plan_err!(
                "sessionize: argument 'time' must be a timestamp, found {}",
                arg_types[0]
            );
        }
        if let Some(gap_type) = arg_types.get(1)
            && !is_span_type(gap_type)
            && !gap_type.is_null()
        {
            return plan_err!(
                "sessionize: argument 'gap' must be an interval such as INTERVAL '30 minutes', \
                 found {gap_type}"
            );
        }
        Ok(arg_types.to_vec())
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let Some(time_field) = args.input_fields().first() else {
            return plan_err!("sessionize: argument 'time' is missing");
        };
        let DataType::Timestamp(unit, _) = time_field.data_type() else {
            return plan_err!(
                "sessionize: argument 'time' must be a timestamp, found {}",
                time_field.data_type()
            );
        };
        let gap = match args.input_exprs().get(1) {
            None => Gap::Constant(nanos_to_ticks(DEFAULT_GAP_NANOS, *unit)),
            Some(expr) => match constant_gap_ticks(expr, *unit)? {
                Some(ticks) => Gap::Constant(ticks),
                None => Gap::PerRow,
            },
        };
        Ok(Box::new(SessionizeEvaluator { unit: *unit, gap }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Int64,
            true,
        )))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }

    fn limit_effect(&self, _args: &[Arc<dyn PhysicalExpr>]) -> LimitEffect {
        LimitEffect::Unknown
    }
}

/// The gap of a literal argument in ticks, validated at planning; `None` for a per-row gap.
fn constant_gap_ticks(expr: &Arc<dyn PhysicalExpr>, unit: TimeUnit) -> Result<Option<i64>> {
    let Some(literal) = expr.downcast_ref::<Literal>() else {
        return Ok(None);
    };
    match scalar_span_nanos("sessionize: argument 'gap'", literal.value())? {
        None => plan_err!("sessionize: argument 'gap' must not be NULL"),
        Some(nanos) if nanos <= 0 => {
            plan_err!(
                "sessionize: argument 'gap' must be positive, found {}",
                literal.value()
            )
        }
        Some(nanos) => Ok(Some(nanos_to_ticks(nanos, unit).max(0))),
    }
}

#[derive(Debug, Clone, Copy)]
enum Gap {
    Constant(i64),
    PerRow,
}

#[derive(Debug)]
struct SessionizeEvaluator {
    unit: TimeUnit,
    gap: Gap,
}

impl PartitionEvaluator for SessionizeEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let Some(time_array) = values.first() else {
            return exec_err!("sessionize: argument 'time' is missing");
        };
        let ticks = timestamp_ticks("sessionize: argument 'time'", time_array)?;
        let nulls = time_array.logical_nulls();
        let per_row_gaps = match (self.gap, values.get(1)) {
            (Gap::PerRow, Some(gaps)) => Some(span_array_to_ticks(
                "sessionize: argument 'gap'",
                gaps,
                self.unit,
            )?),
            _ => None,
        };

        // rows with a NULL time take no part; the rest are gathered contiguously
        let valid_rows: Vec<usize> = match &nulls {
            Some(nulls) => nulls.valid_indices().collect(),
            None => (0..num_rows).collect(),
        };
        let times: Vec<i64> = valid_rows.iter().map(|&row| ticks[row]).collect();
        if let Some(pos) = times.windows(2).position(|w| w[1] < w[0]) {
            return exec_err!(
                "sessionize: rows must be ordered by the time argument (add ORDER BY <time> to \
                 the OVER clause); row {} comes before an earlier time",
                valid_rows[pos]
            );
        }

        let mut keys = vec![0_i64; num_rows];
        let mut assign = |range: std::ops::Range<usize>| {
            let key = ticks_to_epoch_ms(times[range.start], self.unit);
            for &row in &valid_rows[range] {
                keys[row] = key;
            }
        };
        match (self.gap, per_row_gaps) {
            (Gap::Constant(gap), _) => split_by_gap(&times, gap, &mut assign),
            (Gap::PerRow, Some(gaps)) => {
                let mut row_gaps = Vec::with_capacity(valid_rows.len());
                for &row in &valid_rows {
                    match gaps[row] {
                        Some(gap) => row_gaps.push(gap),
                        None => {
                            return exec_err!("sessionize: argument 'gap' is NULL at row {row}");
                        }
                    }
                }
                split_by_event_gaps(&times, &row_gaps, &mut assign)
            }
            (Gap::PerRow, None) => return exec_err!("sessionize: argument 'gap' is missing"),
        }
        Ok(Arc::new(Int64Array::new(keys.into(), nulls)))
    }
}
