//! Encoding result batches as file bytes: Parquet for tables, CSV for exports that ask for it.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use crate::error::JobError;

/// One Parquet file (zstd) holding `batches`.
pub fn parquet_bytes(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, JobError> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let fail = |e: datafusion::parquet::errors::ParquetError| {
        JobError::failed(format!("encoding Parquet: {e}"))
    };
    let mut bytes = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut bytes, schema.clone(), Some(properties)).map_err(fail)?;
    for batch in batches {
        writer.write(batch).map_err(fail)?;
    }
    writer.close().map_err(fail)?;
    Ok(bytes)
}

/// CSV with a header line; fields holding a comma, a quote or a line break are quoted.
pub fn csv_bytes(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, JobError> {
    let mut text = String::new();
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| csv_field(f.name()))
        .collect();
    text.push_str(&header.join(","));
    text.push('\n');
    let options = FormatOptions::default().with_null("");
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| JobError::failed(format!("encoding CSV: {e}")))?;
        for row in 0..batch.num_rows() {
            let fields: Vec<String> = formatters
                .iter()
                .map(|f| csv_field(&f.value(row).to_string()))
                .collect();
            text.push_str(&fields.join(","));
            text.push('\n');
        }
    }
    Ok(text.into_bytes())
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("u1"), "u1");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
