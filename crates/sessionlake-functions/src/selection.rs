//! Which rows of a batch an aggregate counts, as one bit mask computed with whole-buffer bit
//! operations: rows whose required arguments are not NULL, that pass `FILTER (WHERE ...)`, and
//! (for `ACTIVE`) whose activity flag is not false. Every aggregate selects its rows here.

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::common::Result;

/// The rows where every array of `required` is logically non-NULL (a dictionary row whose value
/// is NULL counts as NULL) and `filter`, if any, is true (a NULL filter value excludes the row).
pub(crate) fn selected_rows(
    len: usize,
    required: &[&dyn Array],
    filter: Option<&BooleanArray>,
) -> BooleanBuffer {
    let mut selected = BooleanBuffer::new_set(len);
    for array in required {
        if let Some(nulls) = array.logical_nulls() {
            selected = &selected & nulls.inner();
        }
    }
    if let Some(filter) = filter {
        selected = &selected & &filter_passes(filter);
    }
    selected
}

/// [`selected_rows`] for one argument, as a validity: `None` when every row takes part, so an
/// aggregate can skip the mask and use it directly as the validity of arrays it builds.
pub(crate) fn taken_rows(values: &dyn Array, filter: Option<&BooleanArray>) -> Option<NullBuffer> {
    let selected = selected_rows(values.len(), &[values], filter);
    (selected.count_set_bits() != selected.len()).then(|| NullBuffer::new(selected))
}

/// Calls `f` with every row index of `0..len` that `taken` marks valid (every row for `None`).
pub(crate) fn for_each_taken(
    taken: Option<&NullBuffer>,
    len: usize,
    mut f: impl FnMut(usize) -> Result<()>,
) -> Result<()> {
    match taken {
        None => (0..len).try_for_each(f),
        Some(taken) => taken.valid_indices().try_for_each(&mut f),
    }
}

/// The rows where `filter` is true: NULL means the row does not pass.
fn filter_passes(filter: &BooleanArray) -> BooleanBuffer {
    match filter.nulls() {
        Some(nulls) => filter.values() & nulls.inner(),
        None => filter.values().clone(),
    }
}

/// The rows whose activity flag is not false: true and NULL both count as active.
pub(crate) fn active_rows(is_active: &BooleanArray) -> BooleanBuffer {
    let inactive = match is_active.nulls() {
        Some(nulls) => &!is_active.values() & nulls.inner(),
        None => !is_active.values(),
    };
    !&inactive
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, DictionaryArray, Int32Array, Int64Array, StringArray,
    };
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    fn bits(buffer: &BooleanBuffer) -> Vec<bool> {
        buffer.iter().collect()
    }

    #[test]
    fn nulls_and_filter_exclude_rows() {
        let users: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            None,
            Some("c"),
            Some("d"),
        ]));
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(4)]));
        let filter = BooleanArray::from(vec![Some(true), Some(true), Some(true), None]);
        let selected = selected_rows(4, &[users.as_ref(), keys.as_ref()], Some(&filter));
        assert_eq!(bits(&selected), [true, false, false, false]);
        let unfiltered = selected_rows(4, &[users.as_ref()], None);
        assert_eq!(bits(&unfiltered), [true, false, true, true]);
    }

    #[test]
    fn a_dictionary_row_pointing_at_a_null_value_is_null() {
        let values = StringArray::from(vec![Some("a"), None]);
        let keys = Int32Array::from(vec![0, 1, 0]);
        let users: ArrayRef = Arc::new(
            DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).expect("dictionary"),
        );
        assert_eq!(
            bits(&selected_rows(3, &[users.as_ref()], None)),
            [true, false, true]
        );
    }

    #[test]
    fn filter_nulls_exclude_rows() {
        let values = Int32Array::from(vec![Some(1), None, Some(3), Some(4)]);
        let filter = BooleanArray::from(vec![Some(true), Some(true), None, Some(false)]);
        let taken = taken_rows(&values, Some(&filter));
        let mut rows = vec![];
        for_each_taken(taken.as_ref(), 4, |row| {
            rows.push(row);
            Ok(())
        })
        .expect("every row is visited");
        assert_eq!(rows, vec![0]);
    }

    #[test]
    fn null_activity_counts_as_active() {
        let flags = BooleanArray::from(vec![Some(true), Some(false), None]);
        assert_eq!(bits(&active_rows(&flags)), [true, false, true]);
        let no_nulls = BooleanArray::from(vec![false, true]);
        assert_eq!(bits(&active_rows(&no_nulls)), [false, true]);
    }
}
