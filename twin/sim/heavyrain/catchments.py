"""Heavy rain by catchments on Dask: one dynamic run per catchment plus a buffer, merged.

Surface water does not cross a divide until it overtops it, so a city can be split by the
screening's D8 flow directions:

1. Every cell is labelled by the cell where its D8 path ends (it leaves the domain there, or a pit):
   the catchments (:func:`catchment_labels`).
2. Catchments are merged to about ``target_cells`` (across the lowest divides first, see
   :func:`merge_catchments`), so tasks are neither tiny nor the whole domain and the group borders
   that remain follow the highest divides.
3. Each group runs as one task: a :class:`~twin.sim.heavyrain.model.HeavyRainModel` on the group's
   bounding box, the group plus ``buffer_cells`` active, everything else outside the domain (a wall);
   rain falls on the group's own cells only. Window edges on the domain border keep the domain's
   boundary condition, the others are closed.
4. Water in the buffer deeper than ``overtop_depth_m`` means the group's water crossed a divide. The
   group is flagged (where, how deep, into which neighbours), merged with the neighbours it reached and
   run again with them (up to ``max_rounds``); what still overtops after that is reported.
5. Each cell takes its maximum depth from the run of its own group.

Where no divide is overtopped the merged maximum depth matches the single-domain run to the time-step
differences of the adaptive CFL step (``tests/test_dask_catchments.py`` checks 1 cm).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from twin.errors import TwinValueError

__all__ = ["catchment_labels", "merge_catchments", "CatchmentRunResult", "run_by_catchments"]

_EDGES = ("north", "south", "west", "east")


def catchment_labels(directions) -> np.ndarray:
    """Catchment id (0..k-1, int32) of every cell by where its D8 path ends; -1 outside the domain (code -3).

    ``directions``: D8 codes from :func:`twin.sim.heavyrain.screening.flow_directions` or the tiled
    screening.
    """
    from twin.sim.heavyrain import _tiled_kernels as k

    d8 = np.ascontiguousarray(np.asarray(directions), dtype=np.int8)
    if d8.ndim != 2:
        raise TwinValueError(f"directions must be a 2-D D8 raster, got shape {d8.shape}")
    term = np.empty(d8.shape, np.int64)
    k.terminal_of(d8, term)
    out = np.full(d8.shape, -1, np.int32)
    valid = term >= 0
    _, inv = np.unique(term[valid], return_inverse=True)
    out[valid] = inv.astype(np.int32)
    return out


def _adjacency(labels: np.ndarray, z: np.ndarray | None = None) -> dict[int, dict[int, list]]:
    """Per pair of touching labels: [shared border length (4-neighbour cell pairs), saddle elevation] where the
    saddle is the lowest ``max(z_a, z_b)`` over the border pairs (+inf without ``z``)."""
    keys_l, sad_l = [], []
    for sl_a, sl_b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                       ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        a, b = labels[sl_a], labels[sl_b]
        m = (a != b) & (a >= 0) & (b >= 0)
        lo = np.minimum(a[m], b[m]).astype(np.int64)
        hi = np.maximum(a[m], b[m]).astype(np.int64)
        keys_l.append(lo << 32 | hi)
        if z is not None:
            sad_l.append(np.fmax(z[sl_a][m], z[sl_b][m]))
    keys = np.concatenate(keys_l)
    sad = np.concatenate(sad_l) if z is not None else np.full(len(keys), np.inf)
    order = np.lexsort((sad, keys))
    keys, sad = keys[order], sad[order]
    uk, first, counts = np.unique(keys, return_index=True, return_counts=True)
    adj: dict[int, dict[int, list]] = {}
    for key, cnt, sd in zip(uk.tolist(), counts.tolist(), sad[first].tolist()):
        a, b = key >> 32, key & 0xFFFFFFFF
        adj.setdefault(a, {})[b] = [cnt, sd]
        adj.setdefault(b, {})[a] = [cnt, sd]
    return adj


def _merge_smallest(labels: np.ndarray, target_cells: int, z: np.ndarray | None) -> np.ndarray:
    """Merge the smallest group into a neighbour (lowest saddle, else longest border) until all hold
    >= ``target_cells`` cells or have no neighbour."""
    import heapq

    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    size = np.bincount(labels[labels >= 0], minlength=k).astype(np.int64).tolist()
    adj = _adjacency(labels, z)
    parent = list(range(k))
    heap = [(size[i], i) for i in range(k)]
    heapq.heapify(heap)
    while heap:
        s, g = heapq.heappop(heap)
        if parent[g] != g or s != size[g]:
            continue  # stale
        if s >= target_cells:
            break
        nb = adj.get(g, {})
        if not nb:
            continue
        n = min(nb, key=lambda x: (nb[x][1], -nb[x][0], size[x], x))
        # merge g into n
        parent[g] = n
        size[n] += size[g]
        an = adj.setdefault(n, {})
        for x, (cnt, sd) in nb.items():
            ax = adj[x]
            del ax[g]
            if x == n:
                continue
            old = an.get(x, [0, np.inf])
            merged = [old[0] + cnt, min(old[1], sd)]
            an[x] = merged
            ax[n] = list(merged)
        an.pop(g, None)
        adj.pop(g, None)
        heapq.heappush(heap, (size[n], n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    return _relabel(labels, np.array([find(i) for i in range(k)], np.int64))


def _relabel(labels: np.ndarray, root: np.ndarray) -> np.ndarray:
    _, group = np.unique(root, return_inverse=True)
    out = np.full(labels.shape, -1, np.int32)
    valid = labels >= 0
    out[valid] = group.astype(np.int32)[labels[valid]]
    return out


def _merge_by_saddle(labels: np.ndarray, max_cells: int, z: np.ndarray) -> np.ndarray:
    """Kruskal over the divides: merge touching groups across the lowest saddle first while the union stays
    within ``max_cells``; the borders left are the highest divides the size cap allows."""
    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    size = np.bincount(labels[labels >= 0], minlength=k).astype(np.int64)
    adj = _adjacency(labels, z)
    pairs = sorted((v[1], a, b) for a, nb in adj.items() for b, v in nb.items() if a < b)
    parent = np.arange(k)

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for _, a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb and size[ra] + size[rb] <= max_cells:
            parent[rb] = ra
            size[ra] += size[rb]
    return _relabel(labels, np.array([find(i) for i in range(k)], np.int64))


def merge_catchments(labels: np.ndarray, *, target_cells: int, elevation: np.ndarray | None = None) -> np.ndarray:
    """Merge catchments into groups of about ``target_cells`` cells; group ids 0..g-1 (int32), -1 outside.

    With ``elevation``: first across the lowest divides (the saddle of two catchments is the lowest
    ``max(z_a, z_b)`` along their shared border) while a group stays within ``target_cells``, so the group
    borders left are the highest divides; then groups below a quarter of the target join the neighbour
    across their lowest saddle. Without it: the smallest group first, into the neighbour with the longest
    shared border, until every group holds ``target_cells``.
    """
    if target_cells < 1:
        raise TwinValueError(f"target_cells must be >= 1, got {target_cells}")
    if elevation is None:
        return _merge_smallest(labels, int(target_cells), None)
    z = np.asarray(elevation, np.float64)
    groups = _merge_by_saddle(labels, int(target_cells), z)
    return _merge_smallest(groups, max(1, int(target_cells) // 4), z)


@dataclass(eq=False)
class CatchmentRunResult:
    """Outputs of :func:`run_by_catchments`.

    Attributes
    ----------
    max_depth : ndarray float32 (rows, cols)
        Maximum depth (m), each cell from its own group's run; NaN outside the domain.
    groups : ndarray int32
        Final group of every cell (-1 outside).
    table : pandas.DataFrame
        One row per final group: ``group``, ``cells``, ``round`` (the round that produced it),
        ``overtopped`` (water deeper than ``overtop_depth_m`` in its buffer after the last round),
        ``buffer_max_depth_m``, ``reached`` (groups of the previous round its water reached),
        ``rain_m3``, ``outflow_m3``, ``volume_error``, ``seconds``.
    overtopped : list of dict
        Every overtopping seen, per round: group, round, depth (m), x, y of the deepest buffer cell and
        the neighbouring groups reached.
    rounds : int
    timings_s : dict
    """

    max_depth: np.ndarray
    groups: np.ndarray
    table: Any
    overtopped: list
    rounds: int
    timings_s: dict = field(default_factory=dict)


def _run_group(elev, box, lab, members, buffer_cells, transform_t, domain_shape, boundary, manning_n, rain_t,
               rain_i, duration_s, overtop_depth_m, options):
    from scipy import ndimage

    from twin.sim.heavyrain.forcing import RainGrid
    from twin.sim.heavyrain.model import HeavyRainModel

    t0 = time.perf_counter()
    r0, r1, c0, c1 = box
    z = np.asarray(elev[r0:r1, c0:c1], np.float64)
    own = np.isin(lab, members)
    active = ndimage.binary_dilation(own, structure=np.ones((3, 3), bool), iterations=int(buffer_cells)) & np.isfinite(z)
    zs = np.where(active, z, np.nan)
    nrows, ncols = domain_shape
    on_edge = {"north": r0 == 0, "south": r1 == nrows, "west": c0 == 0, "east": c1 == ncols}
    bc = {e: (boundary[e] if on_edge[e] else "closed") for e in _EDGES}
    from affine import Affine

    t = Affine(*transform_t) * Affine.translation(c0, r0)
    rain = RainGrid(np.asarray(rain_t), (np.asarray(rain_i, np.float32)[:, None, None] * own[None]).astype(np.float32))
    model = HeavyRainModel(zs, transform=t, manning_n=manning_n, boundary=bc, rain=rain, **options)
    model.run(float(duration_s))
    md = np.asarray(model.max_depth, np.float32)
    # the overtopping depth is read on the first ring across the divide: farther out, water that did cross
    # piles up against the buffer's artificial outer wall and would exaggerate it
    buf = ndimage.binary_dilation(own, structure=np.ones((3, 3), bool)) & active & ~own
    bmax = float(md[buf].max()) if buf.any() else 0.0
    reached, where = [], None
    if bmax > overtop_depth_m:
        wet = buf & (md > overtop_depth_m)
        reached = sorted(int(x) for x in np.unique(lab[wet]) if x >= 0 and x not in set(members))
        i = int(np.argmax(np.where(buf, md, -1.0)))
        rr, cc = divmod(i, md.shape[1])
        where = (t.c + (cc + 0.5) * t.a, t.f + (rr + 0.5) * t.e)
    wb = model.water_balance().to_dict()
    out = np.where(own, md, np.nan).astype(np.float32)
    return {"box": box, "depth": out, "buffer_max_depth_m": bmax, "reached_labels": reached, "where": where,
            "balance": wb, "seconds": time.perf_counter() - t0}


def run_by_catchments(elevation, *, transform, duration_s: float, rain, directions=None, target_cells: int = 250_000,
                      buffer_cells: int = 10, boundary: str | Mapping[str, str] = "open", manning_n: float = 0.03,
                      overtop_depth_m: float = 0.01, max_rounds: int = 3, client=None,
                      progress: bool | Callable[[int, int], None] = False, **model_options) -> CatchmentRunResult:
    """Heavy rain by catchments (see the module docstring).

    Parameters
    ----------
    elevation : array-like (rows, cols)
        Bed elevation (m), sliceable (numpy, zarr, :class:`twin.terrain.windows.RasterMosaic`); NaN outside.
    transform : affine.Affine
        North-up, square cells.
    duration_s : float
        Simulated time (s).
    rain : RainSeries
        Uniform rain in time (each group gets it on its own cells).
    directions : array-like, optional
        D8 codes (screening); default computed here (untiled) from ``elevation``.
    target_cells, buffer_cells, overtop_depth_m, max_rounds
        Group size, buffer width (cells), overtopping depth (m) and re-run rounds.
    boundary : str or mapping
        Domain edges: ``"open"`` or ``"closed"`` (one for all, or per edge).
    manning_n : float
    client : distributed.Client, optional
    **model_options
        Passed to :class:`~twin.sim.heavyrain.model.HeavyRainModel` (theta, cfl, h_min, ...).
    """
    import dask
    import pandas as pd

    from twin.cluster import compute
    from twin.sim.heavyrain.forcing import RainSeries

    if not isinstance(rain, RainSeries):
        raise TwinValueError("run_by_catchments takes a RainSeries (uniform in space); regrid a RainGrid per group "
                             "yourself or run simulate() on the whole domain")
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise TwinValueError(f"duration {duration_s} s must be > 0")
    if buffer_cells < 1 or max_rounds < 0:
        raise TwinValueError(f"buffer_cells ({buffer_cells}) must be >= 1 and max_rounds ({max_rounds}) >= 0")
    if isinstance(boundary, str):
        boundary = {e: boundary for e in _EDGES}
    bad = {e: v for e, v in boundary.items() if v not in ("open", "closed") or e not in _EDGES}
    if bad or set(boundary) != set(_EDGES):
        raise TwinValueError(f"boundary must be 'open' or 'closed' for each of {_EDGES}, got {dict(boundary)}")
    shape = tuple(int(s) for s in elevation.shape)
    t = {}
    t0 = time.perf_counter()
    if directions is None:
        from twin.sim.heavyrain.screening import flow_directions

        directions = flow_directions(np.asarray(elevation[:, :], np.float64), cell_size=float(transform.a))
    labels = catchment_labels(np.asarray(directions[:, :]))
    groups = merge_catchments(labels, target_cells=int(target_cells), elevation=np.asarray(elevation[:, :], np.float64))
    t["partition"] = time.perf_counter() - t0
    src = elevation if not isinstance(elevation, np.ndarray) else dask.delayed(elevation, pure=True)
    if client is not None and isinstance(elevation, np.ndarray):
        [src] = client.scatter([elevation], broadcast=False)
    tt = tuple(transform)[:6]
    common = dict(transform_t=tt, domain_shape=shape, boundary=dict(boundary), manning_n=float(manning_n),
                  rain_t=np.asarray(rain.times_s), rain_i=np.asarray(rain.intensity_mm_per_h),
                  duration_s=float(duration_s), overtop_depth_m=float(overtop_depth_m), options=model_options)

    def boxes_of(g):
        valid = g >= 0
        ids = g[valid]
        rr, cc = np.nonzero(valid)
        n = int(ids.max()) + 1 if ids.size else 0
        rmin = np.full(n, shape[0]); rmax = np.full(n, -1); cmin = np.full(n, shape[1]); cmax = np.full(n, -1)
        np.minimum.at(rmin, ids, rr); np.maximum.at(rmax, ids, rr)
        np.minimum.at(cmin, ids, cc); np.maximum.at(cmax, ids, cc)
        b = buffer_cells
        return [(max(0, int(rmin[i]) - b), min(shape[0], int(rmax[i]) + 1 + b),
                 max(0, int(cmin[i]) - b), min(shape[1], int(cmax[i]) + 1 + b)) for i in range(n)]

    def submit(g, which):
        boxes = boxes_of(g)
        jobs = []
        for i in which:
            r0, r1, c0, c1 = boxes[i]
            jobs.append(dask.delayed(_run_group, pure=True)(src, boxes[i], g[r0:r1, c0:c1], [i], buffer_cells,
                                                            **common))
        return compute(*jobs, client=client, progress=progress, desc="heavy rain: catchments")

    max_depth = np.full(shape, np.nan, np.float32)
    overtopped: list[dict] = []
    t0 = time.perf_counter()
    current = groups
    todo = list(range(int(current.max()) + 1 if current.size and current.max() >= 0 else 0))
    results: dict[int, dict] = {}
    round_of: dict[int, int] = {}
    rnd = 0
    while True:
        outs = submit(current, todo)
        for i, o in zip(todo, outs):
            results[i] = o
            round_of[i] = rnd
            r0, r1, c0, c1 = o["box"]
            own = current[r0:r1, c0:c1] == i
            max_depth[r0:r1, c0:c1][own] = o["depth"][own]
            if o["reached_labels"]:
                overtopped.append({"group": i, "round": rnd, "depth_m": o["buffer_max_depth_m"], "x": o["where"][0],
                                   "y": o["where"][1], "reached": o["reached_labels"]})
        flagged = [i for i in todo if results[i]["reached_labels"]]
        if not flagged or rnd >= max_rounds:
            break
        # merge every flagged group with the groups its water reached, run those merged groups again
        n = int(current.max()) + 1
        parent = list(range(n))

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x
        for i in flagged:
            for j in results[i]["reached_labels"]:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        root = np.array([find(x) for x in range(n)])
        changed_roots = {int(root[i]) for i in flagged}
        _, new_id = np.unique(root, return_inverse=True)
        nxt = np.where(current >= 0, new_id.astype(np.int32)[np.maximum(current, 0)], -1).astype(np.int32)
        old_results = {int(new_id[i]): results[i] for i in results if int(root[i]) == i and int(root[i]) not in changed_roots}
        old_rounds = {int(new_id[i]): round_of[i] for i in results if int(root[i]) == i and int(root[i]) not in changed_roots}
        todo = sorted({int(new_id[r]) for r in changed_roots})
        results, round_of = old_results, old_rounds
        current = nxt
        rnd += 1
    t["runs"] = time.perf_counter() - t0
    cells = np.bincount(current[current >= 0], minlength=int(current.max()) + 1 if current.max() >= 0 else 0)
    rows = []
    for i in sorted(results):
        o = results[i]
        b = o["balance"]
        rows.append({"group": i, "cells": int(cells[i]), "round": round_of[i],
                     "overtopped": bool(o["reached_labels"]), "buffer_max_depth_m": o["buffer_max_depth_m"],
                     "reached": o["reached_labels"], "rain_m3": b.get("rain_m3", np.nan),
                     "outflow_m3": b.get("outflow_m3", np.nan), "volume_error": b.get("relative_error", np.nan),
                     "seconds": o["seconds"]})
    return CatchmentRunResult(max_depth, current, pd.DataFrame(rows), overtopped, rnd + 1, t)
