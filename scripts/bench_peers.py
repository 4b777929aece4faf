#!/usr/bin/env python3
"""The peers of `make bench` (scripts/bench): the scripts a user would write instead
of lockstep, each run on the same Spark output, and the bench's report.

  bench_peers.py arrow IN OUT           pyarrow read_table + ipc.new_file
  bench_peers.py duckdb IN OUT [ORDER]  DuckDB COPY (SELECT * ... [ORDER BY ORDER]) TO OUT (FORMAT parquet)
  bench_peers.py duckdb-cols IN OUT COLS ORDER   the same, only COLS (comma list)
  bench_peers.py kv IN OUT [presorted]  pyarrow (sort by id) + rocksdict SstFileWriter, lockstep's key bytes, JSON values
  bench_peers.py mmdb IN OUT            PyPI mmdb-writer (netaddr), one insert per network
  bench_peers.py fst-csv IN OUT [sorted|unsorted]  name,id rows (sorted by name's bytes, or in input order):
                                        the fst CLI's input, not timed
  bench_peers.py geo-data OUT SEED N POINTS  Natural Earth's countries and N Voronoi cells (GeoParquet, Spark
                                        layout) and POINTS random points on the sphere (LAT,LON lines): not timed
  bench_peers.py geo-tree IN            GeoPandas read_parquet + shapely STRtree: what a Python server builds at start
  bench_peers.py geo-lookup IN POINTS   shapely STRtree query with predicate "intersects" (the exact test) on every
                                        point, timed after a warm-up pass; prints {"seconds", "points", "matches"}
  bench_peers.py report RESULTS META OUT  the Markdown table (stdlib only)
"""
import json
import statistics
import sys


def arrow(src, out):
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    t = pq.read_table(src)
    with ipc.new_file(out, t.schema) as w:
        w.write_table(t)


def duckdb_copy(src, out, cols="*", order=None):
    import duckdb

    q = f"SELECT {cols} FROM read_parquet('{src}/*.parquet')" + (f" ORDER BY {order}" if order else "")
    duckdb.connect().execute(f"COPY ({q}) TO '{out}' (FORMAT parquet)")


def json_values(t):
    """lockstep's json value, column at a time: {"col":value,...} of every column but id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def string(a):
        a = pc.replace_substring(pc.replace_substring(a, "\\", "\\\\"), '"', '\\"')
        return pc.binary_join_element_wise('"', a, '"', "")

    def enc(a):
        if pa.types.is_list(a.type):
            a = pa.concat_arrays(a.chunks) if isinstance(a, pa.ChunkedArray) else a
            items = pa.ListArray.from_arrays(a.offsets, enc(a.flatten()), mask=a.is_null())
            out = pc.binary_join_element_wise("[", pc.binary_join(items, ","), "]", "")
        elif pa.types.is_string(a.type):
            out = string(a)
        elif pa.types.is_timestamp(a.type):
            out = pc.cast(pc.cast(a, pa.int64()), pa.string())
        else:
            out = pc.cast(a, pa.string())
        return pc.fill_null(out, "null")

    parts = []
    for c in t.column_names:
        if c != "id":
            parts += [("{" if not parts else ",") + f'"{c}":', enc(t.column(c))]
    return pc.binary_join_element_wise(*parts, "}", "")


def kv(src, out, presorted=False):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from rocksdict import BlockBasedOptions, DBCompressionType, Options, SstFileWriter

    t = pq.read_table(src)
    if not presorted:
        t = t.sort_by("id")
    opts = Options(raw_mode=True)
    opts.set_compression_type(DBCompressionType.snappy())  # lockstep's defaults: snappy, 10-bit bloom
    bbo = BlockBasedOptions()
    bbo.set_bloom_filter(10, False)
    opts.set_block_based_table_factory(bbo)
    w = SstFileWriter(options=opts)
    w.open(out)
    for b in t.to_batches(max_chunksize=65536):
        vals = json_values(pa.Table.from_batches([b])).cast(pa.binary()).to_pylist()
        # int64 big-endian with the sign bit flipped (v + 2^63): byte order is value order.
        for k, v in zip(b.column("id").to_pylist(), vals):
            w[(k + (1 << 63)).to_bytes(8, "big")] = v
    w.finish()


def mmdb(src, out):
    import pyarrow.parquet as pq
    from mmdb_writer import MMDBWriter
    from netaddr import IPNetwork, IPSet

    t = pq.read_table(src, columns=["network", "city", "asn"])
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="bench", languages=["en"],
                   description={"en": "bench"}, int_type="i32")
    for net, city, asn in zip(*(t.column(c).to_pylist() for c in ("network", "city", "asn"))):
        w.insert_network(IPSet([IPNetwork(net)]), {"city": city, "asn": asn})
    w.to_db_file(out)


def fst_csv(src, out, kind="sorted"):
    import pyarrow.csv as csv
    import pyarrow.parquet as pq

    t = pq.read_table(src, columns=["name", "id"])
    if kind == "sorted":
        t = t.sort_by("name")  # binary order of the UTF-8 bytes
    csv.write_csv(t, out, csv.WriteOptions(include_header=False, quoting_style="none"))


# ---- report -------------------------------------------------------------------


def report(results, meta, out):
    """RESULTS (TSV): measure tool run wall_s rss_kb out_bytes read_bytes exit note.
    META (TSV): 'measure NAME ROWS INPUT_BYTES TITLE', 'peer MEASURE TOOL LABEL' (TOOL
    'sum:A,B' adds up lockstep's medians of A and B), 'gate-mem BIG SMALL LIMIT [info]',
    'gate-zero MEASURE' (every run must output 0 bytes), 'phase NAME SECONDS', 'head TEXT',
    'extra TEXT'. Writes the Markdown to OUT; returns 1 if a gate failed."""
    runs, info, peers, gates, phases, head, extra = {}, {}, [], [], [], [], []
    for line in open(meta):
        f = line.rstrip("\n").split("\t")
        if f[0] == "measure":
            # Optional: a unit for ROWS (polygons, points) and a second count (vertices).
            info[f[1]] = (int(f[2]), int(f[3]), f[4], f[5] if len(f) > 5 else "", int(f[6]) if len(f) > 6 else 0)
        elif f[0] == "peer":
            peers.append((f[1], f[2], f[3]))
        elif f[0] in ("gate-mem", "gate-zero", "gate-same"):
            gates.append(f)
        elif f[0] == "phase":
            phases.append(f"{f[1]} {f[2]} s")
        elif f[0] == "head":
            head.append(f[1] if len(f) > 1 else "")
        elif f[0] == "extra":
            extra.append(f[1])
    for line in open(results):
        m, tool, _run, wall, rss, outb, readb, code, note = line.rstrip("\n").split("\t")
        runs.setdefault((m, tool), []).append((float(wall), int(rss), int(outb), int(readb), int(code), note))

    def stats(m, tool):
        if tool.startswith("sum:"):
            parts = [stats(x, "lockstep")[0] for x in tool[4:].split(",")]
            if None in parts:
                return None, "a single-asset build is missing"
            return {"wall": sum(p["wall"] for p in parts), "rss": max(p["rss"] for p in parts),
                    "out": sum(p["out"] for p in parts), "read": sum(p["read"] for p in parts),
                    "n": 1, "of": 1, "note": "peak RSS: the largest"}, ""
        rs = runs.get((m, tool), [])
        ok = [r for r in rs if r[4] == 0]
        if not ok:
            why = next((r[5] for r in rs if r[5]), "") or (f"exit {rs[0][4]}" if rs else "not run")
            return None, why
        med = lambda i: statistics.median(r[i] for r in ok)
        return {"wall": med(0), "rss": med(1), "out": med(2), "read": med(3), "n": len(ok), "of": len(rs),
                "note": next((r[5] for r in ok if r[5]), "")}, ""

    def size(n):
        for unit in ("B", "KB", "MB", "GB"):
            if n < 1000 or unit == "GB":
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1000

    def cell(m, s, why, tool):
        if s is None:
            return why if why.startswith("skipped") else f"**failed**: {why}"
        rows, inb, _, unit, verts = info[m]
        parts = [f"{s['wall']:.1f} s" if s['wall'] >= 1 else f"{s['wall']:.3g} s"]
        if rows and unit:
            parts.append(f"{rows / s['wall']:,.0f} {unit}/s")
            if verts:
                parts.append(f"{verts / s['wall']:,.0f} vertices/s")
        elif rows:
            parts.append(f"{rows / s['wall'] / 1e6:.2f} M rows/s")
        if inb:
            mbs = inb / s["wall"] / 1e6
            parts.append(f"{mbs:.0f} MB/s" if mbs >= 10 else f"{mbs:.2g} MB/s")
        if m in zero:
            parts.append(f"uploaded {size(s['out'])}")
        elif s["out"]:
            parts.append(f"{'out' if rows else 'moved'} {size(s['out'])}")
        if tool == "lockstep" and rows and inb and s["read"] > 0:
            parts.append(f"read {s['read'] / inb:.1f}× input")
        if s["note"]:
            parts.append(s["note"])
        if s["n"] < s["of"]:
            parts.append(f"{s['of'] - s['n']} of {s['of']} runs failed")
        return ", ".join(parts)

    zero = {g[1] for g in gates if g[0] == "gate-zero"}
    lines = head + ["", "| measure | lockstep | peer | ratio | lockstep peak RSS | peer peak RSS |",
                    "| --- | --- | --- | --- | --- | --- |"]
    for m in info:
        ls, lwhy = stats(m, "lockstep")
        mine = [(t, label) for pm, t, label in peers if pm == m] or [(None, "")]
        for tool, label in mine:
            ps, pwhy = stats(m, tool) if tool else (None, "")
            ratio = "" if ls is None or ps is None else f"{ps['wall'] / ls['wall']:.2f}×"
            peer = "—" if not tool else f"{label}: {cell(m, ps, pwhy, tool)}" if ps else f"{label}: **not run**: {pwhy}"
            lines.append(f"| {info[m][2]} | {cell(m, ls, lwhy, 'lockstep')} | {peer} | {ratio} | "
                         f"{size(ls['rss'] * 1024) if ls else ''} | {size(ps['rss'] * 1024) if ps else ''} |")
    lines += ["", "ratio: the peer's median time ÷ lockstep's (above 1: lockstep is faster). Times and peak RSS "
              "are medians of the runs (a geo lookup's time is its loop over the points, timed by the reader itself after a warm-up pass: lockstep's Index.LookupAll and shapely's vectorised STRtree.query, both batch calls; its peak RSS is the whole process's); MB/s is input (Parquet) bytes per second, or the release's bytes for the "
              "store rows; read: bytes the build read (rchar) over the input's size. Sizes are decimal (1 MB = 10^6 bytes).", ""]
    rc = 0
    for g in gates:
        if g[0] == "gate-same":
            notes = {r[5] for (m, _t), rs in runs.items() if m == g[1] for r in rs if r[4] == 0}
            if notes:
                lines.append(f"- {g[1]}: every reader found the same ({', '.join(sorted(notes))}): ok" if len(notes) == 1 else
                             f"- {g[1]}: the readers disagree ({', '.join(sorted(notes))}): **FAIL**")
                rc |= len(notes) != 1
            continue
        if g[0] == "gate-zero":
            rs = runs.get((g[1], "lockstep"), [])
            if not rs or all(r[4] == -1 for r in rs):
                lines.append(f"- {g[1]}: not run")
                continue
            bad = [r for r in rs if r[4] != 0 or r[2] != 0]
            lines.append(f"- {g[1]}: {len(rs)} publishes, {sum(r[2] for r in rs)} bytes uploaded: "
                         + ("**FAIL**" if bad else "ok"))
            rc |= bool(bad)
            continue
        big, small, limit = g[1], g[2], float(g[3])
        gate = len(g) < 5
        rb = runs.get((big, "lockstep"), [])
        sb, _ = stats(small, "lockstep")
        if not rb or all(r[4] == -1 for r in rb) or sb is None:
            why = next((r[5] for r in rb if r[5]), "not run")
            lines.append(f"- memory: {big} vs {small}: {why}")
            continue
        peak = max(r[1] for r in rb)
        capped = any("BENCH_RSS_CAP_MB" in r[5] for r in rb)
        ratio = peak / sb["rss"]
        verdict = ("**FAIL**" if ratio > limit else "ok") if gate else "(information)"
        lines.append(f"- memory: {big} peak RSS {size(peak * 1024)}{' or more (killed at the cap)' if capped else ''}"
                     f" vs {small} {size(sb['rss'] * 1024)}: {ratio:.2f}× (limit {limit}×) {verdict}")
        if gate and (ratio > limit or any(r[4] != 0 for r in rb)):
            rc = 1
    if phases:
        lines += ["", "phases: " + ", ".join(phases)]
    lines += extra
    text = "\n".join(lines) + "\n"
    open(out, "w").write(text)
    print(text)
    return rc


def geo_data(out, seed, n, npoints):
    import os
    import time

    import geopandas as gpd
    import numpy as np
    import shapely

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "spark"))
    import gen_geo

    rng = np.random.default_rng(int(seed))
    t0 = time.time()
    d = os.path.join(out, "countries")
    os.makedirs(d, exist_ok=True)
    gen_geo.countries().to_parquet(os.path.join(d, "part-00000.parquet"), index=False)
    open(os.path.join(d, "_SUCCESS"), "w").close()
    n = int(n)
    xy = np.column_stack([rng.uniform(-180, 180, n), rng.uniform(-85, 85, n)])
    frame = shapely.box(-180, -85, 180, 85)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=frame))
    cells = shapely.intersection(cells, frame)
    v = gpd.GeoDataFrame({"id": np.arange(len(cells), dtype="int64"), "name": [f"cell {i}" for i in range(len(cells))]},
                         geometry=cells, crs="EPSG:4326")
    d = os.path.join(out, f"voronoi-{n}")
    os.makedirs(d, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(v)), 4)):
        v.iloc[part].to_parquet(os.path.join(d, f"part-{i:05d}.parquet"), index=False)
    open(os.path.join(d, "_SUCCESS"), "w").close()
    u, w = rng.random(int(npoints)), rng.random(int(npoints))
    lat, lon = np.degrees(np.arcsin(2 * u - 1)), w * 360 - 180
    with open(os.path.join(out, f"points-{npoints}.csv"), "w") as f:
        f.writelines(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(lat, lon))
    print(f"geo-data: {len(cells)} cells, {int(shapely.get_num_coordinates(cells).sum())} vertices, {time.time() - t0:.1f}s", file=sys.stderr)


def geo_tree(src):
    import glob

    import geopandas as gpd
    import pandas as pd
    import shapely

    g = pd.concat([gpd.read_parquet(p) for p in sorted(glob.glob(src + "/*.parquet"))])
    shapely.STRtree(g.geometry.values).query(shapely.points(0, 0), predicate="intersects")


def geo_lookup(src, points):
    import glob
    import time

    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    g = pd.concat([gpd.read_parquet(p) for p in sorted(glob.glob(src + "/*.parquet"))])
    tree = shapely.STRtree(g.geometry.values)
    ll = np.loadtxt(points, delimiter=",", ndmin=2)
    pts = shapely.points(ll[:, 1], ll[:, 0])
    tree.query(pts, predicate="intersects")  # warm-up: GEOS prepares each geometry on first use
    t0 = time.perf_counter()
    hits = tree.query(pts, predicate="intersects")
    print(json.dumps({"seconds": time.perf_counter() - t0, "points": len(pts), "matches": int(hits.shape[1])}))


def main(argv):
    cmd, args = argv[0], argv[1:]
    if cmd == "arrow":
        arrow(*args)
    elif cmd == "duckdb":
        duckdb_copy(args[0], args[1], "*", args[2] if len(args) > 2 else None)
    elif cmd == "duckdb-cols":
        duckdb_copy(*args)
    elif cmd == "kv":
        kv(args[0], args[1], len(args) > 2 and args[2] == "presorted")
    elif cmd == "mmdb":
        mmdb(*args)
    elif cmd == "fst-csv":
        fst_csv(*args)
    elif cmd == "geo-data":
        geo_data(*args)
    elif cmd == "geo-tree":
        geo_tree(*args)
    elif cmd == "geo-lookup":
        geo_lookup(*args)
    elif cmd == "report":
        sys.exit(report(*args))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:] or ["help"])
