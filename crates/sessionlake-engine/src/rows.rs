//! Buffered rows: what the operator keeps of each row between buffering ([`crate::exec`]) and
//! building output columns ([`crate::output`]), addressed by one row number.
//!
//! `sessions` keeps only a few columns of each active row (its event type, its properties and
//! the columns that order tied events), but those are mostly strings, and many of a lake's
//! string columns repeat a few values: a few thousand pages, a few dozen countries. So a store
//! built with [`RowStore::interning`] keeps such a column as `UInt32` ids into its distinct
//! values: four bytes a row, plus each distinct string once. A dictionary column of strings is
//! interned too: its blocks' dictionaries differ, and reading rows across blocks would merge
//! them every time. Whether a column repeats is judged on the first block pushed (as Parquet
//! writers fall back from dictionary encoding): a column with more than one distinct value per
//! [`MIN_REPEATS`] rows there (device ids, event ids) would make a hash table larger than the
//! caches for little gain, so it is kept plainly, as `Utf8` (a view array's 16-byte views cost
//! more than `Utf8`'s 4-byte offsets). Reading rows back ([`RowStore::gather`]) returns every
//! column in its own type.

use std::mem::size_of;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{cast, interleave, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::utils::memory::RecordBatchMemoryCounter;
use datafusion::common::{Result, exec_err, internal_err};
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

/// A string column is interned when its first block has at least this many rows per distinct
/// value.
pub const MIN_REPEATS: usize = 4;

/// A row of a [`RowStore`] as (batch, row in the batch); `None` stands for a NULL value.
pub type Position = Option<(usize, usize)>;

/// Buffered rows addressed by one row number across their batches.
#[derive(Debug)]
pub struct RowStore {
    batches: Vec<RecordBatch>,
    /// The row number of each batch's first row, plus the total at the end.
    offsets: Vec<usize>,
    /// Counts each buffer once: scanned batches share the pages their strings point into.
    memory: RecordBatchMemoryCounter,
    /// Per column: how a string column is stored by an interning store, else `None`.
    strings: Vec<Option<StringIds>>,
    /// An interning store's input schema (the stored batches differ in string columns).
    input: Option<SchemaRef>,
    /// Reused by [`Self::push`]: the ids of one column.
    ids: Vec<usize>,
}

impl Default for RowStore {
    fn default() -> Self {
        Self::new()
    }
}

impl RowStore {
    /// A store that keeps rows as they are (view columns copied out of the pages they point
    /// into).
    pub fn new() -> Self {
        Self {
            batches: Vec::new(),
            offsets: vec![0],
            memory: RecordBatchMemoryCounter::new(),
            strings: Vec::new(),
            input: None,
            ids: Vec::new(),
        }
    }

    /// A store for rows of `schema` that keeps its string columns (`Utf8`, `LargeUtf8`,
    /// `Utf8View`, and dictionaries of those) that repeat as ids into their distinct values,
    /// and the others plainly.
    pub fn interning(schema: &SchemaRef) -> Result<Self> {
        let strings = schema
            .fields()
            .iter()
            .map(|field| {
                is_string(field.data_type())
                    .then(|| StringIds::new(field))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            strings,
            input: Some(Arc::clone(schema)),
            ..Self::new()
        })
    }

    /// Appends `batch` in compact form; its rows are numbered from [`Self::num_rows`] on. The
    /// caller keeps row numbers within `u32` (the buffer checks them as it numbers entries).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let first = self.batches.is_empty();
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (i, column) in batch.columns().iter().enumerate() {
            match self.strings.get_mut(i) {
                Some(Some(strings)) => {
                    columns.push(strings.store(column, first, &mut self.ids)?);
                }
                _ => columns.push(compact_view(Arc::clone(column))),
            }
        }
        let schema = match &self.input {
            Some(input) => Arc::new(Schema::new(
                input
                    .fields()
                    .iter()
                    .zip(&columns)
                    .map(|(field, column)| {
                        Field::new(field.name(), column.data_type().clone(), true)
                    })
                    .collect::<Vec<_>>(),
            )),
            None => batch.schema(),
        };
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let batch = RecordBatch::try_new_with_options(schema, columns, &options)?;
        let end = self.num_rows() + batch.num_rows();
        self.memory.count_batch(&batch);
        self.offsets.push(end);
        self.batches.push(batch);
        Ok(())
    }

    /// Ends buffering: the distinct values of interned columns become readable (and no more
    /// rows can be pushed).
    pub fn freeze(&mut self) -> Result<()> {
        for strings in self.strings.iter_mut().flatten() {
            strings.freeze()?;
        }
        self.ids = Vec::new();
        Ok(())
    }

    pub fn num_rows(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// The stored batches (interned columns hold ids, plain string columns `Utf8`; their NULLs
    /// are the column's).
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// Takes batch `i` out (leaving it empty), once nothing will read its rows again. Only a
    /// store that interns nothing returns its batches this way.
    pub fn take_batch(&mut self, i: usize) -> RecordBatch {
        let empty = RecordBatch::new_empty(self.batches[i].schema());
        std::mem::replace(&mut self.batches[i], empty)
    }

    /// The rows of batch `i`.
    pub fn batch_rows(&self, i: usize) -> Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }

    /// Bytes held, for memory accounting.
    pub fn size(&self) -> usize {
        self.memory.memory_usage()
            + self.batches.capacity() * size_of::<RecordBatch>()
            + self.offsets.capacity() * size_of::<usize>()
            + self.ids.capacity() * size_of::<usize>()
            + self
                .strings
                .iter()
                .flatten()
                .map(StringIds::size)
                .sum::<usize>()
    }

    /// The batch and the row in it of a row number.
    pub fn locate(&self, row: u32) -> (usize, usize) {
        let row = row as usize;
        let batch = self.offsets.partition_point(|&o| o <= row) - 1;
        (batch, row - self.offsets[batch])
    }

    /// One value of `column` per position, `None` giving NULL, in the column's own type.
    pub fn gather(&self, column: usize, positions: &[Position]) -> Result<ArrayRef> {
        let Some(first) = self.batches.first() else {
            return internal_err!("sessionize: nothing to gather from");
        };
        let null_row = new_null_array(first.column(column).data_type(), 1);
        let mut arrays: Vec<&dyn Array> = self
            .batches
            .iter()
            .map(|b| b.column(column).as_ref())
            .collect();
        arrays.push(null_row.as_ref());
        let none = (self.batches.len(), 0);
        let indices: Vec<(usize, usize)> = positions.iter().map(|p| p.unwrap_or(none)).collect();
        let gathered = interleave(&arrays, &indices)?;
        let values = match self.strings.get(column) {
            Some(Some(strings)) => strings.read(gathered)?,
            None | Some(None) => gathered,
        };
        // a view array would keep (and count) every block its strings came from
        Ok(compact_view(values))
    }
}

/// Whether an interning store may keep a column of this type as ids: strings, and
/// dictionaries of strings (whose values would otherwise be merged on every read across
/// blocks).
fn is_string(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_string(values),
        _ => false,
    }
}

/// How an interning store keeps one string column.
struct StringIds {
    /// The column's own type, which reads return.
    data_type: DataType,
    state: Ids,
}

enum Ids {
    /// Interned, while rows are pushed: DataFusion's vectorized hash table of group values.
    Building(Box<dyn GroupValues>),
    /// Interned: every distinct value, indexed by id.
    Frozen(ArrayRef),
    /// Not interned (too many distinct values in the first block): kept plainly, a view
    /// array as `Utf8`.
    Plain,
}

impl std::fmt::Debug for StringIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            Ids::Building(values) => format!("building, {} values", values.len()),
            Ids::Frozen(values) => format!("frozen, {} values", values.len()),
            Ids::Plain => "plain".to_string(),
        };
        write!(f, "StringIds({}, {state})", self.data_type)
    }
}

impl StringIds {
    fn new(field: &Field) -> Result<Self> {
        let data_type = field.data_type().clone();
        let schema = Arc::new(Schema::new(vec![Field::new(
            field.name(),
            value_type(&data_type).clone(),
            true,
        )]));
        Ok(Self {
            data_type,
            state: Ids::Building(new_group_values(schema, &GroupOrdering::None)?),
        })
    }

    /// `column` as it is stored: ids (NULL where the column is NULL) or plain strings. After
    /// the `first` block, a column with too few repeats is stored plainly from then on.
    fn store(&mut self, column: &ArrayRef, first: bool, ids: &mut Vec<usize>) -> Result<ArrayRef> {
        match &mut self.state {
            Ids::Building(values) => {
                let interned = Self::intern(values.as_mut(), column, ids)?;
                if first && values.len() * MIN_REPEATS > column.len() {
                    self.state = Ids::Plain;
                    return plain(column);
                }
                Ok(interned)
            }
            Ids::Plain => plain(column),
            Ids::Frozen(_) => internal_err!("sessionize: rows pushed after the store was frozen"),
        }
    }

    fn intern(
        values: &mut dyn GroupValues,
        column: &ArrayRef,
        ids: &mut Vec<usize>,
    ) -> Result<ArrayRef> {
        let strings = match column.data_type() {
            DataType::Dictionary(_, value) => cast(column, value)?,
            _ => Arc::clone(column),
        };
        ids.clear();
        values.intern(std::slice::from_ref(&strings), ids)?;
        if values.len() > u32::MAX as usize {
            return exec_err!(
                "sessionize: a column holds more than {} distinct values in one partition; \
                 raise datafusion.execution.target_partitions",
                u32::MAX
            );
        }
        let ids = UInt32Array::from_iter_values(ids.iter().map(|&id| id as u32));
        let ids = UInt32Array::new(ids.values().clone(), column.logical_nulls());
        Ok(Arc::new(ids))
    }

    fn freeze(&mut self) -> Result<()> {
        if let Ids::Building(values) = &mut self.state {
            let Some(all) = values.emit(EmitTo::All)?.pop() else {
                return internal_err!("sessionize: interned values emitted no column");
            };
            self.state = Ids::Frozen(all);
        }
        Ok(())
    }

    /// Stored values (gathered from the blocks) in the column's own type.
    fn read(&self, stored: ArrayRef) -> Result<ArrayRef> {
        let values = match &self.state {
            Ids::Frozen(values) => take(values, &stored, None)?,
            Ids::Plain => stored,
            Ids::Building(_) => {
                return internal_err!("sessionize: rows read before the store froze");
            }
        };
        if values.data_type() == &self.data_type {
            Ok(values)
        } else {
            Ok(cast(&values, &self.data_type)?)
        }
    }

    fn size(&self) -> usize {
        match &self.state {
            Ids::Building(values) => values.size(),
            Ids::Frozen(values) => values.get_array_memory_size(),
            Ids::Plain => 0,
        }
    }
}

/// The type of a column's values: a dictionary's value type, else the type itself.
fn value_type(data_type: &DataType) -> &DataType {
    match data_type {
        DataType::Dictionary(_, values) => values,
        other => other,
    }
}

/// A string column kept plainly: a view array as `Utf8`, whose strings are copied out of the
/// buffers the views point into.
fn plain(column: &ArrayRef) -> Result<ArrayRef> {
    match column.data_type() {
        DataType::Utf8View => Ok(cast(column, &DataType::Utf8)?),
        _ => Ok(Arc::clone(column)),
    }
}

/// `array` with the strings of a view array copied into buffers of its own, so that it does
/// not keep alive (and count) the larger buffers it points into; other arrays as they are.
pub fn compact_view(array: ArrayRef) -> ArrayRef {
    match array.data_type() {
        DataType::Utf8View => Arc::new(array.as_string_view().gc()),
        DataType::BinaryView => Arc::new(array.as_binary_view().gc()),
        _ => array,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{DictionaryArray, Int64Array, StringArray, StringViewArray};
    use datafusion::arrow::compute::concat;
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    fn batch(pages: Vec<Option<&str>>, devices: Vec<String>) -> RecordBatch {
        let n = (0..pages.len() as i64).collect::<Vec<_>>();
        // each batch its own dictionary, in another order
        let types: DictionaryArray<Int32Type> = (0..pages.len())
            .map(|i| ["view", "click", "buy"][(i + pages.len()) % 3])
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("page", DataType::Utf8View, true),
            Field::new("device", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
            Field::new(
                "event_type",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                false,
            ),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringViewArray::from(pages)),
                Arc::new(StringArray::from(devices)),
                Arc::new(Int64Array::from(n)),
                Arc::new(types),
            ],
        )
        .unwrap()
    }

    /// An interning store for the schema of `batches`, holding them.
    fn interning_store(batches: &[&RecordBatch]) -> Result<RowStore> {
        let mut store = RowStore::interning(&batches[0].schema())?;
        for batch in batches {
            store.push(batch)?;
        }
        Ok(store)
    }

    /// The type of each stored column, per stored batch.
    fn stored_types(store: &RowStore) -> Vec<Vec<DataType>> {
        store
            .batches()
            .iter()
            .map(|b| b.columns().iter().map(|c| c.data_type().clone()).collect())
            .collect()
    }

    /// Every row of `store` in reverse order, then a NULL position, against the same of the
    /// pushed batches by Arrow's own kernels.
    fn assert_reads_back(store: &RowStore, pushed: &[&RecordBatch]) -> Result<()> {
        let rows = store.num_rows() as u32;
        let positions: Vec<Position> = (0..rows)
            .rev()
            .map(|row| Some(store.locate(row)))
            .chain([None])
            .collect();
        let reversed: UInt32Array = (0..rows).rev().map(Some).chain([None]).collect();
        for column in 0..pushed[0].num_columns() {
            let all: Vec<&dyn Array> = pushed.iter().map(|b| b.column(column).as_ref()).collect();
            let expected = take(&concat(&all)?, &reversed, None)?;
            assert_eq!(
                &store.gather(column, &positions)?,
                &expected,
                "column {column}"
            );
        }
        Ok(())
    }

    #[test]
    fn repeated_strings_are_interned_and_read_back_as_they_went_in() -> Result<()> {
        let pages = [Some("/a-rather-long-page-name"), None, Some("/b")];
        let first = batch(
            (0..40).map(|i| pages[i % 3]).collect(),
            (0..40).map(|i| format!("device-{:012}", i % 5)).collect(),
        );
        let second = batch(
            vec![Some("/b"), Some("/new-page"), None],
            vec![
                "device-new".into(),
                "device-000000000001".into(),
                "x".into(),
            ],
        );
        let mut store = interning_store(&[&first, &second])?;
        // the string columns are stored as ids, NULL where the value is
        use DataType::{Int64, UInt32};
        assert_eq!(
            stored_types(&store),
            vec![vec![UInt32, UInt32, Int64, UInt32]; 2]
        );
        assert!(store.batches()[0].column(0).is_null(1));
        assert!(
            store.gather(0, &[Some((0, 0))]).is_err(),
            "values are readable only once frozen"
        );
        store.freeze()?;
        assert!(store.push(&first).is_err(), "a frozen store takes no rows");
        assert_reads_back(&store, &[&first, &second])
    }

    #[test]
    fn strings_that_rarely_repeat_are_kept_plainly() -> Result<()> {
        // 40 rows, 10 distinct devices (4 rows each, interned), 40 distinct pages (plain)
        let pages: Vec<String> = (0..40).map(|i| format!("/page/{i}")).collect();
        let first = batch(
            pages.iter().map(|p| Some(p.as_str())).collect(),
            (0..40).map(|i| format!("device-{:012}", i % 10)).collect(),
        );
        let second = batch(vec![None, Some("/page/1")], vec!["a".into(), "b".into()]);
        let mut store = interning_store(&[&first, &second])?;
        use DataType::{Int64, UInt32, Utf8};
        assert_eq!(
            stored_types(&store),
            vec![vec![Utf8, UInt32, Int64, UInt32]; 2]
        );
        store.freeze()?;
        assert_reads_back(&store, &[&first, &second])
    }

    #[test]
    fn a_repeated_string_costs_its_id() -> Result<()> {
        let device = "a-device-id-longer-than-a-view-inline";
        let rows = 100_000;
        let make = || {
            let schema = Arc::new(Schema::new(vec![Field::new(
                "device",
                DataType::Utf8View,
                false,
            )]));
            let devices = StringViewArray::from_iter_values(std::iter::repeat_n(device, rows));
            RecordBatch::try_new(schema, vec![Arc::new(devices)]).unwrap()
        };
        let mut plain = RowStore::new();
        plain.push(&make())?;
        let mut interned = RowStore::interning(&make().schema())?;
        interned.push(&make())?;
        interned.freeze()?;
        // a view is 16 bytes and this string 37 more; an id is 4 bytes
        assert!(
            plain.size() >= rows * (16 + device.len()),
            "{}",
            plain.size()
        );
        assert!(interned.size() < rows * 5, "{}", interned.size());
        Ok(())
    }
}
