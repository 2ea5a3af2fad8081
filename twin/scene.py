"""The scene graph: a city as a handful of columnar arrays and tables.

A :class:`Scene` is what every model and writer of twin reads. Geometry is columnar, in the
spirit of CityJSON: one float64 vertex array in the scene CRS, a triangle index array and one
value per triangle for the owning feature, its semantic surface, surface type and LOD. Features
(CityObjects), their attributes, semantic surfaces and appearance (materials and textures) are
pandas DataFrames keyed by integer ids, so a city of 100k buildings is a few arrays, not 100k
Python objects.

Layers (``buildings``, ``terrain``, ``vegetation``, ``furniture``, ``water``, ``transportation``,
``landuse``, ``generic``, ``other``) are a column of the feature table; :meth:`Scene.select` gives
the part of a scene that lies on some layers.

A scene saves to a folder (``scene.json`` + ``geometry.npz`` + Parquet tables) and loads back
losslessly: ``Scene.load(scene.save(path)) == scene``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd

from twin.crs import SceneCRS
from twin.errors import CRSError, SceneFormatError, TwinIOError

if TYPE_CHECKING:  # pragma: no cover
    from twin.grid import Grid, TerrainRaster

__all__ = ["Scene", "SURFACE_TYPES", "LAYERS", "surface_type_code"]

FORMAT_VERSION = 1

#: Semantic surface types; a triangle's ``triangle_surface_type`` is an index into this tuple
#: (0 = no semantics, e.g. a LoD1 solid or a MultiSurface outside any boundary surface).
SURFACE_TYPES: tuple[str, ...] = (
    "",
    "RoofSurface",
    "WallSurface",
    "GroundSurface",
    "ClosureSurface",
    "OuterCeilingSurface",
    "OuterFloorSurface",
    "Window",
    "Door",
    "InteriorWallSurface",
    "CeilingSurface",
    "FloorSurface",
    "WaterSurface",
    "WaterGroundSurface",
    "WaterClosureSurface",
    "TrafficArea",
    "AuxiliaryTrafficArea",
)
_SURFACE_CODE = {name: i for i, name in enumerate(SURFACE_TYPES)}

LAYERS: tuple[str, ...] = ("buildings", "terrain", "vegetation", "furniture", "water",
                           "transportation", "landuse", "generic", "other")


def surface_type_code(name: str) -> int:
    """The ``triangle_surface_type`` code of a semantic surface type name (0 when unknown)."""
    return _SURFACE_CODE.get(name, 0)


_FEATURE_COLUMNS = {"gml_id": "string", "type": "string", "parent": "int64", "root": "int64",
                    "layer": "string", "lod": "int8", "source": "string", "line": "int64"}
_SURFACE_COLUMNS = {"gml_id": "string", "type": "string", "feature": "int64"}
_MATERIAL_COLUMNS = {"theme": "string", "gml_id": "string", "diffuse_r": "float64",
                     "diffuse_g": "float64", "diffuse_b": "float64", "emissive_r": "float64",
                     "emissive_g": "float64", "emissive_b": "float64", "specular_r": "float64",
                     "specular_g": "float64", "specular_b": "float64", "ambient_intensity": "float64",
                     "shininess": "float64", "transparency": "float64", "is_smooth": "boolean"}
_TEXTURE_COLUMNS = {"theme": "string", "gml_id": "string", "image_uri": "string",
                    "image_path": "string", "mime_type": "string", "wrap_mode": "string"}
_IMPLICIT_COLUMNS = {"feature": "int64", "lod": "int8", "mime_type": "string",
                     "library_object": "string", "ref_x": "float64", "ref_y": "float64",
                     "ref_z": "float64", **{f"m{i}": "float64" for i in range(16)}}
_TIC_COLUMNS = {"feature": "int64", "x": "float64", "y": "float64", "z": "float64"}
_PROBLEM_COLUMNS = {"id": "string", "type": "string", "reason": "string", "line": "Int64",
                    "file": "string", "action": "string"}

_ARRAY_FIELDS = ("vertices", "uv", "triangles", "triangle_feature", "triangle_surface",
                 "triangle_surface_type", "triangle_lod", "triangle_material", "triangle_texture")
_TABLE_FIELDS = ("features", "attributes", "surfaces", "materials", "textures", "implicit", "problems",
                 "terrain_intersection")


def _empty(columns: dict[str, str], index_name: str | None = None) -> pd.DataFrame:
    df = pd.DataFrame({k: pd.Series(dtype=v) for k, v in columns.items()})
    if index_name:
        df.index.name = index_name
    return df


def empty_table(kind: str) -> pd.DataFrame:
    """An empty table of one of the scene's kinds, with the right columns and dtypes."""
    columns = {"features": _FEATURE_COLUMNS, "surfaces": _SURFACE_COLUMNS,
               "materials": _MATERIAL_COLUMNS, "textures": _TEXTURE_COLUMNS,
               "implicit": _IMPLICIT_COLUMNS, "problems": _PROBLEM_COLUMNS, "attributes": {},
               "terrain_intersection": _TIC_COLUMNS}[kind]
    index = {"features": "feature_id", "attributes": "feature_id", "surfaces": "surface_id",
             "materials": "material_id", "textures": "texture_id"}.get(kind)
    df = _empty(columns, index)
    if index:
        df.index = pd.RangeIndex(0, name=index)
    return df


def typed_table(kind: str, rows: dict[str, list] | pd.DataFrame) -> pd.DataFrame:
    """Build a scene table from column lists, casting to the documented dtypes."""
    base = empty_table(kind)
    df = pd.DataFrame(rows)
    for col, dtype in {"features": _FEATURE_COLUMNS, "surfaces": _SURFACE_COLUMNS,
                       "materials": _MATERIAL_COLUMNS, "textures": _TEXTURE_COLUMNS,
                       "implicit": _IMPLICIT_COLUMNS, "problems": _PROBLEM_COLUMNS,
                       "terrain_intersection": _TIC_COLUMNS}.get(kind, {}).items():
        if col not in df:
            df[col] = pd.Series([pd.NA] * len(df), dtype=dtype) if dtype in ("string", "Int64", "boolean") \
                else pd.Series(np.full(len(df), np.nan), dtype="float64")
        df[col] = df[col].astype(dtype)
    if base.index.name:
        df.index = pd.RangeIndex(len(df), name=base.index.name)
    else:
        df = df.reset_index(drop=True)
    return df


@dataclass(eq=False)
class Scene:
    """A city model: CRS, local frame, layers, features, attributes and columnar geometry.

    Attributes
    ----------
    crs : SceneCRS
        Horizontal and vertical CRS of ``vertices``.
    origin : ndarray, shape (3,)
        Origin of the scene's local frame, in scene CRS units (metres). Writers express geometry
        relative to it (3D Tiles: a local ENU frame at the origin).
    vertices : ndarray of float64, shape (n_vertices, 3)
        Vertex positions in the scene CRS (x = easting, y = northing, z = height, metres).
    uv : ndarray of float32, shape (n_vertices, 2)
        Texture coordinates, NaN where a vertex carries none.
    triangles : ndarray of int64, shape (n_triangles, 3)
        Vertex indices, counter-clockwise seen from outside (right-hand normal points outward).
    triangle_feature : ndarray of int32
        Feature id (row of ``features``) of each triangle.
    triangle_surface : ndarray of int32
        Semantic surface id (row of ``surfaces``) of each triangle, -1 for none.
    triangle_surface_type : ndarray of uint8
        Index into :data:`SURFACE_TYPES`.
    triangle_lod : ndarray of uint8
        Level of detail the triangle's geometry came from.
    triangle_material, triangle_texture : ndarray of int32
        Row of ``materials`` / ``textures``, -1 for none.
    features : DataFrame
        One row per feature (``feature_id`` index): ``gml_id``, ``type`` (CityGML class name),
        ``parent`` (feature id or -1), ``root`` (top-level feature id), ``layer``, ``lod`` (the LOD
        imported, -1 when the feature has no geometry), ``source`` (file), ``line``.
    attributes : DataFrame
        Thematic and generic attributes, same index as ``features``. Column types are recorded in
        ``attribute_types`` (``string``, ``int``, ``double``, ``date``, ``uri``, ``measure``).
    surfaces : DataFrame
        Semantic surfaces (``surface_id`` index): ``gml_id``, ``type``, ``feature``.
    materials, textures : DataFrame
        Appearance of one theme (``metadata["appearance_theme"]``).
    implicit : DataFrame
        Implicit geometries that could not be instanced (external library objects): reference
        point and 4x4 transformation matrix (row-major ``m0``..``m15``).
    terrain_intersection : DataFrame
        Points of the features' TerrainIntersectionCurves (``feature``, ``x``, ``y``, ``z``): where a
        building meets the ground, used to approximate terrain when no DEM is given.
    problems : DataFrame
        What the import reported: ``id``, ``type``, ``reason``, ``line``, ``file``, ``action``
        (``skipped`` when a feature or geometry was left out, ``warning`` otherwise).
    metadata : dict
        JSON-serialisable provenance: sources, reader options, themes found, software version.
    terrain : twin.grid.TerrainRaster or None
        Terrain model under the scene (saved as ``terrain.tif``); see ``twin.terrain.attach_terrain``.
    """

    crs: SceneCRS
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    vertices: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    uv: np.ndarray | None = None
    triangles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    triangle_feature: np.ndarray | None = None
    triangle_surface: np.ndarray | None = None
    triangle_surface_type: np.ndarray | None = None
    triangle_lod: np.ndarray | None = None
    triangle_material: np.ndarray | None = None
    triangle_texture: np.ndarray | None = None
    features: pd.DataFrame = field(default_factory=lambda: empty_table("features"))
    attributes: pd.DataFrame = field(default_factory=lambda: empty_table("attributes"))
    attribute_types: dict = field(default_factory=dict)
    surfaces: pd.DataFrame = field(default_factory=lambda: empty_table("surfaces"))
    materials: pd.DataFrame = field(default_factory=lambda: empty_table("materials"))
    textures: pd.DataFrame = field(default_factory=lambda: empty_table("textures"))
    implicit: pd.DataFrame = field(default_factory=lambda: empty_table("implicit"))
    problems: pd.DataFrame = field(default_factory=lambda: empty_table("problems"))
    terrain_intersection: pd.DataFrame = field(default_factory=lambda: empty_table("terrain_intersection"))
    metadata: dict = field(default_factory=dict)
    terrain: "TerrainRaster | None" = None

    def __post_init__(self) -> None:
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        self.triangles = np.ascontiguousarray(self.triangles, dtype=np.int64).reshape(-1, 3)
        n, m = len(self.vertices), len(self.triangles)
        if self.uv is None:
            self.uv = np.full((n, 2), np.nan, np.float32)
        self.uv = np.ascontiguousarray(self.uv, dtype=np.float32).reshape(-1, 2)
        defaults = {"triangle_feature": (np.int32, 0), "triangle_surface": (np.int32, -1),
                    "triangle_surface_type": (np.uint8, 0), "triangle_lod": (np.uint8, 0),
                    "triangle_material": (np.int32, -1), "triangle_texture": (np.int32, -1)}
        for name, (dtype, fill) in defaults.items():
            value = getattr(self, name)
            value = np.full(m, fill, dtype) if value is None else np.ascontiguousarray(value, dtype=dtype)
            setattr(self, name, value)
        self.validate()

    # ------------------------------------------------------------------ checks and summaries
    def validate(self) -> None:
        """Check array shapes and index ranges; raise ValueError naming the offending field."""
        n, m = len(self.vertices), len(self.triangles)
        if self.uv.shape != (n, 2):
            raise ValueError(f"uv has shape {self.uv.shape}, expected ({n}, 2)")
        for name in _ARRAY_FIELDS[3:]:
            if getattr(self, name).shape != (m,):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected ({m},)")
        if m and (self.triangles.min() < 0 or self.triangles.max() >= n):
            raise ValueError("triangles index vertices out of range")
        if m and len(self.features) and self.triangle_feature.max() >= len(self.features):
            raise ValueError("triangle_feature refers to a feature that does not exist")
        if len(self.attributes) != len(self.features):
            raise ValueError("attributes and features must have one row per feature")

    @property
    def n_triangles(self) -> int:
        return len(self.triangles)

    @property
    def bbox(self) -> tuple[float, float, float, float, float, float]:
        """``(minx, miny, minz, maxx, maxy, maxz)`` of the vertices used by triangles (plus implicit
        reference points); all NaN for an empty scene."""
        pts = self.vertices[np.unique(self.triangles)] if self.n_triangles else np.zeros((0, 3))
        if len(self.implicit):
            pts = np.vstack([pts, self.implicit[["ref_x", "ref_y", "ref_z"]].to_numpy(float)])
        if not len(pts):
            return (np.nan,) * 6
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        return tuple(float(v) for v in (*lo, *hi))

    @property
    def layers(self) -> list[str]:
        """The layers present, in :data:`LAYERS` order."""
        present = set(self.features["layer"].dropna().unique())
        return [name for name in LAYERS if name in present]

    def triangle_normals(self) -> np.ndarray:
        """Unit normals of the triangles (right-hand rule), shape (n_triangles, 3)."""
        v = self.vertices[self.triangles]
        nrm = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        length = np.linalg.norm(nrm, axis=1, keepdims=True)
        return np.divide(nrm, length, out=np.zeros_like(nrm), where=length > 0)

    def summary(self) -> dict:
        """What ``twin info --json`` prints: CRS, bbox, feature and surface counts, problems."""
        counts = {str(k): int(v) for k, v in self.features["type"].value_counts().sort_index().items()}
        surfaces = {str(k): int(v) for k, v in self.surfaces["type"].value_counts().sort_index().items()}
        bbox = self.bbox
        problems = [
            {"id": None if pd.isna(r.id) else str(r.id), "type": None if pd.isna(r.type) else str(r.type),
             "reason": str(r.reason), "line": None if pd.isna(r.line) else int(r.line),
             "file": None if pd.isna(r.file) else str(r.file), "action": str(r.action)}
            for r in self.problems.itertuples(index=False)
        ]
        return {
            "crs": {"horizontal": self.crs.horizontal, "vertical": self.crs.vertical,
                    "source": self.crs.source},
            "origin": [float(v) for v in self.origin],
            "bbox": [None if np.isnan(v) else v for v in bbox],
            "layers": self.layers,
            "counts": counts,
            "surfaces": surfaces,
            "triangles": int(self.n_triangles),
            "vertices": int(len(self.vertices)),
            "lods": sorted(int(v) for v in np.unique(self.triangle_lod)),
            "materials": int(len(self.materials)),
            "textures": int(len(self.textures)),
            "skipped": int((self.problems["action"] == "skipped").sum()),
            "problems": problems,
            "metadata": self.metadata,
        }

    # ------------------------------------------------------------------ selection and merging
    def select(self, *, layers: Iterable[str] | None = None, feature_types: Iterable[str] | None = None) -> "Scene":
        """A new scene with the features on ``layers`` / of ``feature_types`` and their geometry."""
        keep = np.ones(len(self.features), bool)
        if layers is not None:
            keep &= self.features["layer"].isin(list(layers)).to_numpy()
        if feature_types is not None:
            keep &= self.features["type"].isin(list(feature_types)).to_numpy()
        return self._subset(keep)

    def _subset(self, keep_features: np.ndarray) -> "Scene":
        fid_map = np.full(len(self.features), -1, np.int64)
        fid_map[keep_features] = np.arange(int(keep_features.sum()))
        tri_keep = keep_features[self.triangle_feature] if self.n_triangles else np.zeros(0, bool)
        tris = self.triangles[tri_keep]
        used = np.unique(tris)
        vmap = np.full(len(self.vertices), -1, np.int64)
        vmap[used] = np.arange(len(used))
        surf_keep = keep_features[self.surfaces["feature"].to_numpy()] if len(self.surfaces) else np.zeros(0, bool)
        smap = np.full(len(self.surfaces), -1, np.int64)
        smap[surf_keep] = np.arange(int(surf_keep.sum()))
        feats = self.features[keep_features].copy()
        for col in ("parent", "root"):
            vals = feats[col].to_numpy()
            feats[col] = np.where(vals >= 0, fid_map[np.maximum(vals, 0)], -1)
        feats.index = pd.RangeIndex(len(feats), name="feature_id")
        attrs = self.attributes[keep_features].copy()
        attrs.index = feats.index
        surfs = self.surfaces[surf_keep].copy()
        surfs["feature"] = fid_map[surfs["feature"].to_numpy()]
        surfs.index = pd.RangeIndex(len(surfs), name="surface_id")
        impl = self.implicit[keep_features[self.implicit["feature"].to_numpy()]].copy() if len(self.implicit) else self.implicit.copy()
        if len(impl):
            impl["feature"] = fid_map[impl["feature"].to_numpy()]
            impl = impl.reset_index(drop=True)
        tic = self.terrain_intersection
        tic = tic[keep_features[tic["feature"].to_numpy()]].copy() if len(tic) else tic.copy()
        if len(tic):
            tic["feature"] = fid_map[tic["feature"].to_numpy()]
            tic = tic.reset_index(drop=True)
        ts = self.triangle_surface[tri_keep]
        return Scene(crs=self.crs, origin=self.origin.copy(), vertices=self.vertices[used], uv=self.uv[used],
                     triangles=vmap[tris], triangle_feature=fid_map[self.triangle_feature[tri_keep]],
                     triangle_surface=np.where(ts >= 0, smap[np.maximum(ts, 0)], -1) if len(smap) else np.full(len(ts), -1),
                     triangle_surface_type=self.triangle_surface_type[tri_keep],
                     triangle_lod=self.triangle_lod[tri_keep], triangle_material=self.triangle_material[tri_keep],
                     triangle_texture=self.triangle_texture[tri_keep], features=feats, attributes=attrs,
                     attribute_types=dict(self.attribute_types), surfaces=surfs, materials=self.materials.copy(),
                     textures=self.textures.copy(), implicit=impl, problems=self.problems.copy(),
                     terrain_intersection=tic, terrain=self.terrain,
                     metadata=json.loads(json.dumps(self.metadata)))

    @classmethod
    def concat(cls, scenes: Sequence["Scene"], *, origin: np.ndarray | None = None) -> "Scene":
        """Merge scenes of the same CRS into one (ids are renumbered, problems kept).

        Raises
        ------
        CRSError
            If the scenes' CRSs differ; import them with one ``crs=`` or reproject first.
        """
        scenes = list(scenes)
        if not scenes:
            raise ValueError("concat needs at least one scene")
        if len(scenes) == 1:
            return scenes[0]
        crs0 = scenes[0].crs
        for s in scenes[1:]:
            if s.crs != crs0:
                raise CRSError(f"cannot merge scenes in different CRSs ({crs0} and {s.crs}, from "
                               f"{s.metadata.get('sources')}); import them separately or pass one crs=")
        voff = np.cumsum([0] + [len(s.vertices) for s in scenes])
        foff = np.cumsum([0] + [len(s.features) for s in scenes])
        soff = np.cumsum([0] + [len(s.surfaces) for s in scenes])
        moff = np.cumsum([0] + [len(s.materials) for s in scenes])
        toff = np.cumsum([0] + [len(s.textures) for s in scenes])

        def shift(a: np.ndarray, off: int) -> np.ndarray:
            return np.where(a >= 0, a + off, a)

        feats, surfs, impls = [], [], []
        for i, s in enumerate(scenes):
            f = s.features.copy()
            f["parent"] = shift(f["parent"].to_numpy(), foff[i])
            f["root"] = shift(f["root"].to_numpy(), foff[i])
            feats.append(f)
            sf = s.surfaces.copy()
            sf["feature"] = sf["feature"].to_numpy() + foff[i]
            surfs.append(sf)
            im = s.implicit.copy()
            im["feature"] = im["feature"].to_numpy() + foff[i]
            impls.append(im)
        attrs = pd.concat([s.attributes for s in scenes], ignore_index=True)
        attr_types: dict = {}
        for s in scenes:
            attr_types.update(s.attribute_types)
        meta = {"sources": [src for s in scenes for src in s.metadata.get("sources", [])],
                "parts": [s.metadata for s in scenes]}
        for key in ("appearance_theme", "lod", "reader"):
            vals = {json.dumps(s.metadata.get(key)) for s in scenes}
            if len(vals) == 1:
                meta[key] = scenes[0].metadata.get(key)
        verts = np.concatenate([s.vertices for s in scenes])
        out = cls(
            crs=crs0,
            origin=origin if origin is not None else _default_origin(verts),
            vertices=verts,
            uv=np.concatenate([s.uv for s in scenes]),
            triangles=np.concatenate([s.triangles + voff[i] for i, s in enumerate(scenes)]),
            triangle_feature=np.concatenate([s.triangle_feature + foff[i] for i, s in enumerate(scenes)]),
            triangle_surface=np.concatenate([shift(s.triangle_surface, soff[i]) for i, s in enumerate(scenes)]),
            triangle_surface_type=np.concatenate([s.triangle_surface_type for s in scenes]),
            triangle_lod=np.concatenate([s.triangle_lod for s in scenes]),
            triangle_material=np.concatenate([shift(s.triangle_material, moff[i]) for i, s in enumerate(scenes)]),
            triangle_texture=np.concatenate([shift(s.triangle_texture, toff[i]) for i, s in enumerate(scenes)]),
            features=_renumber(pd.concat(feats, ignore_index=True), "feature_id"),
            attributes=_renumber(attrs, "feature_id"),
            attribute_types=attr_types,
            surfaces=_renumber(pd.concat(surfs, ignore_index=True), "surface_id"),
            materials=_renumber(pd.concat([s.materials for s in scenes], ignore_index=True), "material_id"),
            textures=_renumber(pd.concat([s.textures for s in scenes], ignore_index=True), "texture_id"),
            implicit=pd.concat(impls, ignore_index=True),
            problems=pd.concat([s.problems for s in scenes], ignore_index=True),
            terrain_intersection=pd.concat([t.assign(feature=t["feature"].to_numpy() + foff[i]) for i, t in
                                            enumerate(s.terrain_intersection for s in scenes)], ignore_index=True),
            terrain=_common_terrain(scenes),
            metadata=meta,
        )
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the scene to a folder; refuse to replace an existing one unless ``overwrite``.

        Layout: ``scene.json`` (format version, CRS, origin, metadata, attribute types),
        ``geometry.npz`` (the arrays, uncompressed for fast loading) and one Parquet file per table.
        """
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise TwinIOError(f"{path} exists; pass overwrite=True (or --overwrite) to replace it")
            if not (path / "scene.json").exists() and any(path.iterdir()):
                raise TwinIOError(f"{path} exists and is not a twin scene folder; refusing to overwrite it")
            shutil.rmtree(path)
        tmp = path.with_name(path.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        np.savez(tmp / "geometry.npz", **{name: getattr(self, name) for name in _ARRAY_FIELDS})
        for name in _TABLE_FIELDS:
            getattr(self, name).to_parquet(tmp / f"{name}.parquet", index=True)
        header = {"format": "twin-scene", "format_version": FORMAT_VERSION, "crs": self.crs.to_dict(),
                  "origin": [float(v) for v in self.origin], "attribute_types": self.attribute_types,
                  "metadata": self.metadata, "counts": {"features": len(self.features),
                                                        "triangles": self.n_triangles}}
        (tmp / "scene.json").write_text(json.dumps(header, indent=1, default=str))
        if self.terrain is not None:
            self.terrain.to_geotiff(tmp / "terrain.tif")
        tmp.rename(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Scene":
        """Load a scene folder written by :meth:`save`."""
        path = Path(path)
        head_file = path / "scene.json"
        if not head_file.exists():
            raise SceneFormatError(f"{path} is not a twin scene folder (no scene.json); create one "
                                   "with `twin import CITYGML --out {path}`")
        head = json.loads(head_file.read_text())
        if head.get("format") != "twin-scene" or head.get("format_version", 0) > FORMAT_VERSION:
            raise SceneFormatError(f"{path}: format {head.get('format')} v{head.get('format_version')} "
                                   f"is not readable by this twin (reads v<={FORMAT_VERSION}); upgrade twin")
        try:
            with np.load(path / "geometry.npz") as npz:
                arrays = {name: npz[name] for name in _ARRAY_FIELDS}
            tables = {name: pd.read_parquet(path / f"{name}.parquet") for name in _TABLE_FIELDS}
        except (OSError, KeyError, ValueError) as exc:
            raise SceneFormatError(f"{path}: scene files are missing or damaged ({exc}); re-import it") from exc
        for name, idx in (("features", "feature_id"), ("attributes", "feature_id"),
                          ("surfaces", "surface_id"), ("materials", "material_id"), ("textures", "texture_id")):
            tables[name].index = pd.RangeIndex(len(tables[name]), name=idx)
        terrain = None
        if (path / "terrain.tif").exists():
            from twin.grid import TerrainRaster  # lazy: twin.grid imports nothing at twin.scene import

            terrain = TerrainRaster.from_geotiff(path / "terrain.tif")
        return cls(crs=SceneCRS.from_dict(head["crs"]), origin=np.asarray(head["origin"]),
                   attribute_types=head.get("attribute_types", {}), metadata=head.get("metadata", {}),
                   terrain=terrain, **arrays, **tables)

    def to_grid(self, resolution: float, *, bounds=None, **options) -> "Grid":
        """Burn the scene into a simulation grid; see :func:`twin.grid.scene_to_grid`."""
        from twin.grid import scene_to_grid

        return scene_to_grid(self, resolution, bounds=bounds, **options)

    # ------------------------------------------------------------------ comparison
    def equals(self, other: "Scene") -> bool:
        """True when both scenes hold the same CRS, frame, arrays (NaN == NaN) and tables."""
        if not isinstance(other, Scene) or self.crs != other.crs or self.crs.source != other.crs.source:
            return False
        if not np.array_equal(self.origin, other.origin):
            return False
        for name in _ARRAY_FIELDS:
            a, b = getattr(self, name), getattr(other, name)
            if a.dtype != b.dtype or a.shape != b.shape:
                return False
            if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                return False
        for name in _TABLE_FIELDS:
            a, b = getattr(self, name), getattr(other, name)
            if list(a.columns) != list(b.columns) or len(a) != len(b):
                return False
            try:
                pd.testing.assert_frame_equal(a, b, check_index_type=False, check_exact=True)
            except AssertionError:
                return False
        if (self.terrain is None) != (other.terrain is None) or (
                self.terrain is not None and not self.terrain.equals(other.terrain)):
            return False
        return (json.dumps(self.attribute_types, sort_keys=True) == json.dumps(other.attribute_types, sort_keys=True)
                and json.dumps(self.metadata, sort_keys=True, default=str)
                == json.dumps(other.metadata, sort_keys=True, default=str))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scene) and self.equals(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.features["type"].value_counts().items())
        return (f"<Scene crs={self.crs} features={len(self.features)} ({counts}) "
                f"triangles={self.n_triangles} layers={self.layers}>")


def _common_terrain(scenes: Sequence["Scene"]):
    """The terrain a merged scene keeps: the one raster its parts share (or the only one), else None.

    Parts with different terrain rasters are not mosaicked here; attach one terrain to the merged
    scene (``twin.terrain.attach_terrain``) instead.
    """
    rasters = [s.terrain for s in scenes if s.terrain is not None]
    if not rasters:
        return None
    first = rasters[0]
    return first if all(r is first or r.equals(first) for r in rasters[1:]) else None


def _renumber(df: pd.DataFrame, name: str) -> pd.DataFrame:
    df = df.copy()
    df.index = pd.RangeIndex(len(df), name=name)
    return df


def _default_origin(vertices: np.ndarray) -> np.ndarray:
    """Centre of the xy extent at the lowest height, rounded to whole metres."""
    if not len(vertices):
        return np.zeros(3)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    return np.round(np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]]))
