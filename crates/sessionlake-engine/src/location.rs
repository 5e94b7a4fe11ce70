//! Where a lake or a job's sink lives: a local directory or an `s3://bucket/prefix`, parsed the
//! same way for `--lake`, job sources and job sinks, and the S3 client of a bucket, built from
//! the `AWS_*` variables with an endpoint on top.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

/// A local directory or an S3 prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on the local file system: as given by [`Location::parse`], absolute after
    /// [`Location::relative_to`].
    Local(PathBuf),
    /// Objects in an S3 bucket under a key prefix.
    S3 {
        /// The bucket name.
        bucket: String,
        /// The key prefix: empty for the whole bucket, otherwise ending in `/`.
        prefix: String,
    },
}

impl Location {
    /// Parses a local path (kept as given) or `s3://bucket[/prefix]` (the scheme in any case).
    /// The error says what is wrong without repeating `text`, except for an unsupported scheme.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the path is empty".into());
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Self::Local(PathBuf::from(text)));
        };
        if !scheme.eq_ignore_ascii_case("s3") {
            return Err(format!(
                "'{scheme}://' lakes are not supported: give a local directory or \
                 s3://bucket/prefix/"
            ));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3 bucket names: lowercase letters, digits, '.' and '-' (and '_' in old buckets)
        let valid_bucket = !bucket.is_empty()
            && bucket.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')
            });
        if !valid_bucket {
            return Err(format!(
                "S3 bucket name '{bucket}' must be lowercase letters, digits, '.' and '-'"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..") {
            return Err(format!(
                "the S3 prefix '{prefix}' may not contain '.' or '..'"
            ));
        }
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Ok(Self::S3 {
            bucket: bucket.to_string(),
            prefix,
        })
    }

    /// This location with a local path made absolute, relative paths taken from `base` (a job
    /// file's directory; empty for the working directory), and `.` and `a/..` removed without
    /// touching the file system. An S3 location stays as it is.
    pub fn relative_to(self, base: &Path) -> Result<Self, String> {
        let Self::Local(path) = self else {
            return Ok(self);
        };
        let path = if path.is_absolute() {
            path
        } else {
            let base = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base
            };
            std::path::absolute(base.join(&path))
                .map_err(|e| format!("'{}': cannot make the path absolute: {e}", path.display()))?
        };
        Ok(Self::Local(normalize(&path)))
    }

    /// The location as a directory, as `CREATE EXTERNAL TABLE ... LOCATION` takes it and
    /// `--lake` messages show it: a local path as it is, an S3 prefix with its trailing slash
    /// (`s3://bucket/events/`, `s3://bucket/`).
    pub fn as_directory(&self) -> String {
        match self {
            Self::Local(path) => path.display().to_string(),
            Self::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

/// Removes `.` and `a/..` components without touching the file system.
fn normalize(path: &Path) -> PathBuf {
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

/// A local path as it is; an S3 prefix without its trailing slash (`s3://bucket/events`,
/// `s3://bucket`), so that `{location}/{key}` names an object.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => {
                write!(f, "s3://{bucket}/{}", prefix.trim_end_matches('/'))
            }
        }
    }
}

/// How S3 buckets are reached. What is not set here comes from the standard `AWS_*` variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// An S3-compatible server to use instead of AWS, such as `http://127.0.0.1:9000`; it wins
    /// over `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_S3`.
    pub endpoint: Option<String>,
    /// The region, over `AWS_REGION`.
    pub region: Option<String>,
    /// Allow plain `http://` endpoints (it changes nothing for `https://` ones).
    pub allow_http: bool,
}

impl S3Settings {
    /// The settings of an `--s3-endpoint URL` option (`None` when it is not given; the rest
    /// comes from the `AWS_*` variables). Plain `http://` endpoints are allowed, as local
    /// S3-compatible servers (MinIO, moto) use them; that changes nothing for `https://` ones.
    /// The error says what is wrong with the URL, without naming the option.
    pub fn from_endpoint(endpoint: Option<&str>) -> Result<Self, String> {
        Ok(Self {
            endpoint: endpoint.map(parse_s3_endpoint).transpose()?,
            region: None,
            allow_http: true,
        })
    }

    /// An S3 client for `bucket` configured from the `AWS_*` variables, with these settings on
    /// top.
    pub fn builder(&self, bucket: &str) -> AmazonS3Builder {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &self.endpoint {
            // AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL in object_store, so set both
            builder = builder
                .with_endpoint(endpoint)
                .with_config(AmazonS3ConfigKey::S3Endpoint, endpoint);
        }
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        if self.allow_http {
            builder = builder.with_allow_http(true);
        }
        builder
    }
}

/// Checks an S3 endpoint: an `http://` or `https://` URL with a host, returned trimmed and
/// without a trailing `/`.
pub fn parse_s3_endpoint(text: &str) -> Result<String, String> {
    let text = text.trim();
    let host = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"));
    match host {
        Some(host) if !host.is_empty() && !host.starts_with('/') => {
            Ok(text.trim_end_matches('/').to_string())
        }
        _ => Err(format!(
            "'{text}' is not an http:// or https:// URL, for example http://127.0.0.1:9000"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &str) -> Location {
        Location::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn s3_urls_parse_to_bucket_and_prefix() {
        let parsed = |text: &str| Location::parse(text).unwrap();
        assert_eq!(parsed("s3://bucket"), s3("bucket", ""));
        assert_eq!(parsed("s3://bucket/"), s3("bucket", ""));
        assert_eq!(parsed("s3://bucket/lake"), s3("bucket", "lake/"));
        assert_eq!(parsed("s3://my.bucket-1/a/b/"), s3("my.bucket-1", "a/b/"));
        assert_eq!(parsed("S3://bucket//lake//"), s3("bucket", "lake/"));
        assert_eq!(
            parsed("s3://bucket/day=2024-01-01/"),
            s3("bucket", "day=2024-01-01/")
        );
        assert_eq!(
            parsed("s3://bucket/lake").as_directory(),
            "s3://bucket/lake/"
        );
        assert_eq!(parsed("s3://bucket").as_directory(), "s3://bucket/");
        assert_eq!(parsed("s3://bucket/lake").to_string(), "s3://bucket/lake");
        assert_eq!(parsed("s3://bucket/").to_string(), "s3://bucket");
    }

    #[test]
    fn bad_locations_are_rejected() {
        let error = |text: &str| Location::parse(text).unwrap_err();
        assert_eq!(error("  "), "the path is empty");
        assert!(
            error("s3://").contains("bucket name ''"),
            "{}",
            error("s3://")
        );
        assert!(error("s3:///lake").contains("bucket name ''"));
        assert!(error("s3://My_Bucket/x").contains("bucket name 'My_Bucket'"));
        assert!(error("s3://bucket/a/../b").contains("'..'"));
        assert!(error("gs://bucket/lake").contains("'gs://' lakes are not supported"));
    }

    #[test]
    fn local_paths_are_kept_then_resolved_against_a_base() {
        let parsed = Location::parse(" data/lake ").unwrap();
        assert_eq!(parsed, Location::Local(PathBuf::from("data/lake")));
        assert_eq!(parsed.to_string(), "data/lake");
        let base = Path::new("/jobs/daily");
        assert_eq!(
            Location::parse("../lake/./events")
                .unwrap()
                .relative_to(base),
            Ok(Location::Local(PathBuf::from("/jobs/lake/events")))
        );
        assert_eq!(
            Location::parse("/abs/lake").unwrap().relative_to(base),
            Ok(Location::Local(PathBuf::from("/abs/lake")))
        );
        let bucket = Location::parse("s3://bucket/lake").unwrap();
        assert_eq!(bucket.clone().relative_to(base), Ok(bucket));
    }

    #[test]
    fn s3_endpoints_must_be_http_urls() {
        assert_eq!(
            parse_s3_endpoint("http://127.0.0.1:9000/").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            parse_s3_endpoint("https://s3.example.com").unwrap(),
            "https://s3.example.com"
        );
        for bad in ["127.0.0.1:9000", "ftp://host", "http://", "https:///x", ""] {
            assert!(parse_s3_endpoint(bad).is_err(), "{bad}");
            assert!(S3Settings::from_endpoint(Some(bad)).is_err(), "{bad}");
        }
        let local = S3Settings::from_endpoint(Some(" http://127.0.0.1:9000/ ")).unwrap();
        assert_eq!(local.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(local.allow_http);
        assert_eq!(S3Settings::from_endpoint(None).unwrap().endpoint, None);
    }
}
