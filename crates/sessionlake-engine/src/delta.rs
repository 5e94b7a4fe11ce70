//! Delta Lake tables read through their transaction log: which version to read, whether a prefix
//! holds a Delta table, and the table at that version as a DataFusion [`TableProvider`].
//!
//! Semantics:
//! - A Delta table is a directory (or object-store prefix) whose `_delta_log/` holds a commit
//!   file (`00000000000000000003.json`) or a checkpoint. Its rows are those of the data files the
//!   log lists as live at the chosen version; files the log has removed (by a delete, an
//!   overwrite, a compaction) are never read, even though they stay on disk until a vacuum.
//! - [`DeltaVersion::Latest`] is the newest committed version; [`DeltaVersion::Version`] that
//!   version exactly, an error if it is past the newest or its log is gone;
//!   [`DeltaVersion::Timestamp`] the newest version committed at or before that instant (a commit's
//!   time is its log file's modification time, as delta-rs and Spark take it): a time after the
//!   newest commit reads the newest version, a time before the first commit is an error.
//! - Partition columns of the table are columns of the provider, after the data columns.
//! - Every object is read through the store the session's `RuntimeEnv` has registered for the
//!   table's URL (`file://` is registered by DataFusion; `s3://bucket` by whoever set up the
//!   session), so one store configuration serves Parquet lakes and Delta tables alike.
//! - Errors are one line naming the table URL and the version asked for.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result, plan_datafusion_err};
use datafusion::execution::object_store::ObjectStoreUrl;
use deltalake::delta_datafusion::{DeltaScanConfig, DeltaScanNext};
use deltalake::logstore::{LogStoreRef, StorageConfig, commit_uri_from_version, default_logstore};
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::layout::DELTA_LOG_DIR;
use crate::one_line;

/// Which version of a Delta table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeltaVersion {
    /// The newest committed version.
    #[default]
    Latest,
    /// This version exactly (versions count commits from 0). A signed number like the protocol's
    /// `long`; a negative one is refused when the table is opened.
    Version(i64),
    /// The newest version committed at or before this instant.
    Timestamp(DateTime<Utc>),
}

impl FromStr for DeltaVersion {
    type Err = DataFusionError;

    /// Parses the text after a table location's `@`: `latest`, a version number (`3`) or an
    /// RFC 3339 timestamp (`2024-01-05T00:00:00Z`, `2024-01-05T01:00:00+01:00`).
    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("latest") {
            return Ok(Self::Latest);
        }
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse::<i64>().map(Self::Version).map_err(|_| {
                plan_datafusion_err!("Delta version {text:?} is too large for a version number")
            });
        }
        if let Some(digits) = text.strip_prefix('-')
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(plan_datafusion_err!(
                "Delta version {text:?} is negative: versions count commits from 0"
            ));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|time| Self::Timestamp(time.with_timezone(&Utc)))
            .map_err(|e| {
                plan_datafusion_err!(
                    "Delta version {text:?} is neither a version number (3) nor an RFC 3339 \
                     timestamp (2024-01-05T00:00:00Z): {e}"
                )
            })
    }
}

impl fmt::Display for DeltaVersion {
    /// The phrase errors use: `latest version`, `version 3`, `version as of 2024-01-05T00:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => write!(f, "latest version"),
            Self::Version(version) => write!(f, "version {version}"),
            Self::Timestamp(time) => write!(f, "version as of {}", rfc3339(time)),
        }
    }
}

/// Whether `prefix/_delta_log/` holds a commit file or a checkpoint, that is whether `prefix` is
/// the root of a Delta table. Files in subdirectories of the log do not count (the protocol
/// ignores them); a missing prefix is simply not a table.
pub async fn is_delta_table(store: &dyn ObjectStore, prefix: &Path) -> Result<bool> {
    let log_dir = prefix.clone().join(DELTA_LOG_DIR);
    let mut listing = store.list(Some(&log_dir));
    while let Some(object) = listing.try_next().await? {
        let mut parts = match object.location.prefix_match(&log_dir) {
            Some(parts) => parts,
            None => continue,
        };
        let (Some(name), None) = (parts.next(), parts.next()) else {
            continue;
        };
        if is_log_entry_name(name.as_ref()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A commit (`00000000000000000003.json`), a checkpoint
/// (`00000000000000000010.checkpoint.parquet`, multi-part or V2) or a compacted log file: twenty
/// digits of version, a dot, and a `.json` or `.parquet` ending.
fn is_log_entry_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 21
        && bytes[..20].iter().all(u8::is_ascii_digit)
        && bytes[20] == b'.'
        && (name.ends_with(".json") || name.ends_with(".parquet"))
}

/// The Delta table at `table_url`, at `version`, as a DataFusion [`TableProvider`] (delta-rs's
/// scan): its schema is the table's at that version, partition columns included, and scans read
/// only the files live at that version.
///
/// The log and the data files are read through the object store `state`'s `RuntimeEnv` has
/// registered for `table_url`; an unregistered scheme or bucket is an error naming the URL.
pub async fn open_delta_table(
    state: &dyn Session,
    table_url: &Url,
    version: DeltaVersion,
) -> Result<Arc<dyn TableProvider>> {
    let fail = |reason: String| {
        DataFusionError::Plan(one_line(&format!(
            "delta table {table_url} ({version}): {reason}"
        )))
    };
    let delta_error = |e: DeltaTableError| fail(e.to_string());

    let log_store = session_log_store(state, table_url).map_err(fail)?;
    // Checked first so that a plain Parquet directory gets this message, not delta-rs's.
    if !is_delta_table(log_store.object_store(None).as_ref(), &Path::default())
        .await
        .map_err(|e| fail(e.to_string()))?
    {
        return Err(fail(format!(
            "not a Delta table: no commit file under {DELTA_LOG_DIR}/"
        )));
    }

    let mut table = DeltaTable::new(log_store);
    match version {
        DeltaVersion::Latest => table.load().await.map_err(delta_error)?,
        DeltaVersion::Version(wanted) => {
            let Ok(wanted_version) = u64::try_from(wanted) else {
                return Err(fail(format!(
                    "version {wanted} is negative: versions count commits from 0"
                )));
            };
            let latest = table.get_latest_version().await.map_err(delta_error)?;
            if wanted_version > latest {
                return Err(fail(format!(
                    "version {wanted} does not exist: the table's latest version is {latest}"
                )));
            }
            table
                .load_version(wanted_version)
                .await
                .map_err(delta_error)?;
        }
        DeltaVersion::Timestamp(time) => {
            table.load_with_datetime(time).await.map_err(delta_error)?;
            // delta-rs falls back to the first version for a time before it; the table did not
            // exist then, so that is an error rather than a silent read of version 0.
            let loaded = table.version().unwrap_or_default();
            let committed = commit_time(&table, loaded).await.map_err(delta_error)?;
            if committed > time {
                return Err(fail(format!(
                    "no version was committed at or before {}: the earliest readable version, \
                     {loaded}, was committed at {}",
                    rfc3339(&time),
                    rfc3339(&committed)
                )));
            }
        }
    }

    let snapshot = table.snapshot().map_err(delta_error)?.snapshot().clone();
    let scan = DeltaScanNext::new(snapshot, DeltaScanConfig::new_from_session(state))
        .map_err(|e| fail(e.to_string()))?;
    Ok(Arc::new(scan))
}

/// The newest committed version of the Delta table at `table_url`, read through the store
/// `state`'s `RuntimeEnv` has registered for it. A reader that must know which version it read
/// opens that version with [`open_delta_table`] and [`DeltaVersion::Version`].
pub async fn latest_version(state: &dyn Session, table_url: &Url) -> Result<u64> {
    let fail = |reason: String| {
        DataFusionError::Plan(one_line(&format!("delta table {table_url}: {reason}")))
    };
    let log_store = session_log_store(state, table_url).map_err(fail)?;
    DeltaTable::new(log_store)
        .get_latest_version()
        .await
        .map_err(|e| fail(e.to_string()))
}

/// The log store of the table at `table_url` on the store `state` has registered for it.
fn session_log_store(state: &dyn Session, table_url: &Url) -> Result<LogStoreRef, String> {
    let root_store = ObjectStoreUrl::parse(&table_url[..url::Position::BeforePath])
        .and_then(|root| state.runtime_env().object_store(root))
        .map_err(|e| format!("no object store for this URL: {e}"))?;
    log_store_on(root_store, table_url).map_err(|e| e.to_string())
}

/// A log store for the table at `table_url` on `root_store` (a store whose `/` is the URL's
/// scheme and authority, as DataFusion's registry hands out). The default log store is built
/// directly rather than through delta-rs's per-scheme factories, which know only `file://` and
/// `memory://` without the cloud crates. Reading needs no scheme-specific protocol; writers
/// commit a version with a conditional put (`PutMode::Create`) on `root_store`, which on S3
/// is `If-None-Match: *`, so two writers of one version cannot both succeed.
pub fn log_store_on(
    root_store: Arc<dyn ObjectStore>,
    table_url: &Url,
) -> Result<LogStoreRef, DeltaTableError> {
    let config = StorageConfig::default();
    let table_store: Arc<dyn ObjectStore> =
        Arc::from(config.decorate_store(Arc::clone(&root_store), table_url)?);
    Ok(default_logstore(
        table_store,
        root_store,
        table_url,
        &config,
    ))
}

/// When `version` was committed: its log file's modification time.
async fn commit_time(table: &DeltaTable, version: u64) -> Result<DateTime<Utc>, DeltaTableError> {
    let listed = table
        .snapshot()
        .ok()
        .and_then(|state| state.version_timestamp(version))
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    if let Some(time) = listed {
        return Ok(time);
    }
    let commit = commit_uri_from_version(Some(version));
    Ok(table.object_store().head(&commit).await?.last_modified)
}

fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_timestamps() -> Result<()> {
        assert_eq!("3".parse::<DeltaVersion>()?, DeltaVersion::Version(3));
        assert_eq!(" 0 ".parse::<DeltaVersion>()?, DeltaVersion::Version(0));
        assert_eq!("latest".parse::<DeltaVersion>()?, DeltaVersion::Latest);
        let expected = DateTime::parse_from_rfc3339("2024-01-05T00:00:00Z")
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .with_timezone(&Utc);
        assert_eq!(
            "2024-01-05T00:00:00Z".parse::<DeltaVersion>()?,
            DeltaVersion::Timestamp(expected)
        );
        assert_eq!(
            "2024-01-05T01:00:00+01:00".parse::<DeltaVersion>()?,
            DeltaVersion::Timestamp(expected)
        );
        Ok(())
    }

    #[test]
    fn refuses_text_that_is_no_version() {
        let message = |text: &str| match text.parse::<DeltaVersion>() {
            Ok(version) => format!("parsed as {version:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            message("-1").contains("\"-1\" is negative"),
            "{}",
            message("-1")
        );
        assert!(
            message("99999999999999999999").contains("too large"),
            "{}",
            message("99999999999999999999")
        );
        for text in ["", "v3", "2024-01-05", "yesterday"] {
            assert!(
                message(text).contains("neither a version number (3) nor an RFC 3339 timestamp"),
                "{text:?}: {}",
                message(text)
            );
        }
    }

    #[test]
    fn displays_the_version_asked_for() -> Result<()> {
        assert_eq!(DeltaVersion::Latest.to_string(), "latest version");
        assert_eq!(DeltaVersion::Version(7).to_string(), "version 7");
        assert_eq!(
            "2024-01-05T00:00:00Z".parse::<DeltaVersion>()?.to_string(),
            "version as of 2024-01-05T00:00:00Z"
        );
        Ok(())
    }

    #[test]
    fn recognizes_log_entry_names() {
        for name in [
            "00000000000000000000.json",
            "00000000000000000010.checkpoint.parquet",
            "00000000000000000010.checkpoint.0000000001.0000000002.parquet",
            "00000000000000000004.00000000000000000006.compacted.json",
        ] {
            assert!(is_log_entry_name(name), "{name}");
        }
        for name in [
            "_last_checkpoint",
            "00000000000000000000.crc",
            "0000000000000000000.json",
            "00000000000000000000.json.tmp",
            "part-0000.parquet",
        ] {
            assert!(!is_log_entry_name(name), "{name}");
        }
    }
}
