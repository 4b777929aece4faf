"""Writes real Spark output for lockstep's tests.

usage: gen_places.py OUTDIR [--rows N]

OUTDIR/places/                 Parquet as Spark writes it (3 snappy part files,
                               .crc files, _SUCCESS); `updated` is INT96.
OUTDIR/places.expected.jsonl   what Spark reads back from OUTDIR/places, one JSON
                               object per row, sorted by id; timestamps as integer
                               microseconds since the Unix epoch (UTC).

The values are deterministic (seeded); only the part file names change per run.
"""
import argparse
import json
import os
import random
from datetime import datetime, timedelta, timezone

from session import session  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql.types import (  # noqa: E402
    ArrayType, DoubleType, LongType, StringType, StructField, StructType, TimestampType)

SCHEMA = StructType([
    StructField("id", LongType(), False),
    StructField("name", StringType(), False),
    StructField("country", StringType(), True),
    StructField("lat", DoubleType(), True),
    StructField("lon", DoubleType(), True),
    StructField("population", LongType(), True),
    StructField("tags", ArrayType(StringType(), True), True),
    StructField("updated", TimestampType(), True),
])

# (name, ISO-2 country, lat, lon, population)
CITIES = [
    ("São Paulo", "BR", -23.5505, -46.6333, 12325232), ("Zürich", "CH", 47.3769, 8.5417, 421878),
    ("München", "DE", 48.1351, 11.5820, 1488202), ("Kraków", "PL", 50.0647, 19.9450, 779115),
    ("Malmö", "SE", 55.6050, 13.0038, 347949), ("Reykjavík", "IS", 64.1466, -21.9426, 131136),
    ("Besançon", "FR", 47.2378, 6.0241, 116466), ("Córdoba", "AR", -31.4201, -64.1888, 1391000),
    ("İzmir", "TR", 38.4237, 27.1428, 4367251), ("Tromsø", "NO", 69.6492, 18.9553, 77544),
    ("Łódź", "PL", 51.7592, 19.4560, 672185), ("Québec", "CA", 46.8139, -71.2080, 549459),
    ("Москва", "RU", 55.7558, 37.6173, 12506468), ("東京", "JP", 35.6762, 139.6503, 13960000),
    ("Lisbon", "PT", 38.7223, -9.1393, 544851), ("Nairobi", "KE", -1.2921, 36.8219, 4397073),
    ("Lima", "PE", -12.0464, -77.0428, 9751000), ("Oslo", "NO", 59.9139, 10.7522, 697010),
    ("Austin", "US", 30.2672, -97.7431, 961855), ("Perth", "AU", -31.9505, 115.8605, 2085973),
]
PREFIXES = ["", "", "", "Bad ", "Neu", "Saint-", "San ", "Port ", "Nieder", "Alt", "Øster", "Vila "]
ROOTS = [("Mühl", "DE"), ("Brück", "AT"), ("Åker", "SE"), ("Château", "FR"), ("Ribeirão", "BR"),
         ("Berg", "CH"), ("Haven", "GB"), ("Kirk", "GB"), ("Dalen", "NO"), ("Mar", "ES"),
         ("Velho", "PT"), ("Springs", "US"), ("Ville", "FR"), ("Hof", "DE"), ("Lago", "IT")]
SUFFIXES = ["", "", "heim", "dorf", "burg", "by", "ton", "ville", " do Sul", "hausen", "ås"]
TAGS = ["capital", "coastal", "historic", "mountain", "river", "port", "airport", "university"]
T0 = datetime(2015, 1, 1, tzinfo=timezone.utc)


def make_rows(n, seed=20240501):
    rng = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        if i <= len(CITIES):
            name, country, lat, lon, pop = CITIES[i - 1]
        else:
            root, country = rng.choice(ROOTS)
            name = rng.choice(PREFIXES) + root + rng.choice(SUFFIXES)
            lat, lon = round(rng.uniform(-60, 70), 6), round(rng.uniform(-180, 180), 6)
            pop = int(rng.lognormvariate(9, 1.5))
        if rng.random() < 0.05:
            pop = None
        k = rng.random()
        tags = None if k < 0.02 else [] if k < 0.05 else rng.sample(TAGS, rng.randint(1, 3))
        updated = T0 + timedelta(seconds=rng.randrange(10 * 365 * 86400),
                                 microseconds=rng.randrange(1_000_000))
        rows.append((i, name, country, lat, lon, pop, tags, updated))
    # Edge timestamps for INT96 decoding (the last ids): either side of the epoch, a leap day.
    edges = [datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
             datetime(1970, 1, 1, tzinfo=timezone.utc),
             datetime(2024, 2, 29, 12, 0, 0, tzinfo=timezone.utc)]
    for k, ts in zip(range(n - 1, -1, -1), edges):
        rows[k] = rows[k][:7] + (ts,)
    rng.shuffle(rows)  # rows reach Spark, and so the part files, in shuffled id order
    return rows


def micros(ts):
    if ts is None:
        return None
    # Naive datetimes from collect() are in Python's local zone, which is UTC here.
    delta = ts.replace(tzinfo=timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def write(spark, outdir, rows=3000):
    """Writes OUTDIR/places/ and OUTDIR/places.expected.jsonl."""
    out = os.path.join(os.path.abspath(outdir), "places")
    df = spark.createDataFrame(make_rows(rows), SCHEMA)
    df.repartition(3).write.mode("overwrite").parquet(out)

    back = spark.read.parquet(out)
    # Cross-check Python's timestamp conversion against Spark's own.
    check = dict(back.select("id", F.unix_micros("updated")).collect())
    got = sorted(back.collect(), key=lambda r: r["id"])
    assert len(got) == rows, (len(got), rows)
    with open(out + ".expected.jsonl", "w", encoding="utf-8") as f:
        for r in got:
            d = r.asDict()
            d["updated"] = micros(d["updated"])
            assert d["updated"] == check[d["id"]], (d["id"], d["updated"], check[d["id"]])
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--rows", type=int, default=3000)
    args = ap.parse_args()
    with session() as spark:
        write(spark, args.outdir, args.rows)
