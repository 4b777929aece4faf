"""A geo reader in another language, written from docs/formats.md alone (the `geo` section).

usage: reader.py ASSET.sst < points (LAT,LON per line) > answers (JSON per line: the ids that hold it)

It ingests the table into a scratch RocksDB with rocksdict, then for each point:
  1. the leaf S2 cell of the point (s2sphere computes S2 cell ids as every S2 library does);
  2. for each level 0..30, one Get of b"c" + the ancestor's id as 8 big-endian bytes;
  3. each hit's list: uvarint id length, id bytes, flag (1 interior, 0 boundary);
  4. a feature flagged interior in any hit holds the point; a boundary-only one is read
     (b"f" + id: uvarint WKB length, WKB, properties) and tested exactly, in the plane of
     longitude and latitude (shapely).
String ids are their UTF-8 bytes (the kv key encoding of one string column).
"""
import json
import sys
import tempfile

import rocksdict
import s2sphere
import shapely


def uvarint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return n, i


def cell_list(v):
    i, out = 0, []
    while i < len(v):
        n, i = uvarint(v, i)
        out.append((bytes(v[i:i + n]), v[i + n] == 1))
        i += n + 1
    return out


def main(asset):
    opts = rocksdict.Options(raw_mode=True)
    with tempfile.TemporaryDirectory() as d:
        db = rocksdict.Rdict(d, opts)
        db.ingest_external_file([asset])
        geoms = {}
        for line in sys.stdin:
            lat, lon = (float(x) for x in line.split(","))
            leaf = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lon))
            flags = {}
            for level in range(31):
                v = db.get(b"c" + leaf.parent(level).id().to_bytes(8, "big"))
                for fid, interior in cell_list(v) if v is not None else []:
                    flags[fid] = flags.get(fid, False) or interior
            held = []
            for fid, interior in flags.items():
                if not interior:
                    if fid not in geoms:
                        v = db.get(b"f" + fid)
                        n, i = uvarint(v, 0)
                        geoms[fid] = shapely.from_wkb(bytes(v[i:i + n]))
                    if not shapely.intersects_xy(geoms[fid], lon, lat):
                        continue
                held.append(fid.decode())
            print(json.dumps(sorted(held)))
        db.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
