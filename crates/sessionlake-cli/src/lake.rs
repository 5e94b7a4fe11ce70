//! `--lake NAME=URL`: a table name and where the lake lives (the engine's [`Location`]: a local
//! directory or `s3://bucket/prefix/`), registered as a hive-partitioned Parquet table after a
//! quick check that it is there.
//!
//! The check runs before DataFusion sees the lake so that a wrong path, an unreachable S3
//! endpoint, refused credentials, a missing bucket or an empty prefix each end in one line that
//! names the URL, instead of DataFusion's retries and nested error chain.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion::error::DataFusionError;
use datafusion::execution::object_store::{
    DefaultObjectStoreRegistry, ObjectStoreRegistry, ObjectStoreUrl,
};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use sessionlake_engine::lake::{LakeError, find_lake_error, split_version};
use sessionlake_engine::layout::PARQUET_EXTENSION;
use sessionlake_engine::location::{Location, S3Settings};
use sessionlake_engine::one_line;
use url::Url;

/// How long the whole check of an S3 lake may take, credentials included.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// A lake to register: a table name and where its files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeArg {
    /// The table name the lake is registered under.
    pub name: String,
    /// Where the lake's files are.
    pub location: Location,
}

impl LakeArg {
    /// Parses `NAME=PATH` or `NAME=s3://bucket[/prefix]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((name, location)) = text.split_once('=') else {
            return Err(format!(
                "--lake '{text}': expected NAME=PATH or NAME=s3://bucket/prefix/, for example \
                 events=data/sample_lake"
            ));
        };
        let name = name.trim();
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            return Err(format!(
                "--lake '{text}': table name '{name}' must be letters, digits and '_', not starting with a digit"
            ));
        }
        Ok(Self {
            name: name.to_string(),
            location: Location::parse(location).map_err(|e| format!("--lake '{text}': {e}"))?,
        })
    }
}

/// Registers the hive-partitioned Parquet lake `lake` as a table (partition columns come from
/// `key=value` directories, as `CREATE EXTERNAL TABLE ... STORED AS PARQUET` infers them), after
/// checking that it holds Parquet files. An S3 lake gets its bucket's object store registered on
/// `ctx` first. The error is one line, without the table name and URL (the caller has them).
pub async fn register_lake(
    ctx: &SessionContext,
    lake: &LakeArg,
    s3: &S3Settings,
) -> Result<(), String> {
    let location = match &lake.location {
        Location::Local(path) => {
            // `DIR@3`: a version of a Delta table, checked as DIR
            let text = path.to_string_lossy();
            let (directory, version) = split_version(&text);
            let path = Path::new(directory);
            check_local(path)?;
            // absolute, so that other processes (a cluster's scheduler and executors) find it
            let absolute = std::fs::canonicalize(path)
                .map_err(|e| format!("directory '{}': {e}", path.display()))?;
            let mut location = absolute.display().to_string();
            if !location.ends_with('/') {
                location.push('/');
            }
            if let Some(version) = version {
                location = format!("{location}@{version}");
            }
            location
        }
        Location::S3 { bucket, prefix } => {
            register_s3(ctx, bucket, prefix, s3).await?;
            lake.location.as_directory()
        }
    };
    let sql = format!(
        "CREATE EXTERNAL TABLE \"{}\" STORED AS PARQUET LOCATION '{}'",
        lake.name,
        location.replace('\'', "''")
    );
    ctx.sql(&sql).await.map_err(|e| lake_message(&e))?;
    Ok(())
}

/// The one line to show for a failed registration: lake discovery's own message, or
/// DataFusion's.
fn lake_message(error: &DataFusionError) -> String {
    match find_lake_error(error) {
        Some(lake) => lake.to_string(),
        None => one_line(&error.strip_backtrace()),
    }
}

/// A local lake must be a directory; which of its files are data is lake discovery's part.
fn check_local(path: &Path) -> Result<(), String> {
    if !path.exists() {
        return Err(format!("directory '{}' not found", path.display()));
    }
    if !path.is_dir() {
        return Err(format!("'{}' is not a directory", path.display()));
    }
    Ok(())
}

/// Checks the S3 lake with a store that does not retry, then registers a store for queries
/// (which does retry transient failures) on `ctx` for the bucket.
async fn register_s3(
    ctx: &SessionContext,
    bucket: &str,
    prefix: &str,
    settings: &S3Settings,
) -> Result<(), String> {
    let builder = settings.builder(bucket);
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    let place = S3Place {
        bucket,
        prefix,
        endpoint: endpoint.as_deref(),
    };

    let probe_store = builder
        .clone()
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 0,
            retry_timeout: PROBE_TIMEOUT,
        })
        .build()
        .map_err(|e| place.describe(&e))?;
    match tokio::time::timeout(PROBE_TIMEOUT, first_parquet(&probe_store, prefix)).await {
        Err(_elapsed) => {
            return Err(format!(
                "{} did not answer within {} s",
                place.endpoint_name(),
                PROBE_TIMEOUT.as_secs()
            ));
        }
        Ok(Err(e)) => return Err(place.describe(&e)),
        Ok(Ok(false)) => {
            return Err(format!(
                "no {PARQUET_EXTENSION} objects under s3://{bucket}/{prefix}"
            ));
        }
        Ok(Ok(true)) => {}
    }

    let query_store = query_store(builder).map_err(|e| place.describe(&e))?;
    let url = ObjectStoreUrl::parse(format!("s3://{bucket}"))
        .map_err(|e| one_line(&e.strip_backtrace()))?;
    ctx.register_object_store(url.as_ref(), query_store);
    Ok(())
}

/// The store queries read a bucket through: it retries transient failures.
fn query_store(builder: AmazonS3Builder) -> object_store::Result<Arc<dyn ObjectStore>> {
    let store = builder
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(60),
        })
        .build()?;
    Ok(Arc::new(store))
}

/// The object stores of a command-line session: local files, the buckets `--lake` registered,
/// and any other `s3://` bucket a query names (`FROM 's3://bucket/events/'`), whose store is
/// made on first use from the `AWS_*` variables and `--s3-endpoint`.
#[derive(Debug)]
pub struct StoreRegistry {
    registered: DefaultObjectStoreRegistry,
    s3: S3Settings,
}

impl StoreRegistry {
    pub fn new(s3: S3Settings) -> Self {
        Self {
            registered: DefaultObjectStoreRegistry::new(),
            s3,
        }
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.registered.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>, DataFusionError> {
        self.registered.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>, DataFusionError> {
        if let Ok(store) = self.registered.get_store(url) {
            return Ok(store);
        }
        let bucket = url.host_str().unwrap_or_default();
        if !url.scheme().eq_ignore_ascii_case("s3") || bucket.is_empty() {
            return self.registered.get_store(url);
        }
        let store = query_store(self.s3.builder(bucket)).map_err(|e| {
            DataFusionError::External(Box::new(LakeError(format!(
                "s3://{bucket}/: {}",
                one_line(&e.to_string())
            ))))
        })?;
        let bucket_url = Url::parse(&format!("s3://{bucket}"))
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        self.registered
            .register_store(&bucket_url, Arc::clone(&store));
        Ok(store)
    }
}

/// Whether any object under `prefix` is a Parquet file; stops at the first one.
async fn first_parquet(store: &dyn ObjectStore, prefix: &str) -> object_store::Result<bool> {
    let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
    let mut objects = store.list(prefix.as_ref());
    while let Some(object) = objects.next().await {
        if object?.location.as_ref().ends_with(PARQUET_EXTENSION) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What an S3 error message needs to name.
struct S3Place<'a> {
    bucket: &'a str,
    prefix: &'a str,
    endpoint: Option<&'a str>,
}

impl S3Place<'_> {
    fn endpoint_name(&self) -> String {
        match self.endpoint {
            Some(endpoint) => format!("the S3 endpoint {endpoint}"),
            None => "AWS S3".to_string(),
        }
    }

    /// One line for an object_store error: what went wrong in words, then the server's or the
    /// system's own message.
    fn describe(&self, error: &object_store::Error) -> String {
        let chain = error_chain(error);
        let innermost = chain.last().map(|e| e.to_string()).unwrap_or_default();
        if let Some(http) = chain.iter().find_map(|e| e.downcast_ref::<HttpError>()) {
            match http.kind() {
                HttpErrorKind::Connect => {
                    return one_line(&format!(
                        "cannot connect to {}: {innermost}",
                        self.endpoint_name()
                    ));
                }
                HttpErrorKind::Timeout => {
                    return format!("{} did not answer in time", self.endpoint_name());
                }
                _ => {}
            }
        }
        let full = error.to_string();
        if let Some(code) = xml_element(&full, "Code") {
            let message = xml_element(&full, "Message").unwrap_or_default();
            let detail = if message.is_empty() {
                code.to_string()
            } else {
                format!("{code}: {message}")
            };
            let what = match code {
                "NoSuchBucket" => format!(
                    "bucket '{}' does not exist at {}",
                    self.bucket,
                    self.endpoint_name()
                ),
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidToken"
                | "ExpiredToken"
                | "TokenRefreshRequired" => format!(
                    "{} refused the credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
                    self.endpoint_name()
                ),
                "AccessDenied" | "AllAccessDisabled" => format!(
                    "access to s3://{}/{} denied by {}",
                    self.bucket,
                    self.prefix,
                    self.endpoint_name()
                ),
                _ => format!("{} answered with an error", self.endpoint_name()),
            };
            return one_line(&format!("{what} ({detail})"));
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && is_credential_error(&full) {
            return one_line(&format!(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({innermost})"
            ));
        }
        one_line(&format!("{}: {full}", self.endpoint_name()))
    }
}

fn is_credential_error(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("credential") || lower.contains("token")
}

/// `error` and its sources, outermost first.
fn error_chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut chain = vec![error];
    let mut current = error;
    while let Some(source) = current.source() {
        chain.push(source);
        current = source;
    }
    chain
}

/// The text of the first `<name>...</name>` in an S3 XML error body quoted inside `text`.
fn xml_element<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(text[start..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lake_args_parse_and_reject() {
        assert_eq!(
            LakeArg::parse("events=data/sample_lake").unwrap(),
            LakeArg {
                name: "events".into(),
                location: Location::Local("data/sample_lake".into())
            }
        );
        assert!(
            LakeArg::parse("events")
                .unwrap_err()
                .contains("expected NAME=PATH")
        );
        assert!(
            LakeArg::parse("1x=data")
                .unwrap_err()
                .contains("table name '1x'")
        );
        assert!(
            LakeArg::parse("a-b=data")
                .unwrap_err()
                .contains("table name 'a-b'")
        );
        assert!(
            LakeArg::parse("events=")
                .unwrap_err()
                .contains("path is empty")
        );
    }

    #[test]
    fn the_url_is_the_value_after_the_first_equals_sign() {
        // the engine's `location` tests cover the URLs themselves
        assert_eq!(
            LakeArg::parse("e=s3://bucket/day=2024-01-01/")
                .unwrap()
                .location
                .as_directory(),
            "s3://bucket/day=2024-01-01/"
        );
        let gs = LakeArg::parse("e=gs://bucket/lake").unwrap_err();
        assert!(gs.contains("'gs://' lakes are not supported"), "{gs}");
        assert!(gs.starts_with("--lake 'e=gs://bucket/lake': "), "{gs}");
    }

    #[test]
    fn s3_error_bodies_give_code_and_message() {
        let text = "Generic S3 error: Error performing list request: Error performing GET \
                    http://x/b in 1ms - Server returned non-2xx status code: 404 Not Found: \
                    <?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code>\n<Message>The \
                    specified bucket does not exist</Message></Error>";
        assert_eq!(xml_element(text, "Code"), Some("NoSuchBucket"));
        assert_eq!(
            xml_element(text, "Message"),
            Some("The specified bucket does not exist")
        );
        assert_eq!(xml_element(text, "BucketName"), None);
        assert_eq!(xml_element("<Code>unclosed", "Code"), None);
    }

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line(" a\n  b\r\n\tc "), "a b c");
    }

    #[test]
    fn local_lakes_are_checked() {
        let missing = check_local(Path::new("no/such/dir")).unwrap_err();
        assert_eq!(missing, "directory 'no/such/dir' not found");
        let dir = std::env::temp_dir().join(format!("sessionlake-lake-{}", std::process::id()));
        let nested = dir.join("day=2024-01-01");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(nested.join("notes.txt"), "not parquet").unwrap();
        let not_dir = check_local(&nested.join("notes.txt")).unwrap_err();
        assert!(not_dir.ends_with("is not a directory"), "{not_dir}");
        assert_eq!(check_local(&dir), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
