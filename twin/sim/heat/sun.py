"""Solar position (NREL SPA through pvlib) and time-integrated shade.

pvlib's ``nrel_numpy`` implements the NREL Solar Position Algorithm (Reda & Andreas 2004, Solar
Energy 76:577; ±0.0003 deg); times are converted to UTC first, so naive timestamps mean UTC.
"""

from __future__ import annotations

import numpy as np

from twin.errors import TwinValueError

__all__ = ["solar_position", "shade_hours"]


def _utc_index(times):
    import pandas as pd

    idx = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(times)))
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def solar_position(times, latitude: float, longitude: float, *, altitude_m: float = 0.0, pressure_pa: float = 101325.0,
                   temperature_c: float = 12.0, delta_t_s: float = 67.0):
    """Sun position for each time (NREL SPA).

    Returns
    -------
    pandas.DataFrame indexed by UTC time with ``apparent_zenith``, ``zenith``, ``apparent_elevation``,
    ``elevation`` and ``azimuth`` (deg, clockwise from north), refraction for the given pressure and
    temperature.
    """
    import pvlib

    if not (-90.0 <= latitude <= 90.0) or not (-180.0 <= longitude <= 360.0):
        raise TwinValueError(f"latitude={latitude}, longitude={longitude} are not geographic degrees; "
                             "pass WGS84 lon/lat (twin.crs.to_ellipsoidal converts scene coordinates)")
    idx = _utc_index(times)
    return pvlib.solarposition.get_solarposition(idx, latitude, longitude, altitude=altitude_m,
                                                 pressure=pressure_pa, temperature=temperature_c,
                                                 method="nrel_numpy", delta_t=delta_t_s)


def shade_hours(dsm, *, cell_m: float, date, latitude: float, longitude: float, step_minutes: int = 15, veg_top=None,
                transmissivity: float = 0.03, min_elevation_deg: float = 3.0):
    """Hours of the day (UTC date) during which each cell is in shade while the sun is up.

    The sun is sampled every ``step_minutes`` at the middle of each step; steps with elevation below
    ``min_elevation_deg`` (SOLWEIG's 3 deg cap of shadow reach) count neither as sun nor shade.
    Returns ``(shade_h, sun_up_h)``: a float32 raster and the hours counted.
    """
    import pandas as pd

    from twin.sim.heat.geometry import sunlit_fraction

    day = pd.Timestamp(date)
    day = (day.tz_localize("UTC") if day.tzinfo is None else day.tz_convert("UTC")).normalize()
    n = int(round(24 * 60 / step_minutes))
    times = day + pd.to_timedelta((np.arange(n) + 0.5) * step_minutes, unit="min")
    sp = solar_position(times, latitude, longitude)
    dt_h = step_minutes / 60.0
    shade = np.zeros(np.shape(dsm), np.float32)
    up = 0.0
    for az, el in zip(sp["azimuth"].to_numpy(), sp["apparent_elevation"].to_numpy()):
        if el < min_elevation_deg:
            continue
        up += dt_h
        shade += dt_h * (1.0 - sunlit_fraction(dsm, cell_m=cell_m, sun_azimuth_deg=az, sun_elevation_deg=el,
                                               veg_top=veg_top, transmissivity=transmissivity))
    return shade, up
