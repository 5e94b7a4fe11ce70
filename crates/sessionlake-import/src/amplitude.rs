//! One line of Amplitude's Export API (a JSON object, one event) mapped to one row of the lake:
//! the column table, the Arrow schema it gives, and the builders that collect rows into batches.
//!
//! Every listed field becomes a typed column (see [`COLUMNS`]); unlisted fields are ignored.
//! A field that is absent or `null` is NULL. Text columns take strings as they are, and numbers
//! or booleans as their JSON text; the `Json` columns (`event_properties`, `user_properties`,
//! `group_properties`, `groups`, `data`) hold the value's JSON text as it appears in the line, so
//! string functions (`strpos`, `regexp_match`, `LIKE`) can query it. Times are
//! `YYYY-MM-DD HH:MM:SS[.f]` in UTC (a `T` for the space and a trailing `Z` are accepted; digits
//! below the microsecond are dropped). `event_time` is required: a line without a time there is
//! a bad line, as is malformed JSON or a value of the wrong type.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The type a field is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    /// `Utf8`: a string, or the JSON text of a number or boolean.
    Text,
    /// `Utf8` holding the value's JSON text (objects such as `event_properties`).
    Json,
    /// `Int64`.
    Int,
    /// `Float64`.
    Float,
    /// `Boolean` (`true`, `false`, or the strings `"true"` and `"false"`).
    Bool,
    /// `Timestamp(Microsecond, "UTC")` from `YYYY-MM-DD HH:MM:SS[.ffffff]`.
    Time,
}

/// A lake column and the Amplitude field it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// The field's key in the export's JSON.
    pub key: &'static str,
    pub kind: ColumnKind,
}

const fn column(name: &'static str, kind: ColumnKind) -> Column {
    Column {
        name,
        key: name,
        kind,
    }
}

use ColumnKind::{Bool, Float, Int, Json, Text, Time};

/// The lake's columns, in schema order, with the Amplitude fields they come from: every field of
/// the Export API's event schema except `$schema` and `sample_rate`. `$insert_id` becomes
/// `insert_id`, a name SQL can use unquoted.
pub const COLUMNS: [Column; 47] = [
    column("event_time", Time),
    column("user_id", Text),
    column("device_id", Text),
    column("session_id", Int),
    column("event_type", Text),
    column("amplitude_id", Int),
    column("event_id", Int),
    column("uuid", Text),
    Column {
        name: "insert_id",
        key: "$insert_id",
        kind: Text,
    },
    column("app", Int),
    column("event_properties", Json),
    column("user_properties", Json),
    column("group_properties", Json),
    column("groups", Json),
    column("data", Json),
    column("platform", Text),
    column("os_name", Text),
    column("os_version", Text),
    column("device_type", Text),
    column("device_family", Text),
    column("device_brand", Text),
    column("device_manufacturer", Text),
    column("device_model", Text),
    column("device_carrier", Text),
    column("country", Text),
    column("region", Text),
    column("city", Text),
    column("dma", Text),
    column("language", Text),
    column("ip_address", Text),
    column("location_lat", Float),
    column("location_lng", Float),
    column("version_name", Text),
    column("start_version", Text),
    column("library", Text),
    column("adid", Text),
    column("idfa", Text),
    column("amplitude_event_type", Text),
    column("amplitude_attribution_ids", Text),
    column("paying", Bool),
    column("is_attribution_event", Bool),
    column("client_event_time", Time),
    column("client_upload_time", Time),
    column("server_received_time", Time),
    column("server_upload_time", Time),
    column("processed_time", Time),
    column("user_creation_time", Time),
];

const COLUMN_COUNT: usize = COLUMNS.len();
/// `event_time`'s place in [`COLUMNS`].
const EVENT_TIME: usize = 0;
const DAY_MICROS: i64 = 86_400_000_000;

/// The Arrow schema of the lake's files (the `event_date` partition lives in directory names).
pub fn schema() -> SchemaRef {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .enumerate()
        .map(|(index, column)| {
            let data_type = match column.kind {
                Text | Json => DataType::Utf8,
                Int => DataType::Int64,
                Float => DataType::Float64,
                Bool => DataType::Boolean,
                Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            };
            Field::new(column.name, data_type, index != EVENT_TIME)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// One field's value, typed as its column wants it.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Null,
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Microseconds since the epoch.
    Time(i64),
}

/// One event, parsed and typed; it borrows from its line where it can.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow<'a> {
    values: [Value<'a>; COLUMN_COUNT],
    event_time_us: i64,
}

impl EventRow<'_> {
    /// `event_time` in microseconds since the epoch.
    pub fn event_time_us(&self) -> i64 {
        self.event_time_us
    }

    /// The UTC day of `event_time`, as days since 1970-01-01.
    pub fn day(&self) -> i32 {
        // a four-digit year keeps this far inside i32
        self.event_time_us.div_euclid(DAY_MICROS) as i32
    }
}

/// Why a line is bad, without its place (the caller adds file and line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError(pub String);

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses one line of an export file into a row.
pub fn parse_line(line: &[u8]) -> Result<EventRow<'_>, LineError> {
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    let raw = FieldSlots
        .deserialize(&mut deserializer)
        .and_then(|slots| deserializer.end().map(|()| slots))
        .map_err(|e| LineError(format!("malformed JSON: {e}")))?;

    let mut values = [const { Value::Null }; COLUMN_COUNT];
    for (index, (column, raw)) in COLUMNS.iter().zip(raw).enumerate() {
        if let Some(raw) = raw {
            values[index] = typed(column, raw)?;
        }
    }
    let Value::Time(event_time_us) = values[EVENT_TIME] else {
        return Err(LineError(
            "no event_time (every Amplitude event has one)".into(),
        ));
    };
    Ok(EventRow {
        values,
        event_time_us,
    })
}

/// Reads a JSON object into one raw slot per column, skipping the fields no column takes.
struct FieldSlots;

type Slots<'a> = [Option<&'a RawValue>; COLUMN_COUNT];

impl<'de> DeserializeSeed<'de> for FieldSlots {
    type Value = Slots<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldSlots {
    type Value = Slots<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (one Amplitude event)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots: Slots<'de> = [None; COLUMN_COUNT];
        while let Some(ColumnIndex(index)) = map.next_key()? {
            match index {
                Some(index) => slots[index] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(slots)
    }
}

/// A field name as the index of the column that takes it, if any.
struct ColumnIndex(Option<usize>);

impl<'de> de::Deserialize<'de> for ColumnIndex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = ColumnIndex;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<ColumnIndex, E> {
                Ok(ColumnIndex(COLUMNS.iter().position(|c| c.key == key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// `raw` as `column` wants it.
fn typed<'a>(column: &Column, raw: &'a RawValue) -> Result<Value<'a>, LineError> {
    let text = raw.get();
    if text == "null" {
        return Ok(Value::Null);
    }
    let wrong = |wanted: &str| {
        LineError(format!(
            "{}: expected {wanted}, found {}",
            column.key,
            shortened(text)
        ))
    };
    let string = || json_string(raw);
    match column.kind {
        Json => Ok(Value::Text(Cow::Borrowed(text))),
        Text => Ok(Value::Text(match string() {
            Some(s) => s,
            None => Cow::Borrowed(text),
        })),
        Int => match text.parse::<i64>() {
            Ok(n) => Ok(Value::Int(n)),
            Err(_) => string()
                .and_then(|s| s.parse::<i64>().ok())
                .map(Value::Int)
                .ok_or_else(|| wrong("an integer")),
        },
        Float => match text.parse::<f64>() {
            Ok(x) => Ok(Value::Float(x)),
            Err(_) => string()
                .and_then(|s| s.parse::<f64>().ok())
                .map(Value::Float)
                .ok_or_else(|| wrong("a number")),
        },
        Bool => match text {
            "true" | "\"true\"" => Ok(Value::Bool(true)),
            "false" | "\"false\"" => Ok(Value::Bool(false)),
            _ => Err(wrong("true or false")),
        },
        Time => string()
            .and_then(|s| parse_time(&s))
            .map(Value::Time)
            .ok_or_else(|| wrong("a time YYYY-MM-DD HH:MM:SS[.ffffff]")),
    }
}

/// A JSON string's content: borrowed when it has no escapes.
fn json_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(text) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

/// At most 60 characters of `text`, for error messages.
fn shortened(text: &str) -> String {
    const LIMIT: usize = 60;
    match text.char_indices().nth(LIMIT) {
        None => text.to_string(),
        Some((end, _)) => format!("{}...", &text[..end]),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.f...]` (UTC; `T` for the space and a trailing `Z` accepted) as
/// microseconds since the epoch. Fraction digits past the sixth are dropped.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let bytes = text.as_bytes();
    if bytes.len() < 19
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b' ' | b'T')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        let digits = bytes.get(from..to)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let micros = match &bytes[19..] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            if !fraction.iter().all(u8::is_ascii_digit) {
                return None;
            }
            fraction
                .iter()
                .chain(std::iter::repeat(&b'0'))
                .take(6)
                .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(number(0, 4)? as i32, number(5, 7)?, number(8, 10)?)?;
    let time =
        NaiveTime::from_hms_micro_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?, micros)?;
    Some(date.and_time(time).and_utc().timestamp_micros())
}

/// One column's builder.
enum ColumnBuilder {
    Text(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
}

/// Collects rows into record batches of [`schema`], remembering each row's day.
pub struct EventBatchBuilder {
    schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    days: Vec<i32>,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    pub fn new() -> Self {
        let builders = COLUMNS
            .iter()
            .map(|column| match column.kind {
                Text | Json => ColumnBuilder::Text(StringBuilder::new()),
                Int => ColumnBuilder::Int(Int64Builder::new()),
                Float => ColumnBuilder::Float(Float64Builder::new()),
                Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
                Time => ColumnBuilder::Time(TimestampMicrosecondBuilder::new()),
            })
            .collect();
        Self {
            schema: schema(),
            builders,
            days: Vec::new(),
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.days.len()
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    pub fn append(&mut self, row: &EventRow<'_>) {
        for (builder, value) in self.builders.iter_mut().zip(&row.values) {
            // `typed` gives each column its kind's value, so the other pairs are NULLs
            match (builder, value) {
                (ColumnBuilder::Text(b), Value::Text(s)) => b.append_value(s),
                (ColumnBuilder::Int(b), Value::Int(n)) => b.append_value(*n),
                (ColumnBuilder::Float(b), Value::Float(x)) => b.append_value(*x),
                (ColumnBuilder::Bool(b), Value::Bool(v)) => b.append_value(*v),
                (ColumnBuilder::Time(b), Value::Time(t)) => b.append_value(*t),
                (ColumnBuilder::Text(b), _) => b.append_null(),
                (ColumnBuilder::Int(b), _) => b.append_null(),
                (ColumnBuilder::Float(b), _) => b.append_null(),
                (ColumnBuilder::Bool(b), _) => b.append_null(),
                (ColumnBuilder::Time(b), _) => b.append_null(),
            }
        }
        self.days.push(row.day());
    }

    /// The rows appended so far as one batch, with each row's day; the builder starts empty.
    pub fn finish(&mut self) -> Result<(RecordBatch, Vec<i32>), ArrowError> {
        let columns: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|builder| -> ArrayRef {
                match builder {
                    ColumnBuilder::Text(b) => Arc::new(b.finish()),
                    ColumnBuilder::Int(b) => Arc::new(b.finish()),
                    ColumnBuilder::Float(b) => Arc::new(b.finish()),
                    ColumnBuilder::Bool(b) => Arc::new(b.finish()),
                    ColumnBuilder::Time(b) => Arc::new(b.finish().with_timezone("UTC")),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        Ok((batch, std::mem::take(&mut self.days)))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};

    use super::*;

    const FULL_LINE: &str = r#"{"$insert_id":"ins-1","$schema":12,"adid":null,"amplitude_attribution_ids":null,"amplitude_event_type":null,"amplitude_id":987654321,"app":123456,"city":"S\u00e3o \"Paulo\"","client_event_time":"2024-01-01 23:59:59.5","client_upload_time":"2024-01-02 00:00:03.250000","country":"Brazil","data":{"path":"/2/httpapi"},"device_brand":null,"device_carrier":"Vivo","device_family":"Android","device_id":"dev-1","device_manufacturer":"Samsung","device_model":"SM-G991B","device_type":"Samsung Galaxy S21","dma":null,"event_id":42,"event_properties":{"page":"/home","n":3},"event_time":"2024-01-01 23:59:59.123456","event_type":"page_view","global_user_properties":{},"group_properties":{},"groups":{"company":["acme"]},"idfa":null,"ip_address":"10.0.0.1","is_attribution_event":false,"language":"Portuguese","library":"amplitude-android/3.0","location_lat":-23.55,"location_lng":-46.63,"os_name":"android","os_version":"14","paying":"true","platform":"Android","processed_time":"2024-01-02 00:00:10","region":"Sao Paulo","sample_rate":null,"server_received_time":"2024-01-02 00:00:04.000001","server_upload_time":"2024-01-02 00:00:04.5","session_id":1704153500000,"start_version":"1.0","user_creation_time":null,"user_id":"u1","user_properties":{"plan":"pro"},"uuid":"0f8fad5b-d9cb-469f-a165-70867728950e","version_name":"2.3.1"}"#;

    fn micros(text: &str) -> i64 {
        parse_time(text).expect("a valid time")
    }

    #[test]
    fn times_with_long_short_and_no_fractions() {
        assert_eq!(micros("1970-01-01 00:00:00"), 0);
        assert_eq!(micros("1970-01-01 00:00:01.5"), 1_500_000);
        assert_eq!(micros("1970-01-01 00:00:01.000001"), 1_000_001);
        assert_eq!(micros("1970-01-01 00:00:01.123456789"), 1_123_456);
        assert_eq!(micros("1970-01-01T00:01:00Z"), 60_000_000);
        assert_eq!(micros("1969-12-31 23:59:59.9"), -100_000);
        assert_eq!(micros("2024-02-29 12:00:00"), 1_709_208_000_000_000);
        for bad in [
            "",
            "2024-01-01",
            "2024-01-01 10:00",
            "2024-13-01 10:00:00",
            "2023-02-29 10:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 10:00:00.",
            "2024-01-01 10:00:00.12x",
            "2024-01-01 10:00:00.1234567890",
            "2024-01-01 10:00:00+01:00",
            "2024/01/01 10:00:00",
            "1704103200000",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_column_of_a_full_line() {
        let row = parse_line(FULL_LINE.as_bytes()).expect("parses");
        assert_eq!(row.event_time_us(), micros("2024-01-01 23:59:59.123456"));
        assert_eq!(
            row.day(),
            NaiveDate::from_ymd_opt(2024, 1, 1)
                .expect("date")
                .signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).expect("date"))
                .num_days() as i32
        );
        let mut builder = EventBatchBuilder::new();
        builder.append(&row);
        let (batch, days) = builder.finish().expect("batch");
        assert_eq!(days, [row.day()]);
        assert_eq!(batch.schema(), schema());
        assert_eq!(batch.num_rows(), 1);
        let text = |name: &str| -> Option<String> {
            let array = batch.column_by_name(name).expect(name).as_string::<i32>();
            array.is_valid(0).then(|| array.value(0).to_string())
        };
        let int = |name: &str| -> Option<i64> {
            let array = batch
                .column_by_name(name)
                .expect(name)
                .as_primitive::<Int64Type>();
            array.is_valid(0).then(|| array.value(0))
        };
        let time = |name: &str| -> Option<i64> {
            let array = batch
                .column_by_name(name)
                .expect(name)
                .as_primitive::<TimestampMicrosecondType>();
            array.is_valid(0).then(|| array.value(0))
        };
        assert_eq!(text("user_id").as_deref(), Some("u1"));
        assert_eq!(text("device_id").as_deref(), Some("dev-1"));
        assert_eq!(text("event_type").as_deref(), Some("page_view"));
        assert_eq!(int("session_id"), Some(1_704_153_500_000));
        assert_eq!(int("amplitude_id"), Some(987_654_321));
        assert_eq!(int("event_id"), Some(42));
        assert_eq!(int("app"), Some(123_456));
        assert_eq!(text("insert_id").as_deref(), Some("ins-1"));
        assert_eq!(
            text("uuid").as_deref(),
            Some("0f8fad5b-d9cb-469f-a165-70867728950e")
        );
        assert_eq!(
            text("event_properties").as_deref(),
            Some(r#"{"page":"/home","n":3}"#)
        );
        assert_eq!(
            text("user_properties").as_deref(),
            Some(r#"{"plan":"pro"}"#)
        );
        assert_eq!(text("groups").as_deref(), Some(r#"{"company":["acme"]}"#));
        assert_eq!(text("group_properties").as_deref(), Some("{}"));
        assert_eq!(text("data").as_deref(), Some(r#"{"path":"/2/httpapi"}"#));
        assert_eq!(text("city").as_deref(), Some("São \"Paulo\""));
        assert_eq!(text("version_name").as_deref(), Some("2.3.1"));
        assert_eq!(text("os_version").as_deref(), Some("14"));
        assert_eq!(text("adid"), None);
        assert_eq!(text("dma"), None);
        let lat = batch
            .column_by_name("location_lat")
            .expect("lat")
            .as_primitive::<Float64Type>();
        assert_eq!(lat.value(0), -23.55);
        let paying = batch.column_by_name("paying").expect("paying").as_boolean();
        assert!(paying.value(0));
        let attribution = batch
            .column_by_name("is_attribution_event")
            .expect("is_attribution_event")
            .as_boolean();
        assert!(!attribution.value(0));
        assert_eq!(
            time("client_event_time"),
            Some(micros("2024-01-01 23:59:59.5"))
        );
        assert_eq!(
            time("server_received_time"),
            Some(micros("2024-01-02 00:00:04.000001"))
        );
        assert_eq!(
            time("server_upload_time"),
            Some(micros("2024-01-02 00:00:04.5"))
        );
        assert_eq!(time("processed_time"), Some(micros("2024-01-02 00:00:10")));
        assert_eq!(time("user_creation_time"), None);
    }

    #[test]
    fn absent_and_null_fields_are_null_and_numbers_in_text_columns_keep_their_text() {
        let row = parse_line(
            br#"{"event_time":"2024-01-01 00:00:00","user_id":null,"device_id":12345,"session_id":-1}"#,
        )
        .expect("parses");
        let mut builder = EventBatchBuilder::new();
        builder.append(&row);
        let (batch, _) = builder.finish().expect("batch");
        let user = batch.column_by_name("user_id").expect("user_id");
        assert!(user.is_null(0));
        let device = batch
            .column_by_name("device_id")
            .expect("device_id")
            .as_string::<i32>();
        assert_eq!(device.value(0), "12345");
        let session = batch
            .column_by_name("session_id")
            .expect("session_id")
            .as_primitive::<Int64Type>();
        assert_eq!(session.value(0), -1);
        assert!(
            batch
                .column_by_name("event_type")
                .expect("event_type")
                .is_null(0)
        );
        assert!(
            batch
                .column_by_name("event_properties")
                .expect("props")
                .is_null(0)
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let message = |line: &str| parse_line(line.as_bytes()).expect_err(line).0;
        assert!(message("{\"event_time\": ").starts_with("malformed JSON: "));
        assert!(message("[1, 2]").starts_with("malformed JSON: "));
        assert!(
            message(r#"{"event_time":"2024-01-01 00:00:00"} trailing"#)
                .starts_with("malformed JSON: ")
        );
        assert_eq!(
            message(r#"{"user_id":"u1"}"#),
            "no event_time (every Amplitude event has one)"
        );
        assert_eq!(
            message(r#"{"event_time":null}"#),
            "no event_time (every Amplitude event has one)"
        );
        assert_eq!(
            message(r#"{"event_time":"yesterday"}"#),
            "event_time: expected a time YYYY-MM-DD HH:MM:SS[.ffffff], found \"yesterday\""
        );
        assert_eq!(
            message(r#"{"event_time":"2024-01-01 00:00:00","session_id":"abc"}"#),
            "session_id: expected an integer, found \"abc\""
        );
        assert_eq!(
            message(r#"{"event_time":"2024-01-01 00:00:00","paying":1}"#),
            "paying: expected true or false, found 1"
        );
    }

    #[test]
    fn column_names_are_unique() {
        let mut names: Vec<_> = COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COLUMNS.len());
    }
}
