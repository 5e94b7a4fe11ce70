//! One run of a job: plan which output days to rewrite, compute them, write them under a
//! run-unique prefix, evaluate alerts and exports, and commit a new manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload};
use serde::Serialize;

use crate::alerts::{self, Alert};
use crate::checkpoint::checkpoint;
use crate::cluster::Cluster;
use crate::compute::{self, Computed, ReadPlan};
use crate::encode::{csv_bytes, parquet_bytes};
use crate::error::{JobError, from_datafusion, from_store};
use crate::exports;
use crate::identities;
use crate::job_file::{ExportFormat, Job, SinkFormat};
use crate::lake::{self, Partition};
use crate::location::Place;
use crate::manifest::{
    self, ALERTS_TABLE, METRICS_TABLE, Manifest, RUNS_DIR, SESSIONS_TABLE, USERS_TABLE, WHOLE_TABLE,
};
use crate::max_gap;
use crate::notify;
use crate::progress::{OnProgress, Reporter};
use crate::report::{self, ReportInfo};
use crate::sql::{DAY_COLUMN, ident};
use crate::users;
use crate::window::{self, Spans};

/// Which source partitions a run processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dates {
    /// Those not processed yet or changed since (by their file listing): everything new since
    /// the watermark, plus earlier partitions that arrived or changed late.
    Pending,
    /// The partitions of these days, inclusive, whether processed before or not.
    Range(NaiveDate, NaiveDate),
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The source partitions to process.
    pub dates: Dates,
    /// Compute and report, write nothing.
    pub dry_run: bool,
    /// Where the run reports its progress, if anywhere.
    pub progress: Option<OnProgress>,
    /// Recompute every output day from the whole lake, whatever changed.
    pub full: bool,
    /// Read the lake and sessionize it on this cluster instead of in this process; the rest of
    /// the run (planning, metrics over the sessions, writing, committing) stays here.
    pub cluster: Option<Cluster>,
}

/// What a run did; written as `_summary.json` in the run's prefix and printed in one line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub job: String,
    /// `committed`, `dry_run` or `up_to_date`.
    pub status: String,
    pub run_id: Option<String>,
    /// The committed manifest version.
    pub version: Option<u64>,
    /// `incremental` or `full`.
    pub strategy: String,
    /// Why the run recomputed everything, for a full run.
    pub full_reason: Option<String>,
    pub source: String,
    pub sink: String,
    /// The cluster the sessions were computed on (`--cluster`), if not this process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The source partitions this run processed.
    pub partitions_processed: Vec<String>,
    /// The source partitions read (processed ones plus context around them).
    pub partitions_read: usize,
    pub files_read: usize,
    /// Events read in the read windows.
    pub events_read: u64,
    /// Output days rewritten (each rewritten whole, or removed when it has no session now).
    pub days_rewritten: Vec<String>,
    /// Sessions written (bots included, flagged).
    pub sessions_written: u64,
    pub metrics_rows_written: u64,
    /// Sessions left out for being longer than `max_length`.
    pub long_sessions_excluded: u64,
    /// Sessions flagged as bots and left out of the metrics, by reason.
    pub bot_sessions: BTreeMap<String, u64>,
    pub user_agent_check_skipped: Option<String>,
    /// Alerts tripped on the days this run rewrote.
    pub alerts: Vec<Alert>,
    /// Alerts in the whole alerts table.
    pub alerts_in_table: usize,
    /// Rows per cohort export.
    pub exports: BTreeMap<String, u64>,
    pub watermark_before: Option<String>,
    pub watermark_after: Option<String>,
    /// Old run prefixes deleted after the commit.
    pub prefixes_cleaned: usize,
    pub started_at: String,
    pub duration_s: f64,
    /// What went wrong without failing the run: an alert delivery (webhook, e-mail) that
    /// failed after its tries. Deliveries happen after the commit, so the `_summary.json`
    /// committed with the outputs has none of theirs; the returned summary has them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl RunSummary {
    /// The one-line summary printed on stderr.
    pub fn one_line(&self) -> String {
        let bots: u64 = self.bot_sessions.values().sum();
        let line = format!(
            "job {}: {} ({}{}{}) partitions {} read {} ({} events); days rewritten {}; \
             sessions {} ({} bots, {} over max_length left out); alerts {}; exports {}; {:.2} s",
            self.job,
            self.status,
            self.strategy,
            self.version
                .map(|v| format!(", version {v}"))
                .unwrap_or_default(),
            self.cluster
                .as_ref()
                .map(|c| format!(", on {c}"))
                .unwrap_or_default(),
            self.partitions_processed.len(),
            self.partitions_read,
            self.events_read,
            self.days_rewritten.len(),
            self.sessions_written,
            bots,
            self.long_sessions_excluded,
            self.alerts.len(),
            self.exports.len(),
            self.duration_s
        );
        match self.warnings.len() {
            0 => line,
            1 => format!("{line}; 1 warning"),
            n => format!("{line}; {n} warnings"),
        }
    }
}

/// Runs `job` once: `run_job(job, dates, dry_run)` of the issue, with a progress option.
pub async fn run_job(job: &Job, options: &RunOptions) -> Result<RunSummary, JobError> {
    let started = Instant::now();
    let progress = Reporter::new(options.progress.as_ref());
    let mut summary = RunSummary {
        job: job.name.clone(),
        source: job.source.to_string(),
        sink: job.sink.to_string(),
        cluster: options.cluster.as_ref().map(|c| c.name.clone()),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ..RunSummary::default()
    };
    let source = Place::open(&job.source, &job.storage)?;
    let sink = Place::open(&job.sink, &job.storage)?;

    let current = manifest::read_current(&sink).await?;
    if let Some(committed) = &current
        && !options.dry_run
    {
        // a run killed between its commit and its listings (or its Delta commits) left them
        // behind: repair (a manifest of other settings, perhaps another format, is replaced
        // whole by this run, and its tables with it)
        #[cfg(feature = "delta")]
        if job.sink_format == SinkFormat::Delta && committed.fingerprint == job.fingerprint() {
            crate::delta_sink::publish(&sink, committed, None).await?;
        }
        manifest::write_listings(&sink, committed).await?;
        report::repair_current(&sink, committed).await;
    }
    summary.watermark_before = current.as_ref().and_then(|m| m.watermark.clone());
    let Some(read) = read_source(
        job,
        options,
        &source,
        current.as_ref(),
        &mut summary,
        &progress,
    )
    .await?
    else {
        summary.status = "up_to_date".into();
        summary.strategy = "incremental".into();
        summary.version = current.as_ref().map(|m| m.version);
        summary.watermark_after = summary.watermark_before.clone();
        summary.duration_s = started.elapsed().as_secs_f64();
        tracing::info!(job = %job.name, "up to date: no new or changed partition");
        return Ok(summary);
    };
    let SourceRead {
        computed,
        affected,
        full_reason,
        partitions_state,
    } = read;
    checkpoint("computed").await;
    summary.events_read = computed.events_read;
    summary.long_sessions_excluded = computed.long_sessions;
    summary.bot_sessions = computed.bot_sessions.clone();
    summary.user_agent_check_skipped = computed.user_agent_check_skipped.clone();
    summary.days_rewritten = affected.iter().map(|d| d.to_string()).collect();
    summary.sessions_written = computed
        .sessions
        .values()
        .map(|b| b.num_rows() as u64)
        .sum();
    summary.metrics_rows_written = computed.metrics.values().map(|b| b.num_rows() as u64).sum();

    // the new state
    let version = current.as_ref().map_or(1, |m| m.version + 1);
    let run_id = format!(
        "v{version:010}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let run_dir = format!("{RUNS_DIR}/{run_id}");
    summary.run_id = Some(run_id.clone());
    let mut tables = match (&current, full_reason) {
        (Some(m), None) => m.tables.clone(),
        _ => BTreeMap::new(),
    };
    // old files of the partitioned tables that stay, for alerts and exports
    let mut kept_sessions = Vec::new();
    let mut kept_metrics = Vec::new();
    for (table, kept) in [
        (SESSIONS_TABLE, &mut kept_sessions),
        (METRICS_TABLE, &mut kept_metrics),
    ] {
        let entries = tables.entry(table.to_string()).or_default();
        entries.retain(|day, _| {
            day.parse::<NaiveDate>()
                .map(|d| !affected.contains(&d))
                .unwrap_or(false)
        });
        kept.extend(
            entries
                .iter()
                .map(|(day, file)| (day.clone(), file.clone())),
        );
    }

    let mut files = TableFiles::new(job.sink_format, &run_id);
    for (table, batches) in [
        (SESSIONS_TABLE, &computed.sessions),
        (METRICS_TABLE, &computed.metrics),
    ] {
        for (day, batch) in batches {
            let relative = files.add(table, Some(*day), batch)?;
            tables
                .entry(table.to_string())
                .or_default()
                .insert(day.to_string(), relative);
        }
    }

    // alerts over the whole metrics table
    let ctx = compute::new_context(&[&sink])?;
    let mut metric_batches: Vec<RecordBatch> = computed.metrics.values().cloned().collect();
    let metrics_schema = metric_batches.first().map(|b| b.schema());
    let old_metrics = read_committed(&ctx, &sink, &kept_metrics, metrics_schema).await?;
    metric_batches.extend(old_metrics);
    let values = alerts::metric_values(&metric_batches)?;
    let all_alerts = alerts::evaluate(&job.alerts, &values);
    summary.alerts_in_table = all_alerts.len();
    summary.alerts = all_alerts
        .iter()
        .filter(|a| affected.contains(&a.day))
        .cloned()
        .collect();
    let alerts_batch = alerts::alerts_batch(&all_alerts, !job.segments.columns.is_empty())?;
    let alerts_relative = files.add(ALERTS_TABLE, None, &alerts_batch)?;
    tables.insert(
        ALERTS_TABLE.to_string(),
        BTreeMap::from([(WHOLE_TABLE.to_string(), alerts_relative)]),
    );

    // the users table over the whole sessions table, and exports over its last days or users
    tables.retain(|name, _| !name.starts_with("exports/") && name != USERS_TABLE);
    let latest = computed
        .sessions
        .keys()
        .copied()
        .chain(kept_sessions.iter().filter_map(|(d, _)| d.parse().ok()))
        .max();
    if let Some(latest) = latest
        && (job.users || !job.exports.is_empty())
    {
        let earliest = if job.users {
            NaiveDate::MIN
        } else {
            job.exports
                .iter()
                .filter_map(|e| exports::window_start(e, latest))
                .min()
                .unwrap_or(latest)
        };
        register_sessions(&ctx, &sink, &computed, &kept_sessions, earliest).await?;
        if job.users {
            let users = compute::query(&ctx, &users::users_sql(job, latest)).await?;
            let schema = users
                .first()
                .map(|b| b.schema())
                .ok_or_else(|| JobError::failed("users table: no result"))?;
            let relative = format!("{run_dir}/{USERS_TABLE}/part-0.parquet");
            files
                .writes
                .push((relative.clone(), parquet_bytes(&schema, &users)?));
            tables.insert(
                USERS_TABLE.to_string(),
                BTreeMap::from([(WHOLE_TABLE.to_string(), relative)]),
            );
            let users = MemTable::try_new(schema, vec![users])
                .map_err(|e| from_datafusion(e, "users for exports"))?;
            ctx.register_table(USERS_TABLE, Arc::new(users))
                .map_err(|e| from_datafusion(e, "users for exports"))?;
        }
        for rule in &job.exports {
            let (schema, batches) =
                exports::export(&ctx, rule, &job.session.options.user_column, latest).await?;
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            summary.exports.insert(rule.name.clone(), rows);
            let (extension, bytes) = match rule.format {
                ExportFormat::Csv => ("csv", csv_bytes(&schema, &batches)?),
                ExportFormat::Parquet => ("parquet", parquet_bytes(&schema, &batches)?),
            };
            let relative = format!("{run_dir}/exports/{}.{extension}", rule.name);
            files.writes.push((relative.clone(), bytes));
            tables.insert(
                format!("exports/{}", rule.name),
                BTreeMap::from([(WHOLE_TABLE.to_string(), relative)]),
            );
        }
    }

    let watermark = match partitions_state.get(DELTA_SOURCE_KEY) {
        Some(version) => Some(format!("{DELTA_SOURCE_KEY}={version}")),
        None => partitions_state.keys().max().cloned(),
    };
    summary.watermark_after = watermark.clone();
    summary.version = Some(version);
    summary.duration_s = started.elapsed().as_secs_f64();

    if options.dry_run {
        summary.status = "dry_run".into();
        summary.version = None;
        return Ok(summary);
    }
    summary.status = "committed".into();
    let report = render_report(job, version, &metric_batches, &alerts_batch);
    if let Some(html) = &report {
        files
            .writes
            .push((report::run_key(&run_id), html.clone().into_bytes()));
    }
    let summary_relative = format!("{run_dir}/_summary.json");
    let summary_json = serde_json::to_vec_pretty(&summary)
        .map_err(|e| JobError::failed(format!("run summary: {e}")))?;
    files.writes.push((summary_relative.clone(), summary_json));
    let (writes, delta_adds) = files.finish()?;

    progress.add(writes.len() as u64 + 2);
    for (relative, bytes) in writes {
        sink.store
            .put(&sink.key(&relative), PutPayload::from(bytes))
            .await
            .map_err(|e| from_store(e, format!("writing {}/{relative}", sink.shown)))?;
        progress.step(relative);
        checkpoint("write").await;
    }
    let manifest = Manifest {
        format: manifest::MANIFEST_FORMAT,
        version,
        job: job.name.clone(),
        run_id: run_id.clone(),
        fingerprint: job.fingerprint(),
        watermark,
        partitions: partitions_state,
        tables,
        summary: Some(summary_relative),
    };
    checkpoint("before_commit").await;
    if let Err(e) = manifest::commit(&sink, &manifest).await {
        discard(&sink, &run_id).await;
        return Err(e);
    }
    progress.step("committed");
    tracing::info!(job = %job.name, version, run = %run_id, "committed");
    checkpoint("after_commit").await;
    publish_delta(&sink, &manifest, delta_adds.as_ref()).await?;
    manifest::write_listings(&sink, &manifest).await?;
    if let Some(html) = &report {
        match report::write(&sink, &report::current_key(), html).await {
            Ok(()) => tracing::info!(
                report = %manifest::reader_location(&sink, &report::current_key()),
                "report written"
            ),
            Err(e) => tracing::warn!(error = %e, "the outputs are committed, but not their report"),
        }
    }
    checkpoint("after_current").await;
    summary.prefixes_cleaned = match manifest::clean_up(&sink, &manifest).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cleaning up old run prefixes failed; the next run retries");
            0
        }
    };
    #[cfg(feature = "delta")]
    if job.sink_format == SinkFormat::Delta {
        match crate::delta_sink::clean_up(&sink, &manifest).await {
            Ok(n) => summary.prefixes_cleaned += n,
            Err(e) => tracing::warn!(error = %e, "cleaning up lost runs' Delta files failed"),
        }
    }
    progress.step("cleaned up");
    // only now that the outputs are committed; a failed delivery is a warning
    summary
        .warnings
        .extend(notify::deliver(&job.alerting, &job.name, &summary.alerts).await);
    summary.duration_s = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The report of the tables this run commits as version `version`: `metrics` (every day of
/// `daily_metrics`) and `alerts`. A report that cannot be drawn is a warning, not a failed run.
fn render_report(
    job: &Job,
    version: u64,
    metrics: &[RecordBatch],
    alerts: &RecordBatch,
) -> Option<String> {
    let info = ReportInfo {
        job: job.name.clone(),
        version: Some(version),
        generated_at: report::now(),
    };
    match report::render(&info, metrics, std::slice::from_ref(alerts)) {
        Ok(html) => Some(html),
        Err(e) => {
            tracing::warn!(error = %e, "drawing the report failed; the run commits without one");
            None
        }
    }
}

/// Deletes a losing run's files: its run directory and, for a Delta sink, its directory in
/// each table (best effort: a later run's clean-up gets what is left).
async fn discard(sink: &Place, run_id: &str) {
    let mut dirs = vec![format!("{RUNS_DIR}/{run_id}")];
    dirs.extend([SESSIONS_TABLE, METRICS_TABLE, ALERTS_TABLE].map(|t| format!("{t}/{run_id}")));
    for dir in dirs {
        let _ = manifest::delete_prefix(sink, &sink.key(&dir)).await;
    }
}

/// What a run read from its source: the computed output days and the source state to commit
/// with them.
struct SourceRead {
    computed: Computed,
    /// The output days to rewrite (each whole, or removed when it has no session now).
    affected: BTreeSet<NaiveDate>,
    /// Why everything is recomputed, for a full run.
    full_reason: Option<&'static str>,
    /// The manifest's `partitions` after this run.
    partitions_state: BTreeMap<String, String>,
}

/// Plans which output days to rewrite from which source partitions, and computes them; `None`
/// when nothing is new or changed (and no full run was asked for).
async fn read_source(
    job: &Job,
    options: &RunOptions,
    source: &Place,
    current: Option<&Manifest>,
    summary: &mut RunSummary,
    progress: &Reporter<'_>,
) -> Result<Option<SourceRead>, JobError> {
    #[cfg(feature = "delta")]
    if sessionlake_engine::delta::is_delta_table(source.store.as_ref(), &source.prefix)
        .await
        .map_err(|e| from_datafusion(e, format!("listing the lake {}", source.shown)))?
    {
        return read_delta_source(job, options, source, current, summary, progress).await;
    }
    let partitions = lake::list_partitions(source, &job.partition_column).await?;

    // which source partitions to process
    let processed: BTreeMap<String, String> = current
        .as_ref()
        .map(|m| m.partitions.clone())
        .unwrap_or_default();
    let asked: Vec<&Partition> = match options.dates {
        Dates::Pending => partitions
            .values()
            .filter(|p| processed.get(&p.day.to_string()) != Some(&p.digest()))
            .collect(),
        Dates::Range(first, last) => {
            let mut asked = Vec::new();
            for day in window::days_between(first, last) {
                match partitions.get(&day) {
                    Some(p) => asked.push(p),
                    None => {
                        return Err(JobError::data(format!(
                            "lake {}: no partition {}={day}",
                            source.shown, job.partition_column
                        )));
                    }
                }
            }
            asked
        }
    };
    summary.partitions_processed = asked.iter().map(|p| p.day.to_string()).collect();
    if asked.is_empty() && !options.full && same_settings(job, current) {
        return Ok(None);
    }

    // the lake's schema, from its first file
    let Some(reference_file) = partitions.values().flat_map(|p| p.files.first()).next() else {
        return Err(JobError::data(format!(
            "lake {}: no Parquet file in any partition",
            source.shown
        )));
    };
    let reference_schema = lake::file_schema(source, reference_file).await?;
    let reference_shown = lake::shown_file(source, reference_file);

    // full or incremental
    let options_session = &job.session.options;
    let full_reason = match &current {
        _ if options.full => Some("asked for (--full)"),
        None => Some("first run"),
        Some(m) if m.fingerprint != job.fingerprint() => Some("the job's settings changed"),
        Some(_) if options_session.mode.is_instrumented() => {
            Some("instrumented modes have no bounded read window")
        }
        Some(_) if options_session.max_length_nanos.is_none() => {
            Some("max_length = none has no bounded read window")
        }
        Some(_) => None,
    };
    let spans = Spans::from_nanos(
        job.session.largest_gap_nanos(),
        options_session.max_length_nanos.unwrap_or(0),
    );
    let zone = job.session.time_zone;

    // plan: (files, read window, output days) per computation
    let mut plans = Vec::new();
    let mut affected: BTreeSet<NaiveDate> = BTreeSet::new();
    if let Some(reason) = full_reason {
        summary.strategy = "full".into();
        summary.full_reason = Some(reason.to_string());
        plans.push(ReadPlan {
            files: partitions.values().flat_map(|p| p.files.clone()).collect(),
            partitions: partitions.len(),
            window: None,
            days: None,
        });
    } else {
        summary.strategy = "incremental".into();
        let asked_files: Vec<ObjectMeta> = asked.iter().flat_map(|p| p.files.clone()).collect();
        check_files(source, &asked_files, &reference_schema, &reference_shown).await?;
        let mut hours = event_hours(job, source, &asked_files, &reference_schema).await?;
        if options_session.anonymous_column.is_some() {
            let earlier: Vec<ObjectMeta> = partitions
                .values()
                .filter(|p| !asked.iter().any(|a| a.day == p.day))
                .flat_map(|p| p.files.clone())
                .collect();
            hours.extend(
                rewired_hours(job, source, &asked_files, &earlier, &reference_schema).await?,
            );
        }
        affected = window::affected_days_of_hours(&hours, spans, zone);
        for (first, last) in window::consecutive_runs(&affected) {
            let (start, end) = window::read_window(first, last, spans, zone);
            let first_partition = window::first_partition(start);
            let read: Vec<&Partition> = partitions
                .range(first_partition..)
                .map(|(_, p)| p)
                .collect();
            plans.push(ReadPlan {
                files: read.iter().flat_map(|p| p.files.clone()).collect(),
                partitions: read.len(),
                window: Some((start, end)),
                days: Some((first, last)),
            });
        }
    }
    let mut read_files: BTreeSet<object_store::path::Path> = BTreeSet::new();
    for plan in &plans {
        read_files.extend(plan.files.iter().map(|f| f.location.clone()));
    }
    let all_read: Vec<ObjectMeta> = partitions
        .values()
        .flat_map(|p| p.files.iter())
        .filter(|f| read_files.contains(&f.location))
        .cloned()
        .collect();
    check_files(source, &all_read, &reference_schema, &reference_shown).await?;
    // the events no committed run has read with these settings: every partition for a full
    // run, else those not processed with their current files (docs/jobs.md)
    let new_to_job: Vec<ObjectMeta> = partitions
        .values()
        .filter(|p| full_reason.is_some() || processed.get(&p.day.to_string()) != Some(&p.digest()))
        .flat_map(|p| p.files.iter())
        .filter(|f| read_files.contains(&f.location))
        .cloned()
        .collect();
    max_gap::check_files(job, source, &new_to_job, &reference_schema).await?;
    summary.files_read = all_read.len();
    summary.partitions_read = plans.iter().map(|p| p.partitions).max().unwrap_or(0);
    tracing::info!(
        job = %job.name,
        strategy = %summary.strategy,
        partitions = summary.partitions_processed.len(),
        days = affected.len(),
        files = summary.files_read,
        "planned"
    );
    checkpoint("planned").await;
    progress.add(plans.len() as u64);

    // compute (devices are identified over the whole lake)
    let lake_files: Vec<ObjectMeta> = partitions
        .values()
        .flat_map(|p| p.files.iter().cloned())
        .collect();
    let mut computed = Computed::default();
    for plan in &plans {
        let part = compute::compute(
            job,
            source,
            plan,
            &lake_files,
            &reference_schema,
            options.cluster.as_ref(),
        )
        .await?;
        progress.step(match plan.days {
            Some((a, b)) => format!("computed {a}..{b}"),
            None => "computed all days".to_string(),
        });
        computed.events_read += part.events_read;
        computed.long_sessions += part.long_sessions;
        for (reason, n) in part.bot_sessions {
            *computed.bot_sessions.entry(reason).or_default() += n;
        }
        computed.user_agent_check_skipped = part.user_agent_check_skipped;
        computed.sessions.extend(part.sessions);
        computed.metrics.extend(part.metrics);
    }
    if full_reason.is_some() {
        affected = computed.metrics.keys().copied().collect();
    }

    // the state that goes with the outputs
    let mut partitions_state = match (&current, full_reason) {
        (Some(m), None) => m.partitions.clone(),
        _ => BTreeMap::new(),
    };
    let newly: Vec<&Partition> = if full_reason.is_some() {
        partitions.values().collect()
    } else {
        asked.clone()
    };
    for p in &newly {
        partitions_state.insert(p.day.to_string(), p.digest());
    }
    Ok(Some(SourceRead {
        computed,
        affected,
        full_reason,
        partitions_state,
    }))
}

/// Whether the committed outputs were computed with `job`'s settings (a run with other
/// settings recomputes everything, new partitions or not).
fn same_settings(job: &Job, current: Option<&Manifest>) -> bool {
    current.is_some_and(|m| m.fingerprint == job.fingerprint())
}

/// The key of a Delta source's state in the manifest's `partitions`; its value is the table
/// version the committed outputs were computed from.
pub const DELTA_SOURCE_KEY: &str = "delta_version";

/// [`read_source`] for a Delta table: read through its log at its newest version, and
/// recomputed whole whenever that version is not the one the committed outputs came from.
#[cfg(feature = "delta")]
async fn read_delta_source(
    job: &Job,
    options: &RunOptions,
    source: &Place,
    current: Option<&Manifest>,
    summary: &mut RunSummary,
    progress: &Reporter<'_>,
) -> Result<Option<SourceRead>, JobError> {
    use sessionlake_engine::delta::{DeltaVersion, latest_version, open_delta_table};

    if options.cluster.is_some() {
        return Err(JobError::config(format!(
            "lake {}: a Delta table is read in this process; run the job without --cluster",
            source.shown
        )));
    }
    if let Dates::Range(..) = options.dates {
        return Err(JobError::config(format!(
            "lake {}: a Delta table is read whole at its newest version; --from/--to name \
             partitions of a Parquet lake",
            source.shown
        )));
    }
    let ctx = compute::new_context(&[source])?;
    let url = url::Url::parse(&format!("{}/", source.url(&source.prefix)))
        .map_err(|e| JobError::config(format!("lake {}: {e}", source.shown)))?;
    let data = |e| from_datafusion(e, format!("lake {}", source.shown));
    let version = latest_version(&ctx.state(), &url).await.map_err(data)?;
    let state = format!("{version}");
    summary.partitions_processed = vec![format!("{DELTA_SOURCE_KEY}={version}")];
    let processed = current.and_then(|m| m.partitions.get(DELTA_SOURCE_KEY));
    if processed == Some(&state) && !options.full && same_settings(job, current) {
        return Ok(None);
    }
    let reason = match current {
        _ if options.full => "asked for (--full)",
        None => "first run",
        Some(m) if m.fingerprint != job.fingerprint() => "the job's settings changed",
        Some(_) => "a Delta source is recomputed whole at each new version",
    };
    summary.strategy = "full".into();
    summary.full_reason = Some(reason.to_string());
    summary.partitions_read = 1;
    let version_number = i64::try_from(version)
        .map_err(|_| JobError::data(format!("lake {}: version {version}", source.shown)))?;
    let table = open_delta_table(&ctx.state(), &url, DeltaVersion::Version(version_number))
        .await
        .map_err(data)?;
    let schema = table.schema();
    // the whole table is read anew at each version, so all of it is checked
    max_gap::check(job, source, &ctx, Arc::clone(&table)).await?;
    tracing::info!(job = %job.name, version, "planned: the whole Delta table");
    checkpoint("planned").await;
    progress.add(1);
    let engines = compute::Engines {
        local: ctx.clone(),
        reader: ctx,
        on_cluster: String::new(),
    };
    let computed = compute::compute_table(
        job,
        source,
        &engines,
        table,
        &schema,
        compute::Window::default(),
    )
    .await?;
    progress.step("computed all days");
    Ok(Some(SourceRead {
        affected: computed.metrics.keys().copied().collect(),
        computed,
        full_reason: Some(reason),
        partitions_state: BTreeMap::from([(DELTA_SOURCE_KEY.to_string(), state)]),
    }))
}

/// Publishes a committed manifest to the Delta sink's tables, with the Add actions of the
/// files this run wrote; nothing for a Parquet sink.
#[cfg(feature = "delta")]
async fn publish_delta(
    sink: &Place,
    manifest: &Manifest,
    adds: Option<&crate::delta_sink::Adds>,
) -> Result<(), JobError> {
    let Some(adds) = adds else {
        return Ok(());
    };
    crate::delta_sink::publish(sink, manifest, Some(adds))
        .await
        .map_err(|e| {
            e.context(format!(
                "version {} is committed, but not yet in every Delta table (the next run of \
                 the job publishes it)",
                manifest.version
            ))
        })
}

#[cfg(not(feature = "delta"))]
async fn publish_delta(_: &Place, _: &Manifest, _: Option<&()>) -> Result<(), JobError> {
    Ok(())
}

/// A run's files for the sink: where each table file goes and how it is encoded, by the sink's
/// format, plus every other file of the run (exports, the summary).
struct TableFiles<'a> {
    format: SinkFormat,
    run_id: &'a str,
    /// Every file to write.
    writes: Vec<FileWrite>,
    #[cfg(feature = "delta")]
    adds: crate::delta_sink::Adds,
}

/// A file to write: its key relative to the sink, and its bytes.
type FileWrite = (String, Vec<u8>);

/// What a Delta sink publishes after the commit; nothing in a build without Delta.
#[cfg(feature = "delta")]
type DeltaAdds = Option<crate::delta_sink::Adds>;
#[cfg(not(feature = "delta"))]
type DeltaAdds = Option<()>;

impl<'a> TableFiles<'a> {
    fn new(format: SinkFormat, run_id: &'a str) -> Self {
        Self {
            format,
            run_id,
            writes: Vec::new(),
            #[cfg(feature = "delta")]
            adds: crate::delta_sink::Adds::new(),
        }
    }

    /// Adds the file of `table` for `day` (`None`: the whole table) holding `batch`; returns
    /// its key relative to the sink. The Parquet sink puts it in the run's directory,
    /// hive-partitioned by day; the Delta sink in the run's directory inside the table.
    fn add(
        &mut self,
        table: &str,
        day: Option<NaiveDate>,
        batch: &RecordBatch,
    ) -> Result<String, JobError> {
        match self.format {
            SinkFormat::Parquet => {
                let run_dir = format!("{RUNS_DIR}/{}", self.run_id);
                let relative = match day {
                    Some(day) => format!("{run_dir}/{table}/{DAY_COLUMN}={day}/part-0.parquet"),
                    None => format!("{run_dir}/{table}/part-0.parquet"),
                };
                let bytes = parquet_bytes(&batch.schema(), std::slice::from_ref(batch))?;
                self.writes.push((relative.clone(), bytes));
                Ok(relative)
            }
            #[cfg(feature = "delta")]
            SinkFormat::Delta => {
                let name = match day {
                    Some(day) => format!("part-{day}.parquet"),
                    None => "part-0.parquet".to_string(),
                };
                let staged = crate::delta_sink::stage(table, self.run_id, &name, batch)?;
                self.adds
                    .entry(table.to_string())
                    .or_default()
                    .push(staged.add);
                self.writes.push((staged.relative.clone(), staged.bytes));
                Ok(staged.relative)
            }
            #[cfg(not(feature = "delta"))]
            SinkFormat::Delta => Err(JobError::config(
                "sink.format = \"delta\" needs a build with Delta support",
            )),
        }
    }

    /// Every file to write, the Delta sink's record of its Add actions included, and what the
    /// Delta sink publishes after the commit.
    fn finish(self) -> Result<(Vec<FileWrite>, DeltaAdds), JobError> {
        #[cfg(feature = "delta")]
        if self.format == SinkFormat::Delta {
            let mut writes = self.writes;
            writes.push((
                crate::delta_sink::adds_key(self.run_id),
                crate::delta_sink::adds_bytes(&self.adds)?,
            ));
            return Ok((writes, Some(self.adds)));
        }
        Ok((self.writes, None))
    }
}

/// Checks every file's footer against the lake's schema.
async fn check_files(
    source: &Place,
    files: &[ObjectMeta],
    reference: &SchemaRef,
    reference_shown: &str,
) -> Result<(), JobError> {
    for file in files {
        let schema = lake::file_schema(source, file).await?;
        lake::check_schema(
            reference,
            reference_shown,
            &schema,
            &lake::shown_file(source, file),
        )?;
    }
    Ok(())
}

/// The distinct UTC hours (epoch ms of their start) of the events in `files`.
async fn event_hours(
    job: &Job,
    source: &Place,
    files: &[ObjectMeta],
    schema: &SchemaRef,
) -> Result<Vec<i64>, JobError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let hour = hour_expr(job, source, schema)?;
    let ctx = compute::new_context(&[source])?;
    register_files(&ctx, "new_events", source, files, schema).await?;
    let time = ident(&job.session.options.time_column);
    hours_of(
        &ctx,
        &format!("SELECT DISTINCT {hour} AS hour FROM new_events WHERE {time} IS NOT NULL"),
        source,
    )
    .await
}

/// The distinct UTC hours of the anonymous events that the partitions of `new_files` can give
/// another user than the rest of the lake (`old_files`) does (see [`identities`]).
async fn rewired_hours(
    job: &Job,
    source: &Place,
    new_files: &[ObjectMeta],
    old_files: &[ObjectMeta],
    schema: &SchemaRef,
) -> Result<Vec<i64>, JobError> {
    let options = &job.session.options;
    let Some(anonymous) = &options.anonymous_column else {
        return Ok(Vec::new());
    };
    if new_files.is_empty() {
        return Ok(Vec::new());
    }
    let hour = hour_expr(job, source, schema)?;
    let ctx = compute::new_context(&[source])?;
    register_files(&ctx, "new_events", source, new_files, schema).await?;
    register_files(&ctx, "old_events", source, old_files, schema).await?;
    hours_of(
        &ctx,
        &identities::rewired_devices_sql(options, anonymous, &hour),
        source,
    )
    .await
}

/// The SQL expression of an event's UTC hour (epoch ms of its start), from the time column.
fn hour_expr(job: &Job, source: &Place, schema: &SchemaRef) -> Result<String, JobError> {
    let time_column = &job.session.options.time_column;
    let unit = match schema
        .field_with_name(time_column)
        .map(|f| f.data_type().clone())
    {
        Ok(DataType::Timestamp(unit, _)) => unit,
        Ok(other) => {
            return Err(JobError::data(format!(
                "lake {}: column '{time_column}' must be a timestamp, found {other}",
                source.shown
            )));
        }
        Err(_) => {
            return Err(JobError::data(format!(
                "lake {}: no time column '{time_column}' (session.time_column)",
                source.shown
            )));
        }
    };
    let ticks_per_hour: i64 = match unit {
        TimeUnit::Second => 3_600,
        TimeUnit::Millisecond => 3_600_000,
        TimeUnit::Microsecond => 3_600_000_000,
        TimeUnit::Nanosecond => 3_600_000_000_000,
    };
    let time = ident(time_column);
    Ok(format!(
        "CAST(floor(CAST(arrow_cast({time}, 'Int64') AS DOUBLE) / {ticks_per_hour}) AS BIGINT) * 3600000"
    ))
}

/// Registers the Parquet `files` (with `schema`) as the table `name`; no files, no rows.
async fn register_files(
    ctx: &SessionContext,
    name: &str,
    source: &Place,
    files: &[ObjectMeta],
    schema: &SchemaRef,
) -> Result<(), JobError> {
    let registered = if files.is_empty() {
        ctx.register_table(
            name,
            Arc::new(
                MemTable::try_new(Arc::clone(schema), vec![])
                    .map_err(|e| from_datafusion(e, "an empty table"))?,
            ),
        )
    } else {
        let urls: Vec<String> = files.iter().map(|f| source.url(&f.location)).collect();
        let table = compute::files_table(ctx, &urls, Some(Arc::clone(schema))).await?;
        ctx.register_table(name, table)
    };
    registered.map_err(|e| from_datafusion(e, format!("registering {name}")))?;
    Ok(())
}

/// The non-NULL BIGINT values of the first column of `sql`'s result.
async fn hours_of(ctx: &SessionContext, sql: &str, source: &Place) -> Result<Vec<i64>, JobError> {
    let batches = compute::query(ctx, sql)
        .await
        .map_err(|e| e.context(format!("reading the new partitions of {}", source.shown)))?;
    let mut hours = Vec::new();
    for batch in &batches {
        if let Some(column) = batch.column(0).as_primitive_opt::<Int64Type>() {
            hours.extend(column.iter().flatten());
        }
    }
    Ok(hours)
}

/// Reads the sink files `files` (day, relative path) into batches with `schema`.
async fn read_committed(
    ctx: &SessionContext,
    sink: &Place,
    files: &[(String, String)],
    schema: Option<SchemaRef>,
) -> Result<Vec<RecordBatch>, JobError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let urls: Vec<String> = files.iter().map(|(_, f)| sink.url(&sink.key(f))).collect();
    let table = compute::files_table(ctx, &urls, schema).await?;
    ctx.read_table(table)
        .map_err(|e| from_datafusion(e, "reading committed output"))?
        .collect()
        .await
        .map_err(|e| from_datafusion(e, format!("reading committed output in {}", sink.shown)))
}

/// Registers `sessions`: the days from `earliest` on, computed ones from memory, the others
/// read from their committed files as the statements run (the users table reads every day).
async fn register_sessions(
    ctx: &SessionContext,
    sink: &Place,
    computed: &Computed,
    kept: &[(String, String)],
    earliest: NaiveDate,
) -> Result<(), JobError> {
    let context = |e| from_datafusion(e, "sessions for the users table and exports");
    let fresh: Vec<RecordBatch> = computed
        .sessions
        .range(earliest..)
        .map(|(_, b)| b.clone())
        .collect();
    let old: Vec<String> = kept
        .iter()
        .filter(|(d, _)| d.parse::<NaiveDate>().is_ok_and(|d| d >= earliest))
        .map(|(_, f)| sink.url(&sink.key(f)))
        .collect();
    let schema = computed.sessions.values().next().map(|b| b.schema());
    let mut frame = None;
    if !old.is_empty() {
        let table = compute::files_table(ctx, &old, schema.clone()).await?;
        frame = Some(ctx.read_table(table).map_err(context)?);
    }
    if let Some(schema) = schema {
        let fresh = MemTable::try_new(schema, vec![fresh]).map_err(context)?;
        let fresh = ctx.read_table(Arc::new(fresh)).map_err(context)?;
        frame = Some(match frame {
            Some(old) => old.union(fresh).map_err(context)?,
            None => fresh,
        });
    }
    if let Some(frame) = frame {
        ctx.register_table("sessions", frame.into_view())
            .map_err(context)?;
    }
    Ok(())
}
