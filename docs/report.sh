#!/usr/bin/env bash
# Makes docs/report.png again: the screenshot of the sample job's report (docs/jobs.md, "The
# report"). Runs the sample job (data/sample_job.toml, whose sink is target/sample_job), draws
# its _current/report.html again from the committed tables, and photographs the page with
# headless Chromium (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

# exit 3: committed, and an alert tripped (the sample job's alerts do)
cargo run --locked --quiet -- job run data/sample_job.toml || [ $? -eq 3 ]
report="$(cargo run --locked --quiet -- job report data/sample_job.toml)"

chromium="$(command -v chromium || command -v chromium-browser || command -v google-chrome)"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$profile" --window-size=1200,2000 \
  --screenshot="$PWD/docs/report.png" "file://$report" 2>/dev/null
echo "docs/report.png: $report"
