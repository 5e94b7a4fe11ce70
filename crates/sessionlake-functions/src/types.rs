//! Data type predicates shared by the functions and the engine, so that "a string column"
//! means the same encodings everywhere.

use datafusion::arrow::datatypes::DataType;

/// Whether `data_type` is a string of any encoding: `Utf8`, `LargeUtf8`, `Utf8View`, or a
/// dictionary of one of them.
pub fn is_string_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value_type) => is_string_type(value_type),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_encoding_and_its_dictionaries_are_strings() {
        for plain in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            assert!(is_string_type(&plain));
            let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(plain));
            assert!(is_string_type(&dictionary));
        }
        let numbers = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Int64));
        assert!(!is_string_type(&numbers));
        assert!(!is_string_type(&DataType::Binary));
        assert!(!is_string_type(&DataType::Null));
    }
}
