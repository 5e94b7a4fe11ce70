"""An S3 lake, on moto's server as the Rust S3 tests use it: the same answers as the same lake
on disk, and a one-line LakeError for a prefix without Parquet objects."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

import sessionlake
from conftest import SAMPLE_LAKE, assert_same_result

BUCKET = "sessionlake-python-test"
QUERY = (
    "SELECT date_trunc('day', session_start) AS day, count(*) AS sessions, "
    "sum(duration_ms) AS total_ms FROM sessions('events') GROUP BY 1 ORDER BY 1"
)


def put(endpoint: str, key: str, body: bytes = b"") -> None:
    """One unsigned PUT: moto's server does not check signatures."""
    request = urllib.request.Request(
        f"{endpoint}/{key}",
        data=body,
        method="PUT",
        # not urllib's default form type, which the server would try to parse
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200, key


@pytest.fixture(scope="module")
def s3_lake(s3_endpoint: str) -> str:
    put(s3_endpoint, BUCKET)
    for path in sorted(SAMPLE_LAKE.rglob("*.parquet")):
        put(s3_endpoint, f"{BUCKET}/sample_lake/{path.relative_to(SAMPLE_LAKE)}", path.read_bytes())
    return f"s3://{BUCKET}/sample_lake/"


def test_an_s3_lake_answers_as_the_same_lake_on_disk(s3_endpoint: str, s3_lake: str) -> None:
    remote = sessionlake.connect(lakes={"events": s3_lake}, s3_endpoint=s3_endpoint)
    local = sessionlake.connect(lakes={"events": SAMPLE_LAKE})
    got = remote.sql(QUERY).to_arrow()
    assert got.num_rows == 7
    assert_same_result(got, local.sql(QUERY).to_arrow())


def test_an_s3_prefix_without_parquet_objects(s3_endpoint: str, s3_lake: str) -> None:
    with pytest.raises(sessionlake.LakeError) as raised:
        sessionlake.connect(lakes={"events": f"s3://{BUCKET}/nothing_here/"}, s3_endpoint=s3_endpoint)
    assert str(raised.value) == (
        f"lake events=s3://{BUCKET}/nothing_here/: no .parquet objects under "
        f"s3://{BUCKET}/nothing_here/"
    )


def test_the_fixture_uploaded_every_file(s3_lake: str) -> None:
    assert s3_lake.endswith("/sample_lake/")
    assert len(list(Path(SAMPLE_LAKE).rglob("*.parquet"))) == 14
