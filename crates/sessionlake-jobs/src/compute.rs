//! The sessions and daily metrics of a set of output days, computed with the sessionlake engine
//! (`sessions(...)`, `sessionize(...)` and the formula aggregates) over the events of a read
//! window.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Date32Type, SchemaRef, TimeUnit};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{DataFrame, SessionContext, col, lit};
use object_store::ObjectMeta;
use sessionlake_engine::SessionOptions;
use sessionlake_engine::stitch::stitch;
use sessionlake_functions::time_unit::nanos_to_ticks;

use crate::cluster::Cluster;
use crate::error::{JobError, from_datafusion};
use crate::job_file::{Bounce, Job};
use crate::location::Place;
use crate::metrics::{length_ms, metrics_sql, segment_value_column, segment_value_columns};
use crate::sql::{ACTIVE_DAYS, DAY_COLUMN, ident, quote};

/// [`ACTIVE_DAYS`] in the property aggregates over `sessionize`.
const P_ACTIVE_DAYS: &str = "p_active_days";

/// What one computation produced, per output day.
#[derive(Debug, Default)]
pub struct Computed {
    /// Kept sessions (bots included, flagged), sorted by user, start and key.
    pub sessions: BTreeMap<NaiveDate, RecordBatch>,
    /// One metrics row per day that has a session (kept or over-long).
    pub metrics: BTreeMap<NaiveDate, RecordBatch>,
    /// Events read.
    pub events_read: u64,
    /// Sessions left out for being longer than `max_length`.
    pub long_sessions: u64,
    /// Sessions flagged as bots, by reason.
    pub bot_sessions: BTreeMap<String, u64>,
    /// Set when the bot filter's user agent check was skipped, with the reason.
    pub user_agent_check_skipped: Option<String>,
}

/// A new engine context that can read `places`.
pub fn new_context(places: &[&Place]) -> Result<SessionContext, JobError> {
    let ctx =
        sessionlake_engine::new_context().map_err(|e| from_datafusion(e, "creating the engine"))?;
    for place in places {
        if place.store_url.scheme() != "file" {
            ctx.register_object_store(&place.store_url, Arc::clone(&place.store));
        }
    }
    Ok(ctx)
}

/// A table over exactly `urls` (Parquet files), with `schema` if given.
pub async fn files_table(
    ctx: &SessionContext,
    urls: &[String],
    schema: Option<SchemaRef>,
) -> Result<Arc<ListingTable>, JobError> {
    let paths = urls
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<datafusion::error::Result<Vec<_>>>()
        .map_err(|e| from_datafusion(e, "file URLs"))?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(paths).with_listing_options(options);
    let config = match schema {
        Some(schema) => config.with_schema(schema),
        None => config
            .infer_schema(&ctx.state())
            .await
            .map_err(|e| from_datafusion(e, "reading the Parquet schema"))?,
    };
    let table = ListingTable::try_new(config).map_err(|e| from_datafusion(e, "listing table"))?;
    Ok(Arc::new(table))
}

/// `events` with the user column replaced by the stitched user, devices (the column
/// `anonymous`) identified over the events of `identify_from`.
fn stitched(
    engine: &SessionContext,
    events: DataFrame,
    identify_from: Arc<dyn TableProvider>,
    options: &SessionOptions,
    anonymous: &str,
) -> Result<DataFrame, JobError> {
    let context = |e| from_datafusion(e, "identifying devices (session.anonymous_column)");
    let identify_from = engine.read_table(identify_from).map_err(context)?;
    let plan = stitch(
        events.into_unoptimized_plan(),
        identify_from.into_unoptimized_plan(),
        &options.user_column,
        anonymous,
        &options.time_column,
    )
    .map_err(context)?;
    Ok(DataFrame::new(engine.state(), plan))
}

/// One computation of a run: the files to read, the read window and the output days.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    pub files: Vec<ObjectMeta>,
    /// The source partitions the files are in.
    pub partitions: usize,
    /// The events read are those with a time in this window (epoch ms, inclusive); all when
    /// `None`.
    pub window: Option<(i64, i64)>,
    /// The output days computed; all days when `None`.
    pub days: Option<(NaiveDate, NaiveDate)>,
}

/// Computes the sessions and metrics of `plan`'s output days from the events of its files in
/// its read window. With `session.anonymous_column`, devices are identified over the events of
/// `lake_files`, the whole lake (a window alone could miss a device's earliest identified
/// event).
///
/// With a `cluster`, the heavy part runs there: reading the files, counting the events and
/// sessionizing them (the statement of `sessions_sql`); its result, one row per session of
/// the window, comes back here, and the metrics over it run in this process as without one.
pub async fn compute(
    job: &Job,
    source: &Place,
    plan: &ReadPlan,
    lake_files: &[ObjectMeta],
    schema: &SchemaRef,
    cluster: Option<&Cluster>,
) -> Result<Computed, JobError> {
    let files = &plan.files;
    if files.is_empty() {
        return Ok(Computed::default());
    }
    let ctx = new_context(&[source])?;
    // where the lake is read and sessionized: the cluster, or this process's context itself
    let engine = match cluster {
        Some(cluster) => {
            // the plan names the lake's URL unchanged: the scheduler and the executors open it
            // through their own object stores, this client through the source's
            let engine = cluster.context().await?;
            if source.store_url.scheme() != "file" {
                engine.register_object_store(&source.store_url, Arc::clone(&source.store));
            }
            engine
        }
        None => ctx.clone(),
    };
    let on_cluster = cluster
        .map(|c| format!(" on the cluster {}", c.name))
        .unwrap_or_default();
    let urls: Vec<String> = files.iter().map(|f| source.url(&f.location)).collect();
    let table = files_table(&engine, &urls, Some(Arc::clone(schema))).await?;
    let identify_from: Option<Arc<dyn TableProvider>> =
        match (&job.session.options.anonymous_column, plan.window) {
            (Some(_), Some(_)) => {
                let urls: Vec<String> =
                    lake_files.iter().map(|f| source.url(&f.location)).collect();
                Some(files_table(&engine, &urls, Some(Arc::clone(schema))).await?)
            }
            _ => None,
        };
    let engines = Engines {
        local: ctx,
        reader: engine,
        on_cluster,
    };
    let window = Window {
        read: plan.window,
        days: plan.days,
        identify_from,
    };
    compute_table(job, source, &engines, table, schema, window).await
}

/// Which part of a table a computation covers.
#[derive(Default)]
pub struct Window {
    /// The events read are those with a time in this window (epoch ms, inclusive); all when
    /// `None`.
    pub read: Option<(i64, i64)>,
    /// The output days computed; all days when `None`.
    pub days: Option<(NaiveDate, NaiveDate)>,
    /// With `session.anonymous_column`: the events devices are identified over, when not the
    /// whole table read (a read window of a larger lake).
    pub identify_from: Option<Arc<dyn TableProvider>>,
}

/// The contexts a computation runs on.
pub struct Engines {
    /// This process's context: the metrics over the sessions run here.
    pub local: SessionContext,
    /// Where the lake is read and sessionized: a cluster's context, or `local`.
    pub reader: SessionContext,
    /// ` on the cluster NAME` for messages, or empty.
    pub on_cluster: String,
}

/// [`compute`] over the events of `table` (whose schema is `schema`), read on `engines.reader`.
pub async fn compute_table(
    job: &Job,
    source: &Place,
    engines: &Engines,
    table: Arc<dyn TableProvider>,
    schema: &SchemaRef,
    window: Window,
) -> Result<Computed, JobError> {
    let Window {
        read: window,
        days,
        identify_from,
    } = window;
    let mut computed = Computed::default();
    let ctx = &engines.local;
    let engine = &engines.reader;
    let on_cluster = &engines.on_cluster;
    let options = &job.session.options;
    let time_field = schema.field_with_name(&options.time_column).map_err(|_| {
        JobError::data(format!(
            "lake {}: no time column '{}' (session.time_column)",
            source.shown, options.time_column
        ))
    })?;
    let (unit, zone) = match time_field.data_type() {
        DataType::Timestamp(unit, zone) => (*unit, zone.clone()),
        other => {
            return Err(JobError::data(format!(
                "lake {}: column '{}' must be a timestamp, found {other}",
                source.shown, options.time_column
            )));
        }
    };
    if job
        .quality
        .as_ref()
        .is_some_and(|q| !q.interactions.is_empty())
        && schema.field_with_name("event_type").is_err()
    {
        return Err(JobError::data(format!(
            "lake {}: no column 'event_type' to count interactions \
             (outputs.sessions.quality.interactions)",
            source.shown
        )));
    }
    let identify_from = identify_from.unwrap_or_else(|| Arc::clone(&table));
    let mut frame = engine
        .read_table(table)
        .map_err(|e| from_datafusion(e, "reading the lake"))?;
    if let Some((start_ms, end_ms)) = window {
        let bound = |ms: i64, round_up: bool| -> ScalarValue {
            let ticks = ms_to_ticks(ms, unit, round_up);
            match unit {
                TimeUnit::Second => ScalarValue::TimestampSecond(Some(ticks), zone.clone()),
                TimeUnit::Millisecond => {
                    ScalarValue::TimestampMillisecond(Some(ticks), zone.clone())
                }
                TimeUnit::Microsecond => {
                    ScalarValue::TimestampMicrosecond(Some(ticks), zone.clone())
                }
                TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(Some(ticks), zone.clone()),
            }
        };
        let time = col(ident(&options.time_column));
        frame = frame
            .filter(
                time.clone()
                    .gt_eq(lit(bound(start_ms, false)))
                    .and(time.lt_eq(lit(bound(end_ms, true)))),
            )
            .map_err(|e| from_datafusion(e, "filtering the read window"))?;
    }
    if let Some(anonymous) = &options.anonymous_column {
        frame = stitched(engine, frame, identify_from, options, anonymous)?;
    }
    engine
        .register_table("events", frame.into_view())
        .map_err(|e| from_datafusion(e, "registering the events"))?;

    let counted = engine
        .sql("SELECT count(*) FROM events")
        .await
        .map_err(|e| from_datafusion(e, "counting events"))?
        .collect()
        .await
        .map_err(|e| {
            from_datafusion(e, format!("reading the lake {}{on_cluster}", source.shown))
        })?;
    computed.events_read = counted
        .first()
        .and_then(|b| {
            b.column(0)
                .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
        })
        .map_or(0, |a| u64::try_from(a.value(0)).unwrap_or(0));

    let sql = sessions_sql(job, schema, unit, days, &mut computed);
    let in_days = match days {
        Some((first, last)) => format!("BETWEEN DATE '{first}' AND DATE '{last}'"),
        None => "IS NOT NULL".to_string(),
    };
    let all = engine
        .sql(&sql)
        .await
        .map_err(|e| from_datafusion(e, "planning the sessions query"))?
        .collect()
        .await
        .map_err(|e| {
            from_datafusion(
                e,
                format!("computing sessions from {}{on_cluster}", source.shown),
            )
        })?;
    let all_schema = match all.first() {
        Some(b) => b.schema(),
        None => return Ok(computed),
    };
    let mem = MemTable::try_new(Arc::clone(&all_schema), vec![all])
        .map_err(|e| from_datafusion(e, "sessions in memory"))?;
    ctx.register_table("window_sessions", Arc::new(mem))
        .map_err(|e| from_datafusion(e, "sessions in memory"))?;

    let user = ident(&options.user_column);
    let counts = query(
        ctx,
        &format!(
            "SELECT CAST(count(*) FILTER (WHERE is_long) AS BIGINT), \
         CAST(count(*) FILTER (WHERE NOT is_long AND bot_reason = 'events_per_minute') AS BIGINT), \
         CAST(count(*) FILTER (WHERE NOT is_long AND bot_reason = 'user_agent') AS BIGINT) \
         FROM window_sessions WHERE {DAY_COLUMN} {in_days}"
        ),
    )
    .await?;
    if let Some(batch) = counts.first() {
        let value = |i: usize| {
            batch
                .column(i)
                .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
                .map_or(0, |a| u64::try_from(a.value(0)).unwrap_or(0))
        };
        computed.long_sessions = value(0);
        for (i, reason) in [(1, "events_per_minute"), (2, "user_agent")] {
            if value(i) > 0 {
                computed.bot_sessions.insert(reason.to_string(), value(i));
            }
        }
    }

    let hidden = segment_value_columns(job);
    let kept = query(
        ctx,
        &format!(
            "SELECT * EXCLUDE (is_long, {ACTIVE_DAYS}{hidden}) FROM window_sessions \
             WHERE NOT is_long AND {DAY_COLUMN} {in_days} \
             ORDER BY {DAY_COLUMN}, {user}, session_start, session_key, session_end"
        ),
    )
    .await?;
    computed.sessions = split_by_day(&kept)?;

    let metrics = query(ctx, &metrics_sql(job, &in_days)).await?;
    computed.metrics = split_by_day(&metrics)?;
    Ok(computed)
}

/// The statement producing the sessions of the window (over-long ones flagged `is_long`) with
/// their day, properties, bounce and bot flags, and the days (in the job's zone) of their
/// events: every session starting on one of `days`, and every other session that may have an
/// event on one of them (its start day is not after the last, its end day not before the
/// first), for the active users of those days.
fn sessions_sql(
    job: &Job,
    schema: &SchemaRef,
    unit: TimeUnit,
    days: Option<(NaiveDate, NaiveDate)>,
    computed: &mut Computed,
) -> String {
    let options = &job.session.options;
    let user = ident(&options.user_column);
    let mut args: Vec<String> = job.session.engine_args.iter().map(|a| quote(a)).collect();
    args.push(quote("max_length=none"));
    let args = args.join(", ");
    let zone = quote(job.session.time_zone.name());
    let has_event_type = schema.field_with_name("event_type").is_ok();

    // property aggregates over the sessionized rows, only when some are asked for
    let mut props: Vec<(String, String)> = Vec::new();
    let p = &job.sessions;
    for c in &p.entry {
        props.push((
            format!("entry_{c}"),
            format!("first_value({} ORDER BY event_index)", ident(c)),
        ));
    }
    for c in &p.exit {
        props.push((
            format!("exit_{c}"),
            format!("last_value({} ORDER BY event_index)", ident(c)),
        ));
    }
    for c in &p.first {
        props.push((format!("first_{c}"), first_non_null(&ident(c))));
    }
    for c in &p.last {
        props.push((
            format!("last_{c}"),
            format!(
                "last_value({0} ORDER BY event_index) FILTER (WHERE {0} IS NOT NULL)",
                ident(c)
            ),
        ));
    }
    for (i, column) in job.segments.columns.iter().enumerate() {
        props.push((
            format!("p_{}", segment_value_column(i)),
            first_non_null(&ident(column)),
        ));
    }
    let quality_columns = match &job.quality {
        Some(quality) => {
            let (interactions, shown) = match quality.interactions_sql() {
                Some(count) => {
                    props.push(("p_interactions".into(), count));
                    let interactions = "coalesce(p.p_interactions, 0)";
                    (interactions, format!("{interactions} AS interactions, "))
                }
                None => ("CAST(0 AS BIGINT)", String::new()),
            };
            format!(
                "{shown}{} AS quality,",
                quality.class_sql(length_ms(job.length), interactions)
            )
        }
        None => String::new(),
    };
    let bounce = match &job.bounce {
        Bounce::SingleEvent => "s.event_count = 1".to_string(),
        Bounce::OneEventOfType(t) => {
            props.push((
                "p_bounce".into(),
                format!("count(*) FILTER (WHERE event_type = {}) = 1", quote(t)),
            ));
            "coalesce(p.p_bounce, false)".to_string()
        }
    };
    let mut bot_cases = Vec::new();
    if let Some(bots) = &job.bots {
        if let Some(rate) = bots.max_events_per_minute {
            bot_cases.push(format!(
                "WHEN CAST(s.event_count AS DOUBLE) / greatest(CAST(s.duration_ms AS DOUBLE) / 60000.0, 1.0) > {rate:?} THEN 'events_per_minute'"
            ));
        }
        if let Some(pattern) = &bots.user_agent_pattern {
            if schema.field_with_name(&bots.user_agent_column).is_ok() {
                props.push((
                    "p_user_agent".into(),
                    first_non_null(&ident(&bots.user_agent_column)),
                ));
                bot_cases.push(format!(
                    "WHEN regexp_like(CAST(p.p_user_agent AS VARCHAR), {}) THEN 'user_agent'",
                    quote(pattern)
                ));
            } else {
                computed.user_agent_check_skipped = Some(format!(
                    "the lake has no column '{}' (bots.user_agent_column)",
                    bots.user_agent_column
                ));
            }
        }
    }
    let bot_reason = if bot_cases.is_empty() {
        "CAST(NULL AS VARCHAR)".to_string()
    } else {
        format!("CASE {} END", bot_cases.join(" "))
    };
    let max_ticks = options.max_length_nanos.map(|n| nanos_to_ticks(n, unit));
    let is_long = match max_ticks {
        Some(ticks) => format!(
            "(arrow_cast(s.session_end, 'Int64') - arrow_cast(s.session_start, 'Int64')) > {ticks}"
        ),
        None => "false".to_string(),
    };
    let day_filter = match days {
        Some((first, last)) => {
            format!("WHERE s.{DAY_COLUMN} <= DATE '{last}' AND s.p_end_day >= DATE '{first}'")
        }
        None => String::new(),
    };
    let event_type_columns = if has_event_type {
        "s.first_event_type, s.last_event_type,"
    } else {
        ""
    };
    // the days of a session's events, in the zone; the time column as UTC first (a column
    // without a zone holds UTC times, as for the engine)
    let utc = format!("Timestamp({unit:?}, Some(\"UTC\"))");
    props.push((
        P_ACTIVE_DAYS.into(),
        format!(
            "array_agg(DISTINCT CAST(arrow_cast({}, {}) AT TIME ZONE {zone} AS DATE))",
            ident(&options.time_column),
            quote(&utc)
        ),
    ));
    let aggregates: Vec<String> = props
        .iter()
        .map(|(name, expr)| format!("{expr} AS {}", ident(name)))
        .collect();
    let props_cte = format!(
        ", p AS (
            SELECT {user} AS p_user, session_key AS p_key, session_start AS p_start, {}
            FROM sessionize('events', {args})
            WHERE session_key IS NOT NULL
            GROUP BY {user}, session_key, session_start
        )",
        aggregates.join(", ")
    );
    let join = "LEFT JOIN p ON s.".to_string()
        + &user
        + " = p.p_user AND s.session_key = p.p_key AND s.session_start = p.p_start";
    let prop_columns: String = props
        .iter()
        .filter(|(name, _)| !name.starts_with("p_"))
        .map(|(name, _)| format!("p.{}, ", ident(name)))
        .collect();
    let segment_values: String = (0..job.segments.columns.len())
        .map(|i| {
            let column = segment_value_column(i);
            format!(", p.p_{column} AS {column}")
        })
        .collect();
    let reported_column = if options.reported_duration.is_some() {
        "s.reported_duration_ms,"
    } else {
        ""
    };
    format!(
        "WITH s AS (
            SELECT *, CAST(session_start AT TIME ZONE {zone} AS DATE) AS {DAY_COLUMN},
                CAST(session_end AT TIME ZONE {zone} AS DATE) AS p_end_day
            FROM sessions('events', {args})
        ){props_cte}
        SELECT s.{DAY_COLUMN}, s.{user}, s.session_key, s.session_start, s.session_end,
            s.duration_ms, s.event_count, {event_type_columns} {reported_column} {prop_columns}
            {quality_columns}
            {bounce} AS is_bounce,
            {bot_reason} AS bot_reason,
            {is_long} AS is_long,
            p.{P_ACTIVE_DAYS} AS {ACTIVE_DAYS}{segment_values}
        FROM s {join}
        {day_filter}"
    )
}

/// The first non-NULL value of `column` (quoted) in a session's event order, over `sessionize`
/// rows: the value of `first_<c>` columns, segments and the bot rule's user agent.
fn first_non_null(column: &str) -> String {
    format!("first_value({column} ORDER BY event_index) FILTER (WHERE {column} IS NOT NULL)")
}

/// Epoch milliseconds in ticks of `unit`, rounded down or up when `unit` is seconds.
fn ms_to_ticks(ms: i64, unit: TimeUnit, round_up: bool) -> i64 {
    match unit {
        TimeUnit::Second if round_up => ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0),
        TimeUnit::Second => ms.div_euclid(1000),
        TimeUnit::Millisecond => ms,
        TimeUnit::Microsecond => ms.saturating_mul(1_000),
        TimeUnit::Nanosecond => ms.saturating_mul(1_000_000),
    }
}

/// Runs `sql` and collects its result.
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, JobError> {
    ctx.sql(sql)
        .await
        .map_err(|e| from_datafusion(e, "planning"))?
        .collect()
        .await
        .map_err(|e| from_datafusion(e, "computing"))
}

/// Splits batches sorted by their first column (a Date32 day) into one batch per day.
pub fn split_by_day(batches: &[RecordBatch]) -> Result<BTreeMap<NaiveDate, RecordBatch>, JobError> {
    let mut out = BTreeMap::new();
    let Some(first) = batches.first() else {
        return Ok(out);
    };
    // no schema metadata: the engine's per-call marks must not reach the files
    let schema = Arc::new(
        first
            .schema()
            .as_ref()
            .clone()
            .with_metadata(Default::default()),
    );
    let all = concat_batches(&first.schema(), batches)
        .and_then(|b| RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec()))
        .map_err(|e| JobError::failed(format!("concatenating results: {e}")))?;
    let Some(days) = all.column(0).as_primitive_opt::<Date32Type>() else {
        return Err(JobError::failed("results: the first column is not a date"));
    };
    let mut start = 0;
    while start < all.num_rows() {
        if days.is_null(start) {
            return Err(JobError::failed("results: a session has no day"));
        }
        let value = days.value(start);
        let mut end = start + 1;
        while end < all.num_rows() && days.is_valid(end) && days.value(end) == value {
            end += 1;
        }
        let day = Date32Type::to_naive_date_opt(value).unwrap_or_default();
        out.insert(day, all.slice(start, end - start));
        start = end;
    }
    Ok(out)
}
