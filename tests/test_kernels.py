"""The triangulation kernel against plain-NumPy references (area, orientation), Hypothesis over shapes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.citygml._kernels import newell_normals, triangulate_rings


def reference_area_normal(ring: np.ndarray):
    """Plain NumPy: Newell normal (length = 2 x area) of a closed ring without its closing point.

    Computed on coordinates centred on the ring, so UTM-sized offsets cost no precision.
    """
    ring = ring - ring.mean(axis=0)
    nxt = np.roll(ring, -1, axis=0)
    n = np.array([((ring[:, 1] - nxt[:, 1]) * (ring[:, 2] + nxt[:, 2])).sum(),
                  ((ring[:, 2] - nxt[:, 2]) * (ring[:, 0] + nxt[:, 0])).sum(),
                  ((ring[:, 0] - nxt[:, 0]) * (ring[:, 1] + nxt[:, 1])).sum()])
    return np.linalg.norm(n) / 2, n


def run(rings, flip=None):
    coords = np.concatenate(rings)
    counts = np.array([len(r) for r in rings], np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    flip = np.zeros(len(rings), bool) if flip is None else np.asarray(flip)
    out = np.empty((int(np.maximum(counts - 2, 0).sum()) + 1, 3), np.int64)
    ring_of = np.empty(len(out), np.int64)
    n, status = triangulate_rings(coords, starts, counts, flip, out, ring_of, 1e-9)
    return coords, out[:n], ring_of[:n], status


def star(n, seed, rotate=None, z=0.0):
    """A star-shaped (generally concave) polygon, counter-clockwise, in an arbitrary plane."""
    rng = np.random.default_rng(seed)
    # one vertex per angular sector: gaps stay < 180 degrees (n >= 4), so the ring is simple
    ang = (np.arange(n) + rng.uniform(0.0, 0.9, n)) * 2 * np.pi / n
    r = rng.uniform(0.3, 1.0, n)
    pts = np.c_[r * np.cos(ang), r * np.sin(ang), np.full(n, z)] * 10
    if rotate is not None:
        q, _ = np.linalg.qr(np.random.default_rng(rotate).normal(size=(3, 3)))
        pts = pts @ q.T
    return pts + np.array([690000.0, 5336000.0, 500.0])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 24), seed=st.integers(0, 10_000), rotate=st.one_of(st.none(), st.integers(0, 10_000)),
       flip=st.booleans())
def test_triangles_cover_the_polygon_area_with_its_orientation(n, seed, rotate, flip):
    ring = star(n, seed, rotate)
    coords, tris, ring_of, status = run([ring], [flip])
    area_ref, normal_ref = reference_area_normal(ring)
    assert status[0] == 0
    assert len(tris) == n - 2
    v = coords[tris]
    cross = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    # every triangle faces the ring's Newell normal (reversed when flipped); areas add up exactly
    sign = -1 if flip else 1
    assert (cross @ normal_ref * sign > 0).all()
    # the triangles' areas are differences of UTM coordinates (~7e5 m, ulp 1e-10 m): relative 1e-8
    assert abs(np.linalg.norm(cross, axis=1).sum() / 2 - area_ref) <= 1e-8 * area_ref


def test_degenerate_rings_are_flagged_not_triangulated():
    line = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], float)          # collinear: zero area
    dup = np.array([[0, 0, 0], [0, 0, 0], [1, 1, 1]], float)           # 2 distinct points
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    coords, tris, ring_of, status = run([line, dup, square])
    assert list(status) == [1, 1, 0]
    assert set(ring_of) == {2} and len(tris) == 2


def test_newell_normals_match_reference():
    rings = [star(7, s, rotate=s) for s in range(5)]
    coords = np.concatenate(rings)
    counts = np.full(5, 7, np.int64)
    out = np.empty((5, 3))
    newell_normals(coords, np.arange(5, dtype=np.int64) * 7, counts, out)
    for i, r in enumerate(rings):
        assert np.allclose(out[i], reference_area_normal(r)[1], rtol=1e-9)


def test_self_intersecting_ring_is_flagged():
    # symmetric bow tie: the lobes cancel, zero Newell area -> degenerate (1)
    sym = np.array([[0, 0, 0], [2, 2, 0], [2, 0, 0], [0, 2, 0]], float)
    # lopsided bow tie: triangulated, but flagged as crossing itself (2)
    lop = np.array([[0, 0, 0], [4, 4, 0], [4, 0, 0], [0, 1, 0]], float)
    _, tris, ring_of, status = run([sym, lop])
    assert list(status) == [1, 2] and set(ring_of) == {1}


def test_batch_poslist_parse_equals_one_by_one():
    """The reader's one-call parse of a batch of posLists equals parsing each ring alone."""
    from twin.citygml.reader import _parse_posList_batch, _posList_to_xyz

    rng = np.random.default_rng(7)
    texts = []
    for n in (3, 4, 5, 9, 4):
        pts = rng.normal(500000, 50, (n, 3))
        closed = np.vstack([pts, pts[:1]]) if n != 5 else pts   # one ring left open
        texts.append("\n  ".join(" ".join(f"{v:.3f}" for v in p) for p in closed))
    coords, counts = _parse_posList_batch(texts)
    ref = [_posList_to_xyz(t) for t in texts]
    assert list(counts) == [len(r) for r in ref] == [3, 4, 5, 9, 4]
    assert np.array_equal(coords, np.concatenate(ref))
    assert _parse_posList_batch(["0 0 0 1 1 1 2 2", "0 0 0"]) is None       # not a multiple of 3
    assert _parse_posList_batch(["0 0 0 1 1 1 2 2 x"]) is None              # not numbers
    assert _parse_posList_batch(["0 0 nan 1 1 1 2 2 2"]) is None            # NaN inside a ring
