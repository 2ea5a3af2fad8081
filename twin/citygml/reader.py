"""Streaming CityGML 1.0 / 2.0 / 3.0 reader into a :class:`twin.scene.Scene`.

The document is parsed with lxml ``iterparse`` one top-level member (``cityObjectMember``,
``appearanceMember``, ``featureMember``) at a time; each member is turned into feature rows,
semantic surfaces and polygon rings and then dropped, so memory stays bounded by the largest
member plus the scene being built. Rings are triangulated in batches by a Numba kernel
(:mod:`twin.citygml._kernels`); polygons with holes go through mapbox-earcut.

XLinks (``xlink:href="#id"``) are resolved inside their member first. References that cross
members (forward or backward) are collected and resolved by one more streaming pass that picks
up only the referenced elements; a reference that points nowhere is reported, never fatal.

Every broken feature is reported (gml:id, reason, line) and skipped; the rest imports. A
truncated document imports what came before the break and reports it.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from lxml import etree

from twin.crs import SceneCRS, parse_crs
from twin.errors import CityGMLError, CRSError, HostileXMLError, TwinValueError
from twin.scene import Scene, _default_origin, empty_table, surface_type_code, typed_table

from twin.citygml import _xml
from twin.citygml._kernels import triangulate_rings

__all__ = ["open_citygml", "read_citygml"]

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
GML_IDS = ("{http://www.opengis.net/gml}id", "{http://www.opengis.net/gml/3.2}id")
GML_NS = ("http://www.opengis.net/gml", "http://www.opengis.net/gml/3.2")

_LOD_PROP = re.compile(r"^lod([0-4])(.+)$")
_SURFACE_GEOMETRY_KINDS = {"Solid", "MultiSurface", "Geometry", "FootPrint", "RoofEdge", "MultiSolid",
                           "Surface", "CompositeSurface"}
_IMPLICIT_KINDS = {"ImplicitRepresentation"}

# CityObject classes (CityGML 1.0/2.0/3.0) -> layer
_LAYER_OF = {
    **dict.fromkeys(["Building", "BuildingPart", "BuildingInstallation", "BuildingConstructiveElement"], "buildings"),
    **dict.fromkeys(["ReliefFeature", "TINRelief", "RasterRelief", "MassPointRelief", "BreaklineRelief"], "terrain"),
    **dict.fromkeys(["SolitaryVegetationObject", "PlantCover"], "vegetation"),
    "CityFurniture": "furniture",
    **dict.fromkeys(["WaterBody"], "water"),
    **dict.fromkeys(["Road", "Railway", "Track", "Square", "TransportationComplex", "TrafficArea",
                     "AuxiliaryTrafficArea", "Section", "Intersection", "Waterway", "TrafficSpace",
                     "AuxiliaryTrafficSpace"], "transportation"),
    "LandUse": "landuse",
    **dict.fromkeys(["GenericCityObject", "GenericOccupiedSpace", "GenericUnoccupiedSpace",
                     "GenericLogicalSpace", "GenericThematicSurface", "CityObjectGroup"], "generic"),
    **dict.fromkeys(["Bridge", "BridgePart", "BridgeInstallation", "BridgeConstructionElement",
                     "Tunnel", "TunnelPart", "TunnelInstallation", "OtherConstruction"], "other"),
}
# interior features: not part of an exterior city model; skipped and counted
_INTERIOR = {"Room", "IntBuildingInstallation", "BuildingFurniture", "BuildingRoom", "Storey",
             "IntBridgeInstallation", "BridgeRoom", "BridgeFurniture", "IntTunnelInstallation",
             "HollowSpace", "TunnelFurniture", "BuildingUnit"}
_FEATURE_TYPES = set(_LAYER_OF) | _INTERIOR

# semantic surfaces (and openings) -> name in twin.scene.SURFACE_TYPES
_SURFACE_NAME = {
    "RoofSurface": "RoofSurface", "WallSurface": "WallSurface", "GroundSurface": "GroundSurface",
    "ClosureSurface": "ClosureSurface", "OuterCeilingSurface": "OuterCeilingSurface",
    "OuterFloorSurface": "OuterFloorSurface", "Window": "Window", "Door": "Door",
    "WindowSurface": "Window", "DoorSurface": "Door", "InteriorWallSurface": "InteriorWallSurface",
    "CeilingSurface": "CeilingSurface", "FloorSurface": "FloorSurface", "WaterSurface": "WaterSurface",
    "WaterGroundSurface": "WaterGroundSurface", "WaterClosureSurface": "WaterClosureSurface",
}
_INTERIOR_SURFACES = {"InteriorWallSurface", "CeilingSurface", "FloorSurface"}
_POLYGONS = {"Polygon", "Triangle", "PolygonPatch", "Rectangle"}
_AGGREGATES = {"MultiSurface", "CompositeSurface", "Shell", "Solid", "MultiSolid", "CompositeSolid",
               "MultiGeometry", "GeometricComplex", "TriangulatedSurface", "Tin", "PolyhedralSurface",
               "Surface", "CompositeGeometry"}
_NON_SURFACES = {"LineString", "MultiCurve", "CompositeCurve", "Curve", "Point", "MultiPoint",
                 "OrientableCurve", "LinearRing", "Ring"}

_STRUCTURE = {"boundedBy", "boundary", "appearance", "externalReference", "generalizesTo",
              "relatedTo", "relativeToTerrain", "relativeToWater", "creationDate", "terminationDate",
              "lod", "consistsOfBuildingPart", "outerBuildingInstallation", "interiorBuildingInstallation",
              "interiorRoom", "address", "genericAttribute", "groupMember", "parent", "tin",
              "reliefComponent", "extent", "dynamizer", "interiorFurniture", "room", "buildingRoom",
              "buildingFurniture", "buildingInstallation", "buildingPart", "buildingConstructiveElement",
              "buildingSubdivision", "lodXImplicitRepresentation", "height", "pointCloud",
              "relatedTo", "adeOfAbstractBuilding", "storey", "roomInstallation"}
_TYPED_INT = {"storeysAboveGround", "storeysBelowGround", "yearOfConstruction", "yearOfDemolition"}
_TYPED_DOUBLE = {"measuredHeight", "trunkDiameter", "crownDiameter", "averageHeight"}
_GEN_TYPES = {"stringAttribute": "string", "intAttribute": "int", "doubleAttribute": "double",
              "dateAttribute": "date", "uriAttribute": "uri", "measureAttribute": "measure",
              "StringAttribute": "string", "IntAttribute": "int", "DoubleAttribute": "double",
              "DateAttribute": "date", "UriAttribute": "uri", "MeasureAttribute": "measure",
              "CodeAttribute": "string"}
_BATCH_RINGS = 40000
_PARALLEL_MIN_BYTES = 8 << 20
_SPLIT_MIN_BYTES = 32 << 20
_MIN_AREA_M2 = 1e-9


_LOCAL: dict = {}
_ELEM = etree.Element   # iterchildren(_ELEM): element children only, filtered in C


def _local(tag) -> str:
    """Local name of a (namespaced) tag; cached, since a document uses a few hundred tags at most."""
    name = _LOCAL.get(tag)
    if name is None:
        name = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        if len(_LOCAL) < 10000:
            _LOCAL[tag] = name
    return name


def _gml_id(el) -> str | None:
    return el.get(GML_IDS[0]) or el.get(GML_IDS[1])


def _children(el):
    """Element children only (no comments, PIs or entities), filtered in C."""
    return el.iterchildren(etree.Element)


def _text(el) -> str:
    return (el.text or "").strip()


class _FeatureError(Exception):
    """A feature that cannot be imported (reported and skipped)."""


class _Ctx:
    __slots__ = ("fid", "surface", "stype", "lod", "flip", "transform", "seen", "member")

    def __init__(self, fid, surface, stype, lod, flip, transform, seen, member):
        self.fid, self.surface, self.stype, self.lod = fid, surface, stype, lod
        self.flip, self.transform, self.seen, self.member = flip, transform, seen, member

    def with_(self, **kw) -> "_Ctx":
        c = _Ctx(self.fid, self.surface, self.stype, self.lod, self.flip, self.transform, self.seen, self.member)
        for k, v in kw.items():
            setattr(c, k, v)
        return c


class _Member:
    """Per-member state: the lazily built gml:id index for resolving local XLinks."""

    __slots__ = ("el", "_index", "gml_ns")

    def __init__(self, el, gml_ns):
        self.el, self._index, self.gml_ns = el, None, gml_ns

    def lookup(self, ident: str):
        if self._index is None:
            self._index = {}
            for ns in GML_NS:
                for e in self.el.xpath(".//*[@g:id]", namespaces={"g": ns}):
                    self._index[e.get("{%s}id" % ns)] = e
        return self._index.get(ident)


class _Builder:
    """Accumulates one document's scene while it streams past."""

    def __init__(self, path: Path, *, lod: int | None, crs: SceneCRS | None, theme: str | None) -> None:
        self.path = path
        self.source = str(path)
        self.want_lod = lod
        self.user_crs = crs
        self.crs: SceneCRS | None = crs
        self.theme = theme
        self.srs_seen: dict[str, int] = defaultdict(int)
        self.citygml_ns: set[str] = set()
        # feature table
        self.f_gml_id: list = []
        self.f_type: list = []
        self.f_parent: list = []
        self.f_root: list = []
        self.f_layer: list = []
        self.f_lod: list = []
        self.f_line: list = []
        self.f_attrs: list[dict] = []
        self.attr_types: dict[str, dict] = {}
        # surfaces
        self.s_gml_id: list = []
        self.s_type: list = []
        self.s_feature: list = []
        # implicit geometries without instanced geometry
        self.implicit_rows: list[dict] = []
        self.problems: list[dict] = []
        # polygon batch (pending triangulation)
        self.b_rings: list[np.ndarray] = []
        self.b_poly: list[tuple] = []   # (first ring, n rings, fid, surface, stype, lod, flip, poly_no, el line, ident)
        self.b_ring_ids: list = []
        self.n_polys = 0
        # output chunks
        self.vert_chunks: list[np.ndarray] = []
        self.n_verts = 0
        self.tri_chunks: list[np.ndarray] = []
        self.tri_attr_chunks: list[np.ndarray] = []   # (n, 4) int64: feature, surface, stype, lod
        self.n_tris = 0
        # id -> geometry location, for appearances: polygon number ranges and ring vertex ranges
        self.geom_index: dict[str, tuple[int, int]] = {}
        self.ring_index: dict[str, tuple[int, int]] = {}
        self.poly_tri_start: list[int] = []
        self.poly_tri_end: list[int] = []
        # cross-member xlinks: target id -> list of contexts
        self.pending: dict[str, list[tuple[_Ctx, int | None]]] = defaultdict(list)
        self.appearances: list[dict] = []
        self.themes: list[str] = []
        self.interior_skipped: dict[str, int] = defaultdict(int)
        self.unknown_geometry: dict[str, int] = defaultdict(int)
        self.feature_lods: dict[int, int] = {}
        self.tic_chunks: list[np.ndarray] = []
        self.tic_feature: list[np.ndarray] = []

    # ------------------------------------------------------------------ problems
    def problem(self, ident, ftype, reason, line, action="skipped") -> None:
        self.problems.append({"id": ident, "type": ftype, "reason": reason, "line": line,
                              "file": self.source, "action": action})

    # ------------------------------------------------------------------ CRS
    def see_srs(self, srs: str, el) -> None:
        self.srs_seen[srs] += 1
        if self.srs_seen[srs] > 1:
            return
        try:
            parsed = parse_crs(srs)
        except CRSError as exc:
            if self.user_crs is None and self.crs is None:
                raise CRSError(f"{self.path}: line {el.sourceline}: {exc}") from exc
            return
        if self.crs is None:
            self.crs = parsed
        elif parsed != self.crs and self.user_crs is None:
            if parsed.horizontal != self.crs.horizontal or (parsed.vertical and self.crs.vertical
                                                            and parsed.vertical != self.crs.vertical):
                self.problem(_gml_id(el), _local(el.tag),
                             f"srsName {srs!r} differs from the document's CRS {self.crs}; coordinates "
                             "are kept as they are (not reprojected)", el.sourceline, "warning")

    # ------------------------------------------------------------------ features
    def feature(self, el, parent: int, root: int | None, member: _Member) -> int:
        ftype = _local(el.tag)
        fid = len(self.f_gml_id)
        root = fid if root is None else root
        self.f_gml_id.append(_gml_id(el))
        self.f_type.append(ftype)
        self.f_parent.append(parent)
        self.f_root.append(root)
        self.f_layer.append(_LAYER_OF.get(ftype, "other"))
        self.f_lod.append(-1)
        self.f_line.append(el.sourceline or -1)
        attrs: dict = {}
        self.f_attrs.append(attrs)
        geoms: dict[int, list] = defaultdict(list)
        surfaces: list[tuple[int, object, dict]] = []   # (surface id, element, lod -> props)
        nested = []
        tin_lod = None
        for child in el.iterchildren(_ELEM):
            info = _TAG_INFO.get(child.tag) or _tag_info(child.tag)
            name, lod, kind = info
            if lod >= 0:
                if kind in _SURFACE_GEOMETRY_KINDS:
                    geoms[lod].append(child)
                elif kind in _IMPLICIT_KINDS:
                    geoms[lod].append(child)
                elif kind in ("TerrainIntersection", "TerrainIntersectionCurve"):
                    self._terrain_intersection(child, fid)
                continue
            if name in ("boundedBy", "boundary"):
                for s in child.iterchildren(_ELEM):
                    if _local(s.tag) in _SURFACE_NAME:
                        self._surface(s, fid, surfaces)
                    elif _local(s.tag) in _FEATURE_TYPES:   # 3.0 boundary may hold other features
                        nested.append(s)
                continue
            if name == "tin":
                geoms[-2].append(child)   # LoD set below from the relief's own lod
                continue
            if name == "lod" and ftype.endswith("Relief"):
                try:
                    tin_lod = int(_text(child))
                except ValueError:
                    tin_lod = None
                attrs["lod"] = _text(child)
                self._type_attr("lod", "string")
                continue
            if name == "appearance":
                for a in child.iterchildren(_ELEM):
                    self.appearance(a, member)
                continue
            kids = list(child.iterchildren(_ELEM))
            if kids and _local(kids[0].tag) in _FEATURE_TYPES:
                for k in kids:
                    if _local(k.tag) in _INTERIOR:
                        self.interior_skipped[_local(k.tag)] += 1
                    else:
                        nested.append(k)
                continue
            self._attribute(child, name, kids, attrs)
        if -2 in geoms:
            geoms.setdefault(tin_lod if tin_lod is not None else 1, []).extend(geoms.pop(-2))
        # choose the LOD: the highest the feature (or its surfaces) has, or the one asked for
        available = set(geoms)
        for _, _, slods in surfaces:
            available |= set(slods)
        lod = None
        if available:
            lod = self.want_lod if self.want_lod is not None else max(available)
            if lod not in available:
                lod = None
        if lod is not None:
            self.f_lod[fid] = lod
            seen: set = set()
            base = _Ctx(fid, -1, 0, lod, False, None, seen, member)
            for sid, sel, slods in surfaces:
                stype = surface_type_code(self.s_type[sid])
                for prop in slods.get(lod, ()):
                    self.member_geometry(prop, base.with_(surface=sid, stype=stype))
            for prop in geoms.get(lod, ()):
                if _LOD_PROP.match(_local(prop.tag)) and _local(prop.tag).endswith("ImplicitRepresentation"):
                    self.implicit(prop, base)
                else:
                    self.member_geometry(prop, base)
        for k in nested:
            self.feature(k, fid, root, member)
        return fid

    def _terrain_intersection(self, prop, fid: int) -> None:
        """Keep the points of a TerrainIntersectionCurve (where the feature meets the ground)."""
        for pl in prop.iter("{*}posList", "{*}pos"):
            try:
                vals = np.fromstring(pl.text or "", sep=" ")
            except ValueError:
                continue
            dim = int(pl.get("srsDimension") or 3)
            if dim == 3 and vals.size % 3 == 0 and vals.size:
                self.tic_chunks.append(vals.reshape(-1, 3))
                self.tic_feature.append(np.full(vals.size // 3, fid, np.int64))

    def _surface(self, s, fid: int, out: list) -> None:
        sname = _local(s.tag)
        sid = len(self.s_gml_id)
        self.s_gml_id.append(_gml_id(s))
        self.s_type.append(_SURFACE_NAME[sname])
        self.s_feature.append(fid)
        lods: dict[int, list] = defaultdict(list)
        openings = []
        for c in s.iterchildren(_ELEM):
            cname, clod, ckind = _TAG_INFO.get(c.tag) or _tag_info(c.tag)
            if clod >= 0 and ckind in _SURFACE_GEOMETRY_KINDS:
                lods[clod].append(c)
            elif cname in ("opening", "fillingSurface"):
                for o in c.iterchildren(_ELEM):
                    if _local(o.tag) in _SURFACE_NAME:
                        openings.append(o)
        out.append((sid, s, lods))
        for o in openings:
            self._surface(o, fid, out)

    def _type_attr(self, name: str, kind: str, uom: str | None = None) -> None:
        prev = self.attr_types.get(name)
        if prev is None:
            self.attr_types[name] = {"type": kind, **({"uom": uom} if uom else {})}
        elif prev["type"] != kind:
            numeric = {"int", "double", "measure"}
            if prev["type"] in numeric and kind in numeric:
                prev["type"] = "double" if "measure" not in (prev["type"], kind) else "measure"
            else:
                prev["type"] = "string"

    def _attribute(self, child, name: str, kids: list, attrs: dict) -> None:
        if name in _GEN_TYPES or name == "genericAttribute" or name in ("genericAttributeSet", "GenericAttributeSet"):
            for key, kind, value, uom in self._generic(child, name, ""):
                if key in ("name", "function", "usage", "class") and key in attrs:
                    key = "gen:" + key
                attrs[key] = value
                self._type_attr(key, kind, uom)
            return
        if name == "address":
            addr = _address(child)
            if addr:
                attrs["address"] = addr if "address" not in attrs else attrs["address"] + " | " + addr
                self._type_attr("address", "string")
            return
        if kids or name in _STRUCTURE:
            return
        text = _text(child)
        if not text:
            return
        if name in _TYPED_INT:
            try:
                attrs[name] = int(float(text))
                self._type_attr(name, "int")
                return
            except ValueError:
                pass
        if name in _TYPED_DOUBLE:
            try:
                attrs[name] = float(text)
                self._type_attr(name, "measure" if child.get("uom") else "double", child.get("uom"))
                return
            except ValueError:
                pass
        if name in attrs:
            attrs[name] = f"{attrs[name]}; {text}"
        else:
            attrs[name] = text
        self._type_attr(name, "string")

    def _generic(self, el, name: str, prefix: str):
        """Yield (name, type, value, uom) for a generic attribute element (2.0 or 3.0 style)."""
        if name == "genericAttribute":   # 3.0 wrapper property
            for c in el.iterchildren(_ELEM):
                yield from self._generic(c, _local(c.tag), prefix)
            return
        if name in ("genericAttributeSet", "GenericAttributeSet"):
            set_name = el.get("name")
            inner = []
            for c in el.iterchildren(_ELEM):
                cn = _local(c.tag)
                if cn == "name":
                    set_name = _text(c)
                elif cn in ("value", "genericAttribute") or cn in _GEN_TYPES:
                    inner.append(c)
            for c in inner:
                for item in self._generic(c, _local(c.tag), f"{prefix}{set_name}."):
                    yield item
            return
        kind = _GEN_TYPES.get(name)
        if kind is None:
            return
        key = el.get("name")
        value_el = None
        for c in el.iterchildren(_ELEM):
            cn = _local(c.tag)
            if cn == "name":
                key = _text(c)
            elif cn == "value":
                value_el = c
        if key is None or value_el is None:
            return
        raw = _text(value_el)
        uom = value_el.get("uom")
        value: object = raw
        try:
            if kind == "int":
                value = int(raw)
            elif kind in ("double", "measure"):
                value = float(raw)
        except ValueError:
            kind, value = "string", raw
        yield prefix + key, kind, value, uom

    # ------------------------------------------------------------------ implicit geometry
    def implicit(self, prop, ctx: _Ctx) -> None:
        for ig in prop.iterchildren(_ELEM):
            if _local(ig.tag) != "ImplicitGeometry":
                continue
            matrix = np.eye(4)
            ref = np.zeros(3)
            lib = mime = None
            rel = None
            for c in ig.iterchildren(_ELEM):
                cn = _local(c.tag)
                if cn == "transformationMatrix":
                    vals = np.fromstring(_text(c), sep=" ")
                    if vals.size == 16:
                        matrix = vals.reshape(4, 4)
                elif cn == "referencePoint":
                    for p in c.iter("{*}pos", "{*}coordinates"):
                        xyz = np.fromstring(_text(p).replace(",", " "), sep=" ")
                        ref[: min(3, xyz.size)] = xyz[:3]
                        break
                elif cn == "libraryObject":
                    lib = _text(c)
                elif cn == "mimeType":
                    mime = _text(c)
                elif cn == "relativeGMLGeometry" or cn == "relativeGeometry":
                    rel = c
            if rel is not None:
                self.member_geometry(rel, ctx.with_(transform=(matrix, ref)))
            else:
                row = {"feature": ctx.fid, "lod": ctx.lod, "mime_type": mime, "library_object": lib,
                       "ref_x": ref[0], "ref_y": ref[1], "ref_z": ref[2]}
                row.update({f"m{i}": float(v) for i, v in enumerate(matrix.ravel())})
                self.implicit_rows.append(row)
                self.problem(self.f_gml_id[ctx.fid], self.f_type[ctx.fid],
                             f"implicit geometry refers to the external library object {lib!r}, which is "
                             "not loaded; its reference point and transformation are kept",
                             ig.sourceline, "warning")

    # ------------------------------------------------------------------ geometry
    def member_geometry(self, prop, ctx: _Ctx) -> None:
        """A property element that holds geometry inline or by ``xlink:href``."""
        href = prop.get(XLINK_HREF)
        if href is not None:
            self.resolve(href, prop, ctx)
            return
        for child in prop.iterchildren(_ELEM):
            if child.tag in _POLYGON_TAGS and child.get("srsName") is None:
                self.polygon(child, ctx)   # the common case, without the dispatch below
            else:
                self.geometry(child, ctx)

    def resolve(self, href: str, prop, ctx: _Ctx) -> None:
        if not href.startswith("#"):
            self.problem(self.f_gml_id[ctx.fid], self.f_type[ctx.fid],
                         f"xlink:href={href!r} points outside the document; external references are not "
                         "followed", prop.sourceline, "warning")
            return
        if href[1:] in ctx.seen:   # e.g. a Solid's member that a boundary surface already gave us
            return
        target = ctx.member.lookup(href[1:]) if ctx.member is not None else None
        if target is None:
            self.pending[href[1:]].append((ctx.with_(member=None), prop.sourceline))
            return
        self.geometry(target, ctx)

    def geometry(self, el, ctx: _Ctx) -> None:
        name = _local(el.tag)
        srs = el.get("srsName")
        if srs is not None:
            self.see_srs(srs, el)
        if name in _POLYGONS:
            self.polygon(el, ctx)
        elif name == "OrientableSurface":
            flip = el.get("orientation", "+").strip() == "-"
            c2 = ctx.with_(flip=ctx.flip != flip)
            for prop in el.iterchildren(_ELEM):
                self.member_geometry(prop, c2)
        elif name in _AGGREGATES:
            start = self.n_polys + len(self.b_poly)
            for prop in el.iterchildren(_ELEM):
                ptag = prop.tag
                if name == "Solid" and ptag in _INTERIOR_TAGS:
                    continue   # cavities of a solid are not visible surfaces
                pname = _local(ptag)
                if pname in _POLYGONS or pname in _AGGREGATES:   # gml:surfaceMembers-less patches
                    self.geometry(prop, ctx)
                else:
                    self.member_geometry(prop, ctx)
            gid = _gml_id(el)
            if gid:
                self.geom_index[gid] = (start, self.n_polys + len(self.b_poly))
        elif name in ("patches", "trianglePatches", "polygonPatches"):
            for c in el.iterchildren(_ELEM):
                self.geometry(c, ctx)
        elif name in _NON_SURFACES:
            return
        else:
            self.unknown_geometry[name] += 1

    def polygon(self, el, ctx: _Ctx) -> None:
        if el in ctx.seen:
            return
        ctx.seen.add(el)
        pid = _gml_id(el)
        if pid:
            ctx.seen.add(pid)
        if self.crs is None:
            raise CRSError(f"{self.path}: no CRS: neither the envelope nor the geometry (line "
                           f"{el.sourceline}) has an srsName; pass crs='EPSG:25832' (or --crs EPSG:25832), "
                           "or crs='local' to keep unreferenced coordinates")
        rings = []
        ring_ids = []
        try:
            for prop in el.iterchildren(_ELEM):
                ptag = prop.tag
                interior = ptag in _INTERIOR_TAGS
                if not interior and ptag not in _EXTERIOR_TAGS:
                    continue
                for ring in prop.iterchildren(_ELEM):
                    if interior and not rings:
                        raise _FeatureError("interior ring before the exterior ring")
                    if ctx.transform is None and ring.tag in _LINEAR_RING_TAGS and len(ring) == 1:
                        c = ring[0]
                        if c.tag in _POSLIST_TAGS and (c.get("srsDimension") or ring.get("srsDimension") or "3") == "3":
                            rings.append(c.text or "")   # parsed with the whole batch in flush()
                            ring_ids.append(_gml_id(ring))
                            continue
                    xyz = _ring_coords(ring)
                    if ctx.transform is not None:
                        m, ref = ctx.transform
                        xyz = xyz @ m[:3, :3].T + m[:3, 3] + ref
                    rings.append(xyz)
                    ring_ids.append(_gml_id(ring))
        except (_FeatureError, ValueError) as exc:
            self.problem(_gml_id(el) or self.f_gml_id[ctx.fid], self.f_type[ctx.fid],
                         f"polygon skipped: {exc}", el.sourceline)
            return
        if not rings:
            self.problem(_gml_id(el) or self.f_gml_id[ctx.fid], self.f_type[ctx.fid],
                         "polygon skipped: it has no exterior ring", el.sourceline)
            return
        first = len(self.b_rings)
        if pid:
            polyno = self.n_polys + len(self.b_poly)
            self.geom_index[pid] = (polyno, polyno + 1)
        self.b_rings.extend(rings)
        self.b_ring_ids.extend(ring_ids)
        self.b_poly.append((first, len(rings), ctx.fid, ctx.surface, ctx.stype, ctx.lod, ctx.flip,
                            el.sourceline, _gml_id(el)))
        if len(self.b_rings) >= _BATCH_RINGS:
            self.flush()

    # ------------------------------------------------------------------ triangulation
    def flush(self) -> None:
        """Triangulate the pending polygons and append them to the output arrays."""
        if not self.b_poly:
            return
        rings, polys = self.b_rings, self.b_poly
        reported: set[int] = set()
        parsed = _parse_posList_batch(rings) if rings and all(isinstance(r, str) for r in rings) else None
        if parsed is not None:
            coords, counts = parsed
        else:
            coords, counts = self._parse_rings_one_by_one(rings, polys, reported)
        starts = np.zeros(len(rings), np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        poly_first = np.array([p[0] for p in polys], np.int64)
        poly_nr = np.array([p[1] for p in polys], np.int64)
        simple = poly_nr == 1
        # simple polygons: one Numba call for the whole batch
        sr = poly_first[simple]
        flip = np.array([p[6] for p in polys], bool)
        out = np.empty((int(np.maximum(counts[sr] - 2, 0).sum()) + 1, 3), np.int64)
        out_ring = np.empty(len(out), np.int64)
        nt, status = triangulate_rings(coords, starts[sr], counts[sr], flip[simple], out, out_ring, _MIN_AREA_M2)
        simple_idx = np.flatnonzero(simple)
        tris = [out[:nt]]
        tri_poly = [simple_idx[out_ring[:nt]]]
        bad = simple_idx[status == 1]
        stalled = simple_idx[status == 2]
        for p in np.flatnonzero(~simple):
            t, ok = _triangulate_with_holes(coords, starts, counts, poly_first[p], poly_nr[p], flip[p])
            if not ok:
                bad = np.append(bad, p)
                continue
            tris.append(t)
            tri_poly.append(np.full(len(t), p, np.int64))
        tris = np.concatenate(tris)
        tri_poly = np.concatenate(tri_poly)
        order = np.argsort(tri_poly, kind="stable")
        tris, tri_poly = tris[order], tri_poly[order]
        for p in bad:
            if p in reported:
                continue
            _, _, fid, _, _, _, _, line, pid = polys[p]
            self.problem(pid or self.f_gml_id[fid], self.f_type[fid],
                         "polygon skipped: degenerate (fewer than 3 distinct points or zero area)", line)
        for p in stalled:
            _, _, fid, _, _, _, _, line, pid = polys[p]
            self.problem(pid or self.f_gml_id[fid], self.f_type[fid],
                         "polygon is self-intersecting or strongly non-planar; triangulated by a fan",
                         line, "warning")
        # per-polygon triangle ranges (global triangle numbers)
        bounds = np.searchsorted(tri_poly, np.arange(len(polys) + 1))
        self.poly_tri_start.extend((bounds[:-1] + self.n_tris).tolist())
        self.poly_tri_end.extend((bounds[1:] + self.n_tris).tolist())
        attrs = np.array([(p[2], p[3], p[4], p[5]) for p in polys], np.int64).reshape(-1, 4)
        self.tri_chunks.append(tris + self.n_verts)
        self.tri_attr_chunks.append(attrs[tri_poly])
        for i, rid in enumerate(self.b_ring_ids):
            if rid:
                self.ring_index[rid] = (int(starts[i] + self.n_verts), int(counts[i]))
        self.vert_chunks.append(coords)
        self.n_verts += len(coords)
        self.n_tris += len(tris)
        self.n_polys += len(polys)
        self.b_rings, self.b_poly, self.b_ring_ids = [], [], []

    def _parse_rings_one_by_one(self, rings: list, polys: list, reported: set) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates of a batch with some non-posList rings (or a bad one): ring by ring; a polygon
        with an unreadable ring is reported and gets no vertices."""
        arrays = []
        ring_poly = np.zeros(len(rings), np.int64)
        for i, (first, nr) in enumerate((p[0], p[1]) for p in polys):
            ring_poly[first:first + nr] = i
        for k, r in enumerate(rings):
            if isinstance(r, str):
                try:
                    r = _posList_to_xyz(r)
                except (ValueError, _FeatureError) as exc:
                    p = int(ring_poly[k])
                    if p not in reported:
                        reported.add(p)
                        _, _, fid, _, _, _, _, line, pid = polys[p]
                        self.problem(pid or self.f_gml_id[fid], self.f_type[fid], f"polygon skipped: {exc}", line)
                    r = np.zeros((0, 3))
            arrays.append(r)
        for p in reported:   # drop every ring of a broken polygon, not only the unreadable one
            first, nr = polys[p][0], polys[p][1]
            for k in range(first, first + nr):
                arrays[k] = np.zeros((0, 3))
        counts = np.fromiter((len(a) for a in arrays), np.int64, len(arrays))
        return (np.concatenate(arrays) if arrays else np.zeros((0, 3))), counts

    # ------------------------------------------------------------------ appearance
    def appearance(self, app, member) -> None:
        """Collect an app:Appearance (inside a feature or a top-level appearanceMember)."""
        if _local(app.tag) != "Appearance":
            return
        theme = None
        datas = []
        for c in app.iterchildren(_ELEM):
            cn = _local(c.tag)
            if cn == "theme":
                theme = _text(c)
            elif cn in ("surfaceDataMember", "surfaceData"):
                datas.extend(c.iterchildren(_ELEM))
        theme = theme or ""
        if theme not in self.themes:
            self.themes.append(theme)
        for d in datas:
            kind = _local(d.tag)
            entry = {"theme": theme, "kind": kind, "gml_id": _gml_id(d), "line": d.sourceline}
            if kind == "X3DMaterial":
                props: dict = {}
                targets = []
                for c in d.iterchildren(_ELEM):
                    cn = _local(c.tag)
                    if cn == "target":
                        targets.append((c.get(XLINK_HREF) or _text(c)).lstrip("#"))
                    else:
                        props[cn] = _text(c)
                entry.update(props=props, targets=targets)
            elif kind == "ParameterizedTexture":
                props = {}
                targets = []
                for c in d.iterchildren(_ELEM):
                    cn = _local(c.tag)
                    if cn == "target":
                        targets.append(_texture_target(c))
                    else:
                        props[cn] = _text(c)
                entry.update(props=props, targets=[t for t in targets if t is not None])
            else:
                self.problem(entry["gml_id"], kind, f"{kind} is not supported; the surfaces keep their "
                             "material colour or none", d.sourceline, "warning")
                continue
            self.appearances.append(entry)

    def resolve_appearance(self, vertices_uv: np.ndarray, tri_material: np.ndarray, tri_texture: np.ndarray,
                           vertices: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
        if not self.appearances:
            return empty_table("materials"), empty_table("textures"), None
        theme = self.theme if self.theme is not None else self.themes[0]
        if theme not in self.themes:
            raise TwinValueError(f"{self.path}: appearance theme {theme!r} not found; the document has "
                                 f"{self.themes}")
        pst = np.asarray(self.poly_tri_start, np.int64)
        pen = np.asarray(self.poly_tri_end, np.int64)
        mats, texs = [], []
        images: dict[str, int] = {}
        base = self.path.parent
        for e in self.appearances:
            if e["theme"] != theme:
                continue
            if e["kind"] == "X3DMaterial":
                p = e["props"]
                row = {"theme": theme, "gml_id": e["gml_id"]}
                for key, col in (("diffuseColor", "diffuse"), ("emissiveColor", "emissive"),
                                 ("specularColor", "specular")):
                    rgb = np.fromstring(p.get(key, ""), sep=" ") if p.get(key) else np.full(3, np.nan)
                    if rgb.size != 3:
                        rgb = np.full(3, np.nan)
                    row.update({f"{col}_r": rgb[0], f"{col}_g": rgb[1], f"{col}_b": rgb[2]})
                for key, col in (("ambientIntensity", "ambient_intensity"), ("shininess", "shininess"),
                                 ("transparency", "transparency")):
                    try:
                        row[col] = float(p[key]) if key in p else np.nan
                    except ValueError:
                        row[col] = np.nan
                row["is_smooth"] = (p.get("isSmooth", "").lower() == "true") if "isSmooth" in p else pd.NA
                mid = len(mats)
                mats.append(row)
                for t in e["targets"]:
                    rng = self._tri_range(t, pst, pen)
                    if rng is None:
                        self.problem(t, "X3DMaterial", f"material target #{t} is not among the imported surfaces (another LoD, or missing)",
                                     e["line"], "warning")
                        continue
                    tri_material[rng[0]:rng[1]] = mid
            else:
                p = e["props"]
                uri = p.get("imageURI", "")
                tid = len(texs)
                img = (base / uri) if uri and not re.match(r"^[a-z]+://", uri) else None
                exists = img is not None and img.exists()
                if uri not in images:
                    images[uri] = tid
                    if not exists:
                        self.problem(e["gml_id"], "ParameterizedTexture",
                                     f"texture image {uri!r} not found next to the document; surfaces keep "
                                     "their texture coordinates, viewers fall back to the material",
                                     e["line"], "warning")
                texs.append({"theme": theme, "gml_id": e["gml_id"], "image_uri": uri,
                             "image_path": str(img.resolve()) if exists else None,
                             "mime_type": p.get("mimeType"), "wrap_mode": p.get("wrapMode")})
                for poly_id, ring_coords, world_to_tex in e["targets"]:
                    rng = self._tri_range(poly_id, pst, pen)
                    if rng is None:
                        self.problem(poly_id, "ParameterizedTexture",
                                     f"texture target #{poly_id} is not among the imported surfaces (another LoD, or missing)", e["line"], "warning")
                        continue
                    tri_texture[rng[0]:rng[1]] = tid
                    for ring_id, uv in ring_coords:
                        loc = self.ring_index.get(ring_id)
                        if loc is None:
                            self.problem(ring_id, "ParameterizedTexture",
                                         f"texture coordinates for ring #{ring_id}, which is not in the document",
                                         e["line"], "warning")
                            continue
                        start, n = loc
                        uv = uv.reshape(-1, 2)
                        if len(uv) == n + 1:
                            uv = uv[:n]
                        if len(uv) != n:
                            self.problem(ring_id, "ParameterizedTexture",
                                         f"{len(uv)} texture coordinates for a ring of {n} points; ignored",
                                         e["line"], "warning")
                            continue
                        vertices_uv[start:start + n] = uv
                    if world_to_tex is not None and rng[1] > rng[0]:
                        vidx = np.unique(self._tris_cache[rng[0]:rng[1]])
                        pts = np.c_[vertices[vidx], np.ones(len(vidx))]
                        stq = pts @ world_to_tex.T
                        vertices_uv[vidx] = (stq[:, :2] / stq[:, 2:3]).astype(np.float32)
        return (typed_table("materials", mats) if mats else empty_table("materials"),
                typed_table("textures", texs) if texs else empty_table("textures"), theme)

    def _tri_range(self, ident: str, pst: np.ndarray, pen: np.ndarray):
        loc = self.geom_index.get(ident)
        if loc is not None:
            a, b = loc
            if b <= a:
                return None
            return int(pst[a]), int(pen[b - 1])
        return None


def _texture_target(t):
    """(polygon id, [(ring id, uv array)], world_to_texture 3x4 or None) of a texture target."""
    uri = t.get("uri")
    holder = t
    if uri is None:   # CityGML 3.0: target/TextureAssociation/target + texParameterization
        for assoc in t.iterchildren(_ELEM):
            for c in assoc.iterchildren(_ELEM):
                cn = _local(c.tag)
                if cn == "target":
                    uri = c.get(XLINK_HREF) or _text(c)
                elif cn == "texParameterization":
                    holder = c
    if not uri:
        return None
    rings = []
    w2t = None
    for tc in holder.iter("{*}TexCoordList", "{*}TexCoordGen"):
        if _local(tc.tag) == "TexCoordList":
            for c in tc.iterchildren(_ELEM):
                if _local(c.tag) == "textureCoordinates":
                    ring = (c.get("ring") or "").lstrip("#")
                    try:
                        rings.append((ring, np.fromstring(_text(c), sep=" ").astype(np.float32)))
                    except ValueError:
                        continue
        else:
            for c in tc.iter("{*}worldToTexture"):
                vals = np.fromstring(_text(c), sep=" ")
                if vals.size == 12:
                    w2t = vals.reshape(3, 4)
    return uri.lstrip("#"), rings, w2t


def _address(el) -> str:
    """A one-line postal address from an xAL (2.0) or xAL 3 (3.0) address element."""
    parts: dict[str, list[str]] = defaultdict(list)
    leaves = []
    for e in el.iter():
        if not isinstance(e.tag, str):
            continue
        name = _local(e.tag)
        text = _text(e)
        if text and len(e) == 0:
            leaves.append(text)
            parts[name].append(text)
    street = " ".join(parts.get("ThoroughfareName", []) + parts.get("ThoroughfareNumber", []))
    city = " ".join(parts.get("PostalCodeNumber", []) + parts.get("LocalityName", []))
    if street or city:
        return ", ".join(p for p in (street, city, " ".join(parts.get("CountryName", []))) if p)
    return " ".join(leaves)


_GML_URIS = ("http://www.opengis.net/gml", "http://www.opengis.net/gml/3.2")
_POLYGON_TAGS = {f"{{{u}}}{n}" for u in _GML_URIS for n in ("Polygon", "Triangle")}
_TAG_INFO: dict = {}


def _tag_info(tag) -> tuple[str, int, str]:
    """(local name, LoD or -1, geometry kind) of a feature's child tag, e.g. lod2Solid -> (.., 2, "Solid")."""
    name = _local(tag)
    m = _LOD_PROP.match(name)
    info = (name, int(m.group(1)), m.group(2)) if m else (name, -1, "")
    if len(_TAG_INFO) < 10000:
        _TAG_INFO[tag] = info
    return info
_LINEAR_RING_TAGS = {f"{{{u}}}LinearRing" for u in _GML_URIS}
_POSLIST_TAGS = {f"{{{u}}}posList" for u in _GML_URIS}
_EXTERIOR_TAGS = {f"{{{u}}}{n}" for u in _GML_URIS for n in ("exterior", "outerBoundaryIs")}
_INTERIOR_TAGS = {f"{{{u}}}{n}" for u in _GML_URIS for n in ("interior", "innerBoundaryIs")}


def _posList_to_xyz(text: str) -> np.ndarray:
    """(n, 3) coordinates of one 3D posList without the closing point."""
    vals = np.fromstring(text, sep=" ")
    n = vals.size
    if n % 3:
        raise _FeatureError(f"ring has {n} coordinate values, not a multiple of srsDimension=3")
    if not math.isfinite(vals.sum()):
        raise _FeatureError("ring has non-finite coordinates")
    xyz = vals.reshape(-1, 3)
    if n >= 6 and vals[0] == vals[n - 3] and vals[1] == vals[n - 2] and vals[2] == vals[n - 1]:
        xyz = xyz[:-1]
    return xyz


def _parse_posList_batch(texts: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """All rings of a batch in one ``fromstring`` call: texts joined by a NaN separator.

    Returns (coords without closing points, vertex count per ring), or None when any ring is
    unreadable (wrong count, non-finite, not numbers), so the caller can find and report it.
    """
    try:
        vals = np.fromstring(" nan ".join(texts), sep=" ")
    except ValueError:
        return None
    sep = np.flatnonzero(np.isnan(vals))
    if len(sep) != len(texts) - 1 or np.isinf(vals).any():
        return None
    start = np.concatenate([[0], sep + 1])
    end = np.concatenate([sep, [len(vals)]])
    size = end - start
    if (size % 3).any():
        return None
    n = size // 3
    # closing point: last triple equals the first
    has = n >= 2
    first = start[has]
    last = end[has] - 3
    closed = np.zeros(len(texts), bool)
    closed[has] = ((vals[first] == vals[last]) & (vals[first + 1] == vals[last + 1])
                   & (vals[first + 2] == vals[last + 2]))
    keep = np.ones(len(vals), bool)
    keep[sep] = False
    drop = end[closed]
    for k in range(3):
        keep[drop - 3 + k] = False
    coords = vals[keep].reshape(-1, 3)
    return coords, (n - closed).astype(np.int64)


def _ring_coords(ring) -> np.ndarray:
    """Vertex coordinates (n, 3) of a gml:LinearRing without the closing point."""
    if ring.tag in _LINEAR_RING_TAGS and len(ring) == 1:
        # fast path: <gml:LinearRing><gml:posList> with 3D coordinates (nearly every real file)
        c = ring[0]
        if c.tag in _POSLIST_TAGS and (c.get("srsDimension") or ring.get("srsDimension") or "3") == "3":
            return _posList_to_xyz(c.text or "")
    name = _local(ring.tag)
    if name != "LinearRing":
        raise _FeatureError(f"gml:{name} rings are not supported (only gml:LinearRing)")
    dim = 3
    vals = None
    texts = []
    for c in ring.iterchildren(_ELEM):
        cn = _local(c.tag)
        if cn == "posList":
            d = c.get("srsDimension") or ring.get("srsDimension")
            dim = int(d) if d else 3
            vals = np.fromstring(c.text or "", sep=" ")
            break
        if cn == "pos":
            texts.append(c.text or "")
            d = c.get("srsDimension")
            if d:
                dim = int(d)
        elif cn == "coordinates":
            vals = np.fromstring((c.text or "").replace(",", " "), sep=" ")
            dim = 3 if vals.size % 3 == 0 else 2
            break
        elif cn == "pointProperty" or cn == "pointRep":
            for p in c.iter("{*}pos"):
                texts.append(p.text or "")
    if vals is None:
        vals = np.fromstring(" ".join(texts), sep=" ")
    if dim not in (2, 3) or vals.size % dim:
        raise _FeatureError(f"ring has {vals.size} coordinate values, not a multiple of srsDimension={dim}")
    xyz = vals.reshape(-1, dim)
    if dim == 2:
        xyz = np.c_[xyz, np.zeros(len(xyz))]
    if not np.isfinite(xyz).all():
        raise _FeatureError("ring has non-finite coordinates")
    if len(xyz) > 1 and (xyz[0] == xyz[-1]).all():
        xyz = xyz[:-1]
    return xyz


def _triangulate_with_holes(coords, starts, counts, first, nr, flip):
    """Triangulate one polygon with interior rings via mapbox-earcut in its best-fit plane."""
    import mapbox_earcut

    sl = slice(starts[first], starts[first + nr - 1] + counts[first + nr - 1])
    pts = coords[sl]
    ext = pts[: counts[first]]
    # Newell normal of the exterior ring
    nxt = np.roll(ext, -1, axis=0)
    normal = np.array([((ext[:, 1] - nxt[:, 1]) * (ext[:, 2] + nxt[:, 2])).sum(),
                       ((ext[:, 2] - nxt[:, 2]) * (ext[:, 0] + nxt[:, 0])).sum(),
                       ((ext[:, 0] - nxt[:, 0]) * (ext[:, 1] + nxt[:, 1])).sum()])
    if np.linalg.norm(normal) <= 2 * _MIN_AREA_M2:
        return None, False
    axis = int(np.argmax(np.abs(normal)))
    i0, i1 = [(1, 2), (2, 0), (0, 1)][axis]
    sgn = 1.0 if normal[axis] > 0 else -1.0
    p2 = np.c_[pts[:, i0], pts[:, i1] * sgn]
    ends = np.cumsum(counts[first:first + nr]).astype(np.uint32)
    idx = np.asarray(mapbox_earcut.triangulate_float64(p2, ends), np.int64).reshape(-1, 3)
    if not len(idx):
        return None, False
    # earcut outputs a fixed winding; make each triangle agree with the ring orientation
    a, b, c = p2[idx[:, 0]], p2[idx[:, 1]], p2[idx[:, 2]]
    cr = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    wrong = cr < 0
    idx[wrong] = idx[wrong][:, ::-1]
    if flip:
        idx = idx[:, ::-1]
    return idx + starts[first], True


# ---------------------------------------------------------------------- driver
_MEMBER_TAGS = ("{*}cityObjectMember", "{*}appearanceMember", "{*}featureMember", "{*}featureMembers",
                "{*}Envelope")


def _iter_members(stream, on_error: Callable[[Exception], None]):
    """Yield (member element, kind) pairs; clear each after use. Report a broken document via on_error."""
    ctx = etree.iterparse(stream, events=("end",), tag=_MEMBER_TAGS, huge_tree=True,
                          resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True,
                          remove_pis=True)
    try:
        for _, el in ctx:
            name = _local(el.tag)
            parent = el.getparent()
            if name == "Envelope":   # the document's or a feature's envelope: its srsName names the CRS
                if el.get("srsName"):
                    yield el, "envelope"
                continue
            if parent is None or parent.getparent() is not None:
                continue   # a nested element of the same name
            yield el, name
            el.clear(keep_tail=False)
            while el.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        on_error(exc)
    except (EOFError, OSError) as exc:   # truncated gzip stream
        on_error(exc)


def open_citygml(path: str | os.PathLike, *, lod: int | None = None, crs=None, theme: str | None = None,
                 progress: Callable[[int], None] | None = None, workers: int | None = None) -> Scene:
    """Import one CityGML 1.0, 2.0 or 3.0 file (``.gml``, ``.xml``, ``.citygml``, gzip-compressed or not).

    Parameters
    ----------
    path : path-like
        The CityGML document.
    lod : int, optional
        Level of detail to import (0-4). By default each feature's highest available LOD.
        Features without geometry at that LOD are kept (attributes) with ``lod = -1``.
    crs : str, optional
        CRS to use instead of (or where there is no) ``srsName``: any spelling understood by
        :func:`twin.crs.parse_crs`, or ``"local"`` for unreferenced coordinates.
    theme : str, optional
        Appearance theme to keep (default: the first one in the document).
    progress : callable, optional
        Called with the number of (compressed) bytes read since the last call.
    workers : int, optional
        Processes that import parts of one large file side by side (split at top-level
        ``cityObjectMember`` boundaries). Default: one per core for uncompressed files of 32 MB or
        more, else 1. The result is the same as a serial import; files whose parts refer to each
        other (XLinks across parts, global appearances, CRS only on some geometries) are imported
        serially.

    Returns
    -------
    Scene
        With ``scene.problems`` listing every feature or polygon that was skipped and why.

    Raises
    ------
    CRSError
        If the document names no CRS and ``crs`` is not given.
    HostileXMLError
        If the document declares entities or a DTD subset.
    CityGMLError
        If the file is missing, unreadable or not CityGML at all.

    Examples
    --------
    >>> scene = open_citygml("data/samples/muenchen-tum/lod2/DEBY_LOD2_4959457.gml")  # doctest: +SKIP
    >>> scene.summary()["counts"]  # doctest: +SKIP
    {'Building': 1}
    """
    path = Path(path)
    user_crs = parse_crs(crs) if crs is not None else None
    if lod is not None and lod not in (0, 1, 2, 3, 4):
        raise TwinValueError(f"lod must be 0, 1, 2, 3 or 4, not {lod!r}")
    if workers is None:
        try:
            big = path.stat().st_size >= _SPLIT_MIN_BYTES
        except OSError:
            big = False
        workers = min(os.cpu_count() or 1, 4) if big else 1
    if workers > 1:
        _xml.check_prolog(path) if path.exists() else None
        plan = _split_plan(path, workers)
        if plan is not None:
            scene = _open_split(path, plan, lod=lod, crs=user_crs, theme=theme, progress=progress)
            if scene is not None:
                return scene
    return _import_document(path, lambda: _xml.open_source(path, progress), lambda: _xml.open_source(path),
                            lod=lod, crs=user_crs, theme=theme)


def _import_document(path: Path, opener, reopener, *, lod, crs, theme, line_offset: int = 0,
                     hash_source: bool = True) -> Scene:
    """Stream one document (a file, or a chunk of one) into a Scene."""
    b = _Builder(path, lod=lod, crs=crs, theme=theme)
    gml_ns = None
    broken: list[Exception] = []
    n_members = 0
    with opener() as stream:
        for el, kind in _iter_members(stream, broken.append):
            if gml_ns is None:
                root = el.getroottree().getroot()
                b.citygml_ns.update(ns for ns in (root.nsmap or {}).values() if "citygml" in ns
                                    and ns.rsplit("/", 1)[-1] in ("1.0", "2.0", "3.0") and "/citygml/" in ns
                                    and ns.count("/") == 4)
                if _local(root.tag) not in ("CityModel", "FeatureCollection"):
                    raise CityGMLError(f"{path}: the root element is <{_local(root.tag)}>, not a CityGML "
                                       "<CityModel>; is this a CityGML file?")
                gml_ns = True
            if kind == "envelope":
                srs = el.get("srsName")
                if srs:
                    b.see_srs(srs, el)
                continue
            n_members += 1
            if kind == "appearanceMember":
                for app in el.iterchildren(_ELEM):
                    b.appearance(app, None)
                continue
            for fel in el.iterchildren(_ELEM):
                _import_member(b, fel)
    if broken:
        exc = broken[0]
        line = getattr(exc, "lineno", None) or (getattr(exc, "position", None) or (None,))[0]
        if n_members == 0 and not b.f_gml_id:
            raise CityGMLError(f"{path}: not a readable XML document ({exc}); nothing imported") from exc
        b.problem(None, None, f"the document breaks off ({exc}); everything before the break was imported",
                  line, "truncated")
    b.flush()
    if b.pending:
        _second_pass(b, path, reopener)
    if b.crs is None:
        if not b.f_gml_id:
            raise CityGMLError(f"{path}: no CityGML features found")
        b.crs = SceneCRS(None, None, None) if b.n_verts == 0 else b.crs
        if b.crs is None:
            raise CRSError(f"{path}: no CRS; pass crs='EPSG:25832' (or --crs)")
    scene = _finish(b, path, hash_source=hash_source)
    if line_offset:
        for table in (scene.features, scene.problems):
            table["line"] = table["line"].where(table["line"].isna() | (table["line"] < 0),
                                                table["line"] + line_offset)
    return scene


_MEMBER_START = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)cityObjectMember[\s>]")
_ROOT_START = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)CityModel[\s>]")


def _split_plan(path: Path, n: int):
    """Byte ranges that split a document into ``n`` runs of whole top-level members, or None."""
    import mmap

    try:
        if _xml.is_gzip(path) or path.stat().st_size < 2 << 10:
            return None
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            head = mm[: 1 << 20]
            m = _MEMBER_START.search(head)
            r = _ROOT_START.search(head)
            if m is None or r is None or r.start() > m.start():
                return None
            if mm.find(b"appearanceMember") != -1 or mm.find(b"featureMember") != -1:
                return None   # global appearances / GML feature members refer across members
            tag = b"<" + m.group(1) + b"cityObjectMember"
            close = b"</" + r.group(1) + b"CityModel>"
            end = mm.rfind(close)
            if end == -1:
                return None   # truncated: the serial reader reports the break
            size = len(mm)
            starts = [m.start()]
            for k in range(1, n):
                pos = mm.find(tag, max(size * k // n, starts[-1] + 1))
                while pos != -1 and mm[pos + len(tag):pos + len(tag) + 1] not in (b">", b" ", b"\n", b"\t", b"\r"):
                    pos = mm.find(tag, pos + 1)
                if pos == -1 or pos >= end:
                    break
                starts.append(pos)
            if len(starts) < 2:
                return None
            header = mm[: m.start()]
            bounds = starts + [end]
            chunks = []
            lines_before = 0
            cursor = 0
            header_lines = header.count(b"\n")
            for a, z in zip(bounds[:-1], bounds[1:]):
                lines_before += mm[cursor:a].count(b"\n")
                cursor = a
                chunks.append((a, z, lines_before - header_lines))
            return {"header": header, "footer": close, "chunks": chunks}
    except (OSError, ValueError):
        return None


def _import_chunk(path: Path, header: bytes, start: int, end: int, footer: bytes, lod, crs, theme,
                  line_offset: int) -> Scene:
    parts = lambda: _xml.SliceStream(path, [header, (start, end), footer])  # noqa: E731
    return _import_document(path, parts, parts, lod=lod, crs=crs, theme=theme, line_offset=line_offset,
                            hash_source=False)


def _open_split(path: Path, plan: dict, *, lod, crs, theme, progress) -> Scene | None:
    """Import the chunks of ``plan`` in worker processes; None when the parts turn out to depend on
    each other (the caller then imports serially)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=len(plan["chunks"]), mp_context=ctx) as pool:
        futures = [pool.submit(_import_chunk, path, plan["header"], a, z, plan["footer"], lod, crs, theme, off)
                   for a, z, off in plan["chunks"]]
        parts = []
        try:
            for fut, (a, z, _) in zip(futures, plan["chunks"]):
                parts.append(fut.result())
                if progress is not None:
                    progress(z - a)
        except CRSError:
            return None   # e.g. the srsName sits on the first geometry only
    for part in parts:
        reasons = part.problems["reason"]
        if reasons.str.contains("dangling link", regex=False).any():
            return None   # maybe a reference into another chunk: the serial reader decides
    try:
        scene = Scene.concat(parts)
    except CRSError:
        return None
    meta = dict(parts[0].metadata)
    stat = path.stat()
    meta["sources"] = [{"path": str(path), "bytes": stat.st_size, "sha256": _sha256(path)}]
    srs: dict[str, int] = defaultdict(int)
    interior: dict[str, int] = defaultdict(int)
    themes: list[str] = []
    # every part parsed the shared header: count its srsNames (the document envelope) once
    header_srs = re.findall(rb'srsName="([^"]*)"', plan["header"])
    for i, part in enumerate(parts):
        for k, v in part.metadata["srs_names"].items():
            srs[k] += v
        if i:
            for h in header_srs:
                srs[h.decode("utf-8", "replace")] -= 1
        for k, v in part.metadata["interior_features_skipped"].items():
            interior[k] += v
        themes += [t for t in part.metadata["appearance_themes"] if t not in themes]
    meta.update(srs_names=dict(srs), interior_features_skipped=dict(interior), appearance_themes=themes,
                parallel_parts=len(parts))
    scene.metadata = meta
    return scene


def _import_member(b: _Builder, fel) -> None:
    """Import one top-level feature; on any error roll back its rows and report it."""
    name = _local(fel.tag)
    if name not in _FEATURE_TYPES and not any(_LOD_PROP.match(_local(c.tag)) for c in fel.iterchildren(_ELEM)):
        if name not in _FEATURE_TYPES:
            b.problem(_gml_id(fel), name, f"<{name}> is not a CityGML feature type twin imports; skipped",
                      fel.sourceline)
            return
    if name in _INTERIOR:
        b.interior_skipped[name] += 1
        return
    marks = (len(b.f_gml_id), len(b.s_gml_id), len(b.b_rings), len(b.b_poly), len(b.implicit_rows),
             len(b.problems), b.n_polys, len(b.tic_chunks))
    try:
        b.feature(fel, -1, None, _Member(fel, None))
    except (CRSError, HostileXMLError):
        raise
    except Exception as exc:  # noqa: BLE001 - one broken feature never aborts the import
        nf, ns, nr, np_, ni, npb, npolys, ntic = marks
        if b.n_polys != npolys:   # a batch was flushed mid-feature: keep its geometry, drop the rest
            nr = np_ = 0
        for lst, n in ((b.f_gml_id, nf), (b.f_type, nf), (b.f_parent, nf), (b.f_root, nf), (b.f_layer, nf),
                       (b.f_lod, nf), (b.f_line, nf), (b.f_attrs, nf), (b.s_gml_id, ns), (b.s_type, ns),
                       (b.s_feature, ns), (b.b_rings, nr), (b.b_ring_ids, nr), (b.b_poly, np_),
                       (b.implicit_rows, ni), (b.problems, npb), (b.tic_chunks, ntic), (b.tic_feature, ntic)):
            del lst[n:]
        for key in [k for k, v in b.pending.items()]:
            b.pending[key] = [(c, l) for c, l in b.pending[key] if c.fid < nf]
            if not b.pending[key]:
                del b.pending[key]
        b.problem(_gml_id(fel), name, f"feature skipped: {type(exc).__name__}: {exc}", fel.sourceline)


def _second_pass(b: _Builder, path: Path, reopener) -> None:
    """Resolve XLinks that cross top-level members: stream the document again for the targets."""
    wanted = set(b.pending)
    found: set[str] = set()
    with reopener() as stream:
        for el, kind in _iter_members(stream, lambda exc: None):
            if kind == "envelope":
                continue
            member = _Member(el, None)
            hits = []
            for ns in GML_NS:
                for e in el.xpath(".//*[@g:id]", namespaces={"g": ns}):
                    ident = e.get("{%s}id" % ns)
                    if ident in wanted and ident not in found:
                        hits.append((ident, e))
            for ident, e in hits:
                found.add(ident)
                for ctx, _line in b.pending[ident]:
                    b.geometry(e, ctx.with_(member=member))
            if len(found) == len(wanted):
                break
    b.flush()
    for ident in sorted(wanted - found):
        for ctx, line in b.pending[ident]:
            b.problem(b.f_gml_id[ctx.fid], b.f_type[ctx.fid],
                      f"xlink:href='#{ident}' points to nothing in the document (dangling link); that "
                      "geometry is missing", line, "warning")


def _finish(b: _Builder, path: Path, *, hash_source: bool = True) -> Scene:
    vertices = np.concatenate(b.vert_chunks) if b.vert_chunks else np.zeros((0, 3))
    tris = np.concatenate(b.tri_chunks) if b.tri_chunks else np.zeros((0, 3), np.int64)
    tattr = np.concatenate(b.tri_attr_chunks) if b.tri_attr_chunks else np.zeros((0, 4), np.int64)
    # drop zero-area triangles produced around collinear or duplicate points
    if len(tris):
        v = vertices[tris]
        area2 = np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
        keep = area2 > 2 * _MIN_AREA_M2
        if not keep.all():
            # keep triangle ranges valid for appearance lookup: remap by cumulative count
            newpos = np.concatenate([[0], np.cumsum(keep)])
            b.poly_tri_start = newpos[np.asarray(b.poly_tri_start, np.int64)].tolist()
            b.poly_tri_end = newpos[np.asarray(b.poly_tri_end, np.int64)].tolist()
            tris, tattr = tris[keep], tattr[keep]
    b._tris_cache = tris
    uv = np.full((len(vertices), 2), np.nan, np.float32)
    tri_material = np.full(len(tris), -1, np.int32)
    tri_texture = np.full(len(tris), -1, np.int32)
    materials, textures, theme = b.resolve_appearance(uv, tri_material, tri_texture, vertices)
    features = typed_table("features", {
        "gml_id": b.f_gml_id, "type": b.f_type, "parent": b.f_parent, "root": b.f_root,
        "layer": b.f_layer, "lod": b.f_lod, "source": [b.source] * len(b.f_gml_id), "line": b.f_line})
    attributes = _attribute_table(b.f_attrs, b.attr_types)
    surfaces = typed_table("surfaces", {"gml_id": b.s_gml_id, "type": b.s_type, "feature": b.s_feature})
    implicit = typed_table("implicit", b.implicit_rows) if b.implicit_rows else empty_table("implicit")
    problems = typed_table("problems", b.problems) if b.problems else empty_table("problems")
    tic = empty_table("terrain_intersection")
    if b.tic_chunks:
        pts = np.concatenate(b.tic_chunks)
        tic = typed_table("terrain_intersection", {"feature": np.concatenate(b.tic_feature), "x": pts[:, 0],
                                                   "y": pts[:, 1], "z": pts[:, 2]})
    if b.unknown_geometry:
        for name, n in b.unknown_geometry.items():
            problems.loc[len(problems)] = [None, name, f"{n} gml:{name} geometries are not supported and were "
                                           "left out", pd.NA, b.source, "warning"]
    stat = path.stat()
    meta = {
        "reader": "twin.citygml",
        "sources": [{"path": str(path), "bytes": stat.st_size, "sha256": _sha256(path) if hash_source else None}],
        "citygml_versions": sorted(ns.rsplit("/", 1)[-1] for ns in b.citygml_ns),
        "srs_names": dict(b.srs_seen),
        "lod": b.want_lod,
        "appearance_theme": theme,
        "appearance_themes": b.themes,
        "interior_features_skipped": dict(b.interior_skipped),
    }
    crs = b.crs
    return Scene(crs=crs, origin=_default_origin(vertices[np.unique(tris)] if len(tris) else vertices),
                 vertices=vertices, uv=uv, triangles=tris, triangle_feature=tattr[:, 0],
                 triangle_surface=tattr[:, 1], triangle_surface_type=tattr[:, 2], triangle_lod=tattr[:, 3],
                 triangle_material=tri_material, triangle_texture=tri_texture, features=features,
                 attributes=attributes, attribute_types=b.attr_types, surfaces=surfaces, materials=materials,
                 textures=textures, implicit=implicit, problems=problems, terrain_intersection=tic,
                 metadata=meta)


def _attribute_table(rows: list[dict], types: dict[str, dict]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows, index=pd.RangeIndex(len(rows), name="feature_id"))
    for col in df.columns:
        kind = types.get(col, {}).get("type", "string")
        if kind == "int":
            df[col] = pd.array(df[col].tolist(), dtype="Int64")
        elif kind in ("double", "measure"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        else:
            df[col] = df[col].map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)) \
                .astype("string")
    df.index = pd.RangeIndex(len(rows), name="feature_id")
    return df


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_citygml(paths: Sequence[str | os.PathLike] | str | os.PathLike, *, lod: int | None = None, crs=None,
                 theme: str | None = None, progress: Callable[[int], None] | None = None,
                 on_file: Callable[[Path], None] | None = None, workers: int | None = None) -> Scene:
    """Import several CityGML files (tiles of one city) into one scene.

    Parameters are those of :func:`open_citygml`; ``paths`` may also name directories, whose
    ``.gml``, ``.xml``, ``.citygml`` (and ``.gz``) files are read in sorted order. All files must be in
    the same CRS (or ``crs=`` given). ``workers`` processes import files side by side (default: one
    per core when the files add up to 8 MB or more; ``1`` reads them one after the other). The
    result does not depend on ``workers``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if _is_citygml_name(f)))
        else:
            files.append(p)
    if not files:
        raise CityGMLError(f"no CityGML files in {list(map(str, paths))}")
    total = sum(f.stat().st_size for f in files if f.is_file())
    if workers is None:
        workers = min(os.cpu_count() or 1, len(files)) if total >= _PARALLEL_MIN_BYTES else 1
    if workers <= 1 or len(files) == 1:
        scenes = []
        for f in files:
            if on_file is not None:
                on_file(f)
            scenes.append(open_citygml(f, lod=lod, crs=crs, theme=theme, progress=progress))
        return Scene.concat(scenes)
    # tiles are independent documents: one process each, results merged in file order
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(open_citygml, f, lod=lod, crs=crs, theme=theme) for f in files]
        scenes = []
        for f, fut in zip(files, futures):
            scenes.append(fut.result())
            if on_file is not None:
                on_file(f)
            if progress is not None:
                progress(f.stat().st_size)
    return Scene.concat(scenes)


def _is_citygml_name(p: Path) -> bool:
    name = p.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return p.is_file() and name.endswith((".gml", ".xml", ".citygml"))
