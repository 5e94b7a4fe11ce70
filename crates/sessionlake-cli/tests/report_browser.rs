//! The job's HTML report: a run of the `sessionlake-job` binary writes it beside its outputs
//! and in `_current/`, `job report` draws it again (and fails with exit 65 before the first
//! commit), and headless Chromium renders it: the screenshot is not blank and the DOM holds the
//! charts, axis titles, bin labels and alert marks. Without Chromium the browser test is
//! skipped with the reason printed, unless `SESSIONLAKE_REQUIRE_BROWSER=1` (CI), where it fails.

// helpers of tests, outside `#[test]` functions: a panic there is a failing test
#![allow(clippy::unwrap_used)]

mod job_binary;
#[path = "../../sessionlake-jobs/tests/jobs_support/mod.rs"]
mod jobs_support;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use job_binary::*;
use jobs_support::*;
use sessionlake_jobs::Job;
use sessionlake_jobs::location::{Location, Place};

/// A job run by the binary over a 7-day generated lake, in `dir`; the job file and the job.
fn committed_job(dir: &Path) -> (PathBuf, Job) {
    let lake = dir.join("lake");
    generate_lake(&lake, 7, 6_000, 150);
    let body = job_toml(lake.to_str().unwrap(), "out", "");
    let (path, job) = write_job(dir, "job.toml", &body);
    let (code, stderr) = finish(spawn(&path, &[]));
    assert!(code == 0 || code == 3, "job run exited {code}: {stderr}");
    (path, job)
}

fn sink_dir(job: &Job) -> PathBuf {
    match &job.sink {
        Location::Local(dir) => dir.clone(),
        other => panic!("a local sink, not {other}"),
    }
}

/// `sessionlake-job report JOB.toml`: exit code, stdout, stderr.
fn job_report(job_file: &Path) -> (i32, String, String) {
    let output = Command::new(BINARY)
        .arg("report")
        .arg(job_file)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_the_report_and_job_report_draws_it_again() {
    let dir = tempfile::tempdir().unwrap();

    // nothing committed: a data error naming the sink
    let (empty_file, _) = write_job(
        dir.path(),
        "empty.toml",
        &job_toml(dir.path().join("no_lake").to_str().unwrap(), "empty", ""),
    );
    let (code, stdout, stderr) = job_report(&empty_file);
    assert_eq!(code, 65, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("nothing committed yet"), "{stderr}");

    let (job_file, job) = committed_job(dir.path());
    let sink = sink_dir(&job);
    let place = Place::open(&job.sink, &job.storage).unwrap();
    let manifest = sessionlake_jobs::read_current(&place)
        .await
        .unwrap()
        .unwrap();
    let in_run =
        fs::read_to_string(sink.join("runs").join(&manifest.run_id).join("report.html")).unwrap();
    let current = sink.join("_current/report.html");
    assert_eq!(fs::read_to_string(&current).unwrap(), in_run);
    assert!(in_run.contains("<h1>test_job</h1>"));
    assert!(in_run.contains(&format!("version {}", manifest.version)));

    fs::remove_file(&current).unwrap();
    let (code, stdout, stderr) = job_report(&job_file);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), current.to_str().unwrap());
    let redrawn = fs::read_to_string(&current).unwrap();
    // the same page but for the time it was made
    let without_time = |html: &str| {
        html.lines()
            .filter(|l| !l.contains(" · generated "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without_time(&redrawn), without_time(&in_run));
}

/// Chromium's command, if this machine has one.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium with `args` (a new profile in `profile`), killed after 2 minutes.
fn run_chromium(chromium: &Path, profile: &Path, args: &[String]) -> Output {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // read stdout while waiting: a DOM larger than the pipe would block the browser
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut text).unwrap();
        text
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("chromium {args:?} did not finish in 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut output = child.wait_with_output().unwrap();
    output.stdout = reader.join().unwrap();
    assert!(
        output.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The number of charts the report of `job`'s committed tables has: the daily sessions, the
/// average length, the length distribution, one per drawn segment value and the quality mix
/// when `daily_metrics` has their columns (the test job's alerts watch charted metrics only).
async fn expected_charts(job: &Job) -> usize {
    let ctx = SessionContext::new();
    sessionlake_jobs::register_outputs(&ctx, job).await.unwrap();
    let schema = ctx.table("daily_metrics").await.unwrap().schema().clone();
    let mut charts = 3;
    if schema
        .fields()
        .iter()
        .any(|f| f.name().starts_with("sessions_"))
    {
        charts += 1;
    }
    if schema.has_column_with_unqualified_name("segment") {
        let per_segment = ctx
            .sql(&format!(
                "SELECT CAST(least(count(DISTINCT coalesce(segment_value, '')), {}) AS BIGINT) \
                 FROM daily_metrics WHERE segment IS NOT NULL GROUP BY segment",
                sessionlake_jobs::report::page::MAX_SEGMENT_VALUES
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        for batch in per_segment {
            let counts = batch
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap();
            charts += counts.values().iter().sum::<i64>() as usize;
        }
    }
    charts
}

/// The alert marks the report has: one per day and charted metric with an alert.
async fn expected_marks(job: &Job) -> (usize, usize) {
    let ctx = SessionContext::new();
    sessionlake_jobs::register_outputs(&ctx, job).await.unwrap();
    let batches = ctx
        .sql(
            "SELECT CAST(count(*) AS BIGINT), \
             CAST(count(DISTINCT concat(CAST(session_date AS VARCHAR), metric)) FILTER \
             (WHERE metric IN ('sessions', 'avg_length_s')) AS BIGINT) FROM alerts",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let value = |i: usize| {
        batches[0]
            .column(i)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap()
            .value(0) as usize
    };
    (value(0), value(1))
}

/// The pixels of an 8-bit RGB or RGBA PNG file (what Chromium's screenshots are) as RGB: the
/// IDAT chunks inflated and each scanline unfiltered (PNG's five filters), without interlacing.
fn png_pixels(png_file: &Path) -> Vec<[u8; 3]> {
    let bytes = fs::read(png_file).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
    let mut compressed = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let length = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + length];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                let (depth, colour, interlace) = (data[8], data[9], data[12]);
                assert_eq!((depth, interlace), (8, 0), "8-bit, not interlaced");
                channels = match colour {
                    2 => 3,
                    6 => 4,
                    other => panic!("PNG colour type {other}"),
                };
            }
            b"IDAT" => compressed.extend_from_slice(data),
            _ => {}
        }
        at += 12 + length;
    }
    let mut raw = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::ZlibDecoder::new(&compressed[..]),
        &mut raw,
    )
    .unwrap();
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1), "inflated size");
    let mut previous = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(width * height);
    for line in raw.chunks_exact(stride + 1) {
        let (filter, line) = (line[0], &line[1..]);
        let mut current = vec![0u8; stride];
        for i in 0..stride {
            let left = if i >= channels {
                current[i - channels]
            } else {
                0
            };
            let up = previous[i];
            let up_left = if i >= channels {
                previous[i - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => {
                    let p = i16::from(left) + i16::from(up) - i16::from(up_left);
                    let (pa, pb, pc) = (
                        (p - i16::from(left)).abs(),
                        (p - i16::from(up)).abs(),
                        (p - i16::from(up_left)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        left
                    } else if pb <= pc {
                        up
                    } else {
                        up_left
                    }
                }
                other => panic!("PNG filter {other}"),
            };
            current[i] = line[i].wrapping_add(predicted);
        }
        pixels.extend(current.chunks_exact(channels).map(|p| [p[0], p[1], p[2]]));
        previous = current;
    }
    pixels
}

/// Distinct colours and the share of pixels with ink (darker than the page's light greys).
fn colours_and_ink(png_file: &Path) -> (usize, f64) {
    let pixels = png_pixels(png_file);
    let colours: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    let ink = pixels
        .iter()
        .filter(|rgb| rgb.iter().any(|c| *c < 200))
        .count();
    (colours.len(), ink as f64 / pixels.len() as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_renders_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        let reason = "no chromium on PATH (Debian: apt-get install chromium)";
        if std::env::var("SESSIONLAKE_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("SESSIONLAKE_REQUIRE_BROWSER=1 but {reason}");
        }
        eprintln!("skipped the_report_renders_in_headless_chromium: {reason}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, job) = committed_job(dir.path());
    let report = sink_dir(&job).join("_current/report.html");
    let url = format!("file://{}", report.display());

    let screenshot = dir.path().join("report.png");
    run_chromium(
        &chromium,
        &dir.path().join("profile-screenshot"),
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1200,2000".to_string(),
            url.clone(),
        ],
    );
    let (colours, ink) = colours_and_ink(&screenshot);
    assert!(colours >= 100, "a blank screenshot? {colours} colours");
    assert!(ink >= 0.01, "a blank screenshot? {:.2}% ink", ink * 100.0);

    let dom = run_chromium(
        &chromium,
        &dir.path().join("profile-dom"),
        &["--dump-dom".to_string(), url],
    );
    let dom = String::from_utf8(dom.stdout).unwrap();
    let html = fs::read_to_string(&report).unwrap();
    assert_eq!(
        dom.matches("<svg").count(),
        expected_charts(&job).await,
        "{dom}"
    );
    assert_eq!(dom.matches("<svg").count(), html.matches("<svg").count());
    for label in [
        ">sessions</text>",
        ">seconds</text>",
        ">session length</text>",
        "text-anchor=\"middle\">2024-0",
        ">&lt;0s</text>",
        ">10s-30s</text>",
        ">≥1d</text>",
    ] {
        assert!(dom.contains(label), "{label} not in the DOM");
    }
    let (alerts, marks) = expected_marks(&job).await;
    assert!(alerts > 0, "the test job trips alerts");
    assert!(dom.contains(&format!("<h2>Alerts ({alerts})</h2>")));
    assert_eq!(dom.matches("class=\"alert-marker\"").count(), marks);
}
