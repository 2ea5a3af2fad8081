"""Terrain -> mesh tiles, result drapes (colour-mapped textures) and water surfaces.

The terrain raster is cut into a quadtree of tiles of ``tile_cells`` x ``tile_cells`` quads. A
tile at level ``l`` samples the raster every ``2**(L - l)`` cells (``L`` = leaf level, full
resolution), so it is a decimated TIN of the raster (a regular one); its geometric error is the
measured largest vertical difference between the raster and the tile's surface (bilinear estimate),
and never below a child's. Neighbouring tiles of one level sample the very same raster cells on
their shared edge, so they meet without cracks; where tiles of different levels meet
(``refine: REPLACE``), skirts (a curtain hanging from every boundary edge, as deep as twice the
tile's error and at least 2 m) hide the gaps. Vertices sit at cell centres; triangles touching a
nodata cell are left out.

A drape is the same geometry with a texture: a result field (any 2-D raster on x/y in the scene
CRS) sampled at the texture's pixel centres (nearest cell) and colour-mapped. A water surface is
the terrain raised by a depth field, only where a triangle has a vertex at least
``transparent_below`` deep, translucent, coloured by depth.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.tiles._glb import ELEMENT_ARRAY_BUFFER, GlbBuilder
from twin.tiles._png import encode_png
from twin.tiles._tileset import asset, box_from_bounds, write_json
from twin.tiles.colormaps import COLORMAPS, apply_colormap
from twin.tiles.frame import LocalFrame

__all__ = ["TerrainPyramid", "FieldSampler", "write_terrain", "write_drape", "write_water_surface", "drape_metadata",
           "drape_schema"]

_TERRAIN_COLOUR = [0.55, 0.60, 0.47, 1.0]


@dataclass
class TerrainTile:
    level: int
    x: int
    y: int
    xy: np.ndarray          # (n, 2) scene coordinates of the vertices (skirts included)
    enu: np.ndarray         # (n, 3)
    tris: np.ndarray        # (k, 3) surface and skirt triangles
    n_surface_tris: int
    extent: tuple[float, float, float, float]   # west, south, east, north of the samples
    error: float
    children: list["TerrainTile"] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"{self.level}/{self.x}/{self.y}.glb"


class FieldSampler:
    """Nearest-cell lookup in a 2-D field given by its cell-centre coordinates ``x``, ``y``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, values: np.ndarray) -> None:
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        v = np.asarray(values, np.float64)
        if v.shape != (len(y), len(x)):
            raise ValueError(f"field shape {v.shape} does not match y ({len(y)}) x x ({len(x)})")
        if len(x) > 1 and x[1] < x[0]:
            x, v = x[::-1], v[:, ::-1]
        if len(y) > 1 and y[1] < y[0]:
            y, v = y[::-1], v[::-1]
        self.x, self.y, self.values = x, y, v
        self.dx = float(x[1] - x[0]) if len(x) > 1 else 1.0
        self.dy = float(y[1] - y[0]) if len(y) > 1 else 1.0

    @property
    def resolution(self) -> float:
        return min(abs(self.dx), abs(self.dy))

    def __call__(self, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        c = np.rint((np.asarray(px) - self.x[0]) / self.dx).astype(np.int64)
        r = np.rint((np.asarray(py) - self.y[0]) / self.dy).astype(np.int64)
        ok = (c >= 0) & (c < len(self.x)) & (r >= 0) & (r < len(self.y))
        out = np.full(np.shape(px), np.nan)
        out[ok] = self.values[r[ok], c[ok]]
        return out


def _samples(start: int, step: int, tile_cells: int, n: int) -> np.ndarray:
    end = min(start + tile_cells * step, n - 1)
    s = np.arange(start, end + 1, step)
    if s[-1] != end:
        s = np.append(s, end)
    return s


class TerrainPyramid:
    """The terrain tiles' geometry, computed once and shared by terrain, drapes and water."""

    def __init__(self, terrain, frame: LocalFrame, *, tile_cells: int = 128) -> None:
        self.terrain = terrain
        self.frame = frame
        self.tile_cells = int(tile_cells)
        data = terrain.data
        rows, cols = data.shape
        if rows < 2 or cols < 2:
            raise ValueError(f"terrain raster {data.shape} is too small to mesh (needs 2 x 2 cells)")
        n_tiles = max(math.ceil((cols - 1) / self.tile_cells), math.ceil((rows - 1) / self.tile_cells), 1)
        self.levels = max(0, math.ceil(math.log2(n_tiles)))
        self.root = self._build(0, 0, 0)

    def tiles(self):
        stack = [self.root]
        while stack:
            t = stack.pop()
            yield t
            stack.extend(t.children)

    def _build(self, level: int, x: int, y: int) -> TerrainTile | None:
        data = self.terrain.data
        rows, cols = data.shape
        step = 2 ** (self.levels - level)
        c0, r0 = x * self.tile_cells * step, y * self.tile_cells * step
        if c0 >= cols - 1 or r0 >= rows - 1:
            return None
        cs = _samples(c0, step, self.tile_cells, cols)
        rs = _samples(r0, step, self.tile_cells, rows)
        z = data[np.ix_(rs, cs)].astype(np.float64)
        tile = self._mesh(level, x, y, rs, cs, z, self._error(rs, cs, z, step))
        if tile is None:
            return None
        if level < self.levels:
            for k in range(4):
                child = self._build(level + 1, 2 * x + (k & 1), 2 * y + (k >> 1))
                if child is not None:
                    tile.children.append(child)
            if tile.children:
                tile.error = max(tile.error, max(c.error for c in tile.children) * 1.001 + 1e-3)
        return tile

    def _error(self, rs: np.ndarray, cs: np.ndarray, z: np.ndarray, step: int) -> float:
        if step == 1:
            return 0.0
        stride = max(1, step // 8)   # the estimate looks at every (step/8)th cell
        fr = np.arange(rs[0], rs[-1] + 1, stride)
        fc = np.arange(cs[0], cs[-1] + 1, stride)
        full = self.terrain.data[np.ix_(fr, fc)].astype(np.float64)

        def weights(full_idx, coarse_idx):
            k = np.clip(np.searchsorted(coarse_idx, full_idx, side="right") - 1, 0, len(coarse_idx) - 2)
            t = (full_idx - coarse_idx[k]) / (coarse_idx[k + 1] - coarse_idx[k])
            return k, t

        kr, tr = weights(fr, rs)
        kc, tc = weights(fc, cs)
        tr, tc = tr[:, None], tc[None, :]
        approx = ((1 - tr) * ((1 - tc) * z[np.ix_(kr, kc)] + tc * z[np.ix_(kr, kc + 1)])
                  + tr * ((1 - tc) * z[np.ix_(kr + 1, kc)] + tc * z[np.ix_(kr + 1, kc + 1)]))
        d = np.abs(full - approx)
        return float(np.nanmax(d)) if np.isfinite(d).any() else 0.0

    def _mesh(self, level, x, y, rs, cs, z, error) -> TerrainTile | None:
        t = self.terrain.transform
        nr, nc = z.shape
        gx = t.c + (cs + 0.5) * t.a
        gy = t.f + (rs + 0.5) * t.e
        X, Y = np.meshgrid(gx, gy)
        idx = np.arange(nr * nc).reshape(nr, nc)
        a, b_, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
        # rows run south (row index grows southwards): (a, c, b) is counter-clockwise seen from above
        tris = np.concatenate([np.column_stack([a, c, b_]), np.column_stack([b_, c, d])])
        zf = z.ravel()
        tris = tris[np.isfinite(zf[tris]).all(axis=1)]
        if not len(tris):
            return None
        used, inv = np.unique(tris, return_inverse=True)
        tris = inv.reshape(-1, 3)
        xy = np.column_stack([X.ravel()[used], Y.ravel()[used]])
        zz = zf[used]
        n_surface = len(tris)
        # skirts on boundary edges
        e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
        key = np.minimum(e[:, 0], e[:, 1]) * len(xy) + np.maximum(e[:, 0], e[:, 1])
        uk, counts = np.unique(key, return_counts=True)
        boundary = e[np.isin(key, uk[counts == 1])]
        if len(boundary):
            bverts, binv = np.unique(boundary, return_inverse=True)
            sk = len(xy) + np.arange(len(bverts))
            depth = max(2.0 * error, 2.0)
            xy = np.vstack([xy, xy[bverts]])
            zz = np.concatenate([zz, zz[bverts] - depth])
            bi = sk[binv.reshape(-1, 2)]
            # boundary edge (p, q) runs counter-clockwise around the tile: the skirt faces outward
            skirt = np.concatenate([np.column_stack([boundary[:, 1], boundary[:, 0], bi[:, 0]]),
                                    np.column_stack([boundary[:, 1], bi[:, 0], bi[:, 1]])])
            tris = np.concatenate([tris, skirt])
        enu = self.frame.to_local(np.column_stack([xy, zz]))
        extent = (float(gx.min()), float(gy.min()), float(gx.max()), float(gy.max()))
        return TerrainTile(level, x, y, xy, enu, tris, n_surface, extent, error)


# ---------------------------------------------------------------------------------------- glb
def _mesh_glb(enu: np.ndarray, tris: np.ndarray, *, quantize: bool, material: dict,
              uv: np.ndarray | None = None, image: bytes | None = None) -> bytes:
    g = np.column_stack([enu[:, 0], enu[:, 2], -enu[:, 1]])
    p = g[tris]
    fn = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    vn = np.zeros_like(g)
    for k in range(3):
        for a in range(3):
            vn[:, a] += np.bincount(tris[:, k], weights=fn[:, a], minlength=len(g))
    ln = np.linalg.norm(vn, axis=1, keepdims=True)
    vn = np.where(ln > 0, vn / np.where(ln > 0, ln, 1), np.array([0.0, 1.0, 0.0]))
    b = GlbBuilder()
    node: dict = {"mesh": 0}
    if quantize:
        glo, ghi = g.min(axis=0), g.max(axis=0)
        scale = np.maximum(ghi - glo, 1e-6) / 65535.0
        pos = b.add_accessor(np.round((g - glo) / scale).astype(np.uint16), "VEC3", minmax=True)
        nrm = b.add_accessor(np.round(vn * 127).astype(np.int8), "VEC3", normalized=True)
        node["translation"], node["scale"] = [float(v) for v in glo], [float(v) for v in scale]
        b.use_extension("KHR_mesh_quantization", required=True)
    else:
        centre = (g.min(axis=0) + g.max(axis=0)) / 2
        pos = b.add_accessor((g - centre).astype(np.float32), "VEC3", minmax=True)
        nrm = b.add_accessor(vn.astype(np.float32), "VEC3")
        node["translation"] = [float(v) for v in centre]
    attrs = {"POSITION": pos, "NORMAL": nrm}
    mat = {"pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 1.0}, "doubleSided": True, **material}
    if uv is not None and image is not None:
        if quantize:
            attrs["TEXCOORD_0"] = b.add_accessor(np.round(np.clip(uv, 0, 1) * 65535).astype(np.uint16), "VEC2",
                                                 normalized=True)
        else:
            attrs["TEXCOORD_0"] = b.add_accessor(uv.astype(np.float32), "VEC2")
        sampler = b.add("samplers", {"magFilter": 9728, "minFilter": 9728, "wrapS": 33071, "wrapT": 33071})
        tex = b.add("textures", {"source": b.add_image(image, "image/png"), "sampler": sampler})
        mat["pbrMetallicRoughness"]["baseColorTexture"] = {"index": tex}
    b.add("materials", mat)
    idx_dtype = np.uint16 if len(g) < 65535 else np.uint32
    ind = b.add_accessor(tris.reshape(-1).astype(idx_dtype), "SCALAR", target=ELEMENT_ARRAY_BUFFER)
    b.add("meshes", {"primitives": [{"attributes": attrs, "indices": ind, "material": 0, "mode": 4}]})
    b.add("nodes", node)
    b.gltf["scenes"] = [{"nodes": [0]}]
    b.gltf["scene"] = 0
    return b.to_bytes()


def _texture(tile: TerrainTile, sampler: FieldSampler, style: dict, *, max_px: int = 512) -> tuple[np.ndarray, bytes]:
    w, s, e, n = tile.extent
    res = sampler.resolution
    nx = int(min(max_px, max(2, math.ceil((e - w) / res))))
    ny = int(min(max_px, max(2, math.ceil((n - s) / res))))
    px = w + (np.arange(nx) + 0.5) * (e - w) / nx
    py = n - (np.arange(ny) + 0.5) * (n - s) / ny
    vals = sampler(*np.meshgrid(px, py))
    rgba = apply_colormap(vals, style["colormap"], style["vmin"], style["vmax"],
                          transparent_below=style.get("transparent_below"))
    uv = np.column_stack([(tile.xy[:, 0] - w) / max(e - w, 1e-9), (n - tile.xy[:, 1]) / max(n - s, 1e-9)])
    return uv, encode_png(rgba)


# ---------------------------------------------------------------------------------------- tilesets
def _write_tileset(pyramid: TerrainPyramid, out_dir: Path, glb_of, *, gzip_json: bool, metadata: dict | None,
                   schema: dict | None) -> dict:
    """Write every tile's glb (``glb_of(tile) -> bytes | None``) and the tileset; returns stats."""
    stats = {"tiles": 0, "content_bytes": 0}

    def node(t: TerrainTile) -> dict | None:
        kids = [k for k in (node(c) for c in t.children) if k is not None]
        data = glb_of(t)
        j: dict = {"geometricError": float(t.error), "refine": "REPLACE"}
        lo, hi = None, None
        if data is not None:
            glb, lo, hi = data
            path = out_dir / "tiles" / t.uri
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(glb)
            stats["tiles"] += 1
            stats["content_bytes"] += len(glb)
            j["content"] = {"uri": f"tiles/{t.uri}", "boundingVolume": {"box": box_from_bounds(lo, hi)}}
        if kids:
            klo = np.min([k["_lo"] for k in kids], axis=0)
            khi = np.max([k["_hi"] for k in kids], axis=0)
            lo = klo if lo is None else np.minimum(lo, klo)
            hi = khi if hi is None else np.maximum(hi, khi)
            j["children"] = kids
        if lo is None:
            return None
        j["boundingVolume"] = {"box": box_from_bounds(lo, hi, pad=0.02 + 0.01 * (pyramid.levels - t.level))}
        j["_lo"], j["_hi"] = lo, hi
        return j

    root = node(pyramid.root)

    def strip(j):
        j.pop("_lo", None)
        j.pop("_hi", None)
        for k in j.get("children", []):
            strip(k)
    if root is None:
        root = {"boundingVolume": {"box": box_from_bounds(np.zeros(3), np.zeros(3))}, "geometricError": 0.0,
                "refine": "REPLACE"}
    strip(root)
    if pyramid.frame.georeferenced:
        root["transform"] = pyramid.frame.transform_column_major()
    ts: dict = {"asset": asset(), "geometricError": max(float(root["geometricError"]) * 2, 10.0), "root": root}
    if schema is not None:
        ts["schema"] = schema
        ts["metadata"] = metadata
    stats["tileset_bytes"] = write_json(out_dir / "tileset.json", ts, gzip_sibling=gzip_json)
    return stats


def write_terrain(pyramid: TerrainPyramid, out_dir: str | os.PathLike, *, quantize: bool = True,
                  gzip_json: bool = False) -> dict:
    """The terrain as mesh tiles: ``out_dir/tileset.json`` + ``out_dir/tiles/{l}/{x}/{y}.glb``."""
    out_dir = Path(out_dir)

    def glb_of(t: TerrainTile):
        return (_mesh_glb(t.enu, t.tris, quantize=quantize, material={"name": "terrain", "pbrMetallicRoughness": {
            "baseColorFactor": _TERRAIN_COLOUR, "metallicFactor": 0.0, "roughnessFactor": 1.0}}),
            t.enu.min(axis=0), t.enu.max(axis=0))
    return _write_tileset(pyramid, out_dir, glb_of, gzip_json=gzip_json, metadata=None, schema=None)


def drape_schema() -> dict:
    """The tileset-level schema of drape and water layers (colour map and value range)."""
    props = {"field": {"type": "STRING"}, "units": {"type": "STRING"}, "colormap": {"type": "STRING"},
             "vmin": {"type": "SCALAR", "componentType": "FLOAT64"},
             "vmax": {"type": "SCALAR", "componentType": "FLOAT64"},
             "transparentBelow": {"type": "SCALAR", "componentType": "FLOAT64"},
             "stops": {"type": "SCALAR", "componentType": "UINT8", "array": True,
                       "description": "RGB stops, evenly spaced from vmin to vmax (3 numbers each)"},
             "run": {"type": "STRING"}, "timeSeconds": {"type": "SCALAR", "componentType": "FLOAT64"}}
    return {"id": "twin_drape", "classes": {"drape": {"name": "result drape", "properties": props}}}


def drape_metadata(field_name: str, units: str | None, style: dict, *, run: str, time_s: float | None) -> dict:
    props = {"field": field_name, "units": units or "", "colormap": style["colormap"],
             "vmin": float(style["vmin"]), "vmax": float(style["vmax"]),
             "stops": [int(c) for rgb in COLORMAPS[style["colormap"]] for c in rgb], "run": run}
    if style.get("transparent_below") is not None:
        props["transparentBelow"] = float(style["transparent_below"])
    if time_s is not None:
        props["timeSeconds"] = float(time_s)
    return {"class": "drape", "properties": props}


def write_drape(pyramid: TerrainPyramid, out_dir, sampler: FieldSampler, style: dict, *, meta: dict,
                quantize: bool = True, gzip_json: bool = False) -> dict:
    """The terrain textured with a colour-mapped field (``style``: colormap, vmin, vmax,
    transparent_below; transparent pixels show the plain terrain colour underneath)."""
    out_dir = Path(out_dir)

    def glb_of(t: TerrainTile):
        uv, png = _texture(t, sampler, style)
        return (_mesh_glb(t.enu, t.tris, quantize=quantize, uv=uv, image=png,
                          material={"name": f"drape {meta['properties']['field']}", "alphaMode": "MASK",
                                    "alphaCutoff": 0.5}),
                t.enu.min(axis=0), t.enu.max(axis=0))
    return _write_tileset(pyramid, out_dir, glb_of, gzip_json=gzip_json, metadata=meta, schema=drape_schema())


def write_water_surface(pyramid: TerrainPyramid, out_dir, sampler: FieldSampler, style: dict, *, meta: dict,
                        quantize: bool = True, gzip_json: bool = False) -> dict:
    """A translucent water surface at terrain + depth where it is at least ``transparent_below`` deep.

    Depth is added along the origin's up axis; over a 10 km scene the local vertical tilts by
    < 0.1 degrees from it, a sideways shift under 2 mm per metre of depth.
    """
    out_dir = Path(out_dir)
    thr = style.get("transparent_below") or 0.01

    def glb_of(t: TerrainTile):
        n_vert = len(t.xy)
        depth = sampler(t.xy[:, 0], t.xy[:, 1])
        surf = t.tris[:t.n_surface_tris]
        d = np.nan_to_num(depth, nan=0.0)
        wet = (d[surf] >= thr).any(axis=1)
        if not wet.any():
            return None
        tris = surf[wet]
        used, inv = np.unique(tris, return_inverse=True)
        enu = t.enu[used].copy()
        enu[:, 2] += np.maximum(d[used], 0.0)
        sub = TerrainTile(t.level, t.x, t.y, t.xy[used], enu, inv.reshape(-1, 3), len(tris), t.extent, t.error)
        uv, png = _texture(sub, sampler, style)
        glb = _mesh_glb(enu, sub.tris, quantize=quantize, uv=uv, image=png,
                        material={"name": "water surface", "alphaMode": "BLEND", "pbrMetallicRoughness": {
                            "baseColorFactor": [1.0, 1.0, 1.0, 0.8], "metallicFactor": 0.0, "roughnessFactor": 0.2}})
        del n_vert
        return glb, enu.min(axis=0), enu.max(axis=0)
    return _write_tileset(pyramid, out_dir, glb_of, gzip_json=gzip_json, metadata=meta, schema=drape_schema())
