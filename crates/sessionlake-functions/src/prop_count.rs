//! `PROPCOUNT(x)`: Amplitude's exact number of distinct non-NULL values of a property.
//!
//! Every distinct value is interned once per accumulator as a small id (strings stored back to
//! back in one buffer, numbers and booleans as 64-bit patterns), and each group's set is a set of
//! `(group, id)` pairs in one hash set shared by all groups: a group costs one counter, a
//! repeated value costs no allocation, and many small groups cost no per-group hash table.

use std::mem::size_of;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, Float64Array, Int64Array,
    ListArray, StringArray, UInt64Array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, filter};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, UInt64Type};
use datafusion::common::{HashSet, Result, ScalarValue, exec_err, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::interner::{BitsInterner, NO_ID, StringInterner};
use crate::property::{ARGUMENT, StrColumn, single_argument};
use crate::selection::{for_each_taken, selected_rows, taken_rows};
use crate::types::is_string_type;

const NAME: &str = "PROPCOUNT";

make_udaf_function!(PropCount, propcount_udaf, propcount, x);

#[user_doc(
    doc_section(label = "Property Functions"),
    description = "The exact number of distinct non-NULL values of a property over the rows of \
each group, as BIGINT; 0 for a group with no non-NULL value. Strings of any encoding (VARCHAR, \
Utf8View, dictionary) are equal when their bytes are; integers when their values are; floats \
when their bit patterns are, except that -0.0 equals 0.0 and every NaN is one value; booleans \
count at most two. DISTINCT changes nothing.",
    syntax_example = "PROPCOUNT(x)",
    sql_example = r#"```sql
> SELECT date_trunc('day', event_time) AS day, PROPCOUNT(country) AS countries
  FROM events GROUP BY day;
> SELECT PROPCOUNT(app_version) FILTER (WHERE platform = 'ios') FROM events;
```"#,
    argument(
        name = "x",
        description = "A property: a string, an integer, a float or a boolean."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PropCount {
    signature: Signature,
}

impl Default for PropCount {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// How the values of an argument type are compared, and the type the state lists hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Text,
    Signed,
    Unsigned,
    Float,
    Boolean,
}

impl ValueKind {
    fn of(data_type: &DataType) -> Result<Self> {
        Ok(match data_type {
            t if is_string_type(t) => Self::Text,
            DataType::Null
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64 => Self::Signed,
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                Self::Unsigned
            }
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Self::Float,
            DataType::Boolean => Self::Boolean,
            other => {
                return plan_err!(
                    "{NAME}: argument '{ARGUMENT}' must be a string, an integer, a float or a \
                     boolean, found {other}"
                );
            }
        })
    }

    /// The plain Arrow type of the values in the state lists.
    fn item_type(self) -> DataType {
        match self {
            Self::Text => DataType::Utf8,
            Self::Signed => DataType::Int64,
            Self::Unsigned => DataType::UInt64,
            Self::Float => DataType::Float64,
            Self::Boolean => DataType::Boolean,
        }
    }

    fn list_field(self) -> FieldRef {
        Arc::new(Field::new_list_field(self.item_type(), true))
    }
}

fn planned_kind(fields: &[FieldRef]) -> Result<ValueKind> {
    match fields {
        [field] => ValueKind::of(field.data_type()),
        _ => plan_err!("{NAME}: expected {NAME}({ARGUMENT}) with one argument"),
    }
}

impl AggregateUDFImpl for PropCount {
    fn name(&self) -> &str {
        "propcount"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let data_type = single_argument(NAME, arg_types)?;
        let coerced = match data_type {
            DataType::Null => DataType::Int64,
            // strings stay in their encoding: a dictionary is interned once per entry
            t if is_string_type(t) => t.clone(),
            DataType::Dictionary(_, value_type) => value_type.as_ref().clone(),
            t => t.clone(),
        };
        ValueKind::of(&coerced)?;
        Ok(vec![coerced])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    /// The distinct values seen, as a list of plain values (`Utf8`, `Int64`, `UInt64`,
    /// `Float64` or `Boolean`).
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let kind = planned_kind(args.input_fields)?;
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "values"),
            DataType::List(kind.list_field()),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let mut distinct = DistinctValues::new(planned_kind(args.expr_fields)?);
        distinct.counts.push(0);
        Ok(Box::new(PropCountAccumulator { distinct }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(PropCountGroups {
            distinct: DistinctValues::new(planned_kind(args.expr_fields)?),
        }))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The bit pattern a float is compared by: -0.0 as 0.0, every NaN as one NaN.
fn float_bits(value: f64) -> u64 {
    if value.is_nan() {
        f64::NAN.to_bits()
    } else if value == 0.0 {
        0.0_f64.to_bits()
    } else {
        value.to_bits()
    }
}

/// The distinct values of many groups (one group for the `Accumulator`).
#[derive(Debug)]
struct DistinctValues {
    kind: ValueKind,
    strings: StringInterner,
    bits: BitsInterner,
    /// `group << 32 | id` for every distinct value of every group.
    pairs: HashSet<u64>,
    /// The number of distinct values of each group.
    counts: Vec<i64>,
}

impl DistinctValues {
    fn new(kind: ValueKind) -> Self {
        Self {
            kind,
            strings: StringInterner::default(),
            bits: BitsInterner::default(),
            pairs: HashSet::default(),
            counts: Vec::new(),
        }
    }

    fn resize(&mut self, total_num_groups: usize) -> Result<()> {
        if u32::try_from(total_num_groups).is_err() {
            return exec_err!("{NAME}: more than {} groups", u32::MAX);
        }
        self.counts.resize(total_num_groups, 0);
        Ok(())
    }

    /// Adds the value of every row of `array` that `taken` keeps to group `group_of(row)`.
    /// `array` is the argument or the flattened values of a state list.
    fn insert(
        &mut self,
        array: &ArrayRef,
        taken: Option<&NullBuffer>,
        group_of: impl Fn(usize) -> usize,
    ) -> Result<()> {
        let Self {
            kind,
            strings,
            bits,
            pairs,
            counts,
        } = self;
        let mut add = |group: usize, id: u32| {
            // groups fit in 32 bits: `resize` checked
            if pairs.insert(((group as u64) << 32) | u64::from(id)) {
                counts[group] += 1;
            }
        };
        let len = array.len();
        match kind {
            ValueKind::Text => {
                let column = StrColumn::try_new(NAME, array)?;
                match column.keys() {
                    // a dictionary entry is interned once per batch, however many rows use it
                    Some(keys) => {
                        let mut ids = vec![NO_ID; column.dictionary_len()];
                        for_each_taken(taken, len, |row| {
                            let key = keys[row];
                            if ids[key] == NO_ID {
                                ids[key] = strings.intern(NAME, column.dictionary_value(key))?;
                            }
                            add(group_of(row), ids[key]);
                            Ok(())
                        })
                    }
                    None => for_each_taken(taken, len, |row| {
                        add(group_of(row), strings.intern(NAME, column.value(row))?);
                        Ok(())
                    }),
                }
            }
            ValueKind::Signed => {
                let values = cast(array, &DataType::Int64)?;
                let values = values.as_primitive::<Int64Type>().values();
                for_each_taken(taken, len, |row| {
                    add(group_of(row), bits.intern(NAME, values[row] as u64)?);
                    Ok(())
                })
            }
            ValueKind::Unsigned => {
                let values = cast(array, &DataType::UInt64)?;
                let values = values.as_primitive::<UInt64Type>().values();
                for_each_taken(taken, len, |row| {
                    add(group_of(row), bits.intern(NAME, values[row])?);
                    Ok(())
                })
            }
            ValueKind::Float => {
                let values = cast(array, &DataType::Float64)?;
                let values = values.as_primitive::<Float64Type>().values();
                for_each_taken(taken, len, |row| {
                    add(group_of(row), bits.intern(NAME, float_bits(values[row]))?);
                    Ok(())
                })
            }
            ValueKind::Boolean => {
                let Some(values) = array.as_boolean_opt() else {
                    return internal_err!("{NAME}: expected booleans, found {}", array.data_type());
                };
                for_each_taken(taken, len, |row| {
                    add(
                        group_of(row),
                        bits.intern(NAME, u64::from(values.value(row)))?,
                    );
                    Ok(())
                })
            }
        }
    }

    /// Adds state lists: row `i` of `lists` holds values of group `group_indices[i]`.
    fn merge(&mut self, states: &[ArrayRef], group_indices: &[usize]) -> Result<()> {
        let [lists] = states else {
            return internal_err!("{NAME}: expected one state array, found {}", states.len());
        };
        let Some(lists) = lists.as_list_opt::<i32>() else {
            return internal_err!("{NAME}: unexpected state type {}", lists.data_type());
        };
        let values = lists.values();
        let offsets = lists.value_offsets();
        // which flattened values belong to a row of this batch, and to which group
        let mut in_rows = BooleanBufferBuilder::new(values.len());
        in_rows.append_n(values.len(), false);
        let mut value_groups = vec![0_usize; values.len()];
        for row in 0..lists.len() {
            if lists.is_null(row) {
                continue;
            }
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            value_groups[start..end].fill(group_indices[row]);
            for index in start..end {
                in_rows.set_bit(index, true);
            }
        }
        let present = selected_rows(values.len(), &[values.as_ref()], None);
        let taken = NullBuffer::new(&in_rows.finish() & &present);
        self.insert(values, Some(&taken), |index| value_groups[index])
    }

    /// The distinct values of groups `0..n`, one list per group.
    fn lists(&self, n: usize) -> Result<ListArray> {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0_i32);
        let mut total = 0_usize;
        for &count in &self.counts[..n] {
            total += count as usize;
            match i32::try_from(total) {
                Ok(end) => offsets.push(end),
                Err(_) => return exec_err!("{NAME}: too many distinct values for one state"),
            }
        }
        let mut next: Vec<usize> = offsets[..n].iter().map(|&o| o as usize).collect();
        let mut ids = vec![0_u32; total];
        for &pair in &self.pairs {
            let group = (pair >> 32) as usize;
            if group < n {
                ids[next[group]] = pair as u32;
                next[group] += 1;
            }
        }
        let values: ArrayRef = match self.kind {
            ValueKind::Text => Arc::new(StringArray::from_iter_values(self.strings_of(&ids)?)),
            ValueKind::Signed => Arc::new(Int64Array::from_iter_values(
                self.bits_of(&ids)?.into_iter().map(|bits| bits as i64),
            )),
            ValueKind::Unsigned => Arc::new(UInt64Array::from(self.bits_of(&ids)?)),
            ValueKind::Float => Arc::new(Float64Array::from_iter_values(
                self.bits_of(&ids)?.into_iter().map(f64::from_bits),
            )),
            ValueKind::Boolean => Arc::new(BooleanArray::from_iter(
                self.bits_of(&ids)?.into_iter().map(|bits| Some(bits != 0)),
            )),
        };
        Ok(ListArray::try_new(
            self.kind.list_field(),
            OffsetBuffer::new(offsets.into()),
            values,
            None,
        )?)
    }

    fn strings_of(&self, ids: &[u32]) -> Result<Vec<&str>> {
        ids.iter()
            .map(|&id| match self.strings.get(id) {
                Some(value) => Ok(value),
                None => internal_err!("{NAME}: unknown string id {id}"),
            })
            .collect()
    }

    fn bits_of(&self, ids: &[u32]) -> Result<Vec<u64>> {
        ids.iter()
            .map(|&id| match self.bits.get(id) {
                Some(bits) => Ok(bits),
                None => internal_err!("{NAME}: unknown value id {id}"),
            })
            .collect()
    }

    /// Forgets the emitted groups; the remaining ones are renumbered from 0.
    fn drop_emitted(&mut self, emit_to: EmitTo) {
        match emit_to {
            EmitTo::All => *self = Self::new(self.kind),
            EmitTo::First(n) => {
                self.counts.drain(..n.min(self.counts.len()));
                let shift = (n as u64) << 32;
                self.pairs = self
                    .pairs
                    .drain()
                    .filter(|&pair| pair >= shift)
                    .map(|pair| pair - shift)
                    .collect();
            }
        }
    }

    fn emitted_len(&self, emit_to: EmitTo) -> usize {
        match emit_to {
            EmitTo::All => self.counts.len(),
            EmitTo::First(n) => n.min(self.counts.len()),
        }
    }

    fn size(&self) -> usize {
        self.strings.size()
            + self.bits.size()
            + self.pairs.capacity() * (size_of::<u64>() + 1)
            + self.counts.capacity() * size_of::<i64>()
    }
}

#[derive(Debug)]
struct PropCountAccumulator {
    /// One group, number 0.
    distinct: DistinctValues,
}

fn one_array(values: &[ArrayRef]) -> Result<&ArrayRef> {
    match values {
        [array] => Ok(array),
        _ => internal_err!("{NAME}: expected one array, found {}", values.len()),
    }
}

impl Accumulator for PropCountAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let array = one_array(values)?;
        let taken = taken_rows(array.as_ref(), None);
        self.distinct.insert(array, taken.as_ref(), |_| 0)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = one_array(states)?.len();
        self.distinct.merge(states, &vec![0; rows])
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::List(Arc::new(self.distinct.lists(1)?))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.distinct.counts[0])))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.distinct.size()
    }
}

#[derive(Debug)]
struct PropCountGroups {
    distinct: DistinctValues,
}

impl GroupsAccumulator for PropCountGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.distinct.resize(total_num_groups)?;
        let array = one_array(values)?;
        let taken = taken_rows(array.as_ref(), opt_filter);
        self.distinct
            .insert(array, taken.as_ref(), |row| group_indices[row])
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let n = self.distinct.emitted_len(emit_to);
        let counts = Int64Array::from(self.distinct.counts[..n].to_vec());
        self.distinct.drop_emitted(emit_to);
        Ok(Arc::new(counts))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let lists = self.distinct.lists(self.distinct.emitted_len(emit_to))?;
        self.distinct.drop_emitted(emit_to);
        Ok(vec![Arc::new(lists)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.distinct.resize(total_num_groups)?;
        self.distinct.merge(values, group_indices)
    }

    /// Each row becomes a list of its one value, or an empty list when NULL or filtered out.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let array = one_array(values)?;
        let kind = self.distinct.kind;
        let plain = cast(array, &kind.item_type())?;
        let taken = taken_rows(array.as_ref(), opt_filter);
        let (kept, lengths): (ArrayRef, Vec<usize>) = match &taken {
            None => (plain, vec![1; array.len()]),
            Some(taken) => {
                let mask = BooleanArray::new(taken.inner().clone(), None);
                let lengths = (0..array.len()).map(|row| usize::from(taken.is_valid(row)));
                (filter(&plain, &mask)?, lengths.collect())
            }
        };
        Ok(vec![Arc::new(ListArray::try_new(
            kind.list_field(),
            OffsetBuffer::from_lengths(lengths),
            kept,
            None,
        )?)])
    }

    fn size(&self) -> usize {
        self.distinct.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate_testing::{
        Arg, Row, Subject, check_against_naive, property_float, property_text, string_types,
    };
    use datafusion::arrow::array::{DictionaryArray, Float32Array, Int32Array, StringViewArray};
    use datafusion::arrow::datatypes::Int32Type;
    use std::collections::BTreeSet;

    fn accumulators(data_type: &DataType) -> (Box<dyn Accumulator>, Box<dyn GroupsAccumulator>) {
        crate::aggregate_testing::accumulators(&propcount_udaf(), &[Arg::Column(data_type.clone())])
    }

    /// The count of one array through both accumulators, which must agree.
    fn count_of(array: ArrayRef) -> i64 {
        let (mut acc, mut groups) = accumulators(array.data_type());
        acc.update_batch(&[Arc::clone(&array)]).unwrap();
        groups
            .update_batch(&[Arc::clone(&array)], &vec![0; array.len()], None, 1)
            .unwrap();
        let grouped = groups.evaluate(EmitTo::All).unwrap();
        let ScalarValue::Int64(Some(single)) = acc.evaluate().unwrap() else {
            panic!("PROPCOUNT must be a non-NULL BIGINT");
        };
        assert_eq!(grouped.as_primitive::<Int64Type>().value(0), single);
        single
    }

    #[test]
    fn counts_each_input_type() {
        assert_eq!(
            count_of(Arc::new(Int32Array::from(vec![
                Some(1),
                None,
                Some(1),
                Some(2)
            ]))),
            2
        );
        assert_eq!(count_of(Arc::new(Int64Array::from(vec![-1, 1, -1]))), 2);
        assert_eq!(
            count_of(Arc::new(UInt64Array::from(vec![u64::MAX, 0, u64::MAX]))),
            2
        );
        assert_eq!(
            count_of(Arc::new(Float64Array::from(vec![
                0.0,
                -0.0,
                f64::NAN,
                -f64::NAN,
                f64::from_bits(f64::NAN.to_bits() | 1),
                1.5
            ]))),
            3
        );
        assert_eq!(
            count_of(Arc::new(Float32Array::from(vec![0.5, 0.5, -0.0, 0.0]))),
            2
        );
        assert_eq!(
            count_of(Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true)
            ]))),
            2
        );
        assert_eq!(
            count_of(Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("b"),
                Some("a"),
                Some("")
            ]))),
            3
        );
        assert_eq!(
            count_of(Arc::new(StringViewArray::from(vec![
                "a long string beyond the inline view length",
                "a long string beyond the inline view length",
                "short"
            ]))),
            2
        );
        let dictionary: DictionaryArray<Int32Type> = vec![Some("x"), None, Some("y"), Some("x")]
            .into_iter()
            .collect();
        assert_eq!(count_of(Arc::new(dictionary)), 2);
    }

    #[test]
    fn empty_and_all_null_is_zero() {
        assert_eq!(
            count_of(Arc::new(StringArray::from(Vec::<Option<&str>>::new()))),
            0
        );
        assert_eq!(count_of(Arc::new(Int64Array::from(vec![None, None]))), 0);
        let (mut acc, _) = accumulators(&DataType::Null);
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(Some(0)));
    }

    #[test]
    fn dictionary_entries_shared_across_batches_are_not_double_counted() {
        let (mut acc, _) = accumulators(&DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8),
        ));
        let batch: DictionaryArray<Int32Type> = vec!["x", "y"].into_iter().collect();
        let batch: ArrayRef = Arc::new(batch);
        acc.update_batch(&[Arc::clone(&batch)]).unwrap();
        acc.update_batch(&[batch.slice(1, 1)]).unwrap();
        let plain: ArrayRef = Arc::new(StringArray::from(vec!["y", "z"]));
        let lists = ListArray::try_new(
            ValueKind::Text.list_field(),
            OffsetBuffer::from_lengths([2]),
            plain,
            None,
        )
        .unwrap();
        acc.merge_batch(&[Arc::new(lists)]).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(Some(3)));
    }

    #[test]
    fn wrong_types_are_planning_errors() {
        let err = PropCount::default()
            .coerce_types(&[DataType::Date32])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "PROPCOUNT: argument 'x' must be a string, an integer, a float or a boolean, \
                 found Date32"
            ),
            "{err}"
        );
    }

    /// The number of distinct keys of the rows' values.
    fn naive_count<K: Ord>(rows: &[&Row], key: impl Fn(i64) -> K) -> ScalarValue {
        let keys: BTreeSet<K> = rows.iter().filter_map(|r| r.value).map(key).collect();
        ScalarValue::Int64(Some(keys.len() as i64))
    }

    /// Floats by their text, with -0 read as 0 (Rust writes a NaN of either sign as `NaN`).
    fn float_key(value: i64) -> String {
        let text = property_float(value).to_string();
        if text == "-0" { "0".to_string() } else { text }
    }

    #[test]
    fn accumulators_match_naive() {
        let mut subjects = vec![
            Subject::new(&propcount_udaf(), &[Arg::float_values()], |rows| {
                naive_count(rows, float_key)
            }),
            Subject::new(
                &propcount_udaf(),
                &[Arg::Property(DataType::Int64, |v| {
                    ScalarValue::Int64(Some(v % 50))
                })],
                |rows| naive_count(rows, |v| v % 50),
            ),
            Subject::new(
                &propcount_udaf(),
                &[Arg::Property(DataType::Boolean, |v| {
                    ScalarValue::from(v % 3 == 0)
                })],
                |rows| naive_count(rows, |v| v % 3 == 0),
            ),
        ];
        for data_type in string_types() {
            subjects.push(Subject::new(
                &propcount_udaf(),
                &[Arg::text_values(data_type)],
                |rows| naive_count(rows, property_text),
            ));
        }
        check_against_naive(&subjects, 41);
    }
}
