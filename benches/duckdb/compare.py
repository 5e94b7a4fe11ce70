#!/usr/bin/env python3
"""sessionlake against DuckDB window SQL, side by side (issues 7 and 14).

Run it through `bash benches/duckdb/run.sh` (which makes the virtual environment with DuckDB);
run.sh passes its arguments here. For every lake size it:

1. generates the lake with the project's seeded generator into the cache directory (reused when
   a marker file records the same generator arguments), after checking that it fits on the
   disk, and records the generation's wall time;
2. runs every query of `queries/` once in sessionlake and in DuckDB and compares the results
   (rows sorted, numbers within 1e-9 relative); any difference exits with status 1 before
   anything else runs. A failed run (an error, or a process killed) is not a difference: it is
   reported in the tables with its error, its engine is not run on that query again, and the
   script goes on; at the end it exits with status 2 if a sessionlake run failed (a failure of
   DuckDB, such as running out of disk for its spill files, is a result, not the benchmark's);
3. in suite mode (`--mode suite` or `both`), runs `queries/suite.<engine>.sql` once per engine:
   the six queries in one process over one materialized session table (one row per session),
   as an analyst's script would (sessionlake's writes it as Parquet into the empty scratch
   directory `<cache>/scratch` that every run starts in); each of its six results must equal
   the per-query answer (a difference exits with status 1; a failed run, such as a suite that
   does not fit in memory, is reported); with `--suite-check engines` the per-query runs are
   skipped and each engine's six suite results are compared with the other engine's instead
   (at 500M the per-query check alone takes some two hours);
4. times each query as separate processes under `/usr/bin/time -v` (wall time and peak RSS),
   alternating sessionlake, DuckDB (and, for `totals` at the `--anchor-sizes`, DataFusion
   window SQL through the sessionlake CLI), `--runs` times each, the check's run (also under
   /usr/bin/time) counting as the first; in suite mode, times the suite scripts the same way;
5. optionally runs the sessionlake queries again with `--memory-limit`.

It prints Markdown tables and writes them, with the raw runs as JSON, to
`<cache>/results/<size>.md` and `.json`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUERIES = Path(__file__).resolve().parent / "queries"
SUITE = ["totals", "length_bins", "bounce_per_day", "by_country", "instrumented", "top_pages"]
ANCHOR = "totals"  # the query also timed as DataFusion window SQL
ENGINES = ("sessionlake", "duckdb")
# queries/suite.<engine>.sql: the six queries in one process; each result follows a one-row
# result whose column is SUITE_MARKER and whose value names the query
SUITE_SCRIPT = "suite"
SUITE_MARKER = "suite_query"

# generator arguments per size: 10M and 50M are issue 7's lakes, 500M issue 14's, 1M a quick
# check of the whole script. 500M keeps the 50M lake's events per file (about 417k: three
# 128k-row row groups, some 7 MB), so that the sizes differ in the number of files, not in
# their shape; 40 files a day also let the generator, which encodes a day's files in parallel,
# use every core. (Files of 100 MB and more would mean one file a day, encoded by one thread.)
LAKES = {
    "1M": ["--events", "1000000", "--days", "30", "--users", "20000",
           "--files-per-day", "2", "--seed", "42"],
    "10M": ["--events", "10000000", "--days", "30", "--users", "200000",
            "--files-per-day", "2", "--seed", "42"],
    "50M": ["--events", "50000000", "--days", "30", "--users", "1000000",
            "--files-per-day", "4", "--seed", "42"],
    "500M": ["--events", "500000000", "--days", "30", "--users", "10000000",
             "--files-per-day", "40", "--seed", "42"],
}
SAMPLE_EVENTS = 100_000  # data/sample_lake
# disk space a new lake needs: bytes per event measured on the largest cached lake (or this
# when there is none), plus a margin, as the bytes per event vary with the lake's size (user ids
# get longer, files bigger)
ASSUMED_BYTES_PER_EVENT = 30
DISK_MARGIN = 1.2

# DuckDB runs the statements of a file and prints each query's result as CSV, like
# `sessionlake --format csv -q` (statements such as CREATE print nothing); it spills into the
# directory given, in the cache, rather than into `.tmp` of the working directory
DUCKDB_RUNNER = r"""
import csv, sys, duckdb
sql = open(sys.argv[1]).read().replace('@LAKE@', sys.argv[2])
con = duckdb.connect(config={'temp_directory': sys.argv[3]})
con.execute('SET enable_progress_bar = false')
out = csv.writer(sys.stdout, lineterminator='\n')
for statement in con.extract_statements(sql):
    cur = con.execute(statement)
    if statement.type == duckdb.StatementType.SELECT:
        out.writerow([d[0] for d in cur.description])
        for row in cur.fetchall():
            out.writerow(['' if v is None else v for v in row])
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sessionlake-bench"


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def build(skip: bool) -> tuple[Path, Path]:
    if not skip:
        log("== cargo build --release (sessionlake, sessionlake-gen)")
        subprocess.run(
            ["cargo", "build", "--release", "-p", "sessionlake", "-p", "sessionlake-testkit",
             "--bin", "sessionlake", "--bin", "sessionlake-gen"],
            cwd=REPO, check=True)
    release = target_dir() / "release"
    return release / "sessionlake", release / "sessionlake-gen"


def lake_events(size: str) -> int:
    if size == "sample":
        return SAMPLE_EVENTS
    return int(LAKES[size][LAKES[size].index("--events") + 1])


def lake_bytes(lake: Path) -> int:
    return sum(f.stat().st_size for f in lake.rglob("*.parquet"))


def cached_marker(lakes: Path, size: str) -> list[str] | None:
    """The lines of the marker of the cached lake of `size` if it was generated with today's
    arguments: the arguments, then `generation_s=<seconds>` (missing in older markers)."""
    lake, marker = lakes / size, lakes / f"{size}.spec"
    if not (lake.is_dir() and marker.is_file()):
        return None
    lines = marker.read_text().splitlines()
    return lines if lines[:1] == [" ".join(LAKES[size])] else None


def check_disk_space(lakes: Path, size: str) -> None:
    """Exits with a message if the lake of `size` would not fit on the disk of `lakes`."""
    cached = [s for s in LAKES if cached_marker(lakes, s) is not None]
    if cached:
        measured = max(cached, key=lake_events)
        per_event = lake_bytes(lakes / measured) / lake_events(measured)
        basis = f"{per_event:.1f} bytes/event as in the cached {measured} lake"
    else:
        per_event = ASSUMED_BYTES_PER_EVENT
        basis = f"{per_event} bytes/event assumed, no cached lake to measure"
    needed = lake_events(size) * per_event * DISK_MARGIN
    free = shutil.disk_usage(lakes).free
    log(f"   lake {size}: about {needed / 1e9:.1f} GB needed ({basis}, "
        f"+{DISK_MARGIN - 1:.0%}), {free / 1e9:.1f} GB free")
    if needed > free:
        sys.exit(f"not enough disk space for the {size} lake in {lakes}: about "
                 f"{needed / 1e9:.1f} GB needed ({lake_events(size):,} events at {basis}, "
                 f"+{DISK_MARGIN - 1:.0%}), {free / 1e9:.1f} GB free")


def ensure_lake(gen: Path, size: str) -> tuple[Path, dict]:
    """The lake of `size` and how it came: generation wall time in seconds (None if not
    recorded), whether it was reused from the cache, bytes on disk."""
    if size == "sample":  # the committed 100k-event lake: a quick check of the query pairs
        lake = REPO / "data" / "sample_lake"
        return lake, {"seconds": None, "reused": True, "bytes": lake_bytes(lake)}
    lakes = cache_dir() / "lakes"
    lakes.mkdir(parents=True, exist_ok=True)
    lake, marker = lakes / size, lakes / f"{size}.spec"
    spec = " ".join(LAKES[size])
    lines = cached_marker(lakes, size)
    if lines is not None:
        log(f"== lake {size}: reusing {lake}")
        seconds = float(lines[1].partition("=")[2]) if len(lines) > 1 else None
        return lake, {"seconds": seconds, "reused": True, "bytes": lake_bytes(lake)}
    marker.unlink(missing_ok=True)
    tmp = lakes / f"{size}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(lake, ignore_errors=True)  # outdated: its space counts as free
    check_disk_space(lakes, size)
    log(f"== lake {size}: generating ({spec})")
    started = time.perf_counter()
    subprocess.run([str(gen), "--out", str(tmp), *LAKES[size]], check=True)
    seconds = time.perf_counter() - started
    tmp.rename(lake)
    marker.write_text(f"{spec}\ngeneration_s={seconds:.1f}\n")
    size_bytes = lake_bytes(lake)
    log(f"   lake {size}: generated in {seconds:.1f} s, {size_bytes / 1e9:.2f} GB")
    return lake, {"seconds": seconds, "reused": False, "bytes": size_bytes}


class Engines:
    def __init__(self, sessionlake: Path, python: str, lake: Path, memory_limit: str | None):
        self.sessionlake, self.python, self.lake = sessionlake, python, lake
        self.memory_limit = memory_limit

    def command(self, engine: str, query: str, limited: bool = False) -> list[str]:
        """The process running `query` (a name of SUITE, or SUITE_SCRIPT) in `engine`."""
        if engine == "duckdb":
            return [self.python, "-c", DUCKDB_RUNNER, str(QUERIES / f"{query}.duckdb.sql"),
                    str(self.lake), str(cache_dir() / "duckdb-tmp")]
        suffix = "datafusion" if engine == "datafusion" else "sessionlake"
        cmd = [str(self.sessionlake), "--lake", f"events={self.lake}", "-q", "--format", "csv"]
        if limited:
            cmd += ["--memory-limit", self.memory_limit]
        return cmd + ["-f", str(QUERIES / f"{query}.{suffix}.sql")]

    def run(self, engine: str, query: str, limited: bool = False) -> dict:
        """`run_timed` of `command`, in an empty scratch directory (`<cache>/scratch`): the
        sessionlake suite writes its session table there, as files a relative path names."""
        scratch = cache_dir() / "scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            return run_timed(self.command(engine, query, limited), cwd=scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def run_timed(cmd: list[str], cwd: Path | None = None) -> dict:
    """One process under /usr/bin/time -v: wall seconds, peak RSS (KiB), exit status, output."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", timing.name, *cmd],
                              capture_output=True, text=True, cwd=cwd)
        wall = time.perf_counter() - started
        rss_kib = None
        for line in timing.read().splitlines():
            if "Maximum resident set size" in line:
                rss_kib = int(line.split(":")[-1])
    return {"wall_s": wall, "rss_kib": rss_kib, "status": proc.returncode,
            "stdout": proc.stdout, "stderr": proc.stderr[-2000:]}


def last_error(run: dict) -> str:
    """The last line a failed run wrote on stderr, or its status if it wrote nothing (a
    process killed for lack of memory)."""
    lines = run["stderr"].strip().splitlines()
    return lines[-1][:300] if lines else f"exit status {run['status']}, no message"


def describe(run: dict) -> str:
    return (f"{run['wall_s']:7.2f} s {(run['rss_kib'] or 0) / 1024:7.0f} MiB"
            + ("" if run["status"] == 0 else f"  FAILED ({run['status']}): {last_error(run)}"))


# ---------------------------------------------------------------- result comparison

def parse_cell(text: str):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def sort_key(row):
    # numbers rounded so that last-digit float noise cannot reorder rows
    return tuple((0, float(f"{c:.9g}"), "") if isinstance(c, (int, float)) else (1, 0.0, c)
                 for c in row)


def rows_of(output: str) -> tuple[list[str], list[tuple]]:
    lines = list(csv.reader(io.StringIO(output)))
    if not lines:
        return [], []
    return lines[0], sorted((tuple(parse_cell(c) for c in r) for r in lines[1:]), key=sort_key)


def same_cell(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a == b:
            return True
        return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    return a == b


def differences(left: str, right: str) -> list[str]:
    (_, lrows), (_, rrows) = rows_of(left), rows_of(right)
    problems = []
    if len(lrows) != len(rrows):
        problems.append(f"{len(lrows)} rows against {len(rrows)}")
    for i, (lr, rr) in enumerate(zip(lrows, rrows)):
        if len(lr) != len(rr) or not all(same_cell(a, b) for a, b in zip(lr, rr)):
            problems.append(f"row {i}: {lr} against {rr}")
            if len(problems) > 5:
                break
    return problems


def split_suite(output: str) -> dict[str, str]:
    """The CSV result of each query in the output of a suite script, by query name."""
    results: dict[str, list[str]] = {}
    current = None
    lines = iter(output.splitlines(keepends=True))
    for line in lines:
        if line.rstrip("\r\n") == SUITE_MARKER:
            current = results.setdefault(next(lines, "").strip(), [])
        elif current is not None:
            current.append(line)
    return {query: "".join(text) for query, text in results.items()}


def check(engines: Engines, queries: list[str], anchor: bool) -> tuple[bool, dict, dict]:
    """Runs every query once per engine (and the anchor when `anchor`) and compares. Returns
    whether no two results differ, the runs (the first timed run of each engine: they alternate
    like the others) and each query's answer, the output the suite mode must give: sessionlake's
    when both engines agree on it, or the one engine's that ran when the other failed.

    A failed run (DuckDB out of disk for its spill files, say) is not a difference: it is logged,
    kept with its error for the report, and its engine is not timed again on that query."""
    ok, first_runs, answers = True, {}, {}
    pairs = [(q, "sessionlake", "duckdb") for q in queries]
    if anchor and ANCHOR in queries:
        pairs.append((ANCHOR, "sessionlake", "datafusion"))
    for query, a, b in pairs:
        ra, rb = engines.run(a, query), engines.run(b, query)
        for name, r in ((a, ra), (b, rb)):
            kept = first_runs.setdefault(query, {})
            if name not in kept:  # the anchor pair runs sessionlake a second time: keep one
                kept[name] = [{k: v for k, v in r.items() if k != "stdout"}]
            log(f"   {query:15} {name:12} check : {describe(r)}")
        if ra["status"] == 0 and rb["status"] == 0:
            problems = differences(ra["stdout"], rb["stdout"])
            rows = len(rows_of(ra["stdout"])[1])
            if problems:
                ok = False
                log(f"   {query}: {a} and {b} DIFFER:\n      " + "\n      ".join(problems))
            else:
                log(f"   {query}: {a} = {b} ({rows} rows)")
                answers.setdefault(query, ra["stdout"])
        else:
            ran = [r for r in (ra, rb) if r["status"] == 0]
            if ran and query not in answers:
                answers[query] = ran[0]["stdout"]
            log(f"   {query}: not compared, "
                + " and ".join(n for n, r in ((a, ra), (b, rb)) if r["status"] != 0)
                + " failed")
    return ok, first_runs, answers


def check_suite(engines: Engines,
                answers: dict[str, str] | None) -> tuple[bool, dict[str, list[dict]]]:
    """Runs the suite script once per engine and compares each of its results with the
    per-query answer (a query that failed in both engines alone has none to compare with), or,
    when `answers` is None, with the other engine's suite result. Returns whether no result
    differs (a failed run is reported, not a difference) and the runs, the first timed run of
    each engine."""
    same, first_runs, outputs = True, {}, {}
    for engine in ENGINES:
        r = engines.run(engine, SUITE_SCRIPT)
        log(f"   {SUITE_SCRIPT:15} {engine:12} check : {describe(r)}")
        first_runs[engine] = [{k: v for k, v in r.items() if k != "stdout"}]
        if r["status"] == 0:
            outputs[engine] = r["stdout"]
    if answers is None:
        return same_suites(outputs), first_runs
    for engine, output in outputs.items():
        results = split_suite(output)
        for query in SUITE:
            if query not in answers:
                log(f"   suite {query}: {engine} not compared, no engine answered it alone")
                continue
            same &= same_result(query, f"{engine} and the per-query answer", results.get(query),
                                answers[query])
    return same, first_runs


def same_suites(outputs: dict[str, str]) -> bool:
    """Compares the six results of the engines' suite outputs with each other (`outputs` maps
    engine to output; with fewer than two there is nothing to compare, which is reported)."""
    if len(outputs) < len(ENGINES):
        log("   suite: not compared, "
            + " and ".join(e for e in ENGINES if e not in outputs) + " failed")
        return True
    a, b = (split_suite(outputs[e]) for e in ENGINES)
    same = True
    for query in SUITE:
        same &= same_result(query, f"{ENGINES[0]} and {ENGINES[1]}", a.get(query), b.get(query))
    return same


def same_result(query: str, what: str, result: str | None, expected: str | None) -> bool:
    """Whether a suite result equals what it must (None: the output has no such result),
    logged; `what` names the two sides."""
    if result is None or expected is None:
        problems = ["no result in an output"]
    else:
        problems = differences(result, expected)
    if problems:
        log(f"   suite {query}: {what} DIFFER:\n      " + "\n      ".join(problems))
        return False
    log(f"   suite {query}: {what} agree ({len(rows_of(result)[1])} rows)")
    return True


# ---------------------------------------------------------------- timing and report

def summary(runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs if r["status"] == 0]
    rss = [r["rss_kib"] for r in runs if r["rss_kib"] is not None]
    return {
        "ok": len(walls) == len(runs),
        "median_s": statistics.median(walls) if walls else None,
        "min_s": min(walls) if walls else None,
        "max_s": max(walls) if walls else None,
        "peak_rss_mib": max(rss) / 1024 if rss else None,
    }


def fmt(x, digits=2):
    return "n/a" if x is None else f"{x:.{digits}f}"


def times(x: float | None) -> str:
    """A ratio as `1.23x`, or `n/a` when one side has no time."""
    return "n/a" if x is None else f"{x:.2f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def ns_per_event(seconds: float | None, events: int) -> float | None:
    return None if seconds is None else seconds / events * 1e9


def time_per_query(engines: Engines, queries: list[str], runs: int, anchor: bool,
                   first_runs: dict) -> dict:
    """`runs` runs per engine and query, the first one being the correctness check's; an engine
    whose check run of a query failed is not run on it again."""
    timings: dict[str, dict[str, list[dict]]] = {
        q: {e: list(r) for e, r in first_runs.get(q, {}).items()} for q in queries}
    for query in queries:
        engines_here = [*ENGINES]
        if anchor and query == ANCHOR:
            engines_here.append("datafusion")
        engines_here = [e for e in engines_here
                        if all(r["status"] == 0 for r in timings[query].get(e, []))]
        for i in range(1, runs):
            for engine in engines_here:  # A B (C) A B (C) ...
                r = engines.run(engine, query)
                r.pop("stdout")
                timings[query].setdefault(engine, []).append(r)
                log(f"   {query:15} {engine:12} run {i + 1}: {describe(r)}")
    return timings


def time_suite(engines: Engines, runs: int, first_runs: dict[str, list[dict]]) -> dict:
    """`runs` runs of the suite script per engine, alternating, the first one being the suite
    check's; an engine whose check run failed is not run again."""
    timings = {e: list(r) for e, r in first_runs.items()}
    working = [e for e in ENGINES if timings[e][0]["status"] == 0]
    for i in range(1, runs):
        for engine in working:
            r = engines.run(engine, SUITE_SCRIPT)
            r.pop("stdout")
            timings[engine].append(r)
            log(f"   {SUITE_SCRIPT:15} {engine:12} run {i + 1}: {describe(r)}")
    return timings


def time_limited(engines: Engines, queries: list[str], runs: int) -> dict:
    timings = {}
    for query in queries:
        for i in range(runs):
            r = engines.run("sessionlake", query, limited=True)
            r.pop("stdout")
            timings.setdefault(query, []).append(r)
            log(f"   {query:15} sessionlake -m {engines.memory_limit} run {i + 1}: "
                f"{describe(r)}")
    return timings


def generation_line(size: str, events: int, generation: dict) -> str:
    if size == "sample":
        return f"Lake: the committed data/sample_lake ({generation['bytes'] / 1e6:.1f} MB)."
    seconds = ("not recorded" if generation["seconds"] is None
               else f"{generation['seconds']:.1f} s")
    when = "an earlier run, lake reused" if generation["reused"] else "this run"
    return (f"lake generation: {seconds} ({when}; `sessionlake-gen {' '.join(LAKES[size])}`: "
            f"{generation['bytes'] / 1e9:.2f} GB, {generation['bytes'] / events:.1f} "
            f"bytes/event).")


def times_cell(runs: list[dict]) -> str:
    """A table cell for the runs of one engine: median (min-max) of the successful runs, then
    how many failed and the first failure's error."""
    sm = summary(runs)
    parts = [] if sm["median_s"] is None else [
        f"{fmt(sm['median_s'])} ({fmt(sm['min_s'])}-{fmt(sm['max_s'])})"]
    failed = [r for r in runs if r["status"] != 0]
    if failed:
        parts.append(f"{len(failed)}/{len(runs)} FAILED: "
                     + last_error(failed[0])[:160].replace("|", "/"))
    return "; ".join(parts)


def per_query_report(events: int, timings: dict) -> list[str]:
    out = ["| query | sessionlake median (min-max) s | DuckDB median (min-max) s | "
           "DuckDB / sessionlake | sessionlake ns/event | DuckDB ns/event | "
           "sessionlake peak RSS MiB | DuckDB peak RSS MiB |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    # the suite row sums the queries that both engines answered, so that its ratio compares
    # the same work
    sums = {"sessionlake": 0.0, "duckdb": 0.0}
    rss = {"sessionlake": 0.0, "duckdb": 0.0}
    unanswered = []
    for query, per_engine in timings.items():
        s, d = summary(per_engine["sessionlake"]), summary(per_engine["duckdb"])
        if s["median_s"] is None or d["median_s"] is None:
            unanswered.append(query)
        else:
            sums["sessionlake"] += s["median_s"]
            sums["duckdb"] += d["median_s"]
        for name, sm in (("sessionlake", s), ("duckdb", d)):
            rss[name] = max(rss[name], sm["peak_rss_mib"] or 0.0)
        out.append(f"| {query} | {times_cell(per_engine['sessionlake'])} | "
                   f"{times_cell(per_engine['duckdb'])} | "
                   f"{times(ratio(d['median_s'], s['median_s']))} | "
                   f"{fmt(ns_per_event(s['median_s'], events), 0)} | "
                   f"{fmt(ns_per_event(d['median_s'], events), 0)} | "
                   f"{fmt(s['peak_rss_mib'], 0)} | {fmt(d['peak_rss_mib'], 0)} |")
    label = "sum of medians" + (f", without {', '.join(unanswered)}" if unanswered else "")
    out.append(f"| **suite** ({label}) | {fmt(sums['sessionlake'])} | "
               f"{fmt(sums['duckdb'])} | {times(ratio(sums['duckdb'], sums['sessionlake']))} | "
               f"{fmt(ns_per_event(sums['sessionlake'], events), 0)} | "
               f"{fmt(ns_per_event(sums['duckdb'], events), 0)} | "
               f"{fmt(rss['sessionlake'], 0)} (max) | {fmt(rss['duckdb'], 0)} (max) |")
    if any(r["status"] != 0 for per_engine in timings.values()
           for runs in per_engine.values() for r in runs):
        out.append("\nSome runs FAILED (see their cells): medians are over the successful runs "
                   "only, and the suite row leaves out a query an engine never answered.")
    out.append("\nns/event: the median time (the sum of medians in the last row) / events.")
    anchor = timings.get(ANCHOR, {}).get("datafusion")
    if anchor:
        a, s = summary(anchor), summary(timings[ANCHOR]["sessionlake"])
        out.append(f"\nInternal anchor, `{ANCHOR}` as DataFusion window SQL (lag + running sum) "
                   f"through the sessionlake CLI: {fmt(a['median_s'])} s median "
                   f"({fmt(a['min_s'])}-{fmt(a['max_s'])}), peak RSS "
                   f"{fmt(a['peak_rss_mib'], 0)} MiB; window SQL / sessionlake = "
                   f"{times(ratio(a['median_s'], s['median_s']))}.")
    elif ANCHOR in timings:
        out.append(f"\nInternal anchor (`{ANCHOR}` as DataFusion window SQL) not run at this "
                   f"size (`--anchor-sizes`).")
    return out


def suite_report(events: int, suite: dict, per_query: dict | None,
                 suite_check: str) -> list[str]:
    checked = ("equal the per-query answers" if suite_check == "per-query"
               else "equal the other engine's (no query was run alone)")
    out = ["Suite mode: each engine runs the six queries in one process over one materialized "
           f"session table (`queries/{SUITE_SCRIPT}.<engine>.sql`); the six "
           f"results of each engine's first run {checked}.", "",
           "| engine | median (min-max) s | ns/event | peak RSS MiB |",
           "| --- | --- | --- | --- |"]
    medians = {}
    for engine, label in (("sessionlake", "sessionlake"), ("duckdb", "DuckDB")):
        sm = summary(suite[engine])
        medians[engine] = sm["median_s"]
        out.append(f"| {label} | {times_cell(suite[engine])} | "
                   f"{fmt(ns_per_event(sm['median_s'], events), 0)} | "
                   f"{fmt(sm['peak_rss_mib'], 0)} |")
    out.append(f"\nSuite mode, DuckDB / sessionlake: "
               f"{times(ratio(medians['duckdb'], medians['sessionlake']))}.")
    if per_query:
        medians_of = {e: [summary(t[e])["median_s"] for t in per_query.values()]
                      for e in ENGINES}
        # an engine that failed a query alone has no per-query total to set against
        sums = {e: None if None in m else sum(m) for e, m in medians_of.items()}
        out[-1] += (" One process against the sum of the per-query medians: sessionlake "
                    f"{times(ratio(medians['sessionlake'], sums['sessionlake']))}, "
                    f"DuckDB {times(ratio(medians['duckdb'], sums['duckdb']))}.")
    return out


def limited_report(limited: dict, timings: dict, memory_limit: str) -> list[str]:
    out = [f"sessionlake with `--memory-limit {memory_limit}`:", "",
           "| query | status | median (min-max) s | unlimited median s | "
           "limited / unlimited | peak RSS MiB |", "| --- | --- | --- | --- | --- | --- |"]
    total_l, total_u, all_ok = 0.0, 0.0, True
    for query, runs in limited.items():
        lm, um = summary(runs), summary(timings[query]["sessionlake"])
        failed = [r for r in runs if r["status"] != 0]
        all_ok &= not failed
        status = "ok" if not failed else (
            f"{len(failed)}/{len(runs)} failed: "
            + last_error(failed[0])[:160].replace("|", "/"))
        if lm["median_s"]:
            total_l += lm["median_s"]
            total_u += um["median_s"]
        out.append(f"| {query} | {status} | {fmt(lm['median_s'])} ({fmt(lm['min_s'])}-"
                   f"{fmt(lm['max_s'])}) | {fmt(um['median_s'])} | "
                   f"{times(ratio(lm['median_s'], um['median_s']))} | "
                   f"{fmt(lm['peak_rss_mib'], 0)} |")
    out.append(f"| **suite** | {'ok' if all_ok else 'INCOMPLETE'} | {fmt(total_l)} | "
               f"{fmt(total_u)} | {times(ratio(total_l, total_u))} | |")
    return out


def report(size: str, events: int, generation: dict, per_query: dict | None,
           suite: dict | None, limited: dict | None, memory_limit: str, startup: dict,
           suite_check: str) -> str:
    out = [f"### {size} events\n", generation_line(size, events, generation)]
    if per_query:
        out += ["", *per_query_report(events, per_query)]
    if suite:
        out += ["", *suite_report(events, suite, per_query, suite_check)]
    out.append(f"\nPython + `import duckdb` alone: {startup['median_s']:.2f} s median "
               f"({startup['peak_rss_mib']:.0f} MiB), included in every DuckDB time above.")
    if limited:
        out += ["", *limited_report(limited, per_query, memory_limit)]
    return "\n".join(out) + "\n"


def failed_runs(size: str, per_query: dict, suite: dict | None,
                limited: dict | None = None) -> list[str]:
    """One line per failed run: size, query, engine and error. `per_query` maps query to engine
    to runs, `suite` engine to runs, `limited` query to sessionlake's runs."""
    groups = [(q, e, runs) for q, per_engine in per_query.items()
              for e, runs in per_engine.items()]
    groups += [(SUITE_SCRIPT, e, runs) for e, runs in (suite or {}).items()]
    groups += [(q, "sessionlake -m", runs) for q, runs in (limited or {}).items()]
    return [f"{size} {query} {engine}: {last_error(r)}"
            for query, engine, runs in groups for r in runs if r["status"] != 0]


def split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="10M,50M",
                        help="lake sizes, comma-separated, of: " + ", ".join(LAKES)
                        + " and sample (data/sample_lake, for a quick --check-only)")
    parser.add_argument("--runs", type=int, default=3,
                        help="timed runs per engine and query (and suite script), the "
                        "correctness check's included")
    parser.add_argument("--queries", default=",".join(SUITE), help="comma-separated subset "
                        "(per-query mode only)")
    parser.add_argument("--mode", choices=["per-query", "suite", "both"],
                        help="what to time: each query as its own process, the six queries in "
                        "one process per engine, or both (default: both; per-query with "
                        "--queries); every query is checked once per engine in any mode")
    parser.add_argument("--anchor-sizes",
                        default=",".join(s for s in ["sample", *LAKES] if s != "500M"),
                        help="sizes at which `totals` is also checked and timed as DataFusion "
                        "window SQL, the internal anchor ('' for none; default: every size but "
                        "500M, to keep that run's time reasonable)")
    parser.add_argument("--memory-limit", default="2g",
                        help="also run the sessionlake queries with this --memory-limit "
                        "(per-query mode)")
    parser.add_argument("--limited-sizes", default="50M",
                        help="sizes at which to run the memory-limited queries ('' for none)")
    parser.add_argument("--suite-check", choices=["per-query", "engines"], default="per-query",
                        help="what suite mode checks its six results against: the per-query "
                        "answers (every query run alone first; the default) or the other "
                        "engine's suite (no per-query runs, which at 500M take hours; needs "
                        "--mode suite)")
    parser.add_argument("--python", default=sys.executable, help="a Python with duckdb")
    parser.add_argument("--skip-build", action="store_true", help="use the binaries as built")
    parser.add_argument("--sessionlake", type=Path, help="this sessionlake binary (implies "
                        "--skip-build for it)")
    parser.add_argument("--check-only", action="store_true", help="compare results, time nothing")
    args = parser.parse_args()

    sizes = split_list(args.events)
    queries = split_list(args.queries)
    for s in sizes:
        if s not in LAKES and s != "sample":
            parser.error(f"unknown size {s}; known: {', '.join(LAKES)}, sample")
    for q in queries:
        if q not in SUITE:
            parser.error(f"unknown query {q}; known: {', '.join(SUITE)}")
    whole_suite = set(queries) == set(SUITE)
    mode = args.mode or ("both" if whole_suite else "per-query")
    if mode != "per-query" and not whole_suite:
        parser.error(f"--mode {mode} runs all six queries in one process: drop --queries")
    if args.suite_check == "engines" and mode != "suite":
        parser.error("--suite-check engines runs no query alone: it needs --mode suite")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not Path("/usr/bin/time").exists():
        parser.error("/usr/bin/time is missing (apt-get install -y time)")

    sessionlake, gen = build(args.skip_build)
    if args.sessionlake:
        sessionlake = args.sessionlake.resolve()
    duckdb_version = subprocess.run([args.python, "-c", "import duckdb; print(duckdb.__version__)"],
                                    capture_output=True, text=True, check=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    results_dir = cache_dir() / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    log(f"sessionlake {commit}, DuckDB {duckdb_version}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}; mode {mode}")

    failures: list[str] = []
    for size in sizes:
        lake, generation = ensure_lake(gen, size)
        events = lake_events(size)
        engines = Engines(sessionlake, args.python, lake, args.memory_limit)
        anchor = size in split_list(args.anchor_sizes)
        if args.suite_check == "engines":
            first_runs, answers = {}, None
        else:
            log(f"== {size}: correctness check (every query once per engine)")
            ok, first_runs, answers = check(engines, queries, anchor)
            if not ok:
                log("RESULTS DIFFER: not timing anything")
                return 1
        suite_first = None
        if mode != "per-query":
            against = "each other" if answers is None else "the answers above"
            log(f"== {size}: suite mode, each engine's six results against {against}")
            same, suite_first = check_suite(engines, answers)
            if not same:
                log("SUITE RESULTS DIFFER: not timing anything")
                return 1
        if args.check_only:
            failures += failed_runs(size, first_runs, suite_first)
            continue
        startup = summary([run_timed([args.python, "-c", "import duckdb"]) for _ in range(3)])
        per_query = suite = limited = None
        if mode != "suite":
            log(f"== {size}: timing per query, {args.runs} runs per engine, alternating")
            per_query = time_per_query(engines, queries, args.runs, anchor, first_runs)
        if suite_first:
            log(f"== {size}: timing suite mode, {args.runs} runs per engine, alternating")
            suite = time_suite(engines, args.runs, suite_first)
        if per_query and args.memory_limit and size in split_list(args.limited_sizes):
            log(f"== {size}: sessionlake queries with --memory-limit {args.memory_limit}")
            limited = time_limited(engines, queries, args.runs)
        text = (f"sessionlake {commit}, DuckDB {duckdb_version}, {os.cpu_count()} CPUs, "
                f"{args.runs} runs each\n\n"
                + report(size, events, generation, per_query, suite, limited, args.memory_limit,
                         startup, args.suite_check))
        print(text, flush=True)
        (results_dir / f"{size}.md").write_text(text)
        (results_dir / f"{size}.json").write_text(json.dumps(
            {"size": size, "commit": commit, "duckdb": duckdb_version, "mode": mode,
             "generation": generation, "timings": per_query, "suite": suite,
             "limited": limited, "duckdb_startup": startup}, indent=1))
        log(f"   written to {results_dir}/{size}.md and .json")
        failures += failed_runs(size, per_query or first_runs, suite or suite_first, limited)
    if failures:
        log("FAILED runs (their errors are in the tables):\n   " + "\n   ".join(failures))
    # a run of the engine under test that failed fails the benchmark; DuckDB's failures (out of
    # disk for its spill files at 500M, say) are results, reported in the tables
    return 2 if any(" sessionlake" in f for f in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
