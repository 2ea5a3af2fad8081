"""Forcing of the heavy-rain model: rain series, design storms, gridded rain, point inflows, losses.

Units: rain intensities in mm/h at the interface (``intensity_mm_per_h``), m/s inside the model;
times in seconds from the start of the run; discharges in m3/s.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from twin.errors import TwinIOError, TwinValueError

__all__ = ["RainSeries", "RainGrid", "PointInflow", "Losses", "uniform_rain", "design_storm",
           "read_rain_csv", "read_inflow_csv", "read_rain_netcdf", "MM_PER_H"]

#: 1 mm/h in m/s
MM_PER_H = 1.0e-3 / 3600.0


def _times(times_s, what: str) -> np.ndarray:
    t = np.asarray(times_s, dtype=np.float64).ravel()
    if t.size == 0:
        raise TwinValueError(f"{what}: no times given; give at least one time_s")
    if not np.all(np.isfinite(t)):
        raise TwinValueError(f"{what}: times must be finite, got {t[~np.isfinite(t)][:3]}")
    if np.any(np.diff(t) <= 0):
        k = int(np.flatnonzero(np.diff(t) <= 0)[0])
        raise TwinValueError(f"{what}: times must increase strictly, got {t[k]} then {t[k + 1]}; sort the rows")
    return t


@dataclass(frozen=True)
class RainSeries:
    """Spatially uniform rain as a step function of time.

    ``intensity_mm_per_h[k]`` holds from ``times_s[k]`` to ``times_s[k + 1]``; the last value holds to
    the end of the run (end a storm with a row of 0). Before ``times_s[0]`` there is no rain.
    """

    times_s: np.ndarray
    intensity_mm_per_h: np.ndarray

    def __post_init__(self) -> None:
        t = _times(self.times_s, "rain series")
        r = np.asarray(self.intensity_mm_per_h, dtype=np.float64).ravel()
        if r.shape != t.shape:
            raise TwinValueError(f"rain series: {t.size} times but {r.size} intensities; give one intensity per time")
        if not np.all(np.isfinite(r)) or np.any(r < 0):
            bad = r[~(np.isfinite(r) & (r >= 0))][0]
            raise TwinValueError(f"rain series: intensity {bad} mm/h is negative or not finite; rain must be >= 0")
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "intensity_mm_per_h", r)

    def rate_m_per_s(self, t: float) -> float:
        """Intensity at time ``t`` (s) in m/s."""
        k = int(np.searchsorted(self.times_s, t, side="right")) - 1
        return 0.0 if k < 0 else float(self.intensity_mm_per_h[k]) * MM_PER_H

    def next_change(self, t: float) -> float:
        """The first breakpoint strictly after ``t`` (inf if none)."""
        k = int(np.searchsorted(self.times_s, t, side="right"))
        return float(self.times_s[k]) if k < self.times_s.size else math.inf

    def depth_mm(self, until: float) -> float:
        """Rain depth (mm) fallen from 0 to ``until`` seconds."""
        edges = np.append(self.times_s, max(until, self.times_s[-1]))
        dur = np.clip(np.minimum(edges[1:], until) - edges[:-1], 0, None)
        return float(np.sum(self.intensity_mm_per_h * dur) / 3600.0)


@dataclass(frozen=True)
class RainGrid:
    """Gridded rain ``(time, y, x)`` in mm/h on the model grid, a step function in time like :class:`RainSeries`."""

    times_s: np.ndarray
    intensity_mm_per_h: np.ndarray

    def __post_init__(self) -> None:
        t = _times(self.times_s, "rain grid")
        r = np.asarray(self.intensity_mm_per_h, dtype=np.float32)
        if r.ndim != 3 or r.shape[0] != t.size:
            raise TwinValueError(f"rain grid: intensity must be (time, y, x) with {t.size} times, got shape {r.shape}")
        if not np.all(np.isfinite(r)) or np.any(r < 0):
            raise TwinValueError("rain grid: intensities must be finite and >= 0 mm/h; "
                                 f"found minimum {np.nanmin(r)} and {int(np.sum(~np.isfinite(r)))} non-finite values")
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "intensity_mm_per_h", np.ascontiguousarray(r))

    def index(self, t: float) -> int:
        """Index of the field valid at ``t`` (-1 before the first time)."""
        return int(np.searchsorted(self.times_s, t, side="right")) - 1

    def next_change(self, t: float) -> float:
        k = int(np.searchsorted(self.times_s, t, side="right"))
        return float(self.times_s[k]) if k < self.times_s.size else math.inf


@dataclass(frozen=True)
class PointInflow:
    """A discharge hydrograph (m3/s) entering the cell that contains ``(x, y)``; linear in time,
    zero before the first and after the last time unless those rows say otherwise (values hold flat)."""

    x: float
    y: float
    times_s: np.ndarray
    discharge_m3_per_s: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        t = _times(self.times_s, f"inflow at ({self.x}, {self.y})")
        q = np.asarray(self.discharge_m3_per_s, dtype=np.float64).ravel()
        if q.shape != t.shape or not np.all(np.isfinite(q)):
            raise TwinValueError(f"inflow at ({self.x}, {self.y}): need one finite discharge per time, got {q}")
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "discharge_m3_per_s", q)

    def volume_between(self, t0: float, t1: float) -> float:
        """Exact volume (m3) of the piecewise-linear hydrograph between ``t0`` and ``t1``."""
        pts = np.concatenate([[t0], self.times_s[(self.times_s > t0) & (self.times_s < t1)], [t1]])
        q = np.interp(pts, self.times_s, self.discharge_m3_per_s)
        return float(np.sum(0.5 * (q[1:] + q[:-1]) * np.diff(pts)))

    def next_change(self, t: float) -> float:
        k = int(np.searchsorted(self.times_s, t, side="right"))
        return float(self.times_s[k]) if k < self.times_s.size else math.inf


@dataclass(frozen=True)
class Losses:
    """Rain losses: an initial loss (mm) then an infiltration model, per cell or one value.

    Parameters
    ----------
    initial_loss_mm : float or array
        Depression storage / wetting filled first by the water on a cell (Anfangsverlust).
    model : {"none", "constant", "horton", "green-ampt"}
    rate_mm_per_h : constant infiltration capacity (``model="constant"``).
    f0_mm_per_h, fc_mm_per_h, k_per_h : Horton (1933) initial and final capacity and decay rate;
        time counts from the start of the run.
    ks_mm_per_h, suction_head_mm, moisture_deficit : Green-Ampt (1911): saturated conductivity,
        wetting-front suction head, porosity times (1 - initial saturation). Arrays or scalars.
    """

    initial_loss_mm: float | np.ndarray = 0.0
    model: str = "none"
    rate_mm_per_h: float | np.ndarray = 0.0
    f0_mm_per_h: float | np.ndarray = 0.0
    fc_mm_per_h: float | np.ndarray = 0.0
    k_per_h: float | np.ndarray = 0.0
    ks_mm_per_h: float | np.ndarray = 0.0
    suction_head_mm: float | np.ndarray = 0.0
    moisture_deficit: float | np.ndarray = 0.0
    extra: dict = field(default_factory=dict)

    MODELS = ("none", "constant", "horton", "green-ampt")

    def __post_init__(self) -> None:
        if self.model not in self.MODELS:
            raise TwinValueError(f"losses: unknown infiltration model {self.model!r}; use one of {self.MODELS}")
        for name in ("initial_loss_mm", "rate_mm_per_h", "f0_mm_per_h", "fc_mm_per_h", "k_per_h",
                     "ks_mm_per_h", "suction_head_mm", "moisture_deficit"):
            v = np.asarray(getattr(self, name), dtype=np.float64)
            if np.any(~np.isfinite(v[~np.isnan(v)])) or np.any(v < 0):
                raise TwinValueError(f"losses: {name} must be finite and >= 0, got minimum {np.nanmin(v)}")


def uniform_rain(intensity_mm_per_h: float, duration_s: float, *, start_s: float = 0.0) -> RainSeries:
    """Constant rain of ``intensity_mm_per_h`` from ``start_s`` for ``duration_s`` seconds."""
    if duration_s <= 0:
        raise TwinValueError(f"rain duration must be > 0 s, got {duration_s}")
    return RainSeries(np.array([start_s, start_s + duration_s]), np.array([intensity_mm_per_h, 0.0]))


def design_storm(kind: str, *, depth_mm: float, duration_min: float, interval_min: float = 5.0,
                 idf: "list[tuple[float, float]] | None" = None, exponent: float = 0.4,
                 peak_fraction: float = 0.3) -> RainSeries:
    """A design storm as a step series of ``interval_min`` blocks.

    Parameters
    ----------
    kind : {"block", "euler2"}
        ``block``: constant intensity. ``euler2``: DVWK Euler type II (DWA-A 118; DVWK 1984): the
        depth increments of the depth-duration curve, largest first, are placed from the block at
        ``peak_fraction`` of the duration onwards; the remaining (smallest) increments precede the
        peak in ascending order. The cumulative depth after the peak follows the depth-duration curve.
    depth_mm, duration_min : total depth (mm) and duration (min).
    idf : list of (duration_min, depth_mm), optional
        The depth-duration curve of the return period (e.g. KOSTRA-DWD rows); interpolated
        linearly and scaled so that it reaches ``depth_mm`` at ``duration_min``. Default: the power law
        ``depth(d) = depth_mm (d / duration)^exponent`` (exponent 0.4 matches KOSTRA-DWD-2020
        short-duration depths to about 10 %: e.g. 5 min / 60 min depth ratios 0.35-0.40).
    """
    if depth_mm < 0 or not math.isfinite(depth_mm):
        raise TwinValueError(f"design storm: depth {depth_mm} mm must be >= 0")
    if duration_min <= 0 or interval_min <= 0:
        raise TwinValueError(f"design storm: duration {duration_min} min and interval {interval_min} min must be > 0")
    n = max(1, int(round(duration_min / interval_min)))
    if abs(n * interval_min - duration_min) > 1e-9 * duration_min:
        raise TwinValueError(f"design storm: duration {duration_min} min is not a multiple of the "
                             f"{interval_min} min interval; pick --interval-min that divides it")
    dt_s = interval_min * 60.0
    times = np.arange(n + 1) * dt_s
    if kind == "block":
        rates = np.full(n, depth_mm / (duration_min / 60.0))
    elif kind == "euler2":
        d = np.arange(1, n + 1) * interval_min
        if idf is None:
            cum = depth_mm * (d / duration_min) ** exponent
        else:
            idf_arr = np.asarray(sorted(idf), dtype=float)
            cum = np.interp(d, np.concatenate([[0.0], idf_arr[:, 0]]), np.concatenate([[0.0], idf_arr[:, 1]]))
            cum = cum * (depth_mm / cum[-1]) if cum[-1] > 0 else cum
        inc = np.sort(np.diff(np.concatenate([[0.0], cum])))[::-1]
        p = min(n - 1, int(math.floor(peak_fraction * n)))
        blocks = np.empty(n)
        blocks[p:] = inc[: n - p]
        blocks[:p] = np.sort(inc[n - p:])  # ascending towards the peak
        rates = blocks / (interval_min / 60.0)
    else:
        raise TwinValueError(f"design storm: unknown kind {kind!r}; use 'block' or 'euler2'")
    return RainSeries(times, np.append(rates, 0.0))


def _read_csv(path, columns: list[str], what: str):
    import pandas as pd

    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TwinIOError(f"cannot read {what} {path}: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise TwinValueError(f"{what} {path}: missing column(s) {missing}; expected columns {','.join(columns)}, "
                             f"found {list(df.columns)}")
    if len(df) == 0:
        raise TwinValueError(f"{what} {path}: no rows")
    return df


def read_rain_csv(path: str | os.PathLike) -> RainSeries:
    """``time_s,intensity_mm_per_h`` rows: a step function (see :class:`RainSeries`)."""
    df = _read_csv(path, ["time_s", "intensity_mm_per_h"], "rain series")
    try:
        return RainSeries(df["time_s"].to_numpy(float), df["intensity_mm_per_h"].to_numpy(float))
    except (TwinValueError, ValueError) as exc:
        raise TwinValueError(f"rain series {path}: {exc}") from exc


def read_inflow_csv(path: str | os.PathLike) -> list[PointInflow]:
    """``x,y,time_s,discharge_m3_per_s`` rows; one hydrograph per distinct (x, y), linear in time."""
    df = _read_csv(path, ["x", "y", "time_s", "discharge_m3_per_s"], "inflow table")
    out = []
    for (x, y), g in df.groupby(["x", "y"], sort=False):
        g = g.sort_values("time_s")
        out.append(PointInflow(float(x), float(y), g["time_s"].to_numpy(float), g["discharge_m3_per_s"].to_numpy(float),
                               name=f"inflow{len(out) + 1}"))
    return out


def read_rain_netcdf(path: str | os.PathLike, *, variable: str | None = None) -> tuple[RainGrid, np.ndarray, np.ndarray]:
    """Gridded rain from NetCDF: a (time, y, x) variable in mm/h (or ``units`` m/s / mm h-1).

    Returns the :class:`RainGrid` and the x and y cell-centre coordinates, for the caller to check
    against the model grid. ``time`` is seconds from the start of the run (numeric) or datetimes
    (taken relative to the first).
    """
    import xarray as xr

    try:
        ds = xr.open_dataset(path)
    except (OSError, ValueError) as exc:
        raise TwinIOError(f"cannot read rain NetCDF {path}: {exc}") from exc
    with ds:
        names = [variable] if variable else [v for v in ds.data_vars if ds[v].ndim == 3]
        if not names or names[0] not in ds:
            raise TwinValueError(f"rain NetCDF {path}: no (time, y, x) variable {variable or ''}; "
                                 f"variables: {list(ds.data_vars)}; pass variable=")
        da = ds[names[0]].transpose("time", "y", "x")
        units = str(da.attrs.get("units", "mm h-1")).replace(" ", "").lower()
        vals = da.to_numpy().astype(np.float64)
        if units in ("m/s", "ms-1", "m s-1".replace(" ", "")):
            vals = vals / MM_PER_H
        elif units not in ("mm/h", "mmh-1", "mm/hr", "mm_per_h"):
            raise TwinValueError(f"rain NetCDF {path}: units {da.attrs.get('units')!r} not understood; use 'mm h-1' or 'm s-1'")
        t = ds["time"].to_numpy()
        if np.issubdtype(t.dtype, np.datetime64):
            t = (t - t[0]) / np.timedelta64(1, "s")
        return RainGrid(np.asarray(t, float), vals), ds["x"].to_numpy(), ds["y"].to_numpy()
