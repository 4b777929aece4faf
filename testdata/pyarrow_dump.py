"""Dump what pyarrow reads from Parquet files, as canonical JSON, for the
reader's corpus test to compare lockstep's values against.

usage: pyarrow_dump.py ROOT < relative paths, one a line
writes one JSON line per path: {"file", "rows", "columns": {name: [values]}}
or {"file", "error"} where pyarrow cannot read it.

Canonical values (the Go side, pipeline/reader/canon_test.go, matches them):
ints and bools as is; floats as numbers, "NaN", "Inf", "-Inf"; strings as
is; binary as hex; timestamps, dates and times as the integer in their own
unit (INT96 read as microseconds); decimals as the unscaled integer string;
structs as objects; lists as arrays; maps as arrays of [key, value].
"""
import decimal
import json
import math
import sys

import pyarrow as pa
import pyarrow.parquet as pq

MAX_ROWS = 200_000


def canon(arr):
    t = arr.type
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(t):
        return canon(arr.dictionary_decode())
    if pa.types.is_struct(t):
        kids = [canon(arr.field(i)) for i in range(t.num_fields)]
        names = [t.field(i).name for i in range(t.num_fields)]
        return [
            None if not arr[i].is_valid else {n: k[i] for n, k in zip(names, kids)}
            for i in range(len(arr))
        ]
    if pa.types.is_map(t):
        offs = arr.offsets.to_pylist()
        keys, items = canon(arr.keys), canon(arr.items)
        return [
            None if not arr[i].is_valid else [[keys[j], items[j]] for j in range(offs[i], offs[i + 1])]
            for i in range(len(arr))
        ]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        offs = arr.offsets.to_pylist()
        vals = canon(arr.values)
        return [None if not arr[i].is_valid else vals[offs[i]:offs[i + 1]] for i in range(len(arr))]
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_duration(t):
        width = pa.int32() if t.bit_width == 32 else pa.int64()
        return arr.view(width).to_pylist()
    if pa.types.is_decimal(t):
        return [None if v is None else str(int(v.scaleb(t.scale))) for v in arr.to_pylist()]
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return [None if v is None else v.hex() for v in arr.to_pylist()]
    if pa.types.is_floating(t):
        return [fnum(v) for v in arr.to_pylist()]
    return arr.to_pylist()


def fnum(v):
    if v is None:
        return None
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return v


def dump(root, rel):
    try:
        meta = pq.ParquetFile(f"{root}/{rel}").metadata
        if meta.num_rows > MAX_ROWS:
            return {"file": rel, "error": f"skipped: {meta.num_rows} rows"}
        table = pq.read_table(f"{root}/{rel}", coerce_int96_timestamp_unit="us")
        cols = {name: canon(table.column(name)) for name in table.column_names}
        return {"file": rel, "rows": table.num_rows, "columns": cols}
    except Exception as e:  # pyarrow refuses: nothing to compare against
        return {"file": rel, "error": str(e)[:200]}


def main(root):
    for line in sys.stdin:
        rel = line.strip()
        if rel:
            print(json.dumps(dump(root, rel), default=str), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
