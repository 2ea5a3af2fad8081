"""The scenario schema (pydantic v2): what a planner describes, validated before anything runs.

A :class:`Scenario` names a base scene, the edits to make (a discriminated union on ``type``), the
forcing (rain and/or a hot day), the models to run, their parameters and the outputs wanted. It is
plain JSON; :meth:`Scenario.model_json_schema` is the published JSON Schema (``twin scenario schema``).
Coordinates of every geometry are metres in the scene's CRS (e.g. ETRS89 / UTM 32N, EPSG:25832 for
Munich), never longitude/latitude.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from twin.errors import TwinValueError
from twin.scenario.rain import SRI_EXTREME_FACTOR, SRI_RETURN_PERIOD_A, depth_at, sri_for_return_period

__all__ = ["Scenario", "ScenarioError", "Polygon", "MultiPolygon", "LineString", "Unseal", "Reseal", "GreenRoofs",
           "AttributeCondition", "Tree", "Trees", "RetentionBasin", "TerrainChange", "Wall", "SewerCapacity",
           "Edit", "DesignStorm", "DepthDuration", "ObservedRain", "HotDay", "Forcing", "HeavyRainParameters",
           "ScreeningParameters", "HeatParameters", "Parameters", "Outputs", "MODELS", "parse_scenario",
           "scenario_hash", "scenario_id", "load_scenario", "format_validation_error"]

MODELS = ("heavyrain", "screening", "heat")
_CRS_NOTE = "metres in the scene's CRS (e.g. EPSG:25832 easting/northing), not longitude/latitude"
_ID = r"^[A-Za-z0-9_-]{1,64}$"
_MAX_COORD = 1e8   # metres: beyond any projected CRS (and where GEOS's predicates overflow)


class ScenarioError(TwinValueError):
    """A scenario is not valid; the message lists every problem as ``field.path: message``."""

    def __init__(self, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)


# ============================================================================================ geometry
Position = Annotated[list[float], Field(min_length=2, max_length=3, description="x, y[, z]: " + _CRS_NOTE)]


def _check_ring(ring: list[list[float]], where: str) -> list[list[float]]:
    for p in ring:
        if not all(math.isfinite(v) and abs(v) <= _MAX_COORD for v in p):
            raise ValueError(f"{where}: coordinates must be finite numbers of metres within +-{_MAX_COORD:.0e}, got {p}")
    pts = [tuple(p[:2]) for p in ring]
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts = pts[:-1]
    if len(set(pts)) < 3:
        raise ValueError(f"{where}: a ring needs at least 3 distinct points, got {len(set(pts))}")
    return [list(p) for p in pts] + [list(pts[0])]   # closed, 2-D


def _shapely_check(geom, what: str):
    import shapely

    if not geom.is_valid:
        raise ValueError(f"{what} is not a valid polygon ({shapely.is_valid_reason(geom)}); "
                         "fix the ring order or the self-intersection")
    if geom.area <= 0:
        raise ValueError(f"{what} has zero area")
    return geom


class Polygon(_Model):
    """A GeoJSON Polygon: an outer ring and optional holes. Rings are closed automatically."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"description": "GeoJSON Polygon, " + _CRS_NOTE})
    type: Literal["Polygon"] = "Polygon"
    coordinates: list[list[Position]] = Field(min_length=1, description="rings: outer first, then holes; " + _CRS_NOTE)

    @field_validator("coordinates")
    @classmethod
    def _rings(cls, v):
        return [_check_ring(r, f"ring {i}") for i, r in enumerate(v)]

    @model_validator(mode="after")
    def _valid(self):
        _shapely_check(self.to_shapely(), "the polygon")
        return self

    def to_shapely(self):
        import shapely

        return shapely.Polygon(self.coordinates[0], self.coordinates[1:])


class MultiPolygon(_Model):
    """A GeoJSON MultiPolygon."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"description": "GeoJSON MultiPolygon, " + _CRS_NOTE})
    type: Literal["MultiPolygon"] = "MultiPolygon"
    coordinates: list[list[list[Position]]] = Field(min_length=1, description="polygons of rings; " + _CRS_NOTE)

    @field_validator("coordinates")
    @classmethod
    def _rings(cls, v):
        for j, p in enumerate(v):
            if not p:
                raise ValueError(f"polygon {j} has no rings; give its outer ring (and any holes)")
        return [[_check_ring(r, f"polygon {j} ring {i}") for i, r in enumerate(p)] for j, p in enumerate(v)]

    @model_validator(mode="after")
    def _valid(self):
        _shapely_check(self.to_shapely(), "the multipolygon")
        return self

    def to_shapely(self):
        import shapely

        return shapely.MultiPolygon([shapely.Polygon(p[0], p[1:]) for p in self.coordinates])


Area = Annotated[Union[Polygon, MultiPolygon], Field(discriminator="type",
                                                     description="GeoJSON (Multi)Polygon, " + _CRS_NOTE)]


class LineString(_Model):
    """A GeoJSON LineString (a wall's course)."""

    type: Literal["LineString"] = "LineString"
    coordinates: list[Position] = Field(min_length=2, description="vertices; " + _CRS_NOTE)

    @field_validator("coordinates")
    @classmethod
    def _finite(cls, v):
        for p in v:
            if not all(math.isfinite(x) and abs(x) <= _MAX_COORD for x in p):
                raise ValueError(f"coordinates must be finite numbers of metres within +-{_MAX_COORD:.0e}, got {p}")
        if len({tuple(p[:2]) for p in v}) < 2:
            raise ValueError("a line needs at least 2 distinct points")
        return [list(p[:2]) for p in v]

    def to_shapely(self):
        import shapely

        return shapely.LineString(self.coordinates)


# ============================================================================================ edits
class _Edit(_Model):
    label: str = Field("", max_length=200, description="a name for reports and the viewer, e.g. 'Marktplatz'")


def _check_landcover(name: str) -> str:
    from twin.grid import _class_name, load_landcover_table

    table = load_landcover_table()
    cls = _class_name(name, table)
    if cls is None:
        raise ValueError(f"land-cover class {name!r} is unknown; use one of {sorted(table['classes'])} "
                         f"(or an alias: {sorted(table['aliases'])})")
    if cls == table["building_class"]:
        raise ValueError(f"{cls!r} is the class of building footprints; edit buildings with green_roofs instead")
    return cls


class Unseal(_Edit):
    """Unseal a surface: the cells whose centres lie in ``area`` get a pervious land-cover class.

    Imperviousness, Manning's n and the Green-Ampt parameters follow the class table
    (``twin/data/landcover/default.toml``); building cells are left as they are.
    """

    type: Literal["unseal"] = "unseal"
    area: Area
    landcover: str = Field("grass", description="new land-cover class (twin/data/landcover/default.toml)")

    @field_validator("landcover")
    @classmethod
    def _landcover(cls, v: str) -> str:
        return _check_landcover(v)


class Reseal(_Edit):
    """Seal a surface (or give it any other class): like :class:`Unseal`, default class ``sealed``."""

    type: Literal["reseal"] = "reseal"
    area: Area
    landcover: str = Field("sealed", description="new land-cover class (twin/data/landcover/default.toml)")

    @field_validator("landcover")
    @classmethod
    def _landcover(cls, v: str) -> str:
        return _check_landcover(v)


class AttributeCondition(_Model):
    """One condition on a building attribute (``scene.attributes`` column), e.g. flat roofs:
    ``{"attribute": "roofType", "op": "eq", "value": "1000"}``."""

    attribute: str = Field(min_length=1)
    op: Literal["eq", "ne", "in", "lt", "le", "gt", "ge"] = "eq"
    value: Union[bool, int, float, str, list[Union[bool, int, float, str]]]

    @model_validator(mode="after")
    def _in_list(self):
        if (self.op == "in") != isinstance(self.value, list):
            raise ValueError("op 'in' takes a list value; the other ops take one value")
        if self.op in ("lt", "le", "gt", "ge") and not isinstance(self.value, (int, float)):
            raise ValueError(f"op {self.op!r} compares numbers; got {self.value!r}")
        return self


class GreenRoofs(_Edit):
    """Green roofs on buildings chosen by gml:id and/or attribute conditions (all must hold).

    Modelled as roof retention storage: the first ``retention_mm`` of rain on the roof cells of
    those buildings is held (an initial loss) before the roof sheds water.
    """

    type: Literal["green_roofs"] = "green_roofs"
    buildings: list[str] | None = Field(None, description="gml:ids of the buildings")
    where: list[AttributeCondition] | None = Field(None, description="attribute conditions, all must hold")
    retention_mm: float = Field(20.0, gt=0, le=200, description=(
        "water the roof holds before it sheds (mm). Default 20 mm: an extensive roof of ~8 cm substrate "
        "with ~35 % water capacity, less the water already held from earlier rain"))

    @model_validator(mode="after")
    def _choice(self):
        if not self.buildings and not self.where:
            raise ValueError("choose the buildings: give 'buildings' (gml:ids) and/or 'where' (attribute conditions)")
        return self


class Tree(_Model):
    x: float = Field(ge=-_MAX_COORD, le=_MAX_COORD, description="easting, " + _CRS_NOTE)
    y: float = Field(ge=-_MAX_COORD, le=_MAX_COORD, description="northing, " + _CRS_NOTE)
    crown_radius_m: float = Field(3.0, gt=0, le=30)
    height_m: float = Field(10.0, gt=0, le=60)


class Trees(_Edit):
    """New trees: the cells whose centres lie within a crown radius get the tree's canopy height
    (at least the cell under the trunk); building cells get none."""

    type: Literal["trees"] = "trees"
    trees: list[Tree] = Field(min_length=1)


class RetentionBasin(_Edit):
    """A retention basin: the terrain in ``area`` is lowered by ``depth_m`` (or by the depth that holds
    ``volume_m3`` over the cells of the area)."""

    type: Literal["retention_basin"] = "retention_basin"
    area: Area
    depth_m: float | None = Field(None, gt=0, le=10)
    volume_m3: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one(self):
        if (self.depth_m is None) == (self.volume_m3 is None):
            raise ValueError("give exactly one of depth_m and volume_m3")
        return self


class TerrainChange(_Edit):
    """Raise (``delta_m`` > 0) or lower the terrain in ``area``."""

    type: Literal["terrain"] = "terrain"
    area: Area
    delta_m: float = Field(ge=-20, le=20, description="terrain change (m), positive raises")

    @field_validator("delta_m")
    @classmethod
    def _nonzero(cls, v):
        if v == 0:
            raise ValueError("delta_m 0 changes nothing; give a rise (> 0) or a cut (< 0)")
        return v


class Wall(_Edit):
    """A wall or dam along ``line``: every cell the line passes through is raised by ``height_m``
    (an 8-connected line of cells, watertight for the model's 4-neighbour flow)."""

    type: Literal["wall"] = "wall"
    line: LineString
    height_m: float = Field(gt=0, le=10)


class SewerCapacity(_Edit):
    """Sewer capacity (mm/h) drained from sealed cells, everywhere or inside ``area``."""

    type: Literal["sewer"] = "sewer"
    capacity_mm_per_h: float = Field(ge=0, le=500, description="inlet capacity as a sink, mm/h of rain")
    area: Area | None = None


Edit = Annotated[Union[Unseal, Reseal, GreenRoofs, Trees, RetentionBasin, TerrainChange, Wall, SewerCapacity],
                 Field(discriminator="type")]


# ============================================================================================ forcing
class DepthDuration(_Model):
    duration_min: float = Field(gt=0, le=7 * 24 * 60)
    depth_mm: float = Field(ge=0, le=2000)


class DesignStorm(_Model):
    """A design storm: return period or SRI level, duration, and the place's depth(s).

    The depth of the storm is ``depth_mm`` (the depth of this return period and duration at the
    place, e.g. from KOSTRA-DWD-2020), else read from ``depth_duration`` at ``duration_min``. For
    SRI 8-12 give the 100-year depth: it is multiplied by the level's factor. ``shape`` euler2 (DVWK
    Euler type II, peak at 30 % of the duration) or block.
    """

    type: Literal["design_storm"] = "design_storm"
    return_period_a: float | None = Field(None, gt=0, le=10000, description="return period (years)")
    sri: int | None = Field(None, ge=1, le=12, description="Starkregenindex level (Schmitt et al. 2018)")
    duration_min: float = Field(60.0, gt=0, le=4320)
    depth_mm: float | None = Field(None, ge=0, le=2000, description=(
        "rain depth of this return period and duration at the place (KOSTRA-DWD); for SRI 8-12 the 100-year depth"))
    depth_duration: list[DepthDuration] | None = Field(None, description=(
        "the depth-duration curve of this return period (KOSTRA-DWD rows); shapes the Euler II storm"))
    shape: Literal["euler2", "block"] = "euler2"
    interval_min: float = Field(5.0, gt=0, le=60)
    peak_fraction: float = Field(0.3, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self):
        if self.depth_mm is None and not self.depth_duration:
            raise ValueError("give the storm's depth: depth_mm, or depth_duration values covering duration_min "
                             "(e.g. the KOSTRA-DWD-2020 row of the place for this return period)")
        n = round(self.duration_min / self.interval_min)
        if n < 1 or abs(n * self.interval_min - self.duration_min) > 1e-9 * self.duration_min:
            raise ValueError(f"duration_min {self.duration_min:g} is not a multiple of interval_min {self.interval_min:g}")
        if self.depth_duration and self.depth_mm is None:
            depth_at(self.duration_min, [(d.duration_min, d.depth_mm) for d in self.depth_duration])
        if self.sri is not None and self.return_period_a is not None:
            if self.sri <= 7 and abs(SRI_RETURN_PERIOD_A[self.sri] - self.return_period_a) > 1e-9:
                raise ValueError(f"sri {self.sri} stands for a {SRI_RETURN_PERIOD_A[self.sri]:g}-year storm, "
                                 f"not {self.return_period_a:g}; give one of them")
            if self.sri >= 8 and self.return_period_a != 100:
                raise ValueError(f"sri {self.sri} is the 100-year depth times {SRI_EXTREME_FACTOR[self.sri]}; "
                                 "give return_period_a 100 (or leave it out) and the 100-year depth")
        return self

    @property
    def base_depth_mm(self) -> float:
        """Depth (mm) of the given return period at ``duration_min`` (before any SRI factor)."""
        if self.depth_mm is not None:
            return float(self.depth_mm)
        return depth_at(self.duration_min, [(d.duration_min, d.depth_mm) for d in self.depth_duration or []])

    @property
    def factor(self) -> float:
        return SRI_EXTREME_FACTOR.get(self.sri, 1.0) if self.sri is not None else 1.0

    @property
    def total_depth_mm(self) -> float:
        """The storm's depth (mm), SRI factor applied."""
        return self.base_depth_mm * self.factor

    @property
    def effective_return_period_a(self) -> float | None:
        if self.sri is not None:
            return SRI_RETURN_PERIOD_A.get(self.sri, 100.0)
        return self.return_period_a

    @property
    def effective_sri(self) -> int | None:
        if self.sri is not None:
            return self.sri
        return sri_for_return_period(self.return_period_a) if self.return_period_a else None

    def storm_arguments(self) -> dict:
        """Keyword arguments of :func:`twin.sim.heavyrain.forcing.design_storm` for this storm."""
        idf = None
        if self.depth_duration:
            idf = [(d.duration_min, d.depth_mm * self.factor) for d in self.depth_duration]
        return {"kind": self.shape, "depth_mm": self.total_depth_mm, "duration_min": self.duration_min,
                "interval_min": self.interval_min, "idf": idf, "peak_fraction": self.peak_fraction}

    def describe(self) -> str:
        parts = []
        if self.effective_return_period_a:
            parts.append(f"T = {self.effective_return_period_a:g} a")
        if self.effective_sri:
            parts.append(f"SRI {self.effective_sri}")
        parts.append(f"{self.total_depth_mm:.1f} mm in {self.duration_min:g} min ({self.shape})")
        return ", ".join(parts)


class ObservedRain(_Model):
    """An observed event from the workspace's sensor store (``twin sensors sync``)."""

    type: Literal["observed"] = "observed"
    start: AwareDatetime = Field(description="ISO 8601 with offset, e.g. 2024-06-01T14:00:00Z")
    end: AwareDatetime
    step_min: float = Field(5.0, gt=0, le=60)
    distribution: Literal["uniform", "idw", "thiessen"] = Field(
        "uniform", description="uniform (mean of the gauges) or a field interpolated between gauges")
    store: str = Field("sensors.sqlite", pattern=r"^[A-Za-z0-9_.-]+$",
                       description="sensor store file in the workspace")

    @model_validator(mode="after")
    def _order(self):
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} must be after start {self.start.isoformat()}")
        if (self.end - self.start).total_seconds() > 14 * 86400:
            raise ValueError("an observed event longer than 14 days is not a heavy-rain event; shorten it")
        return self

    @property
    def duration_min(self) -> float:
        return (self.end - self.start).total_seconds() / 60.0

    def describe(self) -> str:
        return f"observed rain {self.start.isoformat()} .. {self.end.isoformat()} ({self.distribution})"


RainForcing = Annotated[Union[DesignStorm, ObservedRain], Field(discriminator="type")]


class HotDay(_Model):
    """A hot-day weather situation for the heat model: one hour, its reference (background) air
    temperature, wind and humidity. Sensor readings of that hour from the workspace's store are used
    where the scene has any (``use_sensors``)."""

    type: Literal["hot_day"] = "hot_day"
    time: AwareDatetime = Field(description="ISO 8601 with offset, e.g. 2025-07-15T15:00:00+02:00")
    air_temperature_c: float = Field(32.0, ge=-40, le=55, description="reference (rural/background) air temperature, degC")
    wind_m_per_s: float = Field(2.0, ge=0, le=30, description="wind speed at 10 m, m/s")
    relative_humidity_pct: float = Field(40.0, ge=0, le=100)
    use_sensors: bool = True
    store: str = Field("sensors.sqlite", pattern=r"^[A-Za-z0-9_.-]+$")

    def describe(self) -> str:
        return (f"hot day {self.time.isoformat()}: {self.air_temperature_c:g} degC, {self.wind_m_per_s:g} m/s, "
                f"{self.relative_humidity_pct:g} % RH")


HeatForcing = Annotated[Union[HotDay], Field(discriminator="type")]


class Forcing(_Model):
    rain: RainForcing | None = None
    heat: HeatForcing | None = None


# ============================================================================================ parameters
class HeavyRainParameters(_Model):
    duration_s: float | None = Field(None, gt=0, le=7 * 86400, description="simulated time (default: rain + 1 h)")
    output_interval_s: float = Field(600.0, gt=0, description="snapshots every ... s")
    boundary: Literal["open", "closed"] = "open"
    building_mode: Literal["raise", "block"] = Field("raise", description=(
        "raise: buildings are raised cells whose roofs shed rain (green roofs act); block: walls, no rain on them"))
    infiltration: Literal["grid", "none"] = Field("grid", description="grid: Green-Ampt from the land cover")
    initial_saturation: float = Field(0.3, ge=0, le=1)
    drainage_mm_per_h: float = Field(0.0, ge=0, le=500, description="sewer capacity on sealed cells (mm/h)")
    depth_threshold_m: float = Field(0.1, gt=0)
    theta: float = Field(0.7, ge=0, le=1)
    cfl: float = Field(0.7, gt=0, le=1)


class ScreeningParameters(_Model):
    min_sink_volume_m3: float = Field(1.0, ge=0)
    flow_classes_m2: list[float] = Field(default_factory=lambda: [200.0, 1000.0, 10000.0, 100000.0])
    depth_thresholds_m: tuple[float, float] = (0.10, 0.30)
    flow_area_thresholds_m2: tuple[float, float] = (10000.0, 100000.0)


class HeatParameters(_Model):
    directions: int = Field(32, ge=4, le=360)
    radius_m: float = Field(200.0, gt=0, le=2000)


class Parameters(_Model):
    heavyrain: HeavyRainParameters = Field(default_factory=HeavyRainParameters)
    screening: ScreeningParameters = Field(default_factory=ScreeningParameters)
    heat: HeatParameters = Field(default_factory=HeatParameters)


class Outputs(_Model):
    tiles: bool = Field(True, description="3D Tiles of the run under WORKSPACE/tiles/runs/<run_id>")
    snapshots: bool = Field(True, description="depth snapshots (tiled as they arrive)")
    fields: list[str] | None = Field(None, description=(
        "result fields to tile (default: max_depth, max_speed, arrival_time, ponded_depth, flow_accumulation, "
        "air_temperature, utci, svf)"))


# ============================================================================================ scenario
class Scenario(_Model):
    """A scenario: base scene, edits, forcing, models, parameters and outputs (JSON)."""

    model_config = ConfigDict(extra="forbid", title="twin scenario",
                              json_schema_extra={"description": "Coordinates are " + _CRS_NOTE + "."})
    schema_version: Literal[1] = 1
    name: str = Field(min_length=1, max_length=120)
    scene: str = Field(pattern=_ID, description="scene id: folder name under WORKSPACE/scenes")
    description: str = Field("", max_length=5000)
    resolution_m: float = Field(2.0, gt=0, le=100, description="grid cell size (m)")
    bounds: tuple[float, float, float, float] | None = Field(
        None, description="(west, south, east, north) of the grid, " + _CRS_NOTE + "; default the scene's terrain")
    edits: list[Edit] = Field(default_factory=list)
    forcing: Forcing = Field(default_factory=Forcing)
    models: list[Literal["heavyrain", "screening", "heat"]] | None = Field(
        None, description="default: heavyrain + screening with rain, heat with a hot day")
    parameters: Parameters = Field(default_factory=Parameters)
    outputs: Outputs = Field(default_factory=Outputs)

    @field_validator("bounds")
    @classmethod
    def _bounds(cls, v):
        if v is not None and not (v[2] > v[0] and v[3] > v[1]):
            raise ValueError(f"bounds must be (west, south, east, north) with east > west and north > south, got {v}")
        return v

    @model_validator(mode="after")
    def _models(self):
        if self.models is None:
            m = []
            if self.forcing.rain is not None:
                m += ["heavyrain", "screening"]
            if self.forcing.heat is not None:
                m.append("heat")
            if not m:
                m = ["screening"]
            self.models = m
        else:
            self.models = [x for x in MODELS if x in self.models]   # canonical order, no repeats
            if not self.models:
                raise ValueError("models is empty; choose from heavyrain, screening, heat")
        if "heavyrain" in self.models and self.forcing.rain is None:
            raise ValueError("the heavyrain model needs forcing.rain (a design_storm or an observed event)")
        if "heat" in self.models and self.forcing.heat is None:
            raise ValueError("the heat model needs forcing.heat (a hot_day)")
        return self

    @property
    def id(self) -> str:
        return scenario_id(self.name)

    def canonical_json(self) -> str:
        """Sorted-key compact JSON of every field (defaults filled in) except ``description``."""
        data = self.model_dump(mode="json", exclude={"description"})
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def scenario_hash(scenario: Scenario) -> str:
    """SHA-256 (hex) of the scenario's canonical JSON: equal for scenarios that give equal results."""
    return hashlib.sha256(scenario.canonical_json().encode("utf-8")).hexdigest()


def scenario_id(name: str) -> str:
    """The slug of a scenario name: ``[a-z0-9_-]``, at most 64 characters (umlauts transliterated)."""
    s = name.strip().lower()
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        s = s.replace(a, b)
    s = re.sub(r"[^a-z0-9_-]+", "-", s).strip("-")
    s = re.sub(r"-{2,}", "-", s)[:64].strip("-")
    return s or "scenario"


# ============================================================================================ parsing
def _loc(loc: tuple) -> str:
    out = ""
    tags = {"Polygon", "MultiPolygon", "LineString", "unseal", "reseal", "green_roofs", "trees", "retention_basin",
            "terrain", "wall", "sewer", "design_storm", "observed", "hot_day"}
    prev = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (part in tags and (isinstance(prev, int) or prev in ("area", "rain", "heat", "line"))) \
                or str(part).startswith(("function-", "tagged-union")):
            pass   # the discriminated union's branch name, not a field
        else:
            out += ("." if out else "") + str(part)
        prev = part
    return out or "(scenario)"


def format_validation_error(exc: ValidationError) -> list[dict]:
    """pydantic errors as ``[{"loc": "edits[2].area.coordinates", "msg": ..., "type": ...}]``."""
    out = []
    for e in exc.errors(include_url=False):
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if e["type"] == "union_tag_invalid":
            ctx = e.get("ctx", {})
            msg = f"unknown type {ctx.get('tag')!r}; use one of {ctx.get('expected_tags')}"
        elif e["type"] == "union_tag_not_found":
            msg = f"'type' is missing; use one of {e.get('ctx', {}).get('discriminator', 'the listed types')}"
        elif e["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling against `twin scenario schema`)"
        out.append({"loc": _loc(tuple(e["loc"])), "msg": msg, "type": e["type"]})
    return out


def parse_scenario(data: "str | bytes | dict | Scenario", *, source: str = "scenario") -> Scenario:
    """Validate a scenario from JSON text or a dict.

    Raises
    ------
    ScenarioError
        With one line per problem: ``field.path: message``.
    """
    if isinstance(data, Scenario):
        return data
    try:
        if isinstance(data, (str, bytes)):
            return Scenario.model_validate_json(data)
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        if any(p["type"] == "json_invalid" for p in problems):
            raise ScenarioError(f"{source} is not valid JSON: {problems[0]['msg']}", problems) from None
        lines = "\n".join(f"  {p['loc']}: {p['msg']}" for p in problems)
        raise ScenarioError(f"{source} is not a valid scenario ({len(problems)} problem"
                            f"{'s' if len(problems) > 1 else ''}):\n{lines}", problems) from None


def load_scenario(path) -> Scenario:
    """Read and validate a scenario JSON file."""
    from twin.errors import TwinIOError

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TwinIOError(f"cannot read scenario {p}: {exc}") from exc
    return parse_scenario(text, source=str(p))
