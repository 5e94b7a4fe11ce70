//! Buffered rows: what the operator keeps of each row between buffering ([`crate::exec`]) and
//! building output columns ([`crate::output`]), addressed by one row number.
//!
//! `sessions` keeps only a few columns of each active row (its event type, its properties and
//! the columns that order tied events), but those are mostly strings, and many of a lake's
//! string columns repeat a few values: a few thousand pages, a few dozen countries. So a
//! partition's [`Strings`] keeps such a column as `UInt32` ids into its distinct values: four
//! bytes a row, plus each distinct string once. A dictionary column of strings is interned
//! too: its blocks' dictionaries differ, and reading rows across blocks would merge them every
//! time. Whether a column repeats is judged on the first rows stored (as Parquet writers fall
//! back from dictionary encoding): a column with more than one distinct value per
//! [`MIN_REPEATS`] rows there (device ids, event ids) would make a hash table larger than the
//! caches for little gain, so it is kept plainly, as `Utf8` (a view array's 16-byte views cost
//! more than `Utf8`'s 4-byte offsets).
//!
//! Rows are kept in that stored form everywhere: in a [`RowStore`] in memory, and in the spill
//! files of a partition that spills, whose rows are read back into stores as they are, without
//! being interned again. Reading rows ([`RowStore::gather`]) returns every column in its own
//! type.

use std::mem::size_of;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{cast, interleave, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::utils::memory::RecordBatchMemoryCounter;
use datafusion::common::{Result, internal_err};

use crate::intern::Interner;

/// A string column is interned when its first block has at least this many rows per distinct
/// value.
pub const MIN_REPEATS: usize = 4;

/// Rows interned per call of the hash table of a string column.
const INTERN_ROWS: usize = 1024;

/// A row of a [`RowStore`] as (batch, row in the batch); `None` stands for a NULL value.
pub type Position = Option<(usize, usize)>;

/// Buffered rows addressed by one row number across their batches, in stored form: the
/// string columns a partition's [`Strings`] interns as ids, the others as pushed (view columns
/// copied out of the pages they point into).
#[derive(Debug, Default)]
pub struct RowStore {
    batches: Vec<RecordBatch>,
    /// The row number of each batch's first row, plus the total at the end.
    offsets: Vec<usize>,
    /// Counts each buffer once: scanned batches share the pages their strings point into.
    memory: RecordBatchMemoryCounter,
    /// The partition's distinct strings, which reads go through ([`Self::read_through`]).
    strings: Option<Arc<StringValues>>,
}

impl RowStore {
    pub fn new() -> Self {
        Self {
            offsets: vec![0],
            ..Default::default()
        }
    }

    /// Appends rows in stored form (as [`Strings::store`] returns them, or read back from a
    /// spill file); they are numbered from [`Self::num_rows`] on. The caller keeps row numbers
    /// within `u32` (the buffer checks them as it numbers entries).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| compact_view(Arc::clone(c)))
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let batch = RecordBatch::try_new_with_options(batch.schema(), columns, &options)?;
        let end = self.num_rows() + batch.num_rows();
        self.memory.count_batch(&batch);
        self.offsets.push(end);
        self.batches.push(batch);
        Ok(())
    }

    /// Reads interned columns through `strings` from now on: [`Self::gather`] returns their
    /// values, not their ids. Its memory is the partition's, not counted here.
    pub fn read_through(&mut self, strings: Arc<StringValues>) {
        self.strings = Some(strings);
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
    /// store of rows kept as they are (`sessionize`'s, whose [`Strings`] intern nothing)
    /// returns its batches this way.
    pub fn take_batch(&mut self, i: usize) -> RecordBatch {
        let empty = RecordBatch::new_empty(self.batches[i].schema());
        std::mem::replace(&mut self.batches[i], empty)
    }

    /// The rows of batch `i`.
    pub fn batch_rows(&self, i: usize) -> Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }

    /// Bytes held, for memory accounting (the distinct strings are counted by their owner).
    pub fn size(&self) -> usize {
        self.memory.memory_usage()
            + self.batches.capacity() * size_of::<RecordBatch>()
            + self.offsets.capacity() * size_of::<usize>()
    }

    /// The batch and the row in it of a row number.
    pub fn locate(&self, row: u32) -> (usize, usize) {
        let row = row as usize;
        let batch = self.offsets.partition_point(|&o| o <= row) - 1;
        (batch, row - self.offsets[batch])
    }

    /// One value of `column` per position, `None` giving NULL, in stored form (ids of an
    /// interned column).
    pub fn gather_stored(&self, column: usize, positions: &[Position]) -> Result<ArrayRef> {
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
        Ok(interleave(&arrays, &indices)?)
    }

    /// One value of `column` per position, `None` giving NULL, in the column's own type.
    pub fn gather(&self, column: usize, positions: &[Position]) -> Result<ArrayRef> {
        let gathered = self.gather_stored(column, positions)?;
        let values = match &self.strings {
            Some(strings) => strings.read(column, gathered)?,
            None => gathered,
        };
        // a view array would keep (and count) every block its strings came from
        Ok(compact_view(values))
    }
}

/// A partition's distinct strings: how each string column of its buffered rows is stored
/// ([`Strings::store`]), shared by every [`RowStore`] of the partition (the one in memory and
/// the buckets read back from spill files), so that spill files hold ids, and rows read back
/// are not interned again.
#[derive(Debug)]
pub struct Strings {
    /// The schema of the rows as pushed.
    input: SchemaRef,
    /// Per column: how a string column is stored, else `None`.
    columns: Vec<Option<StringIds>>,
    /// The schema of stored rows, once the first rows decided which columns are interned.
    stored: Option<SchemaRef>,
    /// Reused by [`Self::store`]: the ids of one column.
    ids: Vec<usize>,
}

impl Strings {
    /// Strings of rows of `schema` that keep their string columns (`Utf8`, `LargeUtf8`,
    /// `Utf8View`, and dictionaries of those) that repeat as ids into their distinct values,
    /// and the others plainly.
    pub fn interning(schema: &SchemaRef) -> Result<Self> {
        let columns = schema
            .fields()
            .iter()
            .map(|field| {
                is_string(field.data_type())
                    .then(|| StringIds::new(field))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            input: Arc::clone(schema),
            columns,
            stored: None,
            ids: Vec::new(),
        })
    }

    /// Strings that store every column as it is.
    pub fn none(schema: &SchemaRef) -> Self {
        Self {
            input: Arc::clone(schema),
            columns: Vec::new(),
            stored: Some(Arc::clone(schema)),
            ids: Vec::new(),
        }
    }

    /// `batch` (of the input schema) in stored form: ids for interned columns (NULL where the
    /// column is NULL), `Utf8` for string columns that are not. The first rows stored decide,
    /// per column, which it is: a column with too few repeats there is stored plainly from then
    /// on.
    pub fn store(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let first = self.stored.is_none();
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (i, column) in batch.columns().iter().enumerate() {
            match self.columns.get_mut(i) {
                Some(Some(strings)) => {
                    columns.push(strings.store(column, first, &mut self.ids)?);
                }
                _ => columns.push(Arc::clone(column)),
            }
        }
        let stored = match &self.stored {
            Some(stored) => Arc::clone(stored),
            None => {
                let fields: Vec<Field> = self
                    .input
                    .fields()
                    .iter()
                    .zip(&columns)
                    .map(|(field, column)| {
                        Field::new(field.name(), column.data_type().clone(), true)
                    })
                    .collect();
                Arc::clone(self.stored.insert(Arc::new(Schema::new(fields))))
            }
        };
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            stored, columns, &options,
        )?)
    }

    /// Ends storing: the distinct values, readable.
    pub fn freeze(self) -> Result<StringValues> {
        let columns = self
            .columns
            .into_iter()
            .map(|strings| strings.map(StringIds::freeze).transpose())
            .collect::<Result<_>>()?;
        Ok(StringValues { columns })
    }

    /// Bytes held, for memory accounting.
    pub fn size(&self) -> usize {
        self.ids.capacity() * size_of::<usize>()
            + self
                .columns
                .iter()
                .flatten()
                .map(StringIds::size)
                .sum::<usize>()
    }
}

/// Whether interning [`Strings`] may keep a column of this type as ids: strings, and
/// dictionaries of strings (whose values would otherwise be merged on every read across
/// blocks).
fn is_string(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_string(values),
        _ => false,
    }
}

/// How interning [`Strings`] keep one string column.
struct StringIds {
    /// The column's own type, which reads return.
    data_type: DataType,
    state: Ids,
}

enum Ids {
    /// Interned, while rows are pushed.
    Building(Interner),
    /// Not interned (too many distinct values in the first block): kept plainly, a view
    /// array as `Utf8`.
    Plain,
}

impl std::fmt::Debug for StringIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            Ids::Building(values) => format!("building, {} values", values.len()),
            Ids::Plain => "plain".to_string(),
        };
        write!(f, "StringIds({}, {state})", self.data_type)
    }
}

impl StringIds {
    fn new(field: &Field) -> Result<Self> {
        let data_type = field.data_type().clone();
        Ok(Self {
            state: Ids::Building(Interner::new("sessionize: string column", &data_type)?),
            data_type,
        })
    }

    /// `column` as it is stored: ids (NULL where the column is NULL) or plain strings. After
    /// the `first` block, a column with too few repeats is stored plainly from then on.
    fn store(&mut self, column: &ArrayRef, first: bool, ids: &mut Vec<usize>) -> Result<ArrayRef> {
        match &mut self.state {
            Ids::Building(values) => {
                let interned = Self::intern(values, column, ids)?;
                if first && values.len() * MIN_REPEATS > column.len() {
                    self.state = Ids::Plain;
                    return plain(column);
                }
                Ok(interned)
            }
            Ids::Plain => plain(column),
        }
    }

    fn intern(values: &mut Interner, column: &ArrayRef, ids: &mut Vec<usize>) -> Result<ArrayRef> {
        // in slices, so that the table's per-call scratch (a hash per row) and `ids` stay
        // small: a partition holds them while it spills
        let mut stored = Vec::with_capacity(column.len());
        for offset in (0..column.len()).step_by(INTERN_ROWS) {
            let slice = column.slice(offset, INTERN_ROWS.min(column.len() - offset));
            values.intern(&slice, ids)?;
            stored.extend(ids.iter().map(|&id| id as u32));
        }
        let ids = UInt32Array::new(stored.into(), column.logical_nulls());
        Ok(Arc::new(ids))
    }

    fn freeze(self) -> Result<Values> {
        let values = match self.state {
            Ids::Building(values) => Some(values.into_values()?),
            Ids::Plain => None,
        };
        Ok(Values {
            data_type: self.data_type,
            values,
        })
    }

    fn size(&self) -> usize {
        match &self.state {
            Ids::Building(values) => values.size(),
            Ids::Plain => 0,
        }
    }
}

/// A partition's distinct strings once stored ([`Strings::freeze`]), which reads of its stored
/// rows go through.
#[derive(Debug)]
pub struct StringValues {
    columns: Vec<Option<Values>>,
}

impl StringValues {
    /// Stored values of `column` (gathered from stored rows) in the column's own type.
    fn read(&self, column: usize, stored: ArrayRef) -> Result<ArrayRef> {
        match self.columns.get(column) {
            Some(Some(values)) => values.read(stored),
            None | Some(None) => Ok(stored),
        }
    }

    /// Bytes held, for memory accounting.
    pub fn size(&self) -> usize {
        self.columns
            .iter()
            .flatten()
            .filter_map(|v| v.values.as_ref())
            .map(|v| v.get_array_memory_size())
            .sum()
    }
}

/// One string column's distinct values.
#[derive(Debug)]
struct Values {
    /// The column's own type, which reads return.
    data_type: DataType,
    /// Every distinct value, indexed by id; `None` for a column kept plainly.
    values: Option<ArrayRef>,
}

impl Values {
    /// Stored values in the column's own type.
    fn read(&self, stored: ArrayRef) -> Result<ArrayRef> {
        let values = match &self.values {
            Some(values) => take(values, &stored, None)?,
            None => stored,
        };
        if values.data_type() == &self.data_type {
            Ok(values)
        } else {
            Ok(cast(&values, &self.data_type)?)
        }
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

    /// A store holding `batches` in the stored form of one partition's strings, and those.
    fn interning_store(batches: &[&RecordBatch]) -> Result<(RowStore, Strings)> {
        let mut strings = Strings::interning(&batches[0].schema())?;
        let mut store = RowStore::new();
        for batch in batches {
            store.push(&strings.store(batch)?)?;
        }
        Ok((store, strings))
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
        let (mut store, strings) = interning_store(&[&first, &second])?;
        // the string columns are stored as ids, NULL where the value is
        use DataType::{Int64, UInt32};
        assert_eq!(
            stored_types(&store),
            vec![vec![UInt32, UInt32, Int64, UInt32]; 2]
        );
        assert!(store.batches()[0].column(0).is_null(1));
        // until it reads through the strings, a store gathers ids
        assert_eq!(store.gather(0, &[Some((1, 1))])?.data_type(), &UInt32);
        store.read_through(Arc::new(strings.freeze()?));
        assert_reads_back(&store, &[&first, &second])
    }

    #[test]
    fn stores_of_one_partition_share_its_strings() -> Result<()> {
        // as when a partition spills: rows stored in memory, gathered in stored form into a
        // spill file, read back into another store, and rows stored after the spill began
        let pages = [Some("/a"), None, Some("/b"), Some("/c")];
        let first = batch(
            (0..40).map(|i| pages[i % 4]).collect(),
            (0..40).map(|i| format!("device-{}", i % 7)).collect(),
        );
        let later = batch(
            vec![Some("/c"), Some("/new"), None],
            vec!["device-3".into(), "device-new".into(), "device-0".into()],
        );
        let mut strings = Strings::interning(&first.schema())?;
        let mut in_memory = RowStore::new();
        in_memory.push(&strings.store(&first)?)?;
        let rows = in_memory.num_rows() as u32;
        let positions: Vec<Position> = (0..rows).map(|r| Some(in_memory.locate(r))).collect();
        let spilled = (0..first.num_columns())
            .map(|c| in_memory.gather_stored(c, &positions))
            .collect::<Result<Vec<_>>>()?;
        let mut bucket = RowStore::new();
        bucket.push(&RecordBatch::try_new(
            in_memory.batches()[0].schema(),
            spilled,
        )?)?;
        bucket.push(&strings.store(&later)?)?;
        assert_eq!(
            stored_types(&bucket),
            vec![stored_types(&in_memory)[0].clone(); 2]
        );
        bucket.read_through(Arc::new(strings.freeze()?));
        assert_reads_back(&bucket, &[&first, &later])
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
        let (mut store, strings) = interning_store(&[&first, &second])?;
        use DataType::{Int64, UInt32, Utf8};
        assert_eq!(
            stored_types(&store),
            vec![vec![Utf8, UInt32, Int64, UInt32]; 2]
        );
        store.read_through(Arc::new(strings.freeze()?));
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
        let mut strings = Strings::interning(&make().schema())?;
        let mut interned = RowStore::new();
        interned.push(&strings.store(&make())?)?;
        // a view is 16 bytes and this string 37 more; an id is 4 bytes
        assert!(
            plain.size() >= rows * (16 + device.len()),
            "{}",
            plain.size()
        );
        assert!(interned.size() < rows * 5, "{}", interned.size());
        assert!(strings.freeze()?.size() < 1024);
        Ok(())
    }
}
