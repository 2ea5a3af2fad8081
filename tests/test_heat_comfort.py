"""Tmrt approximation and UTCI: closed-form checks, UTCI reference values and the Gothenburg SOLWEIG sites.

UTCI references: ../shared/reference/heat.md section 2 (pythermalcomfort 4.8.1; we pin 2.10, whose
rounding differs by <= 0.1 K on two of them). Gothenburg: ../shared/data/heat/gothenburg_solweig_validation
(Lindberg et al. 2008; Lindberg & Grimmond 2011); target from the issue: report the Tmrt RMSE against
the measurements next to SOLWEIG's 4.8 K.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from tests.common import shared
from twin.sim.heat.comfort import SIGMA, mean_radiant_temperature, utci


@pytest.mark.parametrize("args, want", [((25, 25, 1, 50), 24.6), ((30, 30, 0.5, 50), 30.4), ((30, 50, 1, 50), 35.4),
                                        ((35, 35, 1, 50), 36.5), ((30, 60, 0.5, 40), 37.4), ((35, 60, 0.5, 40), 41.7),
                                        ((20, 20, 3, 60), 16.7), ((0, 0, 5, 80), -14.0), ((-10, -10, 10, 70), -39.7)])
def test_utci_reference_values(args, want):
    assert utci(*args)[()] == pytest.approx(want, abs=0.15)  # 0.1 K rounding of the reference + version rounding


@pytest.mark.parametrize("args", [(30, 30, 0.3, 50), (55, 55, 1, 10), (20, 95, 1, 50), (20, -15, 1, 50), (20, 20, 20, 50)])
def test_utci_outside_valid_range_is_nan(args):
    assert np.isnan(utci(*args)[()])


def test_isothermal_enclosure_gives_tmrt_equal_t():
    """K = 0 and every L = sigma T^4 (all emissivities 1): Tmrt = T, since 2 x 0.06 + 4 x 0.22 = 1."""
    for t in (-10.0, 15.0, 35.0):
        for scheme in ("lite", "solweig"):
            got = mean_radiant_temperature(np.array([0.0, 0.4, 1.0]), 0.0, ta_c=t, rh_pct=50, global_w_m2=0,
                                           diffuse_w_m2=0, direct_normal_w_m2=0, sun_elevation_deg=-5, emis_ground=1,
                                           emis_wall=1, emis_sky=1.0, scheme=scheme)
            np.testing.assert_allclose(got, t, atol=1e-9)


def test_surface_temperature_wave():
    """Lindberg et al. (2008): amplitude 0.37 alpha_max - 3.41 K, largest at 15 h solar time, 0 at night."""
    from twin.sim.heat.comfort import surface_temperature_excess

    lat, lon = 57.7, 12.0  # Gothenburg, 2024-06-21: alpha_max ~ 55.7 deg -> 17.2 K
    at = lambda h: surface_temperature_excess(f"2024-06-21T{h}", lat, lon)  # noqa: E731
    assert at("14:12:00Z") == pytest.approx(0.37 * 55.7 - 3.41, abs=0.3)  # 15 h mean solar time = 14:12 UTC
    assert at("09:00:00Z") < at("12:00:00Z") < at("14:12:00Z") and at("23:30:00Z") == 0.0
    assert surface_temperature_excess("2024-06-21T14:12:00Z", lat, lon, clearness=0.5) == pytest.approx(at("14:12:00Z") / 2)


def test_sun_and_open_sky_raise_tmrt():
    kw = dict(ta_c=25, rh_pct=50, global_w_m2=800, diffuse_w_m2=120, direct_normal_w_m2=850, sun_elevation_deg=50)
    sun = mean_radiant_temperature(0.8, 1.0, **kw)
    shade = mean_radiant_temperature(0.8, 0.0, **kw)
    assert 15 < sun - shade < 35  # sun vs shade: 15-20 K and more in SOLWEIG VALIDATION.md (GVC 2010-07-12)
    night_open = mean_radiant_temperature(1.0, 0.0, ta_c=20, rh_pct=60, global_w_m2=0, diffuse_w_m2=0,
                                          direct_normal_w_m2=0, sun_elevation_deg=-10)
    night_canyon = mean_radiant_temperature(0.3, 0.0, ta_c=20, rh_pct=60, global_w_m2=0, diffuse_w_m2=0,
                                            direct_normal_w_m2=0, sun_elevation_deg=-10)
    assert night_open < night_canyon < 20.5  # cold clear sky at night, walls keep the canyon warmer


SITES = {"gvc": ("DSM_GVC_1m.tif", "DEM_GVC_1m.tif", "CDSM_GVC_1m.tif", "measurements_gvc.csv",
                 {"20100707": "MetFile20100707_Prepared.txt", "20100710": "MetFile20100710_Prepared.txt",
                  "20100712": "MetFile20100712_Prepared.txt"}),
         "gustav_adolfs": ("DSM_GA.tif", "DEM_GA.tif", "CDSM_GA.tif", "measurements_ga.csv",
                           {"20051011": "MetFile_20051011.txt", "20060726": "MetFile_20060726.txt",
                            "20060801": "MetFile_20060801.txt"})}
# Time labels: the Kdn-weighted centroid hour of the six met files is 11.0-12.2, i.e. solar noon (~11:15 UTC
# at 12 E) + half an hour: the met labels are UTC at the end of each hourly mean (CET would put it near 12.8).
UTC_OFFSET_H = 0
# Measurement labels against the met files' (hours): at Gustav Adolfs torg (an open square, SVF 0.9) the
# measured K_down of hour h matches the met file's global radiation of hour h - 1 (correlation 0.973-0.998
# over the three days against 0.82-0.94 at the same label) and the measured Ta of hour h the met Ta of
# h - 1: its measurement hours are one hour ahead of the met file. At GVC (a courtyard shaded half the
# day) the radiation cannot show a lag; same labels are kept. This pairs data by measured radiation,
# never by the modelled Tmrt.
MET_LAG_H = {"gvc": 0, "gustav_adolfs": 1}


def site_tmrt(site: str, schemes=("lite",)) -> pd.DataFrame:
    """Modelled vs measured Tmrt at the station for every measured hour of one site."""
    import rasterio
    from pyproj import Transformer

    from twin.sim.heat.comfort import clearness_index, surface_temperature_excess
    from twin.sim.heat.geometry import sky_view_factor, sunlit_fraction
    from twin.sim.heat.sun import solar_position

    base = shared("heat", "gothenburg_solweig_validation", site)
    dsm_f, dem_f, cdsm_f, meas_f, mets = SITES[site]
    read = lambda f: rasterio.open(base / f)  # noqa: E731
    with read(dsm_f) as s:
        dsm, tr, cell = s.read(1).astype(np.float32), s.transform, s.res[0]
    dem, cdsm = read(dem_f).read(1).astype(np.float32), read(cdsm_f).read(1).astype(np.float32)
    veg = np.where(cdsm > 0.5, dem + cdsm, np.nan).astype(np.float32)
    px, py = json.loads((base / "poi.geojson").read_text())["geometry"]["coordinates"][:2]
    col, row = ~tr * (px, py)
    i, j = int(row), int(col)
    lon, lat = Transformer.from_crs("EPSG:3006", "EPSG:4326", always_xy=True).transform(px, py)
    svf = sky_view_factor(dsm, cell_m=cell, directions=32, radius_m=200, veg_top=veg, transmissivity=0.03)[i, j]
    svf_b = sky_view_factor(dsm, cell_m=cell, directions=32, radius_m=200)[i, j]  # buildings only
    meas = pd.read_csv(base / meas_f)
    day_col = "date" if "date" in meas else "day"
    rows = []
    for _, m in meas.iterrows():
        day = str(int(m[day_col]))
        met = pd.read_csv(base / mets[day], sep=r"\s+")
        it = int(m["hour"]) - MET_LAG_H[site]
        r = met[met["it"] == it].iloc[0]
        t = pd.Timestamp(day) + pd.Timedelta(hours=it - UTC_OFFSET_H) - pd.Timedelta(minutes=30)
        sp = solar_position(t, lat, lon).iloc[0]
        el, az = float(sp["apparent_elevation"]), float(sp["azimuth"])
        g, d = float(r["Kdn"]), float(r["Kdiff"])  # measured global and diffuse radiation (met file)
        sa = math.sin(math.radians(max(el, 1.0)))
        i_dn = float(np.clip((g - d) / sa, 0, 1000)) if el > 1 else 0.0
        f = sunlit_fraction(dsm, cell_m=cell, sun_azimuth_deg=az, sun_elevation_deg=el, veg_top=veg)[i, j] if el > 0 else 0.0
        ci = clearness_index(g, el)
        dt = surface_temperature_excess(t, lat, lon, clearness=1.0 if ci is None else ci)
        tm = {sch: float(mean_radiant_temperature(svf, f, ta_c=float(r["Td"]), rh_pct=float(r["RH"]), global_w_m2=g,
                                                  diffuse_w_m2=d, direct_normal_w_m2=i_dn, sun_elevation_deg=el,
                                                  sun_azimuth_deg=az, ground_dt_k=dt, wall_dt_k=dt, svf_buildings=svf_b,
                                                  scheme=sch))
              for sch in schemes}
        rows.append({"day": day, "hour": int(m["hour"]), "model": tm[schemes[0]], "measured": float(m["Tmrt"]),
                     "sunlit": float(f), "svf": float(svf)} | {f"model_{k}": v for k, v in tm.items()})
    return pd.DataFrame(rows)


@pytest.mark.shared
def test_gothenburg_tmrt_rmse_beats_solweig_reference():
    """Tmrt RMSE over the 73 measured hours of GVC and Gustav Adolfs torg against SOLWEIG's 4.8 K.

    Measured (this file's pairing; see MET_LAG_H): scheme "lite" 3.81 K (GVC 4.47 K, Gustav Adolfs torg
    3.27 K, R2 0.92 / 0.96); scheme "solweig" 4.18 K (GVC 4.99 K, GA 3.51 K; 5.28 K when the crowns of
    GVC's trees were warmed like walls). Before the pairing fix: 7.88 K (GVC 4.47, GA 9.56). Both schemes
    overestimate L_down by 40-60 W m-2 at both sites (SOLWEIG's known L_down bias; solweig VALIDATION.md),
    which the fuller scheme's warm walls and ground add to; in GVC's tree shade both give about twice the
    measured K_down (isotropic diffuse through an SVF of 0.55). A circumsolar diffuse share shaded with
    the beam (Hay & Davies 1980) made both sites worse (GVC 5.10, GA 4.04 K) and was left out.
    """
    out = pd.concat([site_tmrt(s, schemes=("lite", "solweig")).assign(site=s) for s in SITES])
    assert len(out) == 74  # 30 GVC + 44 Gustav Adolfs rows in the measurement CSVs (PROVENANCE.md says 43 GA hours)
    ok = out.measured.notna()
    res = {}
    for sch in ("lite", "solweig"):
        err = (out[f"model_{sch}"] - out.measured)[ok]
        per_site = (err ** 2).groupby(out.site[ok]).mean() ** 0.5
        r2 = float(np.corrcoef(out[f"model_{sch}"][ok], out.measured[ok])[0, 1] ** 2)
        res[sch] = float(np.sqrt(np.mean(err ** 2)))
        print(f"{sch}: Tmrt RMSE all {res[sch]:.2f} K (n={int(ok.sum())}), bias {err.mean():+.2f} K, R2 {r2:.2f}; "
              f"per site {per_site.round(2).to_dict()}")
    assert res["lite"] < 4.8  # SOLWEIG: 4.8 K (Lindberg et al. 2008)
    assert res["solweig"] < 4.8  # the fuller scheme too


if __name__ == "__main__":
    for s in SITES:
        df = site_tmrt(s, schemes=("lite", "solweig"))
        for sch in ("lite", "solweig"):
            e = df[f"model_{sch}"] - df.measured
            print(s, sch, len(df), "RMSE", round(float(np.sqrt(np.mean(e ** 2))), 2), "bias", round(float(e.mean()), 2))
        print(df.round(2).to_string())
