//! Lake discovery: which files under a directory or object-store prefix are a lake's data, how
//! they are partitioned and what their merged schema is. Every way a lake is named goes
//! through here: `CREATE EXTERNAL TABLE ... STORED AS PARQUET` (the [`LakeTableFactory`] that
//! [`crate::register_all`] installs, and so `--lake`, lake jobs and the Ballista client), and a
//! path or URL where a table name is expected (`FROM 'data/lake/'`, `sessions('s3://b/p/')`).
//!
//! The rules, as Spark and Hive read a table directory:
//! - A file or directory whose name starts with `_` or `.` is not data, at the root and at every
//!   level below it: `_SUCCESS`, `_committed_*`, `_started_*`, `_metadata`, `.part-0.parquet.crc`,
//!   `.DS_Store`, `_temporary/`, `.hive-staging*/`. Other files not ending in `.parquet` are
//!   ignored too.
//! - Data files sit in the root or below `key=value` directories, to any depth
//!   (`dt=2024-01-01/hour=07/`); every data file has the same keys in the same order, and each
//!   key becomes a string column. A Parquet file below a directory that is not `key=value` is
//!   an error naming it; when that is where all the data is (the lake is one level down), the
//!   error names the directories to use instead.
//! - The table's schema is the union of the files' columns in the order first seen (files in
//!   path order); a column missing from a file reads as NULL there. A column whose type
//!   differs between two files is an error naming both files and types.
//! - A directory holding `_delta_log/` is a Delta Lake table: it is read through its log
//!   ([`crate::delta`]), at the version or time an `@3` / `@2024-01-05T00:00:00Z` suffix of the
//!   location names, and never as a plain listing, which would count files the log has
//!   removed.
//! - Symbolic links are followed (a broken or looping link is an error naming it).
//!
//! Errors are [`LakeError`]s inside DataFusion's error: one line that names the location.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{ScanArgs, ScanResult};
use datafusion::catalog::{Session, TableProvider, TableProviderFactory, UrlTableFactory};
use datafusion::common::Constraints;
use datafusion::common::{DataFusionError, Result, exec_datafusion_err};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::listing_table_factory::ListingTableFactory;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{CreateExternalTable, Expr, TableProviderFilterPushDown, TableType};
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{Error as StoreError, ObjectMeta, ObjectStore, ObjectStoreExt};
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use parking_lot::RwLock;

use crate::layout::{DELTA_LOG_DIR, PARQUET_EXTENSION, is_hidden};
use crate::one_line;

/// Footers read at once while the schema is inferred.
const FOOTER_CONCURRENCY: usize = 32;

/// Whether a table name is a path or URL to read directly: it holds `://` or `/`, or ends in
/// `.parquet`.
pub fn is_location(name: &str) -> bool {
    name.contains("://")
        || name.contains('/')
        || name.to_ascii_lowercase().ends_with(PARQUET_EXTENSION)
}

/// The partition key of a `key=value` directory name.
fn partition_key(dir: &str) -> Option<&str> {
    dir.split_once('=')
        .map(|(key, _)| key)
        .filter(|key| !key.is_empty())
}

/// A lake that cannot be read as asked, in one line naming the location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeError(pub String);

impl fmt::Display for LakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LakeError {}

fn lake_error(message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(LakeError(message.into())))
}

/// The [`LakeError`] inside `error`, if that is what it is.
pub fn find_lake_error(error: &DataFusionError) -> Option<&LakeError> {
    match error.find_root() {
        DataFusionError::External(inner) => inner.downcast_ref::<LakeError>(),
        _ => None,
    }
}

/// What discovery found: the data files, their partition keys and their merged schema.
#[derive(Debug, Clone)]
pub struct LakeLayout {
    /// Where the lake is: a directory URL (ending in `/`) or one file.
    pub url: ListingTableUrl,
    /// The data files, in path order.
    pub files: Vec<ObjectMeta>,
    /// The `key` of each `key=value` directory level, outermost first.
    pub partition_columns: Vec<String>,
    /// The union of the files' columns, partition columns not included.
    pub file_schema: SchemaRef,
}

/// How a lake location is shown in messages: the path for local files, the URL otherwise.
fn shown(url: &ListingTableUrl) -> String {
    let text = url.as_str();
    match text.strip_prefix("file://") {
        Some(path) => path.to_string(),
        None => text.to_string(),
    }
}

/// A file's path below the lake root, for messages.
fn relative(url: &ListingTableUrl, file: &ObjectPath) -> String {
    match url.strip_prefix(file) {
        Some(parts) => parts.collect::<Vec<_>>().join("/"),
        None => file.to_string(),
    }
}

/// Finds the data files of the lake at `location` (a path or URL), checks their layout and
/// merges their schemas with `format`, per the rules in the module documentation. A Delta
/// table is refused here; [`open_lake`] reads it through its log.
pub async fn discover(
    state: &dyn Session,
    location: &str,
    format: &Arc<dyn FileFormat>,
) -> Result<LakeLayout> {
    let url = ListingTableUrl::parse(location)
        .map_err(|e| lake_error(format!("'{location}' is not a path or URL: {e}")))?;
    let store = state.runtime_env().object_store(&url)?;
    let (url, files) = list_data_files(&store, url).await?;
    let partition_columns = check_partitions(&url, &files)?;
    let file_schema = merged_schema(state, &store, &url, &files, format).await?;
    if let Some(both) = partition_columns
        .iter()
        .find(|key| file_schema.field_with_name(key).is_ok())
    {
        return Err(lake_error(format!(
            "lake {}: '{both}' is both a partition directory key and a column in the files; \
             a lake keeps partition values in its directory names only",
            shown(&url)
        )));
    }
    Ok(LakeLayout {
        url,
        files,
        partition_columns,
        file_schema,
    })
}

/// Lists the data files of the lake at `url`: one file, or every `.parquet` file below a
/// directory that is not hidden. A URL without a trailing `/` that names no object is read as a
/// directory.
async fn list_data_files(
    store: &Arc<dyn ObjectStore>,
    url: ListingTableUrl,
) -> Result<(ListingTableUrl, Vec<ObjectMeta>)> {
    if !url.is_collection() {
        match store.head(url.prefix()).await {
            Ok(meta) => return Ok((url, vec![meta])),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => {
                return Err(lake_error(format!("cannot read {}: {e}", shown(&url))));
            }
        }
        let directory = format!("{}/", url.as_str());
        let url = ListingTableUrl::parse(&directory)
            .map_err(|e| lake_error(format!("'{directory}' is not a URL: {e}")))?;
        return Box::pin(list_data_files(store, url)).await;
    }
    if let Ok(root) = url.get_url().to_file_path() {
        // the local store skips links to nothing; a lake with one is refused instead
        check_links(&root, &root, &mut HashSet::new())
            .map_err(|message| lake_error(format!("lake {}: {message}", shown(&url))))?;
    }
    let mut listing = store.list(Some(url.prefix()));
    let mut files = Vec::new();
    let mut outside = Vec::new();
    let mut skipped = Vec::new();
    let mut is_delta = false;
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|e| {
            lake_error(format!(
                "cannot list {}: {}",
                shown(&url),
                one_line(&e.to_string())
            ))
        })?;
        let Some(parts) = url.strip_prefix(&meta.location) else {
            continue;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((name, dirs)) = parts.split_last() else {
            continue;
        };
        if dirs.first() == Some(&DELTA_LOG_DIR) {
            is_delta = true;
        }
        if parts.iter().any(|part| is_hidden(part)) {
            continue;
        }
        if !name.ends_with(PARQUET_EXTENSION) {
            skipped.push(relative(&url, &meta.location));
            continue;
        }
        if dirs.iter().all(|dir| partition_key(dir).is_some()) {
            files.push(meta);
        } else {
            outside.push(meta);
        }
    }
    if is_delta {
        return Err(lake_error(format!(
            "{} is a Delta Lake table ({DELTA_LOG_DIR}/): it is read through its log, which \
             this build of sessionlake cannot do (the engine's `delta` feature is off)",
            shown(&url)
        )));
    }
    files.sort_by(|a, b| a.location.cmp(&b.location));
    outside.sort_by(|a, b| a.location.cmp(&b.location));
    if let Some(stray) = outside.first() {
        let stray_path = relative(&url, &stray.location);
        if files.is_empty() {
            return Err(lake_error(nested_lake_message(&url, &outside)));
        }
        return Err(lake_error(format!(
            "lake {}: '{stray_path}' is below a directory that is not a key=value partition; \
             a lake keeps its data files in its root or in key=value directories (names \
             starting with '_' or '.' are skipped)",
            shown(&url)
        )));
    }
    if files.is_empty() {
        skipped.sort();
        let found = match skipped.first() {
            Some(example) => format!(
                " (found {} other file{}, such as '{example}')",
                skipped.len(),
                if skipped.len() == 1 { "" } else { "s" }
            ),
            None => String::new(),
        };
        return Err(lake_error(format!(
            "no {PARQUET_EXTENSION} data files in {}{found}; names starting with '_' or '.' \
             are not data",
            shown(&url)
        )));
    }
    Ok((url, files))
}

/// Looks below `dir` (not into hidden entries) for a symbolic link whose target does not
/// exist; the error names it relative to `root`. `seen` holds the directories already looked
/// at, so that a link back up the tree ends the walk.
fn check_links(
    root: &std::path::Path,
    dir: &std::path::Path,
    seen: &mut HashSet<std::path::PathBuf>,
) -> Result<(), String> {
    if let Ok(real) = std::fs::canonicalize(dir)
        && !seen.insert(real)
    {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        // a missing or unreadable directory is the listing's to report
        return Ok(());
    };
    for entry in entries.flatten() {
        if is_hidden(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        match std::fs::metadata(&path) {
            Err(_) if is_link => {
                let target = std::fs::read_link(&path).unwrap_or_default();
                let name = path.strip_prefix(root).unwrap_or(&path);
                return Err(format!(
                    "'{}' is a symbolic link to '{}', which does not exist",
                    name.display(),
                    target.display()
                ));
            }
            Ok(meta) if meta.is_dir() => check_links(root, &path, seen)?,
            _ => {}
        }
    }
    Ok(())
}

/// The message for a lake whose data files all sit below plain directories: which
/// directories hold them.
fn nested_lake_message(url: &ListingTableUrl, outside: &[ObjectMeta]) -> String {
    // each file's lake root: its path up to the last directory that is not key=value
    let roots: BTreeSet<String> = outside
        .iter()
        .filter_map(|meta| {
            let parts: Vec<&str> = url.strip_prefix(&meta.location)?.collect();
            let (_, dirs) = parts.split_last()?;
            let last_plain = dirs.iter().rposition(|dir| partition_key(dir).is_none())?;
            Some(format!("{}/", dirs[..=last_plain].join("/")))
        })
        .collect();
    let mut named: Vec<String> = roots
        .iter()
        .take(3)
        .map(|root| format!("'{}{root}'", shown(url)))
        .collect();
    if roots.len() > 3 {
        named.push(format!("and {} more", roots.len() - 3));
    }
    format!(
        "no data files directly in {} or in key=value partitions below it; the Parquet files \
         are below {}: name {} as the lake",
        shown(url),
        named.join(", "),
        if roots.len() == 1 {
            "that directory"
        } else {
            "one of those directories"
        }
    )
}

/// The partition keys every file shares, outermost first; an error naming two files whose
/// keys differ.
fn check_partitions(url: &ListingTableUrl, files: &[ObjectMeta]) -> Result<Vec<String>> {
    let keys_of = |meta: &ObjectMeta| -> Vec<String> {
        let parts: Vec<&str> = url
            .strip_prefix(&meta.location)
            .map(|parts| parts.collect())
            .unwrap_or_default();
        let dirs = parts.split_last().map(|(_, dirs)| dirs).unwrap_or_default();
        dirs.iter()
            .filter_map(|dir| partition_key(dir))
            .map(str::to_string)
            .collect()
    };
    let Some(first) = files.first() else {
        return Ok(Vec::new());
    };
    let keys = keys_of(first);
    for file in &files[1..] {
        let other = keys_of(file);
        if other != keys {
            return Err(lake_error(format!(
                "lake {}: mixed partition layouts: '{}' is partitioned by ({}), '{}' by ({})",
                shown(url),
                relative(url, &first.location),
                keys.join(", "),
                relative(url, &file.location),
                other.join(", ")
            )));
        }
    }
    if let Some(repeated) = keys
        .iter()
        .enumerate()
        .find(|(i, key)| keys[..*i].contains(key))
    {
        return Err(lake_error(format!(
            "lake {}: partition key '{}' appears twice in '{}'",
            shown(url),
            repeated.1,
            relative(url, &first.location)
        )));
    }
    Ok(keys)
}

/// The union of the files' schemas, in the order columns are first seen; a column missing from
/// some file is nullable. A file that cannot be read, or a column whose type differs between two
/// files, is an error naming the files.
async fn merged_schema(
    state: &dyn Session,
    store: &Arc<dyn ObjectStore>,
    url: &ListingTableUrl,
    files: &[ObjectMeta],
    format: &Arc<dyn FileFormat>,
) -> Result<SchemaRef> {
    // collected first: a lazily mapped stream of borrowing futures is not `Send` as a whole
    let reads: Vec<_> = files
        .iter()
        .map(|file| file_schema(state, store, url, file, format))
        .collect();
    let schemas: Vec<SchemaRef> = futures::stream::iter(reads)
        .buffered(FOOTER_CONCURRENCY)
        .try_collect()
        .await?;

    // each column: its field, the file it was first seen in, and how many files have it
    let mut fields: Vec<(Field, usize, usize)> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for (file_index, schema) in schemas.iter().enumerate() {
        for field in schema.fields() {
            match position.get(field.name()) {
                None => {
                    position.insert(field.name().clone(), fields.len());
                    fields.push((field.as_ref().clone(), file_index, 1));
                }
                Some(&at) => {
                    let (seen, seen_in, count) = &mut fields[at];
                    if seen.data_type() != field.data_type() {
                        return Err(lake_error(format!(
                            "lake {}: column '{}' is {} in '{}' but {} in '{}'; the column's type \
                             changed between files",
                            shown(url),
                            field.name(),
                            seen.data_type(),
                            relative(url, &files[*seen_in].location),
                            field.data_type(),
                            relative(url, &files[file_index].location)
                        )));
                    }
                    *count += 1;
                }
            }
        }
    }
    let merged: Vec<Field> = fields
        .into_iter()
        .map(|(field, _, count)| {
            if count < schemas.len() {
                field.with_nullable(true)
            } else {
                field
            }
        })
        .collect();
    Ok(Arc::new(Schema::new(merged)))
}

/// The schema in the footer of `file`; an error naming the file when it cannot be read.
async fn file_schema(
    state: &dyn Session,
    store: &Arc<dyn ObjectStore>,
    url: &ListingTableUrl,
    file: &ObjectMeta,
    format: &Arc<dyn FileFormat>,
) -> Result<SchemaRef> {
    format
        .infer_schema(state, store, std::slice::from_ref(file))
        .await
        .map_err(|e| {
            lake_error(format!(
                "{}{}: not a readable Parquet file: {}",
                shown(url),
                relative(url, &file.location),
                one_line(&e.strip_backtrace())
            ))
        })
}

/// The type of partition columns: dictionary-encoded strings, as DataFusion's listing tables
/// infer them.
fn partition_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8))
}

/// Opens the lake at `location` (a path or URL) as a table, reading its files with `format`.
/// A Delta Lake table is read through its log, at the version an `@VERSION` or `@TIMESTAMP`
/// suffix names (`lake/@3`, `lake@2024-01-05T00:00:00Z`; the latest without one).
pub async fn open_lake(
    state: &dyn Session,
    location: &str,
    format: Arc<dyn FileFormat>,
) -> Result<Arc<dyn TableProvider>> {
    let (location, version) = split_version(location);
    if let Some(table) = open_delta(state, location, version).await? {
        return Ok(table);
    }
    if let Some(version) = version {
        return Err(lake_error(format!(
            "'{location}@{version}': a version can only be read from a Delta Lake table, and              {location} has no {DELTA_LOG_DIR}/"
        )));
    }
    let layout = discover(state, location, &format).await?;
    listing_table(state, layout, format)
}

/// `location` without an `@VERSION` / `@TIMESTAMP` suffix, and the suffix. Only a suffix that
/// reads as a version number or an RFC 3339 timestamp counts: other `@`s are part of the path.
pub fn split_version(location: &str) -> (&str, Option<&str>) {
    match location.rsplit_once('@') {
        Some((path, suffix))
            if !path.is_empty()
                && (suffix.bytes().all(|b| b.is_ascii_digit()) && !suffix.is_empty()
                    || chrono_like(suffix)) =>
        {
            (path, Some(suffix))
        }
        _ => (location, None),
    }
}

/// Whether `text` looks like an RFC 3339 timestamp (`2024-01-05T00:00:00Z`).
fn chrono_like(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 20
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[10] == b'T'
}

/// The Delta table at `location`, if it is one (and this build reads Delta tables).
#[cfg(feature = "delta")]
async fn open_delta(
    state: &dyn Session,
    location: &str,
    version: Option<&str>,
) -> Result<Option<Arc<dyn TableProvider>>> {
    use crate::delta::{DeltaVersion, is_delta_table, open_delta_table};
    let Ok(url) = ListingTableUrl::parse(location) else {
        return Ok(None);
    };
    let Ok(store) = state.runtime_env().object_store(&url) else {
        return Ok(None);
    };
    // a file, or a place that cannot be listed, is no Delta table; discovery reports the latter
    let is_file = !url.is_collection() && store.head(url.prefix()).await.is_ok();
    if is_file
        || !is_delta_table(store.as_ref(), url.prefix())
            .await
            .unwrap_or(false)
    {
        return Ok(None);
    }
    // the delta module's errors are one line naming the table; keep them without a prefix
    let plain = |e: DataFusionError| match e {
        DataFusionError::Plan(message) => lake_error(one_line(&message)),
        other => lake_error(one_line(&other.strip_backtrace())),
    };
    let version = match version {
        Some(text) => text.parse::<DeltaVersion>().map_err(plain)?,
        None => DeltaVersion::Latest,
    };
    let mut table_url = url.get_url().clone();
    if !table_url.path().ends_with('/') {
        table_url.set_path(&format!("{}/", table_url.path()));
    }
    open_delta_table(state, &table_url, version)
        .await
        .map(Some)
        .map_err(plain)
}

#[cfg(not(feature = "delta"))]
async fn open_delta(
    _state: &dyn Session,
    _location: &str,
    _version: Option<&str>,
) -> Result<Option<Arc<dyn TableProvider>>> {
    Ok(None)
}

/// The glob a lake directory's listing keeps files by: `.parquet` files whose names do not start
/// with `_` or `.`.
pub const DATA_FILE_GLOB: &str = "[!._]*.parquet";

/// A listing table over a discovered lake. Its scans list the lake again (it may have changed),
/// keeping only `.parquet` files whose names do not start with `_` or `.` in the root and in
/// `key=value` directories.
fn listing_table(
    state: &dyn Session,
    layout: LakeLayout,
    format: Arc<dyn FileFormat>,
) -> Result<Arc<dyn TableProvider>> {
    let (url, glob) = if layout.url.is_collection() {
        (layout.url.with_glob(DATA_FILE_GLOB)?, Some(DATA_FILE_GLOB))
    } else {
        (layout.url, None)
    };
    let partition_columns = layout
        .partition_columns
        .into_iter()
        .map(|key| (key, partition_type()))
        .collect();
    let options = ListingOptions::new(format)
        .with_file_extension(PARQUET_EXTENSION)
        .with_table_partition_cols(partition_columns);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(layout.file_schema);
    let table = ListingTable::try_new(config)?
        .with_cache(state.runtime_env().cache_manager.get_file_statistic_cache());
    Ok(Arc::new(LakeTable {
        listing: Arc::new(table),
        glob: glob.map(str::to_string),
    }))
}

/// A discovered lake: DataFusion's [`ListingTable`] and the glob its listing keeps files by.
///
/// It is its own type so that a plan codec can ship the glob: DataFusion's plan format writes a
/// listing table's locations without it, and a process that decodes the plan (a Ballista
/// scheduler) would list hidden `.parquet` files again. Everything else is the listing table's.
#[derive(Debug)]
pub struct LakeTable {
    listing: Arc<ListingTable>,
    glob: Option<String>,
}

impl LakeTable {
    /// The listing table (its locations without the glob).
    pub fn listing(&self) -> &Arc<ListingTable> {
        &self.listing
    }

    /// The glob of [`DATA_FILE_GLOB`] for a directory; `None` for a single file.
    pub fn glob(&self) -> Option<&str> {
        self.glob.as_deref()
    }

    /// The lake table of `listing` (as a decoded plan holds it: locations without a glob) with
    /// `glob` put back on its location.
    pub fn from_listing(listing: &ListingTable, glob: Option<&str>) -> Result<Self> {
        let [url] = listing.table_paths().as_slice() else {
            return Err(exec_datafusion_err!(
                "a lake table has one location, this one has {}",
                listing.table_paths().len()
            ));
        };
        let url = match glob {
            Some(glob) => url.clone().with_glob(glob)?,
            None => url.clone(),
        };
        let options = listing.options().clone();
        let partitions: HashSet<&str> = options
            .table_partition_cols
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        let table_schema = listing.schema();
        let file_fields: Vec<_> = table_schema
            .fields()
            .iter()
            .filter(|field| !partitions.contains(field.name().as_str()))
            .cloned()
            .collect();
        let file_schema = Schema::new_with_metadata(file_fields, table_schema.metadata().clone());
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(Arc::new(file_schema));
        Ok(Self {
            listing: Arc::new(ListingTable::try_new(config)?),
            glob: glob.map(str::to_string),
        })
    }
}

#[async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        self.listing.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.listing.constraints()
    }

    fn table_type(&self) -> TableType {
        self.listing.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.listing.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: ScanArgs<'a>,
    ) -> Result<ScanResult> {
        self.listing.scan_with_args(state, args).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.listing.supports_filters_pushdown(filters)
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.listing.get_table_definition()
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.listing.get_column_default(column)
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.listing.insert_into(state, input, insert_op).await
    }
}

/// The session's Parquet format with `options` (`CREATE EXTERNAL TABLE ... OPTIONS`) applied.
fn parquet_format(
    state: &dyn Session,
    options: &HashMap<String, String>,
) -> Result<Arc<dyn FileFormat>> {
    let state = session_state(state)?;
    let factory = state
        .get_file_format_factory("parquet")
        .ok_or_else(|| exec_datafusion_err!("this session has no Parquet file format"))?;
    factory.create(state, options)
}

fn session_state(state: &dyn Session) -> Result<&SessionState> {
    state
        .as_any()
        .downcast_ref::<SessionState>()
        .ok_or_else(|| exec_datafusion_err!("lake discovery needs a SessionState"))
}

/// Opens the lake at `location` (a path or URL) with the session's Parquet settings: what a
/// path where a table name is expected reads.
pub async fn open_location(state: &dyn Session, location: &str) -> Result<Arc<dyn TableProvider>> {
    let format = parquet_format(state, &HashMap::new())?;
    open_lake(state, location, format).await
}

/// `CREATE EXTERNAL TABLE ... STORED AS PARQUET LOCATION 'dir/'` through lake discovery.
/// Statements that declare columns, partition columns, an order or several locations keep
/// DataFusion's own listing table.
#[derive(Debug, Default)]
pub struct LakeTableFactory {
    declared: ListingTableFactory,
}

#[async_trait]
impl TableProviderFactory for LakeTableFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let [location] = cmd.locations.as_slice() else {
            return self.declared.create(state, cmd).await;
        };
        let declared = !cmd.schema.fields().is_empty()
            || !cmd.table_partition_cols.is_empty()
            || !cmd.order_exprs.is_empty();
        if declared {
            return self.declared.create(state, cmd).await;
        }
        let format = parquet_format(state, &cmd.options)?;
        open_lake(state, location, format).await
    }
}

/// Answers table names that are paths or URLs (`FROM 'data/lake/'`) with [`open_location`],
/// for DataFusion's dynamic file catalog.
#[derive(Debug, Default)]
pub struct LakeUrlTableFactory {
    state: OnceLock<Weak<RwLock<SessionState>>>,
}

impl LakeUrlTableFactory {
    /// Ties the factory to the session whose object stores and settings it reads with (once;
    /// later calls are ignored).
    pub fn with_state(&self, state: Weak<RwLock<SessionState>>) {
        let _ = self.state.set(state);
    }
}

#[async_trait]
impl UrlTableFactory for LakeUrlTableFactory {
    async fn try_new(&self, url: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if !is_location(url) {
            return Ok(None);
        }
        let state = self
            .state
            .get()
            .and_then(Weak::upgrade)
            .map(|state| state.read().clone());
        let Some(state) = state else {
            return Ok(None);
        };
        open_location(&state, url).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_names_and_partition_keys() {
        for hidden in ["_SUCCESS", "_temporary", ".crc", ".DS_Store", "_delta_log"] {
            assert!(is_hidden(hidden), "{hidden}");
        }
        for data in ["part-0.parquet", "event_date=2024-01-01", "x_y.parquet"] {
            assert!(!is_hidden(data), "{data}");
        }
        assert_eq!(partition_key("dt=2024-01-01"), Some("dt"));
        assert_eq!(partition_key("dt="), Some("dt"));
        assert_eq!(partition_key("=x"), None);
        assert_eq!(partition_key("events"), None);
    }

    #[test]
    fn version_suffixes_are_split_off() {
        assert_eq!(split_version("lake/@3"), ("lake/", Some("3")));
        assert_eq!(split_version("s3://b/lake@12"), ("s3://b/lake", Some("12")));
        assert_eq!(
            split_version("lake@2024-01-05T00:00:00Z"),
            ("lake", Some("2024-01-05T00:00:00Z"))
        );
        assert_eq!(split_version("me@host/lake/"), ("me@host/lake/", None));
        assert_eq!(split_version("lake@"), ("lake@", None));
        assert_eq!(split_version("@3"), ("@3", None));
    }

    #[test]
    fn locations_are_told_from_table_names() {
        for location in [
            "data/lake/",
            "s3://bucket/prefix/",
            "events.parquet",
            "X.PARQUET",
        ] {
            assert!(is_location(location), "{location}");
        }
        for name in ["events", "public.events", "my_table"] {
            assert!(!is_location(name), "{name}");
        }
    }
}
