#!/usr/bin/env bash
# The side-by-side benchmark of issues 7 and 14 in one command, from a fresh clone:
#   bash benches/duckdb/run.sh [--events 10M,50M] [--runs 3] [--mode per-query|suite|both]
#       [--anchor-sizes SIZES] [--memory-limit 2g] [--check-only] [--skip-build]
# Sizes: 1M (a quick check), 10M, 50M, 500M and sample. --mode: per-query (each query as its
# own process), suite (the six queries in one process per engine over one materialized table,
# queries/suite.*.sql, its results checked against the per-query ones) or both (the default).
# --anchor-sizes: where `totals` also runs as DataFusion window SQL (default: every size but
# 500M). --skip-build uses the binaries already in $CARGO_TARGET_DIR/release.
# The 500M run (a lake of some 8 GB, whose generation is timed; free disk space is checked
# first):
#   bash benches/duckdb/run.sh --events 500M --runs 1
# Makes a virtual environment with DuckDB (from PyPI) and the lakes in a cache directory outside
# the clone, installs /usr/bin/time if it is missing, builds the release binaries and runs
# compare.py with these arguments (see `--help`). Results: stdout and <cache>/results/.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/sessionlake-bench"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sessionlake-target}"
mkdir -p "$CACHE"

if [ ! -x /usr/bin/time ]; then
    echo "== installing /usr/bin/time (apt-get install -y time)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq time
fi

VENV="$CACHE/venv"
if ! "$VENV/bin/python" -c "import duckdb" 2>/dev/null; then
    echo "== virtual environment with duckdb in $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet duckdb
fi

exec "$VENV/bin/python" benches/duckdb/compare.py --python "$VENV/bin/python" "$@"
