#!/usr/bin/env bash
# What the delivery figures (spec section 12) cost: the same organisation and the same number of
# builds, generated with requests and deployments and without (`--no-deliveries`), ingested into
# two stores; then `metrics --at` cold (no rollups) and warm, and `report weekly`, on each. The
# builds-only store is the reference of the same run (the delivery reader reads nothing there).
#   benches/delivery.sh                          # 90 days x 20,000 builds, 600 teams
#   DAYS=30 PER_DAY=5000 TEAMS=200 benches/delivery.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DAYS=${DAYS:-90}
PER_DAY=${PER_DAY:-20000}
TEAMS=${TEAMS:-600}
BIN=${BUILDCOST:-${CARGO_TARGET_DIR:-target}/release/buildcost}
[ -x "$BIN" ] || cargo build --release -p buildcost-cli
WORK=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
END=2026-11-30T00:00:00Z
for kind in builds delivery; do
  flag=""; [ "$kind" = builds ] && flag="--no-deliveries"
  "$BIN" generate --seed 3 --days "$DAYS" --builds-per-day "$PER_DAY" --teams "$TEAMS" --end "$END" \
    $flag --teams-file "$WORK/teams.csv" --out "$WORK/$kind.ndjson" 2>/dev/null
  printf '[store]\npath = "%s"\nretention_days = 3650\n[teams]\nfile = "%s"\n' "$WORK/$kind-store" "$WORK/teams.csv" > "$WORK/$kind.toml"
done
t() { /usr/bin/time -v -o "$WORK/$1.time" "${@:2}" > "$WORK/$1.out" 2>"$WORK/$1.err"; }
for kind in builds delivery; do
  c="$WORK/$kind.toml"
  t "$kind-ingest" "$BIN" --config "$c" ingest --no-progress --input "$WORK/$kind.ndjson"
  t "$kind-metrics-cold" "$BIN" --config "$c" metrics --at "$END"
  t "$kind-metrics-warm" "$BIN" --config "$c" metrics --at "$END"
  t "$kind-report" "$BIN" --config "$c" report weekly --week 2026-W48 --format json --out "$WORK/$kind-report"
done
python3 - "$WORK" <<'PY'
import json, re, sys
work = sys.argv[1]
def measure(name):
    text = open(f"{work}/{name}.time").read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    return seconds, rss
out = {}
for kind in ("builds", "delivery"):
    summary = json.loads(open(f"{work}/{kind}-ingest.out").read().strip().splitlines()[-1])
    out[kind] = {"accepted_by_kind": summary["accepted_by_kind"]}
for step in ("ingest", "metrics-cold", "metrics-warm", "report"):
    (b, bm), (d, dm) = measure(f"builds-{step}"), measure(f"delivery-{step}")
    out[step] = {"builds_only_s": round(b, 2), "with_delivery_s": round(d, 2), "time_ratio": round(d / b, 2),
                 "builds_only_mb": round(bm), "with_delivery_mb": round(dm), "memory_ratio": round(dm / bm, 2)}
series = sum(1 for l in open(f"{work}/delivery-metrics-warm.out") if l.startswith("buildcost_product_") or "orphan" in l or "lead_time" in l)
out["delivery_series"] = series
print(json.dumps(out, indent=1))
PY
