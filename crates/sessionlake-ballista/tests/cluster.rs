//! Starts a scheduler and two executors as separate processes on 127.0.0.1, runs every metric
//! recipe of the repository's `sql/` (and a few queries on `sessions()`, per-call options,
//! `SET` and the window function) on a generated lake through the cluster and through the
//! single-process engine, and requires equal results. It runs a lake job with and without
//! `--cluster` and requires the same committed tables. With the S3 test server (`.ci/run`
//! starts moto's), it does the same on the lake copied to S3, which the scheduler and the
//! executors read themselves, with three clients at once and an executor restarted between
//! queries, and checks the one-line error of an executor without S3 settings. Then it kills one
//! executor in the middle of a longer query and requires the right answer or a clear error, and
//! says which happened.

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use sessionlake_ballista::sql_client::{register_lake, run_script};
use sessionlake_cli::lake::{LakeArg, register_lake as register_s3_lake};
use sessionlake_testkit::app_lake::write_app_lake;
use sessionlake_testkit::lake::{LakeSpec, write_lake};
use sessionlake_testkit::s3::{create_bucket, test_endpoint, upload_dir};

/// Relative tolerance for floats: the cluster and one process may sum in different orders.
const FLOAT_TOLERANCE: f64 = 1e-9;
/// How long a process may take to come up: a guard against a hang, not a measurement.
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// Queries beyond the recipes: `sessions()`, per-call options, `SET`, the window function.
const EXTRA_QUERIES: [(&str, &str); 5] = [
    (
        "sessions() per day",
        "SELECT CAST(session_start AS DATE) AS day, count(*) AS sessions, \
         sum(event_count) AS events, sum(duration_ms) AS duration_ms, \
         count(DISTINCT first_event_type) AS first_types \
         FROM sessions('events') GROUP BY 1 ORDER BY 1",
    ),
    (
        "sessions() with per-call options",
        "SELECT count(*) AS sessions, max(event_count) AS longest \
         FROM sessions('events', 'gap=5 minutes', 'mode=instrumented_gap', 'max_length=none')",
    ),
    (
        "sessions() with identity stitching",
        "SELECT count(*) AS sessions, count(DISTINCT user_id) AS users, sum(event_count) AS events \
         FROM sessions('events', 'anonymous_column=device_id')",
    ),
    (
        "SET sessionlake.gap, then sessionize()",
        "SET sessionlake.gap = '10 minutes'; \
         SELECT count(DISTINCT (user_id, session_key)) AS sessions, count(*) AS events \
         FROM sessionize('events') WHERE session_key IS NOT NULL",
    ),
    (
        "the sessionize window function",
        "SELECT count(DISTINCT (user_id, key)) AS sessions FROM ( \
           SELECT user_id, sessionize(event_time) \
             OVER (PARTITION BY user_id ORDER BY event_time) AS key \
           FROM events WHERE user_id IS NOT NULL)",
    ),
];

/// The repository's root (this crate is `crates/sessionlake-ballista`).
fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free TCP port on 127.0.0.1 (free when asked; the process binds it a moment later), never
/// one this test handed out before: the system may offer a just-released port again, and an
/// executor given the same port twice stopped with "Address already in use".
fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().expect("the port list");
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A child process, killed when dropped, its log (stderr) in a file.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(name: &'static str, binary: &str, args: &[String], dir: &Path) -> Self {
        Self::start_without(name, binary, args, dir, &[])
    }

    /// [`Process::start`] without the environment variables `unset`.
    fn start_without(
        name: &'static str,
        binary: &str,
        args: &[String],
        dir: &Path,
        unset: &[&str],
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = File::create(&log).expect("create the log file");
        let mut command = Command::new(binary);
        for variable in unset {
            command.env_remove(variable);
        }
        let child = command
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({binary}): {e}"));
        Self { name, child, log }
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// How many log lines contain `needle`.
    fn count(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until the log has `count` lines containing `needle`; panics with the log if the
    /// process exits or [`STARTUP_LIMIT`] passes first.
    async fn wait_for(&mut self, needle: &str, count: usize) {
        let started = Instant::now();
        loop {
            if self.count(needle) >= count {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before logging '{needle}':\n{}",
                    self.name,
                    self.log_text()
                );
            }
            if started.elapsed() > STARTUP_LIMIT {
                panic!(
                    "{} did not log '{needle}' within {STARTUP_LIMIT:?}:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A scheduler and two executors on 127.0.0.1, reading `s3://` lakes from the S3 test server
/// when there is one.
struct Cluster {
    url: String,
    scheduler: Process,
    executors: Vec<Process>,
    scheduler_port: u16,
    dir: PathBuf,
    /// The S3 test server the scheduler and the executors were given (`--s3-endpoint`).
    s3: Option<String>,
}

/// The executors' names and `-m` values: one with the default memory budget, one with `-m`.
const EXECUTORS: [(&str, Option<&str>); 2] = [("executor-a", None), ("executor-b", Some("1g"))];

impl Cluster {
    async fn start(dir: &Path) -> Self {
        let s3 = test_endpoint("the cluster's S3 part");
        let s3_args: Vec<String> = s3
            .iter()
            .flat_map(|endpoint| ["--s3-endpoint".to_string(), endpoint.clone()])
            .collect();
        let scheduler_port = free_port();
        // Quick loss detection, so that the fault part of the test does not wait for minutes.
        let mut scheduler = Process::start(
            "scheduler",
            env!("CARGO_BIN_EXE_sessionlake-scheduler"),
            &[
                vec![
                    "--bind-host".into(),
                    "127.0.0.1".into(),
                    "--external-host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    scheduler_port.to_string(),
                    "--executor-timeout-seconds".into(),
                    "6".into(),
                    "--expire-dead-executor-interval-seconds".into(),
                    "1".into(),
                ],
                s3_args,
            ]
            .concat(),
            dir,
        );
        scheduler.wait_for("listening on", 1).await;
        let mut cluster = Self {
            url: format!("df://127.0.0.1:{scheduler_port}"),
            scheduler,
            executors: Vec::new(),
            scheduler_port,
            dir: dir.to_path_buf(),
            s3,
        };
        for index in 0..EXECUTORS.len() {
            let executor = cluster.start_executor(index).await;
            cluster.executors.push(executor);
        }
        cluster
    }

    /// Starts executor `index` of [`EXECUTORS`] (on new ports) and waits until it registered.
    async fn start_executor(&self, index: usize) -> Process {
        let (name, memory) = EXECUTORS[index];
        let work_dir = self.dir.join(name);
        std::fs::create_dir_all(&work_dir).expect("executor work dir");
        let memory_args: Vec<String> = memory
            .map(|size| vec!["-m".into(), size.into()])
            .unwrap_or_default();
        let s3_args: Vec<String> = self
            .s3
            .iter()
            .flat_map(|endpoint| ["--s3-endpoint".to_string(), endpoint.clone()])
            .collect();
        let mut executor = Process::start(
            name,
            env!("CARGO_BIN_EXE_sessionlake-executor"),
            &[
                memory_args,
                s3_args,
                vec![
                    "--scheduler".into(),
                    format!("127.0.0.1:{}", self.scheduler_port),
                    "--bind-host".into(),
                    "127.0.0.1".into(),
                    "--external-host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    free_port().to_string(),
                    "--grpc-port".into(),
                    free_port().to_string(),
                    "--concurrent-tasks".into(),
                    "2".into(),
                    "--work-dir".into(),
                    work_dir.display().to_string(),
                    "--heartbeat-interval-seconds".into(),
                    "1".into(),
                ],
            ]
            .concat(),
            &self.dir,
        );
        executor.wait_for("Executor registration succeed", 1).await;
        let pool = match memory {
            Some(_) => "configured via --memory-pool-size",
            None => "auto: 70% of",
        };
        executor.wait_for(pool, 1).await;
        executor
    }

    /// Kills executor `index` and starts it again once the scheduler has removed the dead one.
    async fn restart_executor(&mut self, index: usize) {
        let removed_before = self.scheduler.count("Removing executor");
        self.executors[index].kill();
        self.scheduler
            .wait_for("Removing executor", removed_before + 1)
            .await;
        self.executors[index] = self.start_executor(index).await;
    }

    fn logs(&self) -> String {
        let mut text = format!("--- scheduler\n{}", self.scheduler.log_text());
        for e in &self.executors {
            text.push_str(&format!("--- {}\n{}", e.name, e.log_text()));
        }
        text
    }
}

/// One cell of a result, comparable across Arrow types: floats within [`FLOAT_TOLERANCE`],
/// everything else as Arrow displays it (so `Utf8` and `Utf8View` compare equal).
#[derive(Debug, Clone)]
enum Cell {
    Float(Option<f64>),
    Text(String),
}

impl Cell {
    fn matches(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Float(Some(a)), Cell::Float(Some(b))) => {
                a == b || (a - b).abs() <= FLOAT_TOLERANCE * a.abs().max(b.abs())
            }
            (Cell::Float(None), Cell::Float(None)) => true,
            (Cell::Text(a), Cell::Text(b)) => a == b,
            _ => false,
        }
    }
}

/// The rows of `batches`, sorted (exact cells first, then floats), so that the order of rows
/// a query leaves free does not matter.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<Cell>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let mut columns: Vec<Vec<Cell>> = Vec::new();
        for column in batch.columns() {
            let cells = if matches!(column.data_type(), DataType::Float32 | DataType::Float64) {
                let floats = cast(column, &DataType::Float64).expect("float column casts");
                let floats = floats
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Float64Array>()
                    .expect("Float64 array");
                (0..floats.len())
                    .map(|i| Cell::Float(floats.is_valid(i).then(|| floats.value(i))))
                    .collect()
            } else {
                let formatter =
                    ArrayFormatter::try_new(column.as_ref(), &options).expect("formatter");
                (0..column.len())
                    .map(|i| Cell::Text(formatter.value(i).to_string()))
                    .collect()
            };
            columns.push(cells);
        }
        for row in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[row].clone()).collect::<Vec<_>>());
        }
    }
    rows.sort_by(|a, b| {
        let key = |row: &Vec<Cell>| {
            let texts: Vec<String> = row
                .iter()
                .filter_map(|c| match c {
                    Cell::Text(t) => Some(t.clone()),
                    Cell::Float(_) => None,
                })
                .collect();
            let floats: Vec<f64> = row
                .iter()
                .filter_map(|c| match c {
                    Cell::Float(f) => Some(f.unwrap_or(f64::NEG_INFINITY)),
                    Cell::Text(_) => None,
                })
                .collect();
            (texts, floats)
        };
        let (ta, fa) = key(a);
        let (tb, fb) = key(b);
        ta.cmp(&tb).then_with(|| {
            fa.iter()
                .zip(&fb)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    rows
}

/// Why `cluster` differs from `local`, if it does.
fn difference(local: &[RecordBatch], cluster: &[RecordBatch]) -> Option<String> {
    let (local, cluster) = (rows(local), rows(cluster));
    if local.len() != cluster.len() {
        return Some(format!(
            "{} rows in one process, {} on the cluster",
            local.len(),
            cluster.len()
        ));
    }
    for (i, (l, c)) in local.iter().zip(&cluster).enumerate() {
        if l.len() != c.len() || l.iter().zip(c).any(|(a, b)| !a.matches(b)) {
            return Some(format!(
                "row {i} (sorted): one process {l:?}, cluster {c:?}"
            ));
        }
    }
    None
}

/// The last result of `script`'s statements.
async fn last_result(
    ctx: &SessionContext,
    script: &str,
) -> datafusion::error::Result<Vec<RecordBatch>> {
    let mut results = run_script(ctx, script).await?;
    Ok(results
        .pop()
        .map(|(_, batches)| batches)
        .unwrap_or_default())
}

async fn local_context(lake: &Path) -> SessionContext {
    let ctx = sessionlake_engine::new_context().expect("local context");
    register_lake(&ctx, "events", lake)
        .await
        .expect("lake registers locally");
    ctx
}

async fn cluster_context(url: &str, lake: &Path) -> SessionContext {
    let ctx = sessionlake_ballista::ballista_context(url)
        .await
        .expect("cluster context");
    register_lake(&ctx, "events", lake)
        .await
        .expect("lake registers on the cluster");
    ctx
}

fn recipes() -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_dir().join("sql"))
        .expect("sql/ is readable")
        .map(|entry| entry.expect("sql/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let sql = std::fs::read_to_string(&path).expect("recipe is readable");
            (format!("sql/{name}"), sql)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipes_on_a_cluster_match_one_process_and_survive_a_lost_executor() {
    let dir = tempfile::tempdir().expect("temp dir");

    // A small lake for the recipes: several files a day, so that scans have several partitions;
    // the app lake's kind, so that the recipes on reported lengths have session_end events.
    let lake = dir.path().join("lake");
    let spec = LakeSpec {
        seed: 7,
        events: 20_000,
        days: 3,
        users: 400,
        files_per_day: 3,
        ..LakeSpec::default()
    };
    write_app_lake(&spec, &lake).expect("small lake");
    add_pipeline_leftovers(&lake);

    let mut cluster = Cluster::start(dir.path()).await;
    let local = local_context(&lake).await;
    let remote = cluster_context(&cluster.url, &lake).await;

    // what Spark and Glue leave in a lake is not data on the cluster either
    let counted = last_result(&remote, "SELECT count(*) AS events FROM events")
        .await
        .expect("count on the cluster");
    let counted = cast(counted[0].column(0), &DataType::Int64).expect("a count");
    let counted = counted
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .expect("an Int64 count");
    assert_eq!(counted.value(0), 20_000);

    let mut queries = recipes();
    assert!(
        queries.len() >= 10,
        "sql/ has only {} recipes",
        queries.len()
    );
    queries.extend(
        EXTRA_QUERIES
            .iter()
            .map(|(name, sql)| (name.to_string(), sql.to_string())),
    );
    let mut failures = Vec::new();
    for (name, sql) in &queries {
        let expected = last_result(&local, sql)
            .await
            .unwrap_or_else(|e| panic!("{name} fails in one process: {e}"));
        assert!(
            expected.iter().map(RecordBatch::num_rows).sum::<usize>() > 0,
            "{name}: no rows in one process"
        );
        match last_result(&remote, sql).await {
            Ok(actual) => {
                if let Some(why) = difference(&expected, &actual) {
                    failures.push(format!("{name}: {why}"));
                }
            }
            Err(e) => failures.push(format!("{name} fails on the cluster: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ:\n{}\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n"),
        cluster.logs()
    );
    // both executors took part
    for executor in &cluster.executors {
        assert!(
            executor.count("Finished task") > 0,
            "{} ran no task:\n{}",
            executor.name,
            cluster.logs()
        );
    }

    // the command line with --cluster prints what the in-process command line prints
    let query = "SELECT date_trunc('day', session_start) AS day, count(*) AS sessions, \
                 UNIQUES(user_id) AS users FROM sessions('events') GROUP BY 1 ORDER BY 1";
    let lake_arg = format!("events={}", lake.display());
    let cli = |cluster: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sessionlake-ballista"));
        command.args(["-q", "--format", "csv", "--lake", &lake_arg, "-c", query]);
        if let Some(url) = cluster {
            command.args(["--cluster", url]);
        }
        command.output().expect("sessionlake-ballista runs")
    };
    let on_cluster = cli(Some(&cluster.url));
    let in_process = cli(None);
    assert!(
        on_cluster.status.success(),
        "--cluster: {}\n{}",
        String::from_utf8_lossy(&on_cluster.stderr),
        cluster.logs()
    );
    assert_eq!(
        String::from_utf8_lossy(&on_cluster.stdout),
        String::from_utf8_lossy(&in_process.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&on_cluster.stdout).lines().count(),
        4,
        "a header and 3 days"
    );

    for sql in [
        "EXPLAIN SELECT count(*) FROM sessions('events')",
        "EXPLAIN SELECT user_id, count(*) FROM sessionize('events') GROUP BY user_id",
    ] {
        assert_user_shuffle_below_sessionize(&remote, sql).await;
    }

    s3_lake_on_the_cluster(&mut cluster, &lake, &queries).await;

    job_on_a_cluster_matches_one_process(dir.path(), &cluster).await;

    lost_executor(dir.path(), cluster).await;
}

/// The bucket of the S3 part on the test server.
const S3_BUCKET: &str = "sessionlake-cluster-test";
/// The recipes each of the concurrent clients runs, twice.
const CONCURRENT_QUERIES: usize = 4;
/// How many clients query the cluster at once.
const CLIENTS: usize = 3;

/// A context with the lake at the S3 URL `lake` registered as `events`, as `--lake` does: on
/// the cluster at `cluster_url`, or in this process.
async fn s3_context(cluster_url: Option<&str>, lake: &str, endpoint: &str) -> SessionContext {
    let ctx = match cluster_url {
        Some(url) => sessionlake_ballista::ballista_context(url)
            .await
            .expect("cluster context"),
        None => sessionlake_engine::new_context().expect("local context"),
    };
    let lake = LakeArg::parse(&format!("events={lake}")).expect("an S3 lake argument");
    let s3 = sessionlake_ballista::s3_settings(Some(endpoint)).expect("S3 settings");
    register_s3_lake(&ctx, &lake, &s3)
        .await
        .unwrap_or_else(|e| panic!("the S3 lake registers: {e}"));
    ctx
}

/// The lake copied to the S3 test server and read there by the scheduler and the executors
/// (the client sends its URL unchanged): every query equals one process on the same S3 lake;
/// [`CLIENTS`] clients querying at once all get the right answers; and after an executor is
/// killed and started again, the next queries succeed with the right answers. Skipped (with
/// the message of [`test_endpoint`]) without the S3 test server.
async fn s3_lake_on_the_cluster(cluster: &mut Cluster, lake: &Path, queries: &[(String, String)]) {
    let Some(endpoint) = cluster.s3.clone() else {
        return;
    };
    create_bucket(&endpoint, S3_BUCKET);
    let uploaded = upload_dir(&endpoint, S3_BUCKET, lake, "lake/").await;
    assert!(uploaded >= 9, "uploaded {uploaded} files");
    let s3_lake = format!("s3://{S3_BUCKET}/lake/");

    let local = s3_context(None, &s3_lake, &endpoint).await;
    let remote = s3_context(Some(&cluster.url), &s3_lake, &endpoint).await;
    let mut expected = Vec::new();
    let mut failures = Vec::new();
    for (name, sql) in queries {
        let answer = last_result(&local, sql)
            .await
            .unwrap_or_else(|e| panic!("{name} on the S3 lake fails in one process: {e}"));
        match last_result(&remote, sql).await {
            Ok(actual) => {
                if let Some(why) = difference(&answer, &actual) {
                    failures.push(format!("{name} on S3: {why}"));
                }
            }
            Err(e) => failures.push(format!("{name} on S3 fails on the cluster: {e}")),
        }
        expected.push(answer);
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries on the S3 lake differ:\n{}\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n"),
        cluster.logs()
    );
    eprintln!(
        "S3 lake: {} queries on the cluster equal one process",
        queries.len()
    );

    // clients at once, each on its own context, each query twice
    let picked: Vec<(String, String, Vec<RecordBatch>)> = queries
        .iter()
        .zip(&expected)
        .take(CONCURRENT_QUERIES)
        .map(|((name, sql), answer)| (name.clone(), sql.clone(), answer.clone()))
        .collect();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (url, lake, endpoint, picked) = (
            cluster.url.clone(),
            s3_lake.clone(),
            endpoint.clone(),
            picked.clone(),
        );
        clients.push(tokio::spawn(async move {
            let ctx = s3_context(Some(&url), &lake, &endpoint).await;
            let mut wrong = Vec::new();
            for round in 0..2 {
                for (name, sql, answer) in &picked {
                    match last_result(&ctx, sql).await {
                        Ok(actual) => {
                            if let Some(why) = difference(answer, &actual) {
                                wrong.push(format!("client {client} round {round} {name}: {why}"));
                            }
                        }
                        Err(e) => wrong.push(format!("client {client} round {round} {name}: {e}")),
                    }
                }
            }
            wrong
        }));
    }
    let mut wrong = Vec::new();
    for client in clients {
        wrong.extend(client.await.expect("a client task"));
    }
    assert!(
        wrong.is_empty(),
        "concurrent clients:\n{}\n{}",
        wrong.join("\n"),
        cluster.logs()
    );
    eprintln!(
        "S3 lake: {CLIENTS} clients at once, {} queries each, all right",
        2 * picked.len()
    );

    // an executor killed and started again between queries
    cluster.restart_executor(0).await;
    let after = s3_context(Some(&cluster.url), &s3_lake, &endpoint).await;
    for (name, sql, answer) in &picked {
        let actual = last_result(&after, sql).await.unwrap_or_else(|e| {
            panic!(
                "{name} after an executor restart fails: {e}\n{}",
                cluster.logs()
            )
        });
        if let Some(why) = difference(answer, &actual) {
            panic!("{name} after an executor restart: {why}");
        }
    }
    eprintln!("S3 lake: after executor-a was killed and restarted, the queries succeed");

    an_executor_without_s3_settings(&cluster.dir, &endpoint, &s3_lake).await;
}

/// The `AWS_*` variables the S3 test server's clients are given.
const AWS_VARIABLES: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
];
/// How long a query on an executor that cannot reach the store may take to fail: a guard
/// against a hang, not a measurement.
const UNREACHABLE_LIMIT: Duration = Duration::from_secs(180);

/// A second cluster whose only executor was started without S3 settings (no `--s3-endpoint`,
/// no `AWS_*` variables): a query on the S3 lake fails, within [`UNREACHABLE_LIMIT`], with one
/// line naming the executor and the bucket.
async fn an_executor_without_s3_settings(dir: &Path, endpoint: &str, s3_lake: &str) {
    let dir = dir.join("no_s3");
    std::fs::create_dir_all(&dir).expect("a directory");
    let port = free_port();
    let mut scheduler = Process::start(
        "scheduler-no-s3",
        env!("CARGO_BIN_EXE_sessionlake-scheduler"),
        &[
            "--bind-host".into(),
            "127.0.0.1".into(),
            "--external-host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--s3-endpoint".into(),
            endpoint.into(),
        ],
        &dir,
    );
    scheduler.wait_for("listening on", 1).await;
    let flight_port = free_port();
    let mut executor = Process::start_without(
        "executor-no-s3",
        env!("CARGO_BIN_EXE_sessionlake-executor"),
        &[
            "--scheduler".into(),
            format!("127.0.0.1:{port}"),
            "--bind-host".into(),
            "127.0.0.1".into(),
            "--external-host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            flight_port.to_string(),
            "--grpc-port".into(),
            free_port().to_string(),
        ],
        &dir,
        &AWS_VARIABLES,
    );
    executor.wait_for("Executor registration succeed", 1).await;

    let mut query = Command::new(env!("CARGO_BIN_EXE_sessionlake-ballista"))
        .args(["-q", "--cluster", &format!("df://127.0.0.1:{port}")])
        .args([
            "--s3-endpoint",
            endpoint,
            "--lake",
            &format!("events={s3_lake}"),
        ])
        .args(["-c", "SELECT count(*) FROM sessions('events')"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sessionlake-ballista starts");
    let started = Instant::now();
    while query.try_wait().expect("the query's status").is_none() {
        assert!(
            started.elapsed() < UNREACHABLE_LIMIT,
            "a query on an executor without S3 settings still runs after {UNREACHABLE_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = query.wait_with_output().expect("the query's output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line:\n{stderr}"
    );
    let executor_name = format!("executor 127.0.0.1:{flight_port} reading s3://{S3_BUCKET}/");
    assert!(
        stderr.contains(&executor_name),
        "the error does not name '{executor_name}':\n{stderr}"
    );
    eprintln!(
        "executor without S3 settings: failed after {:?}: {stderr}",
        started.elapsed()
    );
}

/// Adds what Spark, Hadoop and Glue leave in a lake: markers, checksum side files, a real data
/// file (a copy, which would be counted twice if read) under `_temporary/`, and hidden copies in
/// a partition (`._part-0.parquet`, as a macOS copy leaves), which only the lake's glob keeps
/// out of the scheduler's listing.
fn add_pipeline_leftovers(lake: &Path) {
    let partition = lake.join("event_date=2024-01-01");
    let data = std::fs::read(partition.join("part-0.parquet")).expect("a data file");
    let temporary = lake.join("_temporary/0/event_date=2024-01-01");
    std::fs::create_dir_all(&temporary).expect("a _temporary directory");
    for (path, bytes) in [
        (lake.join("_SUCCESS"), &b""[..]),
        (lake.join("_something.json"), b"{}"),
        (partition.join(".part-0.parquet.crc"), b"crc"),
        (partition.join("_SUCCESS"), b""),
        (temporary.join("part-0.parquet"), &data),
        (partition.join("._part-0.parquet"), &data),
        (partition.join("_part-0.parquet"), &data),
    ] {
        std::fs::write(path, bytes).expect("a leftover file");
    }
}

/// A job like `data/sample_job.toml` over the generated lake `lake/` (beside the job file),
/// writing to `sink`.
fn job_file(sink: &str) -> String {
    format!(
        r#"name = "daily"

[source]
lake = "lake"
partition_column = "event_date"

[sink]
path = "{sink}"

[session]
gap = "30 minutes"
max_length = "1 day"
time_zone = "America/New_York"
inactive_event_types = ["sync"]

[outputs.sessions]
entry = ["page"]
exit = ["page"]
first = ["platform", "country"]
last = ["plan"]

[outputs.metrics]
bounce_event_type = "page_view"

[[alerts]]
name = "short_sessions"
metric = "avg_length_s"
below = 180.0

[[exports]]
name = "engaged_users"
format = "csv"
days = 7
min_sessions = 2
session_longer_than = "5 minutes"

[bots]
max_events_per_minute = 20.0
"#
    )
}

/// Every row of `table` in the committed outputs of the job file `path`, and its column names.
async fn committed(path: &Path, table: &str) -> (Vec<String>, Vec<RecordBatch>) {
    let job = sessionlake_jobs::Job::load(path).expect("job file loads");
    let ctx = sessionlake_engine::new_context().expect("local context");
    sessionlake_jobs::register_outputs(&ctx, &job)
        .await
        .expect("outputs register")
        .expect("a committed manifest");
    let frame = ctx
        .sql(&format!("SELECT * FROM {table}"))
        .await
        .expect("outputs query");
    let columns = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    (columns, frame.collect().await.expect("outputs read"))
}

/// Runs the same job file with `sessionlake-ballista job run` in one process and with
/// `--cluster`, a first run and then an incremental rerun of one day (whose read window is a
/// filtered view of the lake), and requires equal committed sessions and daily metrics. The
/// executors' task counts show that the cluster ran the `--cluster` runs and only those.
async fn job_on_a_cluster_matches_one_process(dir: &Path, cluster: &Cluster) {
    let local_job = dir.join("job_local.toml");
    let cluster_job = dir.join("job_cluster.toml");
    std::fs::write(&local_job, job_file("out_local")).expect("write job file");
    std::fs::write(&cluster_job, job_file("out_cluster")).expect("write job file");
    let finished_tasks = || -> usize {
        cluster
            .executors
            .iter()
            .map(|e| e.count("Finished task"))
            .sum()
    };
    let run = |job: &Path, on_cluster: bool, extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sessionlake-ballista"));
        command.arg("job").arg("run").arg(job).args(extra);
        if on_cluster {
            command.args(["--cluster", &cluster.url]);
        }
        let output = command.output().expect("sessionlake-ballista job run");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        // 0, or 3 when an alert tripped: both mean committed
        assert!(
            matches!(output.status.code(), Some(0 | 3)),
            "job run {} (--cluster: {on_cluster}) failed ({}):\n{stderr}\n{}",
            job.display(),
            output.status,
            cluster.logs()
        );
        (output.status.code(), stderr)
    };

    // the second day's partition again, after the first run processed them all
    let rerun_day = ["--date", "2024-01-02"];
    for extra in [&[][..], &rerun_day[..]] {
        let before = finished_tasks();
        let (local_code, local_stderr) = run(&local_job, false, extra);
        assert_eq!(
            finished_tasks(),
            before,
            "a run without --cluster ran tasks on the cluster:\n{local_stderr}"
        );
        let (cluster_code, cluster_stderr) = run(&cluster_job, true, extra);
        let tasks = finished_tasks() - before;
        eprintln!("job run {extra:?} --cluster: {tasks} tasks on the executors: {cluster_stderr}");
        assert!(
            tasks > 0,
            "the --cluster run ran no task on the cluster:\n{cluster_stderr}\n{}",
            cluster.logs()
        );
        assert!(
            cluster_stderr.contains(&format!("on {}", cluster.url)),
            "the summary does not name the cluster:\n{cluster_stderr}"
        );
        assert_eq!(local_code, cluster_code, "exit codes differ");
        if !extra.is_empty() {
            assert!(
                cluster_stderr.contains("committed (incremental, version 2"),
                "the rerun did not commit incrementally:\n{cluster_stderr}"
            );
        }
    }

    // the same lake on S3, read by the executors: a first run and the rerun, with and without
    // --cluster (writing to S3), commit what the local lake's runs committed
    let mut s3_jobs = Vec::new();
    if let Some(endpoint) = &cluster.s3 {
        let s3_job = |sink: &str| {
            job_file(sink).replace(
                r#"lake = "lake""#,
                &format!(r#"lake = "s3://{S3_BUCKET}/lake""#),
            ) + &format!(
                "\n[storage]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nallow_http = true\n"
            )
        };
        let s3_local_job = dir.join("job_s3_local.toml");
        let s3_cluster_job = dir.join("job_s3_cluster.toml");
        std::fs::write(&s3_local_job, s3_job("out_s3_local")).expect("write job file");
        // the --cluster run's sink on S3 too: its writes and conditional-put commit
        let s3_sink = format!("s3://{S3_BUCKET}/out_cluster");
        std::fs::write(&s3_cluster_job, s3_job(&s3_sink)).expect("write job file");
        for extra in [&[][..], &rerun_day[..]] {
            let before = finished_tasks();
            let (local_code, _) = run(&s3_local_job, false, extra);
            let (cluster_code, cluster_stderr) = run(&s3_cluster_job, true, extra);
            assert!(
                finished_tasks() > before,
                "the --cluster run on the S3 lake ran no task on the cluster:\n{cluster_stderr}"
            );
            assert_eq!(local_code, cluster_code, "exit codes differ on the S3 lake");
            eprintln!("job run {extra:?} --cluster on the S3 lake: {cluster_stderr}");
        }
        s3_jobs = vec![s3_local_job, s3_cluster_job];
    }

    for table in ["sessions", "daily_metrics"] {
        let (local_columns, local_rows) = committed(&local_job, table).await;
        let (cluster_columns, cluster_rows) = committed(&cluster_job, table).await;
        assert_eq!(local_columns, cluster_columns, "{table}: columns differ");
        let rows: usize = local_rows.iter().map(RecordBatch::num_rows).sum();
        assert!(rows > 0, "{table}: no rows");
        if let Some(why) = difference(&local_rows, &cluster_rows) {
            panic!("job table {table}: {why}");
        }
        eprintln!("job table {table}: {rows} rows, equal with and without --cluster");
        for s3_job in &s3_jobs {
            let (columns, rows) = committed(s3_job, table).await;
            assert_eq!(local_columns, columns, "{table}: columns differ on S3");
            if let Some(why) = difference(&local_rows, &rows) {
                panic!("job table {table} of {}: {why}", s3_job.display());
            }
        }
    }
}

/// The distributed plan of `explain` reads `SessionizeExec`'s input from a shuffle
/// hash-partitioned by `user_id`: every event of a user meets in one task.
async fn assert_user_shuffle_below_sessionize(ctx: &SessionContext, explain: &str) {
    let batches = last_result(ctx, explain).await.expect("EXPLAIN");
    let options = FormatOptions::default();
    let mut distributed = None;
    for batch in &batches {
        let kinds = ArrayFormatter::try_new(batch.column(0).as_ref(), &options).expect("fmt");
        let plans = ArrayFormatter::try_new(batch.column(1).as_ref(), &options).expect("fmt");
        for row in 0..batch.num_rows() {
            if kinds.value(row).to_string() == "distributed_plan" {
                distributed = Some(plans.value(row).to_string());
            }
        }
    }
    let plan = distributed.unwrap_or_else(|| panic!("{explain}: no distributed_plan row"));
    let lines: Vec<&str> = plan.lines().collect();
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("SessionizeExec:") {
            let input = lines.get(i + 1).copied().unwrap_or_default();
            assert!(
                input.contains("UnresolvedShuffleExec") && input.contains("Hash([user_id@"),
                "{explain}: SessionizeExec does not read a shuffle by user_id:\n{plan}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "{explain}: no SessionizeExec in\n{plan}");
}

/// Kills executor B after it finished its first task of a longer query, and requires the
/// query's right answer or a clear error.
async fn lost_executor(dir: &Path, mut cluster: Cluster) {
    let lake = dir.join("big_lake");
    let spec = LakeSpec {
        seed: 11,
        events: 600_000,
        days: 4,
        users: 20_000,
        files_per_day: 4,
        ..LakeSpec::default()
    };
    write_lake(&spec, &lake).expect("big lake");
    let sql = std::fs::read_to_string(repo_dir().join("sql/bounce_rate.sql"))
        .expect("sql/bounce_rate.sql");
    let local = local_context(&lake).await;
    let expected = last_result(&local, &sql).await.expect("one process");

    let remote = cluster_context(&cluster.url, &lake).await;
    // many small tasks, so that the query is still running when B has finished one
    run_script(&remote, "SET datafusion.execution.target_partitions = 8")
        .await
        .expect("SET target_partitions");
    let finished_before = cluster.executors[1].count("Finished task");
    let query = tokio::spawn({
        let sql = sql.clone();
        async move { last_result(&remote, &sql).await }
    });
    cluster.executors[1]
        .wait_for("Finished task", finished_before + 1)
        .await;
    let running_at_kill = !query.is_finished();
    cluster.executors[1].kill();
    let started = Instant::now();
    let outcome = query.await.expect("query task");
    let took = started.elapsed();
    eprintln!(
        "lost executor: killed executor-b after its first finished task (query still running: \
         {running_at_kill})"
    );
    // what the scheduler made of it
    let log = cluster.scheduler.log_text();
    for line in log
        .lines()
        .filter(|l| {
            l.contains("Removing executor")
                || l.contains("ERROR")
                || l.contains("WARN")
                || l.contains("resubmit")
                || l.contains("rerun")
        })
        .take(20)
    {
        eprintln!("lost executor: scheduler: {line}");
    }
    match outcome {
        Ok(actual) => {
            eprintln!("lost executor: the query completed {took:?} after the kill");
            if let Some(why) = difference(&expected, &actual) {
                panic!(
                    "after losing an executor the query completed with a wrong answer: {why}\n{}",
                    cluster.logs()
                );
            }
        }
        Err(e) => {
            let message = e.strip_backtrace();
            eprintln!("lost executor: the query failed {took:?} after the kill: {message}");
            assert!(
                !message.trim().is_empty(),
                "the query failed without a message"
            );
        }
    }
}
