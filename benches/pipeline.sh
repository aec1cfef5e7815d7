#!/usr/bin/env bash
# The macro benchmark (issue 6), in one run, on this machine:
#   (a) produce EVENTS generated events into a real broker (Tansu) on loopback; time a bare
#       consumer on the same rdkafka that only counts bytes (the floor), then `buildcost ingest`
#       consuming the same topic to durable Parquet;
#   (b) backfill YEAR_DAYS × YEAR_PER_DAY events (a year at 60,000 a day: 22 million) from NDJSON;
#   (c) time the service's metrics refresh (`buildcost serve`: the first and the warm ones, as
#       its buildcost_refresh_duration_seconds says) over that year and over 30 days, a /metrics
#       scrape, and a week-by-team cost query against DuckDB running equivalent SQL over the
#       same Parquet files (the results are compared too);
#   (d) record the peak RSS of each (GNU time), and of `buildcost run` at steady state: the
#       Kafka step's store and topic, a trickle of new events, refreshes every second; then
#       the same on the year's store (benches/steady.py).
# It prints each figure and the ratios and writes them to $OUT (JSON).
#
# Needs: tansu, python3 with duckdb and confluent-kafka, curl, GNU time (/usr/bin/time). Full size needs about 15 GB of
# disk under $WORK and an hour on 2 cores; scale it down with the variables below, e.g.
#   EVENTS=300000 YEAR_DAYS=30 benches/pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-5000000}
PER_DAY=${PER_DAY:-60000}
YEAR_DAYS=${YEAR_DAYS:-365}
YEAR_PER_DAY=${YEAR_PER_DAY:-60000}
TEAMS=${TEAMS:-1500}
PARTITIONS=${PARTITIONS:-6}
WORK=${WORK:-target/pipeline-bench}
OUT=${OUT:-$WORK/results.json}
END=${END:-2026-11-02T00:00:00Z}
# The refresh is timed at 18:00 of the last day: the open day then holds three quarters of a
# day's builds and every window starts inside a day, as for a service at any time of day.
SERVE_AT=${SERVE_AT:-2026-11-01T18:00:00Z}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

say() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)" >&2; }
need() { command -v "$1" >/dev/null || { echo "error: $1 is required ($2)" >&2; exit 2; }; }
need tansu "cargo install tansu --locked --version 0.6.0 --features dynostore"
need /usr/bin/time "apt-get install time"
python3 -c 'import duckdb' || { echo "error: python3 -m pip install duckdb" >&2; exit 2; }

rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

say "release build"
cargo build --release --locked -p buildcost-cli -p buildcost-bench --bin buildcost --bin bare-consumer
BIN=$CARGO_TARGET_DIR/release

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
seconds_since() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.3f}')" "$1"; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

PORT=$(free_port)
BROKER=127.0.0.1:$PORT
say "Tansu on $BROKER"
tansu broker --listener-url "tcp://$BROKER" --advertised-listener-url "tcp://$BROKER" \
  --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
PIDS+=($!)
python3 - "$BROKER" "$PARTITIONS" <<'PY'
import socket, sys, time
host, port = sys.argv[1].split(":")
for _ in range(300):
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("tansu did not start")
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
for f in admin.create_topics([NewTopic("bench", int(sys.argv[2]), 1), NewTopic("bench.dlq", 1, 1)]).values():
    f.result(30)
PY

# One configuration: the demo's price table, the bench's broker and store.
config() {
  local store=$1 path=$2
  {
    printf '[store]\npath = "%s"\nretention_days = 4000\n\n' "$store"
    printf '[kafka]\nbrokers = "%s"\ntopic = "bench"\ndead_letter_topic = "bench.dlq"\ngroup_id = "buildcost-bench"\n\n' "$BROKER"
    printf '[http]\nlisten = "127.0.0.1:0"\n\n[refresh]\ninterval = "1s"\n\n'
    sed -n '/^\[pricing\]/,$p' crates/buildcost-cli/assets/demo.toml
  } >"$path"
}
config "$WORK/store-kafka" "$WORK/kafka.toml"
config "$WORK/store-year" "$WORK/year.toml"

DAYS=$(( (EVENTS + PER_DAY - 1) / PER_DAY ))
N=$(( DAYS * PER_DAY ))
say "(a) produce $N events ($DAYS days × $PER_DAY) with buildcost generate --kafka"
start=$(date +%s.%N)
"$BIN/buildcost" --config "$WORK/kafka.toml" generate --kafka --days "$DAYS" --builds-per-day "$PER_DAY" \
  --teams "$TEAMS" --end "$END" >"$WORK/produce.out" 2>"$WORK/produce.log"
PRODUCE_S=$(seconds_since "$start")

say "(a) bare consumer"
/usr/bin/time -v -o "$WORK/bare.time" "$BIN/bare-consumer" --brokers "$BROKER" --topic bench \
  --messages "$N" --group bare >"$WORK/bare.json" 2>"$WORK/bare.log"
BARE_S=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["seconds"])' "$WORK/bare.json")

say "(a) buildcost ingest from the topic to durable Parquet"
MPORT=$(free_port)
start=$(date +%s.%N)
/usr/bin/time -v -o "$WORK/ingest-kafka.time" "$BIN/buildcost" --config "$WORK/kafka.toml" ingest \
  --listen "127.0.0.1:$MPORT" >"$WORK/ingest-kafka.json" 2>"$WORK/ingest-kafka.log" &
TIMED=$!
PIDS+=($TIMED)
# Done when every message is counted as stored (accepted counts only durable batches).
python3 - "127.0.0.1:$MPORT" "$N" <<'PY'
import sys, time, urllib.request
addr, n = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 7200
while time.time() < deadline:
    try:
        text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
        done = sum(float(l.split()[-1]) for l in text.splitlines()
                   if l.startswith(("buildcost_events_accepted_total", "buildcost_events_duplicate_total",
                                    "buildcost_events_rejected_total")))
        if done >= n:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("buildcost ingest did not finish")
PY
INGEST_KAFKA_S=$(seconds_since "$start")
# The ingester's own pid is the child of GNU time.
kill -TERM "$(pgrep -P "$TIMED")"
wait "$TIMED"

say "(b) generate a year: $YEAR_DAYS days × $YEAR_PER_DAY"
start=$(date +%s.%N)
"$BIN/buildcost" generate --days "$YEAR_DAYS" --builds-per-day "$YEAR_PER_DAY" --teams "$TEAMS" \
  --end "$END" --out "$WORK/year.ndjson" 2>"$WORK/generate.log"
GENERATE_S=$(seconds_since "$start")
YEAR_N=$(( YEAR_DAYS * YEAR_PER_DAY ))
YEAR_BYTES=$(stat -c %s "$WORK/year.ndjson")

say "(b) buildcost ingest --input (backfill)"
/usr/bin/time -v -o "$WORK/backfill.time" "$BIN/buildcost" --config "$WORK/year.toml" ingest \
  --input "$WORK/year.ndjson" --no-progress >"$WORK/backfill.json" 2>"$WORK/backfill.log"
rm -f "$WORK/year.ndjson"
STORE_BYTES=$(du -sb "$WORK/store-year" | cut -f1)

# The service's refresh, as `buildcost serve` reports it: the first one (which reads the keys of
# the history and classifies the window's closed days) and the warm ones after it.
serve_refresh() {
  local config=$1 name=$2 port
  port=$(free_port)
  /usr/bin/time -v -o "$WORK/$name.time" "$BIN/buildcost" --config "$config" serve \
    --listen "127.0.0.1:$port" --at "$SERVE_AT" >/dev/null 2>"$WORK/$name.log" &
  local timed=$!
  PIDS+=($timed)
  python3 - "127.0.0.1:$port" "$WORK/$name.json" <<'PY'
import gzip, json, statistics, sys, time, urllib.request
addr, out = sys.argv[1], sys.argv[2]
def scrape_gzip():
    # As Prometheus scrapes: gzip asked for, the body inflated.
    started = time.perf_counter()
    request = urllib.request.Request(f"http://{addr}/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=30) as r:
        body = r.read()
        assert r.headers.get("Content-Encoding") == "gzip", r.headers
    text = gzip.decompress(body)
    return time.perf_counter() - started, len(body), len(text)
def metrics():
    started = time.perf_counter()
    text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=30).read().decode()
    took = time.perf_counter() - started
    values = {}
    for line in text.splitlines():
        if line.startswith(("buildcost_refreshes_total ", "buildcost_refresh_duration_seconds ")):
            name, value = line.split()
            values[name] = float(value)
    return values, took, len(text)
deadline, seen, durations, scrapes = time.time() + 3600, 0, [], []
while time.time() < deadline and len(durations) < 8:
    try:
        values, took, size = metrics()
    except OSError:
        time.sleep(0.2)
        continue
    scrapes.append(took)
    n = int(values.get("buildcost_refreshes_total", 0))
    if n > seen:
        seen = n
        durations.append(values["buildcost_refresh_duration_seconds"])
    time.sleep(0.05)
if len(durations) < 3:
    sys.exit("serve did not refresh three times")
gz = [scrape_gzip() for _ in range(5)]
assert gz[-1][2] > 0.9 * size, (gz[-1], size)
import subprocess
def curl(*headers):
    # The response time as curl measures it (connect to last byte, nothing decoded): what the
    # server costs, without a Python client's own time.
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", *headers,
                          f"http://{addr}/metrics"], capture_output=True, text=True, check=True)
    return float(out.stdout)
plain = [curl() for _ in range(30)]
gzipped = [curl("-H", "Accept-Encoding: gzip") for _ in range(30)]
json.dump({"first_refresh_s": durations[0], "warm_refresh_s": statistics.median(durations[2:]),
           "warm_refreshes": durations[2:], "metrics_bytes": size, "metrics_gzip_bytes": gz[-1][1],
           "scrape_ms_median": 1000 * statistics.median(plain),
           "scrape_gzip_ms_median": 1000 * statistics.median(gzipped),
           "scrape_python_gzip_ms_median": 1000 * statistics.median(g[0] for g in gz)}, open(out, "w"))
PY
  kill -TERM "$(pgrep -P "$timed")"
  wait "$timed" || true
}

say "(c) a 30-day store, for the refresh's flatness"
"$BIN/buildcost" generate --days 30 --builds-per-day "$YEAR_PER_DAY" --teams "$TEAMS" --end "$END" \
  --out "$WORK/month.ndjson" 2>/dev/null
config "$WORK/store-month" "$WORK/month.toml"
"$BIN/buildcost" --config "$WORK/month.toml" ingest --input "$WORK/month.ndjson" --no-progress >/dev/null 2>&1
rm -f "$WORK/month.ndjson"

say "(c) the service's refresh over 30 days and over the year (buildcost serve)"
serve_refresh "$WORK/month.toml" serve-month
serve_refresh "$WORK/year.toml" serve-year

# `buildcost run` on a store at steady state (benches/steady.py: a trickle of 6,000 new builds,
# seeded so each store sees new ids), under GNU time; writes $WORK/<name>.{time,log,json}.
run_steady() {
  local config=$1 name=$2 seed=$3 port timed
  port=$(free_port)
  /usr/bin/time -v -o "$WORK/$name.time" "$BIN/buildcost" --config "$config" run \
    --listen "127.0.0.1:$port" --at "$SERVE_AT" >/dev/null 2>"$WORK/$name.log" &
  timed=$!
  PIDS+=($timed)
  python3 benches/steady.py "127.0.0.1:$port" "$WORK/$name.json" "$timed" "$BIN/buildcost" "$config" "$TEAMS" "$END" "$seed"
  kill -TERM "$(pgrep -P "$timed")"
  wait "$timed" || true
}

say "(d) buildcost run at steady state (the Kafka store, evaluated at $SERVE_AT)"
run_steady "$WORK/kafka.toml" run 99

say "(d) buildcost run with a year of history (the year's store, the same trickle)"
run_steady "$WORK/year.toml" run-year 98

say "(c) week-by-team cost: buildcost query and DuckDB"
/usr/bin/time -v -o "$WORK/query.time" "$BIN/buildcost" --config "$WORK/year.toml" query \
  "SELECT team, date_trunc('week', finished_at) AS week, SUM(cost_eur) AS eur FROM builds GROUP BY 1, 2 ORDER BY 1, 2" \
  --format csv >"$WORK/week-by-team.buildcost.csv" 2>"$WORK/query.log"
/usr/bin/time -v -o "$WORK/duckdb.time" python3 benches/week_by_team_duckdb.py "$WORK/year.toml" \
  "$WORK/store-year" "$WORK/week-by-team.duckdb.csv" >"$WORK/duckdb.json" 2>"$WORK/duckdb.log"

say "results"
python3 - "$WORK" "$OUT" <<PY
import csv, json, sys
sys.path.insert(0, "benches")
from gnu_time import wall_and_rss
work, out = sys.argv[1], sys.argv[2]
def t(name):
    return wall_and_rss(f"{work}/{name}.time")
def rows(path):
    with open(path) as f:
        r = csv.reader(f); next(r)
        return {(a, b[:10]): float(c) for a, b, c in r}
ours, theirs = rows(f"{work}/week-by-team.buildcost.csv"), rows(f"{work}/week-by-team.duckdb.csv")
same = ours.keys() == theirs.keys() and all(abs(ours[k] - theirs[k]) <= 1e-6 * max(1, abs(theirs[k])) for k in ours)
bare_s, bare_rss = t("bare"); kafka_s_total, kafka_rss = t("ingest-kafka")
backfill_s, backfill_rss = t("backfill")
_, serve_year_rss = t("serve-year"); _, serve_month_rss = t("serve-month")
year = json.load(open(f"{work}/serve-year.json")); month = json.load(open(f"{work}/serve-month.json"))
query_s, query_rss = t("query"); duck_s, duck_rss = t("duckdb")
run = json.load(open(f"{work}/run.json")); run_year = json.load(open(f"{work}/run-year.json"))
duck_inner = json.load(open(f"{work}/duckdb.json"))["seconds"]
backfill = json.loads(open(f"{work}/backfill.json").read().strip().splitlines()[-1])
kafka_n, kafka_s = $N, $INGEST_KAFKA_S
r = {
  "machine": {"cores": __import__("os").cpu_count()},
  "a_kafka": {"events": kafka_n, "partitions": $PARTITIONS, "produce_s": $PRODUCE_S,
              "bare_consumer_s": $BARE_S, "bare_consumer_peak_rss_mb": bare_rss,
              "buildcost_ingest_s": kafka_s, "buildcost_ingest_peak_rss_mb": kafka_rss,
              "buildcost_events_per_s": kafka_n / kafka_s, "bare_events_per_s": kafka_n / $BARE_S,
              "ratio_buildcost_to_bare": kafka_s / $BARE_S},
  "b_backfill": {"events": $YEAR_N, "ndjson_bytes": $YEAR_BYTES, "generate_s": $GENERATE_S,
                 "ingest_s": backfill_s, "events_per_s": $YEAR_N / backfill_s, "peak_rss_mb": backfill_rss,
                 "accepted": backfill.get("accepted"), "store_bytes": $STORE_BYTES,
                 "bytes_per_build": $STORE_BYTES / max(1, backfill.get("accepted", 1))},
  "c_queries": {"refresh_first_year_s": year["first_refresh_s"], "refresh_warm_year_s": year["warm_refresh_s"],
                "refresh_warm_30d_s": month["warm_refresh_s"],
                "ratio_refresh_year_to_30d": year["warm_refresh_s"] / month["warm_refresh_s"],
                "serve_year_peak_rss_mb": serve_year_rss, "serve_30d_peak_rss_mb": serve_month_rss,
                "metrics_scrape_ms_median": year["scrape_ms_median"], "metrics_bytes": year["metrics_bytes"],
                "metrics_scrape_gzip_ms_median": year["scrape_gzip_ms_median"],
                "metrics_scrape_python_gzip_ms_median": year["scrape_python_gzip_ms_median"],
                "metrics_gzip_bytes": year["metrics_gzip_bytes"],
                "week_by_team_buildcost_s": query_s, "week_by_team_buildcost_peak_rss_mb": query_rss,
                "week_by_team_duckdb_process_s": duck_s, "week_by_team_duckdb_query_s": duck_inner,
                "week_by_team_duckdb_peak_rss_mb": duck_rss,
                "ratio_buildcost_to_duckdb_process": query_s / duck_s,
                "results_equal": same, "week_team_rows": len(ours)},
  "d_run_steady_state": {"history_days": $DAYS, "steady_rss_mb": run["steady_rss_mb"],
                         "peak_rss_mb": run["peak_rss_mb"], "warm_refresh_s": run["warm_refresh_s"],
                         "events_accepted": run["accepted"],
                         "year_history_steady_rss_mb": run_year["steady_rss_mb"],
                         "year_history_peak_rss_mb": run_year["peak_rss_mb"],
                         "year_history_warm_refresh_s": run_year["warm_refresh_s"]},
}
json.dump(r, open(out, "w"), indent=2)
for section, figures in r.items():
    print(section)
    for k, v in figures.items():
        print(f"  {k:40} {v:.3f}" if isinstance(v, float) else f"  {k:40} {v}")
print(f"written to {out}")
if not same:
    sys.exit("buildcost and DuckDB disagree on the week-by-team costs")
PY
