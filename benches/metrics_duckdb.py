#!/usr/bin/env python3
"""The business gauges of `buildcost metrics --at`, computed by DuckDB from the same Parquet
store: the reference that `benches/figures.sh` times buildcost against.

The heavy work is DuckDB SQL over every stored row: the first stored copy of each event id,
the price of each build with the runner class's and the default's fall-backs, the waste class
(the history-wide `duplicate` included: a success whose (repository, pipeline, commit) had an
earlier success, over the whole store), and the sums by team, product, status and waste class
of each window, each team's product votes and distinct authors. Python then does what is left
on a few thousand rows: team sizes from the teams file, the small-team merge (spec section 4)
and the peer baselines (section 7).

    metrics_duckdb.py full  CONFIG STORE AT OUT.prom   # every gauge of spec section 8
    metrics_duckdb.py cost  CONFIG STORE AT OUT.prom   # buildcost_team_cost_euros alone

Prints one JSON line: {"seconds": <DuckDB's query time>, "series": N}. `full` writes the
series in the Prometheus text format, so they can be compared to buildcost's (`compare`):

    metrics_duckdb.py compare A.prom B.prom    # exit 1 unless every series matches to 1e-6
"""

import csv
import json
import math
import os
import re
import statistics
import sys
import time
import tomllib

import duckdb

WASTE = ["superseded", "avoidable_failure", "flaky", "infra_failure", "timeout", "cancelled", "duplicate"]
STATUSES = ["success", "failure", "cancelled", "timeout", "error"]
PRICE_KEYS = ["cpu_cores", "memory_gb", "gpus", "eur_per_cpu_hour", "eur_per_gb_hour", "eur_per_gpu_hour", "eur_per_build"]
DEFAULT = {"cpu_cores": 2.0, "memory_gb": 4.0, "gpus": 0.0, "eur_per_cpu_hour": 0.04, "eur_per_gb_hour": 0.005,
           "eur_per_gpu_hour": 2.5, "eur_per_build": 0.0}


def load(config_path):
    with open(config_path, "rb") as f:
        config = tomllib.load(f)
    pricing = config.get("pricing", {})
    default = {**DEFAULT, **{k: float(v) for k, v in pricing.get("default", {}).items()}}
    classes = {name: {k: float(c.get(k, default[k])) for k in PRICE_KEYS}
               for name, c in pricing.get("runner_classes", {}).items()}
    teams = {}
    tf = config.get("teams", {}).get("file")
    if tf:
        path = tf if os.path.isabs(tf) else os.path.join(os.path.dirname(os.path.abspath(config_path)), tf)
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                teams[r["team"].strip().lower()] = (r["product"].strip().lower(), int(r["developers"]),
                                                    (r.get("peer_group") or "").strip().lower() or None)
    return config, default, classes, teams


def priced_builds(con, store, default, classes, at):
    """Creates the view `b`: distinct builds before `at`, priced and classified."""
    con.execute("CREATE TABLE prices (runner_class VARCHAR, " + ", ".join(f"{k} DOUBLE" for k in PRICE_KEYS) + ")")
    if classes:
        con.executemany("INSERT INTO prices VALUES (" + ", ".join("?" * (1 + len(PRICE_KEYS))) + ")",
                        [[name] + [c[k] for k in PRICE_KEYS] for name, c in classes.items()])
    d = {k: repr(float(v)) for k, v in default.items()}
    con.execute(f"""
        CREATE VIEW b AS
        WITH raw AS (
            SELECT * FROM read_parquet('{store}/date=*/*.parquet', union_by_name = true)
        ),
        firsts AS (
            SELECT * FROM raw
            QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingested_at, finished_at) = 1
        ),
        ranked AS (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY status = 'success', repository, pipeline, "commit"
                                         ORDER BY finished_at, event_id) AS success_rank
            FROM firsts WHERE finished_at < TIMESTAMPTZ '{at}'
        )
        SELECT r.team, r.product, r.author_key, r.finished_at, r.status,
               (r.duration_s / 3600.0)
                 * (COALESCE(r.cpu_cores, p.cpu_cores, {d['cpu_cores']}) * COALESCE(p.eur_per_cpu_hour, {d['eur_per_cpu_hour']})
                    + COALESCE(r.memory_gb, p.memory_gb, {d['memory_gb']}) * COALESCE(p.eur_per_gb_hour, {d['eur_per_gb_hour']})
                    + COALESCE(CAST(r.gpus AS DOUBLE), p.gpus, {d['gpus']}) * COALESCE(p.eur_per_gpu_hour, {d['eur_per_gpu_hour']}))
                 + COALESCE(p.eur_per_build, {d['eur_per_build']}) AS cost,
               CASE
                 WHEN r.status = 'cancelled' AND r.superseded THEN 'superseded'
                 WHEN r.status = 'failure' AND r.failure_category IN ('syntax', 'compile', 'lint', 'format') THEN 'avoidable_failure'
                 WHEN r.status = 'failure' AND r.failure_category = 'flaky_test' THEN 'flaky'
                 WHEN r.status = 'error' OR (r.status = 'failure' AND r.failure_category = 'infra') THEN 'infra_failure'
                 WHEN r.status = 'timeout' THEN 'timeout'
                 WHEN r.status = 'cancelled' THEN 'cancelled'
                 WHEN r.status = 'success' AND r."commit" IS NOT NULL AND r.success_rank > 1 THEN 'duplicate'
                 ELSE 'none'
               END AS waste
        FROM ranked r LEFT JOIN prices p ON p.runner_class = r.runner_class
    """)


def full(config_path, store, at):
    config, default, classes, listed = load(config_path)
    min_size = config.get("privacy", {}).get("min_team_size", 5)
    baseline = config.get("baseline", {})
    window_days = baseline.get("window_days", 28)
    min_peers = baseline.get("min_peers", 5)
    k = float(baseline.get("k_sigma", 2.0))
    con = duckdb.connect()
    started = time.perf_counter()
    priced_builds(con, store, default, classes, at)
    con.execute(f"""
        CREATE TABLE w AS
        SELECT * FROM b WHERE finished_at >= TIMESTAMPTZ '{at}' - INTERVAL {max(28, window_days)} DAY
    """)
    sums = con.execute(f"""
        SELECT CASE WHEN finished_at >= TIMESTAMPTZ '{at}' - INTERVAL 7 DAY THEN '7d' ELSE '28d' END AS win,
               team, status, waste, COUNT(*), SUM(cost)
        FROM w WHERE finished_at >= TIMESTAMPTZ '{at}' - INTERVAL 28 DAY
        GROUP BY ALL
    """).fetchall()
    votes = con.execute(f"""
        SELECT team, product, COUNT(*) FROM w WHERE finished_at >= TIMESTAMPTZ '{at}' - INTERVAL 28 DAY GROUP BY ALL
    """).fetchall()
    authors = con.execute(f"""
        SELECT team, COUNT(DISTINCT author_key), SUM(cost) FROM w
        WHERE finished_at >= TIMESTAMPTZ '{at}' - INTERVAL {window_days} DAY GROUP BY team
    """).fetchall()
    seconds = time.perf_counter() - started

    # What is left, on a few thousand rows.
    product_votes = {}
    for team, product, n in votes:
        product_votes.setdefault(team, {})[product] = n
    distinct = {t: n for t, n, _ in authors}
    base_cost = {t: c for t, _, c in authors}
    info = {}
    for t, v in product_votes.items():
        main = sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        if t in listed:
            product, n, group = listed[t]
            info[t] = (product, n, group or product)
        else:
            info[t] = (main, distinct.get(t, 0), main)
    small = {}
    for product, n, _ in info.values():
        if n < min_size:
            small[product] = small.get(product, 0) + n

    def row(t):
        product, n, _ = info[t]
        if n >= min_size:
            return (t, product)
        return ("_small_teams", product if small[product] >= min_size else "_all")

    m = {}

    def put(name, labels, value):
        m[(name, frozenset(labels.items()))] = float(value)

    rows = {row(t) for t in info}
    acc = {}
    for win, team, status, waste, n, cost in sums:
        for w in (["7d", "28d"] if win == "7d" else ["28d"]):
            r = acc.setdefault((w, row(team)), {"cost": 0.0, "waste": {}, "status": {}})
            r["cost"] += cost
            r["waste"][waste] = r["waste"].get(waste, 0.0) + cost
            r["status"][status] = r["status"].get(status, 0) + n
    for w in ("7d", "28d"):
        org = {"cost": 0.0, "waste": {}, "builds": 0}
        for r in rows:
            a = acc.get((w, r), {"cost": 0.0, "waste": {}, "status": {}})
            lab = {"team": r[0], "product": r[1], "window": w}
            put("buildcost_team_cost_euros", lab, a["cost"])
            for x in WASTE:
                put("buildcost_team_waste_cost_euros", {**lab, "waste_class": x}, a["waste"].get(x, 0.0))
            for s in STATUSES:
                put("buildcost_team_builds", {**lab, "status": s}, a["status"].get(s, 0))
            org["cost"] += a["cost"]
            org["builds"] += sum(a["status"].values())
            for x, c in a["waste"].items():
                org["waste"][x] = org["waste"].get(x, 0.0) + c
        put("buildcost_org_cost_euros", {"window": w}, org["cost"])
        put("buildcost_org_builds", {"window": w}, org["builds"])
        for x in WASTE:
            put("buildcost_org_waste_cost_euros", {"window": w, "waste_class": x}, org["waste"].get(x, 0.0))
        total = org["cost"]
        put("buildcost_northstar_avoidable_waste_ratio", {"window": w},
            org["waste"].get("avoidable_failure", 0.0) / total if total > 0 else 0.0)
        put("buildcost_org_waste_ratio", {"window": w},
            sum(c for x, c in org["waste"].items() if x != "none") / total if total > 0 else 0.0)
        if w == "28d":
            builds_28 = org["builds"]
    org_devs = sum(n for _, n, _ in info.values())
    put("buildcost_org_developers", {}, org_devs)
    if org_devs > 0:
        put("buildcost_builds_per_developer_per_day", {"window": "28d"}, builds_28 / org_devs / 28)
    for t, (product, n, _) in info.items():
        if n >= min_size:
            put("buildcost_team_developers", {"team": t, "product": product}, n)
    eligible = [t for t in info if info[t][1] >= min_size and base_cost.get(t, 0.0) > 0]
    y = {t: math.log(base_cost[t] / info[t][1]) for t in eligible}
    groups = {}
    for t in eligible:
        groups.setdefault(info[t][2], []).append(t)
    for t in eligible:
        product, n, g = info[t]
        members = groups[g] if len(groups[g]) >= min_peers else eligible
        label = g if len(groups[g]) >= min_peers else "_org"
        ys = [y[x] for x in members]
        med = statistics.median(ys)
        s = max(1.4826 * statistics.median([abs(v - med) for v in ys]), 0.05)
        z = (y[t] - med) / s
        lab = {"team": t, "product": product}
        put("buildcost_team_cost_per_developer_euros", lab, base_cost[t] / n)
        for bound, e in (("expected", 0.0), ("lower", -k * s), ("upper", k * s)):
            put("buildcost_team_expected_cost_euros", {**lab, "bound": bound}, n * math.exp(med + e))
        put("buildcost_team_deviation_zscore", {**lab, "peer_group": label}, z)
        put("buildcost_team_baseline_status", lab, 1 if z > k else (-1 if z < -k else 0))
    return m, seconds


def cost_alone(config_path, store, at):
    """buildcost_team_cost_euros{window=7d|28d} per team, nothing else: distinct builds of the
    28 days, priced (no waste classes, no sizes, no merge)."""
    config, default, classes, _ = load(config_path)
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute("CREATE TABLE prices (runner_class VARCHAR, " + ", ".join(f"{k} DOUBLE" for k in PRICE_KEYS) + ")")
    if classes:
        con.executemany("INSERT INTO prices VALUES (" + ", ".join("?" * (1 + len(PRICE_KEYS))) + ")",
                        [[name] + [c[k] for k in PRICE_KEYS] for name, c in classes.items()])
    d = {k: repr(float(v)) for k, v in default.items()}
    rows = con.execute(f"""
        WITH raw AS (
            SELECT * FROM read_parquet('{store}/date=*/*.parquet', union_by_name = true)
            WHERE finished_at >= TIMESTAMPTZ '{at}' - INTERVAL 28 DAY AND finished_at < TIMESTAMPTZ '{at}'
        ),
        firsts AS (
            SELECT * FROM raw
            QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingested_at, finished_at) = 1
        ),
        priced AS (
            SELECT r.team, r.finished_at,
                   (r.duration_s / 3600.0)
                     * (COALESCE(r.cpu_cores, p.cpu_cores, {d['cpu_cores']}) * COALESCE(p.eur_per_cpu_hour, {d['eur_per_cpu_hour']})
                        + COALESCE(r.memory_gb, p.memory_gb, {d['memory_gb']}) * COALESCE(p.eur_per_gb_hour, {d['eur_per_gb_hour']})
                        + COALESCE(CAST(r.gpus AS DOUBLE), p.gpus, {d['gpus']}) * COALESCE(p.eur_per_gpu_hour, {d['eur_per_gpu_hour']}))
                     + COALESCE(p.eur_per_build, {d['eur_per_build']}) AS cost
            FROM firsts r LEFT JOIN prices p ON p.runner_class = r.runner_class
        )
        SELECT team,
               SUM(cost) FILTER (WHERE finished_at >= TIMESTAMPTZ '{at}' - INTERVAL 7 DAY),
               SUM(cost)
        FROM priced GROUP BY team
    """).fetchall()
    seconds = time.perf_counter() - started
    m = {}
    for team, c7, c28 in rows:
        m[("team_cost", frozenset({"team": team, "window": "7d"}.items()))] = c7 or 0.0
        m[("team_cost", frozenset({"team": team, "window": "28d"}.items()))] = c28 or 0.0
    return m, seconds


def escape(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_prometheus(m, path):
    with open(path, "w") as f:
        for (name, labels), value in sorted(m.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1]))):
            lab = ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels))
            f.write(f"{name}{{{lab}}} {value!r}\n" if lab else f"{name} {value!r}\n")


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(path):
    out = {}
    for line in open(path):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        mt = LINE.match(line)
        if mt:
            out[(mt.group(1), frozenset(LABEL.findall(mt.group(3) or "")))] = float(mt.group(4))
    return out


def compare(a, b):
    x, y = parse(a), parse(b)
    problems = [f"only in {a}: {k[0]}{dict(k[1])}" for k in set(x) - set(y)]
    problems += [f"only in {b}: {k[0]}{dict(k[1])}" for k in set(y) - set(x)]
    problems += [f"differs {k[0]}{dict(k[1])}: {x[k]!r} vs {y[k]!r}" for k in set(x) & set(y)
                 if not math.isclose(x[k], y[k], rel_tol=1e-6, abs_tol=1e-9)]
    print(json.dumps({"series": len(x), "problems": len(problems)}))
    for p in problems[:20]:
        print(p)
    return 1 if problems else 0


def main():
    what = sys.argv[1]
    if what == "compare":
        return compare(sys.argv[2], sys.argv[3])
    config, store, at, out = sys.argv[2:6]
    m, seconds = (full if what == "full" else cost_alone)(config, store, at)
    write_prometheus(m, out)
    print(json.dumps({"seconds": seconds, "series": len(m)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
