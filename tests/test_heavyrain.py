"""Heavy-rain model: kernels against a NumPy reference, conservation, symmetry, steady states, forcing, errors.

All inputs are synthetic; the published benchmarks are in test_heavyrain_benchmarks.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.errors import TwinValueError
from twin.sim.heavyrain import (HeavyRainModel, Losses, PointInflow, RainGrid, RainSeries, SimulationUnstableError,
                                design_storm, uniform_rain)
from twin.sim.heavyrain import _kernels as K


def _steps_numpy(z, h, n, dt, dx, theta, h_min, g=K.GRAVITY):
    """Plain-NumPy reference of one step (closed boundaries, no limiter active, no sources), float64."""
    ny, nx = z.shape
    eta = z + h
    qx = np.zeros((ny, nx + 1))
    qy = np.zeros((ny + 1, nx))

    def face(ea, eb, za, zb, na, nb):
        hf = np.maximum(ea, eb) - np.maximum(za, zb)
        x = -g * hf * dt * (eb - ea) / dx  # q_old = 0, so theta and q_perp play no part
        nf = 0.5 * (na + nb)
        with np.errstate(divide="ignore", invalid="ignore"):
            b = g * dt * nf ** 2 / hf ** (7 / 3)
            q = 2 * x / (1 + np.sqrt(1 + 4 * b * np.abs(x)))
        return np.where(hf > h_min, q, 0.0)

    qx[:, 1:-1] = face(eta[:, :-1], eta[:, 1:], z[:, :-1], z[:, 1:], n[:, :-1], n[:, 1:])
    qy[1:-1, :] = face(eta[:-1], eta[1:], z[:-1], z[1:], n[:-1], n[1:])
    return h + dt / dx * (qx[:, :-1] - qx[:, 1:] + qy[:-1] - qy[1:]), qx, qy


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (5, 8), (17, 13)])
def test_one_step_matches_numpy_reference(shape):
    rng = np.random.default_rng(sum(shape))
    z = rng.uniform(0, 0.5, shape).astype(np.float32)
    h = rng.uniform(0.2, 0.4, shape).astype(np.float32)
    n = rng.uniform(0.02, 0.06, shape).astype(np.float32)
    m = HeavyRainModel(z, cell_size=2.0, initial_depth=h, manning_n=n, theta=0.7, h_min=1e-3, dt_max=0.05)
    m.run_one_step(0.05)  # one step: dt_max = 0.05 s keeps the limiter inactive
    assert m.steps == 1
    h_ref, qx_ref, qy_ref = _steps_numpy(z.astype(float), h.astype(float), n.astype(float), 0.05, 2.0, 0.7, 1e-3)
    # float32 state against a float64 reference: 1e-5 relative to the depth
    np.testing.assert_allclose(m.h, h_ref, rtol=0, atol=1e-5 * float(h.max()))
    np.testing.assert_allclose(m.discharge_x, qx_ref, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(m.discharge_y, qy_ref, rtol=1e-4, atol=1e-7)


def _terrain(ny=30, nx=40, seed=0):
    """Random bumpy terrain on a grid of 1/32 m (exact float32 sums with depths of the same grid)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 64, (ny, nx)) / 32).astype(np.float32)


@pytest.mark.parametrize("boundary", ["closed", 1.0, "open"])
def test_lake_at_rest_stays_at_rest_exactly(boundary):
    z = _terrain()
    z[0, :] = z[-1, :] = z[:, 0] = z[:, -1] = 2.0  # a rim above the lake so 'open' has nothing to drain
    h = np.maximum(1.0 - z, 0).astype(np.float32)  # islands stick out of the lake
    m = HeavyRainModel(z, cell_size=2.0, initial_depth=h, boundary=boundary)
    m.run(300.0)
    assert m.steps > 100
    assert np.array_equal(m.h, h)  # exact: eta is flat and representable, every face gradient is 0
    assert np.all(m.discharge_x == 0) and np.all(m.discharge_y == 0)


def test_closed_domain_volume_error_below_1e6_of_input():
    z = _terrain(seed=1) * 3  # up to 6 m relief on 2 m cells: steep, with pits
    m = HeavyRainModel(z, cell_size=2.0, rain=uniform_rain(100.0, 600.0), boundary="closed")
    m.run(1800.0)
    wb = m.water_balance()
    assert wb.rain_m3 == pytest.approx(100e-3 / 3600 * 600 * z.size * 4, rel=1e-12)
    assert wb.outflow_m3 == 0.0
    assert abs(wb.error_m3) / wb.rain_m3 < 1e-6  # issue 4 requirement
    assert m.h.min() >= 0


def test_outflux_limiter_keeps_depths_non_negative_on_steep_steps():
    # 5 m steps between 1 m cells with a thin film: without the limiter cells would be over-drained
    z = np.kron(np.arange(8.0) * 5, np.ones(4))[None, :].repeat(6, axis=0)
    m = HeavyRainModel(z, cell_size=1.0, initial_depth=0.05, cfl=1.0, boundary="closed")
    m.run(120.0)
    assert m.h.min() >= 0
    wb = m.water_balance()
    assert abs(wb.relative_error) < 1e-6


def test_mirror_symmetry():
    ny, nx = 21, 31
    y, x = np.mgrid[0:ny, 0:nx]
    z = (0.02 * (x - nx // 2) ** 2 + 0.01 * (y - ny // 2) ** 2).astype(np.float32)  # symmetric bowl
    rain = RainGrid([0.0, 300.0], np.stack([np.ones((ny, nx)) * 80, np.zeros((ny, nx))]))
    m = HeavyRainModel(z, cell_size=1.0, rain=rain, initial_depth=np.where(x < 5, 0.2, 0.0), boundary="closed")
    m.run(600.0)
    # left-right mirror of a left-right asymmetric start is the same run mirrored
    m2 = HeavyRainModel(z[:, ::-1], cell_size=1.0, rain=rain, initial_depth=np.where(x < 5, 0.2, 0.0)[:, ::-1],
                        boundary="closed")
    m2.run(600.0)
    # the mirror sums the four face fluxes in another order: float32 rounding (ulp 3e-8 m at 0.4 m),
    # carried through ~2000 steps of sloshing, stays below 2e-5 m (measured 8.5e-6 m)
    np.testing.assert_allclose(m.h, m2.h[:, ::-1], rtol=0, atol=2e-5)
    # up-down symmetric input stays up-down symmetric (same tolerance)
    np.testing.assert_allclose(m.h, m.h[::-1], rtol=0, atol=2e-5)


def test_rain_falls_nowhere_but_on_active_cells():
    z = np.zeros((10, 10))
    blocked = np.zeros((10, 10), bool)
    blocked[3:6, 3:6] = True
    z[0, 0] = np.nan
    m = HeavyRainModel(z, cell_size=1.0, blocked=blocked, rain=uniform_rain(36.0, 100.0))
    m.run(200.0)
    assert m.water_balance().rain_m3 == pytest.approx(36e-3 / 3600 * 100 * (100 - 9 - 1), rel=1e-9)
    assert np.all(m.h[blocked] == 0) and m.h[0, 0] == 0


def test_point_inflow_volume_is_exact():
    m = HeavyRainModel(np.zeros((20, 20)), cell_size=5.0, manning_n=0.05,
                       inflows=[PointInflow(52.0, 52.0, [0.0, 100.0, 200.0], [0.0, 2.0, 0.0])])
    m.run(400.0)
    wb = m.water_balance()
    assert wb.inflow_m3 == pytest.approx(200.0, rel=1e-12)  # triangle 0 -> 2 -> 0 m3/s over 200 s
    assert wb.storage_m3 == pytest.approx(200.0, rel=1e-6)


def test_constant_infiltration_and_drainage_balance():
    z = np.zeros((10, 10))
    losses = Losses(initial_loss_mm=2.0, model="constant", rate_mm_per_h=10.0)
    m = HeavyRainModel(z, cell_size=1.0, rain=uniform_rain(60.0, 3600.0), losses=losses, drainage_mm_per_h=20.0)
    m.run(3600.0)
    wb = m.water_balance()
    # 60 mm rain - 2 mm initial loss - 10 mm/h infiltration - 20 mm/h drainage over ~1 h: 28 mm stays (to 0.1 mm:
    # the losses only start once the initial loss is filled, 2 mm at 60 mm/h = 120 s)
    assert wb.rain_m3 == pytest.approx(6.0, rel=1e-9)
    assert wb.storage_m3 / 100 * 1000 == pytest.approx(60 - 2 - 30 * (3600 - 120) / 3600, abs=0.1)
    assert abs(wb.relative_error) < 1e-6


def test_green_ampt_infiltrates_everything_below_capacity():
    m = HeavyRainModel(np.zeros((5, 5)), cell_size=1.0, rain=uniform_rain(5.0, 3600.0),
                       losses=Losses(model="green-ampt", ks_mm_per_h=10.0, suction_head_mm=110.0, moisture_deficit=0.3))
    m.run(3600.0)
    assert float(m.h.max()) < 1e-6  # rain 5 mm/h < Ks 10 mm/h: no ponding
    assert m.water_balance().infiltration_m3 == pytest.approx(m.water_balance().rain_m3, rel=1e-5)


def test_horton_capacity_decays():
    losses = Losses(model="horton", f0_mm_per_h=100.0, fc_mm_per_h=10.0, k_per_h=4.0)
    m = HeavyRainModel(np.zeros((3, 3)), cell_size=1.0, rain=uniform_rain(50.0, 7200.0), losses=losses)
    m.run(7200.0)
    wb = m.water_balance()
    # capacity exceeds 50 mm/h until t = ln(90/40)/4 h = 0.2027 h; then f = 10 + 90 exp(-4t)
    t1 = math.log(90 / 40) / 4
    ponded = 50 * (2 - t1) - (10 * (2 - t1) + 90 / 4 * (math.exp(-4 * t1) - math.exp(-8)))
    assert wb.storage_m3 / 9 * 1000 == pytest.approx(ponded, rel=0.01)


# ------------------------------------------------------------------ forcing
def test_design_storms_keep_depth_and_euler2_peak_at_a_third():
    block = design_storm("block", depth_mm=45.0, duration_min=60.0)
    assert block.depth_mm(3600) == pytest.approx(45.0)
    e2 = design_storm("euler2", depth_mm=45.0, duration_min=60.0, interval_min=5.0)
    assert e2.depth_mm(7200) == pytest.approx(45.0)
    blocks = e2.intensity_mm_per_h[:-1]
    assert int(np.argmax(blocks)) == 3  # 0.3 x 12 blocks -> 4th block (15-20 min)
    assert np.all(np.diff(blocks[:4]) >= 0) and np.all(np.diff(blocks[3:]) <= 0)
    # the peak block holds the 5-min depth of the depth-duration curve, 45 (5/60)^0.4 mm
    assert blocks[3] * 5 / 60 == pytest.approx(45 * (5 / 60) ** 0.4)
    with pytest.raises(TwinValueError, match="unknown kind"):
        design_storm("euler1", depth_mm=1, duration_min=60)


def test_rain_series_step_function():
    r = RainSeries([0.0, 600.0, 1200.0], [10.0, 30.0, 0.0])
    assert r.rate_m_per_s(599.9) == pytest.approx(10 / 3.6e6)
    assert r.rate_m_per_s(600.0) == pytest.approx(30 / 3.6e6)
    assert r.depth_mm(3600) == pytest.approx(10 / 6 + 30 / 6)


# ------------------------------------------------------------------ bad input
def test_bad_inputs_are_clear_errors():
    with pytest.raises(TwinValueError, match="negative"):
        RainSeries([0.0, 60.0], [10.0, -1.0])
    with pytest.raises(TwinValueError, match="no valid cell"):
        HeavyRainModel(np.full((4, 4), np.nan), cell_size=1.0)
    with pytest.raises(TwinValueError, match="rain grid"):
        HeavyRainModel(np.zeros((4, 4)), cell_size=1.0, rain=RainGrid([0.0], np.zeros((1, 3, 4))))
    with pytest.raises(TwinValueError, match="outside the domain"):
        HeavyRainModel(np.zeros((4, 4)), cell_size=1.0, inflows=[PointInflow(10.0, 1.0, [0.0], [1.0])])
    with pytest.raises(TwinValueError, match="boundary"):
        HeavyRainModel(np.zeros((4, 4)), cell_size=1.0, boundary="leaky")
    with pytest.raises(TwinValueError, match="square"):
        from affine import Affine
        HeavyRainModel(np.zeros((4, 4)), transform=Affine(1, 0, 0, 0, -2, 0))


def test_instability_stops_with_time_and_cell():
    z = np.zeros((8, 8))
    h0 = np.zeros((8, 8))
    h0[:, :4] = 2.0  # dam break
    m = HeavyRainModel(z, cell_size=1.0, initial_depth=h0, max_speed_m_per_s=3.0)
    with pytest.raises(SimulationUnstableError, match=r"t=\d+\.\d+ s in cell \(row \d+, col \d+\)"):
        m.run(10.0)
