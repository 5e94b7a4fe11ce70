"""Fixtures of the package's tests: the repository's sample lake, the `sessionlake` command line
to compare with, a lake with app events, and moto's S3 server when `.ci/run` started one."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE_LAKE = REPO / "data" / "sample_lake"
RECIPES = sorted((REPO / "sql").glob("*.sql"))


def cli_path() -> Path:
    """The command line built from this checkout: `SESSIONLAKE_CLI`, else the debug binary in
    `CARGO_TARGET_DIR` (or `target/`)."""
    explicit = os.environ.get("SESSIONLAKE_CLI")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "sessionlake"


@pytest.fixture(scope="session")
def cli() -> Path:
    path = cli_path()
    if not path.is_file():
        pytest.fail(
            f"the sessionlake command line is not at {path}: build it with `cargo build` or set "
            "SESSIONLAKE_CLI to it"
        )
    return path


def run_cli(
    cli: Path, lakes: dict[str, Path | str], sql_file: Path, out: Path, *extra: str
) -> pa.Table:
    """The result of running `sql_file` with the command line, read back from its Parquet
    output."""
    args = [str(cli), "-q", "--format", "parquet", "-o", str(out), "-f", str(sql_file)]
    for name, location in lakes.items():
        args += ["--lake", f"{name}={location}"]
    args += list(extra)
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return pq.read_table(out)


def rows(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()


def assert_same_result(got: pa.Table, expected: pa.Table) -> None:
    """Same column names and types, same rows in the same order; floats equal to 1e-9
    relative (the engine may sum in another order on another run)."""
    assert got.schema.names == expected.schema.names
    assert [f.type for f in got.schema] == [f.type for f in expected.schema]
    got_rows, expected_rows = rows(got), rows(expected)
    assert len(got_rows) == len(expected_rows)
    for got_row, expected_row in zip(got_rows, expected_rows):
        assert_same_value(got_row, expected_row)


def assert_same_value(got: Any, expected: Any) -> None:
    if isinstance(expected, float) and isinstance(got, float):
        if math.isnan(expected):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys()
        for key in expected:
            assert_same_value(got[key], expected[key])
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_same_value(g, e)
    else:
        assert got == expected


@pytest.fixture(scope="session")
def app_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample lake as an app that measures its sessions logs it (as the test kit's
    `write_app_lake` does, simpler): each `app_background` event becomes an active
    `session_end` event with a `duration_ms`, and every event gets a `timeout_ms`, NULL for
    half of them. Deterministic: values follow the row's position."""
    out = tmp_path_factory.mktemp("app_lake")
    timeouts = [None, 300_000, None, 600_000, None, 2_700_000, None, 7_200_000]
    for source in sorted(SAMPLE_LAKE.rglob("*.parquet")):
        table = pq.read_table(source)
        n = table.num_rows
        event_type = pc.cast(table["event_type"], pa.string())
        closing = pc.equal(event_type, "app_background")
        durations = pa.array([(i * 7919) % 1_800_000 for i in range(n)], pa.int64())
        table = table.set_column(
            table.schema.get_field_index("event_type"),
            "event_type",
            pc.if_else(closing, "session_end", event_type),
        )
        table = table.set_column(
            table.schema.get_field_index("is_active"),
            "is_active",
            pc.or_(table["is_active"], closing),
        )
        table = table.append_column(
            "duration_ms", pc.if_else(closing, durations, pa.scalar(None, pa.int64()))
        )
        table = table.append_column(
            "timeout_ms", pa.array([timeouts[i % len(timeouts)] for i in range(n)], pa.int64())
        )
        target = out / source.relative_to(SAMPLE_LAKE)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)
    return out


@pytest.fixture()
def sample_job(tmp_path: Path) -> Path:
    """`data/sample_job.toml` reading the sample lake and writing under `tmp_path/out`."""
    text = (REPO / "data" / "sample_job.toml").read_text()
    text = text.replace('lake = "sample_lake"', f'lake = "{SAMPLE_LAKE}"', 1)
    text = text.replace('path = "../target/sample_job"', f'path = "{tmp_path / "out"}"', 1)
    assert str(SAMPLE_LAKE) in text and str(tmp_path) in text, "the sample job's paths moved"
    job = tmp_path / "job.toml"
    job.write_text(text)
    return job


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """moto's S3 server, as the Rust S3 tests find it: `SESSIONLAKE_TEST_S3_ENDPOINT`. Without
    it the S3 tests skip, unless `SESSIONLAKE_REQUIRE_S3=1` (as `.ci/run` sets) fails them."""
    endpoint = os.environ.get("SESSIONLAKE_TEST_S3_ENDPOINT")
    if not endpoint:
        if os.environ.get("SESSIONLAKE_REQUIRE_S3") == "1":
            pytest.fail("SESSIONLAKE_REQUIRE_S3=1 but SESSIONLAKE_TEST_S3_ENDPOINT is not set")
        pytest.skip("no S3 test server: set SESSIONLAKE_TEST_S3_ENDPOINT (see .ci/run)")
    return endpoint


def copy_lake(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
