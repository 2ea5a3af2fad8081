"""The local-inertial 2D inundation model: parameters, state and the time loop.

:class:`HeavyRainModel` holds the state on a raster (float32 depths and face discharges, float64
volume accounting) and advances it with :meth:`HeavyRainModel.run_one_step` /
:meth:`HeavyRainModel.run`, sub-stepping by the CFL condition like landlab's ``OverlandFlow``.
The numerics live in :mod:`twin.sim.heavyrain._kernels`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from twin.errors import TwinError, TwinValueError
from twin.sim.heavyrain import _kernels as K
from twin.sim.heavyrain.forcing import MM_PER_H, Losses, PointInflow, RainGrid, RainSeries

__all__ = ["HeavyRainModel", "WaterBalance", "SimulationUnstableError", "GRAVITY"]

#: standard gravity, m/s2 (the kernels use the same value)
GRAVITY = K.GRAVITY
_EDGES = ("north", "south", "west", "east")


class SimulationUnstableError(TwinError, FloatingPointError):
    """The solution became unstable (NaN depth or runaway velocity); nothing is written."""


@dataclass
class WaterBalance:
    """Volumes (m3) since the start of the run. ``error_m3 = storage - initial - (in - out)``."""

    rain_m3: float
    inflow_m3: float
    infiltration_m3: float
    drainage_m3: float
    outflow_m3: float
    storage_m3: float
    initial_storage_m3: float
    error_m3: float
    relative_error: float
    clipped_m3: float

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def _field(value, shape, name: str, *, positive: bool = False) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(shape, float(arr))
    if arr.shape != tuple(shape):
        raise TwinValueError(f"{name} has shape {arr.shape}, the grid is {tuple(shape)}; give one value or a grid-shaped array")
    return arr


class HeavyRainModel:
    """Local-inertial shallow-water model for pluvial flooding on a raster.

    Scheme: Bates, Horritt & Fewtrell (2010, J. Hydrol. 387:33) with the theta weighting of
    de Almeida, Bates, Freer & Souvignet (2012, WRR 48:W05528), semi-implicit Manning friction, an
    adaptive CFL step ``dt = cfl dx / max(sqrt(g h) + |u|)``, an outflux limiter (no negative depth,
    volume exact by construction) and a wet/dry threshold ``h_min`` on faces.

    Parameters
    ----------
    elevation : (ny, nx) array
        Bed elevation (m), row 0 north. NaN cells are outside the domain (no flow, no rain).
    cell_size : float, optional
        Cell size (m) when no ``transform`` is given (the frame then starts at x=0, y=0 south-west).
    transform : affine.Affine, optional
        rasterio-style pixel -> map transform, north-up, square cells.
    crs : optional
        Kept for the outputs (any value :func:`twin.crs.parse_crs` or rasterio understands).
    manning_n : float or array
        Manning's n (s m^-1/3), > 0.
    blocked : bool array, optional
        Cells taken out of the domain (buildings as walls): no flow, no rain on them.
    initial_depth : float or array
        Depth at t = 0 (m).
    boundary : str, float or mapping
        Per edge (``north``, ``south``, ``west``, ``east``): ``"closed"``, ``"open"`` (free outflow at
        normal depth) or a number (fixed water level, m). One value applies to all four.
    rain : RainSeries or RainGrid, optional
    inflows : sequence of PointInflow
    losses : Losses, optional
    drainage_mm_per_h : float or array
        Sewer inlet capacity as a sink (mm/h) on the cells of ``drainage_mask`` (default: all cells).
    theta : float
        de Almeida weighting, 0.7 default (1 = plain Bates 2010).
    cfl : float
        Courant number (0.7 as LISFLOOD-FP; lower on steep stepped terrain).
    h_min : float
        Faces carry water only where the flow depth exceeds this (m).
    dt_max : float
        Largest step (s).
    depth_threshold_m : float
        Depth for arrival time and duration statistics.
    speed_min_depth_m : float
        Speeds are recorded only on cells deeper than this (m).
    max_speed_m_per_s : float
        A cell speed above this stops the run as unstable.
    """

    def __init__(self, elevation, *, cell_size: float | None = None, transform=None, crs=None,
                 manning_n: float | np.ndarray = 0.03, blocked: np.ndarray | None = None,
                 initial_depth: float | np.ndarray = 0.0,
                 boundary: str | float | Mapping[str, Any] = "closed",
                 rain: RainSeries | RainGrid | None = None, inflows: Sequence[PointInflow] = (),
                 losses: Losses | None = None, drainage_mm_per_h: float | np.ndarray = 0.0,
                 drainage_mask: np.ndarray | None = None,
                 theta: float = 0.7, cfl: float = 0.7, h_min: float = 1e-4, dt_max: float = 5.0,
                 depth_threshold_m: float = 0.1, speed_min_depth_m: float = 0.01,
                 max_speed_m_per_s: float = 50.0) -> None:
        from affine import Affine

        z = np.asarray(elevation, dtype=np.float64)
        if z.ndim != 2 or z.size == 0:
            raise TwinValueError(f"elevation must be a non-empty 2-D array, got shape {z.shape}")
        ny, nx = z.shape
        if transform is None:
            if cell_size is None:
                raise TwinValueError("give cell_size= (m) or transform= for the elevation raster")
            transform = Affine(float(cell_size), 0.0, 0.0, 0.0, -float(cell_size), ny * float(cell_size))
        transform = Affine(*tuple(transform)[:6])
        if transform.b != 0 or transform.d != 0 or transform.e >= 0:
            raise TwinValueError(f"the raster must be north-up without rotation, got transform {tuple(transform)[:6]}")
        if not math.isclose(transform.a, -transform.e, rel_tol=1e-9):
            raise TwinValueError(f"cells must be square, got {transform.a} x {-transform.e} m; resample the DEM")
        self.transform = transform
        self.crs = crs
        self.dx = float(transform.a)
        if not (0.0 <= theta <= 1.0):
            raise TwinValueError(f"theta {theta} must be within 0..1 (0.7 recommended)")
        if not (0.0 < cfl <= 1.0):
            raise TwinValueError(f"cfl {cfl} must be within (0, 1] (0.7 default, 0.5 on steep stepped terrain)")
        if h_min <= 0 or dt_max <= 0:
            raise TwinValueError(f"h_min ({h_min} m) and dt_max ({dt_max} s) must be > 0")
        self.theta, self.cfl, self.h_min, self.dt_max = float(theta), float(cfl), float(h_min), float(dt_max)
        self.depth_threshold_m, self.speed_min_depth_m = float(depth_threshold_m), float(speed_min_depth_m)
        self.max_speed_m_per_s = float(max_speed_m_per_s)

        active = np.isfinite(z)
        if blocked is not None:
            blocked = np.asarray(blocked, dtype=bool)
            if blocked.shape != z.shape:
                raise TwinValueError(f"blocked has shape {blocked.shape}, the grid is {z.shape}")
            active &= ~blocked
        if not active.any():
            raise TwinValueError("the elevation raster has no valid cell (all nodata or blocked); check the DEM and its nodata value")
        self.active = active
        self.z = np.where(active, z, float(K.BLOCKED_Z)).astype(np.float32)
        n = _field(manning_n, z.shape, "manning_n")
        if np.any(~np.isfinite(n[active])) or np.any(n[active] <= 0):
            raise TwinValueError(f"Manning's n must be > 0 on every active cell, got minimum {np.nanmin(n[active])}")
        n = np.where(active, n, np.nanmedian(n[active]))
        self.n = (np.full((1, 1), n.flat[0], np.float32) if np.all(n == n.flat[0]) else n.astype(np.float32))
        h0 = _field(initial_depth, z.shape, "initial_depth")
        if np.any(h0[active] < 0) or np.any(~np.isfinite(h0[active])):
            raise TwinValueError("initial_depth must be finite and >= 0")
        self.h = np.where(active, h0, 0.0).astype(np.float32)

        self.bc_type, self.bc_level = self._boundaries(boundary)
        self.boundary = {e: (["closed", "open", "level"][int(t)] if t != K.LEVEL else float(lv))
                         for e, t, lv in zip(_EDGES, self.bc_type, self.bc_level)}

        # state: double-buffered face discharges and limiter factors (see _kernels)
        self._qx = [np.zeros((ny, nx + 1), np.float32) for _ in range(2)]
        self._qy = [np.zeros((ny + 1, nx), np.float32) for _ in range(2)]
        self._scale = [np.ones((ny, nx), np.float32) for _ in range(2)]
        self._cur = 0
        self.time = 0.0
        self.steps = 0
        self.cell_steps = 0
        self.n_active = int(active.sum())
        # running statistics
        self.max_depth = self.h.copy()
        self.time_of_max_depth = np.where(self.h > 0, 0.0, np.nan).astype(np.float32)
        self.max_speed = np.zeros((ny, nx), np.float32)
        self.vx_at_max = np.zeros((ny, nx), np.float32)
        self.vy_at_max = np.zeros((ny, nx), np.float32)
        self.max_hazard = np.zeros((ny, nx), np.float32)
        self.arrival_time = np.where(self.h >= self.depth_threshold_m, 0.0, np.nan).astype(np.float32)
        self.duration_above = np.zeros((ny, nx), np.float32)
        # float64 per-row accumulators: rain, losses, drainage, outflow, clipped, speed
        self._rows = np.zeros((6, ny), np.float64)
        self._face_speed = np.zeros(ny, np.float64)
        self._inflow_m3 = 0.0
        self.initial_storage_m3 = float(np.sum(self.h, dtype=np.float64)) * self.dx ** 2
        self._speed = math.sqrt(GRAVITY * float(self.h.max()))
        self._dummy = np.zeros((1, 1), np.float32)

        # forcing
        self.rain = rain
        self._rain_buf = np.zeros((ny, nx), np.float32) if isinstance(rain, RainGrid) else self._dummy
        self._rain_index = -2
        if isinstance(rain, RainGrid) and rain.intensity_mm_per_h.shape[1:] != (ny, nx):
            raise TwinValueError(f"rain grid is {rain.intensity_mm_per_h.shape[1:]} cells, the model grid "
                                 f"{(ny, nx)}; regrid the rain onto the DEM")
        self.inflows = list(inflows)
        self._inflow_cells = [self.cell_of(f.x, f.y, what=f"inflow {f.name or ''}".strip()) for f in self.inflows]
        for f, (r, c) in zip(self.inflows, self._inflow_cells):
            if not active[r, c]:
                raise TwinValueError(f"inflow at ({f.x}, {f.y}) falls on a blocked/nodata cell ({r}, {c}); move it")
        self._setup_losses(losses)
        drain = _field(drainage_mm_per_h, z.shape, "drainage_mm_per_h")
        if np.any(drain < 0) or np.any(~np.isfinite(drain)):
            raise TwinValueError("drainage_mm_per_h must be finite and >= 0")
        if drainage_mask is not None:
            drain = np.where(np.asarray(drainage_mask, bool), drain, 0.0)
        self._use_drain = bool(np.any(drain > 0))
        self._drain = (drain * MM_PER_H).astype(np.float32) if self._use_drain else self._dummy

    # ------------------------------------------------------------------ set-up helpers
    @staticmethod
    def _boundaries(boundary) -> tuple[np.ndarray, np.ndarray]:
        spec = boundary if isinstance(boundary, Mapping) else {e: boundary for e in _EDGES}
        unknown = set(spec) - set(_EDGES)
        if unknown:
            raise TwinValueError(f"boundary edges {sorted(unknown)} unknown; use {_EDGES}")
        types, levels = np.zeros(4, np.int64), np.zeros(4, np.float64)
        for k, e in enumerate(_EDGES):
            v = spec.get(e, "closed")
            if isinstance(v, str) and v in ("closed", "open", "free"):
                types[k] = K.CLOSED if v == "closed" else K.OPEN
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                types[k], levels[k] = K.LEVEL, float(v)
            else:
                raise TwinValueError(f"boundary {e}={v!r} not understood; use 'closed', 'open' or a water level in m")
        return types, levels

    def _setup_losses(self, losses: Losses | None) -> None:
        shape = self.h.shape
        d = self._dummy
        self._use_il, self._loss_mode = False, 0
        self._il, self._la, self._lb, self._lc, self.infiltrated = d, d, d, d, d
        if losses is None:
            return
        il = _field(losses.initial_loss_mm, shape, "initial_loss_mm") * 1e-3
        if np.any(il > 0):
            self._use_il = True
            self._il = il.astype(np.float32)
        mode = Losses.MODELS.index(losses.model)
        self._loss_mode = mode
        if mode == 1:
            self._la = (_field(losses.rate_mm_per_h, shape, "rate_mm_per_h") * MM_PER_H).astype(np.float32)
        elif mode == 2:
            self._la = (_field(losses.f0_mm_per_h, shape, "f0_mm_per_h") * MM_PER_H).astype(np.float32)
            self._lb = (_field(losses.fc_mm_per_h, shape, "fc_mm_per_h") * MM_PER_H).astype(np.float32)
            self._lc = (_field(losses.k_per_h, shape, "k_per_h") / 3600.0).astype(np.float32)
        elif mode == 3:
            self._la = (_field(losses.ks_mm_per_h, shape, "ks_mm_per_h") * MM_PER_H).astype(np.float32)
            self._lb = (_field(losses.suction_head_mm, shape, "suction_head_mm") * 1e-3
                        * _field(losses.moisture_deficit, shape, "moisture_deficit")).astype(np.float32)
            self.infiltrated = np.zeros(shape, np.float32)

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int]:
        return self.h.shape

    def cell_of(self, x: float, y: float, *, what: str = "point") -> tuple[int, int]:
        """(row, col) of the cell containing map point (x, y); raises if outside the domain."""
        col, row = ~self.transform * (float(x), float(y))
        r, c = int(math.floor(row)), int(math.floor(col))
        ny, nx = self.shape
        if not (0 <= r < ny and 0 <= c < nx):
            w, n = self.transform.c, self.transform.f
            raise TwinValueError(f"{what} at ({x}, {y}) lies outside the domain x {w}..{w + nx * self.dx}, "
                                 f"y {n - ny * self.dx}..{n}; move it inside or drop it")
        return r, c

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        ny, nx = self.shape
        return (self.transform.c + (np.arange(nx) + 0.5) * self.dx,
                self.transform.f - (np.arange(ny) + 0.5) * self.dx)

    # ------------------------------------------------------------------ state views
    @property
    def discharge_x(self) -> np.ndarray:
        """Limited unit discharge at x faces (m2/s, +east), (ny, nx + 1)."""
        q, s = self._qx[self._cur], self._scale[self._cur]
        out = q.astype(np.float64)
        up = np.concatenate([np.ones((s.shape[0], 1)), s], axis=1), np.concatenate([s, np.ones((s.shape[0], 1))], axis=1)
        return np.where(q > 0, out * up[0], out * up[1])

    @property
    def discharge_y(self) -> np.ndarray:
        """Limited unit discharge at y faces (m2/s, +south = +row), (ny + 1, nx)."""
        q, s = self._qy[self._cur], self._scale[self._cur]
        out = q.astype(np.float64)
        one = np.ones((1, s.shape[1]))
        return np.where(q > 0, out * np.concatenate([one, s]), out * np.concatenate([s, one]))

    def velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell velocity (east, north) in m/s from the mean face discharges; 0 on cells below speed_min_depth."""
        qx, qy = self.discharge_x, self.discharge_y
        with np.errstate(divide="ignore", invalid="ignore"):
            wet = self.h > self.speed_min_depth_m
            u = np.where(wet, 0.5 * (qx[:, 1:] + qx[:, :-1]) / self.h, 0.0)
            v = np.where(wet, -0.5 * (qy[1:] + qy[:-1]) / self.h, 0.0)
        return u, v

    def water_balance(self) -> WaterBalance:
        area = self.dx ** 2
        rows = self._rows.sum(axis=1)
        storage = float(np.sum(self.h, dtype=np.float64)) * area
        rain, loss, drain, out, clip = (float(v) for v in rows[:5])
        inflow = self._inflow_m3
        error = storage - self.initial_storage_m3 - (rain + inflow - loss - drain - out)
        denom = max(self.initial_storage_m3 + rain + inflow, 1e-300)
        return WaterBalance(rain, inflow, loss, drain, out, storage, self.initial_storage_m3, error, error / denom, clip)

    # ------------------------------------------------------------------ time loop
    def _next_change(self) -> float:
        t = self.time
        nxt = math.inf
        if self.rain is not None:
            nxt = self.rain.next_change(t)
        for f in self.inflows:
            nxt = min(nxt, f.next_change(t))
        return nxt

    def _rain_now(self) -> tuple[float, bool]:
        if self.rain is None:
            return 0.0, False
        if isinstance(self.rain, RainSeries):
            return self.rain.rate_m_per_s(self.time), False
        k = self.rain.index(self.time)
        if k != self._rain_index:
            if k < 0:
                self._rain_buf[...] = 0.0
            else:
                np.multiply(self.rain.intensity_mm_per_h[k], np.float32(MM_PER_H), out=self._rain_buf)
            self._rain_index = k
        return 0.0, True

    def stable_dt(self) -> float:
        """The CFL step for the current state (s), capped by ``dt_max``."""
        return self.dt_max if self._speed <= 0 else min(self.dt_max, self.cfl * self.dx / self._speed)

    def run_one_step(self, dt: float) -> None:
        """Advance the model by ``dt`` seconds in as many CFL sub-steps as needed."""
        if not (dt >= 0) or not math.isfinite(dt):
            raise TwinValueError(f"dt must be finite and >= 0 s, got {dt}")
        target = self.time + dt
        while self.time < target:
            remaining = target - self.time
            sub = min(self.stable_dt(), remaining, max(self._next_change() - self.time, 0.0) or remaining)
            if remaining - sub < 1e-6 * sub:  # do not leave a sliver step
                sub = remaining
            self._step(sub)
            if remaining <= sub:
                self.time = target  # exact landing on the target (no round-off drift)

    def run(self, until: float, *, callback: Callable[["HeavyRainModel"], None] | None = None,
            callback_interval: float | None = None) -> None:
        """Run to time ``until`` (s); call ``callback(model)`` every ``callback_interval`` seconds."""
        if until < self.time:
            raise TwinValueError(f"until={until} s lies before the model time {self.time} s")
        step = callback_interval or (until - self.time)
        while self.time < until:
            self.run_one_step(min(step, until - self.time))
            if callback is not None:
                callback(self)

    def _step(self, dt: float) -> None:
        a, b = self._cur, 1 - self._cur
        K.discharge_at_faces(self.h, self.z, self.n, self._qx[a], self._qy[a], self._scale[a],
                             self.bc_type, self.bc_level, dt, self.dx, GRAVITY, self.theta, self.h_min,
                             self._qx[b], self._qy[b], self._scale[b], self._face_speed)
        rain, use_field = self._rain_now()
        t_end = self.time + dt
        rows = self._rows
        K.update_depth(self.h, self.z, self._qx[b], self._qy[b], self._scale[b], dt, self.dx, t_end,
                       rain, self._rain_buf, use_field,
                       self._il, self._use_il, self._loss_mode, self._la, self._lb, self._lc, self.infiltrated,
                       self._drain, self._use_drain,
                       self.depth_threshold_m, self.speed_min_depth_m,
                       self.max_depth, self.time_of_max_depth, self.max_speed, self.vx_at_max, self.vy_at_max,
                       self.max_hazard, self.arrival_time, self.duration_above,
                       rows[0], rows[1], rows[2], rows[3], rows[4], rows[5])
        self._cur = b
        speed = max(float(self._face_speed.max()), float(rows[5].max()))
        for f, (r, c) in zip(self.inflows, self._inflow_cells):
            vol = f.volume_between(self.time, t_end)
            if vol != 0.0:
                self.h[r, c] = max(float(self.h[r, c]) + vol / self.dx ** 2, 0.0)
                self._inflow_m3 += vol
                speed = max(speed, math.sqrt(GRAVITY * float(self.h[r, c])))
        self.time = t_end
        self.steps += 1
        self.cell_steps += self.h.size
        if not (speed <= self.max_speed_m_per_s):
            self._unstable(speed)
        self._speed = speed

    def _unstable(self, speed: float) -> None:
        bad = ~np.isfinite(self.h)
        if bad.any():
            r, c = np.unravel_index(int(np.argmax(bad)), self.shape)
            what = "depth became NaN"
        else:
            qx, qy = np.abs(self.discharge_x), np.abs(self.discharge_y)
            with np.errstate(divide="ignore", invalid="ignore"):
                sp = np.where(self.h > 0, np.maximum(np.maximum(qx[:, 1:], qx[:, :-1]),
                                                     np.maximum(qy[1:], qy[:-1])) / self.h, 0.0)
            r, c = np.unravel_index(int(np.nanargmax(sp)), self.shape)
            what = f"speed {speed:.3g} m/s exceeds max_speed_m_per_s={self.max_speed_m_per_s:g}"
        xs, ys = self.cell_centres()
        raise SimulationUnstableError(
            f"unstable at t={self.time:.3f} s in cell (row {r}, col {c}) at x={xs[c]:.2f}, y={ys[r]:.2f}: {what}; "
            f"rerun with a smaller cfl (now {self.cfl:g}) or a lower theta (now {self.theta:g}), or check the DEM there")

    # ------------------------------------------------------------------ sampling
    def sample(self, cells: Sequence[tuple[int, int]]) -> np.ndarray:
        """(k, 3) array of depth (m), water-surface elevation (m) and speed (m/s) at the given cells."""
        if not cells:
            return np.zeros((0, 3))
        qx, qy, s = self._qx[self._cur], self._qy[self._cur], self._scale[self._cur]
        ny, nx = self.shape
        out = np.zeros((len(cells), 3))
        for k, (r, c) in enumerate(cells):
            h = float(self.h[r, c])
            lim = lambda q, up_pos, up_neg: q * (up_pos if q > 0 else up_neg)  # noqa: E731
            qw = lim(float(qx[r, c]), float(s[r, c - 1]) if c > 0 else 1.0, float(s[r, c]))
            qe = lim(float(qx[r, c + 1]), float(s[r, c]), float(s[r, c + 1]) if c + 1 < nx else 1.0)
            qn = lim(float(qy[r, c]), float(s[r - 1, c]) if r > 0 else 1.0, float(s[r, c]))
            qs = lim(float(qy[r + 1, c]), float(s[r, c]), float(s[r + 1, c]) if r + 1 < ny else 1.0)
            sp = math.hypot(0.5 * (qw + qe), 0.5 * (qn + qs)) / h if h > self.speed_min_depth_m else 0.0
            out[k] = (h, float(self.z[r, c]) + h if self.active[r, c] else math.nan, sp)
        return out
