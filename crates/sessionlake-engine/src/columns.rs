//! Binds the session options to a table's schema: finds the user, time, activity, event type
//! and session id columns and checks their types, so that a wrong table fails at planning with
//! an error naming the column.

use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::common::{Result, plan_err};
use sessionlake_functions::time_unit::is_span_type;
use sessionlake_functions::types::is_string_type;

use crate::assign::SessionRules;
use crate::options::SessionOptions;
use crate::output::REPORTED_DURATION;
use crate::stitch;

/// The column name of event types, used for `first_event_type` / `last_event_type` and the
/// inactive event type list.
pub const EVENT_TYPE_COLUMN: &str = "event_type";

/// The positions of the columns that define sessions, in one schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BoundColumns {
    pub user: usize,
    /// The anonymous ids stitched to users (`sessionlake.anonymous_column`), if set; the user
    /// column then holds the stitched user, as text (see [`crate::stitch`]).
    pub anonymous: Option<usize>,
    pub time: usize,
    /// The time column's unit: every span is converted to it.
    pub unit: TimeUnit,
    pub active: Option<usize>,
    pub event_type: Option<usize>,
    /// For `sessions`: whether it returns `first_event_type` and `last_event_type` (the table
    /// has an event type column, and the query selects one of them).
    pub returns_event_types: bool,
    /// Present in the instrumented modes only.
    pub session_id: Option<usize>,
    /// The per-event timeouts (`sessionlake.gap_column`), if set.
    pub gap: Option<usize>,
    /// For `sessions`: the column of reported durations and the event type that carries them
    /// (`sessionlake.reported_duration`).
    pub reported: Option<(usize, String)>,
    /// The columns whose first and last non-NULL value per session `sessions` returns
    /// (`sessionlake.properties`), in the order listed; empty for `sessionize`.
    pub properties: Vec<usize>,
    /// The event types whose events per session `sessions` counts
    /// (`sessionlake.count_event_types`), in the order listed; empty for `sessionize`.
    pub counted: Vec<String>,
}

impl BoundColumns {
    /// Binds `options` to `schema`; errors name the `function` called and its `table`.
    pub fn bind(
        function: &str,
        schema: &Schema,
        options: &SessionOptions,
        table: &str,
    ) -> Result<Self> {
        let find = |name: &str, key: &str| -> Result<usize> {
            match schema.index_of(name) {
                Ok(i) => Ok(i),
                Err(_) => {
                    let columns: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    plan_err!(
                        "{function}: column \"{name}\" ({key}) not found in table '{table}'; its \
                         columns are: {}",
                        columns.join(", ")
                    )
                }
            }
        };
        let user = find(&options.user_column, "sessionlake.user_column")?;
        let user_type = schema.field(user).data_type();
        if !is_user_type(user_type) {
            return plan_err!(
                "{function}: column \"{}\" (sessionlake.user_column) must be a string or an \
                 integer, found {user_type}",
                options.user_column
            );
        }
        let anonymous = match &options.anonymous_column {
            None => None,
            Some(name) => {
                let i = find(name, "sessionlake.anonymous_column")?;
                if i == user {
                    return plan_err!(
                        "{function}: sessionlake.anonymous_column and sessionlake.user_column \
                         both name \"{name}\""
                    );
                }
                stitch::check_types(
                    function,
                    &options.user_column,
                    user_type,
                    name,
                    schema.field(i).data_type(),
                )?;
                Some(i)
            }
        };
        let time = find(&options.time_column, "sessionlake.time_column")?;
        let unit = match schema.field(time).data_type() {
            DataType::Timestamp(unit, _) => *unit,
            other => {
                return plan_err!(
                    "{function}: column \"{}\" (sessionlake.time_column) must be a timestamp, \
                     found {other}",
                    options.time_column
                );
            }
        };
        let active = match schema.index_of(&options.active_column) {
            Ok(i) => match schema.field(i).data_type() {
                DataType::Boolean => Some(i),
                other => {
                    return plan_err!(
                        "{function}: column \"{}\" (sessionlake.active_column) must be a \
                         boolean, found {other}",
                        options.active_column
                    );
                }
            },
            Err(_) => None,
        };
        let event_type = schema.index_of(EVENT_TYPE_COLUMN).ok();
        if !options.inactive_event_types.is_empty() {
            match event_type.map(|i| schema.field(i).data_type()) {
                Some(t) if is_string_type(t) => {}
                Some(t) => {
                    return plan_err!(
                        "{function}: column \"{EVENT_TYPE_COLUMN}\" must be a string to use \
                         sessionlake.inactive_event_types, found {t}"
                    );
                }
                None => {
                    return plan_err!(
                        "{function}: sessionlake.inactive_event_types is set but table '{table}' \
                         has no column \"{EVENT_TYPE_COLUMN}\""
                    );
                }
            }
        }
        let session_id = if options.mode.is_instrumented() {
            let i = find(&options.session_id_column, "sessionlake.session_id_column")?;
            let t = schema.field(i).data_type();
            if !t.is_integer() && !is_string_type(t) {
                return plan_err!(
                    "{function}: column \"{}\" (sessionlake.session_id_column) must be an \
                     integer or a string in mode {}, found {t}",
                    options.session_id_column,
                    options.mode
                );
            }
            Some(i)
        } else {
            None
        };
        let gap = match &options.gap_column {
            None => None,
            Some(name) => {
                let i = find(name, "sessionlake.gap_column")?;
                let t = schema.field(i).data_type();
                if !t.is_integer() && !is_span_type(t) {
                    return plan_err!(
                        "{function}: column \"{name}\" (sessionlake.gap_column) must be an \
                         interval, a duration or an integer number of milliseconds, found {t}"
                    );
                }
                Some(i)
            }
        };
        let needs_event_types = |key: &str| -> Result<()> {
            match event_type.map(|e| schema.field(e).data_type()) {
                Some(t) if is_string_type(t) => Ok(()),
                _ => plan_err!(
                    "{function}: {key} needs a string column \"{EVENT_TYPE_COLUMN}\" in table \
                     '{table}'"
                ),
            }
        };
        let reported = match &options.reported_duration {
            None => None,
            Some(reported) => {
                let key = "sessionlake.reported_duration";
                let i = find(&reported.column, key)?;
                let t = schema.field(i).data_type();
                if !t.is_integer() && !matches!(t, DataType::Duration(_)) {
                    return plan_err!(
                        "{function}: column \"{}\" ({key}) must be an integer number of \
                         milliseconds or a duration, found {t}",
                        reported.column
                    );
                }
                needs_event_types(key)?;
                Some((i, reported.event_type.clone()))
            }
        };
        if !options.count_event_types.is_empty() {
            needs_event_types("sessionlake.count_event_types")?;
            let user_name = schema.field(user).name();
            if let Some(clash) = options
                .count_event_types
                .iter()
                .find(|t| &count_column(t) == user_name)
            {
                return plan_err!(
                    "{function}: sessionlake.count_event_types: the column for '{clash}' would \
                     be named \"{user_name}\", as the user column is"
                );
            }
        }
        let mut properties = Vec::with_capacity(options.properties.len());
        for name in &options.properties {
            if name == EVENT_TYPE_COLUMN {
                return plan_err!(
                    "sessions: sessionlake.properties lists \"{EVENT_TYPE_COLUMN}\", which \
                     sessions() already returns as first_event_type and last_event_type"
                );
            }
            properties.push(find(name, "sessionlake.properties")?);
        }
        Ok(Self {
            user,
            anonymous,
            time,
            unit,
            active,
            event_type,
            returns_event_types: event_type.is_some(),
            session_id,
            gap,
            reported,
            properties,
            counted: options.count_event_types.clone(),
        })
    }

    /// For `sessions`: the columns behind only the output columns named in `selected`. The
    /// properties, counted event types and reported duration it does not name are dropped, and
    /// so are `first_event_type` and `last_event_type`; the event type column stays bound only
    /// while something reads it (those columns, the counts, the reported duration, or the
    /// inactive event types of `rules`). `input` is the schema the columns are bound to.
    pub fn selecting(&self, input: &Schema, selected: &[&str], rules: &SessionRules) -> Self {
        let is_selected = |name: &str| selected.contains(&name);
        let properties: Vec<usize> = self
            .properties
            .iter()
            .copied()
            .filter(|&p| {
                let name = input.field(p).name();
                is_selected(&format!("first_{name}")) || is_selected(&format!("last_{name}"))
            })
            .collect();
        let counted: Vec<String> = self
            .counted
            .iter()
            .filter(|t| is_selected(&count_column(t)))
            .cloned()
            .collect();
        let reported = self
            .reported
            .clone()
            .filter(|_| is_selected(REPORTED_DURATION));
        let returns_event_types = self.returns_event_types
            && (is_selected("first_event_type") || is_selected("last_event_type"));
        let reads_event_types = returns_event_types
            || !counted.is_empty()
            || reported.is_some()
            || !rules.inactive_event_types.is_empty();
        Self {
            event_type: self.event_type.filter(|_| reads_event_types),
            returns_event_types,
            reported,
            properties,
            counted,
            ..self.clone()
        }
    }

    /// The distinct columns the session rules read, ascending.
    pub fn key_columns(&self) -> Vec<usize> {
        let mut columns: Vec<usize> = [
            Some(self.user),
            self.anonymous,
            Some(self.time),
            self.active,
            self.event_type,
            self.session_id,
            self.gap,
            self.reported.as_ref().map(|(column, _)| *column),
        ]
        .into_iter()
        .flatten()
        .collect();
        columns.sort_unstable();
        columns.dedup();
        columns
    }

    /// The same columns, found by name in another schema holding them (a projected scan).
    pub fn rebind(&self, from: &Schema, to: &Schema) -> Result<Self> {
        let map = |i: usize| -> Result<usize> {
            let name = from.field(i).name();
            match to.index_of(name) {
                Ok(j) => Ok(j),
                Err(_) => datafusion::common::internal_err!(
                    "sessionize: column \"{name}\" missing from the scan"
                ),
            }
        };
        Ok(Self {
            user: map(self.user)?,
            anonymous: self.anonymous.map(map).transpose()?,
            time: map(self.time)?,
            unit: self.unit,
            active: self.active.map(map).transpose()?,
            event_type: self.event_type.map(map).transpose()?,
            returns_event_types: self.returns_event_types,
            session_id: self.session_id.map(map).transpose()?,
            gap: self.gap.map(map).transpose()?,
            reported: match &self.reported {
                Some((column, event_type)) => Some((map(*column)?, event_type.clone())),
                None => None,
            },
            properties: self
                .properties
                .iter()
                .map(|&i| map(i))
                .collect::<Result<_>>()?,
            counted: self.counted.clone(),
        })
    }
}

/// The `sessions` column counting the events of `event_type` in each session.
pub fn count_column(event_type: &str) -> String {
    format!("count_{event_type}")
}

fn is_user_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, value) => is_user_type(value),
        t => is_string_type(t) || t.is_integer() || matches!(t, DataType::Binary),
    }
}
