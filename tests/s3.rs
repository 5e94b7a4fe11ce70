//! `--lake` over S3 and the one-line lake errors.
//!
//! The tests that need a real S3-compatible server read its URL from
//! `SESSIONLAKE_TEST_S3_ENDPOINT` (`.ci/run` starts moto's server and sets it); without it they
//! print "skipped: ..." and pass, unless `SESSIONLAKE_REQUIRE_S3=1`, when they fail. Each one
//! uses its own bucket. The error tests for an unreachable endpoint and for answers S3 gives to
//! bad credentials run against a closed port and a tiny fake server, so they always run.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{command_in, repo_root, run, stderr, stdout};
use sessionlake_testkit::s3::{create_bucket, credential, test_endpoint, upload_dir};

const SAMPLE_LAKE: &str = "data/sample_lake";

/// The `sessionlake` binary run from the repository root with test credentials.
fn sessionlake(args: &[&str]) -> Output {
    let mut command = command_in(repo_root(), args);
    command
        .env(
            "AWS_ACCESS_KEY_ID",
            credential("AWS_ACCESS_KEY_ID", "testing"),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            credential("AWS_SECRET_ACCESS_KEY", "testing"),
        )
        .env("AWS_REGION", credential("AWS_REGION", "us-east-1"))
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_ENDPOINT");
    run(command)
}

/// Asserts a usage failure (exit 2) whose stderr is exactly one line starting with `prefix`,
/// and returns that line.
fn one_line_usage_error(output: &Output, prefix: &str) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert_eq!(stdout(output), "");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.ends_with('\n'), "{err}");
    assert!(err.starts_with(prefix), "{err}");
    err.trim_end().to_string()
}

/// Runs `query_args` with `--lake events=<lake>` (and any `extra` flags) as quiet CSV.
fn query(lake: &str, extra: &[&str], query_args: &[&str]) -> Output {
    let lake_arg = format!("events={lake}");
    let mut args = vec!["-q", "--format", "csv", "--lake", &lake_arg];
    args.extend_from_slice(extra);
    args.extend_from_slice(query_args);
    sessionlake(&args)
}

/// Opens `lake` on the S3 `endpoint` for `SELECT 1`, asserts a one-line usage error that names
/// the lake (as a prefix URL, with its trailing slash) and returns that line.
fn s3_lake_error(lake: &str, endpoint: &str) -> String {
    let output = query(lake, &["--s3-endpoint", endpoint], &["-c", "SELECT 1"]);
    let shown = format!("{}/", lake.trim_end_matches('/'));
    one_line_usage_error(&output, &format!("sessionlake: --lake events={shown}: "))
}

#[tokio::test]
async fn an_s3_lake_answers_like_the_local_lake() {
    let Some(endpoint) = test_endpoint("an_s3_lake_answers_like_the_local_lake") else {
        return;
    };
    let bucket = "sessionlake-test-same-answers";
    create_bucket(&endpoint, bucket);
    let uploaded = upload_dir(&endpoint, bucket, Path::new(SAMPLE_LAKE), "lake/").await;
    assert!(uploaded >= 2, "{uploaded} files uploaded");

    let s3_lake = format!("s3://{bucket}/lake/");
    let s3_flags = ["--s3-endpoint", endpoint.as_str()];
    let queries: [&[&str]; 4] = [
        &["-c", "DESCRIBE events"],
        &[
            "-c",
            "SELECT count(*) AS sessions, sum(event_count) AS events, min(session_start) AS \
             first_start, max(session_end) AS last_end FROM sessions('events')",
        ],
        &[
            "-c",
            "SELECT event_date, count(*) AS events, count(DISTINCT user_id) AS users \
             FROM events GROUP BY event_date ORDER BY event_date",
        ],
        &["-f", "sql/bounce_rate.sql"],
    ];
    for query_args in queries {
        let local = query(SAMPLE_LAKE, &[], query_args);
        assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));
        let remote = query(&s3_lake, &s3_flags, query_args);
        assert_eq!(
            remote.status.code(),
            Some(0),
            "{query_args:?}: {}",
            stderr(&remote)
        );
        assert_eq!(stderr(&remote), "");
        assert!(
            stdout(&local).lines().count() >= 2,
            "{query_args:?}: {}",
            stdout(&local)
        );
        assert_eq!(stdout(&remote), stdout(&local), "{query_args:?}");
    }
    // the partition column comes from the event_date=... directories, on S3 as on disk
    let describe = stdout(&query(&s3_lake, &s3_flags, &["-c", "DESCRIBE events"]));
    assert!(describe.contains("\nevent_date,"), "{describe}");
}

#[tokio::test]
async fn s3_urls_are_queried_directly_and_pipeline_leftovers_skipped() {
    let Some(endpoint) =
        test_endpoint("s3_urls_are_queried_directly_and_pipeline_leftovers_skipped")
    else {
        return;
    };
    let bucket = "sessionlake-test-direct-urls";
    create_bucket(&endpoint, bucket);
    upload_dir(&endpoint, bucket, Path::new(SAMPLE_LAKE), "exports/events/").await;
    // what Spark and Glue leave beside the data: markers, side files, a _temporary copy
    let leftovers = tempfile::tempdir().expect("a temporary directory");
    let data = std::fs::read(Path::new(SAMPLE_LAKE).join("event_date=2024-01-01/part-0.parquet"))
        .expect("a sample file");
    for (name, bytes) in [
        ("_SUCCESS", &b""[..]),
        ("_something.json", b"{}"),
        ("event_date=2024-01-01/.part-0.parquet.crc", b"crc"),
        ("event_date=2024-01-01/_SUCCESS", b""),
        ("_temporary/0/event_date=2024-01-01/part-0.parquet", &data),
    ] {
        let path = leftovers.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
        std::fs::write(path, bytes).expect("a leftover file");
    }
    upload_dir(&endpoint, bucket, leftovers.path(), "exports/events/").await;

    let sql = "SELECT count(*) AS sessions, sum(event_count) AS events FROM sessions('{lake}')";
    let local = sessionlake(&[
        "-q",
        "--format",
        "csv",
        "-c",
        &sql.replace("{lake}", "events"),
    ]);
    let local_lake = query(SAMPLE_LAKE, &[], &["-c", &sql.replace("{lake}", "events")]);
    assert_eq!(local_lake.status.code(), Some(0), "{}", stderr(&local_lake));
    assert_eq!(
        local.status.code(),
        Some(1),
        "no table 'events' without --lake"
    );
    let url = format!("s3://{bucket}/exports/events/");
    let direct = sessionlake(&[
        "-q",
        "--format",
        "csv",
        "--s3-endpoint",
        &endpoint,
        "-c",
        &sql.replace("{lake}", &url),
    ]);
    assert_eq!(direct.status.code(), Some(0), "{}", stderr(&direct));
    assert_eq!(stdout(&direct), stdout(&local_lake));

    // the bucket's root holds the lake one level down: the message says where
    let line = s3_lake_error(&format!("s3://{bucket}/exports/"), &endpoint);
    assert!(
        line.ends_with(&format!(
            "the Parquet files are below 's3://{bucket}/exports/events/': name that directory \
             as the lake"
        )),
        "{line}"
    );
}

#[tokio::test]
async fn a_missing_bucket_is_one_line() {
    let Some(endpoint) = test_endpoint("a_missing_bucket_is_one_line") else {
        return;
    };
    let line = s3_lake_error("s3://sessionlake-test-no-such-bucket/lake/", &endpoint);
    assert!(
        line.contains(&format!(
            "bucket 'sessionlake-test-no-such-bucket' does not exist at the S3 endpoint {endpoint}"
        )),
        "{line}"
    );
}

#[tokio::test]
async fn an_empty_prefix_is_one_line() {
    let Some(endpoint) = test_endpoint("an_empty_prefix_is_one_line") else {
        return;
    };
    let bucket = "sessionlake-test-empty-prefix";
    create_bucket(&endpoint, bucket);
    let line = s3_lake_error(&format!("s3://{bucket}/nothing-here"), &endpoint);
    assert!(
        line.ends_with(&format!(
            "no .parquet objects under s3://{bucket}/nothing-here/"
        )),
        "{line}"
    );
}

#[test]
fn an_unreachable_endpoint_is_one_line() {
    // a port that was free a moment ago: nothing listens there
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let line = s3_lake_error("s3://some-bucket/lake/", &endpoint);
    assert!(
        line.contains(&format!("cannot connect to the S3 endpoint {endpoint}: ")),
        "{line}"
    );
    assert!(!line.contains("retries"), "{line}");
}

/// A fake S3 server on 127.0.0.1 that answers every request with `status` and `body`; returns
/// its URL and the number of requests it has answered.
fn fake_s3(status: &'static str, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // read the request head; list requests have no body
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (endpoint, requests)
}

#[test]
fn refused_credentials_are_one_line_after_one_request() {
    let (endpoint, requests) = fake_s3(
        "403 Forbidden",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidAccessKeyId</Code>\
         <Message>The AWS Access Key Id you provided does not exist in our records.</Message>\
         </Error>",
    );
    let line = s3_lake_error("s3://some-bucket/lake/", &endpoint);
    assert!(
        line.contains(&format!(
            "the S3 endpoint {endpoint} refused the credentials from AWS_ACCESS_KEY_ID / \
             AWS_SECRET_ACCESS_KEY (InvalidAccessKeyId: The AWS Access Key Id you provided does \
             not exist in our records.)"
        )),
        "{line}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[test]
fn a_server_error_is_one_line_and_not_retried() {
    let (endpoint, requests) = fake_s3(
        "500 Internal Server Error",
        "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message>\
         </Error>",
    );
    let line = s3_lake_error("s3://some-bucket/lake/", &endpoint);
    assert!(
        line.ends_with(&format!(
            "the S3 endpoint {endpoint} answered with an error (InternalError: We encountered an \
             internal error.)"
        )),
        "{line}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[test]
fn a_bad_s3_endpoint_or_url_is_a_usage_error() {
    let endpoint = sessionlake(&["--s3-endpoint", "localhost:9000", "-c", "SELECT 1"]);
    assert_eq!(endpoint.status.code(), Some(2));
    assert!(
        stderr(&endpoint).contains("'localhost:9000' is not an http:// or https:// URL"),
        "{}",
        stderr(&endpoint)
    );
    let url = query("gs://bucket/lake", &[], &["-c", "SELECT 1"]);
    let line = one_line_usage_error(&url, "sessionlake: --lake 'events=gs://bucket/lake': ");
    assert!(line.contains("'gs://' lakes are not supported"), "{line}");
}

#[test]
fn a_missing_or_empty_local_lake_is_one_line() {
    let missing = query("no/such/dir", &[], &["-c", "SELECT 1"]);
    assert_eq!(
        one_line_usage_error(&missing, "sessionlake: "),
        "sessionlake: --lake events=no/such/dir: directory 'no/such/dir' not found"
    );

    let empty = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir(empty.path().join("event_date=2024-01-01")).expect("a partition dir");
    let dir = empty.path().to_str().expect("a UTF-8 path");
    let output = query(dir, &[], &["-c", "SELECT 1"]);
    let line = one_line_usage_error(&output, &format!("sessionlake: --lake events={dir}: "));
    assert!(
        line.ends_with(&format!(
            "no .parquet data files in {dir}/; names starting with '_' or '.' are not data"
        )),
        "{line}"
    );
}
