"""Writes the Spark output that the gate acceptance test (cmd/lockstep/gates_test.go) reads:
five versions of one places dataset, each as plain Spark output.

OUTDIR/gates/v1    2000 places in 8 countries (id, name, country, lat, population), 2 part files
OUTDIR/gates/v2    v1 without every tenth row (10% fewer rows)
OUTDIR/gates/v3    v1 with `name` null in every row of country DE
OUTDIR/gates/v4    v1 with `name` renamed to `title`
OUTDIR/gates/dup   v1, then row id=7 appended again as another part file (a duplicate key)
"""
import os
import shutil

from pyspark.sql import functions as F

COUNTRIES = ["DE", "FR", "ES", "IT", "PL", "SE", "PT", "NL"]
ROWS = 2000


def v1(spark):
    df = spark.range(ROWS).select(
        F.col("id"),
        F.concat(F.lit("place "), F.col("id").cast("string")).alias("name"),
        F.element_at(F.array(*[F.lit(c) for c in COUNTRIES]), (F.col("id") % len(COUNTRIES) + 1).cast("int")).alias("country"),
        ((F.col("id") % 180) - 89.5).alias("lat"),
        (F.col("id") * 37 % 100000).alias("population"),
    )
    return df.repartition(2, "id").sortWithinPartitions("id")


def write(spark, outdir):
    root = os.path.join(outdir, "gates")
    shutil.rmtree(root, ignore_errors=True)
    base = v1(spark)
    base.write.parquet(os.path.join(root, "v1"))
    base.where(F.col("id") % 10 != 0).write.parquet(os.path.join(root, "v2"))
    base.withColumn("name", F.when(F.col("country") == "DE", F.lit(None).cast("string")).otherwise(F.col("name"))) \
        .write.parquet(os.path.join(root, "v3"))
    base.withColumnRenamed("name", "title").write.parquet(os.path.join(root, "v4"))
    dup = os.path.join(root, "dup")
    base.write.parquet(dup)
    base.where(F.col("id") == 7).coalesce(1).write.mode("append").parquet(dup)
