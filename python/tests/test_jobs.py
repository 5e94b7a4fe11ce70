"""`run_job` runs a lake job as `sessionlake job run` does: the same commit, the summary the
run wrote, and the command line's exit codes as `JobError.code`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import sessionlake
from conftest import REPO, SAMPLE_LAKE


def summaries(out: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(out.rglob("_summary.json"))]


def test_a_run_returns_its_summary_and_alerts_raise(sample_job: Path, cli: Path) -> None:
    with pytest.raises(sessionlake.AlertsTripped) as raised:
        sessionlake.run_job(sample_job)
    tripped = raised.value
    assert tripped.code == 3
    summary = tripped.summary
    assert summary["status"] == "committed"
    assert summary["days_rewritten"] == [f"2024-01-0{d}" for d in range(1, 8)]
    assert tripped.alerts == summary["alerts"] and len(tripped.alerts) > 0
    assert {a["alert"] for a in tripped.alerts} >= {"short_sessions"}
    # the summary is the one the run wrote
    written = summaries(sample_job.parent / "out")
    assert [s["run_id"] for s in written] == [summary["run_id"]]
    # (but the time it took: the file is written before the run's last step ends)
    assert {k: v for k, v in written[0].items() if k != "duration_s"} == {
        k: v for k, v in summary.items() if k != "duration_s"
    }

    # the command line commits the same rows from the same job file
    cli_job = sample_job.parent / "cli_job.toml"
    cli_job.write_text(sample_job.read_text().replace(str(sample_job.parent / "out"), str(sample_job.parent / "cli_out")))
    done = subprocess.run(
        [str(cli), "job", "run", str(cli_job)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 3, done.stderr
    (cli_summary,) = summaries(sample_job.parent / "cli_out")
    for key in ("days_rewritten", "sessions_written", "metrics_rows_written", "exports", "events_read"):
        assert cli_summary[key] == summary[key], key
    assert [a["message"] for a in cli_summary["alerts"]] == [a["message"] for a in tripped.alerts]

    # nothing new: up to date, no alerts, a plain dict back
    again = sessionlake.run_job(sample_job)
    assert again["status"] == "up_to_date"
    assert again["alerts"] == []


def test_alerts_can_be_returned_instead(sample_job: Path) -> None:
    summary = sessionlake.run_job(sample_job, date="2024-01-06", raise_on_alerts=False, dry_run=True)
    assert summary["status"] == "dry_run"
    assert summary["partitions_processed"] == ["2024-01-06"]
    assert any(a["day"] == "2024-01-06" for a in summary["alerts"])
    assert summaries(sample_job.parent / "out") == []


def test_a_bad_job_file_is_code_78(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text(
        f'name = "x"\n[source]\nlake = "{SAMPLE_LAKE}"\n[sink]\npath = "{tmp_path}/out"\n'
        "[session]\ngapp = \"5 minutes\"\n"
    )
    with pytest.raises(sessionlake.JobError) as raised:
        sessionlake.run_job(job)
    assert raised.value.code == 78
    assert "gapp" in str(raised.value)


def test_a_missing_job_file_is_code_78(tmp_path: Path) -> None:
    with pytest.raises(sessionlake.JobError, match="nope.toml") as raised:
        sessionlake.run_job(tmp_path / "nope.toml")
    assert raised.value.code == 78


def test_a_lake_without_partitions_is_code_65(tmp_path: Path) -> None:
    empty = tmp_path / "empty_lake"
    empty.mkdir()
    job = tmp_path / "job.toml"
    job.write_text(f'name = "x"\n[source]\nlake = "{empty}"\n[sink]\npath = "{tmp_path}/out"\n')
    with pytest.raises(sessionlake.JobError, match="no 'event_date=YYYY-MM-DD' partition") as raised:
        sessionlake.run_job(job)
    assert raised.value.code == 65
    assert not isinstance(raised.value, sessionlake.AlertsTripped)


def test_bad_dates_are_code_2(sample_job: Path) -> None:
    with pytest.raises(sessionlake.JobError, match="not a date") as raised:
        sessionlake.run_job(sample_job, date="yesterday")
    assert raised.value.code == 2
    with pytest.raises(sessionlake.JobError, match="is after end"):
        sessionlake.run_job(sample_job, start="2024-01-05", end="2024-01-01")
    with pytest.raises(sessionlake.JobError, match="both start and end"):
        sessionlake.run_job(sample_job, start="2024-01-05")


def test_the_sample_job_file_is_where_the_fixture_expects() -> None:
    assert (REPO / "data" / "sample_job.toml").is_file()
