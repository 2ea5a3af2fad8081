"""Tileset JSON helpers: boxes, atomic JSON writes."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np

BOX_PAD_M = 0.01  # boxes are padded by 1 cm so that quantised and float32 content stays inside


def box_from_bounds(lo, hi, *, pad: float = BOX_PAD_M) -> list[float]:
    """An axis-aligned 3D Tiles ``box`` (centre + 3 half axes) around ``lo``..``hi`` (ENU metres)."""
    lo = np.asarray(lo, np.float64) - pad
    hi = np.asarray(hi, np.float64) + pad
    c = (lo + hi) / 2
    h = np.maximum((hi - lo) / 2, pad)
    return [float(c[0]), float(c[1]), float(c[2]), float(h[0]), 0.0, 0.0, 0.0, float(h[1]), 0.0, 0.0, 0.0, float(h[2])]


def box_bounds(box) -> tuple[np.ndarray, np.ndarray]:
    """``lo``, ``hi`` corners of the axis-aligned hull of a 3D Tiles ``box``."""
    b = np.asarray(box, np.float64)
    c = b[:3]
    ext = np.abs(b[3:6]) + np.abs(b[6:9]) + np.abs(b[9:12])
    return c - ext, c + ext


def write_json(path: Path, obj: dict, *, gzip_sibling: bool = False) -> int:
    """Write ``obj`` as compact JSON atomically (temp file + rename); optionally a ``.gz`` sibling.

    The plain file is always written: CesiumJS only reads gzip JSON when the server sends
    ``Content-Encoding: gzip``, which a static file server does not do for ``.gz`` names.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    if gzip_sibling:
        gz = path.with_name(path.name + ".gz")
        tmpgz = gz.with_name(f".{gz.name}.{os.getpid()}.tmp")
        tmpgz.write_bytes(gzip.compress(data, 9, mtime=0))
        os.replace(tmpgz, gz)
    return len(data)


def asset(generator_extra: dict | None = None) -> dict:
    from twin.tiles import __version__  # noqa: PLC0415

    a: dict = {"version": "1.1", "generator": f"twin {__version__}"}
    if generator_extra:
        a["extras"] = generator_extra
    return a
