"""DuckDB's side of the macro benchmark's week-by-team query (benches/pipeline.sh).

The same figure as `buildcost query "SELECT team, date_trunc('week', finished_at), SUM(cost_eur)
FROM builds GROUP BY 1, 2"`, in DuckDB SQL over the same Parquet files: one row per event_id
(its first stored copy), priced from the configuration's [pricing] (spec section 5).

Usage: week_by_team_duckdb.py CONFIG.toml STORE OUT.csv   (prints {"seconds": …} of the query)
"""

import json
import sys
import time
import tomllib

import duckdb

KEYS = ["cpu_cores", "memory_gb", "gpus", "eur_per_cpu_hour", "eur_per_gb_hour", "eur_per_gpu_hour", "eur_per_build"]
DEFAULTS = {"cpu_cores": 2.0, "memory_gb": 4.0, "gpus": 0.0, "eur_per_cpu_hour": 0.04,
            "eur_per_gb_hour": 0.005, "eur_per_gpu_hour": 2.5, "eur_per_build": 0.0}


def main() -> None:
    config_path, store, out = sys.argv[1:4]
    with open(config_path, "rb") as f:
        pricing = tomllib.load(f).get("pricing", {})
    default = {k: float(pricing.get("default", {}).get(k, DEFAULTS[k])) for k in KEYS}
    classes = {name: {k: float(c.get(k, default[k])) for k in KEYS}
               for name, c in pricing.get("runner_classes", {}).items()}
    values = ", ".join(
        "(" + ", ".join([f"'{name}'"] + [repr(p[k]) for k in KEYS]) + ")" for name, p in classes.items()
    ) or "(NULL" + ", NULL" * len(KEYS) + ")"
    d = default
    sql = f"""
    WITH prices(runner_class, {', '.join(KEYS)}) AS (VALUES {values}),
    distinct_builds AS (
        SELECT * FROM read_parquet('{store}/date=*/*.parquet')
        QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingested_at, finished_at) = 1
    )
    SELECT b.team,
           date_trunc('week', b.finished_at) AS week,
           SUM((b.duration_s / 3600.0)
               * (COALESCE(b.cpu_cores, p.cpu_cores, {d['cpu_cores']!r}) * COALESCE(p.eur_per_cpu_hour, {d['eur_per_cpu_hour']!r})
                  + COALESCE(b.memory_gb, p.memory_gb, {d['memory_gb']!r}) * COALESCE(p.eur_per_gb_hour, {d['eur_per_gb_hour']!r})
                  + COALESCE(CAST(b.gpus AS DOUBLE), p.gpus, {d['gpus']!r}) * COALESCE(p.eur_per_gpu_hour, {d['eur_per_gpu_hour']!r}))
               + COALESCE(p.eur_per_build, {d['eur_per_build']!r})) AS eur
    FROM distinct_builds b
    LEFT JOIN prices p ON p.runner_class = b.runner_class
    GROUP BY 1, 2
    ORDER BY 1, 2
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    started = time.perf_counter()
    rows = con.execute(sql).fetchall()
    seconds = time.perf_counter() - started
    with open(out, "w") as f:
        f.write("team,week,eur\n")
        for team, week, eur in rows:
            f.write(f"{team},{week.strftime('%Y-%m-%dT%H:%M:%S')},{eur!r}\n")
    print(json.dumps({"seconds": round(seconds, 3), "rows": len(rows)}))


if __name__ == "__main__":
    main()
