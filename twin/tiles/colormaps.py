"""Colour maps for result drapes: named lists of RGB stops, interpolated linearly in RGB.

The stops are written into the tileset metadata and the manifest, so a viewer can draw the legend
with exactly the colours of the textures.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COLORMAPS", "apply_colormap", "colormap_for"]

#: name -> RGB stops (0..255) spaced evenly from vmin to vmax
COLORMAPS: dict[str, list[tuple[int, int, int]]] = {
    # light to deep blue: water depth
    "water": [(198, 230, 255), (107, 174, 214), (33, 113, 181), (8, 69, 148), (8, 29, 88)],
    # viridis (matplotlib, CC0), 9 stops
    "viridis": [(68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140),
                (40, 174, 128), (94, 201, 98), (170, 220, 50), (253, 231, 37)],
    # blue - white - red: air / surface temperature
    "thermal": [(49, 54, 149), (116, 173, 209), (224, 243, 248), (254, 224, 144), (244, 109, 67), (165, 0, 38)],
    # black to white: sky view factor
    "gray": [(0, 0, 0), (255, 255, 255)],
}


def apply_colormap(values: np.ndarray, name: str, vmin: float, vmax: float, *,
                   transparent_below: float | None = None, alpha: int = 255) -> np.ndarray:
    """Map values to RGBA uint8 (..., 4); NaN (and values below ``transparent_below``) are transparent."""
    stops = np.asarray(COLORMAPS[name], np.float64)
    v = np.asarray(values, np.float64)
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((v - vmin) / span, 0.0, 1.0)
    pos = np.nan_to_num(t, nan=0.0) * (len(stops) - 1)
    i = np.minimum(pos.astype(np.int64), len(stops) - 2)
    f = (pos - i)[..., None]
    rgb = stops[i] * (1 - f) + stops[i + 1] * f
    out = np.empty(v.shape + (4,), np.uint8)
    out[..., :3] = np.round(rgb).astype(np.uint8)
    invisible = ~np.isfinite(v)
    if transparent_below is not None:
        invisible |= np.nan_to_num(v, nan=-np.inf) < transparent_below
    out[..., 3] = np.where(invisible, 0, alpha)
    return out


def colormap_for(name: str, units: str | None, values: np.ndarray) -> dict:
    """Default colour map, value range and transparency threshold of a result field.

    Depths (``*depth*``, ``h``) use ``water`` from 0 m, transparent below 1 cm; temperatures
    (units K / degC or ``*temp*``) ``thermal``; sky view factor ``gray`` 0..1; the rest ``viridis``.
    Ranges are the 2nd and 98th percentiles of the finite values (robust to single hot cells).
    """
    lname = name.lower()
    u = (units or "").strip()
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(np.percentile(finite, 2)), float(np.percentile(finite, 98))) if finite.size else (0.0, 1.0)
    if "depth" in lname or lname in ("h", "water_depth"):
        wet = finite[finite >= 0.01]
        top = float(np.percentile(wet, 98)) if wet.size else 0.5
        return {"colormap": "water", "vmin": 0.0, "vmax": max(top, 0.1), "transparent_below": 0.01}
    if "svf" in lname or "sky_view" in lname:
        return {"colormap": "gray", "vmin": 0.0, "vmax": 1.0, "transparent_below": None}
    if "temp" in lname or u in ("K", "degC", "°C", "celsius", "degree_Celsius") or lname.startswith(("ta", "tmrt")):
        return {"colormap": "thermal", "vmin": lo, "vmax": hi if hi > lo else lo + 1.0, "transparent_below": None}
    return {"colormap": "viridis", "vmin": lo, "vmax": hi if hi > lo else lo + 1.0, "transparent_below": None}
