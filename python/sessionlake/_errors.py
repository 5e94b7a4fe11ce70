"""The exceptions sessionlake raises. Each carries the one-line message the command line prints."""

from __future__ import annotations

from typing import Any


class Error(Exception):
    """Base class of sessionlake's errors; also raised as itself for a query that fails while it
    runs (a bad value in the data, memory exhausted after spilling)."""


class SqlError(Error):
    """A statement that does not parse or plan: a syntax error (with its line and column), an
    unknown table, column or function, a bad argument to `sessions(...)`."""


class OptionError(Error, ValueError):
    """An option that does not exist, or a value it refuses: `Connection.set`, `SET`, and the
    settings of `connect` (`memory_limit`, `partitions`, `s3_endpoint`)."""


class LakeError(Error):
    """A lake that is not there or cannot be read as one: a missing directory, an S3 prefix
    without Parquet objects, refused credentials, an unreachable endpoint."""


class JobError(Error):
    """A lake job run that failed. `code` is the exit code `sessionlake job run` ends with for
    the same failure: 78 the job file is wrong, 65 the input data is bad, 75 transient (worth
    retrying), 2 a bad argument, 1 anything else."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class AlertsTripped(JobError):
    """A lake job run that committed its outputs and tripped alerts on the days it rewrote (exit
    code 3). `alerts` lists them (each a dict: day, alert, metric, value, threshold, message,
    and segment / segment_value for a per-segment rule); `summary` is the run's summary."""

    def __init__(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        self.alerts: list[dict[str, Any]] = list(summary.get("alerts", []))
        lines = [f"{a['day']} {a['alert']}: {a['message']}" for a in self.alerts]
        count = len(self.alerts)
        message = f"{count} alert{'' if count == 1 else 's'} tripped: " + "; ".join(lines)
        super().__init__(message, 3)
