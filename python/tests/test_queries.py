"""Queries through Python give the command line's answers: the README's sample query, every
`sql/` recipe, and frames registered from pandas and Polars."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import sessionlake
from conftest import RECIPES, REPO, SAMPLE_LAKE, assert_same_result, run_cli

SAMPLE_QUERY = (
    "SELECT date_trunc('day', session_start) AS day, count(*) AS sessions, "
    "avg(duration_ms) AS avg_duration_ms FROM sessions('events') GROUP BY 1 ORDER BY 1"
)

#: Recipes that need the app's columns (`duration_ms`, `timeout_ms`), run on the app lake.
APP_RECIPES = {"avg_length_reported.sql", "per_feature_timeouts.sql"}


def test_sample_query_equals_the_command_line(cli: Path, tmp_path: Path) -> None:
    sql = tmp_path / "q.sql"
    sql.write_text(SAMPLE_QUERY)
    expected = run_cli(cli, {"events": SAMPLE_LAKE}, sql, tmp_path / "out.parquet")

    con = sessionlake.connect(lakes={"events": SAMPLE_LAKE})
    result = con.sql(SAMPLE_QUERY)
    got = result.to_arrow()
    assert got.num_rows == 7
    assert_same_result(got, expected)
    # the other ways out carry the same rows
    assert result.to_polars().equals(pl.from_arrow(got))
    pd.testing.assert_frame_equal(result.to_pandas(), got.to_pandas())
    assert pl.DataFrame(result).equals(pl.from_arrow(got))
    assert pa.table(result).equals(got)


def test_a_result_streams_batch_by_batch() -> None:
    con = sessionlake.connect(lakes={"events": SAMPLE_LAKE}, partitions=4)
    result = con.sql("SELECT session_key, user_id, duration_ms FROM sessions('events')")
    reader = pa.RecordBatchReader.from_stream(result)
    batches = list(reader)
    assert len(batches) > 1
    assert sum(b.num_rows for b in batches) == con.sql(
        "SELECT count(*) AS n FROM sessions('events')"
    ).to_arrow()["n"][0].as_py()


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_recipe_equals_the_command_line(
    recipe: Path, cli: Path, app_lake: Path, tmp_path: Path
) -> None:
    lake = app_lake if recipe.name in APP_RECIPES else SAMPLE_LAKE
    expected = run_cli(cli, {"events": lake}, recipe, tmp_path / "out.parquet")

    con = sessionlake.connect(lakes={"events": lake})
    got = con.sql(recipe.read_text()).to_arrow()
    assert got.num_rows > 0, recipe.name
    assert_same_result(got, expected)
    if recipe.name == "avg_length_reported.sql":
        # the app lake's reported lengths were read, not all NULL
        assert sum(got["reported_sessions"].to_pylist()) > 0


def test_app_recipes_are_all_named() -> None:
    assert APP_RECIPES <= {recipe.name for recipe in RECIPES}


SESSIONS_QUERY = (
    "SELECT user_id, session_start, session_end, duration_ms, event_count "
    "FROM sessions('{table}') ORDER BY user_id, session_start"
)


def lake_as_polars() -> pl.DataFrame:
    """The sample lake's events, partition column included, as one Polars frame."""
    con = sessionlake.connect(lakes={"events": SAMPLE_LAKE})
    return con.sql("SELECT * FROM events").to_polars()


def test_registered_polars_frame_equals_the_lake() -> None:
    con = sessionlake.connect(lakes={"events": SAMPLE_LAKE})
    con.register("mine", lake_as_polars())
    assert con.tables() == ["events", "mine"]
    expected = con.sql(SESSIONS_QUERY.format(table="events")).to_arrow()
    got = con.sql(SESSIONS_QUERY.format(table="mine")).to_arrow()
    assert got.num_rows == expected.num_rows > 20_000
    assert_same_result(got, expected)


def test_registered_pandas_frame_equals_the_same_events_written_as_a_lake(
    tmp_path: Path,
) -> None:
    # pandas' own types: nanosecond timestamps, object strings, no dictionaries
    frame = lake_as_polars().to_pandas()
    frame["event_type"] = frame["event_type"].astype(str)
    frame["event_date"] = frame["event_date"].astype(str)
    assert str(frame["event_time"].dtype).startswith("datetime64[")

    lake = tmp_path / "lake"
    for day, part in frame.groupby("event_date"):
        directory = lake / f"event_date={day}"
        directory.mkdir(parents=True)
        part.drop(columns="event_date").to_parquet(directory / "part-0.parquet", index=False)

    con = sessionlake.connect(lakes={"written": lake})
    con.register("frame", frame)
    expected = con.sql(SESSIONS_QUERY.format(table="written")).to_arrow()
    got = con.sql(SESSIONS_QUERY.format(table="frame")).to_arrow()
    assert got.num_rows == expected.num_rows > 20_000
    assert got.to_pylist() == expected.to_pylist()


def test_registering_again_replaces_the_table() -> None:
    con = sessionlake.connect()
    con.register("t", pl.DataFrame({"x": [1, 2, 3]}))
    con.register("t", pa.table({"x": [5]}))
    assert con.sql("SELECT sum(x) AS s FROM t").to_arrow()["s"].to_pylist() == [5]


def test_register_refuses_what_is_not_a_frame() -> None:
    con = sessionlake.connect()
    with pytest.raises(TypeError, match="cannot register a list"):
        con.register("t", [1, 2, 3])


def test_options_change_the_sessions() -> None:
    con = sessionlake.connect(lakes={"events": SAMPLE_LAKE})
    count = "SELECT count(*) AS n FROM sessions('events')"
    default = con.sql(count).to_arrow()["n"][0].as_py()
    assert con.get("gap") in ("30 minutes", None)
    con.set("gap", "5 minutes")
    assert con.get("sessionlake.gap") == "5 minutes"
    shorter_gap = con.sql(count).to_arrow()["n"][0].as_py()
    assert shorter_gap > default
    # the same as SET in SQL
    con.sql("SET sessionlake.gap = '30 minutes'")
    assert con.sql(count).to_arrow()["n"][0].as_py() == default


def test_repr_and_html_show_the_first_rows_and_histograms() -> None:
    con = sessionlake.connect(lakes={"events": SAMPLE_LAKE})
    hist = con.sql(
        "SELECT first_event_type AS kind, HIST(event_count, [1, 2, 5, 10]) AS events "
        "FROM sessions('events') GROUP BY 1 ORDER BY 1"
    )
    kinds = hist.to_arrow()["kind"].to_pylist()
    text = repr(hist)
    html = hist._repr_html_()
    # the command line's HIST summary in the table, and a chart per row under it
    assert text.count("3 bins + 2 open-ended") == len(kinds)
    assert text.count("events for kind=") == len(kinds)
    assert html.startswith('<table class="sessionlake">')
    assert html.count('<table class="sessionlake-hist">') == len(kinds)
    assert html.count("<td>[2, 5)</td>") == len(kinds)
    assert "<td>[-inf, 1)</td>" in html and "<td>[10, +inf)</td>" in html

    many = con.sql("SELECT * FROM sessions('events')")
    assert repr(many).endswith(f"(first {sessionlake.DISPLAY_ROWS} rows shown)")
    assert many._repr_html_().count("<tr>") == sessionlake.DISPLAY_ROWS + 1  # and the header
    assert many.columns[:3] == ["user_id", "session_key", "session_start"]


def test_memory_limit_and_partitions() -> None:
    con = sessionlake.connect(memory_limit="512m", partitions=3)
    assert con.memory_limit == "512.0 MiB (memory_limit)"
    assert con.get("datafusion.execution.target_partitions") == "3"
    assert "75%" in sessionlake.connect().memory_limit
    assert sessionlake.connect(memory_limit="none").memory_limit.startswith("unbounded")
