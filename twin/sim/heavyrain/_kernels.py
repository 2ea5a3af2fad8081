"""Numba kernels of the local-inertial heavy-rain model (private; imports numpy, numba and math only).

Grid layout (all arrays C-contiguous, row 0 = north):

- cells ``(ny, nx)``: ``h`` depth (m, float32), ``z`` bed elevation (m, float32; blocked cells hold
  :data:`BLOCKED_Z`), ``scale`` the outflux-limiter factor of the last step (float32, 0..1).
- x faces ``(ny, nx + 1)``: ``qx`` unit discharge (m2/s, positive towards +x = east); face ``k`` lies
  between cells ``k - 1`` and ``k``; faces ``0`` and ``nx`` are the west and east boundaries.
- y faces ``(ny + 1, nx)``: ``qy`` unit discharge (m2/s, positive towards +row = south); face ``k``
  lies between rows ``k - 1`` and ``k``; faces ``0`` and ``ny`` are the north and south boundaries.

Scheme (Bates, Horritt & Fewtrell 2010, J. Hydrol. 387:33; de Almeida et al. 2012, WRR 48:W05528):

    q_new = (theta q + (1 - theta)/2 (q_prev + q_next) - g h_f dt d(eta)/dx) / (1 + g dt n^2 |q| / h_f^(7/3))

with ``h_f = max(eta_a, eta_b) - max(z_a, z_b)`` and ``q = 0`` where ``h_f <= h_min``.

Outflux limiter: the discharges a cell would lose in a step are scaled so that they never exceed its
water (``scale = min(1, h dx / (dt sum(q_out)))``). The factor is applied to every face by the factor
of its *upstream* cell, identically on both sides of the face, so the update is conservative and no
depth goes below zero (volume exact by construction, up to float32 rounding which the model accounts).
The limited discharge of a face is ``q * scale[upstream]``; the kernels keep the unlimited ``q`` and
the ``scale`` array (one write each) and apply the factor on reading, which avoids a third sweep.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: bed elevation of blocked cells (buildings as walls, nodata): no face of such a cell ever carries water
BLOCKED_Z = np.float32(1.0e30)
#: boundary types per edge (order north, south, west, east)
CLOSED, OPEN, LEVEL = 0, 1, 2
#: standard gravity (m/s2)
GRAVITY = 9.80665
NORTH, SOUTH, WEST, EAST = 0, 1, 2, 3
#: LLVM fast-math flags of the momentum sweep: reciprocals, approximate functions, no signed zeros; not
#: ``nnan``/``ninf`` (the NaN checks of the runaway detection stay) nor reassociation/contraction (mirror symmetry)
FASTMATH = {"nsz", "arcp", "afn"}


@njit(inline="always", cache=True)
def _limited_x(qx, scale, i, k, nx):
    """Limited discharge of x face ``k`` of row ``i`` (factor of the upstream cell)."""
    q = qx[i, k]
    if q > 0.0:
        if k > 0:
            return q * scale[i, k - 1]
    elif q < 0.0:
        if k < nx:
            return q * scale[i, k]
    return q


@njit(inline="always", cache=True)
def _limited_y(qy, scale, k, j, ny):
    """Limited discharge of y face ``k`` of column ``j`` (factor of the upstream cell)."""
    q = qy[k, j]
    if q > 0.0:
        if k > 0:
            return q * scale[k - 1, j]
    elif q < 0.0:
        if k < ny:
            return q * scale[k, j]
    return q


@njit(inline="always", cache=True)
def _inertial(q_avg, q_perp, h_f, grad_eta, n_f, dt, g):
    """Theta-weighted inertial update (de Almeida et al. 2012, eq. 13) with implicit Manning friction.

    Bates et al. (2010) lag the friction magnitude (``|q_old|`` in the denominator). Where the step is
    much longer than the friction relaxation time (thin, fast sheet flow on steep slopes) that fixed
    point iteration has a multiplier near -1 and the discharge oscillates step to step. We solve
    ``q (1 + b |q|) = X`` for ``q`` instead (``X`` the explicit part, ``b = g dt n^2 / h^(7/3)``):
    ``q1 = 2 X / (1 + sqrt(1 + 4 b |X|))``, monotone in ``X``, the same steady state (Manning).
    The friction magnitude is the 2-D vector ``sqrt(q^2 + q_perp^2)`` as in LISFLOOD-FP's ACC solver
    (``q_perp`` the mean of the four neighbouring perpendicular faces), applied as one correction
    ``q = X / (1 + b sqrt(q1^2 + q_perp^2))`` (exact when ``q_perp = 0``).
    """
    x = q_avg - g * h_f * dt * grad_eta
    b = g * dt * n_f * n_f / (h_f * h_f * h_f ** (1.0 / 3.0))
    q1 = 2.0 * x / (1.0 + math.sqrt(1.0 + 4.0 * b * abs(x)))
    if q_perp == 0.0:
        return q1
    return x / (1.0 + b * math.sqrt(q1 * q1 + q_perp * q_perp))


@njit(inline="always", cache=True)
def _boundary(btype, level, q0, h_in, z_in, z_next, h_next, n_in, outward, dt, dx, g, h_min):
    """Discharge across a boundary face (``outward`` = +1 where positive q leaves the domain, else -1).

    OPEN: free outflow at normal depth: the face is driven by the bed slope of the two cells next to the
    edge (falling towards it), or where that is flat or rising by their water-surface slope; outflow
    only, with the same semi-implicit friction (so it relaxes to Manning normal-depth flow). LEVEL: a ghost cell at the
    fixed water level ``level`` over the edge cell's bed, flow either way.
    """
    if btype == CLOSED or z_in >= BLOCKED_Z:
        return 0.0
    eta_in = z_in + h_in
    qo = outward * q0
    if btype == OPEN:
        if h_in <= h_min:
            return 0.0
        slope = 0.0
        if z_next < BLOCKED_Z:
            slope = (z_next - z_in) / dx  # bed slope falling towards the edge
            if slope <= 0.0:
                slope = (z_next + h_next - eta_in) / dx
            if slope < 0.0:
                slope = 0.0
        q = _inertial(qo, 0.0, h_in, -slope, n_in, dt, g)
        if q < 0.0:
            q = 0.0
        return outward * q
    eta_g = level if level > z_in else z_in
    h_f = (eta_in if eta_in > eta_g else eta_g) - z_in
    if h_f <= h_min:
        return 0.0
    q = _inertial(qo, 0.0, h_f, (eta_g - eta_in) / dx, n_in, dt, g)
    return outward * q


@njit(inline="always", cache=True)
def _face_speed(smax, q, h_f, g):
    """max(smax, |q| / h_f + sqrt(g h_f)); NaN wins.

    The square root is taken only where the face can raise the maximum (``g h_f`` above
    ``(smax - |q|/h_f)^2`` with a 1e-9 margin, so rounding never drops a face that would win).
    """
    if q != q or h_f != h_f:
        return q + h_f
    if h_f <= 0.0:
        return smax
    u = abs(q) / h_f
    d = smax - u
    if d > 0.0 and g * h_f < 0.999999999 * d * d:
        return smax
    c = u + math.sqrt(g * h_f)
    return c if c > smax else smax


#: rows per parallel task of :func:`discharge_at_faces` (the y faces between two blocks are computed twice)
ROW_BLOCK = 16


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def discharge_at_faces(h, z, n, qx, qy, scale, bc_type, bc_level, dt, dx, g, theta, h_min,
                       qx_out, qy_out, scale_out, row_speed):
    """Momentum step: new unit discharges at all faces and the outflux-limiter factor of every cell.

    Parameters
    ----------
    h, z : (ny, nx) float32
        Depth and bed elevation (m) at the start of the step.
    n : (ny, nx) or (1, 1) float32
        Manning's n (s m^-1/3) per cell, or one value for all; a face takes the mean of its two cells.
    qx, qy, scale : arrays of the last step (see the module docstring); not modified.
    bc_type : (4,) int64, bc_level : (4,) float64
        Boundary type and fixed level (m) per edge, order north, south, west, east.
    dt, dx, g, theta, h_min : float
        Step (s), cell size (m), gravity (m/s2), de Almeida theta (0..1; 1 = Bates 2010), wet/dry threshold (m).
    qx_out, qy_out, scale_out : outputs, shapes as ``qx``, ``qy``, ``h``.
    row_speed : (ny,) float64 output
        Per row, the largest ``|q| / h_f + sqrt(g h_f)`` (m/s) over the faces of the row that carry
        water (the x faces and the north faces; the last row also its south faces), for the CFL step
        and the runaway check; NaN propagates.

    Parallel over blocks of :data:`ROW_BLOCK` rows. A block sweeps the y faces of row ``i + 1`` together
    with the x faces of row ``i``, so every face is computed once and the limiter factor of row ``i``
    (which needs all four faces of its cells) is set in the same sweep; only the y faces at the top
    of each block (owned and written by the block above) are computed a second time, by the same code.
    """
    ny, nx = h.shape
    uniform_n = n.shape[0] == 1 and n.shape[1] == 1 and ny * nx > 1
    c_avg = 0.5 * (1.0 - theta)
    gdt = g * dt
    nblk = (ny + ROW_BLOCK - 1) // ROW_BLOCK
    for blk in prange(nblk):
        r0 = blk * ROW_BLOCK
        r1 = min(r0 + ROW_BLOCK, ny)
        smax = 0.0
        for i in range(r0 - 1, r1):
            row = i >= r0
            k = i + 1  # the y face swept with row i: south of row i, north of row k
            own = k < r1 or k == ny
            if row:
                e0 = _limited_x(qx, scale, i, 0, nx)
                e1 = _limited_x(qx, scale, i, 1, nx)
                nw = n[0, 0] if uniform_n else n[i, 0]
                cw = 1 if nx > 1 else 0
                qw = _boundary(bc_type[WEST], bc_level[WEST], e0, h[i, 0], z[i, 0], z[i, cw], h[i, cw], nw, -1.0,
                               dt, dx, g, h_min)
                qx_out[i, 0] = qw
                if qw != 0.0 or qw != qw:
                    smax = _face_speed(smax, qw, h[i, 0], g)
            for j in range(nx):
                # ---- y face k of column j
                if k == 0 or k == ny:
                    rc = 0 if k == 0 else ny - 1
                    rn = (1 if ny > 1 else 0) if k == 0 else (ny - 2 if ny > 1 else 0)
                    qs = _boundary(bc_type[NORTH if k == 0 else SOUTH], bc_level[NORTH if k == 0 else SOUTH],
                                   _limited_y(qy, scale, k, j, ny), h[rc, j], z[rc, j], z[rn, j], h[rn, j],
                                   n[0, 0] if uniform_n else n[rc, j], -1.0 if k == 0 else 1.0, dt, dx, g, h_min)
                    hfs = h[rc, j]
                else:
                    za = z[i, j]
                    zb = z[k, j]
                    eta_a = za + h[i, j]
                    eta_b = zb + h[k, j]
                    hfs = (eta_a if eta_a > eta_b else eta_b) - (za if za > zb else zb)
                    if hfs <= h_min:
                        qs = 0.0
                    else:
                        nf = n[0, 0] if uniform_n else 0.5 * (n[i, j] + n[k, j])
                        pq = 0.25 * (_limited_x(qx, scale, i, j, nx) + _limited_x(qx, scale, i, j + 1, nx)
                                     + _limited_x(qx, scale, k, j, nx) + _limited_x(qx, scale, k, j + 1, nx))
                        q_avg = theta * _limited_y(qy, scale, k, j, ny) + c_avg * (
                            _limited_y(qy, scale, i, j, ny) + _limited_y(qy, scale, k + 1, j, ny))
                        qs = _inertial(q_avg, pq, hfs, (eta_b - eta_a) / dx, nf, dt, g)
                if own:
                    qy_out[k, j] = qs
                    if qs != 0.0 or qs != qs:
                        smax = _face_speed(smax, qs, hfs, g)
                if not row:
                    continue
                # ---- x face east of cell (i, j)
                kx = j + 1
                em = e0
                e0 = e1
                e1 = _limited_x(qx, scale, i, kx + 1, nx) if kx + 1 <= nx else e0
                if kx == nx:
                    ne = n[0, 0] if uniform_n else n[i, j]
                    ce = nx - 2 if nx > 1 else 0
                    qe = _boundary(bc_type[EAST], bc_level[EAST], e0, h[i, j], z[i, j], z[i, ce], h[i, ce], ne, 1.0,
                                   dt, dx, g, h_min)
                    hf = h[i, j]
                else:
                    za = z[i, j]
                    zb = z[i, kx]
                    eta_a = za + h[i, j]
                    eta_b = zb + h[i, kx]
                    hf = (eta_a if eta_a > eta_b else eta_b) - (za if za > zb else zb)
                    if hf <= h_min:
                        qe = 0.0
                    else:
                        nf = n[0, 0] if uniform_n else 0.5 * (n[i, j] + n[i, kx])
                        pq = 0.25 * (_limited_y(qy, scale, i, j, ny) + _limited_y(qy, scale, i, kx, ny)
                                     + _limited_y(qy, scale, k, j, ny) + _limited_y(qy, scale, k, kx, ny))
                        qe = _inertial(theta * e0 + c_avg * (em + e1), pq, hf, (eta_b - eta_a) / dx, nf, dt, g)
                qx_out[i, kx] = qe
                if qe != 0.0 or qe != qe:
                    smax = _face_speed(smax, qe, hf, g)
                # ---- outflux limiter of cell (i, j); its north face was written by this block
                qn = qy_out[i, j]
                out = (-qw if qw < 0.0 else 0.0) + (qe if qe > 0.0 else 0.0) \
                    + (-qn if qn < 0.0 else 0.0) + (qs if qs > 0.0 else 0.0)
                lost = out * dt / dx
                hc = h[i, j]
                scale_out[i, j] = hc / lost if lost > hc else 1.0
                qw = qe
            if row:
                row_speed[i] = smax
                smax = 0.0


@njit(parallel=True, cache=True)
def update_depth(h, z, qx, qy, scale, dt, dx, t_end,
                 rain_m_per_s, rain_field, use_rain_field,
                 il_remaining, use_il, loss_mode, loss_a, loss_b, loss_c, infiltrated,
                 drain_m_per_s, use_drain,
                 depth_threshold, speed_min_depth,
                 max_depth, time_of_max_depth, max_speed, vx_at_max, vy_at_max, max_hazard,
                 arrival_time, duration_above,
                 row_rain, row_loss, row_drain, row_out, row_clamp, row_speed):
    """Continuity step with sources, losses and running statistics; updates ``h`` in place.

    ``h_new = h + dt/dx (q_w - q_e + q_n - q_s) + rain dt - losses`` with limited discharges.

    Sources and losses (per cell, m/s unless stated):
    - rain: ``rain_field[i, j]`` when ``use_rain_field`` else ``rain_m_per_s``; blocked cells get none.
    - initial loss (``use_il``): ``il_remaining`` (m) is filled first from the water on the cell.
    - ``loss_mode`` 0 none; 1 constant rate ``loss_a``; 2 Horton ``f = loss_b + (loss_a - loss_b) exp(-loss_c t)``
      (``loss_a`` f0, ``loss_b`` fc in m/s, ``loss_c`` k in 1/s, ``t`` = ``t_end``); 3 Green-Ampt
      ``f = loss_a (1 + loss_b / F)`` (``loss_a`` Ks m/s, ``loss_b`` suction head x moisture deficit m,
      ``F`` = ``infiltrated`` m, updated). All limited by the water on the cell.
    - drainage (``use_drain``): sewer inlet capacity ``drain_m_per_s`` (m/s), limited by the water.

    Running statistics (written where exceeded): maximum depth and its time, maximum cell speed
    (m/s, from the mean face discharges over the depth, for depths above ``speed_min_depth``) with the
    velocity components (east, north) at that moment, maximum hazard ``h (v + 0.5)``, first time at or
    above ``depth_threshold`` (NaN before) and time spent there.

    Per-row accumulators (float64, added to): rain, losses (initial loss + infiltration), drainage,
    boundary outflow (m3), negative depth clipped by rounding (m3), and ``row_speed`` (overwritten):
    max over the row of ``sqrt(g h)`` (m/s) of the new depths (the face speeds come from
    :func:`discharge_at_faces`); NaN when a depth became NaN.
    """
    ny, nx = h.shape
    area = dx * dx
    k_dt = dt / dx
    g = GRAVITY
    for i in prange(ny):
        r_rain = 0.0
        r_loss = 0.0
        r_drain = 0.0
        r_out = 0.0
        r_clamp = 0.0
        r_hmax = 0.0
        for j in range(nx):
            if z[i, j] >= BLOCKED_Z:
                continue
            s = scale[i, j]
            qw = qx[i, j]
            qw = qw * s if qw < 0.0 else (qw * scale[i, j - 1] if j > 0 else qw)
            qe = qx[i, j + 1]
            qe = qe * s if qe > 0.0 else (qe * scale[i, j + 1] if j + 1 < nx else qe)
            qn = qy[i, j]
            qn = qn * s if qn < 0.0 else (qn * scale[i - 1, j] if i > 0 else qn)
            qs = qy[i + 1, j]
            qs = qs * s if qs > 0.0 else (qs * scale[i + 1, j] if i + 1 < ny else qs)
            hn = h[i, j] + k_dt * (qw - qe + qn - qs)
            if j == 0:
                r_out -= qw * dt * dx
            if j == nx - 1:
                r_out += qe * dt * dx
            if i == 0:
                r_out -= qn * dt * dx
            if i == ny - 1:
                r_out += qs * dt * dx
            r = rain_field[i, j] if use_rain_field else rain_m_per_s
            if r != 0.0:
                hn += r * dt
                r_rain += r * dt * area
            if hn < 0.0:  # float32 rounding only: the limiter keeps the exact update >= 0
                r_clamp -= hn * area
                hn = 0.0
            if use_il and hn > 0.0:
                a = il_remaining[i, j]
                if a > 0.0:
                    take = a if a < hn else hn
                    il_remaining[i, j] = a - take
                    hn -= take
                    r_loss += take * area
            if loss_mode != 0 and hn > 0.0:
                if loss_mode == 1:
                    f = loss_a[i, j]
                elif loss_mode == 2:
                    f = loss_b[i, j] + (loss_a[i, j] - loss_b[i, j]) * math.exp(-loss_c[i, j] * t_end)
                else:
                    F = infiltrated[i, j]
                    f = loss_a[i, j] * (1.0 + loss_b[i, j] / (F if F > 1e-6 else 1e-6))
                take = f * dt
                if take > hn:
                    take = hn
                if take > 0.0:
                    hn -= take
                    if loss_mode == 3:
                        infiltrated[i, j] += take
                    r_loss += take * area
            if use_drain and hn > 0.0:
                take = drain_m_per_s[i, j] * dt
                if take > hn:
                    take = hn
                if take > 0.0:
                    hn -= take
                    r_drain += take * area
            h[i, j] = hn
            # ---- running statistics
            if hn > max_depth[i, j]:
                max_depth[i, j] = hn
                time_of_max_depth[i, j] = t_end
            if hn >= depth_threshold:
                if arrival_time[i, j] != arrival_time[i, j]:
                    arrival_time[i, j] = t_end
                duration_above[i, j] += dt
            if hn > r_hmax:  # sqrt(g h) is monotone: one root per row at the end
                r_hmax = hn
            if hn > speed_min_depth:
                u = 0.5 * (qw + qe) / hn
                v = 0.5 * (qn + qs) / hn
                sp2 = u * u + v * v
                ms = max_speed[i, j]
                if sp2 < 0.999999 * ms * ms and hn * (ms + 0.5) < 0.999999 * max_hazard[i, j]:
                    continue  # neither maximum can rise: no root needed
                sp = math.sqrt(sp2)
                if sp > max_speed[i, j]:
                    max_speed[i, j] = sp
                    vx_at_max[i, j] = u
                    vy_at_max[i, j] = -v
                hz = hn * (sp + 0.5)
                if hz > max_hazard[i, j]:
                    max_hazard[i, j] = hz
        row_rain[i] += r_rain
        row_loss[i] += r_loss
        row_drain[i] += r_drain
        row_out[i] += r_out
        row_clamp[i] += r_clamp
        row_speed[i] = math.sqrt(g * r_hmax) if r_hmax > 0.0 else 0.0


@njit(parallel=True, cache=True)
def copy_stencil(src, dst):
    """Memory-bandwidth reference: ``dst = 0.25 * (N + S + W + E of src)`` on the interior (one read, one write)."""
    ny, nx = src.shape
    for i in prange(1, ny - 1):
        for j in range(1, nx - 1):
            dst[i, j] = 0.25 * (src[i - 1, j] + src[i + 1, j] + src[i, j - 1] + src[i, j + 1])
