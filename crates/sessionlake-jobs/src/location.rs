//! A job's source and sink: the engine's [`Location`] (a local directory or an `s3://bucket/prefix`),
//! opened as one [`ObjectStore`] so that both go through the same code.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
pub use sessionlake_engine::location::{Location, S3Settings};
use url::Url;

use crate::error::JobError;

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
    pub fn open(location: &Location, storage: &S3Settings) -> Result<Self, JobError> {
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
                let store = storage
                    .builder(bucket)
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
