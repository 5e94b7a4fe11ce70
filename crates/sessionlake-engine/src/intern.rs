//! Dense ids for the values of a column: a partition's users ([`crate::assign::UserIds`]) and
//! the repeating strings of its buffered rows ([`crate::rows::Strings`]).
//!
//! Every buffered event looks its user up here, so this is one of the operator's hottest
//! loops, and as users grow its table outgrows the caches: a lookup then costs a cache miss.
//! Strings (`Utf8`, `LargeUtf8`, `Utf8View` and dictionaries of them) are interned by a
//! `StringTable` built for that: one flat, open-addressed array of slots that each hold a
//! value's whole 16-byte view, so that a lookup of a string of at most 12 bytes (most user
//! ids) touches one slot and usually one cache line; a longer string also compares its bytes,
//! kept in the table's own blocks. A column's hashes are computed first, in one vectorized
//! pass, so that each lookup asks the CPU for the slot of the row `PREFETCH_ROWS` ahead:
//! the misses overlap instead of stalling the loop one by one. Other types (integer user ids)
//! use DataFusion's group values.
//!
//! Ids are given in order of first appearance, from 0; a NULL gets an id too. A dictionary
//! column with fewer values than rows looks each value up once, when a row first uses it.

use std::sync::Arc;

use datafusion::arrow::array::{AnyDictionaryArray, Array, ArrayRef, AsArray, StringViewArray};
use datafusion::arrow::buffer::{Buffer, NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::common::{Result, exec_err, internal_err};
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

/// The hashes of the table: seeded apart from DataFusion's repartitioning, whose hash picks
/// the partition, so that the values of one partition spread over every slot.
const HASHES: RandomState = RandomState::with_seed(0x5e55_104a_6c0d_e5a1);

/// Marks an empty slot; ids stay below it.
const EMPTY: u32 = u32::MAX;

/// The longest string a view holds whole.
const INLINE: u32 = 12;

/// Bytes of the first block of long strings; blocks double up to [`MAX_BLOCK`].
const MIN_BLOCK: usize = 8 * 1024;
const MAX_BLOCK: usize = 2 * 1024 * 1024;

/// Dense ids for the values of one column type.
pub struct Interner {
    table: Table,
}

enum Table {
    Strings(StringTable),
    /// Values of other types, by DataFusion's vectorized hash table of group values.
    Other {
        what: &'static str,
        value_type: DataType,
        values: Box<dyn GroupValues>,
    },
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.table {
            Table::Strings(_) => "strings",
            Table::Other { .. } => "group values",
        };
        write!(f, "Interner({kind}, {} values)", self.len())
    }
}

impl Interner {
    /// An interner of columns of `data_type` (a dictionary is interned by its values);
    /// `what` names them in errors (`"sessionize: user column"`).
    pub fn new(what: &'static str, data_type: &DataType) -> Result<Self> {
        let value_type = match data_type {
            DataType::Dictionary(_, value) => value.as_ref(),
            other => other,
        };
        let table = match value_type {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                Table::Strings(StringTable::new(what, value_type.clone()))
            }
            other => Table::Other {
                what,
                value_type: other.clone(),
                values: new_group_values(
                    Arc::new(Schema::new(vec![Field::new("value", other.clone(), true)])),
                    &GroupOrdering::None,
                )?,
            },
        };
        Ok(Self { table })
    }

    /// Sets `ids` to the id of each value of `column` (of the type given to [`Self::new`]).
    pub fn intern(&mut self, column: &ArrayRef, ids: &mut Vec<usize>) -> Result<()> {
        ids.clear();
        match &mut self.table {
            Table::Strings(table) => match column.as_any_dictionary_opt() {
                Some(dictionary) if dictionary.values().len() <= column.len() => {
                    table.intern_dictionary(dictionary, ids)
                }
                _ => table.intern(&as_views(column)?, ids),
            },
            Table::Other {
                what,
                value_type,
                values,
            } => {
                let column = match column.data_type() {
                    DataType::Dictionary(..) => cast(column, value_type)?,
                    _ => Arc::clone(column),
                };
                values.intern(std::slice::from_ref(&column), ids)?;
                if values.len() >= EMPTY as usize {
                    return too_many(what);
                }
                Ok(())
            }
        }
    }

    /// Values interned so far.
    pub fn len(&self) -> usize {
        match &self.table {
            Table::Strings(table) => table.len,
            Table::Other { values, .. } => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held, for memory accounting.
    pub fn size(&self) -> usize {
        match &self.table {
            Table::Strings(table) => table.size(),
            Table::Other { values, .. } => values.size(),
        }
    }

    /// Every value by id, of the column's value type.
    pub fn into_values(self) -> Result<ArrayRef> {
        match self.table {
            Table::Strings(table) => table.into_values(),
            Table::Other { mut values, .. } => match values.emit(EmitTo::All)?.pop() {
                Some(values) => Ok(values),
                None => internal_err!("interned values emitted no column"),
            },
        }
    }
}

/// A string column as a view array.
fn as_views(column: &ArrayRef) -> Result<ArrayRef> {
    match column.data_type() {
        DataType::Utf8View => Ok(Arc::clone(column)),
        _ => Ok(cast(column, &DataType::Utf8View)?),
    }
}

fn too_many<T>(what: &str) -> Result<T> {
    exec_err!(
        "{what}: more than {} distinct values in one partition; raise \
         datafusion.execution.target_partitions",
        EMPTY - 1
    )
}

/// Rows ahead of a lookup whose slot [`StringTable::prefetch`] asks for: enough to cover the
/// memory's latency, few enough that the slots are still in the cache when they are read.
const PREFETCH_ROWS: usize = 16;

/// Asks the CPU to bring `value` into its caches.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch<T>(value: &T) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: a prefetch is a hint: it never faults and changes no memory, and the address is
    // that of a live reference. The intrinsic needs SSE, part of every x86_64 target.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast()) }
}

/// Other targets have no stable prefetch instruction: the lookup waits for memory.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn prefetch<T>(_value: &T) {}

/// One slot of a [`StringTable`].
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The value's view: the string itself if it is at most [`INLINE`] bytes, else its length,
    /// its first four bytes and where the table keeps it (block, offset).
    view: [u64; 2],
    /// The value's id, or [`EMPTY`].
    id: u32,
    /// The upper half of the value's hash, whose low bits pick the slot.
    hash: u32,
}

const EMPTY_SLOT: Slot = Slot {
    view: [0, 0],
    id: EMPTY,
    hash: 0,
};

/// Distinct strings by id: an open-addressed table (linear probing, at most three quarters
/// full) of slots that hold each value's view, and blocks that hold the bytes of values longer
/// than a view holds.
struct StringTable {
    what: &'static str,
    /// The type [`Self::into_values`] returns.
    value_type: DataType,
    /// A power of two long, or empty before the first value.
    slots: Vec<Slot>,
    len: usize,
    null: Option<u32>,
    /// Bytes of the long values; a block is never reallocated, so views into it stay valid.
    blocks: Vec<Vec<u8>>,
    /// Reused per [`Self::intern`]: a hash per row.
    hashes: Vec<u64>,
    /// Reused per [`Self::intern_dictionary`]: the id of each value of the dictionary, or
    /// [`EMPTY`] until a row uses it.
    value_ids: Vec<u32>,
}

impl StringTable {
    fn new(what: &'static str, value_type: DataType) -> Self {
        Self {
            what,
            value_type,
            slots: Vec::new(),
            len: 0,
            null: None,
            blocks: Vec::new(),
            hashes: Vec::new(),
            value_ids: Vec::new(),
        }
    }

    fn size(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
            + self.blocks.iter().map(Vec::capacity).sum::<usize>()
            + self.blocks.capacity() * size_of::<Vec<u8>>()
            + self.hashes.capacity() * size_of::<u64>()
            + self.value_ids.capacity() * size_of::<u32>()
    }

    /// Appends the id of each value of `array` to `ids`.
    fn intern(&mut self, array: &ArrayRef, ids: &mut Vec<usize>) -> Result<()> {
        let array = array.as_string_view();
        self.hash(array)?;
        ids.reserve(array.len());
        for row in 0..array.len() {
            if let Some(&ahead) = self.hashes.get(row + PREFETCH_ROWS) {
                self.prefetch(ahead);
            }
            ids.push(self.id_of(array, row)? as usize);
        }
        Ok(())
    }

    /// Appends the id of each row of a dictionary column to `ids`: a value is looked up the
    /// first time a row uses it, and the rows after take its id from there.
    fn intern_dictionary(
        &mut self,
        dictionary: &dyn AnyDictionaryArray,
        ids: &mut Vec<usize>,
    ) -> Result<()> {
        let values = as_views(dictionary.values())?;
        let values = values.as_string_view();
        self.hash(values)?;
        let mut value_ids = std::mem::take(&mut self.value_ids);
        value_ids.clear();
        value_ids.resize(values.len(), EMPTY);
        let nulls = dictionary.nulls();
        ids.reserve(dictionary.len());
        for (row, key) in dictionary.normalized_keys().into_iter().enumerate() {
            let id = match value_ids.get_mut(key) {
                _ if nulls.is_some_and(|n| n.is_null(row)) => self.null_id()?,
                Some(id) if *id != EMPTY => *id,
                Some(id) => {
                    *id = self.id_of(values, key)?;
                    *id
                }
                None => return internal_err!("{}: a dictionary key out of range", self.what),
            };
            ids.push(id as usize);
        }
        self.value_ids = value_ids;
        Ok(())
    }

    /// Sets [`Self::hashes`] to the hashes of `array`'s values.
    fn hash(&mut self, array: &StringViewArray) -> Result<()> {
        self.hashes.clear();
        self.hashes.resize(array.len(), 0);
        create_hashes([array as &dyn Array], &HASHES, &mut self.hashes)?;
        Ok(())
    }

    /// The id of `array`'s value at `index`, whose hash is in [`Self::hashes`].
    #[inline]
    fn id_of(&mut self, array: &StringViewArray, index: usize) -> Result<u32> {
        if array.is_null(index) {
            return self.null_id();
        }
        let view = array.views()[index];
        let hash = (self.hashes[index] >> 32) as u32;
        if view as u32 <= INLINE {
            self.inline_id(view, hash)
        } else {
            self.long_id(array.value(index).as_bytes(), view, hash)
        }
    }

    /// The id of NULL.
    fn null_id(&mut self) -> Result<u32> {
        match self.null {
            Some(id) => Ok(id),
            None => {
                let id = self.next_id()?;
                self.len += 1;
                Ok(*self.null.insert(id))
            }
        }
    }

    /// Asks the CPU to bring the first slot of `hash` into the cache, where a lookup a few rows
    /// later will find it: the table is larger than the caches once users number in the
    /// hundreds of thousands, and a lookup that waits for memory costs more than the rest of it.
    #[inline]
    fn prefetch(&self, hash: u64) {
        let at = (hash >> 32) as usize & self.slots.len().wrapping_sub(1);
        if let Some(slot) = self.slots.get(at) {
            prefetch(slot);
        }
    }

    /// The id of a string held whole by its view.
    #[inline]
    fn inline_id(&mut self, view: u128, hash: u32) -> Result<u32> {
        let key = [view as u64, (view >> 64) as u64];
        match self.probe(hash, |_, slot| slot.view == key) {
            Ok(id) => Ok(id),
            Err(at) => self.insert(at, key, hash),
        }
    }

    /// The id of a string longer than a view holds: `view`'s length and first four bytes, then
    /// its bytes, are compared.
    fn long_id(&mut self, bytes: &[u8], view: u128, hash: u32) -> Result<u32> {
        let head = view as u64;
        let same = |table: &Self, slot: Slot| {
            slot.hash == hash && slot.view[0] == head && table.long_bytes(slot.view) == bytes
        };
        match self.probe(hash, same) {
            Ok(id) => Ok(id),
            Err(at) => {
                let kept = self.keep(bytes)?;
                self.insert(at, [head, kept], hash)
            }
        }
    }

    /// Looks for the value `same` recognizes from the first slot of `hash` on, with room made
    /// for one more value: its id, or the empty slot where it belongs.
    #[inline]
    fn probe(
        &mut self,
        hash: u32,
        same: impl Fn(&Self, Slot) -> bool,
    ) -> std::result::Result<u32, usize> {
        self.reserve_one();
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot.id == EMPTY {
                return Err(at);
            }
            if same(self, slot) {
                return Ok(slot.id);
            }
            at = (at + 1) & mask;
        }
    }

    /// The bytes of a long value the table keeps.
    fn long_bytes(&self, view: [u64; 2]) -> &[u8] {
        let len = view[0] as u32 as usize;
        let block = view[1] as u32 as usize;
        let offset = (view[1] >> 32) as usize;
        &self.blocks[block][offset..offset + len]
    }

    /// Copies a long value into the blocks: the upper half of its view (block, offset).
    fn keep(&mut self, bytes: &[u8]) -> Result<u64> {
        let fits = self
            .blocks
            .last()
            .is_some_and(|b| b.capacity() - b.len() >= bytes.len());
        if !fits {
            let next = self
                .blocks
                .last()
                .map_or(MIN_BLOCK, |b| (b.capacity() * 2).min(MAX_BLOCK));
            self.blocks.push(Vec::with_capacity(next.max(bytes.len())));
        }
        let block = self.blocks.len() - 1;
        let Some(kept) = self.blocks.last_mut() else {
            return internal_err!("interned strings have no block");
        };
        let offset = kept.len();
        kept.extend_from_slice(bytes);
        match (u32::try_from(block), u32::try_from(offset)) {
            (Ok(block), Ok(offset)) => Ok(u64::from(block) | (u64::from(offset) << 32)),
            _ => exec_err!(
                "{}: more distinct strings in one partition than views can address; raise \
                 datafusion.execution.target_partitions",
                self.what
            ),
        }
    }

    fn insert(&mut self, at: usize, view: [u64; 2], hash: u32) -> Result<u32> {
        let id = self.next_id()?;
        self.slots[at] = Slot { view, id, hash };
        self.len += 1;
        Ok(id)
    }

    fn next_id(&self) -> Result<u32> {
        match u32::try_from(self.len) {
            Ok(id) if id < EMPTY => Ok(id),
            _ => too_many(self.what),
        }
    }

    /// Makes room for one more value: doubles the slots once they would be more than three
    /// quarters full.
    #[inline]
    fn reserve_one(&mut self) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
    }

    #[cold]
    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY_SLOT; capacity]);
        let mask = capacity - 1;
        for slot in old.into_iter().filter(|s| s.id != EMPTY) {
            let mut at = slot.hash as usize & mask;
            while self.slots[at].id != EMPTY {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }

    /// Every value by id, of the table's value type.
    fn into_values(self) -> Result<ArrayRef> {
        let mut views = vec![0u128; self.len];
        for slot in self.slots.iter().filter(|s| s.id != EMPTY) {
            views[slot.id as usize] = u128::from(slot.view[0]) | (u128::from(slot.view[1]) << 64);
        }
        let nulls = self.null.map(|null| {
            let mut valid = vec![true; self.len];
            valid[null as usize] = false;
            NullBuffer::from(valid)
        });
        let mut blocks = self.blocks;
        // the others are (nearly) full
        if let Some(last) = blocks.last_mut() {
            last.shrink_to_fit();
        }
        let blocks: Vec<Buffer> = blocks.into_iter().map(Buffer::from_vec).collect();
        let values: ArrayRef = Arc::new(StringViewArray::try_new(
            ScalarBuffer::from(views),
            blocks,
            nulls,
        )?);
        match self.value_type {
            DataType::Utf8View => Ok(values),
            other => Ok(cast(&values, &other)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use datafusion::arrow::array::{
        DictionaryArray, Int64Array, LargeStringArray, StringArray, StringViewArray,
    };
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    /// A seeded stream of numbers (xorshift).
    struct Seeded(u64);

    impl Seeded {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Strings of lengths 0 to 30 around the view's 12 inline bytes, many sharing their first
    /// four bytes, and NULLs.
    fn values(seed: u64, rows: usize, distinct: u64) -> Vec<Option<String>> {
        let mut random = Seeded(seed);
        (0..rows)
            .map(|_| {
                let n = random.below(distinct);
                let len = (n % 31) as usize;
                let full = format!("u{n:0>29}");
                (!n.is_multiple_of(97)).then(|| full[30 - len..].to_string())
            })
            .collect()
    }

    /// The naive ids: a map from value to the order of its first appearance.
    fn naive_ids(batches: &[Vec<Option<String>>]) -> (Vec<Vec<usize>>, Vec<Option<String>>) {
        let mut seen: HashMap<Option<String>, usize> = HashMap::new();
        let mut order = Vec::new();
        let ids = batches
            .iter()
            .map(|batch| {
                batch
                    .iter()
                    .map(|value| {
                        *seen.entry(value.clone()).or_insert_with(|| {
                            order.push(value.clone());
                            order.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        (ids, order)
    }

    fn arrays(batch: &[Option<String>]) -> Vec<ArrayRef> {
        let utf8 = StringArray::from_iter(batch.iter().map(Option::as_deref));
        let dictionary: DictionaryArray<Int32Type> = batch.iter().map(Option::as_deref).collect();
        vec![
            Arc::new(StringViewArray::from_iter(
                batch.iter().map(Option::as_deref),
            )),
            Arc::new(LargeStringArray::from_iter(
                batch.iter().map(Option::as_deref),
            )),
            Arc::new(dictionary),
            Arc::new(utf8),
        ]
    }

    fn check(batches: &[Vec<Option<String>>]) -> Result<()> {
        let (expected, order) = naive_ids(batches);
        for kind in 0..4 {
            let columns: Vec<ArrayRef> = batches
                .iter()
                .map(|b| arrays(b).swap_remove(kind))
                .collect();
            let data_type = columns[0].data_type().clone();
            let mut interner = Interner::new("test", &data_type)?;
            let mut ids = Vec::new();
            for (column, expected) in columns.iter().zip(&expected) {
                interner.intern(column, &mut ids)?;
                assert_eq!(&ids, expected, "ids of {data_type}");
            }
            assert_eq!(interner.len(), order.len());
            let values = interner.into_values()?;
            let value_type = match &data_type {
                DataType::Dictionary(_, value) => value.as_ref().clone(),
                other => other.clone(),
            };
            assert_eq!(values.data_type(), &value_type);
            let values = cast(&values, &DataType::Utf8)?;
            let values: Vec<Option<&str>> = values.as_string::<i32>().iter().collect();
            let order: Vec<Option<&str>> = order.iter().map(Option::as_deref).collect();
            assert_eq!(values, order, "values of {data_type}");
        }
        Ok(())
    }

    #[test]
    fn ids_follow_first_appearance_for_every_string_type() -> Result<()> {
        let batches: Vec<_> = (0..20).map(|seed| values(seed + 1, 4096, 30_000)).collect();
        check(&batches)
    }

    #[test]
    fn edge_values_get_their_own_ids() -> Result<()> {
        let edges = [
            None,
            Some(""),
            Some("a"),
            Some("twelve bytes"),
            Some("thirteen byte"),
            Some("twelve bytez"),
            Some("thirteen bytf"),
            Some("twel"),
            Some(""),
            None,
            Some("twelve bytes"),
            Some("thirteen byte"),
        ];
        let batch: Vec<Option<String>> = edges.iter().map(|v| v.map(String::from)).collect();
        check(&[batch.clone(), batch])
    }

    #[test]
    fn a_dictionary_takes_ids_as_its_rows_first_use_its_values() -> Result<()> {
        use datafusion::arrow::array::Int32Array;
        // a NULL value, a NULL key, a value no row uses, and (second) more values than rows
        let values: ArrayRef = Arc::new(StringArray::from(vec![
            Some("unused"),
            Some("b-a string longer than a view"),
            None,
            Some("a"),
        ]));
        let keys = Int32Array::from(vec![Some(3), Some(1), None, Some(2), Some(3), Some(1)]);
        let first: ArrayRef = Arc::new(DictionaryArray::try_new(keys, Arc::clone(&values))?);
        let keys = Int32Array::from(vec![Some(0), Some(3)]);
        let second: ArrayRef = Arc::new(DictionaryArray::try_new(keys, values)?);
        let mut interner = Interner::new("test", first.data_type())?;
        let mut ids = Vec::new();
        interner.intern(&first, &mut ids)?;
        assert_eq!(ids, vec![0, 1, 2, 2, 0, 1]);
        interner.intern(&second, &mut ids)?;
        assert_eq!(ids, vec![3, 0]);
        let values = interner.into_values()?;
        let values: Vec<Option<&str>> = values.as_string::<i32>().iter().collect();
        assert_eq!(
            values,
            vec![
                Some("a"),
                Some("b-a string longer than a view"),
                None,
                Some("unused")
            ]
        );
        Ok(())
    }

    #[test]
    fn a_table_grows_past_many_doublings() -> Result<()> {
        // every value distinct: the slots double from 1024 to 2^19
        let batches: Vec<Vec<Option<String>>> = (0..40)
            .map(|b| {
                (0..8192)
                    .map(|i| Some(format!("v{}", b * 8192 + i)))
                    .collect()
            })
            .collect();
        check(&batches)
    }

    #[test]
    fn other_types_use_group_values() -> Result<()> {
        let column: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), None, Some(7), Some(3)]));
        let mut interner = Interner::new("test", column.data_type())?;
        let mut ids = Vec::new();
        interner.intern(&column, &mut ids)?;
        assert_eq!(ids, vec![0, 1, 0, 2]);
        let values = interner.into_values()?;
        let values: Vec<Option<i64>> = values
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .iter()
            .collect();
        assert_eq!(values, vec![Some(7), None, Some(3)]);
        Ok(())
    }
}
