"""Simulation results as the tiles writer sees them: run folders and live snapshots.

A run folder holds a NetCDF file of 2-D fields (``result.nc``, or the only ``*.nc``) on cell-centre
coordinates ``x`` and ``y`` in the scene CRS, optionally with a ``time`` dimension for snapshots,
an optional ``run.json`` (recorded as is in the manifest) and optional per-building tables
(``*.parquet`` with a ``gml_id`` column, e.g. ``buildings_exposure.parquet``). Nothing in here
knows a particular model: every 2-D variable becomes a drape, every depth-like one also a water
surface, every table column and every field's value at each building a building property.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from twin.errors import TwinIOError, TwinValueError
from twin.tiles.colormaps import colormap_for

__all__ = ["RunResults", "ResultField", "read_run", "building_values", "SnapshotWriter", "is_depth_field",
           "update_manifest"]


@dataclass
class ResultField:
    """One 2-D result: ``values`` (ny, nx) or (nt, ny, nx) on cell centres ``x``, ``y``."""

    name: str
    x: np.ndarray
    y: np.ndarray
    values: np.ndarray
    units: str | None = None
    times: np.ndarray | None = None    # seconds since the run's start, when time-dependent
    long_name: str | None = None


@dataclass
class RunResults:
    """A run folder: its fields, per-building tables and ``run.json``."""

    name: str
    path: Path | None
    fields: list[ResultField] = field(default_factory=list)
    buildings: pd.DataFrame | None = None      # index gml_id
    info: dict = field(default_factory=dict)


def is_depth_field(name: str) -> bool:
    """Depth-like fields (``*depth*``, ``h``) also get a water-surface layer."""
    n = name.lower()
    return "depth" in n or n in ("h", "water_depth")


def _seconds(values) -> np.ndarray:
    v = np.asarray(values)
    if np.issubdtype(v.dtype, np.datetime64):
        return (v - v[0]).astype("timedelta64[ms]").astype(np.float64) / 1000.0
    if np.issubdtype(v.dtype, np.timedelta64):
        return v.astype("timedelta64[ms]").astype(np.float64) / 1000.0
    return v.astype(np.float64)


def read_run(path: str | os.PathLike, *, name: str | None = None) -> RunResults:
    """Read a run folder (see the module docstring).

    Raises
    ------
    TwinIOError
        When the folder has neither a NetCDF file nor a per-building table.
    """
    import xarray as xr

    path = Path(path)
    if not path.is_dir():
        raise TwinIOError(f"run folder {path} does not exist; pass the folder a simulation wrote (--run RUN_DIR)")
    info = {}
    if (path / "run.json").exists():
        try:
            info = json.loads((path / "run.json").read_text())
        except ValueError as exc:
            raise TwinIOError(f"{path / 'run.json'} is not valid JSON ({exc}); fix or remove it") from exc
    run_name = name or str(info.get("name") or info.get("id") or path.name)
    run_name = re.sub(r"[^0-9A-Za-z_.-]", "_", run_name)
    res = RunResults(run_name, path, info=info)
    ncs = [path / "result.nc"] if (path / "result.nc").exists() else sorted(path.glob("*.nc"))
    if len(ncs) > 1:
        raise TwinIOError(f"{path} holds several NetCDF files ({', '.join(p.name for p in ncs)}) and no result.nc; "
                          "name the one to tile result.nc")
    if ncs:
        with xr.open_dataset(ncs[0]) as ds:
            xname = next((n for n in ("x", "easting", "lon") if n in ds.dims), None)
            yname = next((n for n in ("y", "northing", "lat") if n in ds.dims), None)
            if xname is None or yname is None:
                raise TwinIOError(f"{ncs[0]} has no x/y dimensions (dims {list(ds.dims)}); write fields on x, y "
                                  "cell-centre coordinates in the scene CRS")
            x = ds[xname].values.astype(np.float64)
            y = ds[yname].values.astype(np.float64)
            for var in ds.data_vars:
                da = ds[var]
                dims = set(da.dims)
                if not np.issubdtype(da.dtype, np.number) or not {xname, yname} <= dims:
                    continue
                extra = dims - {xname, yname}
                if len(extra) > 1 or (extra and "time" not in extra):
                    continue
                if extra:
                    da = da.transpose("time", yname, xname)
                    times = _seconds(ds["time"].values)
                else:
                    da = da.transpose(yname, xname)
                    times = None
                res.fields.append(ResultField(str(var), x, y, np.asarray(da.values, np.float64),
                                              da.attrs.get("units"), times, da.attrs.get("long_name")))
    tables = []
    for pq in sorted(path.glob("*.parquet")):
        df = pd.read_parquet(pq)
        if "gml_id" not in df.columns:
            continue
        df = df.set_index(df["gml_id"].astype(str)).drop(columns=["gml_id"])
        keep = [c for c in df.columns if c != "geometry" and (pd.api.types.is_numeric_dtype(df[c])
                                                              or pd.api.types.is_bool_dtype(df[c])
                                                              or pd.api.types.is_string_dtype(df[c])
                                                              or isinstance(df[c].dtype, pd.CategoricalDtype))]
        df = df[keep]
        for c in df.columns:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].astype(str)
        tables.append(df[~df.index.duplicated()])
    if tables:
        res.buildings = pd.concat(tables, axis=1)
        res.buildings = res.buildings.loc[:, ~res.buildings.columns.duplicated()]
    if not res.fields and res.buildings is None:
        raise TwinIOError(f"{path} has no result NetCDF (result.nc) and no per-building table (*.parquet with a "
                          "gml_id column): nothing to tile")
    return res


def building_values(run: RunResults, gml_ids: np.ndarray, bbox: np.ndarray) -> pd.DataFrame:
    """Per-building properties of a run (index gml_id), named ``<run>_<column>``.

    Table columns are taken as they are. Each static field adds its value at the building: the
    maximum (the minimum for ``*time*``/``arrival*`` fields) over the cells within one cell of the
    building's footprint bounding box ``bbox`` (n, 4: west, south, east, north), so water standing
    against the walls counts even where the building's own cells are blocked.
    """
    out = pd.DataFrame(index=pd.Index(np.asarray(gml_ids, dtype=str), name="gml_id"))
    desc = {}
    if run.buildings is not None:
        tab = run.buildings.reindex(out.index)
        for c in tab.columns:
            out[f"{run.name}_{c}"] = tab[c].to_numpy()
            desc[f"{run.name}_{c}"] = f"run {run.name}: {c}"
    for f in run.fields:
        if f.times is not None:
            continue
        xs, ys = f.x, f.y
        dx = abs(xs[1] - xs[0]) if len(xs) > 1 else 1.0
        dy = abs(ys[1] - ys[0]) if len(ys) > 1 else 1.0
        x_asc = xs if xs[-1] >= xs[0] else xs[::-1]
        v = f.values if xs[-1] >= xs[0] else f.values[:, ::-1]
        y_asc = ys if ys[-1] >= ys[0] else ys[::-1]
        v = v if ys[-1] >= ys[0] else v[::-1]
        lowest = "time" in f.name.lower() or "arrival" in f.name.lower()
        c0 = np.searchsorted(x_asc, bbox[:, 0] - dx, side="left")
        c1 = np.searchsorted(x_asc, bbox[:, 2] + dx, side="right")
        r0 = np.searchsorted(y_asc, bbox[:, 1] - dy, side="left")
        r1 = np.searchsorted(y_asc, bbox[:, 3] + dy, side="right")
        vals = np.full(len(bbox), np.nan)
        for i in range(len(bbox)):
            win = v[r0[i]:r1[i], c0[i]:c1[i]]
            if win.size and np.isfinite(win).any():
                vals[i] = np.nanmin(win) if lowest else np.nanmax(win)
        col = f"{run.name}_{f.name}_{'min' if lowest else 'max'}"
        out[col] = vals
        desc[col] = (f"run {run.name}: {'minimum' if lowest else 'maximum'} of {f.long_name or f.name}"
                     f"{' (' + f.units + ')' if f.units else ''} within one cell of the building")
    out.attrs["descriptions"] = desc
    return out


# ---------------------------------------------------------------------------------------- manifest
def update_manifest(tiles_dir: Path, change) -> dict:
    """Read ``manifest.json``, apply ``change(manifest)`` and write it back atomically."""
    from twin.tiles._tileset import write_json

    path = Path(tiles_dir) / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"format": "twin-tiles", "version": 1,
                                                                   "layers": [], "runs": []}
    change(manifest)
    write_json(path, manifest)
    return manifest


def style_for(field_: ResultField, styles: Mapping[str, dict] | None) -> dict:
    if styles and field_.name in styles:
        return dict(styles[field_.name])
    return colormap_for(field_.name, field_.units, field_.values)


class SnapshotWriter:
    """Write time snapshots of results as tiles while a simulation runs.

    Each snapshot is written into a hidden folder and renamed into place, then listed in
    ``manifest.json`` (rewritten atomically): a viewer never sees a half-written snapshot.

    Parameters
    ----------
    tiles_dir : path
        A folder written by :func:`twin.tiles.write_tiles` (or a new one).
    scene : Scene
        Gives the terrain the results are draped on and the georeference.
    run : str
        Run name: snapshots go to ``tiles_dir/runs/<run>/snapshots/<index>/<field>/``.
    styles : mapping, optional
        Per field ``{"colormap", "vmin", "vmax", "transparent_below"}``; fixed for all snapshots
        (default: depth 0..1 m ``water``, others from the first snapshot).

    Examples
    --------
    >>> writer = SnapshotWriter("tiles", scene, run="storm")          # doctest: +SKIP
    >>> model.run(3600, callback=writer, callback_interval=600)       # doctest: +SKIP
    """

    def __init__(self, tiles_dir, scene, *, run: str, styles: Mapping[str, dict] | None = None,
                 quantize: bool = True, tile_cells: int = 128, vertical_datum: str | None = None,
                 allow_local: bool = False, pyramid=None) -> None:
        from twin.tiles.frame import local_frame
        from twin.tiles.terrain import TerrainPyramid

        if scene.terrain is None:
            raise TwinValueError("the scene has no terrain to drape results on; import it with --terrain DEM")
        self.tiles_dir = Path(tiles_dir)
        self.run = re.sub(r"[^0-9A-Za-z_.-]", "_", run)
        self.styles = dict(styles or {})
        self.quantize = quantize
        if pyramid is None:
            frame = local_frame(scene.crs, scene.origin, vertical_datum=vertical_datum, allow_local=allow_local)
            pyramid = TerrainPyramid(scene.terrain, frame, tile_cells=tile_cells)
        self.pyramid = pyramid
        self.count = 0

    def __call__(self, model) -> Path:
        """Snapshot callback for :meth:`twin.sim.heavyrain.HeavyRainModel.run`: writes its depth ``h``."""
        x, y = model.cell_centres()
        return self.write(float(model.time), {"depth": np.asarray(model.h)}, x=x, y=y)

    def write(self, time_s: float, fields: Mapping[str, np.ndarray], *, x, y, units: Mapping[str, str] | None = None,
              index: int | None = None) -> Path:
        """Write one snapshot of 2-D ``fields`` (ny, nx) on cell centres ``x``, ``y``; returns its folder."""
        from twin.tiles.terrain import FieldSampler, drape_metadata, write_drape, write_water_surface

        i = self.count if index is None else int(index)
        base = self.tiles_dir / "runs" / self.run / "snapshots"
        final = base / str(i)
        tmp = base / f".{i}.partial"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        layers = []
        for name, values in fields.items():
            u = (units or {}).get(name, "m" if is_depth_field(name) else None)
            if name not in self.styles:
                st = colormap_for(name, u, values)
                if is_depth_field(name):
                    st["vmax"] = 1.0
                self.styles[name] = st
            st = self.styles[name]
            sampler = FieldSampler(x, y, values)
            meta = drape_metadata(name, u, st, run=self.run, time_s=time_s)
            write_drape(self.pyramid, tmp / name, sampler, st, meta=meta, quantize=self.quantize)
            rel = f"runs/{self.run}/snapshots/{i}"
            layers.append({"id": f"{self.run}/{i}/{name}", "kind": "drape", "field": name,
                           "tileset": f"{rel}/{name}/tileset.json", "replaces": "terrain", "style": _style_json(st, u)})
            if is_depth_field(name):
                write_water_surface(self.pyramid, tmp / f"{name}_water", sampler, st, meta=meta, quantize=self.quantize)
                layers.append({"id": f"{self.run}/{i}/{name}/water", "kind": "water", "field": name,
                               "tileset": f"{rel}/{name}_water/tileset.json", "style": _style_json(st, u)})
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)   # the snapshot appears at once

        def change(m):
            run = next((r for r in m["runs"] if r["id"] == self.run), None)
            if run is None:
                run = {"id": self.run, "snapshots": []}
                m["runs"].append(run)
            snaps = [s for s in run.setdefault("snapshots", []) if s["index"] != i]
            snaps.append({"index": i, "time_s": float(time_s), "layers": layers})
            run["snapshots"] = sorted(snaps, key=lambda s: s["time_s"])
        update_manifest(self.tiles_dir, change)
        self.count = max(self.count, i + 1)
        return final


def _style_json(style: dict, units: str | None) -> dict:
    from twin.tiles.colormaps import COLORMAPS

    return {"colormap": style["colormap"], "vmin": float(style["vmin"]), "vmax": float(style["vmax"]),
            "transparent_below": style.get("transparent_below"), "units": units or "",
            "stops": [list(c) for c in COLORMAPS[style["colormap"]]]}
