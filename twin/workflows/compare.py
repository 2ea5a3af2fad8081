"""Comparison of two or more runs: difference maps, a per-building change table and indicators.

The first run is the reference (usually the baseline scenario); every other run is compared with it.
A run is a folder in the workspace layout (``heavyrain/``, ``screening/``, ``heat/`` subfolders, see
DESIGN.md "Workspace, scenarios and runs") or a single model's run folder as ``twin sim heavyrain``,
``twin sim screening`` or ``twin sim heat`` write it (recognised by its files), or a mapping
``{"heavyrain": dir, "screening": dir, "heat": dir}`` of such folders.

What is compared (each where the runs have it):

- Maps (:attr:`Comparison.maps`, an xarray Dataset, dimension ``run``): ``max_depth`` (m) and
  ``arrival_time`` (s, first time the depth reaches 0.1 m) of the dynamic heavy-rain model, air
  temperature ``air_temperature`` (degC) and ``utci`` (degC) of the heat model; ``delta_<field>`` =
  run minus reference (0 for the reference; NaN where either value is NaN, e.g. an arrival time where
  one of the runs never reaches 0.1 m) and ``flood_change`` (+1 flooded above 0.1 m only in the run,
  -1 only in the reference). Runs on a grid other than the reference's are sampled onto it by
  nearest neighbour (``attrs["resampled"]`` says which). Heat fields on a grid other than the
  heavy-rain grid get their own dimensions ``y_heat``/``x_heat``.
- Buildings (:attr:`Comparison.buildings`, a GeoDataFrame in the scene CRS, one row per building,
  index ``gml_id``): per run ``max_depth_m[run]`` (maximum over the building's outline: the cells
  outside any footprint that touch it, as the screening's exposure does), ``arrival_time_s[run]``
  (minimum there), ``exposure[run]`` (screening class low/medium/high), ``ta_c[run]`` and
  ``utci_c[run]`` (mean over the cells outside any footprint within ``ring_m`` of it: the street
  space around the building), and for every run but the reference ``delta_<quantity>[run]`` and
  ``exposure_change[run]``.
- Indicators (:attr:`Comparison.indicators`, a DataFrame indexed by indicator, a column per run,
  ``delta[run]`` columns, ``unit`` and ``label``): flooded area above 0.1/0.3/0.5 m (cells with a
  maximum depth above the threshold; cells inside a retention basin of any run's scenario are left
  out in every run, as the water stands there on purpose), buildings per exposure class, the volume retained where it fell
  (the dynamic run's infiltration volume, which includes initial losses and the storage the scenario
  edits add, e.g. unsealed soil or green roofs; without a dynamic run the screening's volume ponded in
  depressions), the surface runoff volume and the water balance terms, and the area outside buildings
  above each UTCI heat-stress class
  (Bröde et al. 2012: >26 moderate, >32 strong, >38 very strong, >46 degC extreme) with the mean air
  temperature and UTCI there.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np

from twin.errors import TwinIOError, TwinValueError

__all__ = ["compare_runs", "compare_run_dirs", "Comparison", "RunSource", "locate_run", "FLOOD_THRESHOLDS_M",
           "UTCI_CLASSES", "EXPOSURE_CLASSES"]

#: Depth thresholds of the flooded-area indicators (m), after the German heavy-rain hazard map classes.
FLOOD_THRESHOLDS_M: tuple[float, ...] = (0.1, 0.3, 0.5)
#: UTCI heat-stress classes (lower bound in degC, key, English name), Bröde et al. (2012), Int J Biometeorol 56:481.
UTCI_CLASSES: tuple[tuple[float, str, str], ...] = (
    (26.0, "moderate", "moderate heat stress"), (32.0, "strong", "strong heat stress"),
    (38.0, "very_strong", "very strong heat stress"), (46.0, "extreme", "extreme heat stress"))
EXPOSURE_CLASSES: tuple[str, ...] = ("low", "medium", "high")
#: Depth (m) from which a cell counts as flooded in ``flood_change`` (the model's arrival threshold).
FLOODED_M = 0.1

RunLike = Union[str, os.PathLike, Mapping[str, Union[str, os.PathLike]]]
_MODELS = ("heavyrain", "screening", "heat")


# ------------------------------------------------------------------------------------------ run folders
@dataclass
class RunSource:
    """Where one run's model outputs are: ``heavyrain``, ``screening`` and ``heat`` folders (None if absent)."""

    id: str
    label: str
    path: Path | None = None
    heavyrain: Path | None = None
    screening: Path | None = None
    heat: Path | None = None
    scene: Path | None = None
    info: dict = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return [m for m in _MODELS if getattr(self, m) is not None]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError as exc:
        raise TwinIOError(f"{path} is not valid JSON ({exc}); fix or remove it") from exc


def _model_of(folder: Path) -> str | None:
    """Which model wrote a single-model run folder (by its files), or None."""
    if (folder / "buildings_exposure.parquet").exists() or (folder / "sinks.gpkg").exists():
        return "screening"
    if (folder / "svf.tif").exists():
        return "heat"
    if (folder / "max_depth.tif").exists():
        return "heavyrain"
    info = _read_json(folder / "run.json")
    if info.get("kind") == "heavyrain-screening":
        return "screening"
    if "svf_kind" in info:
        return "heat"
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]", "_", str(text))[:64] or "run"


def locate_run(run: RunLike, *, workspace: str | os.PathLike | None = None, label: str | None = None) -> RunSource:
    """Resolve a run id (in ``workspace``), a run folder or a ``{model: folder}`` mapping to a :class:`RunSource`."""
    if isinstance(run, Mapping):
        unknown = set(run) - set(_MODELS)
        if unknown:
            raise TwinValueError(f"unknown model(s) {sorted(unknown)} in a run mapping; use {list(_MODELS)}")
        dirs = {m: Path(p) for m, p in run.items()}
        for m, p in dirs.items():
            if not p.is_dir():
                raise TwinIOError(f"{m} run folder {p} does not exist")
        first = next(iter(dirs.values()))
        rid = label or _slug(first.parent.name if len(dirs) > 1 else first.name)
        src = RunSource(rid, label or rid, None, **dirs)
        src.scene = _scene_of(src, workspace)
        return src
    p = Path(run)
    if not p.is_dir() and workspace is not None and (Path(workspace) / "runs" / str(run)).is_dir():
        p = Path(workspace) / "runs" / str(run)
    if not p.is_dir():
        where = f" nor a run id in {Path(workspace) / 'runs'}" if workspace is not None else ""
        raise TwinIOError(f"run {run!s} is neither a folder{where}; pass a run folder or an id of WORKSPACE/runs")
    info = _read_json(p / "run.json")
    scen = _read_json(p / "scenario.json")
    dirs = {m: p / m for m in _MODELS if (p / m).is_dir()}
    if not dirs:
        model = _model_of(p)
        if model is None:
            raise TwinIOError(f"{p} holds no heavyrain/, screening/ or heat/ results and is no model's run folder "
                              "(result.nc + max_depth.tif, buildings_exposure.parquet, svf.tif); nothing to compare")
        dirs = {model: p}
    rid = str(info.get("id") or p.name)
    name = label or scen.get("name") or info.get("scenario_name") or info.get("scenario_id") or rid
    src = RunSource(_slug(rid), str(name), p, info=info, **dirs)
    if workspace is None and p.parent.name == "runs":
        workspace = p.parent.parent
    src.scene = _scene_of(src, workspace, scen)
    return src


def _scene_of(src: RunSource, workspace, scen: dict | None = None) -> Path | None:
    """The scene folder a run was computed on, where it can be found."""
    cands = []
    sid = (scen or {}).get("scene") or src.info.get("scene_id") or src.info.get("scene")
    if sid and workspace is not None:
        cands.append(Path(workspace) / "scenes" / str(sid))
    if src.screening is not None:
        s = _read_json(src.screening / "run.json").get("inputs", {}).get("scene")
        if s:
            cands.append(Path(s))
    for c in cands:
        if (c / "scene.json").exists():
            return c
    return None


# ------------------------------------------------------------------------------------------ reading
@dataclass
class _Field:
    values: np.ndarray      # (ny, nx)
    x: np.ndarray
    y: np.ndarray
    units: str

    @property
    def cell_area(self) -> float:
        dx = abs(float(self.x[1] - self.x[0])) if len(self.x) > 1 else 1.0
        dy = abs(float(self.y[1] - self.y[0])) if len(self.y) > 1 else dx
        return dx * dy


def _read_fields(folder: Path | None, names: Sequence[str]) -> dict[str, _Field]:
    import xarray as xr

    if folder is None or not (folder / "result.nc").exists():
        return {}
    out = {}
    with xr.open_dataset(folder / "result.nc") as ds:
        for n in names:
            if n in ds and set(ds[n].dims) == {"y", "x"}:
                da = ds[n].transpose("y", "x")
                out[n] = _Field(np.asarray(da.values, np.float64), ds["x"].values.astype(np.float64),
                                ds["y"].values.astype(np.float64), str(da.attrs.get("units", "")))
    return out


def _water_balance(folder: Path | None) -> dict | None:
    if folder is None:
        return None
    info = _read_json(folder / "run.json")
    wb = info.get("water_balance")
    if wb:
        return wb
    import xarray as xr

    if (folder / "result.nc").exists():
        with xr.open_dataset(folder / "result.nc") as ds:
            if "rain_volume" in ds:
                last = {k: float(ds[v].values[-1]) for k, v in (("rain_m3", "rain_volume"), ("inflow_m3", "inflow_volume"),
                        ("infiltration_m3", "infiltration_volume"), ("drainage_m3", "drainage_volume"),
                        ("outflow_m3", "outflow_volume"), ("storage_m3", "storage_volume")) if v in ds}
                return last
    return None


def _exposure_table(folder: Path | None):
    if folder is None or not (folder / "buildings_exposure.parquet").exists():
        return None
    import geopandas as gpd
    import pandas as pd

    try:
        df = gpd.read_parquet(folder / "buildings_exposure.parquet")
    except (ValueError, KeyError):
        df = pd.read_parquet(folder / "buildings_exposure.parquet")
    df = df[df["gml_id"].notna()].copy()
    df["gml_id"] = df["gml_id"].astype(str)
    if "exposure" in df:
        df["exposure"] = df["exposure"].astype(str)
    return df.set_index("gml_id")


# ------------------------------------------------------------------------------------------ footprints
def footprints_from_scene(scene) -> "geopandas.GeoDataFrame":
    """One footprint polygon per building of ``scene`` (the union of its footprint triangles, in the
    scene CRS) with ``name``, ``address`` and ``function`` where the scene has them; index ``gml_id``."""
    import geopandas as gpd
    import shapely

    from twin.grid import building_footprints
    from twin.scene import Scene

    if not isinstance(scene, Scene):
        scene = Scene.load(scene)
    idx, bld = building_footprints(scene)
    xy = scene.vertices[:, :2][scene.triangles[idx]]           # (m, 3, 2)
    tris = shapely.polygons(np.concatenate([xy, xy[:, :1]], axis=1))
    ok = shapely.area(tris) > 1e-9
    rows = []
    for b in np.unique(bld):
        geom = shapely.union_all(tris[(bld == b) & ok], grid_size=1e-3)
        rows.append((int(b), geom))
    feats = scene.features
    attrs = scene.attributes
    data = {"gml_id": [str(feats.loc[b, "gml_id"]) for b, _ in rows]}
    for col in ("name", "address", "function"):
        if col in attrs.columns:
            data[col] = [None if (b not in attrs.index or _isna(attrs.loc[b, col])) else str(attrs.loc[b, col])
                         for b, _ in rows]
    crs = None if scene.crs.is_local else f"EPSG:{scene.crs.horizontal_epsg}"
    gdf = gpd.GeoDataFrame(data, geometry=[g for _, g in rows], crs=crs)
    return gdf.set_index("gml_id")


def _isna(v) -> bool:
    try:
        return bool(v is None or (isinstance(v, float) and math.isnan(v)) or v is getattr(__import__("pandas"), "NA"))
    except TypeError:
        return False


def _footprints(runs: Sequence[RunSource], screening_tables: Sequence, footprints):
    import geopandas as gpd

    if footprints is not None:
        fp = footprints.copy()
        if "gml_id" in fp.columns:
            fp = fp.set_index("gml_id")
        fp.index = fp.index.astype(str)
        return fp, "given"
    for r in runs:
        if r.scene is not None:
            return footprints_from_scene(r.scene), f"scene {r.scene}"
    for t in screening_tables:
        if t is not None and "geometry" in t and isinstance(t, gpd.GeoDataFrame):
            return gpd.GeoDataFrame(geometry=t.geometry, crs=t.crs), "screening footprint cells"
    return None, "none"


def _label_raster(fp, f: _Field) -> np.ndarray:
    """Footprint index (0..n-1) of every cell whose centre lies in a footprint, -1 elsewhere."""
    from affine import Affine
    from rasterio import features

    dx = float(f.x[1] - f.x[0]) if len(f.x) > 1 else 1.0
    dy = float(f.y[1] - f.y[0]) if len(f.y) > 1 else -dx
    transform = Affine(dx, 0, f.x[0] - dx / 2, 0, dy, f.y[0] - dy / 2)
    shapes = [(g, i) for i, g in enumerate(fp.geometry) if g is not None and not g.is_empty]
    if not shapes:
        return np.full((len(f.y), len(f.x)), -1, np.int32)
    return features.rasterize(shapes, out_shape=(len(f.y), len(f.x)), transform=transform, fill=-1,
                              dtype="int32", all_touched=False)


def _per_building(labels: np.ndarray, values: np.ndarray, n: int, *, ring_cells: int, how: str) -> np.ndarray:
    """Statistic of ``values`` over each building's ring: cells outside every footprint within
    ``ring_cells`` cells (Chebyshev) of the building's own cells."""
    from scipy import ndimage

    out = np.full(n, np.nan)
    outside = labels < 0
    objs = ndimage.find_objects(labels + 1, max_label=n)
    ny, nx = labels.shape
    k = np.ones((2 * ring_cells + 1, 2 * ring_cells + 1), bool)
    for i, sl in enumerate(objs):
        if sl is None:
            continue
        r0, r1 = max(sl[0].start - ring_cells, 0), min(sl[0].stop + ring_cells, ny)
        c0, c1 = max(sl[1].start - ring_cells, 0), min(sl[1].stop + ring_cells, nx)
        own = labels[r0:r1, c0:c1] == i
        ring = ndimage.binary_dilation(own, structure=k) & outside[r0:r1, c0:c1]
        v = values[r0:r1, c0:c1][ring]
        v = v[np.isfinite(v)]
        if v.size:
            out[i] = {"max": np.max, "min": np.min, "mean": np.mean}[how](v)
    return out


# ------------------------------------------------------------------------------------------ result
@dataclass
class Comparison:
    """Result of :func:`compare_runs`: ``maps`` (xarray Dataset), ``buildings`` (GeoDataFrame),
    ``indicators`` (DataFrame) and the ``runs`` compared (the first is the reference)."""

    runs: list[RunSource]
    maps: "xarray.Dataset"
    buildings: "geopandas.GeoDataFrame"
    indicators: "pandas.DataFrame"
    notes: list[str] = field(default_factory=list)

    @property
    def reference(self) -> RunSource:
        return self.runs[0]

    @property
    def run_ids(self) -> list[str]:
        return [r.id for r in self.runs]

    def write(self, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``maps.nc``, ``buildings.gpkg`` + ``buildings.csv``, ``indicators.csv`` and
        ``comparison.json`` (runs, notes, indicators) into the folder ``out``."""
        out = Path(out)
        names = ["maps.nc", "buildings.gpkg", "buildings.csv", "indicators.csv", "comparison.json"]
        if out.exists() and any((out / n).exists() for n in names) and not overwrite:
            raise TwinIOError(f"{out} already holds a comparison; pass overwrite=True (--overwrite) or another folder")
        out.mkdir(parents=True, exist_ok=True)
        self.maps.to_netcdf(out / "maps.nc")
        b = self.buildings
        if len(b) and b.geometry.notna().any():
            g = b.reset_index()
            g.columns = [re.sub(r"[^0-9A-Za-z_]", "_", c).strip("_") if c != "geometry" else c for c in g.columns]
            if (out / "buildings.gpkg").exists():
                (out / "buildings.gpkg").unlink()
            g.to_file(out / "buildings.gpkg", driver="GPKG", layer="buildings")
        b.drop(columns="geometry", errors="ignore").to_csv(out / "buildings.csv")
        self.indicators.to_csv(out / "indicators.csv")
        (out / "comparison.json").write_text(json.dumps(self.to_dict(), indent=2, default=_json_default,
                                                        allow_nan=False), encoding="utf-8")
        return out

    def to_dict(self) -> dict:
        """JSON-ready summary: runs, indicators (NaN -> None), buildings without geometry, notes."""
        ind = self.indicators
        rows = []
        for key, r in ind.iterrows():
            rows.append({"key": key, "label": r["label"], "unit": r["unit"],
                         "values": {rid: _num(r[rid]) for rid in self.run_ids},
                         "delta": {rid: _num(r[f"delta[{rid}]"]) for rid in self.run_ids[1:]}})
        b = self.buildings.drop(columns="geometry", errors="ignore").reset_index()
        return {"reference": self.reference.id,
                "runs": [{"id": r.id, "label": r.label, "models": r.models, "path": str(r.path) if r.path else None}
                         for r in self.runs],
                "indicators": rows,
                "buildings": [{k: _num(v) for k, v in rec.items()} for rec in b.to_dict(orient="records")],
                "notes": list(self.notes)}


def _num(v):
    if v is None:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    try:
        import pandas as pd

        if v is pd.NA:
            return None
    except ImportError:  # pragma: no cover
        pass
    return v


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


# ------------------------------------------------------------------------------------------ compare
def compare_runs(workspace: str | os.PathLike, run_ids: Sequence[str], *, labels: Sequence[str] | None = None,
                 footprints=None, ring_m: float = 10.0) -> Comparison:
    """Compare runs of a workspace (``WORKSPACE/runs/<id>``); the first is the reference.

    See the module docstring for what is compared. ``labels`` name the runs in tables and plots
    (default: the scenario's name); ``footprints`` (GeoDataFrame with ``gml_id``) replaces the
    footprints taken from the run's scene; ``ring_m`` is the width of the street space around a
    building over which Ta and UTCI are averaged.
    """
    ws = Path(workspace)
    if not (ws / "runs").is_dir():
        raise TwinIOError(f"{ws} is no workspace (it has no runs/ folder); pass the folder with scenes/, runs/, ...")
    return compare_run_dirs(list(run_ids), labels=labels, workspace=ws, footprints=footprints, ring_m=ring_m)


def compare_run_dirs(runs: Sequence[RunLike], *, labels: Sequence[str] | None = None,
                     workspace: str | os.PathLike | None = None, footprints=None, ring_m: float = 10.0) -> Comparison:
    """Compare run folders (or ``{model: folder}`` mappings, or run ids of ``workspace``); the first is
    the reference. See :func:`compare_runs`."""
    import pandas as pd

    if len(runs) < 2:
        raise TwinValueError(f"a comparison needs at least two runs, got {len(runs)}")
    if labels is not None and len(labels) != len(runs):
        raise TwinValueError(f"{len(labels)} labels for {len(runs)} runs; give one label per run")
    srcs = [locate_run(r, workspace=workspace, label=None if labels is None else labels[i]) for i, r in enumerate(runs)]
    seen: dict[str, int] = {}
    for s in srcs:   # unique ids, also when two folders share a name
        if s.id in seen:
            seen[s.id] += 1
            s.id = f"{s.id}-{seen[s.id]}"
        else:
            seen[s.id] = 1
    notes: list[str] = []
    flood = [_read_fields(s.heavyrain, ("max_depth", "arrival_time")) for s in srcs]
    heat = [_read_fields(s.heat, ("air_temperature", "utci")) for s in srcs]
    expo = [_exposure_table(s.screening) for s in srcs]
    for name, have in (("heavy rain", [bool(f) for f in flood]), ("heat (air temperature/UTCI)", [bool(h) for h in heat]),
                       ("screening", [e is not None for e in expo])):
        if any(have) and not all(have):
            notes.append(f"{name} results only in " + ", ".join(s.id for s, h in zip(srcs, have) if h))
    for s in srcs:
        if s.heat is not None and not _read_fields(s.heat, ("air_temperature",)):
            notes.append(f"run {s.id}: the heat run has no air-temperature map (no sensor readings and no "
                         "predictor-only model): Ta and UTCI are not compared")
    fp, fp_source = _footprints(srcs, expo, footprints)
    maps = _maps(srcs, flood, heat, notes)
    buildings = _buildings(srcs, flood, heat, expo, fp, ring_m, notes)
    buildings.attrs["footprints"] = fp_source
    indicators = _indicators(srcs, flood, heat, expo, fp, notes)
    return Comparison(srcs, maps, buildings, indicators, notes)


def _same_grid(a: _Field, b: _Field) -> bool:
    return a.values.shape == b.values.shape and np.allclose(a.x, b.x) and np.allclose(a.y, b.y)


def _onto(f: _Field, ref: _Field) -> np.ndarray:
    """Nearest-neighbour sample of ``f`` at ``ref``'s cell centres (NaN outside ``f``)."""
    def idx(src, dst):
        step = src[1] - src[0] if len(src) > 1 else 1.0
        i = np.rint((dst - src[0]) / step).astype(np.int64)
        ok = (i >= 0) & (i < len(src))
        return np.clip(i, 0, len(src) - 1), ok

    ix, okx = idx(f.x, ref.x)
    iy, oky = idx(f.y, ref.y)
    v = f.values[np.ix_(iy, ix)].copy()
    v[~oky, :] = np.nan
    v[:, ~okx] = np.nan
    return v


def _maps(srcs, flood, heat, notes):
    import xarray as xr

    ids = [s.id for s in srcs]
    data, coords = {}, {"run": ids}
    resampled = []
    attrs = {"reference": ids[0], "flooded_m": FLOODED_M,
             "delta": "run minus reference; NaN where either is NaN"}
    groups = (("", flood, (("max_depth", "m", "maximum water depth"),
                           ("arrival_time", "s", f"first time the depth reaches {FLOODED_M} m"))),
              ("heat", heat, (("air_temperature", "degC", "air temperature"),
                              ("utci", "degC", "Universal Thermal Climate Index"))))
    flood_ref = None
    for suffix, fields, names in groups:
        ref_run = next((f for f in fields if f), None)
        if ref_run is None:
            continue
        ref = next(iter(ref_run.values()))
        if suffix == "":
            flood_ref = ref
            ydim, xdim = "y", "x"
        elif flood_ref is not None and not _same_grid(ref, flood_ref):
            ydim, xdim = "y_heat", "x_heat"
        else:
            ydim, xdim = "y", "x"
        coords[ydim], coords[xdim] = ref.y, ref.x
        for name, units, long_name in names:
            if not any(name in f for f in fields):
                continue
            stack = np.full((len(srcs), len(ref.y), len(ref.x)), np.nan)
            for k, f in enumerate(fields):
                if name not in f:
                    continue
                if _same_grid(f[name], ref):
                    stack[k] = f[name].values
                else:
                    stack[k] = _onto(f[name], ref)
                    if ids[k] not in resampled:
                        resampled.append(ids[k])
            delta = stack - stack[:1]
            data[name] = (("run", ydim, xdim), stack.astype(np.float32), {"units": units, "long_name": long_name})
            data[f"delta_{name}"] = (("run", ydim, xdim), delta.astype(np.float32),
                                     {"units": "K" if units == "degC" else units,
                                      "long_name": f"change of {long_name} against {ids[0]}"})
            if name == "max_depth":
                wet = np.nan_to_num(stack) > FLOODED_M
                change = wet.astype(np.int8) - wet[:1].astype(np.int8)
                data["flood_change"] = (("run", ydim, xdim), change,
                                        {"long_name": f"+1 flooded above {FLOODED_M} m only in the run, "
                                                      "-1 only in the reference"})
    if resampled:
        attrs["resampled"] = ", ".join(resampled)
        notes.append(f"runs on another grid than the reference, sampled onto it (nearest): {attrs['resampled']}")
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _buildings(srcs, flood, heat, expo, fp, ring_m, notes):
    import geopandas as gpd
    import pandas as pd

    ids = [s.id for s in srcs]
    if fp is None:
        index = sorted({g for e in expo if e is not None for g in e.index})
        out = gpd.GeoDataFrame(index=pd.Index(index, name="gml_id"), geometry=[None] * len(index))
        if flood[0] or heat[0]:
            notes.append("no building footprints (no scene, no screening): per-building depths and temperatures "
                         "are not computed")
    else:
        out = gpd.GeoDataFrame(fp.drop(columns="geometry"), geometry=fp.geometry.values, crs=fp.crs,
                               index=pd.Index(fp.index.astype(str), name="gml_id"))
        out["footprint_m2"] = out.geometry.area
    n = len(out)
    quantities: list[str] = []

    def put(q, rid, vals):
        out[f"{q}[{rid}]"] = vals
        if q not in quantities:
            quantities.append(q)

    if fp is not None:
        for fields, specs in ((flood, (("max_depth", "max_depth_m", "max", 1), ("arrival_time", "arrival_time_s", "min", 1))),
                              (heat, (("air_temperature", "ta_c", "mean", None), ("utci", "utci_c", "mean", None)))):
            cache: dict = {}
            for k, f in enumerate(fields):
                for name, q, how, ring in specs:
                    if name not in f:
                        continue
                    fld = f[name]
                    key = (fld.values.shape, float(fld.x[0]), float(fld.y[0]))
                    if key not in cache:
                        cache[key] = _label_raster(out, fld)
                    cells = ring if ring is not None else max(1, int(math.ceil(ring_m / math.sqrt(fld.cell_area))))
                    put(q, ids[k], _per_building(cache[key], fld.values, n, ring_cells=cells, how=how))
    if any(e is not None for e in expo):
        for k, e in enumerate(expo):
            if e is None:
                continue
            out[f"exposure[{ids[k]}]"] = e["exposure"].reindex(out.index).astype(object).to_numpy()
    ordered = [c for c in out.columns if "[" not in c and c != "geometry"]
    for q in quantities:
        for rid in ids:
            if f"{q}[{rid}]" in out:
                ordered.append(f"{q}[{rid}]")
        for rid in ids[1:]:
            if f"{q}[{rid}]" in out and f"{q}[{ids[0]}]" in out:
                out[f"delta_{q}[{rid}]"] = out[f"{q}[{rid}]"] - out[f"{q}[{ids[0]}]"]
                ordered.append(f"delta_{q}[{rid}]")
    if f"exposure[{ids[0]}]" in out:
        ordered += [f"exposure[{rid}]" for rid in ids if f"exposure[{rid}]" in out]
        for rid in ids[1:]:
            if f"exposure[{rid}]" in out:
                a, b = out[f"exposure[{ids[0]}]"], out[f"exposure[{rid}]"]
                out[f"exposure_change[{rid}]"] = [None if (x is None or y is None or x != x or y != y) else
                                                  ("unchanged" if x == y else f"{x} -> {y}") for x, y in zip(a, b)]
                ordered.append(f"exposure_change[{rid}]")
    out = out[ordered + ["geometry"]]
    out.attrs["ring_m"] = ring_m
    return out


def _basins(srcs):
    """Retention basins of the runs' scenarios (``scenario.json`` edits of type ``retention_basin``) as a
    GeoDataFrame, or None."""
    import geopandas as gpd
    from shapely.geometry import shape

    geoms = []
    for s in srcs:
        if s.path is None:
            continue
        for e in _read_json(s.path / "scenario.json").get("edits", []) or []:
            if e.get("type") == "retention_basin" and e.get("area"):
                try:
                    geoms.append(shape(e["area"]))
                except (ValueError, TypeError, KeyError):
                    continue
    return gpd.GeoDataFrame(geometry=geoms) if geoms else None


def _indicators(srcs, flood, heat, expo, fp, notes):
    import pandas as pd

    ids = [s.id for s in srcs]
    rows: list[tuple[str, str, str, list]] = []   # key, unit, label, values per run
    if any("max_depth" in f for f in flood):
        basins = _basins(srcs)
        masks = [None if "max_depth" not in f else
                 (np.ones(f["max_depth"].values.shape, bool) if basins is None else
                  _label_raster(basins, f["max_depth"]) < 0) for f in flood]
        where = "" if basins is None else " (outside retention basins)"
        if basins is not None:
            notes.append(f"flooded areas leave out the {len(basins)} retention basin(s) of the scenarios "
                         "(water stored there on purpose), in every run alike")
        for t in FLOOD_THRESHOLDS_M:
            vals = [float(np.sum((np.nan_to_num(f["max_depth"].values) > t) & m) * f["max_depth"].cell_area)
                    if "max_depth" in f else np.nan for f, m in zip(flood, masks)]
            rows.append((f"flooded_area_gt_{t:g}m", "m2", f"flooded area, maximum depth above {t:g} m{where}", vals))
    if any(e is not None for e in expo):
        for c in EXPOSURE_CLASSES:
            vals = [float((e["exposure"] == c).sum()) if e is not None else np.nan for e in expo]
            rows.append((f"buildings_exposure_{c}", "buildings", f"buildings with {c} exposure", vals))
    wbs = [_water_balance(s.heavyrain) for s in srcs]
    if any(wbs):
        def g(wb, k):
            return float(wb.get(k, 0.0)) if wb else np.nan
        rows.append(("volume_retained", "m3", "volume retained where it fell (infiltration, initial loss, "
                     "green-roof storage)", [g(w, "infiltration_m3") for w in wbs]))
        rows.append(("volume_runoff", "m3", "surface runoff volume (rain + inflow - retained)",
                     [g(w, "rain_m3") + g(w, "inflow_m3") - g(w, "infiltration_m3") for w in wbs]))
        for k, lab in (("rain_m3", "rain volume"), ("infiltration_m3", "infiltrated volume (incl. initial loss)"),
                       ("drainage_m3", "volume drained by the sewer"), ("outflow_m3", "volume leaving the area"),
                       ("storage_m3", "water on the surface at the end")):
            rows.append((f"water_balance_{k[:-3]}", "m3", lab, [g(w, k) for w in wbs]))
    elif any(s.screening is not None for s in srcs):
        vals = []
        for s in srcs:
            fsm = _read_json(s.screening / "run.json").get("fill_spill_merge", {}) if s.screening else {}
            vals.append(float(fsm["ponded_m3"]) if "ponded_m3" in fsm else np.nan)
        if any(np.isfinite(vals)):
            rows.append(("volume_retained", "m3", "volume retained in depressions (screening, fill-spill-merge)", vals))
    if any("utci" in h or "air_temperature" in h for h in heat):
        masks = []
        for h in heat:
            f = h.get("utci") or h.get("air_temperature")
            if f is None:
                masks.append(None)
            elif fp is not None:
                masks.append(_label_raster(fp, f) < 0)
            else:
                masks.append(np.ones(f.values.shape, bool))
        if any("utci" in h for h in heat):
            for lo, key, name in UTCI_CLASSES:
                vals = [float(np.sum((np.nan_to_num(h["utci"].values, nan=-np.inf) > lo) & m) * h["utci"].cell_area)
                        if "utci" in h else np.nan for h, m in zip(heat, masks)]
                rows.append((f"utci_area_gt_{lo:g}", "m2", f"area outside buildings with UTCI above {lo:g} degC "
                                                              f"({name})", vals))
            rows.append(("utci_mean", "degC", "mean UTCI outside buildings",
                         [float(np.nanmean(h["utci"].values[m])) if "utci" in h and np.isfinite(h["utci"].values[m]).any()
                          else np.nan for h, m in zip(heat, masks)]))
        rows.append(("air_temperature_mean", "degC", "mean air temperature outside buildings",
                     [float(np.nanmean(h["air_temperature"].values[m])) if "air_temperature" in h else np.nan
                      for h, m in zip(heat, masks)]))
    df = pd.DataFrame({"label": [r[2] for r in rows], "unit": [r[1] for r in rows]},
                      index=pd.Index([r[0] for r in rows], name="indicator"))
    for k, rid in enumerate(ids):
        df[rid] = [r[3][k] for r in rows]
    for rid in ids[1:]:
        df[f"delta[{rid}]"] = df[rid] - df[ids[0]]
    return df
