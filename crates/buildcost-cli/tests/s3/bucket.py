"""Reads (and pokes) a buildcost store straight from its S3 bucket with pyarrow, an engine
that is not buildcost's, to show the history is readable by others where it lies.

usage: bucket.py ENDPOINT ACCESS_KEY SECRET_KEY COMMAND ARGS...

  summary BUCKET/PREFIX AUTHORS_FILE  every Parquet file under date=*/ as one Hive-partitioned
                                      dataset: rows, distinct event ids, ids stored twice, days;
                                      and how many raw authors (one per line of AUTHORS_FILE)
                                      appear in any byte of any object under the prefix
  put BUCKET/KEY TEXT                 writes an object (a damaged file, for the quarantine)
  ls BUCKET/PREFIX                    the keys under the prefix, relative to it

Prints one JSON object.
"""

import json
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs


def filesystem(endpoint, access, secret):
    host = endpoint.split("://", 1)[1]
    return pafs.S3FileSystem(
        endpoint_override=host,
        scheme="http",
        access_key=access,
        secret_key=secret,
        region="us-east-1",
    )


def keys(fs, prefix):
    infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File)


def summary(fs, prefix, authors_file):
    prefix = prefix.rstrip("/")
    everything = keys(fs, prefix)
    data = [
        k for k in everything
        if k[len(prefix) + 1:].startswith("date=") and k.endswith(".parquet")
        and k[len(prefix) + 1:].count("/") == 1
    ]
    dataset = ds.dataset(
        data, filesystem=fs, format="parquet",
        partitioning=ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive"),
        partition_base_dir=prefix,
    )
    table = dataset.to_table()
    ids = table.column("event_id")
    counts = pc.value_counts(ids)
    twice = sum(1 for c in counts.field("counts").to_pylist() if c > 1)
    days = sorted(set(table.column("date").to_pylist()))
    authors = [a.strip().lower() for a in open(authors_file, encoding="utf-8") if a.strip()]
    # Every byte of every object (Parquet, rollups, ledger, dead letters), and every decoded
    # string value of the data files.
    text = []
    for k in everything:
        with fs.open_input_stream(k) as f:
            text.append(f.read().decode("utf-8", "replace"))
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            text.extend(v for v in column.to_pylist() if v)
    hay = "\n".join(text).lower()
    leaked = sum(1 for a in authors if a in hay)
    folders = {}
    for k in everything:
        top = k[len(prefix) + 1:].split("/", 1)[0]
        top = "date=*" if top.startswith("date=") else top
        folders[top] = folders.get(top, 0) + 1
    print(json.dumps({
        "rows": table.num_rows,
        "distinct_ids": len(counts),
        "ids_stored_twice": twice,
        "days": len(days),
        "first_day": days[0] if days else None,
        "data_files": len(data),
        "objects_by_folder": folders,
        "authors_checked": len(authors),
        "raw_authors_found": leaked,
    }))


def main():
    endpoint, access, secret, command = sys.argv[1:5]
    args = sys.argv[5:]
    fs = filesystem(endpoint, access, secret)
    if command == "summary":
        summary(fs, args[0], args[1])
    elif command == "put":
        with fs.open_output_stream(args[0]) as f:
            f.write(args[1].encode())
        print(json.dumps({"put": args[0]}))
    elif command == "ls":
        prefix = args[0].rstrip("/")
        print(json.dumps([k[len(prefix) + 1:] for k in keys(fs, prefix)]))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
