//! How the distinct-count aggregates key a user argument: integer users by their value, string
//! users (`Utf8`, `LargeUtf8`, `Utf8View`, or a dictionary of them) by a small id interned once
//! per accumulator, so per-group sets hold plain `u64`s and no row allocates.

use std::mem::size_of;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayAccessor, ArrayRef, AsArray, Int64Array, LargeStringBuilder, UInt64Array,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{DataType, Int64Type, UInt64Type};
use datafusion::common::{Result, internal_err, plan_err};

use crate::interner::StringInterner;
use crate::types::is_string_type;

/// The type DataFusion should cast a user argument to, or a planning error naming `function`.
/// Strings and dictionaries of strings are read as they come; integers are widened to `Int64`
/// (`UInt64` stays unsigned, so no value changes); a NULL literal is an `Int64` that is never
/// counted.
pub(crate) fn coerce_user_type(function: &str, user_type: &DataType) -> Result<DataType> {
    match user_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(user_type.clone()),
        DataType::Dictionary(_, value_type) if is_string_type(value_type) => Ok(user_type.clone()),
        DataType::Dictionary(_, value_type) if value_type.is_integer() => {
            coerce_user_type(function, value_type)
        }
        DataType::UInt64 => Ok(DataType::UInt64),
        DataType::Null => Ok(DataType::Int64),
        t if t.is_integer() => Ok(DataType::Int64),
        other => {
            plan_err!("{function}: argument 'user' must be a string or an integer, found {other}")
        }
    }
}

/// The item type of a state list of users: `LargeUtf8` for every string encoding (no offset
/// overflow however long the ids, and one state type whatever the input encoding), the
/// integer type otherwise.
pub(crate) fn user_state_type(user_type: &DataType) -> DataType {
    match user_type {
        DataType::UInt64 => DataType::UInt64,
        DataType::Dictionary(_, value_type) if !is_string_type(value_type) => {
            user_state_type(value_type)
        }
        t if t.is_integer() || t.is_null() => DataType::Int64,
        _ => DataType::LargeUtf8,
    }
}

/// What a user key is: an `i64` or `u64` value's bits, or a string's interned id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserKind {
    Signed,
    Unsigned,
    Text,
}

/// Turns user arrays into `u64` keys, one accumulator's worth: the interned ids are only
/// meaningful inside the accumulator that made them (states carry the users themselves).
#[derive(Debug)]
pub(crate) struct UserKeys {
    function: &'static str,
    kind: UserKind,
    interner: StringInterner,
    /// Reused per batch: the key of each row.
    row_keys: Vec<u64>,
    /// Reused per dictionary batch: the id of each dictionary value, or `UNSET`.
    dictionary_ids: Vec<u64>,
}

const UNSET: u64 = u64::MAX;

impl UserKeys {
    /// Keys for a user argument of (coerced) type `user_type`, for `function`'s errors.
    pub(crate) fn new(function: &'static str, user_type: &DataType) -> Self {
        let kind = match user_state_type(user_type) {
            DataType::Int64 => UserKind::Signed,
            DataType::UInt64 => UserKind::Unsigned,
            _ => UserKind::Text,
        };
        Self {
            function,
            kind,
            interner: StringInterner::default(),
            row_keys: Vec::new(),
            dictionary_ids: Vec::new(),
        }
    }

    /// The key of each row of `users` where `selected` is set; other rows hold an unspecified
    /// key. `users` is an argument or a state list's items.
    pub(crate) fn encode(&mut self, users: &ArrayRef, selected: &BooleanBuffer) -> Result<&[u64]> {
        self.row_keys.clear();
        self.row_keys.resize(users.len(), 0);
        let keys = &mut self.row_keys;
        match (self.kind, users.data_type()) {
            (UserKind::Signed, DataType::Int64) => {
                let values = users.as_primitive::<Int64Type>().values();
                for row in selected.set_indices() {
                    keys[row] = values[row] as u64; // the bits, losslessly
                }
            }
            (UserKind::Unsigned, DataType::UInt64) => {
                let values = users.as_primitive::<UInt64Type>().values();
                for row in selected.set_indices() {
                    keys[row] = values[row];
                }
            }
            (UserKind::Text, DataType::Utf8) => intern_rows(
                self.function,
                &mut self.interner,
                users.as_string::<i32>(),
                selected,
                keys,
            )?,
            (UserKind::Text, DataType::LargeUtf8) => intern_rows(
                self.function,
                &mut self.interner,
                users.as_string::<i64>(),
                selected,
                keys,
            )?,
            (UserKind::Text, DataType::Utf8View) => intern_rows(
                self.function,
                &mut self.interner,
                users.as_string_view(),
                selected,
                keys,
            )?,
            (UserKind::Text, DataType::Dictionary(_, _))
                if users.as_any_dictionary().values().is_empty() =>
            {
                // no values: every row is NULL (and `normalized_keys` would panic)
            }
            (UserKind::Text, DataType::Dictionary(_, _)) => {
                let dictionary = users.as_any_dictionary();
                let value_rows = dictionary.normalized_keys();
                let values = dictionary.values();
                self.dictionary_ids.clear();
                self.dictionary_ids.resize(values.len(), UNSET);
                let lookup = DictionaryLookup {
                    function: self.function,
                    value_rows: &value_rows,
                    ids: &mut self.dictionary_ids,
                };
                match values.data_type() {
                    DataType::Utf8 => lookup.intern(
                        &mut self.interner,
                        values.as_string::<i32>(),
                        selected,
                        keys,
                    )?,
                    DataType::LargeUtf8 => lookup.intern(
                        &mut self.interner,
                        values.as_string::<i64>(),
                        selected,
                        keys,
                    )?,
                    DataType::Utf8View => lookup.intern(
                        &mut self.interner,
                        values.as_string_view(),
                        selected,
                        keys,
                    )?,
                    other => {
                        return internal_err!(
                            "{}: unexpected dictionary of {other} for argument 'user'",
                            self.function
                        );
                    }
                }
            }
            (kind, other) => {
                return internal_err!(
                    "{}: unexpected {other} array for argument 'user' keyed as {kind:?}",
                    self.function
                );
            }
        }
        Ok(&self.row_keys)
    }

    /// The users behind `keys`, as an array of [`user_state_type`].
    pub(crate) fn to_array(&self, keys: impl ExactSizeIterator<Item = u64>) -> Result<ArrayRef> {
        Ok(match self.kind {
            UserKind::Signed => Arc::new(Int64Array::from_iter_values(keys.map(|key| key as i64))),
            UserKind::Unsigned => Arc::new(UInt64Array::from_iter_values(keys)),
            UserKind::Text => {
                let mut builder = LargeStringBuilder::with_capacity(keys.len(), 0);
                for key in keys {
                    match u32::try_from(key).ok().and_then(|id| self.interner.get(id)) {
                        Some(user) => builder.append_value(user),
                        None => {
                            return internal_err!("{}: unknown user id {key}", self.function);
                        }
                    }
                }
                Arc::new(builder.finish())
            }
        })
    }

    /// Forgets every interned string: call only once no set holds an id any more.
    pub(crate) fn clear(&mut self) {
        self.interner = StringInterner::default();
    }

    /// Heap bytes: the interned strings and the reused per-batch buffers.
    pub(crate) fn size(&self) -> usize {
        self.interner.size()
            + (self.row_keys.capacity() + self.dictionary_ids.capacity()) * size_of::<u64>()
    }
}

fn intern_rows<'a>(
    function: &str,
    interner: &mut StringInterner,
    strings: impl ArrayAccessor<Item = &'a str>,
    selected: &BooleanBuffer,
    keys: &mut [u64],
) -> Result<()> {
    for row in selected.set_indices() {
        keys[row] = u64::from(interner.intern(function, strings.value(row))?);
    }
    Ok(())
}

/// Interns each dictionary value at most once per batch, and only if a selected row uses it.
struct DictionaryLookup<'b> {
    function: &'b str,
    value_rows: &'b [usize],
    ids: &'b mut [u64],
}

impl DictionaryLookup<'_> {
    fn intern<'a>(
        self,
        interner: &mut StringInterner,
        strings: impl ArrayAccessor<Item = &'a str>,
        selected: &BooleanBuffer,
        keys: &mut [u64],
    ) -> Result<()> {
        for row in selected.set_indices() {
            let value_row = self.value_rows[row];
            let mut id = self.ids[value_row];
            if id == UNSET {
                id = u64::from(interner.intern(self.function, strings.value(value_row))?);
                self.ids[value_row] = id;
            }
            keys[row] = id;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        DictionaryArray, Int8Array, LargeStringArray, StringArray, StringViewArray,
    };
    use datafusion::arrow::datatypes::Int16Type;

    use super::*;

    fn all(len: usize) -> BooleanBuffer {
        BooleanBuffer::new_set(len)
    }

    #[test]
    fn every_string_encoding_gives_the_same_users() {
        let plain: ArrayRef = Arc::new(StringArray::from(vec!["x", "y", "x"]));
        let large: ArrayRef = Arc::new(LargeStringArray::from(vec!["y", "x", "y"]));
        let view: ArrayRef = Arc::new(StringViewArray::from(vec![
            "a long user id over twelve",
            "x",
            "y",
        ]));
        let dictionary: ArrayRef = Arc::new(
            vec!["x", "z", "x"]
                .into_iter()
                .collect::<DictionaryArray<Int16Type>>(),
        );
        let mut keys = UserKeys::new("TEST", &DataType::Utf8);
        let first = keys.encode(&plain, &all(3)).expect("encode").to_vec();
        assert_eq!(first[0], first[2]);
        assert_ne!(first[0], first[1]);
        let second = keys.encode(&large, &all(3)).expect("encode").to_vec();
        assert_eq!(second, [first[1], first[0], first[1]]);
        let third = keys.encode(&view, &all(3)).expect("encode").to_vec();
        assert_eq!(&third[1..], [first[0], first[1]]);
        let fourth = keys.encode(&dictionary, &all(3)).expect("encode").to_vec();
        assert_eq!(fourth[0], first[0]);
        assert_eq!(fourth[2], first[0]);
        let back = keys
            .to_array([third[0], fourth[1]].into_iter())
            .expect("array");
        let back = back.as_string::<i64>();
        assert_eq!(back.value(0), "a long user id over twelve");
        assert_eq!(back.value(1), "z");
    }

    /// Regression: arrow's `normalized_keys` panics on a dictionary without values, which is
    /// how an all-NULL dictionary column can arrive.
    #[test]
    fn a_dictionary_without_values_is_all_null() {
        let keys = datafusion::arrow::array::Int16Array::from(vec![None, None]);
        let users: ArrayRef = Arc::new(
            DictionaryArray::<Int16Type>::try_new(
                keys,
                Arc::new(StringArray::from(Vec::<&str>::new())),
            )
            .expect("dictionary"),
        );
        let mut keys = UserKeys::new("TEST", users.data_type());
        let selected = crate::selection::selected_rows(2, &[&users], None);
        assert_eq!(selected.count_set_bits(), 0);
        assert_eq!(keys.encode(&users, &selected).expect("encode").len(), 2);
    }

    #[test]
    fn integers_keep_their_value() {
        let users: ArrayRef = Arc::new(Int64Array::from(vec![-1, i64::MAX, 0]));
        let mut keys = UserKeys::new("TEST", &DataType::Int64);
        let encoded = keys.encode(&users, &all(3)).expect("encode").to_vec();
        let back = keys.to_array(encoded.into_iter()).expect("array");
        assert_eq!(
            back.as_primitive::<Int64Type>().values(),
            &[-1, i64::MAX, 0]
        );
        let unsigned: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX]));
        let mut keys = UserKeys::new("TEST", &DataType::UInt64);
        let encoded = keys.encode(&unsigned, &all(1)).expect("encode").to_vec();
        assert_eq!(encoded, [u64::MAX]);
    }

    #[test]
    fn a_mismatched_array_is_an_internal_error() {
        let users: ArrayRef = Arc::new(Int8Array::from(vec![1]));
        let mut keys = UserKeys::new("TEST", &DataType::Int64);
        let error = keys
            .encode(&users, &all(1))
            .expect_err("Int8 is coerced away");
        assert!(
            error.to_string().contains("TEST: unexpected Int8"),
            "{error}"
        );
    }

    #[test]
    fn coercion_names_the_function_and_the_type() {
        let dictionary = DataType::Dictionary(Box::new(DataType::UInt8), Box::new(DataType::Utf8));
        assert_eq!(coerce_user_type("F", &dictionary).expect("ok"), dictionary);
        let int_dictionary =
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Int16));
        assert_eq!(
            coerce_user_type("F", &int_dictionary).expect("ok"),
            DataType::Int64
        );
        assert_eq!(
            coerce_user_type("F", &DataType::UInt32).expect("ok"),
            DataType::Int64
        );
        assert_eq!(
            coerce_user_type("F", &DataType::UInt64).expect("ok"),
            DataType::UInt64
        );
        let error = coerce_user_type("UNIQUES", &DataType::Float64).expect_err("float");
        assert!(
            error
                .to_string()
                .contains("UNIQUES: argument 'user' must be a string or an integer, found Float64"),
            "{error}"
        );
        assert_eq!(user_state_type(&dictionary), DataType::LargeUtf8);
        assert_eq!(user_state_type(&DataType::Utf8View), DataType::LargeUtf8);
    }

    #[test]
    fn size_counts_the_arena() {
        let mut keys = UserKeys::new("TEST", &DataType::Utf8);
        let before = keys.size();
        let users: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..1000).map(|i| format!("user-number-{i:08}")),
        ));
        keys.encode(&users, &all(1000)).expect("encode");
        assert!(keys.size() >= before + 1000 * 20, "{}", keys.size());
    }
}
