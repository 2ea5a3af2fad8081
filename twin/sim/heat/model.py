"""Heat run: SVF, shadow, air-temperature map, UHI, Tmrt/UTCI and scenario deltas.

:func:`run_heat` is the workflow-level entry the CLI calls; it writes a run folder:
``svf.tif``, ``shadow.tif`` (with a time), ``air_temperature.tif``, ``uhi.tif``,
``air_temperature_se.tif``, ``tmrt.tif`` and ``utci.tif`` (with a time), ``contribution_<predictor>.tif``,
``delta_*.tif`` (scenario), ``result.nc`` and ``run.json``.

Air temperature, by what the run has:
- sensor readings (``sensors``): quality control (:func:`twin.sim.heat.airtemp.qc_readings`), then
  regression kriging on the predictors of :mod:`twin.sim.heat.predictors` (all of them from a
  ``grid``; SVF and building volume from a bare DSM), in the hour class's priority order
  (:data:`~twin.sim.heat.predictors.PRIORITY`), leave-one-out RMSE against the station mean and IDW;
- no readings but a weather situation (``weather``): the predictor-only prior
  (:func:`~twin.sim.heat.predictors.prior_model`), flagged "no local readings" in the attributes, in
  ``run.json`` (``air_temperature_method = "predictor_only_prior"``, ``local_readings = false``) and
  in a note;
- neither: no air temperature, UHI, Tmrt or UTCI (a note says so).

UHI is Ta minus a rural reference: a named rural station's reading (``rural_station``), else the
weather situation's reference temperature, else (flagged) the 5th percentile of the map.

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
    """Station temperatures from a CSV (station, x, y, [time], temperature, [flags]) or GeoJSON points.

    With ``time`` the readings of that hour are averaged per station; readings with a non-zero
    ``flags`` value (a twin.sensors QC bitmask) are left out first.
    """
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
        if "flags" in sel.columns and not sel.empty:  # readings flagged upstream (twin.sensors QC bitmask) stay out
            sel = sel[pd.to_numeric(sel["flags"], errors="coerce").fillna(0) == 0]
            if sel.empty:
                raise TwinValueError(f"{path}: every reading in the hour from {t.isoformat()} is flagged (column flags)")
        if sel.empty:
            raise TwinValueError(f"{path}: no readings in the hour from {t.isoformat()}; times there run "
                                 f"{tt.min().isoformat()} .. {tt.max().isoformat()}")
        df = sel.groupby("station", as_index=False).agg(x=("x", "first"), y=("y", "first"), temperature=("temperature", "mean"))
    return df


def _weather_radiation(sun_el_deg: float, weather) -> tuple[float, float, float, str]:
    """Global, diffuse, direct-normal irradiance (W m-2) and where they come from."""
    from twin.sim.heat.comfort import clear_sky_global, split_global

    if sun_el_deg <= 0:
        return 0.0, 0.0, 0.0, "sun below the horizon"
    g_meas = None if weather is None else weather.global_w_m2
    if g_meas is not None:
        g = max(float(g_meas), 0.0)
        d = split_global(g, sun_el_deg)[0] if weather.diffuse_w_m2 is None else min(float(weather.diffuse_w_m2), g)
        src = "measured global" + (" and diffuse" if weather.diffuse_w_m2 is not None else ", diffuse by Erbs et al. 1982")
    else:
        g = clear_sky_global(sun_el_deg)
        d = split_global(g, sun_el_deg)[0]
        src = "Haurwitz (1945) clear sky, diffuse by Erbs et al. (1982)"
    sa = max(np.sin(np.radians(sun_el_deg)), 0.05)
    return g, d, float(np.clip((g - d) / sa, 0.0, 1100.0)), src


def _grid_from_dsm(z, transform, crs_epsg, dem):
    """A minimal Grid (terrain, building height) for a bare DSM: buildings are cells > 2.5 m above ``dem``."""
    from twin.grid import Grid

    ground = np.asarray(dem, np.float32) if dem is not None else np.full(z.shape, np.nanmin(z), np.float32)
    h = np.clip(z - ground, 0, None)
    fields = {"terrain_elevation": ground, "building_height": np.where(h > 2.5, h, 0.0).astype(np.float32)}
    return Grid(transform, f"EPSG:{crs_epsg}" if crs_epsg else "local", z.shape, fields,
                {"terrain_elevation": "m", "building_height": "m"})


def run_heat(dsm=None, *, transform=None, crs_epsg: int | None = None, out_dir, dem=None, veg_top=None, sensors=None,
             time_utc=None, directions: int = 32, radius_m: float = 200.0, svf_only: bool = False,
             wind_m_per_s: float = 2.0, rh_pct: float = 50.0, lonlat=None, overwrite: bool = False, grid=None,
             weather=None, rural_station: str | None = None, scenario_grid=None, predictors=None,
             predictor_radii_m=None, qc: bool = True, write_contributions: bool = True, tmrt_scheme: str = "lite",
             select_predictors: bool = False) -> dict:
    """Run the heat model and write the run folder (see the module docstring). Returns run.json.

    Parameters
    ----------
    dsm : (ny, nx) array, optional
        Absolute surface heights (terrain + buildings), m. Not needed with ``grid``.
    transform, crs_epsg : affine.Affine, int
        Of ``dsm`` (taken from ``grid`` when given).
    out_dir : path
        Run folder (must be empty unless ``overwrite``).
    dem, veg_top : arrays, optional
        Terrain (building heights = DSM - DEM) and absolute tree-canopy top of a bare DSM.
    sensors : pandas.DataFrame, optional
        One hour's readings: ``station, x, y, temperature`` (degC, grid CRS), optional ``flags``
        (non-zero = flagged upstream).
    time_utc : str or datetime, optional
        The hour (default: the weather's). Gives the sun, shadows, Tmrt and UTCI.
    grid : twin.grid.Grid, optional
        A scene's grid: surfaces and all predictors come from its fields.
    weather : HeatWeather or dict, optional
        Weather situation (time, reference Ta, wind, humidity, optional radiation). Without readings
        it drives the predictor-only mode; its wind and humidity override ``wind_m_per_s``/``rh_pct``.
    rural_station : str, optional
        Name of a rural reference station among ``sensors`` for the UHI.
    scenario_grid : twin.grid.Grid, optional
        The same grid with edits (trees, unsealing, ...): adds the scenario's Ta (coefficients x
        predictor change, :func:`scenario_delta`), Tmrt and UTCI and their changes (``delta_*``).
    predictors : list of str, optional
        Predictor priority list for the regression (default :data:`~twin.sim.heat.predictors.PRIORITY`).
    predictor_radii_m : tuple of float, optional
        Buffer radii (default 50, 100, 250, 500 m).
    qc : bool
        Quality-control the readings (flags, range, spatial outliers) before fitting.
    tmrt_scheme : {"lite", "solweig"}
        Tmrt scheme of :func:`twin.sim.heat.comfort.mean_radiant_temperature`.
    select_predictors : bool
        Choose how many of the priority list's predictors to use (none = ordinary kriging) by the hour's
        leave-one-out RMSE (:func:`twin.sim.heat.airtemp.select_predictor_set`); run.json records it.
    """
    import pandas as pd
    import rasterio
    import xarray as xr

    from twin.sim.heat.airtemp import fit_air_temperature, leave_one_out, qc_readings
    from twin.sim.heat.comfort import mean_radiant_temperature, utci
    from twin.sim.heat.geometry import sky_view_factor, sunlit_fraction
    from twin.sim.heat.predictors import (PREDICTOR_RADII_M, PRIORITY, HeatWeather, is_night, predictor_maps,
                                          prior_model, surfaces_from_grid)
    from twin.sim.heat.sun import solar_position

    radii = tuple(predictor_radii_m or PREDICTOR_RADII_M)
    if grid is not None:
        g_dsm, g_veg = surfaces_from_grid(grid)
        dsm = g_dsm if dsm is None else dsm
        veg_top = g_veg if veg_top is None else veg_top
        transform = grid.transform if transform is None else transform
        if crs_epsg is None:
            crs_epsg = getattr(grid.crs, "horizontal_epsg", None)
    if dsm is None or transform is None:
        raise TwinValueError("run_heat needs a grid, or a dsm with its transform")
    w = None if weather is None else HeatWeather.coerce(weather)
    if w is not None:
        time_utc = w.time_utc if time_utc is None else time_utc
        wind_m_per_s, rh_pct = float(w.wind_m_per_s), float(w.rh_pct)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise TwinValueError(f"{out} exists and is not empty; use --overwrite or another --out")
    out.mkdir(parents=True, exist_ok=True)
    z = np.asarray(dsm, np.float32)
    cell = float(transform.a)
    if lonlat is None and crs_epsg and time_utc is not None:
        from pyproj import Transformer

        cx, cy = transform @ (z.shape[1] / 2, z.shape[0] / 2)
        lonlat = Transformer.from_crs(f"EPSG:{crs_epsg}", "EPSG:4326", always_xy=True).transform(cx, cy)
    timings, run = {}, {"svf_kind": "cosine", "directions": directions, "radius_m": radius_m, "notes": [],
                        "air_temperature_method": None, "local_readings": sensors is not None}
    attrs = {"svf_definition": "cosine-weighted (1 - mean(sin^2 gamma), UMEP)", "directions": directions,
             "radius_m": radius_m}

    def write(name, arr, desc, **extra):
        prof = dict(driver="GTiff", height=z.shape[0], width=z.shape[1], count=1, dtype="float32", transform=transform,
                    crs=f"EPSG:{crs_epsg}" if crs_epsg else None, compress="deflate", nodata=np.nan)
        with rasterio.open(out / name, "w", **prof) as dst:
            dst.write(np.asarray(arr, np.float32), 1)
            dst.update_tags(description=desc, **{k: str(v) for k, v in (attrs | extra).items()})

    t0 = time.perf_counter()
    svf = sky_view_factor(z, cell_m=cell, directions=directions, radius_m=radius_m, veg_top=veg_top)
    timings["svf_s"] = time.perf_counter() - t0
    write("svf.tif", svf, "sky view factor (cosine-weighted)")
    data = {"svf": (("y", "x"), svf, attrs)}
    sun = None
    sl = None
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
    night = is_night(None if sun is None else sun[1])
    if w is not None:
        run["weather"] = {"time_utc": str(pd.Timestamp(w.time_utc)), "ta_ref_c": float(w.ta_ref_c),
                          "wind_m_per_s": wind_m_per_s, "rh_pct": rh_pct, "global_w_m2": w.global_w_m2,
                          "diffuse_w_m2": w.diffuse_w_m2}
    mod = None
    if not svf_only and (sensors is not None or w is not None):
        t0 = time.perf_counter()
        pgrid = grid if grid is not None else _grid_from_dsm(z, transform, crs_epsg, dem)
        preds = predictor_maps(pgrid, svf=svf, radii_m=radii)
        timings["predictors_s"] = time.perf_counter() - t0
        run["predictors_available"] = sorted(preds)
        yy, xx = np.mgrid[:z.shape[0], :z.shape[1]]
        cx, cy = transform @ (xx + 0.5, yy + 0.5)
        ref_c, ref_desc = None, None
        t0 = time.perf_counter()
        if sensors is not None:
            mod, pmaps, ref_c, ref_desc = _fit_from_sensors(sensors, preds, transform, z.shape, night, predictors, qc,
                                                            rural_station, run, fit_air_temperature, leave_one_out,
                                                            qc_readings, PRIORITY, select_predictors)
        else:
            mod, pmaps = prior_model(preds, w, night=night)
            run["notes"].append("no local readings: air temperature is predictor-only (prior coefficients and the "
                                "weather situation's reference temperature), not fitted to sensors")
        if w is not None and ref_c is None:
            ref_c, ref_desc = float(w.ta_ref_c), "the weather situation's rural reference temperature"
        p_all = np.column_stack([pmaps[n].ravel() for n in mod.predictors]) if mod.predictors else None
        pr = mod.predict(cx.ravel(), cy.ravel(), p_all)
        ta = pr["air_temperature"].reshape(z.shape)
        se = pr["se"].reshape(z.shape)
        timings["air_temperature_s"] = time.perf_counter() - t0
        if ref_c is None:
            ref_c, ref_desc = float(np.nanpercentile(ta, 5)), "5th percentile of the map (no rural reference given)"
        uhi = ta - ref_c
        flag = {"air_temperature_method": mod.method,
                "local_readings": "yes" if sensors is not None else "none (predictor-only prior)"}
        write("air_temperature.tif", ta, f"air temperature degC ({mod.method})", **flag)
        write("air_temperature_se.tif", se, "standard error of air temperature K", **flag)
        write("uhi.tif", uhi, f"urban heat island intensity K against {ref_desc}", uhi_reference_c=ref_c, **flag)
        data.update({"air_temperature": (("y", "x"), ta, {"units": "degC", "method": mod.method} | flag),
                     "air_temperature_se": (("y", "x"), se, {"units": "K"} | flag),
                     "uhi": (("y", "x"), uhi, {"units": "K", "reference": ref_desc, "reference_c": ref_c} | flag)})
        for n, c in pr["contributions"].items():
            c = c.reshape(z.shape)
            data[f"contribution_{n}"] = (("y", "x"), c, {"units": "K", "coefficient_k_per_unit": float(
                mod.coef[mod.predictors.index(n)])} | flag)
            if write_contributions:
                write(f"contribution_{n}.tif", c, f"contribution of {n} to the air temperature K", **flag)
        for n in mod.predictors:
            data[f"predictor_{n}"] = (("y", "x"), pmaps[n], {})
        run["air_temperature_method"] = mod.method
        run["uhi_reference"] = {"c": ref_c, "what": ref_desc}
        at = run.setdefault("air_temperature", {})
        at.update({"method": mod.method, "predictors": mod.predictors, "coef": mod.coef.tolist(),
                   "intercept": mod.intercept, "variogram": list(mod.variogram), "night": night, "notes": mod.notes})
        tmrt = u = None
        if sun is not None:
            g, d, i_dn, src = _weather_radiation(sun[1], w)
            run["radiation"] = {"global_w_m2": g, "diffuse_w_m2": d, "direct_normal_w_m2": i_dn, "source": src}
            svf_b = None
            if tmrt_scheme == "solweig" and veg_top is not None:  # walls vs tree crowns (see comfort)
                svf_b = sky_view_factor(z, cell_m=cell, directions=directions, radius_m=radius_m)
            mrt = _mrt_for(tmrt_scheme, time_utc, lonlat, g, sun[1], mean_radiant_temperature, svf_b)
            run["tmrt_scheme"] = tmrt_scheme
            tmrt, u = _tmrt_utci(svf, sl, ta, sun, g, d, i_dn, rh_pct, wind_m_per_s, mrt, utci)
            write("tmrt.tif", tmrt, "mean radiant temperature degC", **flag)
            write("utci.tif", u, "UTCI degC (NaN outside the valid range)", **flag)
            data["tmrt"] = (("y", "x"), tmrt, {"units": "degC", "radiation": src} | flag)
            data["utci"] = (("y", "x"), u, {"units": "degC", "wind_10m_m_per_s": wind_m_per_s, "rh_pct": rh_pct,
                                            "outside_valid_range_cells": int(np.isnan(u).sum())} | flag)
        if scenario_grid is not None:
            t0 = time.perf_counter()
            _scenario(scenario_grid, mod, preds, ta, tmrt, u, sun, svf.shape, directions, radius_m, radii, w, rh_pct,
                      wind_m_per_s, data, run, write, flag, mrt if sun is not None else None)
            timings["scenario_s"] = time.perf_counter() - t0
    elif not svf_only:
        run["notes"].append("no sensor readings and no weather situation: no air temperature, UHI, Tmrt or UTCI maps "
                            "(give --sensors, or --air-temperature for the predictor-only mode)")
    if scenario_grid is not None and mod is None:
        run["notes"].append("a scenario needs an air-temperature model (sensors or a weather situation): no deltas")
    ds = xr.Dataset({k: (d, np.asarray(v, np.float32), {a: (str(b) if isinstance(b, (list, dict)) else b)
                                                        for a, b in at.items()})
                     for k, (d, v, at) in data.items()},
                    coords={"x": transform.c + (np.arange(z.shape[1]) + 0.5) * cell,
                            "y": transform.f + (np.arange(z.shape[0]) + 0.5) * transform.e},
                    attrs={k: str(v) for k, v in (attrs | {"air_temperature_method": str(run["air_temperature_method"]),
                                                           "local_readings": str(run["local_readings"])}).items()})
    ds.to_netcdf(out / "result.nc")
    run["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    run["time_utc"] = None if time_utc is None else str(pd.Timestamp(time_utc))
    (out / "run.json").write_text(json.dumps(run, indent=2, default=float))
    return run


def _mrt_for(scheme, time_utc, lonlat, g, sun_el, mrt, svf_buildings=None):
    """The Tmrt function of a scheme with its time-dependent inputs bound (surface temperature wave; the
    building-only SVF, which a scenario reuses: heat edits change trees and land cover, not buildings)."""
    from functools import partial

    from twin.sim.heat.comfort import clearness_index, surface_temperature_excess

    if scheme != "solweig":
        return partial(mrt, scheme=scheme)
    ci = clearness_index(g, sun_el)
    dt = surface_temperature_excess(time_utc, lonlat[1], lonlat[0], clearness=1.0 if ci is None else ci)
    return partial(mrt, scheme=scheme, ground_dt_k=dt, wall_dt_k=dt, svf_buildings=svf_buildings)


def _tmrt_utci(svf, sunlit, ta, sun, g, d, i_dn, rh_pct, wind, mrt, utci_fn):
    rad = np.nan_to_num(sunlit)
    tmrt = mrt(svf, rad, ta_c=ta, rh_pct=rh_pct, global_w_m2=g, diffuse_w_m2=d, direct_normal_w_m2=i_dn,
               sun_elevation_deg=sun[1], sun_azimuth_deg=sun[0])
    return tmrt, utci_fn(ta, tmrt, wind, rh_pct)


def _fit_from_sensors(sensors, preds, transform, shape, night, priority, qc, rural_station, run, fit, loo, qc_fn,
                      default_priority, select=False):
    """QC, station predictors, regression kriging and LOO of one hour's readings (see run_heat)."""
    import rasterio

    df = sensors.reset_index(drop=True)
    rows, cols = rasterio.transform.rowcol(transform, df.x.to_numpy(), df.y.to_numpy())
    rows, cols = np.asarray(rows), np.asarray(cols)
    inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    if not inside.any():
        raise TwinValueError(f"none of the {len(df)} sensors lies inside the grid "
                             f"{rasterio.transform.array_bounds(*shape, transform)}; check the sensors' coordinates and CRS")
    if (~inside).any():
        run["notes"].append(f"sensors outside the grid were left out: {list(df.station[~inside])}")
    ref_c = ref_desc = None
    if rural_station is not None:
        hit = df[df.station.astype(str) == str(rural_station)]
        if hit.empty:
            raise TwinValueError(f"rural station {rural_station!r} is not among the readings {sorted(map(str, df.station))}")
        ref_c, ref_desc = float(hit.temperature.iloc[0]), f"rural station {rural_station}"
    keep = inside.copy()
    if qc:
        ok, counts = qc_fn(df.temperature.to_numpy(float), flags=df["flags"] if "flags" in df else None)
        dropped = list(df.station[inside & ~ok])
        run["qc"] = {"left_out": dropped, "counts": counts, "method": "flags, range -40..50 degC, CrowdQC m2 robust z"}
        if dropped:
            run["notes"].append(f"readings left out by quality control: {dropped}")
        keep &= ok
    if not keep.any():
        raise TwinValueError("no reading inside the grid passed quality control; check the readings' flags and values")
    df, rows, cols = df[keep], rows[keep], cols[keep]
    names = [n for n in (priority or default_priority["night" if night else "day"]) if n in preds]
    missing = [n for n in (priority or []) if n not in preds]
    if missing:
        run["notes"].append(f"predictors not available on this grid were skipped: {missing}")
    p_st = np.column_stack([preds[n][rows, cols] for n in names]) if names else None
    if select and names:
        from twin.sim.heat.airtemp import STATIONS_PER_PREDICTOR, select_predictor_set

        k_max = max(0, (len(df) - 1 - 3) // STATIONS_PER_PREDICTOR)  # what every LOO fold can fit
        cands = [names[:k] for k in range(0, min(k_max, len(names)) + 1)]
        best, scores = select_predictor_set(df.x.to_numpy(float), df.y.to_numpy(float), df.temperature.to_numpy(float),
                                            p_st, names, cands, night=night)
        run["predictor_selection"] = {"chosen": best, "loo_rmse_k": scores,
                                      "how": "prefixes of the priority list scored by this hour's leave-one-out RMSE"}
        p_st = p_st[:, [names.index(n) for n in best]] if best else None
        names = best
    mod = fit(df.x, df.y, df.temperature, p_st, names, night=night)
    kept = [names.index(n) for n in mod.predictors]
    e = loo(df.x, df.y, df.temperature, None if p_st is None else p_st[:, kept], mod.predictors, night=night)
    run["air_temperature"] = {"loo_rmse_k": {key: float(np.sqrt(np.mean(v ** 2))) for key, v in e.items()},
                              "stations": int(len(df))}
    return mod, {n: preds[n] for n in mod.predictors}, ref_c, ref_desc


def _scenario(sgrid, mod, preds, ta, tmrt, u, sun, shape, directions, radius_m, radii, w, rh_pct, wind, data, run,
              write, flag, mrt=None):
    """Scenario Ta/Tmrt/UTCI on an edited grid and the changes against the baseline (see run_heat)."""
    from twin.sim.heat.comfort import mean_radiant_temperature, utci
    from twin.sim.heat.geometry import sky_view_factor, sunlit_fraction
    from twin.sim.heat.predictors import predictor_maps, surfaces_from_grid

    if tuple(sgrid.shape) != tuple(shape):
        raise TwinValueError(f"the scenario grid has shape {sgrid.shape}, the baseline {shape}; edit the same grid")
    zs, vs = surfaces_from_grid(sgrid)
    cell = float(sgrid.transform.a)
    svf_s = sky_view_factor(zs, cell_m=cell, directions=directions, radius_m=radius_m, veg_top=vs)
    ps = predictor_maps(sgrid, svf=svf_s, radii_m=radii)
    base = {"elevation_above_reference": "elevation"}  # the prior's centred elevation changes as the terrain does
    dp = {n: ps[base.get(n, n)] - preds[base.get(n, n)] for n in mod.predictors if base.get(n, n) in ps}
    data["scenario_svf"] = (("y", "x"), svf_s, {"units": "1", "svf_definition": "cosine-weighted"})
    dta, info = scenario_delta(mod, dp) if dp else (np.zeros(shape), {"note": "no predictor of the model changed"})
    dta = np.broadcast_to(dta, shape)
    ta_s = ta + dta
    write("delta_air_temperature.tif", dta, "scenario minus baseline air temperature K", **flag)
    data["scenario_air_temperature"] = (("y", "x"), ta_s, {"units": "degC"} | flag)
    data["delta_air_temperature"] = (("y", "x"), dta, {"units": "K"} | flag)
    summary = {"delta_air_temperature_k": {"mean": float(np.nanmean(dta)), "min": float(np.nanmin(dta)),
                                           "max": float(np.nanmax(dta))}} | {k: v for k, v in info.items()}
    if sun is not None and tmrt is not None:
        sl_s = sunlit_fraction(zs, cell_m=cell, sun_azimuth_deg=sun[0], sun_elevation_deg=sun[1], veg_top=vs)
        data["scenario_shadow"] = (("y", "x"), 1.0 - sl_s, {"sun_azimuth_deg": sun[0], "sun_elevation_deg": sun[1]})
        g, d, i_dn, _ = _weather_radiation(sun[1], w)
        tmrt_s, u_s = _tmrt_utci(svf_s, sl_s, ta_s, sun, g, d, i_dn, rh_pct, wind, mrt or mean_radiant_temperature, utci)
        for name, base, new in (("tmrt", tmrt, tmrt_s), ("utci", u, u_s)):
            dd = new - base
            write(f"delta_{name}.tif", dd, f"scenario minus baseline {name} K", **flag)
            data[f"scenario_{name}"] = (("y", "x"), new, {"units": "degC"} | flag)
            data[f"delta_{name}"] = (("y", "x"), dd, {"units": "K"} | flag)
            summary[f"delta_{name}_k"] = {"mean": float(np.nanmean(dd)), "min": float(np.nanmin(dd)),
                                          "max": float(np.nanmax(dd))}
    run["scenario"] = summary
