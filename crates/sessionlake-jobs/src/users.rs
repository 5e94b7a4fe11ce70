//! The users table (`[outputs.users]`): one row per user over the whole sessions table, bot
//! sessions left out: first and last session start, lifetime sessions, total and median length,
//! sessions of the last 7 and 30 days, and with quality classes the share of each and a lifetime
//! class. It is derived from the committed sessions table on every run, so an incremental run
//! writes exactly what a full recompute writes.

use chrono::{Days, NaiveDate};

use crate::job_file::Job;
use crate::quality::QualityRule;
use crate::sql::{DAY_COLUMN, ident, quote};

/// The recent windows, in days ending at the sessions table's latest day.
pub const RECENT_DAYS: [u64; 2] = [7, 30];

/// The share column of a quality class.
pub fn share_column(class: &str) -> String {
    format!("share_{class}")
}

/// The statement computing the users table from the table `sessions` registered on the
/// context, whose latest day is `latest`; sorted by user.
pub fn users_sql(job: &Job, latest: NaiveDate) -> String {
    let user = ident(&job.session.options.user_column);
    let mut columns = vec![
        user.clone(),
        "min(session_start) AS first_session_start".to_string(),
        "max(session_start) AS last_session_start".to_string(),
        "CAST(count(*) AS BIGINT) AS lifetime_sessions".to_string(),
        "CAST(sum(duration_ms) AS DOUBLE) / 1000.0 AS total_length_s".to_string(),
        "median(CAST(duration_ms AS DOUBLE)) / 1000.0 AS median_length_s".to_string(),
    ];
    for days in RECENT_DAYS {
        let first = latest
            .checked_sub_days(Days::new(days - 1))
            .unwrap_or(latest);
        columns.push(format!(
            "CAST(count(*) FILTER (WHERE {DAY_COLUMN} BETWEEN DATE '{first}' AND DATE '{latest}') \
             AS BIGINT) AS sessions_{days}d"
        ));
    }
    if let Some(quality) = &job.quality {
        for class in &quality.classes {
            columns.push(format!(
                "CAST(count(*) FILTER (WHERE quality = {}) AS DOUBLE) / CAST(count(*) AS DOUBLE) \
                 AS {}",
                quote(&class.name),
                ident(&share_column(&class.name))
            ));
        }
        columns.push(format!(
            "{} AS lifetime_quality",
            lifetime_class_sql(quality)
        ));
    }
    format!(
        "SELECT {} FROM sessions WHERE bot_reason IS NULL GROUP BY {user} ORDER BY {user}",
        columns.join(",\n    ")
    )
}

/// The class most of a user's sessions have; a tie goes to the class listed first; NULL when no
/// session has a class. Class `i` wins when it has more sessions than every class before it, at
/// least as many as every class after it, and at least one.
fn lifetime_class_sql(quality: &QualityRule) -> String {
    let count = |name: &str| format!("count(*) FILTER (WHERE quality = {})", quote(name));
    let mut cases = String::from("CASE");
    for (i, class) in quality.classes.iter().enumerate() {
        let mine = count(&class.name);
        let mut conditions = vec![format!("{mine} > 0")];
        for (j, other) in quality.classes.iter().enumerate() {
            match j.cmp(&i) {
                std::cmp::Ordering::Less => {
                    conditions.push(format!("{mine} > {}", count(&other.name)));
                }
                std::cmp::Ordering::Greater => {
                    conditions.push(format!("{mine} >= {}", count(&other.name)));
                }
                std::cmp::Ordering::Equal => {}
            }
        }
        cases.push_str(&format!(
            " WHEN {} THEN {}",
            conditions.join(" AND "),
            quote(&class.name)
        ));
    }
    cases.push_str(" END");
    cases
}
