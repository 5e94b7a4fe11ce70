#!/usr/bin/env python3
"""sessionlake against DuckDB window SQL, side by side (issue 7).

Run it through `bash benches/duckdb/run.sh` (which makes the virtual environment with DuckDB);
run.sh passes its arguments here. For every lake size it:

1. generates the lake with the project's seeded generator into the cache directory (reused when
   a marker file records the same generator arguments);
2. runs every query of `queries/` once in sessionlake and in DuckDB and compares the results
   (rows sorted, numbers within 1e-9 relative); any difference exits with status 1 before
   anything else runs;
3. times each query as separate processes under `/usr/bin/time -v` (wall time and peak RSS),
   alternating sessionlake, DuckDB (and, for `totals`, DataFusion window SQL through the
   sessionlake CLI), `--runs` times each, the check's run (also under /usr/bin/time) counting
   as the first;
4. optionally runs the sessionlake suite again with `--memory-limit`.

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

# the lakes of issue 7: generator arguments per size
LAKES = {
    "10M": ["--events", "10000000", "--days", "30", "--users", "200000",
            "--files-per-day", "2", "--seed", "42"],
    "50M": ["--events", "50000000", "--days", "30", "--users", "1000000",
            "--files-per-day", "4", "--seed", "42"],
}

# DuckDB runs the query text of a file and prints CSV, like `sessionlake --format csv -q`
DUCKDB_RUNNER = r"""
import csv, sys, duckdb
sql = open(sys.argv[1]).read().replace('@LAKE@', sys.argv[2])
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
cur = con.execute(sql)
out = csv.writer(sys.stdout, lineterminator='\n')
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


def ensure_lake(gen: Path, size: str) -> Path:
    if size == "sample":  # the committed 100k-event lake: a quick check of the query pairs
        return REPO / "data" / "sample_lake"
    lakes = cache_dir() / "lakes"
    lakes.mkdir(parents=True, exist_ok=True)
    lake, marker = lakes / size, lakes / f"{size}.spec"
    spec = " ".join(LAKES[size])
    if lake.is_dir() and marker.is_file() and marker.read_text().strip() == spec:
        log(f"== lake {size}: reusing {lake}")
        return lake
    log(f"== lake {size}: generating ({spec})")
    marker.unlink(missing_ok=True)
    tmp = lakes / f"{size}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([str(gen), "--out", str(tmp), *LAKES[size]], check=True)
    shutil.rmtree(lake, ignore_errors=True)
    tmp.rename(lake)
    marker.write_text(spec + "\n")
    return lake


class Engines:
    def __init__(self, sessionlake: Path, python: str, lake: Path, memory_limit: str | None):
        self.sessionlake, self.python, self.lake = sessionlake, python, lake
        self.memory_limit = memory_limit

    def command(self, engine: str, query: str, limited: bool = False) -> list[str]:
        if engine == "duckdb":
            return [self.python, "-c", DUCKDB_RUNNER, str(QUERIES / f"{query}.duckdb.sql"),
                    str(self.lake)]
        suffix = "datafusion" if engine == "datafusion" else "sessionlake"
        cmd = [str(self.sessionlake), "--lake", f"events={self.lake}", "-q", "--format", "csv"]
        if limited:
            cmd += ["--memory-limit", self.memory_limit]
        return cmd + ["-f", str(QUERIES / f"{query}.{suffix}.sql")]


def run_timed(cmd: list[str]) -> dict:
    """One process under /usr/bin/time -v: wall seconds, peak RSS (KiB), exit status, output."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", timing.name, *cmd],
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        rss_kib = None
        for line in timing.read().splitlines():
            if "Maximum resident set size" in line:
                rss_kib = int(line.split(":")[-1])
    return {"wall_s": wall, "rss_kib": rss_kib, "status": proc.returncode,
            "stdout": proc.stdout, "stderr": proc.stderr[-2000:]}


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


def check(engines: Engines, queries: list[str], first_runs: dict) -> bool:
    """Runs every query once per engine and compares; the runs are kept in `first_runs` as the
    first timed run of each engine (they alternate like the others)."""
    ok = True
    pairs = [(q, "sessionlake", "duckdb") for q in queries]
    if ANCHOR in queries:
        pairs.append((ANCHOR, "sessionlake", "datafusion"))
    for query, a, b in pairs:
        ra, rb = run_timed(engines.command(a, query)), run_timed(engines.command(b, query))
        for name, r in ((a, ra), (b, rb)):
            kept = first_runs.setdefault(query, {})
            if name not in kept:  # the anchor pair runs sessionlake a second time: keep one
                kept[name] = [{k: v for k, v in r.items() if k != "stdout"}]
        for name, r in ((a, ra), (b, rb)):
            log(f"   {query:15} {name:12} check : {r['wall_s']:7.2f} s "
                f"{(r['rss_kib'] or 0) / 1024:7.0f} MiB")
            if r["status"] != 0:
                log(f"   {query}: {name} failed with status {r['status']}: {r['stderr']}")
                ok = False
        if ra["status"] == 0 and rb["status"] == 0:
            problems = differences(ra["stdout"], rb["stdout"])
            rows = len(rows_of(ra["stdout"])[1])
            if problems:
                ok = False
                log(f"   {query}: {a} and {b} DIFFER:\n      " + "\n      ".join(problems))
            else:
                log(f"   {query}: {a} = {b} ({rows} rows)")
    return ok


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


def time_suite(engines: Engines, queries: list[str], runs: int, anchor: bool,
               first_runs: dict) -> dict:
    """`runs` runs per engine and query, the first one being the correctness check's."""
    timings: dict[str, dict[str, list[dict]]] = {
        q: {e: list(r) for e, r in first_runs.get(q, {}).items()} for q in queries}
    for query in queries:
        engines_here = ["sessionlake", "duckdb"]
        if anchor and query == ANCHOR:
            engines_here.append("datafusion")
        for i in range(1, runs):
            for engine in engines_here:  # A B (C) A B (C) ...
                r = run_timed(engines.command(engine, query))
                r.pop("stdout")
                timings[query].setdefault(engine, []).append(r)
                log(f"   {query:15} {engine:12} run {i + 1}: {r['wall_s']:7.2f} s "
                    f"{(r['rss_kib'] or 0) / 1024:7.0f} MiB"
                    + ("" if r["status"] == 0 else f"  FAILED ({r['status']})"))
    return timings


def time_limited(engines: Engines, queries: list[str], runs: int) -> dict:
    timings = {}
    for query in queries:
        for i in range(runs):
            r = run_timed(engines.command("sessionlake", query, limited=True))
            r.pop("stdout")
            timings.setdefault(query, []).append(r)
            log(f"   {query:15} sessionlake -m {engines.memory_limit} run {i + 1}: "
                f"{r['wall_s']:7.2f} s {(r['rss_kib'] or 0) / 1024:7.0f} MiB"
                + ("" if r["status"] == 0 else
                   f"  FAILED ({r['status']}): {r['stderr'].strip().splitlines()[-1][:300]}"))
    return timings


def report(size: str, events: int, timings: dict, limited: dict | None, memory_limit: str,
           startup: dict) -> str:
    out = [f"### {size} events\n",
           "| query | sessionlake median (min-max) s | DuckDB median (min-max) s | "
           "DuckDB / sessionlake | sessionlake peak RSS MiB | DuckDB peak RSS MiB |",
           "| --- | --- | --- | --- | --- | --- |"]
    suite = {"sessionlake": 0.0, "duckdb": 0.0}
    rss = {"sessionlake": 0.0, "duckdb": 0.0}
    complete = True
    for query, per_engine in timings.items():
        s, d = summary(per_engine["sessionlake"]), summary(per_engine["duckdb"])
        complete &= s["ok"] and d["ok"]
        for name, sm in (("sessionlake", s), ("duckdb", d)):
            suite[name] += sm["median_s"] or 0.0
            rss[name] = max(rss[name], sm["peak_rss_mib"] or 0.0)
        ratio = d["median_s"] / s["median_s"] if s["median_s"] and d["median_s"] else None
        out.append(f"| {query} | {fmt(s['median_s'])} ({fmt(s['min_s'])}-{fmt(s['max_s'])}) | "
                   f"{fmt(d['median_s'])} ({fmt(d['min_s'])}-{fmt(d['max_s'])}) | "
                   f"{fmt(ratio)}x | {fmt(s['peak_rss_mib'], 0)} | {fmt(d['peak_rss_mib'], 0)} |")
    out.append(f"| **suite** (sum of medians) | {fmt(suite['sessionlake'])} | "
               f"{fmt(suite['duckdb'])} | {fmt(suite['duckdb'] / suite['sessionlake'])}x | "
               f"{fmt(rss['sessionlake'], 0)} (max) | {fmt(rss['duckdb'], 0)} (max) |")
    if not complete:
        out.append("\nSome runs FAILED: the medians above are over the successful runs only.")
    out.append(f"\nsessionlake cost per event: "
               f"{suite['sessionlake'] / events * 1e9:.1f} ns (suite time / events). "
               f"Python + `import duckdb` alone: {startup['median_s']:.2f} s median "
               f"({startup['peak_rss_mib']:.0f} MiB), included in every DuckDB time above.")
    anchor = timings.get(ANCHOR, {}).get("datafusion")
    if anchor:
        a, s = summary(anchor), summary(timings[ANCHOR]["sessionlake"])
        out.append(f"\nInternal anchor, `{ANCHOR}` as DataFusion window SQL (lag + running sum) "
                   f"through the sessionlake CLI: {fmt(a['median_s'])} s median "
                   f"({fmt(a['min_s'])}-{fmt(a['max_s'])}), peak RSS "
                   f"{fmt(a['peak_rss_mib'], 0)} MiB; window SQL / sessionlake = "
                   f"{fmt(a['median_s'] / s['median_s'] if a['median_s'] else None)}x.")
    if limited:
        out += ["", f"sessionlake with `--memory-limit {memory_limit}`:", "",
                "| query | status | median (min-max) s | unlimited median s | "
                "limited / unlimited | peak RSS MiB |", "| --- | --- | --- | --- | --- | --- |"]
        total_l, total_u, all_ok = 0.0, 0.0, True
        for query, runs in limited.items():
            lm, um = summary(runs), summary(timings[query]["sessionlake"])
            failed = [r for r in runs if r["status"] != 0]
            all_ok &= not failed
            status = "ok" if not failed else (
                f"{len(failed)}/{len(runs)} failed: "
                + failed[0]["stderr"].strip().splitlines()[-1][:160].replace("|", "/"))
            if lm["median_s"]:
                total_l += lm["median_s"]
                total_u += um["median_s"]
            ratio = lm["median_s"] / um["median_s"] if lm["median_s"] else None
            out.append(f"| {query} | {status} | {fmt(lm['median_s'])} ({fmt(lm['min_s'])}-"
                       f"{fmt(lm['max_s'])}) | {fmt(um['median_s'])} | {fmt(ratio)}x | "
                       f"{fmt(lm['peak_rss_mib'], 0)} |")
        out.append(f"| **suite** | {'ok' if all_ok else 'INCOMPLETE'} | {fmt(total_l)} | "
                   f"{fmt(total_u)} | {fmt(total_l / total_u if total_u else None)}x | |")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="10M,50M",
                        help="lake sizes, comma-separated, of: " + ", ".join(LAKES)
                        + " and sample (data/sample_lake, for a quick --check-only)")
    parser.add_argument("--runs", type=int, default=3,
                        help="timed runs per engine and query, the correctness check's included")
    parser.add_argument("--queries", default=",".join(SUITE), help="comma-separated subset")
    parser.add_argument("--memory-limit", default="2g",
                        help="also run the sessionlake suite with this --memory-limit")
    parser.add_argument("--limited-sizes", default="50M",
                        help="sizes at which to run the memory-limited suite ('' for none)")
    parser.add_argument("--python", default=sys.executable, help="a Python with duckdb")
    parser.add_argument("--skip-build", action="store_true", help="use the binaries as built")
    parser.add_argument("--sessionlake", type=Path, help="this sessionlake binary (implies "
                        "--skip-build for it)")
    parser.add_argument("--check-only", action="store_true", help="compare results, time nothing")
    args = parser.parse_args()

    sizes = [s.strip() for s in args.events.split(",") if s.strip()]
    queries = [q.strip() for q in args.queries.split(",") if q.strip()]
    for s in sizes:
        if s not in LAKES and s != "sample":
            parser.error(f"unknown size {s}; known: {', '.join(LAKES)}")
    for q in queries:
        if q not in SUITE:
            parser.error(f"unknown query {q}; known: {', '.join(SUITE)}")
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
        f"{platform.platform()}")

    for size in sizes:
        lake = ensure_lake(gen, size)
        engines = Engines(sessionlake, args.python, lake, args.memory_limit)
        log(f"== {size}: correctness check (every query once per engine)")
        first_runs: dict = {}
        if not check(engines, queries, first_runs):
            log("RESULTS DIFFER: not timing anything")
            return 1
        if args.check_only:
            continue
        startup = summary([run_timed([args.python, "-c", "import duckdb"]) for _ in range(3)])
        log(f"== {size}: timing, {args.runs} runs per engine, alternating")
        timings = time_suite(engines, queries, args.runs, anchor=True, first_runs=first_runs)
        limited = None
        if args.memory_limit and size in args.limited_sizes.split(","):
            log(f"== {size}: sessionlake suite with --memory-limit {args.memory_limit}")
            limited = time_limited(engines, queries, args.runs)
        events = int(LAKES[size][1]) if size in LAKES else 100_000
        text = (f"sessionlake {commit}, DuckDB {duckdb_version}, {os.cpu_count()} CPUs, "
                f"{args.runs} runs each\n\n"
                + report(size, events, timings, limited, args.memory_limit, startup))
        print(text, flush=True)
        (results_dir / f"{size}.md").write_text(text)
        (results_dir / f"{size}.json").write_text(json.dumps(
            {"size": size, "commit": commit, "duckdb": duckdb_version, "timings": timings,
             "limited": limited, "duckdb_startup": startup}, indent=1))
        log(f"   written to {results_dir}/{size}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
