"""Writes all of the tests' Spark data in one JVM: `make test` runs it before go test.

usage: gen_all.py OUTDIR

Each generator module has write(spark, outdir) and owns its own folders under OUTDIR.
Add a generator by adding its module name to GENERATORS.
"""
import importlib
import sys
import time

from session import sql_conf, session

GENERATORS = [
    "gen_places",
    "gen_formats",
    "gen_inputs",
    "gen_gates",
    "gen_geo",
    "gen_iceberg",
]


def main(outdir):
    with session(sql_conf()) as spark:
        for name in GENERATORS:
            t0 = time.time()
            importlib.import_module(name).write(spark, outdir)
            print(f"gen_all: {name} {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:])
