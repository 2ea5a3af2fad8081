"""Sensor readings -> model forcing: rain for the heavy-rain model, air temperature and humidity for
the heat model. Flagged readings are left out.

Rain depth per step is summed from gauge readings assigned to the step that contains their
phenomenon end (5-min sums, or rates in mm/h times their interval). A rain field is interpolated by
inverse distance weighting (Shepard 1968, power 2) or Thiessen polygons (nearest gauge).
"""

from __future__ import annotations

import warnings

import numpy as np

from twin.errors import TwinValueError
from twin.sensors.store import ReadingStore

__all__ = ["rain_forcing", "rain_field", "heat_forcing"]


def rain_forcing(store: ReadingStore, *, start: str, end: str, step: str = "5min"):
    """Rain intensity per gauge and the uniform (gauge mean) series as an ``xarray.Dataset``.

    Variables ``rain_mm_per_h`` (time, gauge) and ``rain_uniform_mm_per_h`` (time), coordinates
    ``lon``/``lat`` of the gauges; times are step ends in UTC. Depths (mm) are divided by the step length;
    rates (mm/h) are averaged over the step.
    """
    import pandas as pd
    import xarray as xr

    end_incl = (pd.Timestamp(end) + pd.Timedelta(microseconds=1)).isoformat()  # a sum ending at `end` belongs in
    df = store.series("precipitation", start=start, end=end_incl, include_flagged=False)
    if df.empty:
        raise TwinValueError(f"no unflagged precipitation readings between {start} and {end}; fix: sync the "
                             "rain gauges first (twin sensors sync) or widen the window")
    step_td = pd.Timedelta(step)
    step_h = step_td.total_seconds() / 3600.0
    idx = pd.date_range(pd.Timestamp(start).tz_convert("UTC") if pd.Timestamp(start).tzinfo else
                        pd.Timestamp(start, tz="UTC"), pd.Timestamp(end).tz_convert("UTC")
                        if pd.Timestamp(end).tzinfo else pd.Timestamp(end, tz="UTC"), freq=step_td, inclusive="right")
    units = {d["id"]: d["unit"] for d in store.list_datastreams(property="precipitation")}
    cols, lons, lats, names = [], [], [], []
    for ds, g in df.groupby("datastream"):
        s = g.set_index("time")["value"]
        if units[ds] == "mm":
            per_step = s.resample(step_td, label="right", closed="right").sum(min_count=1) / step_h
        else:  # mm/h
            per_step = s.resample(step_td, label="right", closed="right").mean()
        cols.append(per_step.reindex(idx).to_numpy(float))
        lons.append(g["lon"].iloc[0])
        lats.append(g["lat"].iloc[0])
        names.append(g["name"].iloc[0])
    data = np.stack(cols, axis=1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # steps without any gauge stay NaN
        uniform = np.nanmean(data, axis=1) if data.size else data
    times = np.asarray(idx.tz_convert("UTC").tz_localize(None), dtype="datetime64[ns]")
    ds = xr.Dataset(
        {"rain_mm_per_h": (("time", "gauge"), data, {"units": "mm h-1", "long_name": "rain intensity per gauge"}),
         "rain_uniform_mm_per_h": ("time", uniform,
                                   {"units": "mm h-1", "long_name": "rain intensity, mean of the gauges"})},
        coords={"time": times, "gauge": names, "lon": ("gauge", np.array(lons, float)),
                "lat": ("gauge", np.array(lats, float))},
        attrs={"step": step, "time_zone": "UTC", "source": "twin.sensors.forcing.rain_forcing"})
    return ds


def rain_field(rain, x, y, *, gauge_x, gauge_y, method: str = "idw", power: float = 2.0):
    """Interpolate gauge intensities ``rain`` (time, gauge) onto points or a grid.

    ``x``, ``y``: 1-D cell-centre coordinates (a grid, result (time, y, x)) in the same CRS as
    ``gauge_x``/``gauge_y``. ``method`` is ``idw`` or ``thiessen``. Gauges missing at a step are left out
    of that step's weights.
    """
    import xarray as xr

    if method not in ("idw", "thiessen"):
        raise TwinValueError(f"rain field method {method!r} is unknown; fix: use 'idw' or 'thiessen'")
    values = np.asarray(rain, dtype=float)
    gx, gy = np.asarray(gauge_x, float), np.asarray(gauge_y, float)
    xx, yy = np.meshgrid(np.asarray(x, float), np.asarray(y, float))
    d2 = (xx[..., None] - gx) ** 2 + (yy[..., None] - gy) ** 2  # (ny, nx, gauge)
    out = np.full((values.shape[0],) + xx.shape, np.nan)
    for k in range(values.shape[0]):
        ok = np.isfinite(values[k])
        if not ok.any():
            continue
        dk, vk = d2[..., ok], values[k, ok]
        if method == "thiessen":
            out[k] = vk[np.argmin(dk, axis=-1)]
        else:
            exact = dk <= 1e-12
            w = 1.0 / np.maximum(dk, 1e-12) ** (power / 2.0)
            field = (w * vk).sum(-1) / w.sum(-1)
            hit = exact.any(-1)
            field[hit] = vk[np.argmax(exact, axis=-1)][hit]
            out[k] = field
    coords = {"y": np.asarray(y, float), "x": np.asarray(x, float)}
    if isinstance(rain, xr.DataArray) and "time" in rain.coords:
        coords["time"] = rain["time"].values
    return xr.DataArray(out, dims=("time", "y", "x"), coords=coords, name="rain_mm_per_h",
                        attrs={"units": "mm h-1", "method": method})


def heat_forcing(store: ReadingStore, *, hour: str):
    """Air temperature and relative humidity of one hour, for the heat model.

    Returns an ``xarray.Dataset`` over ``station`` (hourly means of unflagged readings in
    ``[hour, hour + 1 h)``) with ``air_temperature`` (degC), ``relative_humidity`` (%), lon/lat, and
    the attributes ``air_temperature_mean`` and ``relative_humidity_mean`` over the stations.
    """
    import pandas as pd
    import xarray as xr

    t0 = pd.Timestamp(hour)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    t1 = t0 + pd.Timedelta(hours=1)
    out = {}
    for prop in ("air_temperature", "relative_humidity"):
        df = store.series(prop, start=t0.isoformat(), end=t1.isoformat(), include_flagged=False)
        out[prop] = df.fillna({"thing": df["name"]}).groupby("thing").agg(value=("value", "mean"), lon=("lon", "first"), lat=("lat", "first"))
    if out["air_temperature"].empty:
        raise TwinValueError(f"no unflagged air temperature readings in the hour from {t0.isoformat()}; fix: "
                             "sync the temperature sensors for that hour or choose another hour")
    ta = out["air_temperature"]
    rh = out["relative_humidity"]
    stations = list(ta.index)
    rh_vals = np.array([rh["value"].get(s, np.nan) for s in stations], float)  # paired by Thing
    ds = xr.Dataset(
        {"air_temperature": ("station", ta["value"].to_numpy(float), {"units": "degC"}),
         "relative_humidity": ("station", rh_vals, {"units": "%"})},
        coords={"station": stations, "lon": ("station", ta["lon"].to_numpy(float)),
                "lat": ("station", ta["lat"].to_numpy(float))},
        attrs={"hour_start_utc": t0.isoformat(), "air_temperature_mean": float(ta["value"].mean()),
               "relative_humidity_mean": float(rh["value"].mean()) if len(rh) else float("nan")})
    return ds

