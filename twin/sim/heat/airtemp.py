"""Hourly air-temperature maps from street sensors: sign-constrained regression + residual kriging.

Model for one hour (heat.md section 3; Szymanowski & Kryza 2009, Clim Res 38:171):

    Ta(x) = b0 + sum_k b_k p_k(x) + r(x)

- ``p_k``: predictors averaged over disc buffers (50-500 m; Venter et al. 2020, RSE 242:111791), e.g.
  imperviousness, building volume density, SVF, tree canopy, distance to water, elevation;
- ``b_k``: ridge least squares on standardised predictors with physically consistent signs
  (:data:`SIGNS`, bounds in ``scipy.optimize.lsq_linear``): sealing and building volume warm, trees
  and water cool by day, open sky (SVF) cools at night;
- ``r``: ordinary kriging of the station residuals with an exponential variogram (nugget, partial
  sill, range) fitted to that hour's empirical semivariogram by weighted least squares
  (Cressie 1985 weights); an hour whose variogram shows no spatial structure is a pure nugget and
  the residual field is flat (its mean).

Fallbacks (flagged in ``method``): a regression needs :data:`STATIONS_PER_PREDICTOR` stations per
predictor plus 3; with fewer, predictors are dropped in the given priority order; with fewer than
:data:`MIN_KRIGING` stations left for even one predictor the map is ordinary kriging of the
temperatures only; below that, inverse-distance weighting (power 2). With no station, an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from twin.errors import TwinValueError

__all__ = ["SIGNS", "AirTemperatureModel", "fit_air_temperature", "leave_one_out", "idw", "buffer_mean_at",
           "qc_readings", "QC_RANGE_C", "select_predictor_set"]

#: predictor base name -> (sign by day, sign at night): +1 coefficient >= 0, -1 <= 0, 0 free
SIGNS: dict[str, tuple[int, int]] = {
    "imperviousness": (1, 1),
    "building_volume_density": (0, 1),
    "built_fraction": (1, 1),
    "svf": (0, -1),
    "tree_canopy": (-1, 0),
    "water_fraction": (-1, 0),
    "water_distance": (1, 0),
    "elevation": (-1, 0),
    "elevation_above_reference": (-1, 0),
}
STATIONS_PER_PREDICTOR = 5
MIN_KRIGING = 6
#: ridge penalty on standardised coefficients (shrinks unstable fits with ~15 stations)
RIDGE = 0.1


def _base(name: str) -> str:
    return name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].endswith("m") and name.rsplit("_", 1)[-1][:-1].isdigit() \
        else name


def _sign(name: str, night: bool) -> int:
    s = SIGNS.get(_base(name))
    return 0 if s is None else s[1 if night else 0]


#: plausible air temperature, degC (the range check of twin.sensors.qc.QC_LIMITS["air_temperature"])
QC_RANGE_C = (-40.0, 50.0)


def qc_readings(t, *, flags=None) -> tuple[np.ndarray, dict[str, int]]:
    """Station-level quality control of one hour's readings: which to keep, and why others were left out.

    - ``flags``: readings flagged upstream (a non-zero twin.sensors QC bitmask) are left out;
    - range: outside :data:`QC_RANGE_C`;
    - spatial: CrowdQC step m2 (Napoly et al. 2018, Front. Earth Sci. 6:118) as in twin.sensors.qc, a
      robust z-score against all stations of the hour (median, 1.4826 MAD), ``z < -3`` or ``z > 3.5``,
      with at least 5 stations.

    Returns ``(keep, counts)`` with ``counts`` per reason.
    """
    t = np.asarray(t, float).ravel()
    keep = np.isfinite(t)
    counts = {"missing": int((~keep).sum()), "flagged": 0, "range": 0, "spatial_outlier": 0}
    if flags is not None:
        f = np.nan_to_num(np.asarray(flags, float).ravel()) != 0
        counts["flagged"] = int((f & keep).sum())
        keep &= ~f
    bad = keep & ((t < QC_RANGE_C[0]) | (t > QC_RANGE_C[1]))
    counts["range"] = int(bad.sum())
    keep &= ~bad
    if keep.sum() >= 5:
        med = np.median(t[keep])
        scale = 1.4826 * np.median(np.abs(t[keep] - med))
        if scale > 0:
            z = (t - med) / scale
            out = keep & ((z < -3.0) | (z > 3.5))
            counts["spatial_outlier"] = int(out.sum())
            keep &= ~out
    return keep, counts


# ------------------------------------------------------------------------------------------ kriging
def _exp_variogram(h, nugget, psill, rng):
    return nugget + psill * (1.0 - np.exp(-h / rng))


def fit_variogram(x, y, r, *, n_bins: int = 6) -> tuple[float, float, float]:
    """Exponential variogram ``(nugget, partial sill, range m)`` of residuals ``r`` at ``(x, y)``.

    WLS on binned semivariances (weights ``N(h) / gamma(h)^2``, Cressie 1985). Returns a pure nugget
    ``(var, 0, 1)`` when fewer than :data:`MIN_KRIGING` points or no fit with a positive partial sill.
    """
    from scipy.optimize import curve_fit

    n = len(r)
    var = float(np.var(r)) if n > 1 else 0.0
    if n < MIN_KRIGING or var <= 0:
        return max(var, 1e-6), 0.0, 1.0
    iu = np.triu_indices(n, 1)
    h = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])[iu]
    g = 0.5 * (r[:, None] - r[None, :])[iu] ** 2
    edges = np.quantile(h, np.linspace(0, 1, n_bins + 1))
    idx = np.clip(np.searchsorted(edges, h, side="right") - 1, 0, n_bins - 1)
    hb = np.array([h[idx == b].mean() for b in range(n_bins) if np.any(idx == b)])
    gb = np.array([g[idx == b].mean() for b in range(n_bins) if np.any(idx == b)])
    nb = np.array([np.sum(idx == b) for b in range(n_bins) if np.any(idx == b)])
    try:
        p, _ = curve_fit(_exp_variogram, hb, gb, p0=(0.2 * var, 0.8 * var, np.median(h)),
                         bounds=([0, 0, 0.05 * h.max()], [2 * var + 1e-9, 3 * var + 1e-9, 3 * h.max()]),
                         sigma=np.maximum(gb, 1e-6) / np.sqrt(nb), maxfev=2000)
    except (RuntimeError, ValueError):
        return var, 0.0, 1.0
    nugget, psill, rng = (float(v) for v in p)
    if psill < 0.05 * (nugget + psill):
        return max(nugget + psill, 1e-6), 0.0, 1.0
    return max(nugget, 1e-9), psill, rng


def krige(x, y, r, x0, y0, vario) -> tuple[np.ndarray, np.ndarray]:
    """Ordinary kriging of ``r`` at ``(x0, y0)``: estimate and kriging variance (Cressie 1993, eq. 3.2.12-16)."""
    nugget, psill, rng = vario
    n = len(r)
    x0, y0 = np.ravel(x0), np.ravel(y0)
    if psill <= 0 or n < 2:
        return np.full(x0.shape, float(np.mean(r))), np.full(x0.shape, nugget * (1 + 1 / max(n, 1)))
    sill = nugget + psill
    cov = lambda h: np.where(h == 0, sill, psill * np.exp(-h / rng))  # noqa: E731 (covariance form)
    a = np.ones((n + 1, n + 1))
    a[:n, :n] = cov(np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]))
    a[n, n] = 0.0
    ainv = np.linalg.pinv(a)
    est = np.empty(x0.shape)
    var = np.empty(x0.shape)
    for s in range(0, len(x0), 65536):  # chunks keep the (n, chunk) matrix small at city scale
        sl = slice(s, s + 65536)
        b = np.ones((n + 1, len(x0[sl])))
        b[:n] = psill * np.exp(-np.hypot(x[:, None] - x0[None, sl], y[:, None] - y0[None, sl]) / rng)
        w = ainv @ b
        est[sl] = w[:n].T @ r
        var[sl] = sill - np.sum(w * b, axis=0)
    return est, np.maximum(var, 0.0)


def idw(x, y, v, x0, y0, *, power: float = 2.0) -> np.ndarray:
    """Inverse-distance weighting (Shepard 1968) of ``v`` at ``(x0, y0)``."""
    x0, y0 = np.ravel(x0), np.ravel(y0)
    out = np.empty(x0.shape)
    for s in range(0, len(x0), 65536):
        sl = slice(s, s + 65536)
        d = np.hypot(x[:, None] - x0[None, sl], y[:, None] - y0[None, sl])
        w = 1.0 / np.maximum(d, 1e-6) ** power
        out[sl] = (w * v[:, None]).sum(0) / w.sum(0)
    return out


# ---------------------------------------------------------------------------------------- the model
@dataclass
class AirTemperatureModel:
    """One hour's fitted model (see the module docstring). Coefficients per unit of each predictor."""

    method: str  # "regression_kriging", "ordinary_kriging", "idw" or "predictor_only_prior"
    predictors: list[str]
    intercept: float
    coef: np.ndarray
    coef_cov: np.ndarray  # covariance of (intercept, coef)
    variogram: tuple[float, float, float]
    x: np.ndarray
    y: np.ndarray
    residuals: np.ndarray
    values: np.ndarray
    night: bool
    notes: list[str] = field(default_factory=list)

    def trend(self, p: np.ndarray) -> np.ndarray:
        """Regression part for predictor rows ``p`` (n, k)."""
        return self.intercept + (np.asarray(p, float).reshape(-1, len(self.predictors)) @ self.coef
                                 if self.predictors else 0.0)

    def predict(self, x0, y0, p0=None) -> dict:
        """Ta, standard error and per-predictor contributions at points ``(x0, y0)`` with predictors ``p0`` (n, k).

        The SE combines the kriging variance and the regression's parameter variance
        (``x0' Cov(b) x0``).
        """
        x0, y0 = np.ravel(np.asarray(x0, float)), np.ravel(np.asarray(y0, float))
        if self.method == "predictor_only_prior":  # no readings: no residual to krige
            est, kvar = np.zeros(x0.shape), np.zeros(x0.shape)
        elif self.method == "idw":
            ta = idw(self.x, self.y, self.values, x0, y0)
            return {"air_temperature": ta, "se": np.full(ta.shape, np.nan), "contributions": {}}
        else:
            est, kvar = krige(self.x, self.y, self.residuals, x0, y0, self.variogram)
        contrib = {}
        trend = np.full(x0.shape, self.intercept)
        if self.predictors:
            p0 = np.asarray(p0, float).reshape(len(x0), len(self.predictors))
            for k, name in enumerate(self.predictors):
                contrib[name] = self.coef[k] * p0[:, k]
                trend = trend + contrib[name]
            xa = np.column_stack([np.ones(len(x0)), p0])
            pvar = np.einsum("ij,jk,ik->i", xa, self.coef_cov, xa)
        else:
            pvar = np.full(x0.shape, self.coef_cov[0, 0])
        return {"air_temperature": trend + est, "se": np.sqrt(kvar + np.maximum(pvar, 0.0)), "contributions": contrib}


def _fit_trend(p, t, names, night):
    """Sign-bounded ridge on standardised predictors; returns intercept, coef, cov (approx.)."""
    from scipy.optimize import lsq_linear

    n, k = p.shape
    mu, sd = p.mean(0), p.std(0)
    sd[sd == 0] = 1.0
    zs = (p - mu) / sd
    a = np.vstack([np.column_stack([np.ones(n), zs]), np.column_stack([np.zeros(k), math.sqrt(RIDGE * n) * np.eye(k)])])
    b = np.concatenate([t, np.zeros(k)])
    lo = np.full(k + 1, -np.inf)
    hi = np.full(k + 1, np.inf)
    for j, name in enumerate(names):
        s = _sign(name, night)
        if s > 0:
            lo[j + 1] = 0.0
        elif s < 0:
            hi[j + 1] = 0.0
    sol = lsq_linear(a, b, bounds=(lo, hi), method="bvls").x
    coef = sol[1:] / sd
    intercept = sol[0] - float(np.sum(coef * mu))
    resid = t - intercept - p @ coef
    dof = max(n - k - 1, 1)
    xa = np.column_stack([np.ones(n), p])
    cov = np.linalg.pinv(xa.T @ xa + np.diag([0.0] + list(RIDGE * n / sd ** 2))) * (resid @ resid / dof)
    return intercept, coef, cov, resid


def fit_air_temperature(x, y, t, predictors=None, names=(), *, night: bool) -> AirTemperatureModel:
    """Fit one hour's model to station temperatures ``t`` (degC) at ``(x, y)`` (m, projected CRS).

    Parameters
    ----------
    predictors : (n, k) array, optional
        Buffered predictor values at the stations, columns in priority order (the first ones are
        kept when there are too few stations for all).
    names : sequence of str
        Predictor names (``<base>_<radius>m``; the base selects the sign constraint in :data:`SIGNS`).
    night : bool
        Selects the night or day sign constraints.
    """
    x, y, t = (np.asarray(v, float).ravel() for v in (x, y, t))
    ok = np.isfinite(t) & np.isfinite(x) & np.isfinite(y)
    names = list(names)
    p = np.zeros((len(t), 0)) if predictors is None or not names else np.asarray(predictors, float).reshape(len(t), -1)
    if p.shape[1]:
        ok &= np.all(np.isfinite(p), axis=1)
    notes = []
    if (~ok).any():
        notes.append(f"{int((~ok).sum())} station(s) without a temperature, coordinates or predictor values were left out")
    x, y, t, p = x[ok], y[ok], t[ok], p[ok]
    n = len(t)
    if n == 0:
        raise TwinValueError("no station with a valid temperature for this hour; fix: choose an hour with readings "
                             "or check the sensors' quality flags")
    if p.shape[1] and n > 1:
        const = [j for j in range(p.shape[1]) if np.ptp(p[:, j]) <= 1e-9 * max(1.0, float(np.abs(p[:, j]).max()))]
        if const:
            notes.append(f"predictor(s) {[names[j] for j in const]} are constant at the stations: left out")
            keep = [j for j in range(p.shape[1]) if j not in const]
            names, p = [names[j] for j in keep], p[:, keep]
    k_max = max(0, (n - 3) // STATIONS_PER_PREDICTOR)
    if len(names) > k_max:
        need = STATIONS_PER_PREDICTOR * len(names) + 3
        notes.append(f"{n} stations support {k_max} predictor(s) ({STATIONS_PER_PREDICTOR} per predictor + 3; "
                     f"{need} needed for all {len(names)}): kept {names[:k_max]}")
        names, p = names[:k_max], p[:, :k_max]
    if names:
        b0, coef, cov, resid = _fit_trend(p, t, names, night)
        return AirTemperatureModel("regression_kriging", names, b0, coef, cov, fit_variogram(x, y, resid), x, y, resid,
                                   t, night, notes)
    if n >= MIN_KRIGING:
        if k_max == 0 and predictors is not None and len(names) == 0 and notes:
            pass
        notes.append("no predictor: ordinary kriging of the station temperatures (flagged fallback)")
        m = float(t.mean())
        return AirTemperatureModel("ordinary_kriging", [], m, np.zeros(0), np.array([[np.var(t) / n]]),
                                   fit_variogram(x, y, t - m), x, y, t - m, t, night, notes)
    notes.append(f"only {n} station(s): inverse-distance weighting (flagged fallback; regression kriging needs "
                 f"{STATIONS_PER_PREDICTOR + 3}, ordinary kriging {MIN_KRIGING})")
    return AirTemperatureModel("idw", [], float(t.mean()), np.zeros(0), np.zeros((1, 1)), (0.0, 0.0, 1.0), x, y,
                               np.zeros(n), t, night, notes)


def leave_one_out(x, y, t, predictors=None, names=(), *, night: bool) -> dict:
    """Leave-one-station-out errors of regression kriging, the station mean and IDW (p = 2), K.

    Returns ``{"rk": errors, "mean": errors, "idw": errors}`` (predicted minus observed per station).
    """
    x, y, t = (np.asarray(v, float).ravel() for v in (x, y, t))
    p = None if predictors is None else np.asarray(predictors, float).reshape(len(t), -1)
    out = {"rk": np.empty(len(t)), "mean": np.empty(len(t)), "idw": np.empty(len(t))}
    for i in range(len(t)):
        m = np.arange(len(t)) != i
        mod = fit_air_temperature(x[m], y[m], t[m], None if p is None else p[m], names, night=night)
        pi = None if p is None else p[i:i + 1, [list(names).index(n) for n in mod.predictors]]
        out["rk"][i] = mod.predict(x[i:i + 1], y[i:i + 1], pi)["air_temperature"][0] - t[i]
        out["mean"][i] = t[m].mean() - t[i]
        out["idw"][i] = idw(x[m], y[m], t[m], x[i:i + 1], y[i:i + 1])[0] - t[i]
    return out


def select_predictor_set(x, y, temps, predictors, names, candidate_sets, *, night: bool) -> tuple[list[str], dict]:
    """The predictor set (of ``candidate_sets``, lists of names; ``[]`` = ordinary kriging) with the lowest
    leave-one-station-out RMSE of regression kriging, pooled over the hours (rows) of ``temps``.

    Use it on the stations of one hour class (e.g. summer nights, heat-wave days); for an honest
    validation run it inside each outer fold on the training stations only (nested), as
    tests/test_heat_berlin.py does. Returns ``(best_set, {str(set): rmse})``.
    """
    temps = np.atleast_2d(np.asarray(temps, float))
    p = np.asarray(predictors, float).reshape(temps.shape[1], -1)
    col = {n: j for j, n in enumerate(names)}
    scores = {}
    for cand in candidate_sets:
        cols = [col[n] for n in cand]
        err = [leave_one_out(x, y, t, p[:, cols] if cols else None, list(cand), night=night)["rk"] for t in temps]
        e = np.concatenate(err)
        scores[str(list(cand))] = float(np.sqrt(np.nanmean(e ** 2)))
    best = min(candidate_sets, key=lambda c: scores[str(list(c))])
    return list(best), scores


def buffer_mean_at(raster: np.ndarray, transform, x, y, radius_m: float) -> np.ndarray:
    """Mean of the finite raster cells whose centres lie within ``radius_m`` of each point (NaN outside).

    ``transform`` is an affine (col, row) -> (x, y) of a north-up raster in the points' CRS.
    """
    a, e = transform.a, transform.e
    out = np.full(len(np.atleast_1d(x)), np.nan)
    ny, nx = raster.shape
    for n, (px, py) in enumerate(zip(np.atleast_1d(x), np.atleast_1d(y))):
        c0, r0 = (px - transform.c) / a, (py - transform.f) / e
        rc, rr = radius_m / abs(a), radius_m / abs(e)
        i0, i1 = max(int(r0 - rr) - 1, 0), min(int(r0 + rr) + 2, ny)
        j0, j1 = max(int(c0 - rc) - 1, 0), min(int(c0 + rc) + 2, nx)
        if i0 >= i1 or j0 >= j1:
            continue
        yy, xx = np.mgrid[i0:i1, j0:j1]
        cx, cy = transform.c + (xx + 0.5) * a, transform.f + (yy + 0.5) * e
        sub = raster[i0:i1, j0:j1]
        m = (np.hypot(cx - px, cy - py) <= radius_m) & np.isfinite(sub)
        if m.any():
            out[n] = float(sub[m].mean())
    return out
