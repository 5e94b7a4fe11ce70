//! An S3-compatible server for tests: moto's, which `.ci/run` starts and names in
//! `SESSIONLAKE_TEST_S3_ENDPOINT`. A test that needs it asks [`test_endpoint`], creates its own
//! bucket with [`create_bucket`] and copies a lake into it with [`upload_dir`].

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

/// The variable naming the test server, such as `http://127.0.0.1:5055`.
pub const ENDPOINT_VARIABLE: &str = "SESSIONLAKE_TEST_S3_ENDPOINT";
/// When `1`, a test that finds no server fails instead of skipping.
pub const REQUIRE_VARIABLE: &str = "SESSIONLAKE_REQUIRE_S3";

/// The server's URL (without a trailing `/`), or `None` after printing that `test` is skipped.
///
/// # Panics
/// When there is no server and [`REQUIRE_VARIABLE`] is `1`.
pub fn test_endpoint(test: &str) -> Option<String> {
    match std::env::var(ENDPOINT_VARIABLE) {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint.trim_end_matches('/').to_string()),
        _ => {
            assert!(
                std::env::var(REQUIRE_VARIABLE).as_deref() != Ok("1"),
                "{test}: {REQUIRE_VARIABLE}=1 but {ENDPOINT_VARIABLE} is not set"
            );
            println!("skipped: {test} needs an S3 server in {ENDPOINT_VARIABLE}");
            None
        }
    }
}

/// A credential for the test server: the environment's `variable`, else moto's conventional
/// `default` (`testing`, `us-east-1`).
pub fn credential(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_string())
}

/// Creates `bucket` with a plain CreateBucket request (moto does not check signatures);
/// creating it again is fine.
///
/// # Panics
/// When the server cannot be reached or refuses.
pub fn create_bucket(endpoint: &str, bucket: &str) {
    let authority = endpoint
        .strip_prefix("http://")
        .expect("the test S3 endpoint is http://")
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).expect("connect to the S3 server");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send CreateBucket");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read CreateBucket's answer");
    let status = response.lines().next().unwrap_or_default();
    assert!(
        status.contains(" 200 ") || status.contains(" 409 "),
        "CreateBucket {bucket}: {response}"
    );
}

/// Copies every file under `dir` to `bucket` under `prefix`, keeping the relative paths (and so
/// the `key=value` partition directories); returns how many files it copied.
///
/// # Panics
/// When a file cannot be read or written.
pub async fn upload_dir(endpoint: &str, bucket: &str, dir: &Path, prefix: &str) -> usize {
    let store = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .with_region(credential("AWS_REGION", "us-east-1"))
        .with_access_key_id(credential("AWS_ACCESS_KEY_ID", "testing"))
        .with_secret_access_key(credential("AWS_SECRET_ACCESS_KEY", "testing"))
        .build()
        .expect("an S3 client");
    let mut pending = vec![dir.to_path_buf()];
    let mut uploaded = 0;
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read the lake directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(dir).expect("under the lake");
            let key = format!(
                "{prefix}{}",
                relative.to_str().expect("a UTF-8 path").replace('\\', "/")
            );
            let bytes = std::fs::read(&path).expect("read a lake file");
            store
                .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
                .await
                .unwrap_or_else(|e| panic!("upload {key}: {e}"));
            uploaded += 1;
        }
    }
    uploaded
}
