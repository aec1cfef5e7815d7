#!/usr/bin/env bash
# The figures engine against DuckDB doing the same work (issue 15), in one run:
#   (1) generate DAYS × PER_DAY events of TEAMS teams as NDJSON; time `buildcost ingest --input`
#       against DuckDB's `COPY (SELECT * FROM read_json(...)) TO '…' (FORMAT parquet)` of the
#       same file;
#   (2) time `buildcost metrics --at` on the store: cold (no day rollups yet: it reads every
#       row and stores the rollups), warm (the rollups read back), and with `store.rollups =
#       false`; against DuckDB computing the same gauges from the same Parquet files
#       (benches/metrics_duckdb.py full: dedupe, prices with fall-backs, all seven waste
#       classes with the history-wide duplicate, team sizes, small-team merge, baselines) and
#       against a DuckDB query of per-team 7d/28d cost alone; every gauge is compared to 1e-6;
#   (3) time `buildcost report weekly --format all` (warm and cold) and `buildcost serve` until
#       /readyz answers 200;
#   (4) record each step's peak RSS (GNU time) and write the figures and ratios to $OUT.
# DuckDB runs on every core (2 here), as buildcost does.
#
# Full width, a year: DAYS=365 PER_DAY=60000 TEAMS=1500 benches/figures.sh (about 40 minutes,
# 13 GB of NDJSON, 2 GB of Parquet written twice). Smaller: DAYS=90 PER_DAY=20000 TEAMS=500.
set -euo pipefail
cd "$(dirname "$0")/.."

DAYS=${DAYS:-90}
PER_DAY=${PER_DAY:-20000}
TEAMS=${TEAMS:-500}
WORK=${WORK:-target/figures-bench}
OUT=${OUT:-$WORK/results.json}
END=${END:-2026-11-02T00:00:00Z}
WEEK=${WEEK:-2026-W44}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

say() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)" >&2; }
[ -x /usr/bin/time ] || { echo "error: GNU time is required (apt-get install time)" >&2; exit 2; }
python3 -c 'import duckdb' || { echo "error: python3 -m pip install duckdb" >&2; exit 2; }

rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

say "release build"
cargo build --release --locked -p buildcost-cli --bin buildcost
BIN=$CARGO_TARGET_DIR/release/buildcost

config() {
  local store=$1 path=$2 rollups=$3
  {
    printf '[store]\npath = "%s"\nretention_days = 4000\nrollups = %s\n\n' "$store" "$rollups"
    printf '[http]\nlisten = "127.0.0.1:0"\n\n[refresh]\ninterval = "1h"\n\n'
    sed -n '/^\[pricing\]/,$p' crates/buildcost-cli/assets/demo.toml
  } >"$path"
}
config "$WORK/store" "$WORK/buildcost.toml" true
config "$WORK/store" "$WORK/no-rollups.toml" false

timed() { local name=$1; shift; /usr/bin/time -v -o "$WORK/$name.time" "$@"; }

say "(1) generate $DAYS days × $PER_DAY builds, $TEAMS teams"
"$BIN" generate --days "$DAYS" --builds-per-day "$PER_DAY" --teams "$TEAMS" --end "$END" \
  --out "$WORK/events.ndjson" 2>"$WORK/generate.log"

say "(1) buildcost ingest --input"
timed ingest "$BIN" --config "$WORK/buildcost.toml" ingest --input "$WORK/events.ndjson" --no-progress \
  >"$WORK/ingest.json" 2>"$WORK/ingest.log"

say "(1) DuckDB: COPY read_json to Parquet"
timed duckdb-ingest python3 -c '
import duckdb, sys
duckdb.connect().execute(f"COPY (SELECT * FROM read_json(\x27{sys.argv[1]}\x27, format = \x27newline_delimited\x27, maximum_object_size = 1048576)) TO \x27{sys.argv[2]}\x27 (FORMAT parquet)")
' "$WORK/events.ndjson" "$WORK/duckdb-copy.parquet" 2>"$WORK/duckdb-ingest.log"
rm -f "$WORK/events.ndjson" "$WORK/duckdb-copy.parquet"

say "(2) buildcost metrics --at: cold (no rollups), warm, without rollups"
rm -rf "$WORK/store/_rollups"
timed metrics-cold "$BIN" --config "$WORK/buildcost.toml" metrics --at "$END" >"$WORK/metrics-cold.prom"
timed metrics-warm "$BIN" --config "$WORK/buildcost.toml" metrics --at "$END" >"$WORK/metrics-warm.prom"
timed metrics-plain "$BIN" --config "$WORK/no-rollups.toml" metrics --at "$END" >"$WORK/metrics-plain.prom"
cmp "$WORK/metrics-cold.prom" "$WORK/metrics-warm.prom"
cmp "$WORK/metrics-cold.prom" "$WORK/metrics-plain.prom"

say "(2) DuckDB: the same gauges, and per-team cost alone"
timed duckdb-full python3 benches/metrics_duckdb.py full "$WORK/buildcost.toml" "$WORK/store" "$END" \
  "$WORK/metrics-duckdb.prom" >"$WORK/duckdb-full.json"
timed duckdb-cost python3 benches/metrics_duckdb.py cost "$WORK/buildcost.toml" "$WORK/store" "$END" \
  "$WORK/cost-duckdb.prom" >"$WORK/duckdb-cost.json"
python3 benches/metrics_duckdb.py compare "$WORK/metrics-cold.prom" "$WORK/metrics-duckdb.prom" \
  >"$WORK/compare.json" || { cat "$WORK/compare.json"; exit 1; }

say "(3) buildcost report weekly --format all: warm, then cold"
timed report-warm "$BIN" --config "$WORK/buildcost.toml" report weekly --week "$WEEK" --format all \
  --out "$WORK/report-warm" >/dev/null 2>"$WORK/report-warm.log"
rm -rf "$WORK/store/_rollups"
timed report-cold "$BIN" --config "$WORK/buildcost.toml" report weekly --week "$WEEK" --format all \
  --out "$WORK/report-cold" >/dev/null 2>"$WORK/report-cold.log"
diff -r -x '*.html' -x '*.json' "$WORK/report-warm" "$WORK/report-cold" >/dev/null

say "(3) buildcost serve until /readyz answers 200 (rollups stored)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start=$(date +%s.%N)
"$BIN" --config "$WORK/buildcost.toml" serve --listen "127.0.0.1:$PORT" --at "$END" \
  >/dev/null 2>"$WORK/serve.log" &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
READY_S=$(python3 - "127.0.0.1:$PORT" "$start" <<'PY'
import sys, time, urllib.request
addr, start = sys.argv[1], float(sys.argv[2])
deadline = time.time() + 600
while time.time() < deadline:
    try:
        if urllib.request.urlopen(f"http://{addr}/readyz", timeout=5).status == 200:
            print(f"{time.time() - start:.3f}")
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.02)
sys.exit("serve never became ready")
PY
)
SERVE_RSS=$(ps -o rss= -p "$SERVE" | tr -d ' ')
kill -TERM "$SERVE"; wait "$SERVE" || true

say "results"
python3 - "$WORK" "$OUT" "$READY_S" "$SERVE_RSS" "$DAYS" "$PER_DAY" "$TEAMS" <<'PY'
import json, sys
sys.path.insert(0, "benches")
from gnu_time import wall_and_rss
work, out, ready_s, serve_rss, days, per_day, teams = sys.argv[1:]
def t(name):
    s, rss = wall_and_rss(f"{work}/{name}.time")
    return round(s, 3), round(rss, 1)
r = {"builds": int(days) * int(per_day), "days": int(days), "teams": int(teams)}
for name in ["ingest", "duckdb-ingest", "metrics-cold", "metrics-warm", "metrics-plain", "duckdb-full",
             "duckdb-cost", "report-warm", "report-cold"]:
    s, rss = t(name)
    r[f"{name}_s"], r[f"{name}_peak_rss_mb"] = s, rss
r["duckdb_full_query_s"] = json.load(open(f"{work}/duckdb-full.json"))["seconds"]
r["duckdb_cost_query_s"] = json.load(open(f"{work}/duckdb-cost.json"))["seconds"]
r["serve_ready_s"], r["serve_rss_mb"] = float(ready_s), round(int(serve_rss) / 1024, 1)
r["gauges_equal_to_duckdb"] = json.load(open(f"{work}/compare.json"))["problems"] == 0
r["ratio_ingest_to_duckdb_copy"] = r["ingest_s"] / r["duckdb-ingest_s"]
for m in ["metrics-cold", "metrics-warm", "metrics-plain"]:
    r[f"ratio_{m}_to_duckdb_full"] = r[f"{m}_s"] / r["duckdb-full_s"]
    r[f"ratio_{m}_to_duckdb_cost_alone"] = r[f"{m}_s"] / r["duckdb-cost_s"]
json.dump(r, open(out, "w"), indent=2)
for k, v in r.items():
    print(f"  {k:44} {v:.3f}" if isinstance(v, float) else f"  {k:44} {v}")
print(f"written to {out}")
PY
