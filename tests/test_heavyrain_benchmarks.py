"""Heavy-rain model against analytic solutions and published benchmarks (../shared/data/flood-benchmarks).

Sources and tolerances are stated at each assertion; see ../shared/reference/flood.md and the
PROVENANCE.md of each data folder.
"""

from __future__ import annotations

import numpy as np
import pytest

try:
    from tests.common import shared
except ModuleNotFoundError:  # a site-packages 'tests' package (pythermalcomfort 4.8.1) shadows ours
    import importlib.util
    import sys
    from pathlib import Path

    _spec = importlib.util.spec_from_file_location("tests.common", Path(__file__).with_name("common.py"))
    _common = importlib.util.module_from_spec(_spec)
    sys.modules.setdefault("tests.common", _common)
    _spec.loader.exec_module(_common)
    shared = _common.shared
from twin.sim.heavyrain import HeavyRainModel, PointInflow, RainSeries, uniform_rain


def _macdonald(case: str, q0: float, rain_m_per_s: float, duration_s: float) -> float:
    import pandas as pd

    df = pd.read_csv(shared("flood-benchmarks", "macdonald-rain-channel", f"mcdo_{case}.csv"))
    z = np.tile(df["topo"].to_numpy(), (3, 1))  # Itzi's set-up: 3 x 200 cells of 5 m
    inflow = [PointInflow(2.5, y, [0.0], [q0 * 5.0]) for y in (2.5, 7.5, 12.5)]  # q0 m2/s over each 5 m cell
    rain = RainSeries([0.0], [rain_m_per_s * 3.6e6]) if rain_m_per_s else None
    m = HeavyRainModel(z, cell_size=5.0, manning_n=0.033, boundary={"east": "open"}, rain=rain, inflows=inflow)
    m.run(duration_s)
    return float(np.mean(np.abs((m.z + m.h)[1] - df["wse"].to_numpy())))


@pytest.mark.shared
def test_macdonald_long_channel_with_rain():
    # SWASHES MacDonald channel (Delestre et al. 2013) with rain 1e-3 m/s, q0 = 1 m2/s, 40 min to steady state.
    # Tolerance MAE(wse) < 0.04 m: issue 4 and Itzi's test (flood.md). Measured 0.034 m.
    assert _macdonald("rain", 1.0, 1e-3, 2400.0) < 0.04


@pytest.mark.shared
def test_macdonald_long_channel_without_rain():
    # Same channel, q = 2 m2/s, 20 min; Itzi's tolerance MAE < 0.03 m. Measured 0.021 m.
    assert _macdonald("norain", 2.0, 0.0, 1200.0) < 0.03


def test_kinematic_plane_time_of_concentration_and_equilibrium_depth():
    # Closed form (flood.md): alpha = sqrt(S0)/n, q = alpha h^(5/3); rising limb q(L, t) = alpha (r t)^(5/3) for
    # t < t_c = (L / (alpha r^(2/3)))^(3/5); equilibrium h_e(x) = (r x / alpha)^(3/5).
    # V-catchment hillslope: L 800 m, S0 0.05, n 0.015, r 3e-6 m/s -> t_c 1766 s, h_e(L) 5.30 mm.
    L, S0, n, r, dx = 800.0, 0.05, 0.015, 3e-6, 5.0
    x = (np.arange(int(L / dx)) + 0.5) * dx
    m = HeavyRainModel(np.tile((L - x) * S0, (3, 1)), cell_size=dx, manning_n=n, boundary={"east": "open"},
                       rain=RainSeries([0.0], [r * 3.6e6]))
    alpha = np.sqrt(S0) / n
    t_c = (L / (alpha * r ** (2 / 3))) ** 0.6
    ts, qs, last = [], [], 0.0
    while m.time < 3600.0:
        m.run_one_step(10.0)
        out = m.water_balance().outflow_m3
        ts.append(m.time - 5.0)
        qs.append((out - last) / 10.0 / (3 * dx))
        last = out
    q_rel = np.array(qs) / (r * L)
    # t_c: the kinematic outlet discharge reaches 95 % of r L at 0.95^(3/5) t_c; the numerical curve rounds the
    # corner at t_c, so the 95 % point is the sharpest test of it. Tolerance 5 % (issue 4). Measured +0.8 %.
    t95 = float(np.interp(0.95, q_rel, ts))
    assert t95 == pytest.approx(0.95 ** 0.6 * t_c, rel=0.05)
    # equilibrium depth at the outlet cell centre, 5 % (issue 4). Measured 0.003 %.
    h_e = (r * x[-1] / alpha) ** 0.6
    assert float(m.h[1, -1]) == pytest.approx(h_e, rel=0.05)
    assert q_rel[-1] == pytest.approx(1.0, rel=0.01)


@pytest.mark.shared  # ~11 s on 2 loaded cores (65 k cells, 90 min); in the default run
def test_v_catchment_outlet_plateau_and_volume_closure():
    import rasterio

    with rasterio.open(shared("flood-benchmarks", "v-catchment", "vs_dem.tif")) as src:
        z = src.read(1).astype(np.float64)
        transform = src.transform
    n = np.full(z.shape, 0.015)
    n[:, 160:165] = 0.15  # the 5 channel columns at 1010 m (25 m wide on this 5 m DEM)
    rain = uniform_rain(3e-6 * 3.6e6, 5400.0)  # 10.8 mm/h for 90 min (PROVENANCE.md: 3e-6 m/s)
    # the catchment drains over its low (south) edge; the hillslope cells of that row also spill there
    m = HeavyRainModel(z, transform=transform, manning_n=n, boundary={"south": "open"}, rain=rain)
    m.run(4800.0)
    before = m.water_balance().outflow_m3
    m.run(5400.0)
    wb = m.water_balance()
    plateau = (wb.outflow_m3 - before) / 600.0  # mean outflow 80-90 min
    # published equilibrium 4.86 m3/s (3e-6 m/s x 1.62 km2; Q_River_Ana.csv plateau 4.80); 5 % (issue 4).
    # Measured 4.90 m3/s: this DEM covers 1.633 km2 (rain x area = 4.899 m3/s).
    assert plateau == pytest.approx(4.86, rel=0.05)
    # volume closure < 0.5 % of the rain (issue 4). Measured ~1e-7.
    assert abs(wb.error_m3) / wb.rain_m3 < 0.005


def _ea4(dx: float) -> np.ndarray:
    """Run EA Test 4 at ``dx`` and return per-gauge RMSE (m) against the published LISFLOOD-FP 1 m ACC series."""
    path = shared("flood-benchmarks", "ea-test4-floodplain", "reference", "ea4-1m-acc.stage")
    lines = path.read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("Time;"))
    ref = np.array([[float(v) for v in line.split()] for line in lines[k + 1:] if line.strip()])
    ny, nx = int(2000 / dx), int(1000 / dx)
    ys = [y for y in (np.arange(ny) + 0.5) * dx if 990 < y < 1010]  # the 20 m inflow line on the west edge
    tq, q = [0.0, 300.0, 3600.0, 14400.0, 18000.0], np.array([0.0, 0.0, 20.0, 20.0, 0.0])
    inflows = [PointInflow(dx / 2, y, tq, q / len(ys)) for y in ys]
    # boundaries as the LISFLOOD-FP package of the reference (ea4.bci): W closed, E/S/N free
    m = HeavyRainModel(np.zeros((ny, nx)), cell_size=dx, manning_n=0.05, inflows=inflows,
                       boundary={"north": "open", "south": "open", "east": "open", "west": "closed"})
    cells = [m.cell_of(x, y) for x, y in [(50, 1000), (100, 1000), (200, 1000), (300, 1000), (400, 1000), (300, 1300)]]
    out = []
    for t in ref[:, 0]:
        m.run_one_step(t - m.time)
        out.append(m.sample(cells)[:, 0])
    assert abs(m.water_balance().relative_error) < 1e-4  # float32 depths over ~16 000 steps
    return np.sqrt(np.mean((np.array(out) - ref[:, 1:]) ** 2, axis=0))


@pytest.mark.slow  # ~10-60 s depending on load
@pytest.mark.shared
def test_ea_test4_at_10m_gauges():
    # quick variant of the 5 m test; LISFLOOD-FP 8.1 at 10 m: <= 8.7 mm (PROVENANCE.md). Measured max 4.9 mm.
    assert _ea4(10.0).max() < 0.01


@pytest.mark.shared
def test_ea_test4_at_5m_gauges():
    # EA Test 4 at 5 m: RMSE < 1 cm per gauge against ea4-1m-acc.stage (issue 4). Measured max 2.2 mm
    # (LISFLOOD-FP 8.1 at 5 m: 4.1 mm). In the default run as the issue asks: ~40 s on 2 loaded cores.
    assert _ea4(5.0).max() < 0.01


@pytest.mark.slow
@pytest.mark.shared
def test_ea_test4_at_2m_gauges():
    # 2 m (500 k cells, ~35 000 steps): RMSE < 1 cm (issue 4); LISFLOOD-FP 8.1 at 2 m: 1.1 mm.
    assert _ea4(2.0).max() < 0.01
