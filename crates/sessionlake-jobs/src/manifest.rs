//! The commit protocol. Outputs are written under a run-unique prefix (`runs/v<N>-<id>/`), never
//! over existing files; the run then commits by creating the manifest `_manifests/v<N>.json`
//! with a conditional put (`PutMode::Create`: `If-None-Match: *` on S3, a hard link on a local
//! disk). Version `N` is the committed version the run started from plus one, so of two runs
//! started from the same state exactly one can commit; the other gets `AlreadyExists` and exits
//! with the transient code. The current state is the manifest with the highest version; a
//! reader that follows it sees the old or the new state, never a mix.
//!
//! After the commit, `_current/<table>.txt` lists the current files of each table (one location
//! a line, for tools such as DuckDB that cannot follow a manifest) and prefixes that no manifest
//! can use any more are deleted.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, JobError, from_store};
use crate::location::Place;

/// The manifest format written by this version.
pub const MANIFEST_FORMAT: u32 = 1;
/// The directory of manifests under the sink.
pub const MANIFEST_DIR: &str = "_manifests";
/// The directory of run prefixes under the sink.
pub const RUNS_DIR: &str = "runs";
/// The directory of the per-table listings under the sink.
pub const CURRENT_DIR: &str = "_current";
/// The sessions table's name in the manifest.
pub const SESSIONS_TABLE: &str = "sessions";
/// The daily metrics table's name in the manifest.
pub const METRICS_TABLE: &str = "daily_metrics";
/// The alerts table's name in the manifest.
pub const ALERTS_TABLE: &str = "alerts";
/// The users table (`[outputs.users]`), one Parquet file for any sink format.
pub const USERS_TABLE: &str = "users";
/// The partition key of an unpartitioned table in the manifest.
pub const WHOLE_TABLE: &str = "all";

/// One committed state of a job's outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// 1 for the first commit, then one more per commit.
    pub version: u64,
    /// The job's name.
    pub job: String,
    /// The run that committed it; its files are under `runs/<run_id>/`.
    pub run_id: String,
    /// The settings the outputs were computed with (see `Job::fingerprint`).
    pub fingerprint: String,
    /// The latest source partition (`YYYY-MM-DD`) processed so far.
    pub watermark: Option<String>,
    /// Every processed source partition with a digest of its file listing, so that a partition
    /// that appears or changes later is processed again.
    pub partitions: BTreeMap<String, String>,
    /// Per table, per partition (`YYYY-MM-DD`, or `all` for an unpartitioned table), the file
    /// holding it, relative to the sink.
    pub tables: BTreeMap<String, BTreeMap<String, String>>,
    /// The run summary's file, relative to the sink.
    pub summary: Option<String>,
}

impl Manifest {
    /// The key of version `version`'s manifest, relative to the sink.
    pub fn relative_key(version: u64) -> String {
        format!("{MANIFEST_DIR}/v{version:010}.json")
    }

    /// The run directories (`runs/<id>`) this manifest's files are in.
    pub fn run_dirs(&self) -> BTreeSet<String> {
        self.tables
            .values()
            .flat_map(|t| t.values())
            .chain(self.summary.iter())
            .filter_map(|path| run_dir_of(path))
            .collect()
    }

    /// The current files of `table`, relative to the sink, in partition order.
    pub fn files(&self, table: &str) -> Vec<String> {
        self.tables
            .get(table)
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }
}

fn run_dir_of(path: &str) -> Option<String> {
    let mut parts = path.split('/');
    match (parts.next(), parts.next()) {
        (Some(RUNS_DIR), Some(id)) => Some(format!("{RUNS_DIR}/{id}")),
        _ => None,
    }
}

fn version_of(file_name: &str) -> Option<u64> {
    file_name
        .strip_prefix('v')?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// The manifest versions present under the sink, ascending.
pub async fn versions(sink: &Place) -> Result<Vec<u64>, JobError> {
    let dir = sink.key(MANIFEST_DIR);
    let listed = sink
        .store
        .list_with_delimiter(Some(&dir))
        .await
        .map_err(|e| from_store(e, format!("listing {}/{MANIFEST_DIR}", sink.shown)))?;
    let mut versions: Vec<u64> = listed
        .objects
        .iter()
        .filter_map(|o| o.location.filename().and_then(version_of))
        .collect();
    versions.sort_unstable();
    Ok(versions)
}

/// Reads manifest `version`.
pub async fn read_version(sink: &Place, version: u64) -> Result<Manifest, JobError> {
    let relative = Manifest::relative_key(version);
    let key = sink.key(&relative);
    let bytes = sink
        .store
        .get(&key)
        .await
        .map_err(|e| from_store(e, format!("reading {}/{relative}", sink.shown)))?
        .bytes()
        .await
        .map_err(|e| from_store(e, format!("reading {}/{relative}", sink.shown)))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        JobError::failed(format!(
            "{}/{relative}: not a job manifest: {e}",
            sink.shown
        ))
    })
}

/// The committed state: the manifest with the highest version, or `None` before the first
/// commit. This is how a reader finds the current files.
pub async fn read_current(sink: &Place) -> Result<Option<Manifest>, JobError> {
    match versions(sink).await?.last() {
        Some(version) => read_version(sink, *version).await.map(Some),
        None => Ok(None),
    }
}

/// Commits `manifest` (whose version must be the current version plus one). Loses with a
/// transient error when another run committed that version first.
pub async fn commit(sink: &Place, manifest: &Manifest) -> Result<(), JobError> {
    let relative = Manifest::relative_key(manifest.version);
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| JobError::failed(format!("manifest: {e}")))?;
    let options = PutOptions::from(PutMode::Create);
    match sink
        .store
        .put_opts(&sink.key(&relative), PutPayload::from(json), options)
        .await
    {
        Ok(_) => Ok(()),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Err(JobError::transient(format!(
            "{}/{relative}: another run of job '{}' committed version {} first; this run's \
                 outputs were discarded (rerun to process what is left)",
            sink.shown, manifest.job, manifest.version
        ))),
        Err(e) => Err(from_store(
            e,
            format!("committing {}/{relative}", sink.shown),
        )),
    }
}

/// The name of `table`'s listing file under `_current/`.
pub fn listing_key(table: &str) -> String {
    format!("{CURRENT_DIR}/{}.txt", table.replace('/', "."))
}

/// Writes `_current/<table>.txt` for every table of `manifest`: the location of each current
/// file, one a line (an absolute path on a local disk, an `s3://` URL on S3).
pub async fn write_listings(sink: &Place, manifest: &Manifest) -> Result<(), JobError> {
    for (table, files) in &manifest.tables {
        let mut text = String::new();
        for relative in files.values() {
            text.push_str(&reader_location(sink, relative));
            text.push('\n');
        }
        let key = sink.key(&listing_key(table));
        sink.store
            .put(&key, PutPayload::from(text.into_bytes()))
            .await
            .map_err(|e| from_store(e, format!("writing {}/{}", sink.shown, listing_key(table))))?;
    }
    Ok(())
}

/// Where a reader outside sessionlake finds the file at `relative`.
pub fn reader_location(sink: &Place, relative: &str) -> String {
    let key = sink.key(relative);
    if sink.store_url.scheme() == "file" {
        format!("/{}", key.as_ref())
    } else {
        sink.url(&key)
    }
}

/// Deletes the run prefixes that no run can use any more: those of version at most `current`
/// (a run of version `v` can only commit `v`, so once `v` is committed every other prefix of
/// version `v` or lower belongs to a run that lost or died) that neither `current` nor the
/// previous manifest reference (a reader may still be reading the previous state). Returns the
/// number of prefixes deleted.
pub async fn clean_up(sink: &Place, current: &Manifest) -> Result<usize, JobError> {
    let mut keep = current.run_dirs();
    if current.version > 1 {
        match read_version(sink, current.version - 1).await {
            Ok(previous) => keep.extend(previous.run_dirs()),
            Err(e) if e.kind == ErrorKind::Failed => return Err(e),
            Err(_) => {}
        }
    }
    let listed = sink
        .store
        .list_with_delimiter(Some(&sink.key(RUNS_DIR)))
        .await
        .map_err(|e| from_store(e, format!("listing {}/{RUNS_DIR}", sink.shown)))?;
    let mut deleted = 0;
    for prefix in listed.common_prefixes {
        let Some(name) = prefix.filename() else {
            continue;
        };
        let Some(version) = version_of_run(name) else {
            continue;
        };
        let dir = format!("{RUNS_DIR}/{name}");
        if version > current.version || keep.contains(&dir) {
            continue;
        }
        delete_prefix(sink, &prefix).await?;
        deleted += 1;
    }
    Ok(deleted)
}

/// The version of a run id (`v0000000003-ab12cd34` is of version 3).
pub fn version_of_run(run_id: &str) -> Option<u64> {
    run_id
        .strip_prefix('v')
        .and_then(|rest| rest.split('-').next())
        .and_then(|v| v.parse().ok())
}

/// Deletes every object under `prefix` (and, on a local disk, the directories left empty). An
/// object that is already gone counts as deleted: a losing run deletes its own prefix while the
/// winner's clean-up may be deleting it too.
pub async fn delete_prefix(
    sink: &Place,
    prefix: &object_store::path::Path,
) -> Result<(), JobError> {
    let store = sink.store.clone();
    let locations = store
        .list(Some(prefix))
        .map_ok(|meta| meta.location)
        .boxed();
    let outcomes: Vec<_> = sink.store.delete_stream(locations).collect().await;
    for outcome in outcomes {
        match outcome {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                let shown = sink.relative(prefix).unwrap_or_default();
                return Err(from_store(e, format!("deleting {}/{shown}", sink.shown)));
            }
        }
    }
    remove_empty_dirs(sink, prefix);
    Ok(())
}

/// A local disk keeps empty directories after their files are deleted; remove them.
fn remove_empty_dirs(sink: &Place, prefix: &object_store::path::Path) {
    if sink.store_url.scheme() != "file" {
        return;
    }
    let dir = std::path::PathBuf::from(format!("/{}", prefix.as_ref()));
    if dir.is_dir() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(Manifest::relative_key(12), "_manifests/v0000000012.json");
        assert_eq!(version_of("v0000000012.json"), Some(12));
        assert_eq!(version_of("v12.tmp"), None);
        assert_eq!(
            run_dir_of("runs/v0000000003-ab12/sessions/x.parquet").as_deref(),
            Some("runs/v0000000003-ab12")
        );
        assert_eq!(listing_key("exports/short"), "_current/exports.short.txt");
        assert_eq!(version_of_run("v0000000003-ab12cd34"), Some(3));
        assert_eq!(version_of_run("part-0.parquet"), None);
    }
}
