"""Heat run: SVF, shadow, air-temperature map (regression kriging), UHI, Tmrt/UTCI and scenario deltas.

:func:`run_heat` is the workflow-level entry the CLI calls; it writes a run folder:
``svf.tif``, ``shadow.tif`` (with a time), ``air_temperature.tif``, ``uhi.tif``,
``air_temperature_se.tif``, ``utci.tif``, ``result.nc`` and ``run.json``.

Scenario mode (:func:`scenario_delta`): the change of Ta from predictor changes is the fitted
coefficients times the change of each buffered predictor (kriged residual unchanged), clipped to the
published spread of block-scale Ta: 3.5 K by day, 2.1 K at night (Ziter et al. 2019, PNAS 116:7575;
parks ~0.94 K cooler by day, Bowler et al. 2010; trees ~0.8 K, Knight et al. 2021). Green roofs
change no street-level predictor and give 0 K (said in the output, not invented).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from twin.errors import TwinValueError

__all__ = ["run_heat", "scenario_delta", "read_sensors_table", "EFFECT_BOUND_K"]

EFFECT_BOUND_K = {"day": 3.5, "night": 2.1}


def scenario_delta(model, delta_predictors: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """Change of Ta (K) from changes of the model's predictors; clipped to :data:`EFFECT_BOUND_K`."""
    shape = next(iter(delta_predictors.values())).shape if delta_predictors else ()
    d = np.zeros(shape)
    used = {}
    for k, name in enumerate(model.predictors):
        if name in delta_predictors:
            d = d + model.coef[k] * np.asarray(delta_predictors[name], float)
            used[name] = float(model.coef[k])
    bound = EFFECT_BOUND_K["night" if model.night else "day"]
    clipped = int(np.sum(np.abs(d) > bound))
    info = {"coefficients_used": used, "bound_k": bound, "cells_clipped": clipped,
            "ignored": sorted(set(delta_predictors) - set(used)),
            "note": "green roofs change no street-level predictor: 0 K at street level"}
    return np.clip(d, -bound, bound), info


def read_sensors_table(path, *, time=None):
    """Station temperatures from a CSV (station, x, y, [time], temperature) or GeoJSON points."""
    import pandas as pd

    p = Path(path)
    if p.suffix.lower() in (".geojson", ".json"):
        feats = json.loads(p.read_text())["features"]
        df = pd.DataFrame([{"station": f["properties"].get("station", i), "x": f["geometry"]["coordinates"][0],
                            "y": f["geometry"]["coordinates"][1], **f["properties"]} for i, f in enumerate(feats)])
    else:
        df = pd.read_csv(p)
    missing = {"station", "x", "y", "temperature"} - set(df.columns)
    if missing:
        raise TwinValueError(f"{path}: columns {sorted(missing)} are missing; expected station, x, y, [time], temperature")
    if "time" in df.columns and time is not None:
        t = pd.Timestamp(time)
        tt = pd.to_datetime(df["time"], utc=True)
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        sel = df[(tt >= t) & (tt < t + pd.Timedelta(hours=1))]
        if sel.empty:
            raise TwinValueError(f"{path}: no readings in the hour from {t.isoformat()}; times there run "
                                 f"{tt.min().isoformat()} .. {tt.max().isoformat()}")
        df = sel.groupby("station", as_index=False).agg(x=("x", "first"), y=("y", "first"), temperature=("temperature", "mean"))
    return df


def run_heat(dsm, *, transform, crs_epsg: int | None, out_dir, dem=None, veg_top=None, sensors=None, time_utc=None,
             directions: int = 32, radius_m: float = 200.0, svf_only: bool = False, wind_m_per_s: float = 2.0,
             rh_pct: float = 50.0, lonlat=None, overwrite: bool = False) -> dict:
    """Run the heat model on a DSM and write the run folder (see the module docstring). Returns run.json."""
    import pandas as pd
    import rasterio
    import xarray as xr

    from twin.sim.heat.airtemp import fit_air_temperature, leave_one_out
    from twin.sim.heat.comfort import mean_radiant_temperature, utci
    from twin.sim.heat.geometry import disc_mean, sky_view_factor, sunlit_fraction
    from twin.sim.heat.sun import solar_position

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise TwinValueError(f"{out} exists and is not empty; use --overwrite or another --out")
    out.mkdir(parents=True, exist_ok=True)
    z = np.asarray(dsm, np.float32)
    cell = float(transform.a)
    timings, run = {}, {"svf_kind": "cosine", "directions": directions, "radius_m": radius_m, "notes": []}
    attrs = {"svf_definition": "cosine-weighted (1 - mean(sin^2 gamma), UMEP)", "directions": directions,
             "radius_m": radius_m}

    def write(name, arr, desc):
        prof = dict(driver="GTiff", height=z.shape[0], width=z.shape[1], count=1, dtype="float32", transform=transform,
                    crs=f"EPSG:{crs_epsg}" if crs_epsg else None, compress="deflate", nodata=np.nan)
        with rasterio.open(out / name, "w", **prof) as dst:
            dst.write(np.asarray(arr, np.float32), 1)
            dst.update_tags(description=desc, **{k: str(v) for k, v in attrs.items()})

    t0 = time.perf_counter()
    svf = sky_view_factor(z, cell_m=cell, directions=directions, radius_m=radius_m, veg_top=veg_top)
    timings["svf_s"] = time.perf_counter() - t0
    write("svf.tif", svf, "sky view factor (cosine-weighted)")
    data = {"svf": (("y", "x"), svf, attrs)}
    sun = None
    if time_utc is not None:
        if lonlat is None:
            raise TwinValueError("a --time needs the scene's position: give a DSM with a CRS")
        sp = solar_position(time_utc, lonlat[1], lonlat[0]).iloc[0]
        sun = (float(sp["azimuth"]), float(sp["apparent_elevation"]))
        t0 = time.perf_counter()
        sl = sunlit_fraction(z, cell_m=cell, sun_azimuth_deg=sun[0], sun_elevation_deg=sun[1], veg_top=veg_top)
        timings["shadow_s"] = time.perf_counter() - t0
        write("shadow.tif", 1.0 - sl, "shadow fraction (1 shade, 0 sun)")
        data["shadow"] = (("y", "x"), 1.0 - sl, {"sun_azimuth_deg": sun[0], "sun_elevation_deg": sun[1]})
        run["sun"] = {"azimuth_deg": sun[0], "elevation_deg": sun[1]}
    if not svf_only and sensors is not None:
        df = sensors
        rows, cols = rasterio.transform.rowcol(transform, df.x.to_numpy(), df.y.to_numpy())
        rows, cols = np.asarray(rows), np.asarray(cols)
        inside = (rows >= 0) & (rows < z.shape[0]) & (cols >= 0) & (cols < z.shape[1])
        if not inside.any():
            raise TwinValueError(f"none of the {len(df)} sensors lies inside the grid {rasterio.transform.array_bounds(*z.shape, transform)}; "
                                 "check the sensors' coordinates and CRS")
        if (~inside).any():
            run["notes"].append(f"sensors outside the grid were left out: {list(df.station[~inside])}")
        df, rows, cols = df[inside], rows[inside], cols[inside]
        ground = np.asarray(dem, np.float32) if dem is not None else np.nanmin(z) * np.ones_like(z)
        height = np.clip(z - ground, 0, None)
        preds = {"building_volume_density_250m": disc_mean(np.where(height > 2.5, height, 0.0), radius_cells=250 / cell),
                 "svf_100m": disc_mean(svf, radius_cells=100 / cell)}
        night = sun is None or sun[1] <= 0
        names = list(preds)
        p_st = np.column_stack([preds[n][rows, cols] for n in names])
        t0 = time.perf_counter()
        mod = fit_air_temperature(df.x, df.y, df.temperature, p_st, names, night=night)
        yy, xx = np.mgrid[:z.shape[0], :z.shape[1]]
        cx, cy = transform @ (xx + 0.5, yy + 0.5)
        p_all = np.column_stack([preds[n].ravel() for n in mod.predictors]) if mod.predictors else None
        pr = mod.predict(cx.ravel(), cy.ravel(), p_all)
        ta = pr["air_temperature"].reshape(z.shape)
        se = pr["se"].reshape(z.shape)
        loo = leave_one_out(df.x, df.y, df.temperature, p_st[:, :len(mod.predictors)], mod.predictors, night=night)
        timings["air_temperature_s"] = time.perf_counter() - t0
        ref = float(np.nanpercentile(ta, 5))
        uhi = ta - ref
        write("air_temperature.tif", ta, f"air temperature degC ({mod.method})")
        write("air_temperature_se.tif", se, "standard error of air temperature K")
        write("uhi.tif", uhi, "urban heat island intensity K against the 5th percentile of the map")
        data.update({"air_temperature": (("y", "x"), ta, {"units": "degC", "method": mod.method}),
                     "air_temperature_se": (("y", "x"), se, {"units": "K"}),
                     "uhi": (("y", "x"), uhi, {"units": "K", "reference": "5th percentile of the map", "reference_c": ref})})
        for n, c in pr["contributions"].items():
            data[f"contribution_{n}"] = (("y", "x"), c.reshape(z.shape), {"units": "K"})
        rmse = {k: float(np.sqrt(np.mean(v ** 2))) for k, v in loo.items()}
        run["air_temperature"] = {"method": mod.method, "predictors": mod.predictors, "coef": mod.coef.tolist(),
                                  "intercept": mod.intercept, "variogram": list(mod.variogram), "night": night,
                                  "loo_rmse_k": rmse, "notes": mod.notes, "stations": int(len(df))}
        if sun is not None:
            rad = np.nan_to_num(1.0 - data["shadow"][1])
            el = sun[1]
            g = max(0.0, 1098.0 * np.sin(np.radians(el)) * np.exp(-0.057 / max(np.sin(np.radians(el)), 1e-3))) if el > 0 else 0.0
            tmrt = mean_radiant_temperature(svf, rad, ta_c=ta, rh_pct=rh_pct, global_w_m2=g, diffuse_w_m2=0.15 * g,
                                            direct_normal_w_m2=0.85 * g / max(np.sin(np.radians(el)), 0.05) if el > 0 else 0.0,
                                            sun_elevation_deg=el)
            u = utci(ta, tmrt, wind_m_per_s, rh_pct)
            write("utci.tif", u, "UTCI degC (NaN outside the valid range)")
            data["tmrt"] = (("y", "x"), tmrt, {"units": "degC", "radiation": "Haurwitz clear sky, 15 % diffuse"})
            data["utci"] = (("y", "x"), u, {"units": "degC", "wind_10m_m_per_s": wind_m_per_s, "rh_pct": rh_pct,
                                            "outside_valid_range_cells": int(np.isnan(u).sum())})
    elif not svf_only:
        run["notes"].append("no --sensors: no air temperature, UHI or UTCI maps")
    ds = xr.Dataset({k: (d, np.asarray(v, np.float32), a) for k, (d, v, a) in data.items()},
                    coords={"x": transform.c + (np.arange(z.shape[1]) + 0.5) * cell,
                            "y": transform.f + (np.arange(z.shape[0]) + 0.5) * transform.e},
                    attrs={k: str(v) for k, v in attrs.items()})
    ds.to_netcdf(out / "result.nc")
    run["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    run["time_utc"] = None if time_utc is None else str(pd.Timestamp(time_utc))
    (out / "run.json").write_text(json.dumps(run, indent=2, default=float))
    return run
