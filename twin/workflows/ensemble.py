"""Ensembles: many scenarios x storms as independent Dask tasks, each computed once.

Every member is one :func:`twin.sim.heavyrain.simulate` call (a scenario's grid or DEM with one
storm). Members are identified by a content key, the SHA-256 of the source's data (file bytes or the
grid's fields and transform), the storm's rain series, the duration and the options, so

- two members with the same key in one ensemble run once (one Dask task, both rows point to it);
- with ``out_dir``, a member whose folder already holds a ``run.json`` with that key is not run again;
- with ``registry`` (a :class:`twin.workflows.registry.RunRegistry` or anything with its ``find_done``,
  ``create`` and ``update``), a ``done`` run of the same key (``scenario_hash``) and inputs is reused and
  every new member is registered (queued -> running -> done/failed) with its run folder.

The members run on ``client`` (:func:`twin.cluster.dask_client`) or on threads in this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from twin.errors import TwinIOError, TwinValueError

__all__ = ["ensemble_key", "run_ensemble"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MODELS = ["heavyrain"]


def _source_digest(source) -> str:
    h = hashlib.sha256()
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.is_file():
            raise TwinIOError(f"ensemble source {p} is not a file; give a DEM GeoTIFF or a twin Grid")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    if hasattr(source, "fields") and hasattr(source, "transform"):
        h.update(repr(tuple(source.transform)[:6]).encode())
        for name in sorted(source.fields):
            a = np.ascontiguousarray(source[name])
            h.update(name.encode() + str(a.dtype).encode() + repr(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()
    raise TwinValueError(f"ensemble sources are DEM GeoTIFF paths or twin Grids, got {type(source).__name__}")


def ensemble_key(source_digest: str, rain, duration_s: float, options: Mapping[str, Any]) -> str:
    """Content key of one member (SHA-256 hex)."""
    doc = {"source": source_digest, "rain_times_s": np.asarray(rain.times_s, float).tolist(),
           "rain_mm_per_h": np.asarray(rain.intensity_mm_per_h, float).tolist(), "duration_s": float(duration_s),
           "options": {k: options[k] for k in sorted(options)}, "models": MODELS}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _member(source, rain, duration_s, options, run_dir, key) -> dict:
    from twin.sim.heavyrain import simulate

    t0 = time.perf_counter()
    res = simulate(source, duration_s=duration_s, rain=rain, keep_snapshots=False, **options)
    md = res.dataset["max_depth"].to_numpy()
    cell = float(res.run_info["grid"]["cell_size_m"])
    wb = res.run_info["water_balance"]
    row = {"key": key, "max_depth_m": float(np.nanmax(md)), "wet_area_m2": float(np.sum(md >= 0.1)) * cell * cell,
           "rain_m3": wb["rain_m3"], "outflow_m3": wb["outflow_m3"], "volume_error": wb["relative_error"],
           "wall_s": time.perf_counter() - t0, "run_dir": None}
    if run_dir is not None:
        res.write(run_dir, overwrite=True)
        info = json.loads((Path(run_dir) / "run.json").read_text())
        info["ensemble_key"] = key
        (Path(run_dir) / "run.json").write_text(json.dumps(info, indent=2, default=str))
        row["run_dir"] = str(run_dir)
    return row


def _stored(run_dir: Path, key: str) -> dict | None:
    """The summary of a finished member in ``run_dir`` with this key, else None."""
    try:
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    if info.get("ensemble_key") != key:
        return None
    import xarray as xr

    from twin.sim.heavyrain.simulate import NETCDF_LOCK

    with NETCDF_LOCK, xr.open_dataset(run_dir / "result.nc") as ds:
        md = ds["max_depth"].to_numpy()
    cell = float(info["grid"]["cell_size_m"])
    wb = info["water_balance"]
    return {"key": key, "max_depth_m": float(np.nanmax(md)), "wet_area_m2": float(np.sum(md >= 0.1)) * cell * cell,
            "rain_m3": wb["rain_m3"], "outflow_m3": wb["outflow_m3"], "volume_error": wb["relative_error"],
            "wall_s": 0.0, "run_dir": str(run_dir)}


def run_ensemble(scenarios: Mapping[str, Any], storms: Mapping[str, Any], *, duration_s: float,
                 out_dir: str | os.PathLike | None = None, registry=None, client=None,
                 progress: bool | Callable[[int, int], None] = False, **simulate_options):
    """Run every scenario with every storm (heavy rain) as independent tasks; one summary row per member.

    Parameters
    ----------
    scenarios : mapping name -> Grid or DEM GeoTIFF path
        Names ``[A-Za-z0-9_.-]{1,64}``.
    storms : mapping name -> RainSeries
        E.g. :func:`twin.sim.heavyrain.design_storm` for several return periods and durations.
    duration_s : float
        Simulated time of every member (s).
    out_dir : path, optional
        Write each member to ``out_dir/<scenario>__<storm>/`` (the simulate run folder) and reuse folders
        that hold the same member already.
    registry : RunRegistry, optional
        Reuse ``done`` runs with the same key and register new ones (see the module docstring).
    client : distributed.Client, optional
    progress : bool or callable(done, total)
    **simulate_options
        Passed to every :func:`~twin.sim.heavyrain.simulate` call (boundary, manning_n, ...).

    Returns
    -------
    pandas.DataFrame
        ``scenario``, ``storm``, ``key``, ``status`` (``run``, ``same-as`` another member, ``reused``),
        ``max_depth_m``, ``wet_area_m2`` (depth >= 0.1 m), ``rain_m3``, ``outflow_m3``, ``volume_error``,
        ``wall_s``, ``run_dir``, ``run_id`` (with a registry).
    """
    import dask
    import pandas as pd

    from twin.cluster import compute
    from twin.sim.heavyrain.forcing import RainSeries

    if not scenarios or not storms:
        raise TwinValueError("an ensemble needs at least one scenario and one storm")
    for name in list(scenarios) + list(storms):
        if not _NAME.match(str(name)):
            raise TwinValueError(f"ensemble member name {name!r} must match [A-Za-z0-9_.-]{{1,64}}")
    for name, s in storms.items():
        if not isinstance(s, RainSeries):
            raise TwinValueError(f"storm {name!r} must be a RainSeries (design_storm, uniform_rain, read_rain_csv)")
    if not (duration_s > 0):
        raise TwinValueError(f"duration {duration_s} s must be > 0")
    out = Path(out_dir) if out_dir is not None else None
    digests = {n: _source_digest(s) for n, s in scenarios.items()}
    rows, jobs, job_keys = [], [], {}
    for sn, source in scenarios.items():
        for tn, rain in storms.items():
            key = ensemble_key(digests[sn], rain, duration_s, simulate_options)
            run_dir = out / f"{sn}__{tn}" if out is not None else None
            row = {"scenario": sn, "storm": tn, "key": key, "run_id": None}
            if key in job_keys:
                row["status"] = "same-as"
            elif registry is not None and (rec := registry.find_done(key, MODELS, inputs={"source": digests[sn]})):
                row["status"], row["run_id"] = "reused", rec.id
                job_keys[key] = ("stored", Path(rec.run_dir))
            elif run_dir is not None and _stored(run_dir, key) is not None:
                row["status"] = "reused"
                job_keys[key] = ("stored", run_dir)
            else:
                row["status"] = "run"
                if registry is not None:
                    rec = registry.create(scenario_id=f"{sn}__{tn}"[:64], scenario_hash=key, models=MODELS,
                                          inputs={"source": digests[sn]},
                                          run_dir=str(run_dir) if run_dir is not None else "")
                    row["run_id"] = rec.id
                    registry.update(rec.id, status="running", message="ensemble member running")
                job_keys[key] = ("job", len(jobs))
                jobs.append(dask.delayed(_member, pure=True)(source, rain, float(duration_s), dict(simulate_options),
                                                             str(run_dir) if run_dir is not None else None, key))
            rows.append(row)
    try:
        results = compute(*jobs, client=client, progress=progress, desc="ensemble") if jobs else []
    except Exception as exc:
        if registry is not None:
            for r in rows:
                if r["status"] == "run" and r["run_id"]:
                    registry.update(r["run_id"], status="failed", error=str(exc)[:2000])
        raise
    summary = {}
    for key, (kind, where) in job_keys.items():
        summary[key] = results[where] if kind == "job" else _stored(where, key)
        if summary[key] is None:  # a registry run whose folder holds no ensemble member
            raise TwinIOError(f"the registry's run folder {where} holds no finished member {key[:12]}; delete that "
                              "run or pass reuse through out_dir")
    for r in rows:
        s = summary[r["key"]]
        r.update({k: v for k, v in s.items() if k != "key"})
        if registry is not None and r["status"] == "run":
            registry.update(r["run_id"], status="done", progress=1.0, message="done",
                            water_balance={"rain_m3": s["rain_m3"], "outflow_m3": s["outflow_m3"],
                                           "relative_error": s["volume_error"]}, timings={"simulate_s": s["wall_s"]})
    return pd.DataFrame(rows, columns=["scenario", "storm", "key", "status", "max_depth_m", "wet_area_m2", "rain_m3",
                                       "outflow_m3", "volume_error", "wall_s", "run_dir", "run_id"])
