"""Independent check of an `arrow` asset: pyarrow reads it, and its rows must
equal what Spark read back (places.expected.jsonl).

usage: check_arrow.py FILE.arrow EXPECTED.jsonl
"""
import datetime
import json
import sys

import pyarrow as pa

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def norm(row):
    u = row.get("updated")
    if u is not None:
        row["updated"] = (u - EPOCH) // datetime.timedelta(microseconds=1)
    return row


def main(path, expected):
    table = pa.ipc.open_file(path).read_all()
    got = sorted((norm(r) for r in table.to_pylist()), key=lambda r: r["id"])
    with open(expected, encoding="utf-8") as f:
        want = [json.loads(line) for line in f]
    if len(got) != len(want):
        sys.exit(f"pyarrow read {len(got)} rows, Spark has {len(want)}")
    for g, w in zip(got, want):
        if g != w:
            sys.exit(f"row differs:\n got  {g}\n want {w}")
    print(f"pyarrow: {len(got)} rows equal Spark's")


if __name__ == "__main__":
    main(*sys.argv[1:])
