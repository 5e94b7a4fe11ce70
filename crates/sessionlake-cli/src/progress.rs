//! Progress on stderr: the line of a long query (rows scanned so far and the time elapsed,
//! redrawn while the query runs and erased when it ends, shown only when stderr is a terminal),
//! and the bars of `import` and `job run`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::physical_plan::ExecutionPlan;
use tokio::task::JoinHandle;

/// A query shorter than this shows no progress line at all.
const QUIET_START: Duration = Duration::from_millis(800);
const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// A running progress line; dropping it (when the query ends or is cancelled) erases it.
pub struct Progress {
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts redrawing the progress of `plan` on stderr if `enabled`.
    pub fn start(plan: Arc<dyn ExecutionPlan>, enabled: bool) -> Self {
        if !enabled {
            return Self { ticker: None };
        }
        let started = Instant::now();
        let ticker = tokio::spawn(async move {
            tokio::time::sleep(QUIET_START).await;
            loop {
                let line = format!(
                    "{} rows scanned, {:.1} s",
                    group_thousands(rows_scanned(plan.as_ref())),
                    started.elapsed().as_secs_f64()
                );
                // carriage return + erase line: redraw in place
                let _ = write!(std::io::stderr(), "\r\x1b[2K{line}");
                tokio::time::sleep(REDRAW_EVERY).await;
            }
        });
        Self {
            ticker: Some(ticker),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// A progress bar on stderr drawn with `template` (indicatif's syntax), empty until its length
/// is set.
pub fn bar(template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// The rows produced so far by the leaves of `plan` (the scans). The metrics are live counters
/// that the running operators update.
pub fn rows_scanned(plan: &dyn ExecutionPlan) -> usize {
    let children = plan.children();
    if children.is_empty() {
        return plan
            .metrics()
            .and_then(|metrics| metrics.output_rows())
            .unwrap_or(0);
    }
    children.into_iter().map(|c| rows_scanned(c.as_ref())).sum()
}

/// `1234567` as `1,234,567`.
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1234567), "1,234,567");
    }

    #[tokio::test]
    async fn rows_scanned_counts_what_the_scans_produced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.sql(&format!(
            "COPY (SELECT * FROM (VALUES (1), (2), (3)) AS t(x)) TO '{}' STORED AS PARQUET",
            path.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        ctx.register_parquet("t", path.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let frame = ctx.sql("SELECT sum(x) FROM t").await.unwrap();
        let plan = frame.create_physical_plan().await.unwrap();
        assert_eq!(rows_scanned(plan.as_ref()), 0);
        datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx())
            .await
            .unwrap();
        assert_eq!(rows_scanned(plan.as_ref()), 3);
    }
}
