//! Buffered rows: what the operator keeps of each row between buffering ([`crate::exec`]) and
//! building output columns ([`crate::output`]), addressed by one row number.
//!
//! `sessions` keeps only a few columns of each active row (its event type, its properties and
//! the columns that order tied events), but those are mostly strings, and many of a lake's
//! string columns repeat a few values: a few thousand pages, a few dozen countries. So a
//! partition's [`Strings`] keeps such a column as ids into its distinct values, plus each
//! distinct string once. Ids take the narrowest unsigned type that holds them (`UInt8` up to
//! 256 distinct values, `UInt16` up to 65,536, else `UInt32`), so a country or an event type
//! costs one byte a row; when a column outgrows its type, the blocks stored before are widened
//! once ([`RowStore::push`]). A dictionary column of strings is interned too: its blocks'
//! dictionaries differ, and reading rows across blocks would merge them every time.
//!
//! Whether a column repeats is judged on the first rows stored (as Parquet writers fall back
//! from dictionary encoding). A column with more than one distinct value per [`MIN_REPEATS`]
//! rows there and more than [`VALUES_PER_USER`] per user seen (event ids) would make a hash
//! table as large as the column for little gain, so it is kept plainly, as `Utf8` (a view
//! array's 16-byte views cost more than `Utf8`'s 4-byte offsets). A column that follows its
//! users (device ids) repeats as their later events arrive, however few of its values repeat in
//! the first rows, so it is interned.
//!
//! Rows are kept in that stored form everywhere: in a [`RowStore`] in memory, and in the spill
//! files of a partition that spills (with every id as `UInt32`, see [`Strings::spilled`]), whose
//! rows are read back into stores as they are, without being interned again. Reading rows
//! ([`RowStore::gather`]) returns every column in its own type.

use std::mem::size_of;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, UInt8Array, UInt16Array,
    UInt32Array, new_null_array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::{cast, interleave, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::utils::memory::RecordBatchMemoryCounter;
use datafusion::common::{Result, internal_err};

use crate::intern::Interner;

/// A string column is interned when its first block has at least this many rows per distinct
/// value.
pub const MIN_REPEATS: usize = 4;

/// A string column is interned when its first block has at most this many distinct values per
/// user the partition has seen (a user's devices, plan or country), however rarely they repeat
/// there, provided each value there is used by [`MIN_VALUE_ROWS`] rows on average.
pub const VALUES_PER_USER: usize = 2;

/// See [`VALUES_PER_USER`].
const MIN_VALUE_ROWS: usize = 2;

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
    ///
    /// When the rows' types differ from those stored before (an interned column whose ids
    /// outgrew their type), the rows stored before are widened to the new types first.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        if let Some(stored) = self.batches.first().map(RecordBatch::schema)
            && !Arc::ptr_eq(&stored, &batch.schema())
            && stored != batch.schema()
        {
            self.widen(&batch.schema())?;
        }
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

    /// Casts every stored batch to `schema` (ids to a wider type), counting memory anew.
    fn widen(&mut self, schema: &SchemaRef) -> Result<()> {
        let mut memory = RecordBatchMemoryCounter::new();
        for batch in &mut self.batches {
            let columns = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(column, field)| {
                    if column.data_type() == field.data_type() {
                        Ok(Arc::clone(column))
                    } else {
                        Ok(cast(column, field.data_type())?)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            *batch = RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)?;
            memory.count_batch(batch);
        }
        self.memory = memory;
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
    /// The schema of stored rows, once the first rows decided which columns are interned (its
    /// id types widen as columns gain values).
    stored: Option<SchemaRef>,
    /// Reused by [`Self::store`]: the ids of one column.
    ids: Vec<usize>,
    /// How many distinct users the partition has seen (see [`VALUES_PER_USER`]).
    users: usize,
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
            users: 0,
        })
    }

    /// Strings that store every column as it is.
    pub fn none(schema: &SchemaRef) -> Self {
        Self {
            input: Arc::clone(schema),
            columns: Vec::new(),
            stored: Some(Arc::clone(schema)),
            ids: Vec::new(),
            users: 0,
        }
    }

    /// Tells how many distinct users the partition has seen so far, which judges the columns
    /// of the first block (see [`VALUES_PER_USER`]).
    pub fn set_users(&mut self, users: usize) {
        self.users = users;
    }

    /// `batch` (of the input schema) in stored form: ids for interned columns (NULL where the
    /// column is NULL) in the narrowest type that holds the column's ids so far, `Utf8` for
    /// string columns that are not interned. The first rows stored decide, per column, which
    /// it is: a column with too few repeats there is stored plainly from then on.
    pub fn store(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let first = self.stored.is_none();
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (i, column) in batch.columns().iter().enumerate() {
            match self.columns.get_mut(i) {
                Some(Some(strings)) => {
                    columns.push(strings.store(column, first, self.users, &mut self.ids)?);
                }
                _ => columns.push(Arc::clone(column)),
            }
        }
        let stored = match &self.stored {
            Some(stored)
                if stored
                    .fields()
                    .iter()
                    .zip(&columns)
                    .all(|(field, column)| field.data_type() == column.data_type()) =>
            {
                Arc::clone(stored)
            }
            _ => {
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

    /// The schema of stored rows in spill files: the stored one with every interned column's
    /// ids as `UInt32`, so that a file's runs keep one schema while ids widen.
    pub fn spilled(&self) -> Result<SchemaRef> {
        let Some(stored) = &self.stored else {
            return internal_err!("sessionize: rows spilled before any was stored");
        };
        let fields: Vec<Field> = stored
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| match self.columns.get(i) {
                Some(Some(StringIds {
                    state: Ids::Building(_),
                    ..
                })) => Field::new(field.name(), DataType::UInt32, true),
                _ => field.as_ref().clone(),
            })
            .collect();
        Ok(Arc::new(Schema::new(fields)))
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
    /// the `first` block, a column with too few repeats, judged against the `users` the
    /// partition has seen, is stored plainly from then on.
    fn store(
        &mut self,
        column: &ArrayRef,
        first: bool,
        users: usize,
        ids: &mut Vec<usize>,
    ) -> Result<ArrayRef> {
        match &mut self.state {
            Ids::Building(values) => {
                let interned = Self::intern(values, column, ids)?;
                let distinct = values.len();
                let repeats = distinct * MIN_REPEATS <= column.len();
                let follows_users = distinct <= VALUES_PER_USER * users
                    && distinct * MIN_VALUE_ROWS <= column.len();
                if first && !repeats && !follows_users {
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
        Ok(narrow_ids(stored, column.logical_nulls(), values.len()))
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

/// The narrowest unsigned integer type that holds ids below `distinct`.
fn id_type(distinct: usize) -> DataType {
    if distinct <= 1 << 8 {
        DataType::UInt8
    } else if distinct <= 1 << 16 {
        DataType::UInt16
    } else {
        DataType::UInt32
    }
}

/// `ids`, each below `distinct`, as an array of [`id_type`]`(distinct)`.
fn narrow_ids(ids: Vec<u32>, nulls: Option<NullBuffer>, distinct: usize) -> ArrayRef {
    // the casts below keep every value: each id is below `distinct`
    match id_type(distinct) {
        DataType::UInt8 => Arc::new(UInt8Array::new(
            ids.iter().map(|&id| id as u8).collect(),
            nulls,
        )),
        DataType::UInt16 => Arc::new(UInt16Array::new(
            ids.iter().map(|&id| id as u16).collect(),
            nulls,
        )),
        _ => Arc::new(UInt32Array::new(ids.into(), nulls)),
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
    use datafusion::common::utils::memory::get_record_batch_memory_size;

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
        // the string columns are stored as ids (a byte each for these few values), NULL where
        // the value is
        use DataType::{Int64, UInt8};
        assert_eq!(
            stored_types(&store),
            vec![vec![UInt8, UInt8, Int64, UInt8]; 2]
        );
        assert!(store.batches()[0].column(0).is_null(1));
        // until it reads through the strings, a store gathers ids
        assert_eq!(store.gather(0, &[Some((1, 1))])?.data_type(), &UInt8);
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
        use DataType::{Int64, UInt8, UInt32, Utf8};
        assert_eq!(
            stored_types(&store),
            vec![vec![Utf8, UInt8, Int64, UInt8]; 2]
        );
        // spill files hold every id as `UInt32`, and plain columns as stored
        let spilled: Vec<DataType> = strings
            .spilled()?
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(spilled, vec![Utf8, UInt32, Int64, UInt32]);
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
        // a view is 16 bytes and this string 37 more; an id is one byte here
        assert!(
            plain.size() >= rows * (16 + device.len()),
            "{}",
            plain.size()
        );
        assert!(interned.size() < rows * 2, "{}", interned.size());
        assert!(strings.freeze()?.size() < 1024);
        Ok(())
    }

    #[test]
    fn ids_widen_as_a_column_gains_values() -> Result<()> {
        // pages with 200, then 300, then 70,000 distinct values so far: ids of one byte, two
        // and four; the blocks stored before are widened with them
        let block = |pages: Range<usize>| {
            let pages: Vec<String> = pages.map(|p| format!("/p/{p}")).collect();
            let rows = pages.len();
            batch(
                pages.iter().map(|p| Some(p.as_str())).collect(),
                (0..rows).map(|i| format!("d{}", i % 3)).collect(),
            )
        };
        // the first block repeats its pages, so the column is interned
        let first = batch(
            (0..800).map(|i| Some(["/p/0", "/p/1"][i % 2])).collect(),
            (0..800).map(|i| format!("d{}", i % 3)).collect(),
        );
        let blocks = [first, block(0..200), block(200..300), block(300..70_000)];
        let mut strings = Strings::interning(&blocks[0].schema())?;
        let mut store = RowStore::new();
        use DataType::{UInt8, UInt16, UInt32};
        for (block, page_type) in blocks.iter().zip([UInt8, UInt8, UInt16, UInt32]) {
            store.push(&strings.store(block)?)?;
            for types in stored_types(&store) {
                assert_eq!(types[0], page_type);
                // the others keep their one-byte ids
                assert_eq!((&types[1], &types[3]), (&UInt8, &UInt8));
            }
        }
        let size: usize = store
            .batches()
            .iter()
            .map(get_record_batch_memory_size)
            .sum();
        // the widened blocks are counted anew, each buffer once
        assert_eq!(store.memory.memory_usage(), size);
        store.read_through(Arc::new(strings.freeze()?));
        assert_reads_back(&store, &blocks.iter().collect::<Vec<_>>())
    }

    #[test]
    fn a_column_that_follows_its_users_is_interned() -> Result<()> {
        // 40 rows: 20 devices of two rows each (too few repeats alone), 40 distinct pages
        let pages: Vec<String> = (0..40).map(|i| format!("/page/{i}")).collect();
        let first = batch(
            pages.iter().map(|p| Some(p.as_str())).collect(),
            (0..40).map(|i| format!("device-{}", i % 20)).collect(),
        );
        use DataType::{Int64, UInt8, Utf8};
        for (users, device_type) in [(0, Utf8), (9, Utf8), (10, UInt8), (40, UInt8)] {
            let mut strings = Strings::interning(&first.schema())?;
            strings.set_users(users);
            let mut store = RowStore::new();
            store.push(&strings.store(&first)?)?;
            // pages never repeat: plain whatever the users
            assert_eq!(
                stored_types(&store),
                vec![vec![Utf8, device_type.clone(), Int64, UInt8]],
                "{users} users"
            );
            store.read_through(Arc::new(strings.freeze()?));
            assert_reads_back(&store, &[&first])?;
        }
        Ok(())
    }
}
