"""Air-temperature predictors from a simulation :class:`~twin.grid.Grid`, and the prior coefficients
of the predictor-only mode (a scene without local sensor readings).

Predictor maps (:func:`predictor_maps`), each a disc-buffer mean over ``r`` in
:data:`PREDICTOR_RADII_M` (50, 100, 250, 500 m; Venter et al. 2020, RSE 242:111791: 100-500 m
buffers work best), named ``<base>_<r>m``:

- ``imperviousness_<r>m``: sealed fraction (grid field ``imperviousness``), 0..1;
- ``building_volume_density_<r>m``: building volume per ground area (mean ``building_height``, 0
  outside buildings), m3 m-2;
- ``svf_<r>m``: street-level sky view factor (mean over the cells not covered by a building), 0..1;
- ``tree_canopy_<r>m``: tree-canopy cover (``tree_canopy_height > 0``), 0..1;
- ``water_fraction_<r>m``: open-water share (``water_mask``), 0..1;

and two point predictors: ``water_distance`` (m to the nearest water cell of the grid; absent when the
grid has no water) and ``elevation`` (terrain height, m).

Buffers see only the grid: near its edge (and in a small scene cut out of a city) they average what
is inside it, so pad the scene by the largest radius where the surroundings matter.

Predictor-only mode (:data:`PRIOR_COEFFICIENTS`, :func:`prior_model`): with no sensor readings the map
is ``Ta(x) = Ta_ref + sum_k b_k p_k(x) + lapse (z(x) - z_ref)`` with ``Ta_ref`` the rural background
air temperature of a weather situation (open land: no sealing, buildings, trees or water). The
coefficients and where each comes from are in :data:`PRIOR_COEFFICIENTS`; every output made this way
carries ``air_temperature_method = "predictor_only_prior"`` and the note "no local readings".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.errors import TwinValueError

__all__ = ["PREDICTOR_RADII_M", "PRIORITY", "PRIOR_COEFFICIENTS", "PRIOR_RMSE_K", "HeatWeather", "surfaces_from_grid",
           "predictor_maps", "prior_model", "is_night", "buffer_mean"]

PREDICTOR_RADII_M = (50, 100, 250, 500)

#: predictor priority per hour class (the first ones are kept when there are too few stations for all,
#: see twin.sim.heat.airtemp): by night the built volume and sealing (heat storage, Oke's canyon
#: geometry), by day canopy shade and sealing (heat.md section 3; Ziter et al. 2019, PNAS 116:7575)
PRIORITY = {
    "night": ["building_volume_density_500m", "imperviousness_500m", "svf_100m", "tree_canopy_250m", "water_distance",
              "elevation"],
    "day": ["tree_canopy_100m", "imperviousness_500m", "water_distance", "elevation", "svf_100m",
            "building_volume_density_500m"],
}

#: Prior coefficients (K per unit of the predictor) of the predictor-only mode, per hour class.
#:
#: ``berlin``: fitted on the 15 Berlin UCO stations with predictors (../shared/data/heat/berlin_uco_airT,
#: berlin_predictors; tests/test_heat_berlin.py ``fit_prior`` refits them and checks these numbers):
#: station anomalies from the hourly station mean, pooled over every hour of the class (summer nights:
#: JJA 2019-2020 at 22, 00, 02 UTC, 552 h; heat-wave days: station-mean daily max >= 30 degC, 11, 13,
#: 15 UTC, 126 h), sign-constrained ridge (lambda 1 on standardised predictors) on
#: ``imperviousness_500m`` (block sealing, 10 m), ``building_volume_density`` (DCEP urban fraction x
#: mean building height, ~1 km cell, used here for the 500 m disc, about the same area) and
#: ``tree_canopy_500m`` (LCZ 11/12 share of the 100 m LCZ map, used here for canopy cover).
#: Water was left out: one of the 15 stations has any (6 %), no basis for a coefficient. The day fit's
#: canopy slope is 0 (bound) and its built-volume slope -0.008 K per m3/m2.
#: ``literature``: daytime tree cooling, parks ~0.94 K cooler than their surroundings by day (Bowler
#: et al. 2010, Landsc. Urban Plan. 97:147; trees ~0.8 K, Knight et al. 2021), used as -0.94 K per
#: unit canopy cover within 100 m: the Berlin day fit finds no canopy signal (stations in forest
#: clearings), so the published magnitude stands in; daytime lapse rate of the standard atmosphere,
#: -6.5 K/km (ICAO 1993), none at night (inversions and cold-air pools make it site-specific).
PRIOR_COEFFICIENTS: dict[str, dict[str, tuple[float, str]]] = {
    "night": {
        "building_volume_density_500m": (0.175, "berlin"),
        "imperviousness_500m": (0.0, "berlin"),
        "tree_canopy_500m": (0.231, "berlin"),
        "elevation": (0.0, "literature"),
    },
    "day": {
        "building_volume_density_500m": (-0.008, "berlin"),
        "imperviousness_500m": (0.0, "berlin"),
        "tree_canopy_100m": (-0.94, "literature"),
        "elevation": (-0.0065, "literature"),
    },
}
#: Standard error of the predictor-only map (K): leave-one-station-out RMSE of "reference station +
#: prior" over the 14 Berlin stations with dahlemerfeld as the reference (coefficients refitted
#: without the predicted station): summer nights 1.96 K (reference alone 2.73 K), heat-wave days
#: 1.10 K (reference alone 1.11 K).
PRIOR_RMSE_K = {"night": 1.96, "day": 1.10}


@dataclass(frozen=True)
class HeatWeather:
    """A weather situation for a heat run without (or beside) local sensor readings.

    Attributes
    ----------
    time_utc : str or datetime-like
        The hour (UTC unless an offset is given).
    ta_ref_c : float
        Rural/background air temperature, degC (open land outside the city, 2 m).
    wind_m_per_s : float
        Wind speed at 10 m, m/s (UTCI's input; its valid range starts at 0.5).
    rh_pct : float
        Relative humidity, %.
    global_w_m2 : float, optional
        Measured global horizontal irradiance, W m-2 (default: clear sky for the sun position).
    diffuse_w_m2 : float, optional
        Measured diffuse horizontal irradiance, W m-2 (default: from ``global_w_m2`` by Erbs et al. 1982).
    ref_elevation_m : float, optional
        Height of the reference site, m (default: the median terrain height of the grid).
    """

    time_utc: object
    ta_ref_c: float
    wind_m_per_s: float = 2.0
    rh_pct: float = 50.0
    global_w_m2: float | None = None
    diffuse_w_m2: float | None = None
    ref_elevation_m: float | None = None

    @classmethod
    def coerce(cls, w) -> "HeatWeather":
        """A :class:`HeatWeather` from itself, a mapping (``time``/``time_utc``, ``ta_ref_c``/``air_temperature_c``,
        ``wind_m_per_s``, ``rh_pct``/``relative_humidity_pct``, ...) or an object with those attributes."""
        if isinstance(w, cls):
            return w
        get = (lambda k: w.get(k)) if isinstance(w, dict) else (lambda k: getattr(w, k, None))
        pick = lambda *ks: next((get(k) for k in ks if get(k) is not None), None)  # noqa: E731
        kw = {"time_utc": pick("time_utc", "time"), "ta_ref_c": pick("ta_ref_c", "air_temperature_c", "ta_c",
                                                                    "reference_air_temperature_c"),
              "wind_m_per_s": pick("wind_m_per_s", "wind_speed_m_per_s", "wind"),
              "rh_pct": pick("rh_pct", "relative_humidity_pct", "relative_humidity", "rh"),
              "global_w_m2": pick("global_w_m2", "global_radiation_w_m2"), "diffuse_w_m2": pick("diffuse_w_m2"),
              "ref_elevation_m": pick("ref_elevation_m")}
        if kw["time_utc"] is None or kw["ta_ref_c"] is None:
            raise TwinValueError(f"a weather situation needs a time and a reference air temperature (ta_ref_c), got {w!r}")
        w2 = cls(**{k: v for k, v in kw.items() if v is not None})
        if not (-50.0 <= float(w2.ta_ref_c) <= 55.0):
            raise TwinValueError(f"ta_ref_c={w2.ta_ref_c} degC is not a plausible air temperature")
        if not (0.0 <= float(w2.rh_pct) <= 100.0):
            raise TwinValueError(f"rh_pct={w2.rh_pct} must lie in 0..100 %")
        if not (float(w2.wind_m_per_s) >= 0.0):
            raise TwinValueError(f"wind_m_per_s={w2.wind_m_per_s} must be >= 0")
        return w2


def is_night(sun_elevation_deg: float | None) -> bool:
    """Night class for the sign constraints and priors: the sun at or below the horizon (or unknown)."""
    return sun_elevation_deg is None or sun_elevation_deg <= 0.0


def surfaces_from_grid(grid) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dsm, veg_top)``: terrain + buildings, and absolute tree-canopy top (NaN without trees) or None."""
    terrain = np.asarray(grid["terrain_elevation"], np.float32)
    bh = np.asarray(grid["building_height"], np.float32) if "building_height" in grid else np.zeros_like(terrain)
    dsm = (terrain + np.nan_to_num(bh)).astype(np.float32)
    veg = None
    if "tree_canopy_height" in grid:
        ch = np.asarray(grid["tree_canopy_height"], np.float32)
        if np.any(ch > 0):
            veg = np.where(ch > 0, terrain + ch, np.nan).astype(np.float32)
    return dsm, veg


#: a disc of more than this many cells in radius is averaged on a coarser raster (see buffer_mean)
EXACT_DISC_CELLS = 50


def buffer_mean(values, *, radius_m: float, cell_m: float) -> np.ndarray:
    """Mean of the finite values within ``radius_m`` of every cell (a disc buffer; NaN skipped).

    Exact (twin.sim.heat.geometry.disc_mean) up to :data:`EXACT_DISC_CELLS` cells of radius. Larger
    discs, whose cost grows with the radius, are evaluated on a raster coarsened by ``k =
    floor(radius / (EXACT_DISC_CELLS cells))`` (block sums and counts of finite values, so the mean
    still weights every fine cell equally) and interpolated bilinearly back to the cells: the disc
    edge is then resolved to ``k`` cells, i.e. to 1/50 of the radius (tests/test_heat_scene.py
    compares both ways).
    """
    from scipy.ndimage import map_coordinates

    from twin.sim.heat.geometry import disc_mean

    a = np.asarray(values, np.float64)
    rc = radius_m / cell_m
    k = int(rc // EXACT_DISC_CELLS)
    if k < 2:
        return disc_mean(a, radius_cells=rc)
    ny, nx = a.shape
    cy, cx = -(-ny // k), -(-nx // k)
    pad = np.full((cy * k, cx * k), np.nan)
    pad[:ny, :nx] = a
    fin = np.isfinite(pad)
    blocks = lambda v: v.reshape(cy, k, cx, k).sum(axis=(1, 3))  # noqa: E731
    sums, counts = blocks(np.where(fin, pad, 0.0)), blocks(fin.astype(np.float64))
    rr = rc / k
    m_sum, m_cnt = disc_mean(sums, radius_cells=rr), disc_mean(counts, radius_cells=rr)
    coarse = np.where(m_cnt > 0, m_sum / np.where(m_cnt > 0, m_cnt, 1.0), np.nan)
    # fine cell centre (i + 1/2) in coarse cell units, minus the coarse centre offset 1/2
    yi = (np.arange(ny) + 0.5) / k - 0.5
    xi = (np.arange(nx) + 0.5) / k - 0.5
    yy, xx = np.meshgrid(yi, xi, indexing="ij")
    filled = np.where(np.isfinite(coarse), coarse, np.nanmean(coarse) if np.isfinite(coarse).any() else 0.0)
    out = map_coordinates(filled, [yy.ravel(), xx.ravel()], order=1, mode="nearest").reshape(ny, nx)
    near_nan = map_coordinates(np.isfinite(coarse).astype(float), [yy.ravel(), xx.ravel()], order=0,
                               mode="nearest").reshape(ny, nx)
    out[near_nan == 0] = np.nan
    return out


def predictor_maps(grid, *, svf=None, radii_m=PREDICTOR_RADII_M) -> dict[str, np.ndarray]:
    """Predictor rasters of a grid (see the module docstring); float64 arrays of the grid's shape.

    ``svf`` (the SVF map of the grid) adds ``svf_<r>m``; fields the grid lacks are skipped.
    """
    cell = float(grid.transform.a)
    if not (cell > 0):
        raise TwinValueError(f"grid cell size {cell} must be > 0")
    out: dict[str, np.ndarray] = {}
    has = lambda k: k in grid  # noqa: E731
    bh = np.nan_to_num(np.asarray(grid["building_height"], np.float64)) if has("building_height") else None
    layers = {}
    if has("imperviousness"):
        layers["imperviousness"] = np.asarray(grid["imperviousness"], np.float64)
    if bh is not None:
        layers["building_volume_density"] = bh
    if svf is not None:
        s = np.asarray(svf, np.float64)
        layers["svf"] = np.where(bh > 0.0, np.nan, s) if bh is not None else s
    if has("tree_canopy_height"):
        layers["tree_canopy"] = (np.nan_to_num(np.asarray(grid["tree_canopy_height"], np.float64)) > 0).astype(np.float64)
    if has("water_mask"):
        layers["water_fraction"] = (np.asarray(grid["water_mask"]) > 0).astype(np.float64)
    for base, arr in layers.items():
        for r in radii_m:
            out[f"{base}_{int(r)}m"] = buffer_mean(arr, radius_m=r, cell_m=cell)
    if has("water_mask") and np.any(np.asarray(grid["water_mask"]) > 0):
        from scipy.ndimage import distance_transform_edt

        out["water_distance"] = distance_transform_edt(np.asarray(grid["water_mask"]) <= 0) * cell
    if has("terrain_elevation"):
        out["elevation"] = np.asarray(grid["terrain_elevation"], np.float64)
    return out


def prior_model(preds: dict[str, np.ndarray], weather: HeatWeather, *, night: bool):
    """The predictor-only air-temperature model of one weather situation.

    Returns ``(model, maps)``: an ``AirTemperatureModel`` (method ``"predictor_only_prior"``,
    intercept ``Ta_ref``, the coefficients of :data:`PRIOR_COEFFICIENTS` for the predictors present in
    ``preds``; an absent one is named in the notes; no residual kriging; standard error
    :data:`PRIOR_RMSE_K`) and the predictor maps in the model's order. Elevation enters as
    ``elevation_above_reference`` (terrain minus the reference site's height), so that its
    contribution map reads as the lapse-rate correction.
    """
    from twin.sim.heat.airtemp import AirTemperatureModel

    cls = "night" if night else "day"
    names, coef, notes, sources, maps = [], [], [], {}, {}
    for name, (b, src) in PRIOR_COEFFICIENTS[cls].items():
        if name not in preds:
            notes.append(f"predictor {name} is not available on this grid: left out of the prior")
            continue
        arr = preds[name]
        if name == "elevation":
            zref = weather.ref_elevation_m if weather.ref_elevation_m is not None else float(np.nanmedian(arr))
            sources["elevation_reference_m"] = round(float(zref), 2)
            name, arr = "elevation_above_reference", arr - zref
        names.append(name)
        coef.append(b)
        maps[name] = arr
        sources[name] = src
    notes.append("no local readings: predictor-only air temperature from the weather situation's reference "
                 f"temperature {float(weather.ta_ref_c):.2f} degC and prior coefficients ({cls}; sources {sources})")
    se2 = PRIOR_RMSE_K[cls] ** 2
    model = AirTemperatureModel("predictor_only_prior", names, float(weather.ta_ref_c), np.asarray(coef, float),
                                np.diag([se2] + [0.0] * len(names)), (se2, 0.0, 1.0), np.zeros(0), np.zeros(0),
                                np.zeros(0), np.zeros(0), night, notes)
    return model, maps
