"""Screening by raster tiles on Dask: depression filling, D8 directions and flow accumulation, equal to the
untiled :mod:`twin.sim.heavyrain.screening` cell for cell.

Priority-Flood is global (a cell's fill level depends on the whole domain), so tiles with a halo are
not enough. The tiled run works in five Dask stages, each task holding one tile (plus a window):

1. **Tile floods** (Barnes 2016, "Parallel Priority-Flood depression filling for trillion cell digital
   elevation models", Computers & Geosciences 96:56): every tile is filled with all its edge cells as
   outlets; each cell is labelled by the edge cell (or the domain's outside) whose flood reached it,
   and where two labels meet (inside the tile, or across a tile edge) a border-graph edge records the
   spill elevation.
2. **Border graph** (driver, small: tile-edge cells only): Priority-Flood on the graph from the
   domain's outside gives every label its water level; the filled DEM is ``max(tile fill, level)``.
   Exact: the same minimax path values as the untiled fill (Barnes 2016, Theorem 1).
3. **Epsilon fill and D8 by windows.** The untiled D8 runs on the Priority-Flood+epsilon surface,
   whose one-ulp steps on flats depend on the order in which the flood reaches them. That order is
   local to each *level region* (an 8-connected set of cells with the same filled elevation): it is
   entered only from its own cells at the spill level next to lower cells, in flat-index order, and
   its epsilon values depend only on its cells, its ring and that order. So each tile takes a window
   (tile + halo) of the DEM, checks with the exact filled DEM that every level region touching the
   tile (and its one-cell ring) lies inside the window, grows the halo until it does, and runs the
   untiled kernels (``priority_flood_fill`` with epsilon, ``d8_directions``) on the window. The
   argument needs the epsilon steps never to reach another level: adjacent distinct filled levels
   must lie more than N float64 steps apart (N = cells of the domain; any float32 DEM at N < 2^28,
   cm-rounded DEMs at any size). It is checked on every window; a DEM that fails it raises.
4. **Flow accumulation** (tile sums + a border DAG): each tile accumulates its own cells and records
   where flow leaves it; the driver sums along the exit-to-exit DAG and each tile adds its inflows.
   Cell counts are summed as float64 integers and multiplied by the cell area at the end, so the
   result equals the untiled sum exactly where the cell area is an integer or a power-of-two
   fraction of a square metre (1, 2, 5, 0.5 m cells, ...).
5. **Outputs** per tile into a Zarr group (``filled``, ``filled_depth``, ``d8``,
   ``flow_accumulation``) or, without a store, into memory.

The depression hierarchy, Fill-Spill-Merge, flow-path polylines and building exposure stay untiled
(:func:`twin.sim.heavyrain.screening.screen`); they take the rasters this module produces.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from twin.errors import TwinValueError

__all__ = ["TiledScreeningResult", "tiled_screening"]


def _k():
    from twin.sim.heavyrain import _tiled_kernels

    return _tiled_kernels


def _sk():
    from twin.sim.heavyrain import _screening_kernels

    return _screening_kernels


@dataclass(eq=False)
class TiledScreeningResult:
    """Rasters of :func:`tiled_screening`: numpy arrays (in memory) or zarr arrays (with a store).

    Attributes
    ----------
    filled : array, float64
        Depression-filled DEM (m); equals ``fill_depressions(dem)``.
    filled_depth : array, float32
        ``filled - dem`` (m), NaN outside the domain.
    directions : array, int8
        D8 codes on the epsilon-filled DEM; equals ``flow_directions(dem)``.
    upstream_area_m2 : array, float64
        D8 flow accumulation (m2); equals ``flow_accumulation(directions=...)``.
    tiles : int
    halo_cells : dict
        Final halo of each tile's epsilon window (row, col) -> cells.
    graph : dict
        Sizes of the border graphs (nodes, edges) of the fill and of the accumulation.
    timings_s : dict
    """

    filled: Any
    filled_depth: Any
    directions: Any
    upstream_area_m2: Any
    tiles: int
    halo_cells: dict
    graph: dict
    timings_s: dict
    store: str | None = None
    memory: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ tasks
def _window(src, r0, r1, c0, c1, nrows, ncols, halo):
    """src[r0-halo : r1+halo, c0-halo : c1+halo] clipped to the domain, float64; with the halos present."""
    a0, a1 = max(0, r0 - halo), min(nrows, r1 + halo)
    b0, b1 = max(0, c0 - halo), min(ncols, c1 + halo)
    z = np.ascontiguousarray(np.asarray(src[a0:a1, b0:b1], dtype=np.float64))
    return z, np.array([r0 - a0, a1 - r1, c0 - b0, b1 - c1], np.int64)


def _tile_flood(src, r0, r1, c0, c1, nrows, ncols):
    z, halo = _window(src, r0, r1, c0, c1, nrows, ncols, 2)
    out = np.empty((r1 - r0, c1 - c0))
    lab = np.empty((r1 - r0, c1 - c0), np.int64)
    ea, eb, ew = _k().tile_fill(z, halo, r0, c0, nrows, ncols, out, lab)
    return out, lab, z[halo[0]:z.shape[0] - halo[1], halo[2]:z.shape[1] - halo[3]]


def _dedupe(a, b, w):
    """One edge per unordered pair, the lowest spill."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if not len(lo):
        return lo, hi, w
    order = np.lexsort((w, hi, lo))
    lo, hi, w = lo[order], hi[order], w[order]
    first = np.ones(len(lo), bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[first], hi[first], w[first]


def _stage1(src, r0, r1, c0, c1, nrows, ncols):
    z, halo = _window(src, r0, r1, c0, c1, nrows, ncols, 2)
    out = np.empty((r1 - r0, c1 - c0))
    lab = np.empty((r1 - r0, c1 - c0), np.int64)
    ea, eb, ew = _k().tile_fill(z, halo, r0, c0, nrows, ncols, out, lab)
    return _dedupe(ea, eb, ew)


def _stage2(src, r0, r1, c0, c1, nrows, ncols, labels, levels, sink):
    out, lab, z = _tile_flood(src, r0, r1, c0, c1, nrows, ncols)
    lv = np.full(lab.shape, -np.inf)
    has = lab >= 0
    pos = np.searchsorted(labels, lab[has])
    if len(labels) == 0 or np.any(pos >= len(labels)) or np.any(labels[np.minimum(pos, len(labels) - 1)] != lab[has]):
        raise RuntimeError(f"tile ({r0}, {c0}): a label has no level in the border graph")  # internal invariant
    lv[has] = levels[pos]
    filled = np.where(np.isnan(z), np.nan, np.maximum(out, lv))
    if sink is None:
        return filled
    sink["filled"][r0:r1, c0:c1] = filled
    sink["filled_depth"][r0:r1, c0:c1] = (filled - z).astype(np.float32)
    return None


def _stage3(src, fsrc, r0, r1, c0, c1, nrows, ncols, cell, halo0, sink):
    """Epsilon fill + D8 on a window whose level regions around the tile are complete; local accumulation."""
    k = _k()
    sk = _sk()
    halo = int(halo0)
    while True:
        f, hw = _window(fsrc, r0, r1, c0, c1, nrows, ncols, halo)
        h, w = f.shape
        # core dilated by one cell (the D8 of a core cell reads its 8 neighbours), in window coordinates
        a0, a1 = max(0, hw[0] - 1), min(h, h - hw[1] + 1)
        b0, b1 = max(0, hw[2] - 1), min(w, w - hw[3] + 1)
        open_t, open_b = r0 - hw[0] > 0, r1 + hw[1] < nrows
        open_l, open_r = c0 - hw[2] > 0, c1 + hw[3] < ncols
        if k.equal_regions_inside(f, a0, a1, b0, b1, open_t, open_b, open_l, open_r):
            break
        if not (open_t or open_b or open_l or open_r):
            break  # the window is the whole domain
        halo *= 2
    gap = k.min_level_gap_ulps(f)
    if gap <= nrows * ncols:
        raise TwinValueError(
            f"tiles ({r0}:{r1}, {c0}:{c1}): two adjacent fill levels lie only {gap:.0f} float64 steps apart "
            f"(<= {nrows * ncols} cells), so the flat-resolving epsilon could climb from one to the other and the "
            "tiled result could differ from the untiled one; round the DEM (e.g. to float32 or mm) or screen it untiled")
    z, _ = _window(src, r0, r1, c0, c1, nrows, ncols, halo)
    eps = np.empty(z.size)
    sk.priority_flood_fill(z.ravel(), h, w, True, eps)
    d8w = np.empty((h, w), np.int8)
    sk.d8_directions(eps.reshape(h, w), cell, cell, d8w)
    d8 = np.ascontiguousarray(d8w[hw[0]:h - hw[1], hw[2]:w - hw[3]])
    th, tw = d8.shape
    weights = (d8 != -3).astype(np.float64)
    acc = np.empty((th, tw))
    exit_of = np.empty((th, tw), np.int64)
    k.tile_accumulation(d8, weights, np.zeros((th, tw)), acc, exit_of)
    # exits: cells pointing outside the tile (the target is in the domain: D8 never points outside it)
    rr, cc = np.nonzero((exit_of == np.arange(th * tw).reshape(th, tw)))
    code = d8[rr, cc].astype(np.int64)
    dr = np.array([-1, -1, 0, 1, 1, 1, 0, -1])[code]
    dc = np.array([0, 1, 1, 1, 0, -1, -1, -1])[code]
    ex_g = (r0 + rr) * ncols + (c0 + cc)
    ex_t = (r0 + rr + dr) * ncols + (c0 + cc + dc)
    ex_acc = acc[rr, cc]
    # entries: every tile-edge cell and the exit its flow reaches (-1: ends inside the tile)
    edge = np.zeros((th, tw), bool)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    er, ec = np.nonzero(edge)
    e_g = (r0 + er) * ncols + (c0 + ec)
    xo = exit_of[er, ec]
    e_exit = np.where(xo >= 0, (r0 + xo // tw) * ncols + (c0 + xo % tw), -1)
    summary = (ex_g, ex_t, ex_acc, e_g, e_exit, halo)
    if sink is None:
        return summary, d8
    sink["d8"][r0:r1, c0:c1] = d8
    return summary, None


def _stage5(d8, inj_idx, inj_val, r0, r1, c0, c1, ncols, cell_area, sink):
    k = _k()
    d8 = np.ascontiguousarray(np.asarray(d8[r0:r1, c0:c1] if sink is not None else d8, np.int8))
    th, tw = d8.shape
    inject = np.zeros((th, tw))
    if len(inj_idx):
        lr = inj_idx // ncols - r0
        lc = inj_idx % ncols - c0
        np.add.at(inject, (lr, lc), inj_val)
    acc = np.empty((th, tw))
    exit_of = np.empty((th, tw), np.int64)
    k.tile_accumulation(d8, (d8 != -3).astype(np.float64), inject, acc, exit_of)
    area = acc * cell_area
    area[d8 == -3] = np.nan
    if sink is None:
        return area
    sink["flow_accumulation"][r0:r1, c0:c1] = area
    return None


# ------------------------------------------------------------------------------------------ driver
def _csr(n, a, b, w):
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    ww = np.concatenate([w, w])
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.add.at(indptr, src + 1, 1)
    return np.cumsum(indptr), dst[order].astype(np.int64), ww[order]


def tiled_screening(dem, *, cell_size: float, tile: int = 1024, halo_cells: int = 32, client=None,
                    store: str | os.PathLike | None = None, progress: bool | Callable[[int, int], None] = False,
                    overwrite: bool = False) -> TiledScreeningResult:
    """Filled DEM, D8 directions and flow accumulation of a DEM by tiles, equal to the untiled screening.

    Parameters
    ----------
    dem : array-like, shape (rows, cols)
        Anything sliced as ``dem[r0:r1, c0:c1]``: a numpy array, a zarr array, a
        :class:`twin.terrain.windows.RasterMosaic` (GeoTIFF/COG windows; never read whole). Elevations
        in metres, NaN outside the domain. For a scene grid pass
        ``screening_surface(grid)`` (buildings raised to their tops).
    cell_size : float
        Square cell size (m).
    tile : int
        Tile side (cells); each task holds about ``(tile + 2 halo)^2 * 80`` bytes.
    halo_cells : int
        First halo of the epsilon windows (grows by doubling where a flat or filled depression reaches
        further).
    client : distributed.Client, optional
        From :func:`twin.cluster.dask_client`; None runs on threads in this process.
    store : path, optional
        A Zarr group to write the rasters into (chunk = tile); then nothing whole is held in memory and
        the result holds zarr arrays. Without it the rasters come back as numpy arrays.
    progress : bool or callable(done, total)
    overwrite : bool
        Replace an existing ``store``.

    Raises
    ------
    TwinValueError
        Bad shapes or sizes, or a DEM whose fill levels are too close for an exact tiled epsilon fill.
    """
    import dask

    from twin.cluster import compute

    shape = tuple(int(s) for s in getattr(dem, "shape", ()))
    if len(shape) != 2 or min(shape) < 1:
        raise TwinValueError(f"the DEM must be a non-empty 2-D raster, got shape {shape}")
    if not (math.isfinite(cell_size) and cell_size > 0):
        raise TwinValueError(f"cell_size must be a positive number of metres, got {cell_size!r}")
    if int(tile) < 8 or int(halo_cells) < 1:
        raise TwinValueError(f"tile ({tile}) must be >= 8 cells and halo_cells ({halo_cells}) >= 1")
    nrows, ncols = shape
    tile = int(tile)
    t = {}
    boxes = [(r0, min(r0 + tile, nrows), c0, min(c0 + tile, ncols))
             for r0 in range(0, nrows, tile) for c0 in range(0, ncols, tile)]
    src = dem
    if isinstance(dem, np.ndarray):
        src = np.ascontiguousarray(dem, dtype=np.float64)
    if client is not None and isinstance(src, np.ndarray):
        [src] = client.scatter([src], broadcast=False)
    elif isinstance(src, np.ndarray):
        src = dask.delayed(src, pure=True)
    sink = None
    if store is not None:
        import zarr

        store = os.path.abspath(store)  # workers may run in another directory
        if os.path.exists(store) and not overwrite:
            from twin.errors import TwinIOError

            raise TwinIOError(f"{store} exists; pass overwrite=True (--overwrite) to replace it")
        g = zarr.open_group(str(store), mode="w")
        ch = (tile, tile)
        sink = {"filled": g.create_array("filled", shape=shape, chunks=ch, dtype="f8", fill_value=np.nan),
                "filled_depth": g.create_array("filled_depth", shape=shape, chunks=ch, dtype="f4", fill_value=np.nan),
                "d8": g.create_array("d8", shape=shape, chunks=ch, dtype="i1", fill_value=-3),
                "flow_accumulation": g.create_array("flow_accumulation", shape=shape, chunks=ch, dtype="f8",
                                                    fill_value=np.nan)}
        g.attrs.update({"cell_size_m": float(cell_size), "tile": tile, "d8_codes":
                        "0..7 = N, NE, E, SE, S, SW, W, NW; -1 out of the domain; -2 pit; -3 outside (NaN)"})
    d = dask.delayed

    # 1. tile floods -> border graph
    t0 = time.perf_counter()
    parts = compute(*[d(_stage1, pure=True)(src, *b, nrows, ncols) for b in boxes], client=client,
                    progress=progress, desc="fill: tiles")
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    w = np.concatenate([p[2] for p in parts])
    a, b, w = _dedupe(a, b, w)
    nodes = np.unique(np.concatenate([[-1], a, b]))  # -1 (OCEAN) first
    n = len(nodes)
    indptr, indices, weights = _csr(n, np.searchsorted(nodes, a), np.searchsorted(nodes, b), w)
    level = np.empty(n)
    _k().graph_minimax(n, indptr, indices, weights, 0, level)
    t["fill_tiles"] = time.perf_counter() - t0
    graph = {"fill_nodes": int(n), "fill_edges": int(len(a))}

    # 2. filled DEM per tile
    t0 = time.perf_counter()
    jobs = []
    for (r0, r1, c0, c1) in boxes:
        border = _border_ids(r0, r1, c0, c1, ncols)
        sel = np.isin(nodes, border) | (nodes == -1)
        jobs.append(d(_stage2, pure=True)(src, r0, r1, c0, c1, nrows, ncols, nodes[sel], level[sel], sink))
    filled_tiles = compute(*jobs, client=client, progress=progress, desc="fill: levels")
    t["fill_levels"] = time.perf_counter() - t0
    if sink is None:
        filled = _assemble(filled_tiles, boxes, shape, np.float64)
        fsrc = filled
        if client is not None:
            [fsrc] = client.scatter([filled], broadcast=False)
        else:
            fsrc = d(filled, pure=True)
    else:
        filled = fsrc = sink["filled"]

    # 3. epsilon windows, D8, local accumulation
    t0 = time.perf_counter()
    out3 = compute(*[d(_stage3, pure=True)(src, fsrc, *bx, nrows, ncols, float(cell_size), halo_cells, sink)
                     for bx in boxes], client=client, progress=progress, desc="d8: windows")
    t["d8_windows"] = time.perf_counter() - t0

    # 4. accumulation DAG over tile exits
    t0 = time.perf_counter()
    ex_g = np.concatenate([o[0][0] for o in out3])
    ex_t = np.concatenate([o[0][1] for o in out3])
    ex_acc = np.concatenate([o[0][2] for o in out3])
    e_g = np.concatenate([o[0][3] for o in out3])
    e_exit = np.concatenate([o[0][4] for o in out3])
    halos = {(bx[0], bx[2]): int(o[0][5]) for bx, o in zip(boxes, out3)}
    order = np.argsort(e_g)
    e_g, e_exit = e_g[order], e_exit[order]
    pos = np.searchsorted(e_g, ex_t)  # every exit target is an edge cell of its tile
    downstream_exit = e_exit[pos]
    xorder = np.argsort(ex_g)
    ex_g, ex_t, ex_acc, downstream_exit = ex_g[xorder], ex_t[xorder], ex_acc[xorder], downstream_exit[xorder]
    tgt = np.where(downstream_exit >= 0, np.searchsorted(ex_g, downstream_exit), -1)
    total = np.empty(len(ex_g))
    _k().dag_totals(len(ex_g), ex_acc, tgt.astype(np.int64), total)
    graph.update(accumulation_exits=int(len(ex_g)))
    t["accumulation_graph"] = time.perf_counter() - t0

    # 5. accumulation with inflows per tile
    t0 = time.perf_counter()
    jobs = []
    for i, (r0, r1, c0, c1) in enumerate(boxes):
        rr, cc = ex_t // ncols, ex_t % ncols
        m = (rr >= r0) & (rr < r1) & (cc >= c0) & (cc < c1)
        dsrc = out3[i][1] if sink is None else sink["d8"]
        jobs.append(d(_stage5, pure=True)(dsrc, ex_t[m], total[m], r0, r1, c0, c1, ncols,
                                          float(cell_size) ** 2, sink))
    acc_tiles = compute(*jobs, client=client, progress=progress, desc="accumulation")
    t["accumulation_tiles"] = time.perf_counter() - t0
    if sink is None:
        directions = _assemble([o[1] for o in out3], boxes, shape, np.int8)
        area = _assemble(acc_tiles, boxes, shape, np.float64)
        z = np.asarray(dem[:, :], np.float64)
        depth = (filled - z).astype(np.float32)
        return TiledScreeningResult(filled, depth, directions, area, len(boxes), halos, graph, t)
    return TiledScreeningResult(sink["filled"], sink["filled_depth"], sink["d8"], sink["flow_accumulation"],
                                len(boxes), halos, graph, t, store=str(store))


def _border_ids(r0, r1, c0, c1, ncols):
    rows = np.arange(r0, r1)
    cols = np.arange(c0, c1)
    ids = np.concatenate([r0 * ncols + cols, (r1 - 1) * ncols + cols, rows * ncols + c0, rows * ncols + c1 - 1])
    return np.unique(ids)


def _assemble(tiles, boxes, shape, dtype):
    out = np.empty(shape, dtype)
    for a, (r0, r1, c0, c1) in zip(tiles, boxes):
        out[r0:r1, c0:c1] = a
    return out
