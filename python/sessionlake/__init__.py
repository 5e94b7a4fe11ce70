"""sessionlake: session analytics as SQL on Apache DataFusion.

Sessionize behavioural events (page views, clicks, purchases) held in Parquet event lakes on
disk or S3, or in pandas / Polars / Arrow frames, with the engine and the semantics of the
`sessionlake` command line:

    >>> import sessionlake
    >>> con = sessionlake.connect(lakes={"events": "data/sample_lake"})
    >>> con.sql("SELECT count(*) AS sessions FROM sessions('events')").to_polars()

`connect` gives a `Connection`; `Connection.sql` a `Result`, which converts to pyarrow, pandas or
Polars and is itself an Arrow stream (`__arrow_c_stream__`), so `polars.DataFrame(result)` and
`pyarrow.table(result)` read it directly. `run_job` runs a lake job file as `sessionlake job
run` does. Errors are `Error` and its subclasses. The SQL functions (`sessions`, `sessionize`,
`SESSIONTOTALS`, `HIST`, ...) are documented in the project's README and docs/.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import os as _os
from typing import TYPE_CHECKING, Any, Mapping, Union

from sessionlake import _native
from sessionlake._errors import AlertsTripped, Error, JobError, LakeError, OptionError, SqlError

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

__all__ = [
    "AlertsTripped",
    "Connection",
    "Error",
    "JobError",
    "LakeError",
    "OptionError",
    "Result",
    "SqlError",
    "connect",
    "run_job",
]

__version__: str = _native.__version__

#: A lake's location: a local directory or an ``s3://bucket/prefix/`` URL.
Location = Union[str, "_os.PathLike[str]"]

#: How many rows ``repr(result)`` and a notebook's table show.
DISPLAY_ROWS = 20


def connect(
    lakes: Mapping[str, Location] | None = None,
    *,
    memory_limit: str | None = None,
    partitions: int | None = None,
    s3_endpoint: str | None = None,
) -> Connection:
    """Open a connection: a session context as the `sessionlake` command line makes it, with the
    given lakes registered as tables.

    Args:
        lakes: table name -> location, as the command line's ``--lake NAME=LOCATION``: a local
            directory (hive-partitioned Parquet, Spark / Glue / export layouts, a Delta table)
            or ``s3://bucket/prefix/``. Each is checked now: a missing one raises `LakeError`.
        memory_limit: the query memory budget, as ``-m``: ``"4g"``, ``"512m"``, ``"none"`` (no
            limit, nothing spills). Default: 75% of the machine's (or cgroup's) memory, beyond
            which operators spill to disk.
        partitions: how many partitions queries run in (default: the number of cores).
        s3_endpoint: an S3-compatible server such as ``"http://127.0.0.1:9000"``. Credentials
            and region come from the ``AWS_*`` variables, as for the command line.

    Raises:
        LakeError: a lake is not there or holds no Parquet files.
        OptionError: a bad `memory_limit`, `partitions` or `s3_endpoint`.
    """
    return Connection(
        lakes, memory_limit=memory_limit, partitions=partitions, s3_endpoint=s3_endpoint
    )


class Connection:
    """A session context with sessionlake's functions and options, and the lakes and frames
    registered on it. Made by `connect`; see there for the arguments."""

    def __init__(
        self,
        lakes: Mapping[str, Location] | None = None,
        *,
        memory_limit: str | None = None,
        partitions: int | None = None,
        s3_endpoint: str | None = None,
    ) -> None:
        pairs = [(name, _location(location)) for name, location in (lakes or {}).items()]
        self._native = _native.Connection(pairs, memory_limit, partitions, s3_endpoint)

    def sql(self, query: str) -> Result:
        """Plan ``query`` and return its `Result`, which runs when it is read (`to_polars`,
        `to_pandas`, `to_arrow`, the Arrow stream, or displaying it). With several statements
        (separated by ``;``) every one but the last runs now.

        Statements that change the session (``SET``, ``CREATE EXTERNAL TABLE``) take effect
        now. The GIL is released while a statement runs; Ctrl-C (`KeyboardInterrupt`) cancels
        it.

        Raises:
            SqlError: the text does not parse or plan (syntax, unknown table or column, a bad
                argument to ``sessions(...)``).
            OptionError: a ``SET`` of an unknown option or a refused value.
            LakeError: a lake named by its path (``FROM 'data/lake/'``) is not there.
        """
        return Result(self._native.sql(query))

    def set(self, key: str, value: Any) -> None:
        """Set an option, as ``SET sessionlake.KEY = 'VALUE'``: ``con.set("gap", "15
        minutes")``. A key without a dot is one of sessionlake's options (``gap``,
        ``max_length``, ``inactive_event_types``, ...; see ``SHOW ALL``); a dotted key names
        any option, DataFusion's included. Booleans are written ``true`` / ``false``.

        Raises:
            OptionError: no such option, or a value it refuses (naming both).
        """
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        self._native.set(key, text)

    def get(self, key: str) -> str | None:
        """The current value of an option (a key as for `set`), ``None`` when it is unset.

        Raises:
            OptionError: no such option.
        """
        return self._native.get(key)

    def attach(self, name: str, location: Location) -> None:
        """Register the lake at ``location`` as table ``name`` (as a `connect` lake).

        Raises:
            LakeError: the lake is not there or holds no Parquet files.
        """
        self._native.attach(name, _location(location))

    def register(self, name: str, data: Any) -> None:
        """Register in-memory events as table ``name``, replacing any table of that name, so
        that ``sessions('name')`` sessionizes them: a pandas or Polars DataFrame, a pyarrow
        Table, another `Result`, or any object with ``__arrow_c_stream__``. The data is read
        once, now, without copying Arrow buffers.
        """
        if not hasattr(data, "__arrow_c_stream__") and not hasattr(data, "__arrow_c_array__"):
            data = _from_pandas(data)
        self._native.register(name, data)

    def tables(self) -> list[str]:
        """The names of the registered tables (lakes and frames), sorted."""
        return list(self._native.tables())

    @property
    def memory_limit(self) -> str:
        """The memory budget queries run in, and where it came from."""
        return str(self._native.memory())

    def __repr__(self) -> str:
        return f"<sessionlake.Connection tables={self.tables()!r}>"


class Result:
    """A planned statement's result. Each read runs the statement again on the lake as it is
    then; keep what `to_polars` / `to_pandas` / `to_arrow` return to reuse it."""

    def __init__(self, query: _native.Query) -> None:
        self._query = query

    @property
    def columns(self) -> list[str]:
        """The result's column names."""
        return list(self._query.columns())

    def to_arrow(self) -> pyarrow.Table:
        """Run the statement and return the whole result as a ``pyarrow.Table`` (needs
        pyarrow)."""
        pa = _require("pyarrow", "Result.to_arrow()")
        return pa.table(self._query.collect())

    def to_pandas(self) -> pandas.DataFrame:
        """Run the statement and return the whole result as a ``pandas.DataFrame`` (needs
        pandas and pyarrow)."""
        _require("pandas", "Result.to_pandas()")
        _require("pyarrow", "Result.to_pandas()")
        return self.to_arrow().to_pandas()

    def to_polars(self) -> polars.DataFrame:
        """Run the statement and return the whole result as a ``polars.DataFrame`` (needs
        polars; not pyarrow)."""
        pl = _require("polars", "Result.to_polars()")
        return pl.DataFrame(self._query.collect())

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow C stream interface: the statement runs as the stream is read."""
        return self._query.stream().__arrow_c_stream__(requested_schema)

    def __arrow_c_schema__(self) -> object:
        """The Arrow C schema interface: the result's schema."""
        return self._query.schema().__arrow_c_schema__()

    def __repr__(self) -> str:
        text, more = self._query.text(DISPLAY_ROWS)
        if more:
            text += f"\n(first {DISPLAY_ROWS} rows shown)"
        return text

    def _repr_html_(self) -> str:
        html, more = self._query.html(DISPLAY_ROWS)
        if more:
            html += f"\n<p>first {DISPLAY_ROWS} rows shown</p>"
        return html


def run_job(
    job: Location,
    *,
    date: str | _dt.date | None = None,
    start: str | _dt.date | None = None,
    end: str | _dt.date | None = None,
    full: bool = False,
    dry_run: bool = False,
    raise_on_alerts: bool = True,
) -> dict[str, Any]:
    """Run the lake job file ``job`` as ``sessionlake job run`` does, and return the run's
    summary (the ``_summary.json`` it wrote) as a dict: status, version, days rewritten,
    sessions written, alerts, exports, ...

    Args:
        job: the job file (TOML; see docs/jobs.md).
        date: process this one day's partition (``"2024-01-31"`` or a ``datetime.date``).
        start, end: process the partitions of these days, inclusive (give both).
        full: recompute every output day from the whole lake.
        dry_run: compute and report, write nothing.
        raise_on_alerts: raise `AlertsTripped` (exit code 3 on the command line) when alerts
            trip on the days the run rewrote; the outputs are committed either way.

    Raises:
        JobError: the run failed; ``.code`` is the command line's exit code (78 the job file,
            65 the data, 75 transient, 2 bad arguments, 1 other).
        AlertsTripped: with ``raise_on_alerts``, when alerts tripped.
    """
    if date is not None:
        if start is not None or end is not None:
            raise JobError("give date, or start and end, not both", 2)
        start = end = date
    summary = _json.loads(
        _native.run_job(
            _os.fspath(job), _date_text(start), _date_text(end), full, dry_run
        )
    )
    if raise_on_alerts and summary.get("alerts"):
        raise AlertsTripped(summary)
    return summary


def _location(location: Location) -> str:
    return location if isinstance(location, str) else _os.fspath(location)


def _date_text(day: str | _dt.date | None) -> str | None:
    if day is None or isinstance(day, str):
        return day
    return day.isoformat()


def _require(package: str, needed_by: str) -> Any:
    """Import ``package``, or say that ``needed_by`` needs it and how to install it."""
    try:
        return __import__(package)
    except ImportError:
        raise ImportError(f"{needed_by} needs the {package} package: pip install {package}") from None


def _from_pandas(data: Any) -> Any:
    """A pandas DataFrame without the Arrow stream interface (pandas < 2.2) as a pyarrow
    Table."""
    module = type(data).__module__.split(".")[0]
    if module != "pandas":
        raise TypeError(
            f"cannot register a {type(data).__name__}: expected a pandas or Polars DataFrame, a "
            "pyarrow Table or an object with __arrow_c_stream__"
        )
    pa = _require("pyarrow", "Connection.register() of a pandas DataFrame")
    return pa.Table.from_pandas(data, preserve_index=False)
