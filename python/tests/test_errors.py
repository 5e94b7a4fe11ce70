"""Bad input raises the package's exceptions, each with the engine's one-line message."""

from __future__ import annotations

from pathlib import Path

import pytest

import sessionlake
from conftest import SAMPLE_LAKE


def test_an_unknown_option_names_the_key() -> None:
    con = sessionlake.connect()
    with pytest.raises(sessionlake.OptionError, match="sessionlake.gapp"):
        con.set("gapp", "5 minutes")
    with pytest.raises(sessionlake.OptionError, match="sessionlake.gapp"):
        con.get("gapp")


def test_a_refused_value_names_the_option_and_keeps_the_old_one() -> None:
    con = sessionlake.connect()
    before = con.get("gap")
    with pytest.raises(sessionlake.OptionError, match="gap") as raised:
        con.set("gap", "soon")
    assert "soon" in str(raised.value)
    assert con.get("gap") == before
    # an OptionError is a ValueError too
    assert isinstance(raised.value, ValueError)


def test_set_in_sql_raises_an_option_error() -> None:
    con = sessionlake.connect()
    with pytest.raises(sessionlake.OptionError, match="max_length"):
        con.sql("SET sessionlake.max_length = 'forever'")


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"memory_limit": "lots"}, "memory_limit: 'lots' is not a size"),
        ({"partitions": 0}, "partitions must be at least 1"),
        ({"s3_endpoint": "localhost:9000"}, "s3_endpoint: 'localhost:9000' is not an http"),
    ],
)
def test_bad_connect_settings(settings: dict[str, object], needle: str) -> None:
    with pytest.raises(sessionlake.OptionError, match=needle):
        sessionlake.connect(**settings)  # type: ignore[arg-type]


def test_a_missing_lake_names_the_table_and_the_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(sessionlake.LakeError) as raised:
        sessionlake.connect(lakes={"events": missing})
    message = str(raised.value)
    assert message == f"lake events={missing}: directory '{missing}' not found"


def test_a_lake_without_parquet_files(tmp_path: Path) -> None:
    (tmp_path / "event_date=2024-01-01").mkdir()
    (tmp_path / "event_date=2024-01-01" / "_SUCCESS").write_text("")
    with pytest.raises(sessionlake.LakeError, match="events="):
        sessionlake.connect(lakes={"events": tmp_path})


def test_a_bad_table_name() -> None:
    with pytest.raises(sessionlake.LakeError, match="must be letters, digits and '_'"):
        sessionlake.connect(lakes={"my-events": SAMPLE_LAKE})


def test_a_path_in_from_that_is_not_there(tmp_path: Path) -> None:
    con = sessionlake.connect()
    with pytest.raises(sessionlake.LakeError, match="nowhere"):
        con.sql(f"SELECT * FROM sessions('{tmp_path / 'nowhere'}/')").to_arrow()


def test_a_syntax_error_is_one_sentence_with_its_place() -> None:
    con = sessionlake.connect(lakes={"events": SAMPLE_LAKE})
    with pytest.raises(sessionlake.SqlError) as raised:
        con.sql("SELECT count(*)\nFROM sessions('events') ORDER")
    assert str(raised.value) == (
        "SQL syntax error at line 2, column 25: expected end of statement, found ORDER"
    )


def test_an_unknown_table_and_a_bad_sessions_argument() -> None:
    con = sessionlake.connect(lakes={"events": SAMPLE_LAKE})
    with pytest.raises(sessionlake.SqlError, match="nope"):
        con.sql("SELECT * FROM nope")
    with pytest.raises(sessionlake.SqlError, match="sessions"):
        con.sql("SELECT * FROM sessions('events', 'gap=never')")
    # every one is a sessionlake.Error
    assert issubclass(sessionlake.SqlError, sessionlake.Error)


def test_empty_text_is_an_sql_error() -> None:
    with pytest.raises(sessionlake.SqlError, match="no SQL statement"):
        sessionlake.connect().sql("  -- nothing")


def test_a_conversion_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def without_polars(name: str, *args: object, **kwargs: object) -> object:
        if name == "polars":
            raise ImportError("No module named 'polars'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_polars)
    result = sessionlake.connect().sql("SELECT 1 AS one")
    with pytest.raises(ImportError, match=r"Result.to_polars\(\) needs the polars package"):
        result.to_polars()
