//! The object stores of a scheduler or an executor: those of the command line
//! (`sessionlake_cli::lake::StoreRegistry`: local files, and each `s3://` bucket's client made on
//! first use from the `AWS_*` variables and `--s3-endpoint`), with every S3 error naming the
//! process that met it and the bucket, so that a cluster whose executor cannot reach the store
//! fails with one line that says which executor and which URL.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::common::Result;
use datafusion::execution::object_store::ObjectStoreRegistry;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, Error, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use sessionlake_cli::lake::StoreRegistry;
use sessionlake_engine::location::S3Settings;
use sessionlake_engine::one_line;
use url::Url;

/// [`StoreRegistry`] for the process `role` (`executor HOST:PORT`, `the scheduler`), whose S3
/// stores name `role` and their bucket in their errors.
#[derive(Debug)]
pub struct RoleStores {
    stores: StoreRegistry,
    role: String,
}

impl RoleStores {
    /// The stores of `role`, reaching S3 with `s3` and the `AWS_*` variables.
    pub fn new(s3: S3Settings, role: impl Into<String>) -> Self {
        Self {
            stores: StoreRegistry::new(s3),
            role: role.into(),
        }
    }
}

impl ObjectStoreRegistry for RoleStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.stores.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let store = self.stores.get_store(url)?;
        if !url.scheme().eq_ignore_ascii_case("s3") {
            return Ok(store);
        }
        let bucket = url.host_str().unwrap_or_default();
        Ok(Arc::new(NamedStore {
            inner: store,
            place: format!("{} reading s3://{bucket}/", self.role),
        }))
    }
}

/// A store whose failures (but not-found and the other answers callers act on) say `place`.
#[derive(Debug)]
struct NamedStore {
    inner: Arc<dyn ObjectStore>,
    place: String,
}

impl fmt::Display for NamedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.inner, self.place)
    }
}

/// `error` as one line after `place`; the kinds that callers match on are kept as they are.
fn named(place: &str, error: Error) -> Error {
    match error {
        Error::NotFound { .. }
        | Error::AlreadyExists { .. }
        | Error::Precondition { .. }
        | Error::NotModified { .. } => error,
        other => Error::Generic {
            store: "S3",
            source: format!("{place}: {}", one_line(&other.to_string())).into(),
        },
    }
}

impl NamedStore {
    fn name<T>(&self, result: object_store::Result<T>) -> object_store::Result<T> {
        result.map_err(|e| named(&self.place, e))
    }
}

#[async_trait]
impl ObjectStore for NamedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.name(self.inner.put_opts(location, payload, opts).await)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.name(self.inner.put_multipart_opts(location, opts).await)
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.name(self.inner.get_opts(location, options).await)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.name(self.inner.get_ranges(location, ranges).await)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let place = self.place.clone();
        self.inner
            .delete_stream(locations)
            .map(move |result| result.map_err(|e| named(&place, e)))
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let place = self.place.clone();
        self.inner
            .list(prefix)
            .map(move |result| result.map_err(|e| named(&place, e)))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.name(self.inner.list_with_delimiter(prefix).await)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.name(self.inner.copy_opts(from, to, options).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_place_but_not_found_stays_not_found() {
        let place = "executor 10.0.0.7:50051 reading s3://events/";
        let failed = named(
            place,
            Error::Generic {
                store: "S3",
                source: "error sending request\n  connection refused".into(),
            },
        );
        assert_eq!(
            failed.to_string(),
            "Generic S3 error: executor 10.0.0.7:50051 reading s3://events/: Generic S3 error: \
             error sending request connection refused"
        );
        let missing = named(
            place,
            Error::NotFound {
                path: "lake/x.parquet".into(),
                source: "no such key".into(),
            },
        );
        assert!(matches!(missing, Error::NotFound { .. }));
    }
}
