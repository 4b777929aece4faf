"""Writes the polygons the geo tests read (cmd/lockstep/geo_test.go), and shapely's answers.

The polygons are Natural Earth's low-resolution countries, as GeoPandas 0.14 bundles them
(177 countries: Lesotho is a hole in South Africa; Fiji and Russia are split at the
antimeridian; Antarctica runs along latitude -90 around the pole).

OUTDIR/geo/geoparquet   GeoParquet written by GeoPandas (WKB, its `geo` metadata), two part files
OUTDIR/geo/spark_wkb    the same rows written by Spark, the geometry as a plain WKB binary column
`gen_geo.py --demo DIR` writes the demo's few countries (testdata/geo/countries) with Spark.

OUTDIR/geo/points.jsonl 10,000 random points on the sphere plus points 1e-6 degrees either side of
                        the middle of every edge and on every vertex, each with the names of the
                        countries shapely says hold it (planar, as the data means it: STRtree with
                        predicate "intersects") and its distance to the nearest boundary
"""
import json
import os
import shutil

import warnings

import geopandas as gpd
import numpy as np
import shapely

SEED = 20261201
warnings.filterwarnings("ignore", message="The geopandas.dataset module is deprecated")


def countries():
    w = gpd.read_file(gpd.datasets.get_path("naturalearth_lowres"), engine="pyogrio")
    w["pop_est"] = w["pop_est"].astype("int64")
    return w[["name", "iso_a3", "continent", "pop_est", "geometry"]].sort_values("name").reset_index(drop=True)


def points(w):
    rng = np.random.default_rng(SEED)
    u, v = rng.random(10000), rng.random(10000)
    lat, lon = np.degrees(np.arcsin(2 * u - 1)), v * 360 - 180
    pts = [(a, b) for a, b in zip(lat, lon)]
    for g in w.geometry:
        for poly in getattr(g, "geoms", [g]):
            for ring in [poly.exterior, *poly.interiors]:
                c = np.asarray(ring.coords)
                for (x0, y0), (x1, y1) in zip(c[:-1], c[1:]):
                    d = np.hypot(x1 - x0, y1 - y0)
                    if d == 0:
                        continue
                    nx, ny = -(y1 - y0) / d * 1e-6, (x1 - x0) / d * 1e-6
                    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
                    pts += [(my + ny, mx + nx), (my - ny, mx - nx), (y0, x0)]
    pts = [(a, b) for a, b in pts if -90 <= a <= 90 and -180 <= b <= 180]
    geoms = np.asarray(w.geometry)
    xy = shapely.points([b for _, b in pts], [a for a, _ in pts])
    tree = shapely.STRtree(geoms)
    pi, gi = tree.query(xy, predicate="intersects")
    names = [[] for _ in pts]
    for p, g in zip(pi, gi):
        names[p].append(w.name[g])
    bounds = shapely.boundary(geoms)
    near = STRnearest(bounds, xy)
    return [{"lat": a, "lon": b, "names": sorted(n), "edge_distance": float(d)} for (a, b), n, d in zip(pts, names, near)]


def STRnearest(bounds, xy):
    tree = shapely.STRtree(bounds)
    idx = tree.nearest(xy)
    return shapely.distance(xy, bounds[idx])


def spark_layout(path):
    with open(os.path.join(path, "_SUCCESS"), "w"):
        pass


DEMO = ["Austria", "Fiji", "France", "Germany", "Italy", "Lesotho", "South Africa", "Switzerland"]


def spark_frame(spark, w):
    rows = [(r.name, r.iso_a3, r.continent, int(r.pop_est), bytearray(shapely.to_wkb(r.geometry))) for r in w.itertuples()]
    return spark.createDataFrame(rows, "name string, iso_a3 string, continent string, pop_est long, wkb binary")


def write(spark, outdir):
    root = os.path.join(outdir, "geo")
    shutil.rmtree(root, ignore_errors=True)
    w = countries()
    gp = os.path.join(root, "geoparquet")
    os.makedirs(gp)
    half = len(w) // 2
    w.iloc[:half].to_parquet(os.path.join(gp, "part-00000-geopandas.snappy.parquet"), index=False)
    w.iloc[half:].to_parquet(os.path.join(gp, "part-00001-geopandas.snappy.parquet"), index=False)
    spark_layout(gp)
    spark_frame(spark, w).repartition(2).write.parquet(os.path.join(root, "spark_wkb"))
    with open(os.path.join(root, "points.jsonl"), "w") as f:
        for p in points(w):
            f.write(json.dumps(p) + "\n")


if __name__ == "__main__":
    import sys

    from session import session

    if sys.argv[1:2] != ["--demo"] or len(sys.argv) != 3:
        sys.exit("usage: gen_geo.py --demo DIR")
    with session() as spark:
        w = countries()
        shutil.rmtree(sys.argv[2], ignore_errors=True)
        spark_frame(spark, w[w.name.isin(DEMO)]).coalesce(1).write.parquet(sys.argv[2])
