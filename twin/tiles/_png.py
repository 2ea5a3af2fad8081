"""A minimal PNG encoder (RGBA, 8 bit) on numpy + zlib: drape textures need nothing else."""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["encode_png"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(rgba: np.ndarray, *, level: int = 6) -> bytes:
    """Encode an (h, w, 4) uint8 array (row 0 = top) as a PNG file."""
    a = np.ascontiguousarray(rgba, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"expected an (h, w, 4) RGBA array, got {a.shape}")
    h, w, _ = a.shape
    raw = np.zeros((h, w * 4 + 1), np.uint8)  # filter byte 0 (None) per row
    raw[:, 1:] = a.reshape(h, w * 4)
    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level))
            + _chunk(b"IEND", b""))
