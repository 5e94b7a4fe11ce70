//! Dense ids for the values an accumulator meets, so per-group sets and counts hold small
//! integers and a repeated value costs a hash lookup, never an allocation: strings are stored
//! back to back in one arena, 64-bit patterns in one vector.
//!
//! Ids are only meaningful inside the accumulator that made them; states carry the values.

use std::hash::BuildHasher;
use std::mem::size_of;

use datafusion::common::{HashMap, Result, exec_err};

use crate::distinct_groups::hash_table_bytes;

/// Marks "no id": ids stay below it.
pub(crate) const NO_ID: u32 = u32::MAX;

/// The id after `len` ids, or the resources error naming `function` once ids run out.
fn next_id(function: &str, len: usize) -> Result<u32> {
    match u32::try_from(len) {
        Ok(id) if id < NO_ID => Ok(id),
        _ => exec_err!(
            "{function}: more than {} distinct values in one accumulator",
            NO_ID - 1
        ),
    }
}

/// Distinct strings stored back to back in one arena, each named by its index.
///
/// std's and DataFusion's hash maps cannot look up arena-backed keys, so the map goes from a
/// string's 64-bit hash to the newest id with that hash, and ids sharing a hash are chained
/// through `previous_same_hash` (almost always a chain of one).
#[derive(Debug, Default)]
pub(crate) struct StringInterner {
    newest_by_hash: HashMap<u64, u32>,
    /// Per id: the previous id with the same hash, or `NO_ID`.
    previous_same_hash: Vec<u32>,
    /// Per id: where its bytes end in `arena`; they start where the previous id's end.
    ends: Vec<usize>,
    arena: String,
}

impl StringInterner {
    /// The id of `value`, a new one if it was not seen; `function` names the caller in the
    /// error when ids run out.
    pub(crate) fn intern(&mut self, function: &str, value: &str) -> Result<u32> {
        let hash = self.newest_by_hash.hasher().hash_one(value);
        let newest = self.newest_by_hash.get(&hash).copied().unwrap_or(NO_ID);
        let mut candidate = newest;
        while candidate != NO_ID {
            if self.get(candidate) == Some(value) {
                return Ok(candidate);
            }
            candidate = self.previous_same_hash[candidate as usize];
        }
        let id = next_id(function, self.ends.len())?;
        self.arena.push_str(value);
        self.ends.push(self.arena.len());
        self.previous_same_hash.push(newest);
        self.newest_by_hash.insert(hash, id);
        Ok(id)
    }

    /// The string of `id`, `None` for an id this interner did not give.
    pub(crate) fn get(&self, id: u32) -> Option<&str> {
        let id = id as usize;
        let end = *self.ends.get(id)?;
        let start = match id {
            0 => 0,
            _ => *self.ends.get(id - 1)?,
        };
        self.arena.get(start..end)
    }

    /// Heap bytes held.
    pub(crate) fn size(&self) -> usize {
        hash_table_bytes::<(u64, u32)>(self.newest_by_hash.capacity())
            + self.previous_same_hash.capacity() * size_of::<u32>()
            + self.ends.capacity() * size_of::<usize>()
            + self.arena.capacity()
    }
}

/// Distinct 64-bit patterns (integers, canonical floats, booleans), each named by its index.
#[derive(Debug, Default)]
pub(crate) struct BitsInterner {
    ids: HashMap<u64, u32>,
    values: Vec<u64>,
}

impl BitsInterner {
    /// The id of `bits`, a new one if they were not seen.
    pub(crate) fn intern(&mut self, function: &str, bits: u64) -> Result<u32> {
        if let Some(&id) = self.ids.get(&bits) {
            return Ok(id);
        }
        let id = next_id(function, self.values.len())?;
        self.values.push(bits);
        self.ids.insert(bits, id);
        Ok(id)
    }

    /// The bits of `id`, `None` for an id this interner did not give.
    pub(crate) fn get(&self, id: u32) -> Option<u64> {
        self.values.get(id as usize).copied()
    }

    /// Heap bytes held.
    pub(crate) fn size(&self) -> usize {
        self.values.capacity() * size_of::<u64>()
            + hash_table_bytes::<(u64, u32)>(self.ids.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_id_per_string() {
        let mut interner = StringInterner::default();
        let a = interner.intern("F", "alice").expect("intern");
        let b = interner.intern("F", "bob").expect("intern");
        let empty = interner.intern("F", "").expect("intern");
        assert_eq!(interner.intern("F", "alice").expect("intern"), a);
        assert_eq!([a, b, empty], [0, 1, 2]);
        assert_eq!(interner.get(a), Some("alice"));
        assert_eq!(interner.get(empty), Some(""));
        assert_eq!(interner.get(99), None);
    }

    #[test]
    fn one_id_per_bit_pattern() {
        let mut interner = BitsInterner::default();
        let ids: Vec<u32> = [7, u64::MAX, 7, 0]
            .into_iter()
            .map(|bits| interner.intern("F", bits).expect("intern"))
            .collect();
        assert_eq!(ids, [0, 1, 0, 2]);
        assert_eq!(interner.get(1), Some(u64::MAX));
        assert_eq!(interner.get(3), None);
    }

    #[test]
    fn running_out_of_ids_names_the_function() {
        let error = next_id("PROPCOUNT", NO_ID as usize).expect_err("no id left");
        assert!(
            error
                .to_string()
                .contains("PROPCOUNT: more than 4294967294 distinct values in one accumulator"),
            "{error}"
        );
        assert_eq!(next_id("F", 5).expect("an id"), 5);
    }

    #[test]
    fn size_counts_the_arena() {
        let mut interner = StringInterner::default();
        let before = interner.size();
        for i in 0..1000 {
            interner
                .intern("F", &format!("user-number-{i:08}"))
                .expect("intern");
        }
        assert!(interner.size() >= before + 1000 * 20, "{}", interner.size());
    }
}
