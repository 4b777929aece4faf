"""Writes the Spark output that the input acceptance tests (pipeline/spark_inputs_test.go) read,
and dumps what Spark itself reads back from each.

OUTDIR/inputs/<case>/           Spark output (or a Delta table) for each case in CASES
OUTDIR/inputs/<case>.jsonl      spark.read of that output, collect()ed: one JSON object per row,
                                sorted by `id`

usage: gen_inputs.py --golden FILE    (needs $LOCKSTEP_FIXTURES and delta-spark's jars)
  for every Delta table under $LOCKSTEP_FIXTURES/delta-golden, one line in FILE:
  {"table": rel, "files": [...], "count": n} as delta-spark reads it, or
  {"table": rel, "error": "..."} when it cannot. The corpus is pinned and read-only, and
  reading its 108 tables takes delta-spark about 12 minutes on two cores, so the answer is
  committed as testdata/delta_golden.jsonl and `make test` does not regenerate it; rerun this
  when the corpus or DELTA_SPARK_VERSION changes.

The JSON encoding of a value (the Go test encodes Arrow values the same way):
  null -> null; bool, ints, floats -> JSON numbers; string -> string
  timestamp (and timestamp_ntz) -> integer microseconds since 1970-01-01 00:00 UTC
  date -> "YYYY-MM-DD"; decimal -> string with exactly `scale` digits after the point
  binary -> base64; struct -> object; array -> list
  map -> list of [key, value] pairs sorted by the JSON text of the key
"""
import base64
import datetime
import decimal
import json
import os
import shutil
import sys
import time

from pyspark.sql import Row
from pyspark.sql import functions as F

EPOCH = datetime.datetime(1970, 1, 1)


def enc(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return (v - EPOCH) // datetime.timedelta(microseconds=1)
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, Row):
        return {k: enc(x) for k, x in v.asDict().items()}
    if isinstance(v, dict):
        pairs = [[enc(k), enc(x)] for k, x in v.items()]
        return sorted(pairs, key=lambda p: json.dumps(p[0], sort_keys=True))
    if isinstance(v, (list, tuple)):
        return [enc(x) for x in v]
    raise TypeError(f"no JSON encoding for {type(v)}")


def dump(df, path):
    # Timestamps leave Spark as microseconds: Python's datetime cannot hold year 1 in every zone.
    df = df.select([F.unix_micros(F.col(f.name).cast("timestamp")).alias(f.name)
                    if f.dataType.typeName() in ("timestamp", "timestamp_ntz") else F.col(f.name)
                    for f in df.schema.fields])
    # Decimals keep exactly their column's scale (Spark may hand back 1.00E-10 for 0.0000000001).
    scales = {f.name: f.dataType.scale for f in df.schema.fields if f.dataType.typeName() == "decimal"}

    def value(k, v):
        if k in scales and v is not None:
            v = v.quantize(decimal.Decimal(1).scaleb(-scales[k]), context=decimal.Context(prec=80))
        return enc(v)
    rows = sorted(df.collect(), key=lambda r: r["id"])
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: value(k, v) for k, v in r.asDict().items()}, ensure_ascii=False) + "\n")
    return len(rows)


def with_conf(spark, conf, fn):
    old = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        return fn()
    finally:
        for k, v in old.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def write_partitioned(spark, out):
    # Partition values Spark must escape, a null one, and a partition with no rows.
    ps = ["a/b", "x=y", "with space", "ünïcødé", "50%", "#?:", None]
    rows = [(i, f"row {i}", ps[i % len(ps)], None if i % 5 == 0 else i % 3) for i in range(70)]
    df = spark.createDataFrame(rows, "id long, name string, p string, q int")
    df = df.repartition(2, "id")
    df.write.mode("overwrite").partitionBy("p", "q").parquet(out)


def write_timestamps(spark, out, ts_type):
    # Built from text in Spark: Python's datetime cannot hold Spark's whole range.
    ts = ["2024-02-29 13:14:15.123456", "1969-12-31 23:59:59.999999", "0001-01-01 00:00:00",
          "9999-12-31 23:59:59.999999", "1582-10-10 01:02:03", None]
    df = spark.createDataFrame(list(enumerate(ts)), "id long, t string").select(
        "id", F.col("t").cast("timestamp").alias("ts"), F.col("t").cast("date").alias("d"),
        F.col("t").cast("timestamp_ntz").alias("ntz"))
    conf = {"spark.sql.parquet.outputTimestampType": ts_type,
            "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
            "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED"}
    with_conf(spark, conf, lambda: df.coalesce(1).write.mode("overwrite").parquet(out))


def write_decimals(spark, out):
    D = decimal.Decimal
    rows = [(0, D("123.45"), D("12345678901234.5678"), D("1234567890123456789012345678.0123456789")),
            (1, D("-999.99"), D("-99999999999999.9999"), D("-9999999999999999999999999999.9999999999")),
            (2, D("0.01"), D("0.0001"), D("0.0000000001")),
            (3, None, None, None),
            (4, D("0.00"), D("1.5000"), D("42.0000000000"))]
    df = spark.createDataFrame(rows, "id long, d5 decimal(5,2), d18 decimal(18,4), d38 decimal(38,10)")
    df.coalesce(1).write.mode("overwrite").parquet(out)


def write_nested(spark, out):
    schema = ("id long, s struct<a:int, b:string, c:struct<d:double, e:array<string>>>, "
              "ints array<int>, structs array<struct<k:string, v:long>>, "
              "m map<string,int>, mm map<int,array<string>>, bin binary, nested array<array<int>>")
    rows = [
        (0, (1, "x", (0.5, ["p", None])), [1, None, 3], [("a", 1), None, ("b", None)],
         {"one": 1, "two": None}, {7: ["s", "t"], 8: None}, bytearray(b"\x00\xffbin"), [[1], [], None]),
        (1, None, None, None, None, None, None, None),
        (2, (None, None, None), [], [], {}, {}, bytearray(b""), []),
        (3, (2, "ü", (None, [])), [2147483647], [(None, -1)], {"z": -5}, {-1: []}, bytearray(b"z"), [[None]]),
    ]
    spark.createDataFrame(rows, schema).coalesce(1).write.mode("overwrite").parquet(out)


def write_rollover(spark, out):
    df = spark.range(0, 1000, numPartitions=1).select(F.col("id"), (F.col("id") * 3).cast("string").alias("v"))
    df.write.mode("overwrite").option("maxRecordsPerFile", 300).parquet(out)


def write_empty(spark, out):
    spark.createDataFrame([], "id long, v string").write.mode("overwrite").parquet(out)


def write_temporary(spark, out):
    spark.createDataFrame([(i, f"kept {i}") for i in range(10)], "id long, v string") \
        .coalesce(1).write.mode("overwrite").parquet(out)
    # A failed attempt's leftovers beside the committed output: Spark never reads them.
    stray = os.path.join(out + ".stray")
    spark.createDataFrame([(100 + i, "stray") for i in range(5)], "id long, v string") \
        .coalesce(1).write.mode("overwrite").parquet(stray)
    part = next(f for f in sorted(os.listdir(stray)) if f.endswith(".parquet"))
    tmp = os.path.join(out, "_temporary", "0", "_temporary", "attempt_202401010000_0001_m_000000_1")
    os.makedirs(tmp)
    shutil.copy(os.path.join(stray, part), os.path.join(tmp, part))
    shutil.copy(os.path.join(stray, part), os.path.join(out, "_temporary", "0", part))
    shutil.rmtree(stray)


def write_partition_in_file(spark, out):
    # A job that selects the partition column and also writes it into hive
    # folders: the files hold `country` too, and for some rows it disagrees
    # with the folder. Spark's rule is that the folder's value wins.
    for k, country in enumerate(["de", "fr"]):
        rows = [(100 * k + i, f"row {i}", country if i % 4 else "xx") for i in range(10)]
        spark.createDataFrame(rows, "id long, name string, country string").coalesce(1) \
            .write.mode("overwrite").parquet(os.path.join(out, f"country={country}"))
    open(os.path.join(out, "_SUCCESS"), "w").close()


def write_nullable_union(spark, out):
    # One file has `name` required (Spark writes a non-nullable field as
    # REQUIRED), another lacks it: the union must make `name` nullable.
    from pyspark.sql.types import LongType, StringType, StructField, StructType
    required = StructType([StructField("id", LongType(), False), StructField("name", StringType(), False)])
    spark.createDataFrame([(1, "a"), (2, "b")], required).coalesce(1).write.mode("overwrite").parquet(out)
    spark.createDataFrame([(3,)], "id long").coalesce(1).write.mode("append").parquet(out)


def write_streaming(spark, out):
    # A Structured Streaming file sink: Spark reads only what _spark_metadata/ lists.
    src = out + ".src"
    spark.createDataFrame([(i, f"s{i}") for i in range(5)], "id long, v string") \
        .coalesce(1).write.mode("overwrite").parquet(src)
    shutil.rmtree(out + ".ckpt", ignore_errors=True)
    q = (spark.readStream.schema("id long, v string").parquet(src).writeStream.format("parquet")
         .option("checkpointLocation", out + ".ckpt").trigger(once=True).start(out))
    q.awaitTermination()


def write_delta(spark, out):
    from delta.tables import DeltaTable
    conf = {"spark.databricks.delta.properties.defaults.checkpointInterval": "2",
            "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false"}

    def run():
        ps = ["a b", "c/d", None]
        df = spark.createDataFrame([(i, f"v{i}", ps[i % 3]) for i in range(40)], "id long, v string, p string")
        df.coalesce(1).write.format("delta").partitionBy("p").save(out)  # v0
        t = DeltaTable.forPath(spark, out)
        t.update(F.col("id") % 4 == 0, {"v": F.lit("updated")})  # v1
        t.delete(F.col("id") % 7 == 0)  # v2, and a checkpoint
    with_conf(spark, conf, run)
    assert os.path.exists(os.path.join(out, "_delta_log", "00000000000000000002.checkpoint.parquet")), \
        "no checkpoint at version 2"


def write_delta_dv(spark, out, partitioned):
    # Deletion vectors, as Databricks enables them for new tables: a DELETE
    # marks rows in a DV file instead of rewriting the part file. A second
    # DELETE after the checkpoint replaces a file's DV with a larger one.
    conf = {"spark.databricks.delta.properties.defaults.checkpointInterval": "2"}

    def run():
        from delta.tables import DeltaTable
        df = spark.createDataFrame([(i, f"v{i}", ["eu", "us"][i % 2]) for i in range(60)],
                                   "id long, v string, region string")
        w = df.coalesce(1).write.format("delta").option("delta.enableDeletionVectors", "true")
        (w.partitionBy("region") if partitioned else w).save(out)  # v0
        t = DeltaTable.forPath(spark, out)
        t.delete(F.col("id") % 5 == 0)  # v1: DVs
        t.delete(F.col("id") % 7 == 0)  # v2: larger DVs replace them, and a checkpoint
        t.delete(F.col("id") == 11)  # v3: after the checkpoint
    with_conf(spark, conf, run)
    assert any(f.endswith(".bin") for f in os.listdir(out)), "DELETE wrote no deletion vector file"


def write_delta_cm(spark, out, mode, dv=False):
    # Column mapping: files name columns by physical names (name mode) or
    # field ids (id mode), nested fields too; RENAME and DROP change only the log.
    props = {"delta.columnMapping.mode": mode, "delta.minReaderVersion": "2", "delta.minWriterVersion": "5"}
    if dv:
        props["delta.enableDeletionVectors"] = "true"
    schema = ("id long, name string, score double, st struct<x:int, y:string>, "
              "arr array<struct<f:int>>, m map<string, struct<g:string>>, part string")
    rows = [(i, f"n{i}", i * 1.5, (i, f"s{i}"), [(i,), None] if i % 3 else None, {f"k{i}": (f"g{i}",)},
             ["a", "b"][i % 2]) for i in range(30)]
    w = spark.createDataFrame(rows, schema).coalesce(1).write.format("delta")
    for k, v in props.items():
        w = w.option(k, v)
    w.partitionBy("part").save(out)  # v0
    for old, new in [("name", "label"), ("st.y", "why"), ("arr.element.f", "ff"), ("m.value.g", "gg"),
                     ("part", "segment")]:
        spark.sql(f"ALTER TABLE delta.`{out}` RENAME COLUMN {old} TO {new}")
    spark.sql(f"ALTER TABLE delta.`{out}` DROP COLUMN score")
    spark.sql(f"ALTER TABLE delta.`{out}` ADD COLUMNS (score string)")  # reuses the dropped name
    spark.createDataFrame([(100 + i, f"late{i}", (i, "w"), [(i,)], {}, "b", f"new{i}") for i in range(5)],
                          "id long, label string, st struct<x:int, why:string>, arr array<struct<ff:int>>, "
                          "m map<string, struct<gg:string>>, segment string, score string") \
        .coalesce(1).write.format("delta").mode("append").save(out)
    # Columns added after the last write: in no file, null in every row.
    spark.sql(f"ALTER TABLE delta.`{out}` ADD COLUMNS (note string, tags array<string>)")
    if dv:
        from delta.tables import DeltaTable
        DeltaTable.forPath(spark, out).delete(F.col("id") % 4 == 1)

CASES = {
    "partitioned": write_partitioned,
    "ts_int96": lambda s, o: write_timestamps(s, o, "INT96"),
    "ts_micros": lambda s, o: write_timestamps(s, o, "TIMESTAMP_MICROS"),
    "decimals": write_decimals,
    "nested": write_nested,
    "rollover": write_rollover,
    "empty": write_empty,
    "temporary": write_temporary,
    "partition_in_file": write_partition_in_file,
    "nullable_union": write_nullable_union,
    "streaming": write_streaming,
    "delta": write_delta,
    "delta_dv": lambda s, o: write_delta_dv(s, o, False),
    "delta_dv_part": lambda s, o: write_delta_dv(s, o, True),
    "delta_cm_name": lambda s, o: write_delta_cm(s, o, "name"),
    "delta_cm_id": lambda s, o: write_delta_cm(s, o, "id"),
    "delta_cm_dv": lambda s, o: write_delta_cm(s, o, "name", dv=True),
}

# How Spark must read a case back (the default reads one file's schema).
READ_OPTIONS = {"nullable_union": {"mergeSchema": "true"}}


def delta_enabled():
    return "delta-spark" in os.environ.get("LOCKSTEP_SPARK_JARS", "")


def dump_golden(spark, path):
    root = os.environ.get("LOCKSTEP_FIXTURES", "")
    if not root:
        sys.exit("gen_inputs: LOCKSTEP_FIXTURES is unset: set it to the fixture corpus")
    golden = os.path.join(root, "delta-golden")
    tables = []
    for dirpath, dirs, _ in os.walk(golden):
        if "_delta_log" in dirs:
            tables.append(dirpath)
            dirs[:] = []
    with open(path, "w", encoding="utf-8") as f:
        for t in sorted(tables):
            rec = {"table": os.path.relpath(t, root)}
            try:
                df = spark.read.format("delta").load(t)
                files = []
                for u in df.inputFiles():
                    p = u[len("file:"):] if u.startswith("file:") else u
                    p = "/" + p.lstrip("/")
                    files.append(os.path.relpath(p, t))
                rec["files"] = sorted(files)
                rec["count"] = df.count()
            except Exception as e:  # noqa: BLE001 - the refusal is the datum
                rec.pop("files", None)
                msg = str(getattr(e, "java_exception", None) or e).strip()
                rec["error"] = msg.splitlines()[0][:300]
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def write(spark, outdir):
    outdir = os.path.join(outdir, "inputs")
    os.makedirs(outdir, exist_ok=True)
    for name, fn in CASES.items():
        out = os.path.join(outdir, name)
        if name.startswith("delta") and not delta_enabled():
            print("gen_inputs: LOCKSTEP_SPARK_JARS has no delta-spark: no Delta table", file=sys.stderr)
            continue
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.time()
        fn(spark, out)
        delta = name.startswith("delta")
        reader = spark.read.format("delta") if delta else spark.read.options(**READ_OPTIONS.get(name, {}))
        dump(reader.load(out) if delta else reader.parquet(out), out + ".jsonl")
        print(f"gen_inputs: {name} {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    from session import sql_conf, session
    if not delta_enabled() and sys.argv[1] == "--golden":
        sys.exit("gen_inputs: LOCKSTEP_SPARK_JARS has no delta-spark: run `scripts/testenv install`")
    with session(sql_conf()) as s:
        if sys.argv[1] == "--golden":
            dump_golden(s, sys.argv[2])
        else:
            write(s, sys.argv[1])
