//! A seeded Amplitude Export API export of [`random_events`](crate::random_events): the zip the
//! API returns (`<project>/<project>_<YYYY-MM-DD>_<H>#<n>.json.gz`, gzipped JSON lines grouped
//! by upload hour), or the same files in a directory, together with the events as the
//! [`reference`](crate::reference) sees them.
//!
//! What the export holds, on purpose: several days; users and anonymous events (`user_id`
//! null); session ids including `-1`; times with six, three or no fraction digits; events
//! uploaded hours late, so that they sit in a file of another day than their `event_time`;
//! hours split into several parts; files of two gzip members; one empty hour file; a string
//! with JSON escapes.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use chrono::DateTime;
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use crate::random_events::{EventSetShape, random_events};
use crate::reference::Event;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
/// Files with more lines than this are split into parts `#0`, `#1`, ...
const LINES_PER_PART: usize = 12;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSpec {
    pub seed: u64,
    /// At most this many events (the count itself is drawn, at least half of it).
    pub max_events: usize,
    pub max_users: usize,
    /// The Amplitude project id in names and the `app` field.
    pub project_id: u64,
}

impl Default for ExportSpec {
    fn default() -> Self {
        Self {
            seed: 13,
            max_events: 3_000,
            max_users: 12,
            project_id: 187_520,
        }
    }
}

/// One `.json.gz` file of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// The path inside the zip: `<project>/<project>_<YYYY-MM-DD>_<H>#<n>.json.gz`.
    pub path: String,
    pub gzip: Vec<u8>,
    /// The events' lines, in file order.
    pub lines: Vec<String>,
    /// The UTC day in the file's name (of the upload hour).
    pub day: String,
}

/// A generated export.
#[derive(Debug, Clone, PartialEq)]
pub struct AmplitudeExport {
    /// Every exported event, as the reference sees it: `is_active` NULL (the lake has no such
    /// column), `session_id` `-1` where the event has none, `row_id` the `event_id`.
    pub events: Vec<Event>,
    pub files: Vec<ExportFile>,
}

impl AmplitudeExport {
    /// Generates the export of `spec`.
    pub fn generate(spec: &ExportSpec) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let shape = EventSetShape {
            max_events: spec.max_events,
            max_users: spec.max_users,
            allow_ties: true,
        };
        // sets are drawn until one holds at least half of `max_events` and of `max_users`, so
        // that an export spans several days and users
        let events = loop {
            let events = random_events(&mut rng, &shape);
            let users: std::collections::BTreeSet<_> =
                events.iter().filter_map(|e| e.user.as_deref()).collect();
            if events.len() >= spec.max_events / 2 && users.len() >= spec.max_users / 2 {
                break events;
            }
        };
        Self::from_events(events, spec.project_id, &mut rng)
    }

    /// The export of `events` (those without a time are left out: every Amplitude event has
    /// one).
    pub fn from_events(events: Vec<Event>, project_id: u64, rng: &mut impl Rng) -> Self {
        let events: Vec<Event> = events
            .into_iter()
            .filter(|e| e.time.is_some())
            .map(|e| Event {
                is_active: None,
                session_id: Some(e.session_id.unwrap_or(-1)),
                ..e
            })
            .collect();

        // upload hour -> (upload time, line) of its events
        let mut hours: BTreeMap<i64, Vec<(i64, i64, String)>> = BTreeMap::new();
        for event in &events {
            let time = event.time.unwrap_or_default();
            let delay = match rng.random_range(0..100) {
                0..90 => rng.random_range(0..60_000),
                90..97 => rng.random_range(MINUTE_MS..30 * MINUTE_MS),
                _ => rng.random_range(2 * HOUR_MS..30 * HOUR_MS),
            };
            let upload = time + delay;
            let line = event_line(event, upload, project_id, rng);
            hours
                .entry(upload.div_euclid(HOUR_MS))
                .or_default()
                .push((upload, event.row_id, line));
        }
        let mut files = Vec::new();
        if let Some(&first_hour) = hours.keys().next() {
            // the hour before the first upload: a file without events
            files.push(export_file(project_id, first_hour - 1, 0, Vec::new()));
        }
        for (hour, mut uploads) in hours {
            uploads.sort();
            let lines: Vec<String> = uploads.into_iter().map(|(_, _, line)| line).collect();
            for (part, chunk) in lines.chunks(LINES_PER_PART).enumerate() {
                files.push(export_file(project_id, hour, part, chunk.to_vec()));
            }
        }
        Self { events, files }
    }

    /// Writes the export as the Export API's zip.
    pub fn write_zip(&self, path: &Path) -> io::Result<()> {
        let files: Vec<(String, Vec<u8>)> = self
            .files
            .iter()
            .map(|f| (f.path.clone(), f.gzip.clone()))
            .collect();
        write_zip(path, &files)
    }

    /// Writes the export's files under `dir`, as the zip would extract.
    pub fn write_dir(&self, dir: &Path) -> io::Result<()> {
        for file in &self.files {
            let path = dir.join(&file.path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(path, &file.gzip)?;
        }
        Ok(())
    }

    /// Events whose `event_time` falls on another UTC day than their file's name says.
    pub fn events_off_their_file_day(&self) -> usize {
        self.files
            .iter()
            .flat_map(|file| file.lines.iter().map(move |line| (file, line)))
            .filter(|(file, line)| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                let time = value["event_time"].as_str().unwrap_or_default();
                !time.starts_with(&file.day)
            })
            .count()
    }
}

fn export_file(project_id: u64, hour: i64, part: usize, lines: Vec<String>) -> ExportFile {
    let start = DateTime::from_timestamp_millis(hour * HOUR_MS).unwrap_or_default();
    let day = start.format("%Y-%m-%d").to_string();
    let hour_of_day = hour.rem_euclid(24);
    let path = format!("{project_id}/{project_id}_{day}_{hour_of_day}#{part}.json.gz");
    // every other hour is written as two gzip members, as concatenated uploads are
    let members = if hour_of_day % 2 == 0 { 2 } else { 1 };
    ExportFile {
        path,
        gzip: gzip_lines(&lines, members),
        lines,
        day,
    }
}

/// `lines`, one per line, as gzip of `members` concatenated members (at least one).
pub fn gzip_lines(lines: &[String], members: usize) -> Vec<u8> {
    let members = members.max(1);
    let per_member = lines.len().div_ceil(members).max(1);
    let mut out = Vec::new();
    let mut chunks: Vec<&[String]> = lines.chunks(per_member).collect();
    while chunks.len() < members {
        chunks.push(&[]);
    }
    for chunk in chunks {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        for line in chunk {
            // writing to a Vec cannot fail
            let _ = encoder.write_all(line.as_bytes());
            let _ = encoder.write_all(b"\n");
        }
        out.extend(encoder.finish().unwrap_or_default());
    }
    out
}

/// A zip of `(path, bytes)` entries, deflated, in the given order.
pub fn write_zip(path: &Path, files: &[(String, Vec<u8>)]) -> io::Result<()> {
    let mut zip = ZipWriter::new(fs::File::create(path)?);
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut folders: Vec<&str> = files
        .iter()
        .filter_map(|(name, _)| name.rsplit_once('/').map(|(dir, _)| dir))
        .collect();
    folders.dedup();
    for folder in folders {
        zip.add_directory(format!("{folder}/"), options)
            .map_err(io::Error::other)?;
    }
    for (name, bytes) in files {
        zip.start_file(name.as_str(), options)
            .map_err(io::Error::other)?;
        zip.write_all(bytes)?;
    }
    zip.finish().map_err(io::Error::other)?;
    Ok(())
}

/// An Amplitude time, `YYYY-MM-DD HH:MM:SS.ffffff`, sometimes with three fraction digits or
/// none (when the time is a whole second).
pub fn amplitude_time(ms: i64, rng: &mut impl Rng) -> String {
    let time = DateTime::from_timestamp_millis(ms).unwrap_or_default();
    match rng.random_range(0..10) {
        0..6 => time.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        6..8 => time.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        _ if ms % 1000 == 0 => time.format("%Y-%m-%d %H:%M:%S").to_string(),
        _ => time.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
    }
}

/// One event as a line of the export.
fn event_line(event: &Event, upload_ms: i64, project_id: u64, rng: &mut impl Rng) -> String {
    let time = event.time.unwrap_or_default();
    let user_number = event
        .user
        .as_deref()
        .and_then(crate::random_events::user_number);
    let device_id = match user_number {
        Some(n) => format!("device-{n}"),
        None => format!("anonymous-device-{}", event.row_id % 5),
    };
    let amplitude_id = 1_000_000 + user_number.unwrap_or(event.row_id % 5 + 500);
    let platforms = ["Web", "iOS", "Android"];
    let platform = platforms.choose(rng).copied().unwrap_or("Web");
    let properties = match &event.page {
        Some(page) => json!({ "page": page }),
        None => json!({}),
    };
    let city = if event.row_id % 3 == 0 {
        "São \"Paulo\""
    } else {
        "Berlin"
    };
    // one field at a time: a single json! literal this long exceeds the macro recursion limit
    let fields: Vec<(&str, serde_json::Value)> = vec![
        ("$insert_id", json!(format!("insert-{}", event.row_id))),
        ("$schema", json!(12)),
        ("adid", json!(null)),
        ("amplitude_attribution_ids", json!(null)),
        ("amplitude_event_type", json!(null)),
        ("amplitude_id", json!(amplitude_id)),
        ("app", json!(project_id)),
        ("city", json!(city)),
        ("client_event_time", json!(amplitude_time(time, rng))),
        ("client_upload_time", json!(amplitude_time(upload_ms, rng))),
        ("country", json!("Germany")),
        ("data", json!({ "path": "/2/httpapi" })),
        ("device_id", json!(device_id)),
        ("device_type", json!("Apple iPhone 15")),
        ("dma", json!(null)),
        ("event_id", json!(event.row_id)),
        ("event_properties", json!(properties)),
        ("event_time", json!(amplitude_time(time, rng))),
        ("event_type", json!(event.event_type)),
        ("group_properties", json!({})),
        ("groups", json!({})),
        ("ip_address", json!("10.0.0.1")),
        ("is_attribution_event", json!(false)),
        ("language", json!("German")),
        ("library", json!("http/2.0")),
        ("location_lat", json!(null)),
        ("location_lng", json!(null)),
        ("os_name", json!("ios")),
        ("os_version", json!("17.1")),
        ("paying", json!(null)),
        ("platform", json!(platform)),
        (
            "processed_time",
            json!(amplitude_time(upload_ms + 5_000, rng)),
        ),
        ("region", json!("Berlin")),
        ("sample_rate", json!(null)),
        (
            "server_received_time",
            json!(amplitude_time(upload_ms, rng)),
        ),
        ("server_upload_time", json!(amplitude_time(upload_ms, rng))),
        ("session_id", json!(event.session_id.unwrap_or(-1))),
        ("start_version", json!("1.0.0")),
        ("user_creation_time", json!(null)),
        ("user_id", json!(event.user)),
        (
            "user_properties",
            json!({ "plan": if user_number.is_some_and(|n| n % 2 == 0) { "pro" } else { "free" } }),
        ),
        (
            "uuid",
            json!(format!(
                "{:08x}-0000-4000-8000-{:012x}",
                rng.random::<u32>(),
                event.row_id
            )),
        ),
        ("version_name", json!("2.3.1")),
    ];
    serde_json::Value::Object(
        fields
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    )
    .to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_export_holds_its_planted_cases() {
        let export = AmplitudeExport::generate(&ExportSpec::default());
        assert!(export.events.len() > 1_000, "{}", export.events.len());
        let days: BTreeSet<String> = export.files.iter().map(|f| f.day.clone()).collect();
        assert!(days.len() >= 3, "{days:?}");
        assert!(export.events.iter().any(|e| e.user.is_none()));
        let users: BTreeSet<_> = export
            .events
            .iter()
            .filter_map(|e| e.user.clone())
            .collect();
        assert!(users.len() >= 6, "{users:?}");
        assert!(export.events.iter().any(|e| e.session_id == Some(-1)));
        assert_eq!(
            export.files.iter().filter(|f| f.lines.is_empty()).count(),
            1
        );
        assert!(export.files.iter().any(|f| f.path.ends_with("#1.json.gz")));
        assert!(export.events_off_their_file_day() > 0);
        let lines: usize = export.files.iter().map(|f| f.lines.len()).sum();
        assert_eq!(lines, export.events.len());
        assert_eq!(export, AmplitudeExport::generate(&ExportSpec::default()));
    }

    #[test]
    fn gzip_members_decode_to_the_lines() {
        use std::io::Read;
        let lines = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&gzip_lines(&lines, 2)[..])
            .read_to_string(&mut text)
            .expect("gzip");
        assert_eq!(text, "a\nb\nc\n");
        let mut empty = String::new();
        flate2::read::MultiGzDecoder::new(&gzip_lines(&[], 1)[..])
            .read_to_string(&mut empty)
            .expect("gzip");
        assert_eq!(empty, "");
    }
}
