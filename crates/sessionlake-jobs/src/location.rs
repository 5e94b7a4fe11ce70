//! Where a lake or a sink lives: a local directory or an `s3://bucket/prefix`, opened as one
//! [`ObjectStore`] so that both go through the same code.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use url::Url;

use crate::error::JobError;
use crate::job_file::StorageSettings;

/// A local directory or an S3 prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory (absolute once parsed).
    Local(PathBuf),
    /// A bucket and a key prefix without slashes at either end (may be empty).
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Parses `s3://bucket/prefix` or a path; a relative path is taken relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("'{text}' names no bucket"));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if text.contains("://") {
            return Err(format!(
                "'{text}': only local paths and s3:// URLs are supported"
            ));
        }
        let path = Path::new(text);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            let base = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base
            };
            std::path::absolute(base.join(path))
                .map_err(|e| format!("'{text}': cannot make the path absolute: {e}"))?
        };
        Ok(Self::Local(normalize(&path)))
    }
}

/// Removes `.` and `a/..` components without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// An opened location: the store, the key prefix inside it, and the URL DataFusion reads it by.
#[derive(Debug, Clone)]
pub struct Place {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The prefix of every key of this place inside `store`.
    pub prefix: StorePath,
    /// The URL of the store's root (`file:///` or `s3://bucket/`), to register with DataFusion.
    pub store_url: Url,
    /// What to show in messages.
    pub shown: String,
}

impl Place {
    /// Opens `location`; S3 settings come from `storage`, then from the `AWS_*` environment.
    pub fn open(location: &Location, storage: &StorageSettings) -> Result<Self, JobError> {
        match location {
            Location::Local(dir) => {
                let prefix = StorePath::from_absolute_path(dir).map_err(|e| {
                    JobError::config(format!("{}: not a usable path: {e}", dir.display()))
                })?;
                let store_url = Url::parse("file:///")
                    .map_err(|e| JobError::failed(format!("file URL: {e}")))?;
                Ok(Self {
                    store: Arc::new(LocalFileSystem::new()),
                    prefix,
                    store_url,
                    shown: dir.display().to_string(),
                })
            }
            Location::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = &storage.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(region) = &storage.region {
                    builder = builder.with_region(region);
                }
                if storage.allow_http {
                    builder = builder.with_allow_http(true);
                }
                let store = builder
                    .build()
                    .map_err(|e| JobError::config(format!("s3://{bucket}: {e}")))?;
                let store_url = Url::parse(&format!("s3://{bucket}/"))
                    .map_err(|e| JobError::config(format!("s3://{bucket}: {e}")))?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: StorePath::from(prefix.as_str()),
                    store_url,
                    shown: location.to_string(),
                })
            }
        }
    }

    /// The store key of `relative` (slash-separated) under this place.
    pub fn key(&self, relative: &str) -> StorePath {
        let mut key = self.prefix.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            key = key.join(part);
        }
        key
    }

    /// The key relative to this place, if `key` is under it.
    pub fn relative(&self, key: &StorePath) -> Option<String> {
        let parts: Vec<_> = key
            .prefix_match(&self.prefix)?
            .map(|p| p.as_ref().to_string())
            .collect();
        Some(parts.join("/"))
    }

    /// The URL DataFusion reads the object at `key` by.
    pub fn url(&self, key: &StorePath) -> String {
        format!("{}{}", self.store_url, key.as_ref())
    }
}
