"""Mean radiant temperature (two schemes after SOLWEIG, re-derived from the papers) and UTCI.

Scheme ``"lite"`` (default): ``K_down = f I sin(alpha) + D Psi + a_w (1 - Psi) G / 2``; ``K_up = a_g
(f I sin(alpha) + D Psi)``; each side ``(D Psi + a_w (1 - Psi) G / 2) / 2 + K_up / 2``; the direct beam
on the body ``f I cos(alpha)`` with the cylinder weight 0.28; sky ``eps_sky sigma Ta^4`` (Brutsaert
1975 clear sky, clouds from the clearness index), walls at Ta, ground ``Ta + 0.025 K/(W m-2) x f I
sin(alpha)``; the same angular weights as below.

Scheme ``"solweig"``: Tmrt of a standing person (Lindberg, Holmer & Thorsson 2008, Int J Biometeorol 52:697; Thorsson et al.
2007, Int J Climatol 27:1983; no UMEP code used), per cell from the sky view factor ``Psi``
(cosine-weighted, buildings + trees), the sunlit fraction ``f``, the sun (elevation ``alpha``,
azimuth ``phi_s``) and the forcing (global ``G``, diffuse ``D``, direct normal ``I``, Ta, RH):

- shortwave, six directions: ``K_down = f I sin(alpha) + D Psi + a_w (1 - Psi) (G + D) / 2`` (walls
  reflect; half of them sunlit, SOLWEIG's F_sh ~ 0.5); ``K_up = a_g (f I sin(alpha) + D Psi +
  a_w (1 - Psi) (G + D) / 2)``; each side ``d`` (N, E, S, W): ``K_d = f I cos(alpha) max(0, cos(phi_s -
  phi_d)) + D Psi / 2 + a_w (1 - Psi) (D + w_d I cos(alpha)) / 2 + K_up / 2`` with ``w_d`` the lit share
  of the walls seen in direction ``d`` (``(1 - cos(phi_s - phi_d)) / 2``: the walls facing the sun);
- longwave: sky ``eps_sky sigma Ta^4`` with the clear-sky emissivity of Prata (1996, QJRMS 122:1127),
  as Jonsson et al. (2006, Atmos. Res. 79:199) found best for Gothenburg, and clouds from the clearness
  index ``CI = G / G_clear`` (Crawford & Duchon 1999, ``eps = CI eps_clear + 1 - CI``); walls at
  ``Ta + w_d dT_wall``, tree crowns (the sky hidden by trees, not by buildings) at Ta, and ground at
  ``Ta + f dT_ground`` (emissivities 0.90 / 0.95), the surface
  temperature excess of sunlit surfaces following Lindberg et al. (2008)'s daily wave
  (:func:`surface_temperature_excess`: amplitude ``0.37 alpha_max - 3.41`` K, a sine from sunrise to
  its maximum at 15 h local solar time, times CI); ``L_down = Psi L_sky + F_wall mean_d L_wall_d +
  F_veg L_veg`` (``F_wall = 1 - Psi_buildings``, ``F_veg = Psi_buildings - Psi``; walls only reflect),
  ``L_up = eps_g sigma Tg^4 + (1 - eps_g) L_down``, ``L_d = (Psi L_sky + F_wall L_wall_d + F_veg L_veg) / 2 + L_up / 2``;
- ``S_str = a_k (0.06 (K_down + K_up) + 0.22 sum_d K_d) + eps_p (0.06 (L_down + L_up) + 0.22 sum_d L_d)``,
  ``Tmrt = (S_str / (eps_p sigma))^(1/4) - 273.15`` (a_k 0.70, eps_p 0.97; standing person, ISO 7726).

Without a sun azimuth the sides are averaged over azimuth; without a surface temperature excess the
ground warms 0.025 K per W m-2 of direct beam on it and walls stay at Ta (the earlier, simpler scheme).

Checks: an isothermal black enclosure (K = 0, every L = sigma T^4) gives Tmrt = T exactly (the angular
weights 2 x 0.06 + 4 x 0.22 sum to 1). Gothenburg (tests/test_heat_comfort.py): see DESIGN.md.

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


def sky_emissivity(ta_c, rh_pct, *, clearness: float | None = None, scheme: str = "prata"):
    """Clear-sky emissivity (Prata 1996, default; or Brutsaert 1975), with clouds ``1 - clearness``
    (Crawford & Duchon 1999)."""
    ta_k = np.asarray(ta_c, np.float64) + 273.15
    e = vapour_pressure_hpa(ta_c, rh_pct)
    if scheme == "prata":
        w = 46.5 * e / ta_k  # precipitable water, cm
        eps = 1.0 - (1.0 + w) * np.exp(-np.sqrt(1.2 + 3.0 * w))
    else:
        eps = 1.24 * (e / ta_k) ** (1.0 / 7.0)
    if clearness is not None:
        c = float(np.clip(1.0 - clearness, 0.0, 1.0))
        eps = c + (1.0 - c) * eps
    return np.minimum(eps, 1.0)


def surface_temperature_excess(time_utc, latitude: float, longitude: float, *, clearness: float = 1.0,
                               k_per_deg: float = 0.37, offset_k: float = -3.41, t_max_solar_h: float = 15.0) -> float:
    """Temperature excess (K) of sunlit ground/walls over the air at a time: Lindberg et al. (2008)'s wave.

    Amplitude ``A = k_per_deg alpha_max + offset_k`` (``alpha_max`` the day's highest sun elevation,
    deg), ``dT = A sin(pi/2 (t - t_rise) / (t_max - t_rise))`` between sunrise and the evening
    (``t`` local mean solar time, ``t_max`` 15 h), times the clearness index; 0 with the sun down and
    never negative.
    """
    import pandas as pd

    from twin.sim.heat.sun import solar_position

    t = pd.Timestamp(time_utc)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    day = t.normalize()
    probe = day + pd.to_timedelta(np.arange(0, 24 * 60, 10), unit="min")
    sp = solar_position(probe, latitude, longitude)
    el = sp["apparent_elevation"].to_numpy()
    a_max = float(el.max())
    amp = k_per_deg * a_max + offset_k
    if amp <= 0 or not (el > 0).any() or float(solar_position(t, latitude, longitude)["apparent_elevation"].iloc[0]) <= 0:
        return 0.0
    solar_h = lambda ts: (ts - day).total_seconds() / 3600.0 + longitude / 15.0  # noqa: E731 (mean solar time)
    rise = solar_h(probe[int(np.argmax(el > 0))])
    x = (solar_h(t) - rise) / (t_max_solar_h - rise)
    if not (0.0 < x < 2.0):
        return 0.0
    return float(max(amp * np.sin(0.5 * np.pi * x), 0.0) * float(np.clip(clearness, 0.0, 1.0)))


def clearness_index(global_w_m2: float, sun_elevation_deg: float) -> float | None:
    """``G / G_clear`` (Haurwitz clear sky), None with the sun below 5 deg (too uncertain)."""
    if sun_elevation_deg <= 5:
        return None
    gc = clear_sky_global(sun_elevation_deg)
    return min(max(global_w_m2, 0.0) / gc, 1.0) if gc > 0 else None


_SIDES_DEG = (0.0, 90.0, 180.0, 270.0)


TMRT_SCHEMES = ("lite", "solweig")


def mean_radiant_temperature(svf, sunlit, *, ta_c: float, rh_pct: float, global_w_m2: float, diffuse_w_m2: float,
                             direct_normal_w_m2: float, sun_elevation_deg: float, scheme: str = "lite", **kw):
    """Tmrt (degC) of a standing person per cell.

    ``scheme``: ``"lite"`` (default; Gothenburg Tmrt RMSE 3.81 K over 73 h) or ``"solweig"`` (the fuller
    six-direction budget with the surface temperature wave; 4.18 K there): see the module docstring.
    Keywords of the schemes: ``albedo_ground``, ``albedo_wall``, ``emis_ground``, ``emis_wall``,
    ``emis_sky``, ``absorb_k``, ``emis_person``, ``ground_heating_k_per_w``; ``"solweig"`` also
    ``sun_azimuth_deg``, ``ground_dt_k``, ``wall_dt_k``, ``svf_buildings`` (ignored by ``"lite"``) and
    ``return_fluxes``.
    """
    from twin.errors import TwinValueError

    if scheme == "lite":
        for k in ("sun_azimuth_deg", "ground_dt_k", "wall_dt_k", "svf_buildings"):
            kw.pop(k, None)
        return _tmrt_lite(svf, sunlit, ta_c=ta_c, rh_pct=rh_pct, global_w_m2=global_w_m2, diffuse_w_m2=diffuse_w_m2,
                          direct_normal_w_m2=direct_normal_w_m2, sun_elevation_deg=sun_elevation_deg, **kw)
    if scheme == "solweig":
        return _tmrt_solweig(svf, sunlit, ta_c=ta_c, rh_pct=rh_pct, global_w_m2=global_w_m2, diffuse_w_m2=diffuse_w_m2,
                             direct_normal_w_m2=direct_normal_w_m2, sun_elevation_deg=sun_elevation_deg, **kw)
    raise TwinValueError(f"scheme={scheme!r} is not a Tmrt scheme; use one of {list(TMRT_SCHEMES)}")


def _tmrt_lite(svf, sunlit, *, ta_c: float, rh_pct: float, global_w_m2: float, diffuse_w_m2: float,
               direct_normal_w_m2: float, sun_elevation_deg: float, albedo_ground: float = 0.15,
               albedo_wall: float = 0.20, emis_ground: float = 0.95, emis_wall: float = 0.90,
               emis_sky: float | None = None, absorb_k: float = 0.70, emis_person: float = 0.97,
               ground_heating_k_per_w: float = 0.025) -> np.ndarray:
    """The ``"lite"`` scheme (see the module docstring)."""
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
        emis_sky = sky_emissivity(ta_c, rh_pct, clearness=clear, scheme="brutsaert")  # scalar or per cell
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


def _tmrt_solweig(svf, sunlit, *, ta_c: float, rh_pct: float, global_w_m2: float, diffuse_w_m2: float,
                  direct_normal_w_m2: float, sun_elevation_deg: float, sun_azimuth_deg: float | None = None,
                  albedo_ground: float = 0.15, albedo_wall: float = 0.20, emis_ground: float = 0.95,
                  emis_wall: float = 0.90, emis_sky: float | None = None, absorb_k: float = 0.70,
                  emis_person: float = 0.97, ground_dt_k: float | None = None, wall_dt_k: float | None = None,
                  ground_heating_k_per_w: float = 0.025, svf_buildings=None, return_fluxes: bool = False) -> np.ndarray:
    """The ``"solweig"`` scheme (see the module docstring).

    ``ground_dt_k`` / ``wall_dt_k``: temperature excess of sunlit ground / walls over the air, K
    (:func:`surface_temperature_excess`); ``svf_buildings``: the SVF without trees, which splits the
    obstructed sky into walls (``1 - svf_buildings``: reflect, warm in the sun) and tree crowns
    (``svf_buildings - svf``: at air temperature, as in Lindberg et al. 2008); without it every
    obstruction is a wall. ``return_fluxes`` adds a dict of the six-direction fluxes.
    """
    svf = np.asarray(svf, np.float64)
    f_wall = 1.0 - (svf if svf_buildings is None else np.maximum(np.asarray(svf_buildings, np.float64), svf))
    f_veg = 1.0 - svf - f_wall
    f = np.asarray(sunlit, np.float64)
    alpha = math.radians(max(sun_elevation_deg, 0.0))
    sa, ca = math.sin(alpha), math.cos(alpha)
    up = sun_elevation_deg > 0
    i_dir = direct_normal_w_m2 if up else 0.0
    g, d = (max(global_w_m2, 0.0), max(diffuse_w_m2, 0.0)) if up else (0.0, 0.0)
    if emis_sky is None:
        clear = clearness_index(g, sun_elevation_deg) if up else None
        emis_sky = sky_emissivity(ta_c, rh_pct, clearness=clear)  # scalar or per cell (Ta map)
    ta_k = np.asarray(ta_c, np.float64) + 273.15
    if sun_azimuth_deg is None:  # sides averaged over the sun's azimuth: mean max(0, cos) = 1/pi, mean lit = 1/2
        cos_d = [None] * 4
    else:
        cos_d = [math.cos(math.radians(sun_azimuth_deg - p)) for p in _SIDES_DEG]
    beam_h = f * i_dir * sa
    wall_refl = albedo_wall * f_wall * 0.5 * (g + d)
    k_down = beam_h + d * svf + wall_refl
    k_up = albedo_ground * k_down
    l_sky = emis_sky * SIGMA * ta_k ** 4
    if ground_dt_k is None:
        tg = ta_k + ground_heating_k_per_w * beam_h
    else:
        tg = ta_k + f * ground_dt_k
    k_sides, l_walls = [], []
    for c in cos_d:
        lit = 0.5 if c is None else 0.5 * (1.0 - c)
        direct = f * i_dir * ca * (1.0 / math.pi if c is None else max(0.0, c))
        k_sides.append(direct + 0.5 * d * svf + 0.5 * albedo_wall * f_wall * (d + lit * i_dir * ca) + 0.5 * k_up)
        tw = ta_k + (0.0 if wall_dt_k is None else lit * wall_dt_k)
        l_walls.append(emis_wall * SIGMA * tw ** 4 + (1.0 - emis_wall) * l_sky)
    l_veg = emis_wall * SIGMA * ta_k ** 4 + (1.0 - emis_wall) * l_sky  # crowns at air temperature
    l_wall_mean = sum(l_walls) / 4.0
    l_down = svf * l_sky + f_wall * l_wall_mean + f_veg * l_veg
    l_up = emis_ground * SIGMA * tg ** 4 + (1.0 - emis_ground) * l_down
    l_sides = [0.5 * (svf * l_sky + f_wall * lw + f_veg * l_veg) + 0.5 * l_up for lw in l_walls]
    s_str = absorb_k * (0.06 * (k_down + k_up) + 0.22 * sum(k_sides)) + \
        emis_person * (0.06 * (l_down + l_up) + 0.22 * sum(l_sides))
    tmrt = (s_str / (emis_person * SIGMA)) ** 0.25 - 273.15
    if return_fluxes:
        return tmrt, {"Kdown": k_down, "Kup": k_up, "Kside": sum(k_sides) / 4, "Ldown": l_down, "Lup": l_up,
                      "Lside": sum(l_sides) / 4, "Sstr": s_str, "Kn": k_sides[0], "Ke": k_sides[1], "Ks": k_sides[2],
                      "Kw": k_sides[3], "Ln": l_sides[0], "Le": l_sides[1], "Ls": l_sides[2], "Lw": l_sides[3]}
    return tmrt


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
