//! The whole job against a real S3-compatible server (moto, started by `.ci/run`): source and
//! sink on S3, results equal to the same job on a local disk, incremental runs, a
//! conditional-put conflict between two runs, and the job's report on S3. Skipped without `SESSIONLAKE_TEST_S3_ENDPOINT`
//! unless `SESSIONLAKE_REQUIRE_S3=1`.

// helpers of tests, outside `#[test]` functions: a panic there is a failing test
#![allow(clippy::unwrap_used)]

mod job_binary;
#[path = "../../sessionlake-jobs/tests/jobs_support/mod.rs"]
mod jobs_support;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use job_binary::*;
use jobs_support::*;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sessionlake_jobs::Dates;
use sessionlake_testkit::s3::{create_bucket, test_endpoint};

fn store(endpoint: &str, bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::from_env()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .build()
            .unwrap(),
    )
}

/// Uploads the partitions `partitions` of a local lake under `lake/` in the bucket.
async fn upload(store: &Arc<dyn ObjectStore>, partitions: &[std::path::PathBuf]) {
    for partition in partitions {
        let dir = partition.file_name().unwrap().to_str().unwrap();
        for file in fs::read_dir(partition).unwrap() {
            let file = file.unwrap().path();
            let key = StorePath::from(format!(
                "lake/{dir}/{}",
                file.file_name().unwrap().to_str().unwrap()
            ));
            store
                .put(&key, PutPayload::from(fs::read(&file).unwrap()))
                .await
                .unwrap();
        }
    }
}

/// The object at `key` as text.
async fn text(store: &Arc<dyn ObjectStore>, key: &str) -> String {
    let bytes = store
        .get(&StorePath::from(key))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn s3_job(
    dir: &Path,
    endpoint: &str,
    bucket: &str,
    name: &str,
) -> (std::path::PathBuf, sessionlake_jobs::Job) {
    let body = job_toml(
        &format!("s3://{bucket}/lake"),
        &format!("s3://{bucket}/out"),
        &format!(
            "\n[storage]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nallow_http = true\n"
        ),
    );
    write_job(dir, name, &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_job_on_s3_equals_the_job_on_disk_and_a_conflict_loses_with_75() {
    let Some(endpoint) =
        test_endpoint("the_whole_job_on_s3_equals_the_job_on_disk_and_a_conflict_loses_with_75")
    else {
        return;
    };
    let bucket = format!("sessionlake-jobs-{}", std::process::id());
    create_bucket(&endpoint, &bucket);
    let s3 = store(&endpoint, &bucket);

    // the server honours the conditional put the commit relies on (If-None-Match: *)
    let probe = StorePath::from("probe/conditional");
    let create = || PutOptions::from(PutMode::Create);
    s3.put_opts(&probe, PutPayload::from_static(b"1"), create())
        .await
        .unwrap();
    let second = s3
        .put_opts(&probe, PutPayload::from_static(b"2"), create())
        .await;
    assert!(
        matches!(second, Err(object_store::Error::AlreadyExists { .. })),
        "the S3 server ignored If-None-Match: {second:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let local_lake = dir.path().join("lake");
    generate_lake(&local_lake, 6, 5_000, 120);
    let partitions = partition_dirs(&local_lake);
    upload(&s3, &partitions[..4]).await;

    // the first four days, then two more, on S3
    let (job_file, job) = s3_job(dir.path(), &endpoint, &bucket, "s3.toml");
    let first = run(&job, Dates::Pending).await;
    assert_eq!((first.strategy.as_str(), first.version), ("full", Some(1)));
    upload(&s3, &partitions[4..]).await;

    // two runs of the 6-day state at once: one commits version 2, the other loses the
    // conditional put and exits 75
    let barrier = dir.path().join("barrier");
    let env = [(
        "SESSIONLAKE_JOB_WAIT_AT",
        format!("before_commit:{}", barrier.display()),
    )];
    let a = spawn(&job_file, &env);
    let b = spawn(&job_file, &env);
    wait_reached(&barrier, 2);
    fs::write(&barrier, "go").unwrap();
    let mut results = [finish(a), finish(b)];
    results.sort_by_key(|(code, _)| *code);
    assert!(results[0].0 == 0 || results[0].0 == 3, "{:?}", results[0]);
    assert_eq!(results[1].0, 75, "{}", results[1].1);
    let s3_state = snapshot(&job).await;

    // the same job on a local disk
    let body = job_toml(local_lake.to_str().unwrap(), "local_out", "");
    let (_, local) = write_job(dir.path(), "local.toml", &body);
    run(&local, Dates::Pending).await;
    assert_same(&s3_state, &snapshot(&local).await);

    // the manifest is the only way in: version 2 is current, the listings point at its files
    let sink = sessionlake_jobs::location::Place::open(&job.sink, &job.storage).unwrap();
    let current = sessionlake_jobs::read_current(&sink)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.version, 2);
    let listing = text(&s3, "out/_current/sessions.txt").await;
    assert_eq!(listing.lines().count(), current.files("sessions").len());
    assert!(
        listing
            .lines()
            .all(|l| l.starts_with(&format!("s3://{bucket}/out/runs/"))),
        "{listing}"
    );
    let files = sessionlake_jobs::current_files(&job, "daily_metrics")
        .await
        .unwrap();
    assert_eq!(files.len(), current.files("daily_metrics").len());

    // the report of version 2, beside its outputs and in _current/; `job report` draws it
    // again there and prints its URL
    let report = text(&s3, "out/_current/report.html").await;
    let in_run = format!("out/runs/{}/report.html", current.run_id);
    assert_eq!(report, text(&s3, &in_run).await);
    assert!(report.contains("version 2") && report.contains("<svg"));
    let redrawn = std::process::Command::new(BINARY)
        .arg("report")
        .arg(&job_file)
        .output()
        .unwrap();
    assert!(
        redrawn.status.success(),
        "{}",
        String::from_utf8_lossy(&redrawn.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&redrawn.stdout).trim(),
        format!("s3://{bucket}/out/_current/report.html")
    );

    // the loser's prefix is gone; a rerun has nothing to do
    let runs = s3
        .list_with_delimiter(Some(&StorePath::from("out/runs")))
        .await
        .unwrap();
    for prefix in &runs.common_prefixes {
        let name = prefix.filename().unwrap();
        assert!(
            current.run_dirs().contains(&format!("runs/{name}")) || name.starts_with("v0000000001"),
            "{name}"
        );
    }
    let again = run(&job, Dates::Pending).await;
    assert_eq!(again.status, "up_to_date");
}

/// The Delta sink on S3: Delta readers see the same tables as from the job on a local disk,
/// and the Delta commits went through the conditional put (one log entry per run).
#[cfg(feature = "delta")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delta_sink_on_s3_equals_the_delta_sink_on_disk() {
    let Some(endpoint) = test_endpoint("the_delta_sink_on_s3_equals_the_delta_sink_on_disk") else {
        return;
    };
    let bucket = format!("sessionlake-jobs-delta-{}", std::process::id());
    create_bucket(&endpoint, &bucket);
    let s3 = store(&endpoint, &bucket);

    let dir = tempfile::tempdir().unwrap();
    let local_lake = dir.path().join("lake");
    generate_lake(&local_lake, 6, 5_000, 120);
    let partitions = partition_dirs(&local_lake);
    upload(&s3, &partitions[..4]).await;
    let (_, job) = s3_job(dir.path(), &endpoint, &bucket, "s3.toml");
    let body = with_delta_sink(&fs::read_to_string(&job.file).unwrap());
    let (_, job) = write_job(dir.path(), "s3_delta.toml", &body);
    run(&job, Dates::Pending).await;
    upload(&s3, &partitions[4..]).await;
    let second = run(&job, Dates::Pending).await;
    assert_eq!(second.strategy, "incremental");

    let body = with_delta_sink(&job_toml(local_lake.to_str().unwrap(), "local_out", ""));
    let (_, local) = write_job(dir.path(), "local.toml", &body);
    run(&local, Dates::Pending).await;
    let on_s3 = delta_snapshot(&job).await;
    assert_eq!(on_s3.len(), 3);
    assert_same(&on_s3, &delta_snapshot(&local).await);
    assert_same(&on_s3, &delta_tables_of(&snapshot(&job).await));

    for version in 0..2 {
        let key = StorePath::from(format!("out/sessions/_delta_log/{version:020}.json"));
        s3.head(&key).await.unwrap();
    }
    let third = StorePath::from(format!("out/sessions/_delta_log/{:020}.json", 2));
    assert!(matches!(
        s3.head(&third).await,
        Err(object_store::Error::NotFound { .. })
    ));
}
