"""Writes the Spark output that the format acceptance tests read.

usage: gen_formats.py OUTDIR            what gen_all.py writes (below)
       gen_formats.py --demo DIR        only DIR/ip_ranges/ with a few hundred networks,
                                        committed as testdata/ip_ranges/ for `make demo`

OUTDIR/kv_1m/                    1,000,000 rows, unique `id` and `key`, in no key order
                                 (id is a multiplicative hash of the row number), 4 part files
OUTDIR/kv_1m.sample.jsonl        1,000 of those rows, as Spark reads them back
OUTDIR/kv_dups/                  a few rows where id 7 appears in two part files
OUTDIR/ip_ranges/                networks (IPv4 /24../28 and IPv6 /48) -> country, city,
                                 population of the demo places; no two overlap
OUTDIR/ip_ranges.probes.jsonl    1,000 IPs, v4 and v6, inside and outside the networks,
                                 with the record each should find (null: none)

Values are deterministic (seeded); only part file names change per run.
"""
import ipaddress
import json
import os
import random
import sys

from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from gen_places import CITIES

ROWS = 1_000_000
PRIME = 2_147_483_647  # ids: (n * 48271) mod PRIME, unique for n < PRIME


def write_kv(spark, outdir):
    out = os.path.join(outdir, "kv_1m")
    n = F.col("id")
    cities = F.array(*[F.lit(c[0]) for c in CITIES])
    countries = F.array(*[F.lit(c[1]) for c in CITIES])
    df = (spark.range(0, ROWS, numPartitions=4)
          .select(((n * 48271) % PRIME).alias("id"), n.alias("n"))
          .select(
              "id",
              F.concat(F.element_at(cities, (F.col("n") % len(CITIES) + 1).cast("int")),
                       F.lit("-"), F.col("id").cast("string")).alias("key"),
              F.element_at(countries, (F.col("n") % len(CITIES) + 1).cast("int")).alias("country"),
              F.when(F.col("n") % 10 == 3, F.lit(None)).otherwise(F.col("n") * 7).cast("long").alias("population"),
              (F.col("n") / 8.0).alias("score"),
              F.when(F.col("n") % 4 == 0, F.lit(None))
               .otherwise(F.array(F.lit("port"), F.col("n").cast("string"))).alias("tags")))
    df.write.mode("overwrite").parquet(out)
    rng = random.Random(4)
    ids = sorted({(k * 48271) % PRIME for k in rng.sample(range(ROWS), 1000)})
    back = spark.read.parquet(out).where(F.col("id").isin(ids)).collect()
    assert len(back) == 1000, len(back)
    with open(out + ".sample.jsonl", "w", encoding="utf-8") as f:
        for r in sorted(back, key=lambda r: r["id"]):
            f.write(json.dumps(r.asDict(), ensure_ascii=False) + "\n")

    # Two part files, each holding id 7 once.
    dups = os.path.join(outdir, "kv_dups")
    spark.createDataFrame([(7, "a"), (8, "b")], "id long, v string").coalesce(1).write.mode("overwrite").parquet(dups)
    spark.createDataFrame([(7, "c")], "id long, v string").coalesce(1).write.mode("append").parquet(dups)


def networks(rng, count):
    """Non-overlapping networks: IPv4 /24 to /28 inside distinct /16s of 81-95.x, IPv6 /48s."""
    nets, seen = [], set()
    while len(nets) < count:
        if rng.random() < 0.6:
            a, b, c = rng.randrange(81, 96), rng.randrange(256), rng.randrange(256)
            if (a, b, c) in seen:
                continue
            seen.add((a, b, c))
            bits = rng.choice([24, 24, 25, 26, 28])
            nets.append(ipaddress.ip_network(f"{a}.{b}.{c}.0/{bits}"))
        else:
            x, y = rng.randrange(0x2a00, 0x2a10), rng.randrange(1 << 16)
            if (x, y) in seen:
                continue
            seen.add((x, y))
            nets.append(ipaddress.ip_network(f"{x:x}:{y:x}:1::/48"))
    return nets


SCHEMA_IP = StructType([
    StructField("network", StringType(), False),
    StructField("country", StringType(), True),
    StructField("city", StringType(), True),
    StructField("population", LongType(), True),
    StructField("updated", LongType(), False),
])


def write_ip_ranges(spark, outdir, count, probes=0, partitions=2):
    rng = random.Random(11)
    nets = networks(rng, count)
    rows = []
    for i, net in enumerate(nets):
        name, country, _, _, pop = CITIES[i % len(CITIES)]
        rows.append((str(net), country, name, pop if i % 9 else None, 1714521600 + i))
    out = os.path.join(outdir, "ip_ranges")
    spark.createDataFrame(rows, SCHEMA_IP).repartition(partitions).write.mode("overwrite").parquet(out)
    if not probes:
        return
    by_net = {str(r[0]): r for r in rows}
    lines = []
    for k in range(probes):
        net = nets[rng.randrange(len(nets))]
        if k % 2 == 0:  # inside
            ip = net[rng.randrange(net.num_addresses)]
            r = by_net[str(net)]
            want = {"country": r[1], "city": r[2]}
            if r[3] is not None:
                want["population"] = r[3]
            lines.append({"ip": str(ip), "network": str(net), "record": want})
        else:  # outside: the next /24 or /48 up from a network, if no network has it
            step = 256 if net.version == 4 else 1 << 80
            ip = net.network_address + step * rng.randrange(1, 4) + 1
            if any(ip in n for n in nets if n.version == net.version and n.prefixlen >= 24):
                continue
            lines.append({"ip": str(ip), "network": None, "record": None})
    with open(out + ".probes.jsonl", "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


def write(spark, outdir):
    outdir = os.path.abspath(outdir)
    write_kv(spark, outdir)
    write_ip_ranges(spark, outdir, 20000, probes=1200, partitions=3)


if __name__ == "__main__":
    from session import session
    with session() as s:
        if sys.argv[1] == "--demo":
            write_ip_ranges(s, os.path.abspath(sys.argv[2]), 300, partitions=1)
        else:
            write(s, sys.argv[1])
