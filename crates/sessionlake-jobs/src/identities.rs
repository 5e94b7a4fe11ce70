//! Identity stitching in lake jobs (`session.anonymous_column`), by the engine's rule (see
//! `docs/semantics.md`): an event with a NULL user takes the user its device is identified as,
//! the user of the device's earliest event with a user.
//!
//! A run reads a window of the lake, but a device's earliest identified event can be anywhere
//! in it, so devices are identified over the whole lake (`compute::Window::identify_from`). And a new event can
//! re-attribute old ones: when new partitions hold a device's earliest identified event (its
//! first sign-in, or a late row that is earlier than the one known), every anonymous event of
//! that device changes user, whatever its day. [`rewired_devices_sql`] finds those events'
//! hours, which the run adds to the hours of its new events; the days they can change follow
//! from the same rule (`docs/jobs.md`).

use sessionlake_engine::SessionOptions;

use crate::sql::ident;

/// A query over the tables `new_events` (the partitions a run processes) and `old_events` (the
/// rest of the lake) giving the time column of every anonymous event (NULL user) whose device
/// `new_events` may identify differently than `old_events` alone: the device's earliest
/// identified event in `new_events` (by time, then user as text) comes before the one in
/// `old_events`, or `old_events` has none, and names another user.
///
/// A partition processed again (its files changed) is in `new_events` whole, so a device it
/// identified before counts as re-identified: that rewrites more days than needed, never fewer.
pub fn rewired_devices_sql(options: &SessionOptions, anonymous: &str, time_expr: &str) -> String {
    let user = ident(&options.user_column);
    let device = ident(anonymous);
    let time = ident(&options.time_column);
    let identified = |table: &str| {
        format!(
            "SELECT {device} AS device, min({time}) AS first_time, \
             first_value(CAST({user} AS VARCHAR) ORDER BY {time}, CAST({user} AS VARCHAR)) AS first_user \
             FROM {table} WHERE {user} IS NOT NULL AND {device} IS NOT NULL AND {time} IS NOT NULL \
             GROUP BY {device}"
        )
    };
    format!(
        "WITH new_ids AS ({new_ids}), old_ids AS ({old_ids}), \
         rewired AS ( \
           SELECT n.device FROM new_ids n LEFT JOIN old_ids o ON n.device = o.device \
           WHERE o.device IS NULL \
              OR (n.first_user <> o.first_user \
                  AND (n.first_time < o.first_time \
                       OR (n.first_time = o.first_time AND n.first_user < o.first_user)))) \
         SELECT DISTINCT {time_expr} FROM ( \
           SELECT {user}, {device}, {time} FROM new_events \
           UNION ALL SELECT {user}, {device}, {time} FROM old_events) e \
         WHERE {user} IS NULL AND {time} IS NOT NULL \
           AND {device} IN (SELECT device FROM rewired)",
        new_ids = identified("new_events"),
        old_ids = identified("old_events"),
    )
}
