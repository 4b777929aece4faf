"""Writes the Iceberg tables the Iceberg input tests (pipeline/iceberg_spark_test.go) read,
and dumps what Spark itself reads back from each.

Tables are written by Spark with Iceberg's runtime in a Hadoop catalog (`ice`) whose warehouse
is OUTDIR/iceberg, so table CASE is the folder OUTDIR/iceberg/db/CASE:

OUTDIR/iceberg/db/<case>/         the table (metadata/, data/)
OUTDIR/iceberg/<case>.jsonl       spark.read of its current snapshot, collect()ed, sorted by id
                                  (encoded as gen_inputs.py encodes values)
OUTDIR/iceberg/<case>.snapshots.json
                                  {"<snapshot id>": "<what it is>"} for snapshots a test reads
                                  by id, each also dumped as <case>@<snapshot id>.jsonl

Equality deletes: Spark writes none (its DELETE, UPDATE and MERGE write positional deletes),
so the `eq_deletes` table gets one through Iceberg's own Java API (GenericFileWriterFactory's
equality delete writer and a RowDelta commit), driven from here over py4j.
"""
import json
import os
import shutil
import sys
import time

from pyspark.sql import functions as F

from gen_inputs import dump

CATALOG = "ice"


def iceberg_enabled():
    return "iceberg-spark-runtime" in os.environ.get("LOCKSTEP_SPARK_JARS", "")


def snapshots(spark, name):
    """The table's snapshot ids, oldest first."""
    rows = spark.sql(f"SELECT snapshot_id FROM {name}.snapshots ORDER BY committed_at").collect()
    return [r.snapshot_id for r in rows]


def create(spark, name, cols, props="", part=""):
    spark.sql(f"DROP TABLE IF EXISTS {name}")
    spark.sql(f"CREATE TABLE {name} ({cols}) USING iceberg {part} "
              f"TBLPROPERTIES ('format-version'='2'{props})")


def write_append(spark, name):
    create(spark, name, "id bigint, name string, score double, tags array<string>, "
                        "st struct<x: int, y: string>, m map<string, int>, ts timestamp, d date, "
                        "amount decimal(18, 4)")
    for start in (0, 40):
        df = spark.range(start, start + 40).select(
            F.col("id"), F.concat(F.lit("n"), F.col("id").cast("string")).alias("name"),
            (F.col("id") * 1.5).alias("score"),
            F.when(F.col("id") % 3 == 0, F.lit(None)).otherwise(F.array(F.lit("a"), F.col("id").cast("string"))).alias("tags"),
            F.struct((F.col("id") % 7).cast("int").alias("x"), F.lit("y").alias("y")).alias("st"),
            F.create_map(F.lit("k"), (F.col("id") % 5).cast("int")).alias("m"),
            F.timestamp_seconds(F.col("id") * 86400 + 3600).alias("ts"),
            F.date_add(F.lit("2026-01-01").cast("date"), F.col("id").cast("int")).alias("d"),
            (F.col("id") / 3).cast("decimal(18, 4)").alias("amount"))
        df.repartition(2).writeTo(name).append()
    return {}


def write_overwrite(spark, name):
    create(spark, name, "id bigint, v string, region string", part="PARTITIONED BY (region)")
    df = spark.createDataFrame([(i, f"v{i}", ["eu", "us", "ap"][i % 3]) for i in range(60)], "id bigint, v string, region string")
    df.writeTo(name).append()
    first = snapshots(spark, name)[-1]
    # Replaces the files of partition eu only (dynamic overwrite by the rows' partitions).
    spark.createDataFrame([(100 + i, f"new{i}", "eu") for i in range(5)], "id bigint, v string, region string") \
        .writeTo(name).overwritePartitions()
    return {str(first): "before the overwrite"}


def write_delete(spark, name):
    create(spark, name, "id bigint, v string, region string",
           props=", 'write.delete.mode'='merge-on-read'", part="PARTITIONED BY (region)")
    df = spark.createDataFrame([(i, f"v{i}", ["eu", "us"][i % 2]) for i in range(100)], "id bigint, v string, region string")
    df.repartition(2).writeTo(name).append()
    spark.sql(f"DELETE FROM {name} WHERE id % 5 = 0")
    before = snapshots(spark, name)[-1]
    spark.sql(f"DELETE FROM {name} WHERE id % 7 = 0")
    return {str(before): "after the first DELETE"}


def write_dv(spark, name):
    # Format v3: a merge-on-read DELETE writes deletion vectors (Puffin files), not position deletes.
    create(spark, name, "id bigint, v string", props=", 'write.delete.mode'='merge-on-read'")
    spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ('format-version'='3')")
    spark.createDataFrame([(i, f"v{i}") for i in range(60)], "id bigint, v string").repartition(2).writeTo(name).append()
    spark.sql(f"DELETE FROM {name} WHERE id % 6 = 0")
    spark.sql(f"DELETE FROM {name} WHERE id % 9 = 0")  # the vectors grow: new ones replace them
    return {}


def write_update(spark, name):
    create(spark, name, "id bigint, v string, n int",
           props=", 'write.update.mode'='merge-on-read', 'write.delete.mode'='merge-on-read'")
    spark.createDataFrame([(i, f"v{i}", i) for i in range(50)], "id bigint, v string, n int") \
        .coalesce(1).writeTo(name).append()
    spark.sql(f"UPDATE {name} SET v = 'updated', n = n * 10 WHERE id % 4 = 0")
    return {}


def write_schema(spark, name):
    create(spark, name, "id bigint, name string, score double, st struct<x: int, y: string>")
    spark.createDataFrame([(i, f"n{i}", i * 0.5, (i, f"y{i}")) for i in range(20)],
                          "id bigint, name string, score double, st struct<x: int, y: string>") \
        .coalesce(1).writeTo(name).append()
    spark.sql(f"ALTER TABLE {name} RENAME COLUMN name TO label")
    spark.sql(f"ALTER TABLE {name} RENAME COLUMN st.y TO why")
    spark.sql(f"ALTER TABLE {name} DROP COLUMN score")
    spark.sql(f"ALTER TABLE {name} ADD COLUMN score string")  # the dropped name again, a new field id
    spark.sql(f"ALTER TABLE {name} ADD COLUMN st.z bigint")
    spark.createDataFrame([(100 + i, f"late{i}", (i, "w", i * 1000), f"s{i}") for i in range(5)],
                          "id bigint, label string, st struct<x: int, why: string, z: bigint>, score string") \
        .coalesce(1).writeTo(name).append()
    spark.sql(f"ALTER TABLE {name} ADD COLUMN note string")  # in no file: null in every row
    return {}


def write_promote(spark, name):
    create(spark, name, "id bigint, i int, f float, dec decimal(9, 2)")
    spark.createDataFrame([(k, k * 1000, k + 0.25, k * 3) for k in range(20)], "id bigint, i int, f float, dec int") \
        .selectExpr("id", "i", "f", "cast(dec as decimal(9, 2)) as dec").coalesce(1).writeTo(name).append()
    spark.sql(f"ALTER TABLE {name} ALTER COLUMN i TYPE bigint")
    spark.sql(f"ALTER TABLE {name} ALTER COLUMN f TYPE double")
    spark.sql(f"ALTER TABLE {name} ALTER COLUMN dec TYPE decimal(18, 2)")
    spark.createDataFrame([(100 + k, 5_000_000_000 + k, k + 0.1, k) for k in range(5)], "id bigint, i bigint, f double, dec int") \
        .selectExpr("id", "i", "f", "cast(dec as decimal(18, 2)) as dec").coalesce(1).writeTo(name).append()
    return {}


def write_partition_evolution(spark, name):
    create(spark, name, "id bigint, region string, ts timestamp", part="PARTITIONED BY (region)")
    rows = [(i, ["eu", "us"][i % 2], i * 86400 * 1_000_000 // 3) for i in range(30)]
    spark.createDataFrame(rows, "id bigint, region string, us bigint") \
        .selectExpr("id", "region", "timestamp_micros(us) as ts").writeTo(name).append()
    spark.sql(f"ALTER TABLE {name} DROP PARTITION FIELD region")
    spark.sql(f"ALTER TABLE {name} ADD PARTITION FIELD days(ts)")
    rows = [(100 + i, ["eu", "us"][i % 2], i * 86400 * 1_000_000 // 2) for i in range(10)]
    spark.createDataFrame(rows, "id bigint, region string, us bigint") \
        .selectExpr("id", "region", "timestamp_micros(us) as ts").writeTo(name).append()
    return {}


def write_expired(spark, name):
    create(spark, name, "id bigint, v string")
    for k in range(3):
        spark.createDataFrame([(k * 10 + i, f"r{k}") for i in range(10)], "id bigint, v string") \
            .coalesce(1).writeTo(name).append()
    # Rewrite every file, so that the first snapshots' files are the only ones holding their rows.
    spark.sql(f"CALL {CATALOG}.system.rewrite_data_files(table => '{name.split('.', 1)[1]}', options => map('rewrite-all', 'true'))")
    ids = snapshots(spark, name)
    old = ids[0]
    keep = ids[-2]
    now = spark.sql("SELECT current_timestamp() AS t").collect()[0].t
    spark.sql(f"CALL {CATALOG}.system.expire_snapshots(table => '{name.split('.', 1)[1]}', "
              f"older_than => TIMESTAMP '{now}', retain_last => 2)")
    left = snapshots(spark, name)
    assert old not in left and keep in left, f"expire_snapshots kept {left}, expected {keep} and not {old}"
    return {str(keep): "kept by expire_snapshots", "expired": str(old)}


def write_migrated(spark, name):
    # add_files imports a Hive-partitioned folder of plain Parquet (here one inside the table's
    # folder, as lockstep reads only the table's own files): its files have no field ids (the
    # table gets a name mapping) and no region column (the value is only in the folder name,
    # and so in the manifest's partition tuple).
    create(spark, name, "id bigint, v string, region string", part="PARTITIONED BY (region)")
    src = os.path.join(spark.conf.get(f"spark.sql.catalog.{CATALOG}.warehouse"), *name.split(".")[1:], "imported")
    spark.createDataFrame([(i, f"v{i}", ["eu", "us", "ap"][i % 3]) for i in range(30)], "id bigint, v string, region string") \
        .coalesce(1).write.partitionBy("region").parquet(src)
    spark.sql(f"CALL {CATALOG}.system.add_files(table => '{name.split('.', 1)[1]}', source_table => '`parquet`.`{src}`')")
    return {}


def write_eq_deletes(spark, name, path):
    create(spark, name, "id bigint, v string")
    spark.createDataFrame([(i, f"v{i}") for i in range(20)], "id bigint, v string").coalesce(1).writeTo(name).append()
    jvm, gw = spark._jvm, spark._sc._gateway
    table = jvm.org.apache.iceberg.hadoop.HadoopTables(spark._jsc.hadoopConfiguration()).load(path)
    schema = table.schema()
    cols = jvm.java.util.ArrayList()
    cols.add("v")  # a string key: py4j hands Java longs back as Python ints, and ints go in as Integer
    del_schema = schema.select(cols)
    eq_ids = gw.new_array(gw.jvm.int, 1)
    eq_ids[0] = schema.findField("v").fieldId()
    builder = getattr(jvm.org.apache.iceberg.data, "GenericFileWriterFactory$Builder")(table)
    factory = builder.equalityFieldIds(eq_ids).equalityDeleteRowSchema(del_schema).build()
    out = jvm.org.apache.iceberg.encryption.EncryptedFiles.plainAsEncryptedOutput(
        table.io().newOutputFile(path + "/data/eq-delete-00001.parquet"))
    writer = factory.newEqualityDeleteWriter(out, table.spec(), None)
    rec = jvm.org.apache.iceberg.data.GenericRecord.create(del_schema)
    for v in ("v3", "v4", "v11"):
        writer.write(rec.copy("v", v))
    writer.close()
    table.newRowDelta().addDeletes(writer.toDeleteFile()).commit()
    spark.sql(f"REFRESH TABLE {name}")
    return {}


CASES = {
    "append": write_append,
    "overwrite": write_overwrite,
    "delete": write_delete,
    "update": write_update,
    "dv": write_dv,
    "schema": write_schema,
    "promote": write_promote,
    "partition_evolution": write_partition_evolution,
    "expired": write_expired,
    "migrated": write_migrated,
    "eq_deletes": None,  # write_eq_deletes, which needs the table's path
}


def write(spark, outdir):
    if not iceberg_enabled():
        print("gen_iceberg: LOCKSTEP_SPARK_JARS has no iceberg-spark-runtime: no Iceberg table", file=sys.stderr)
        return
    root = os.path.join(outdir, "iceberg")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    spark.conf.set(f"spark.sql.catalog.{CATALOG}", "org.apache.iceberg.spark.SparkCatalog")
    spark.conf.set(f"spark.sql.catalog.{CATALOG}.type", "hadoop")
    spark.conf.set(f"spark.sql.catalog.{CATALOG}.warehouse", root)
    for case, fn in CASES.items():
        t0 = time.time()
        name, path = f"{CATALOG}.db.{case}", os.path.join(root, "db", case)
        snaps = write_eq_deletes(spark, name, path) if fn is None else fn(spark, name)
        dump(spark.read.format("iceberg").load(name), os.path.join(root, case + ".jsonl"))
        for sid in snaps:
            if sid.isdigit():
                dump(spark.read.format("iceberg").option("snapshot-id", int(sid)).load(name),
                     os.path.join(root, f"{case}@{sid}.jsonl"))
        with open(os.path.join(root, case + ".snapshots.json"), "w") as f:
            json.dump(snaps, f)
        print(f"gen_iceberg: {case} {time.time() - t0:.1f}s", file=sys.stderr)
