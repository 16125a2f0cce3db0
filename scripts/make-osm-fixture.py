#!/usr/bin/env python3
"""Write crates/lianxin-map/tests/data/river-grid.osm.pbf, the road-network test fixture.

A 6 x 6 grid of streets (rows 0-5 north to south, columns 0-5 west to east), about
110 m apart, near Baotou. A river runs between columns 2 and 3: no ordinary street
crosses it except a bridge on row 0. Each other row has one special crossing, so the
shortest routes across the river are obvious by hand and differ by mode:

    row 0  tertiary bridge              walk + e-bike
    row 1  steps                        walk only
    row 2  service, access=private      nobody
    row 3  cycleway, bicycle=designated, foot=no   e-bike only
    row 4  motorway                     nobody
    row 5  footway                      walk only

Also: a one-way spur east of node (0, 5) that points into the grid (e-bikes may ride
it towards the grid only), a way that references a node missing from the extract, a
building outline (not a road) and a tagged shop node on no way.

Node ids: 1000 + 10 * row + col. The Rust tests rebuild the coordinates with the same
formula, so keep LAT0/LON0/DLAT/DLON in step with crates/lianxin-map/src/road.rs tests.

Needs pyosmium: `pip install osmium`. The fixture is committed, so the tests need no
Python; rerun this only to change it.
"""
import os
import sys

import osmium

LAT0, LON0 = 40.66, 109.84
DLAT, DLON = 0.001, 0.0012
ROWS, COLS = 6, 6
RIVER_WEST, RIVER_EAST = 2, 3  # columns on either bank

CROSSINGS = {
    0: {"highway": "tertiary", "bridge": "yes", "name": "North Bridge"},
    1: {"highway": "steps"},
    2: {"highway": "service", "access": "private"},
    3: {"highway": "cycleway", "bicycle": "designated", "foot": "no"},
    4: {"highway": "motorway"},
    5: {"highway": "footway"},
}


def nid(r, c):
    return 1000 + 10 * r + c


def loc(r, c):
    return (LON0 + c * DLON, LAT0 - r * DLAT)  # osmium wants (lon, lat)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "crates", "lianxin-map", "tests", "data", "river-grid.osm.pbf")
    out = os.path.normpath(out)
    if os.path.exists(out):
        os.remove(out)
    w = osmium.SimpleWriter(out)
    try:
        for r in range(ROWS):
            for c in range(COLS):
                w.add_node(osmium.osm.mutable.Node(id=nid(r, c), location=loc(r, c), version=1))
        # The one-way spur's far end, one column east of (0, 5).
        w.add_node(osmium.osm.mutable.Node(id=2001, location=loc(0, 6), version=1))
        # A shop on no way, and the corners of a building.
        w.add_node(osmium.osm.mutable.Node(id=3001, location=(LON0 + 0.5 * DLON, LAT0 - 0.5 * DLAT),
                                           tags={"shop": "convenience", "name": "便利店"}, version=1))
        for i, (dx, dy) in enumerate([(0.2, 0.2), (0.4, 0.2), (0.4, 0.4), (0.2, 0.4)]):
            w.add_node(osmium.osm.mutable.Node(id=3100 + i, location=(LON0 + dx * DLON, LAT0 - dy * DLAT),
                                               version=1))

        way_id = 1
        # Row streets on each bank.
        for r in range(ROWS):
            for cols in (range(0, RIVER_WEST + 1), range(RIVER_EAST, COLS)):
                w.add_way(osmium.osm.mutable.Way(id=way_id, nodes=[nid(r, c) for c in cols],
                                                 tags={"highway": "residential"}, version=1))
                way_id += 1
        # Column streets.
        for c in range(COLS):
            w.add_way(osmium.osm.mutable.Way(id=way_id, nodes=[nid(r, c) for r in range(ROWS)],
                                             tags={"highway": "residential"}, version=1))
            way_id += 1
        # The crossings.
        for r, tags in CROSSINGS.items():
            w.add_way(osmium.osm.mutable.Way(id=100 + r, nodes=[nid(r, RIVER_WEST), nid(r, RIVER_EAST)],
                                             tags=tags, version=1))
        # One-way spur: from 2001 into the grid at (0, 5).
        w.add_way(osmium.osm.mutable.Way(id=200, nodes=[2001, nid(0, 5)],
                                         tags={"highway": "residential", "oneway": "yes"}, version=1))
        # A road whose second node was clipped out of the extract.
        w.add_way(osmium.osm.mutable.Way(id=201, nodes=[nid(5, 5), 999999],
                                         tags={"highway": "residential"}, version=1))
        # A building outline: not a road.
        w.add_way(osmium.osm.mutable.Way(id=202, nodes=[3100, 3101, 3102, 3103, 3100],
                                         tags={"building": "yes"}, version=1))
    finally:
        w.close()
    print(f"wrote {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
