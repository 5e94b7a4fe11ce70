//! Exact distinct sets for many groups at once, and the `List` state they travel in.
//!
//! One hash set of `(group, key)` pairs plus a count per group, rather than a set per group: a
//! group seen with a single user costs one entry, not an empty table of its own, which is what
//! a `GROUP BY` over millions of days × platforms × cohorts needs.

use std::hash::Hash;
use std::mem::size_of;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, ListArray};
use datafusion::arrow::buffer::{BooleanBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, filter};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::hash_map::Entry;
use datafusion::common::{HashMap, Result, exec_err};
use datafusion::logical_expr::EmitTo;

/// Bytes held by a `hashbrown` table (std's `HashSet` and `datafusion::common::HashSet` are
/// both one) that can hold `capacity` entries of `T` without growing: a power-of-two number of
/// buckets, kept at most 7/8 full, each a `T` plus one control byte, and one group of trailing
/// control bytes.
pub(crate) fn hash_table_bytes<T>(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity.saturating_mul(8) / 7).next_power_of_two()
    };
    const CONTROL_GROUP_WIDTH: usize = 16;
    buckets * (size_of::<T>() + 1) + CONTROL_GROUP_WIDTH
}

/// A value per distinct `(group, key)` pair of many groups, and how many keys each group has:
/// a set for the distinct counts (`V = ()`), a count per user for `FREQPERCENTILE`.
#[derive(Debug)]
pub(crate) struct GroupedMap<K, V> {
    entries: HashMap<(usize, K), V>,
    /// The number of keys of each group.
    lens: Vec<i64>,
}

/// The distinct keys of every group, and how many each group has.
pub(crate) type GroupedDistinct<K> = GroupedMap<K, ()>;

/// The keys and values of the emitted groups: list offsets (one list per group) and the flat
/// keys and values, in no particular order within a group.
pub(crate) struct GroupedState<K, V> {
    pub(crate) offsets: OffsetBuffer<i32>,
    pub(crate) keys: Vec<K>,
    pub(crate) values: Vec<V>,
}

impl<K: Copy + Eq + Hash + Default, V: Copy + Default> GroupedMap<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            entries: HashMap::default(),
            lens: Vec::new(),
        }
    }

    /// Makes room for groups `0..total_num_groups`.
    pub(crate) fn resize(&mut self, total_num_groups: usize) {
        if self.lens.len() < total_num_groups {
            self.lens.resize(total_num_groups, 0);
        }
    }

    /// The value of `key` in `group`, inserted as `V::default()` if the pair is new.
    #[inline]
    pub(crate) fn entry(&mut self, group: usize, key: K) -> &mut V {
        match self.entries.entry((group, key)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                self.lens[group] += 1;
                entry.insert(V::default())
            }
        }
    }

    /// True when no group holds a key, so no key id is referred to any more.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of keys of each emitted group; the emitted groups are forgotten.
    pub(crate) fn evaluate(&mut self, emit_to: EmitTo) -> ArrayRef {
        let emitted = self.emitted_groups(emit_to);
        let lens = emit_to.take_needed(&mut self.lens);
        self.drop_groups(emitted, |_, _, _| {});
        Arc::new(Int64Array::from(lens))
    }

    /// The keys and values of each emitted group; the emitted groups are forgotten.
    pub(crate) fn take_state(&mut self, emit_to: EmitTo) -> Result<GroupedState<K, V>> {
        let emitted = self.emitted_groups(emit_to);
        let lens = emit_to.take_needed(&mut self.lens);
        let mut starts = Vec::with_capacity(emitted + 1);
        let mut total: usize = 0;
        for &len in &lens {
            starts.push(total);
            total += usize::try_from(len).unwrap_or(0);
        }
        if i32::try_from(total).is_err() {
            return exec_err!(
                "the state of {emitted} groups holds {total} values, more than a List can \
                 carry; lower datafusion.execution.batch_size"
            );
        }
        let offsets =
            OffsetBuffer::from_lengths(lens.iter().map(|&len| usize::try_from(len).unwrap_or(0)));
        // each group's pairs go to its own slice, filled from `starts[group]` upwards
        let mut keys = vec![K::default(); total];
        let mut values = vec![V::default(); total];
        self.drop_groups(emitted, |group, key, value| {
            keys[starts[group]] = key;
            values[starts[group]] = value;
            starts[group] += 1;
        });
        Ok(GroupedState {
            offsets,
            keys,
            values,
        })
    }

    fn emitted_groups(&self, emit_to: EmitTo) -> usize {
        match emit_to {
            EmitTo::All => self.lens.len(),
            EmitTo::First(n) => n.min(self.lens.len()),
        }
    }

    /// Removes groups `0..emitted`, handing each of their pairs to `emit`, and renumbers the
    /// groups that remain from 0, as `EmitTo::First` requires.
    fn drop_groups(&mut self, emitted: usize, mut emit: impl FnMut(usize, K, V)) {
        let all = std::mem::take(&mut self.entries);
        if self.lens.is_empty() {
            for ((group, key), value) in all {
                emit(group, key, value);
            }
            return;
        }
        for ((group, key), value) in all {
            if group < emitted {
                emit(group, key, value);
            } else {
                self.entries.insert((group - emitted, key), value);
            }
        }
    }

    /// Heap bytes of the map and the lengths.
    pub(crate) fn size(&self) -> usize {
        hash_table_bytes::<((usize, K), V)>(self.entries.capacity())
            + self.lens.capacity() * size_of::<i64>()
    }
}

impl<K: Copy + Eq + Hash + Default> GroupedMap<K, ()> {
    /// Adds `key` to `group`'s set (a no-op if it is already there).
    #[inline]
    pub(crate) fn insert(&mut self, group: usize, key: K) {
        self.entry(group, key);
    }
}

/// `List<value_type>`, the state type of a set of values; items are never NULL but the field is
/// nullable, as DataFusion's own list states are.
pub(crate) fn list_type(value_type: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(value_type, true)))
}

/// A state field `name` holding one list of `value_type` per group.
pub(crate) fn list_state_field(name: String, value_type: DataType) -> FieldRef {
    Arc::new(Field::new(name, list_type(value_type), true))
}

/// A list array of `values` cut at `offsets`.
pub(crate) fn list_array(offsets: OffsetBuffer<i32>, values: ArrayRef) -> ListArray {
    let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    ListArray::new(field, offsets, values, None)
}

/// The state of each input row on its own (`convert_to_state`): a one-value list of the row's
/// value, cast to `value_type`, where `selected` is set, and an empty list elsewhere.
pub(crate) fn one_value_lists(
    values: &ArrayRef,
    selected: &BooleanBuffer,
    value_type: &DataType,
) -> Result<ListArray> {
    let values = cast(values, value_type)?;
    let kept = filter(&values, &BooleanArray::new(selected.clone(), None))?;
    let offsets = OffsetBuffer::from_lengths(selected.iter().map(usize::from));
    Ok(list_array(offsets, kept))
}

/// The rows of a list state that are not NULL, each with the range of its items in
/// `list.values()`.
pub(crate) fn list_rows(list: &ListArray) -> impl Iterator<Item = (usize, Range<usize>)> + '_ {
    let offsets = list.value_offsets();
    (0..list.len())
        .filter(|&row| list.is_valid(row))
        .map(move |row| {
            let start = usize::try_from(offsets[row]).unwrap_or(0);
            let end = usize::try_from(offsets[row + 1]).unwrap_or(start);
            (row, start..end)
        })
}

/// The items of `list.values()` that belong to a non-NULL row and are not NULL themselves: the
/// ones a merge takes in.
pub(crate) fn live_list_items(list: &ListArray) -> BooleanBuffer {
    let items = list.values();
    let mut in_rows = vec![false; items.len()];
    for (_, range) in list_rows(list) {
        in_rows[range].fill(true);
    }
    let in_rows = BooleanBuffer::from(in_rows);
    match items.logical_nulls() {
        Some(nulls) => &in_rows & nulls.inner(),
        None => in_rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled() -> GroupedDistinct<u64> {
        let mut groups = GroupedDistinct::new();
        groups.resize(3);
        for (group, key) in [(0, 7), (0, 7), (0, 8), (1, 7), (2, 9), (2, 10), (2, 11)] {
            groups.insert(group, key);
        }
        groups
    }

    fn counts(array: &ArrayRef) -> Vec<i64> {
        array
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("Int64")
            .values()
            .to_vec()
    }

    #[test]
    fn evaluate_first_renumbers_the_rest() {
        let mut groups = filled();
        assert_eq!(counts(&groups.evaluate(EmitTo::First(1))), [2]);
        groups.insert(0, 7); // old group 1, already has 7
        groups.insert(1, 12); // old group 2
        assert_eq!(counts(&groups.evaluate(EmitTo::All)), [1, 4]);
        assert!(groups.is_empty());
    }

    #[test]
    fn state_lists_each_group_keys() {
        let mut groups = filled();
        let GroupedState { offsets, keys, .. } =
            groups.take_state(EmitTo::First(2)).expect("state");
        assert_eq!(offsets.as_ref(), &[0, 2, 3]);
        let mut first: Vec<u64> = keys[0..2].to_vec();
        first.sort_unstable();
        assert_eq!(first, [7, 8]);
        assert_eq!(keys[2], 7);
        let GroupedState {
            offsets, mut keys, ..
        } = groups.take_state(EmitTo::All).expect("state");
        assert_eq!(offsets.as_ref(), &[0, 3]);
        keys.sort_unstable();
        assert_eq!(keys, [9, 10, 11]);
    }

    #[test]
    fn a_count_per_pair_travels_with_its_key() {
        let mut groups = GroupedMap::<u64, i64>::new();
        groups.resize(2);
        for (group, key, count) in [(0, 7, 1), (1, 7, 2), (0, 7, 3), (0, 8, 1)] {
            *groups.entry(group, key) += count;
        }
        let GroupedState {
            offsets,
            keys,
            values,
        } = groups.take_state(EmitTo::All).expect("state");
        assert_eq!(offsets.as_ref(), &[0, 2, 3]);
        let mut first: Vec<(u64, i64)> = keys[..2]
            .iter()
            .copied()
            .zip(values[..2].iter().copied())
            .collect();
        first.sort_unstable();
        assert_eq!(first, [(7, 4), (8, 1)]);
        assert_eq!((keys[2], values[2]), (7, 2));
    }

    #[test]
    fn size_grows_with_the_set() {
        let mut groups = GroupedDistinct::<u64>::new();
        let empty = groups.size();
        groups.resize(1);
        for key in 0..10_000 {
            groups.insert(0, key);
        }
        assert!(groups.size() >= empty + 10_000 * 16, "{}", groups.size());
    }

    #[test]
    fn one_value_lists_keep_selected_rows_only() {
        let values: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]));
        let selected = BooleanBuffer::from(vec![true, false, true]);
        let lists = one_value_lists(&values, &selected, &DataType::Int64).expect("lists");
        assert_eq!(lists.value_offsets(), &[0, 1, 1, 2]);
        assert_eq!(counts(lists.values()), [1, 3]);
    }
}
