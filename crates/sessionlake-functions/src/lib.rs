//! sessionlake's SQL function pack for Apache DataFusion.
//!
//! - [`sessionize::sessionize_udwf`]: `sessionize(time [, gap]) OVER (PARTITION BY user ORDER BY
//!   time)`, the session key of each row;
//! - aggregate functions named after Amplitude's formula language (`SESSIONTOTALS`, `UNIQUES`,
//!   `EVENTTOTALS`, `PROPSUM`, `HIST`, ...), one per file, listed by
//!   [`all_default_aggregate_functions`];
//! - [`session_split`]: the session-splitting kernels shared with the engine's operator;
//! - [`time_unit`]: interval and timestamp-unit conversions;
//! - [`types`]: data type predicates shared with the engine.
//!
//! [`register_all`] installs every function on a [`FunctionRegistry`].

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, WindowUDF};

#[macro_use]
pub mod macros;

pub mod active;
#[cfg(test)]
mod aggregate_testing;
mod distinct_groups;
pub mod event_totals;
pub mod freq_percentile;
pub mod hist;
mod interner;
pub mod prop_avg;
pub mod prop_count;
pub mod prop_min_max;
pub mod prop_sum;
mod property;
mod selection;
pub mod session_split;
pub mod session_totals;
pub mod sessionize;
pub mod time_unit;
pub mod types;
pub mod uniques;
mod user_keys;

/// Every window function of the pack.
pub fn all_default_window_functions() -> Vec<Arc<WindowUDF>> {
    vec![sessionize::sessionize_udwf()]
}

/// Every aggregate function of the pack.
pub fn all_default_aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![
        active::active_udaf(),
        event_totals::event_totals_udaf(),
        freq_percentile::freq_percentile_udaf(),
        hist::hist_udaf(),
        prop_avg::propavg_udaf(),
        prop_count::propcount_udaf(),
        prop_min_max::propmax_udaf(),
        prop_min_max::propmin_udaf(),
        prop_sum::propsum_udaf(),
        session_totals::session_totals_udaf(),
        uniques::uniques_udaf(),
    ]
}

/// Registers every function of the pack on `registry`.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for udwf in all_default_window_functions() {
        registry.register_udwf(udwf)?;
    }
    for udaf in all_default_aggregate_functions() {
        registry.register_udaf(udaf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// No two functions of the pack share a name or an alias: a later registration would
    /// silently replace an earlier one.
    #[test]
    fn names_are_unique() {
        let mut seen = HashSet::new();
        let window = all_default_window_functions();
        let aggregate = all_default_aggregate_functions();
        let names =
            window
                .iter()
                .flat_map(|f| std::iter::once(f.name().to_string()).chain(f.aliases().to_vec()))
                .chain(aggregate.iter().flat_map(|f| {
                    std::iter::once(f.name().to_string()).chain(f.aliases().to_vec())
                }));
        for name in names {
            assert!(
                seen.insert(name.to_lowercase()),
                "duplicate function name {name}"
            );
        }
    }

    /// Every function carries its documentation, which `\functions` and the docs show.
    #[test]
    fn every_function_is_documented() {
        for f in all_default_window_functions() {
            assert!(
                f.documentation().is_some(),
                "{} has no documentation",
                f.name()
            );
        }
        for f in all_default_aggregate_functions() {
            assert!(
                f.documentation().is_some(),
                "{} has no documentation",
                f.name()
            );
        }
    }
}
