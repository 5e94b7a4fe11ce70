//! The exit codes of every `sessionlake` command, in one table, and the error kinds of the
//! libraries mapped onto them. The SQL shell and `import` end with 0, 1 or 2; `job run` uses the
//! whole table, so that a scheduler knows whether to carry on, retry, or have someone fix the
//! data or the job file (codes 65, 75 and 78 are the BSD `sysexits.h` ones).

/// Done (for a job: or nothing to do). Also when stdout is closed early, as by `| head`.
pub const OK: u8 = 0;
/// Failed: a statement failed, an import met bad data or could not write its lake, or a job run
/// failed for a reason none of the codes below names (a bug, a full disk, ...).
pub const FAILED: u8 = 1;
/// The command line was wrong: a bad flag, a missing file or lake, an import input that is not
/// an export.
pub const USAGE: u8 = 2;
/// A job run committed its outputs (or, with `--dry-run`, would have) and at least one alert
/// tripped on a day it rewrote.
pub const ALERT: u8 = 3;
/// A job's input data is bad: a corrupt Parquet file, a schema that changed, a missing
/// partition or lake.
pub const DATA: u8 = 65;
/// Transient, worth retrying: another run of the job committed first, or the store did not
/// answer.
pub const TRANSIENT: u8 = 75;
/// The job file is wrong: unknown key, wrong type, invalid value.
pub const CONFIG: u8 = 78;

/// The exit code of a failed job run.
pub fn of_job_error(kind: sessionlake_jobs::ErrorKind) -> u8 {
    use sessionlake_jobs::ErrorKind;
    match kind {
        ErrorKind::Config => CONFIG,
        ErrorKind::Data => DATA,
        ErrorKind::Transient => TRANSIENT,
        ErrorKind::Failed => FAILED,
    }
}

/// The exit code of a failed import.
#[cfg(feature = "import")]
pub fn of_import_error(kind: sessionlake_import::ErrorKind) -> u8 {
    use sessionlake_import::ErrorKind;
    match kind {
        ErrorKind::Input => USAGE,
        ErrorKind::BadData | ErrorKind::Output => FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionlake_jobs::ErrorKind;

    #[test]
    fn job_errors_map_to_the_documented_codes() {
        assert_eq!(of_job_error(ErrorKind::Config), 78);
        assert_eq!(of_job_error(ErrorKind::Data), 65);
        assert_eq!(of_job_error(ErrorKind::Transient), 75);
        assert_eq!(of_job_error(ErrorKind::Failed), 1);
    }
}
