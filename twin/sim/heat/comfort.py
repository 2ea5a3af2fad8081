"""Mean radiant temperature (a documented SOLWEIG-lite approximation) and UTCI.

Tmrt of a standing person (Thorsson et al. 2007, Int J Climatol 27:1983; Lindberg et al. 2008, Int J
Biometeorol 52:697 -- method re-derived from the papers, no UMEP code used), per cell from the sky
view factor ``svf`` (cosine-weighted, buildings + trees), the sunlit fraction ``f`` and the forcing
(global ``G`` and diffuse ``D`` horizontal irradiance, direct normal ``I``, sun elevation ``alpha``,
Ta, RH):

- shortwave: ``K_down = f I sin(alpha) + D svf + a_w (1 - svf) G / 2`` (walls reflect, half of them
  sunlit); ``K_up = a_g (f I sin(alpha) + D svf)``; each of the 4 sides
  ``K_side = (D svf + a_w (1 - svf) G / 2) / 2 + K_up / 2``; the direct beam on the body
  ``K_I = f I cos(alpha)`` with the cylinder weight 0.28;
- longwave: sky ``eps_sky sigma Ta^4`` (Brutsaert 1975 clear sky, clouds from the clearness index
  against Haurwitz clear sky, Crawford & Duchon 1999), walls at Ta (``eps_w``), ground at
  ``Tg = Ta + c_g f I sin(alpha)`` (sunlit ground warms ~0.025 K per W m-2 of direct beam, matching
  Lindberg et al.'s Tg amplitude of ~17 K at 55 deg); ``L_down = svf L_sky + (1 - svf) L_wall``,
  ``L_up = eps_g sigma Tg^4 + (1 - eps_g) L_down``, ``L_side = (L_down + L_up) / 2``;
- ``S_str = a_k (0.06 (K_down + K_up) + 0.22 sum K_side + 0.28 K_I) + eps_p (0.06 (L_down + L_up) + 0.22 sum L_side)``,
  ``Tmrt = (S_str / (eps_p sigma))^(1/4) - 273.15`` (a_k 0.70, eps_p 0.97).

Checks: an isothermal black enclosure (K = 0, every L = sigma T^4) gives Tmrt = T exactly (the angular
weights 2 x 0.06 + 4 x 0.22 sum to 1); walls are kept at Ta, so sunlit walls are too cool (SOLWEIG's
known L bias, larger here).

UTCI: Bröde et al. (2012) polynomial through pythermalcomfort, valid for Ta -50..50 degC, Tmrt - Ta
-30..70 K, wind at 10 m 0.5..17 m/s; values outside are NaN (never extrapolated), and the count of
such cells is reported by the caller.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mean_radiant_temperature", "utci", "sky_emissivity", "UTCI_RANGE", "clear_sky_global", "split_global"]

SIGMA = 5.670374419e-8  # Stefan-Boltzmann, W m-2 K-4
UTCI_RANGE = {"ta_c": (-50.0, 50.0), "tmrt_minus_ta_k": (-30.0, 70.0), "wind_10m_m_per_s": (0.5, 17.0)}


def vapour_pressure_hpa(ta_c, rh_pct):
    """Magnus formula (Alduchov & Eskridge 1996)."""
    return np.asarray(rh_pct) / 100.0 * 6.1094 * np.exp(17.625 * np.asarray(ta_c) / (np.asarray(ta_c) + 243.04))


def sky_emissivity(ta_c, rh_pct, *, clearness: float | None = None) -> float:
    """Brutsaert (1975) clear-sky emissivity, with clouds ``1 - clearness`` (Crawford & Duchon 1999)."""
    eps = 1.24 * (vapour_pressure_hpa(ta_c, rh_pct) / (np.asarray(ta_c) + 273.15)) ** (1.0 / 7.0)
    if clearness is not None:
        c = float(np.clip(1.0 - clearness, 0.0, 1.0))
        eps = c + (1.0 - c) * eps
    return np.minimum(eps, 1.0)


def mean_radiant_temperature(svf, sunlit, *, ta_c: float, rh_pct: float, global_w_m2: float, diffuse_w_m2: float,
                             direct_normal_w_m2: float, sun_elevation_deg: float, albedo_ground: float = 0.15,
                             albedo_wall: float = 0.20, emis_ground: float = 0.95, emis_wall: float = 0.90,
                             emis_sky: float | None = None, absorb_k: float = 0.70, emis_person: float = 0.97,
                             ground_heating_k_per_w: float = 0.025) -> np.ndarray:
    """Tmrt (degC) of a standing person per cell (see the module docstring for the scheme)."""
    svf = np.asarray(svf, np.float64)
    f = np.asarray(sunlit, np.float64)
    alpha = math.radians(max(sun_elevation_deg, 0.0))
    sa, ca = math.sin(alpha), math.cos(alpha)
    i_dir = direct_normal_w_m2 if sun_elevation_deg > 0 else 0.0
    g, d = max(global_w_m2, 0.0), max(diffuse_w_m2, 0.0)
    if emis_sky is None:
        clear = None
        if sun_elevation_deg > 5:
            g_clear = 1098.0 * sa * math.exp(-0.057 / sa)  # Haurwitz (1945) clear-sky GHI
            clear = min(g / g_clear, 1.0) if g_clear > 0 else None
        emis_sky = sky_emissivity(ta_c, rh_pct, clearness=clear)  # scalar or per cell (Ta map)
    ta_k = ta_c + 273.15
    beam_h = f * i_dir * sa
    wall_refl = albedo_wall * (1.0 - svf) * g / 2.0
    k_down = beam_h + d * svf + wall_refl
    k_up = albedo_ground * (beam_h + d * svf)
    k_side = 0.5 * (d * svf + wall_refl) + 0.5 * k_up
    k_i = f * i_dir * ca
    l_sky = emis_sky * SIGMA * ta_k ** 4
    l_wall = emis_wall * SIGMA * ta_k ** 4
    l_down = svf * l_sky + (1.0 - svf) * l_wall
    tg = ta_k + ground_heating_k_per_w * beam_h
    l_up = emis_ground * SIGMA * tg ** 4 + (1.0 - emis_ground) * l_down
    l_side = 0.5 * (l_down + l_up)
    s_str = absorb_k * (0.06 * (k_down + k_up) + 0.88 * k_side + 0.28 * k_i) + \
        emis_person * (0.06 * (l_down + l_up) + 0.88 * l_side)
    return (s_str / (emis_person * SIGMA)) ** 0.25 - 273.15


SOLAR_CONSTANT = 1367.0  # W m-2


def clear_sky_global(sun_elevation_deg: float) -> float:
    """Haurwitz (1945) clear-sky global horizontal irradiance, W m-2 (0 with the sun down)."""
    if sun_elevation_deg <= 0:
        return 0.0
    sa = math.sin(math.radians(sun_elevation_deg))
    return 1098.0 * sa * math.exp(-0.057 / sa)


def split_global(global_w_m2: float, sun_elevation_deg: float) -> tuple[float, float]:
    """Diffuse horizontal and direct normal irradiance (W m-2) from global, by the Erbs, Klein & Duffie
    (1982, Solar Energy 28:293) diffuse fraction of the clearness index."""
    if sun_elevation_deg <= 0 or global_w_m2 <= 0:
        return max(global_w_m2, 0.0), 0.0
    sa = max(math.sin(math.radians(sun_elevation_deg)), 0.02)
    kt = min(global_w_m2 / (SOLAR_CONSTANT * sa), 1.0)
    if kt <= 0.22:
        kd = 1.0 - 0.09 * kt
    elif kt <= 0.80:
        kd = 0.9511 - 0.1604 * kt + 4.388 * kt ** 2 - 16.638 * kt ** 3 + 12.336 * kt ** 4
    else:
        kd = 0.165
    d = kd * global_w_m2
    return d, max((global_w_m2 - d) / max(sa, 0.05), 0.0)


def utci(ta_c, tmrt_c, wind_10m_m_per_s, rh_pct) -> np.ndarray:
    """UTCI (degC), NaN outside the polynomial's valid range (never extrapolated)."""
    from pythermalcomfort.models import utci as _utci

    ta, tr, v, rh = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (ta_c, tmrt_c, wind_10m_m_per_s, rh_pct)))
    out = np.full(ta.shape, np.nan)
    ok = ((ta >= -50) & (ta <= 50) & (tr - ta >= -30) & (tr - ta <= 70) & (v >= 0.5) & (v <= 17)
          & np.isfinite(rh) & (vapour_pressure_hpa(ta, rh) <= 50.0))
    if ok.any():
        out[ok] = _utci(ta[ok], tr[ok], v[ok], rh[ok], limit_inputs=False)
    return out
