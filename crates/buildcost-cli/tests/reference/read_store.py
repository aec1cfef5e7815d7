#!/usr/bin/env python3
"""Reads a buildcost store with DuckDB, an independent Parquet reader, and checks that every
accepted build is there exactly once, that the deployments and requests tables read too, and
that no raw identity (nor a request's title or reporter) is in any file.

    read_store.py STORE_DIR EVENTS.ndjson EXPECTED_ROWS

Prints one JSON line of figures; exit status 1 on any problem.
"""
import json
import sys

import duckdb


def main():
    store, events, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    authors = set()
    with open(events, "rb") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and isinstance(e.get("author"), str):
                authors.add(e["author"].strip().lower())
    con = duckdb.connect()
    rows, distinct = con.execute(
        f"SELECT COUNT(*), COUNT(DISTINCT event_id) FROM read_parquet('{store}/date=*/*.parquet')"
    ).fetchone()
    columns = [c[0] for c in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{store}/date=*/*.parquet')").fetchall()]
    dump = con.execute(f"SELECT * FROM read_parquet('{store}/date=*/*.parquet')").fetchall()
    flat = "\n".join(repr(r).lower() for r in dump)
    leaked = sorted(a for a in authors if a in flat)
    problems_early = []
    problems = []
    import glob
    import os
    kinds = {}
    for table in ("deployments", "requests"):
        pattern = f"{store}/{table}/date=*/*.parquet"
        if not glob.glob(pattern):
            continue
        kinds[table] = con.execute(f"SELECT COUNT(DISTINCT event_id) FROM read_parquet('{pattern}')").fetchone()[0]
        cols = [c[0] for c in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{pattern}')").fetchall()]
        for forbidden in ("author", "title", "reporter", "description"):
            if forbidden in cols:
                problems_early.append(f"column `{forbidden}` is stored in {table}")
        rows_text = "\n".join(repr(r).lower() for r in con.execute(f"SELECT * FROM read_parquet('{pattern}')").fetchall())
        leaked += sorted(a for a in authors if a in rows_text)
    if rows != expected or distinct != expected:
        problems.append(f"expected {expected} rows, found {rows} rows with {distinct} distinct event ids")
    for forbidden in ("author", "log_excerpt"):
        if forbidden in columns:
            problems.append(f"column `{forbidden}` is stored")
    if leaked:
        problems.append(f"{len(leaked)} raw authors found in the Parquet files")
    print(json.dumps({"rows": rows, "distinct_event_ids": distinct, "authors_checked": len(authors), "leaked": len(leaked), **kinds}))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
