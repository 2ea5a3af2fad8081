"""Quality control of stored readings: range, spike, stuck value, staleness and (for air temperature)
a CrowdQC-style spatial outlier check. Flags are stored with the readings; no value is dropped.

The spatial check follows CrowdQC's step m2 (Napoly et al. 2018, Front. Earth Sci. 6:118): per hour,
a robust z-score of each station against all stations (median and scaled MAD, as an estimate of the
Qn scale used there); ``z < -3`` or ``z > 3.5`` is flagged.
"""

from __future__ import annotations

import numpy as np

from twin.sensors._model import FLAG_RANGE, FLAG_SPATIAL, FLAG_SPIKE, FLAG_STALE, FLAG_STUCK, now_us
from twin.sensors.store import ReadingStore

__all__ = ["QC_LIMITS", "run_qc"]

_H = 3600 * 1_000_000
# property -> plausible range (canonical unit), max rate of change per hour, stuck duration (hours)
QC_LIMITS = {
    "air_temperature": {"range": (-40.0, 50.0), "spike_per_h": 8.0, "stuck_h": 6.0},
    "relative_humidity": {"range": (0.0, 100.0), "spike_per_h": 40.0, "stuck_h": 12.0},
    "precipitation": {"range": (0.0, 200.0), "spike_per_h": None, "stuck_h": None},  # zero rain repeats
    "water_level": {"range": (-5_000.0, 20_000.0), "spike_per_h": 2_000.0, "stuck_h": 48.0},
}
_MASK = FLAG_RANGE | FLAG_SPIKE | FLAG_STUCK | FLAG_STALE | FLAG_SPATIAL


def _flags_for_series(t_us: np.ndarray, v: np.ndarray, limits: dict, *, now: int, stale_h: float) -> np.ndarray:
    flags = np.zeros(len(v), dtype=np.int64)
    lo, hi = limits["range"]
    flags[(v < lo) | (v > hi)] |= FLAG_RANGE
    sp = limits["spike_per_h"]
    if sp is not None and len(v) >= 3:
        dt_h = np.maximum(np.diff(t_us) / _H, 1.0 / 60.0)  # at least a minute: a spike is not a rate
        rate = np.diff(v) / dt_h
        # a spike goes up (down) faster than allowed and comes back as fast
        up = (rate[:-1] > sp) & (rate[1:] < -sp)
        down = (rate[:-1] < -sp) & (rate[1:] > sp)
        flags[1:-1][up | down] |= FLAG_SPIKE
    st = limits["stuck_h"]
    if st is not None and len(v) >= 2:
        start = 0
        for i in range(1, len(v) + 1):
            if i == len(v) or v[i] != v[start]:
                if i - start >= 3 and (t_us[i - 1] - t_us[start]) >= st * _H:
                    flags[start:i] |= FLAG_STUCK
                start = i
    if len(v) and now - t_us[-1] > stale_h * _H:
        flags[-1] |= FLAG_STALE
    return flags


def run_qc(store: ReadingStore, property: str, *, stale_h: float = 2.0, spatial: bool | None = None,
           now: int | None = None) -> dict[str, int]:
    """Flag the readings of ``property`` in ``store``; returns how many readings carry each flag.

    ``stale_h``: the newest reading of a datastream older than this (hours before ``now``, microseconds
    since 1970 UTC) is flagged stale. ``spatial`` (default: on for air temperature) runs the CrowdQC-style
    check across stations, hourly means, at least 5 stations per hour.
    """
    limits = QC_LIMITS[property]
    now = now_us() if now is None else now
    hourly: dict[int, list[tuple[int, float]]] = {}
    per_ds: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for d in store.list_datastreams(property=property):
        rows = store.rows(d["id"])
        if not rows:
            continue
        t0 = np.array([r[0] for r in rows], dtype=np.int64)
        t = np.array([r[1] for r in rows], dtype=np.int64)
        v = np.array([r[2] for r in rows], dtype=float)
        f = _flags_for_series(t, v, limits, now=now, stale_h=stale_h)
        per_ds[d["id"]] = (t0, t, v, f)
    if spatial if spatial is not None else property == "air_temperature":
        for ds, (t0, t, v, f) in per_ds.items():
            hours = t // _H
            for h in np.unique(hours):
                sel = (hours == h) & (f & FLAG_RANGE == 0)
                if sel.any():
                    hourly.setdefault(int(h), []).append((ds, float(v[sel].mean())))
        for h, vals in hourly.items():
            if len(vals) < 5:
                continue
            x = np.array([x for _, x in vals])
            med = np.median(x)
            scale = 1.4826 * np.median(np.abs(x - med))
            if scale <= 0:
                continue
            for (ds, _), z in zip(vals, (x - med) / scale):
                if z < -3.0 or z > 3.5:
                    t0, t, v, f = per_ds[ds]
                    f[(t // _H) == h] |= FLAG_SPATIAL
    counts: dict[str, int] = {"range": 0, "spike": 0, "stuck": 0, "stale": 0, "spatial_outlier": 0}
    names = {FLAG_RANGE: "range", FLAG_SPIKE: "spike", FLAG_STUCK: "stuck", FLAG_STALE: "stale",
             FLAG_SPATIAL: "spatial_outlier"}
    for ds, (t0, t, v, f) in per_ds.items():
        store.set_flags(ds, zip(t0.tolist(), t.tolist(), f.tolist()), mask=_MASK)
        for bit, name in names.items():
            counts[name] += int(np.count_nonzero(f & bit))
    return counts
