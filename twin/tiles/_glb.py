"""A small glTF 2.0 binary (.glb) writer and reader on numpy arrays.

The writer packs every buffer view at an 8-byte boundary (what EXT_structural_metadata asks of
property-table views, and more than the 4 bytes glTF asks of vertex attributes) and pads vertex
attributes whose element is not a multiple of 4 bytes (quantised positions, normals) to a stride
that is.
"""

from __future__ import annotations

import json
import struct

import numpy as np

__all__ = ["GlbBuilder", "read_glb", "GLB_MAGIC"]

GLB_MAGIC = b"glTF"
_JSON_CHUNK = 0x4E4F534A
_BIN_CHUNK = 0x004E4942

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
COMPONENT = {np.dtype(np.int8): 5120, np.dtype(np.uint8): 5121, np.dtype(np.int16): 5122,
             np.dtype(np.uint16): 5123, np.dtype(np.uint32): 5125, np.dtype(np.float32): 5126}
COMPONENT_DTYPE = {v: k for k, v in COMPONENT.items()}
TYPE_SIZE = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _pad(n: int, to: int) -> int:
    return (-n) % to


class GlbBuilder:
    """Accumulate glTF JSON and one binary buffer; :meth:`to_bytes` gives the .glb."""

    def __init__(self, generator: str = "twin") -> None:
        self.gltf: dict = {"asset": {"version": "2.0", "generator": generator}, "buffers": [],
                           "bufferViews": [], "accessors": []}
        self._parts: list[bytes] = []
        self._length = 0

    def add_view(self, data: bytes, *, target: int | None = None, stride: int | None = None) -> int:
        """Append bytes as a buffer view (8-byte aligned); returns its index."""
        pad = _pad(self._length, 8)
        if pad:
            self._parts.append(b"\0" * pad)
            self._length += pad
        view = {"buffer": 0, "byteOffset": self._length, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        if stride is not None:
            view["byteStride"] = stride
        self._parts.append(data)
        self._length += len(data)
        self.gltf["bufferViews"].append(view)
        return len(self.gltf["bufferViews"]) - 1

    def add_accessor(self, array: np.ndarray, type_: str, *, target: int | None = ARRAY_BUFFER,
                     normalized: bool = False, minmax: bool = False) -> int:
        """Append an accessor over ``array`` (shape (n,) or (n, k)); pads rows to 4-byte strides."""
        a = np.ascontiguousarray(array)
        k = TYPE_SIZE[type_]
        a2 = a.reshape(len(a), k)
        item = a2.dtype.itemsize * k
        stride = None
        data = a2
        if target == ARRAY_BUFFER and item % 4:
            width = (item + _pad(item, 4)) // a2.dtype.itemsize
            data = np.zeros((len(a2), width), a2.dtype)
            data[:, :k] = a2
            stride = width * a2.dtype.itemsize
        view = self.add_view(data.tobytes(), target=target, stride=stride)
        acc = {"bufferView": view, "componentType": COMPONENT[a2.dtype], "count": int(len(a2)), "type": type_}
        if normalized:
            acc["normalized"] = True
        if minmax and len(a2):
            lo, hi = a2.min(axis=0), a2.max(axis=0)
            cast = float if a2.dtype.kind == "f" else int
            acc["min"] = [cast(v) for v in lo]
            acc["max"] = [cast(v) for v in hi]
        self.gltf["accessors"].append(acc)
        return len(self.gltf["accessors"]) - 1

    def add_image(self, data: bytes, mime_type: str) -> int:
        view = self.add_view(data)
        images = self.gltf.setdefault("images", [])
        images.append({"bufferView": view, "mimeType": mime_type})
        return len(images) - 1

    def add(self, kind: str, obj: dict) -> int:
        """Append ``obj`` to the top-level array ``kind`` (materials, meshes, ...); returns its index."""
        arr = self.gltf.setdefault(kind, [])
        arr.append(obj)
        return len(arr) - 1

    def use_extension(self, name: str, *, required: bool = False) -> None:
        used = self.gltf.setdefault("extensionsUsed", [])
        if name not in used:
            used.append(name)
        if required:
            req = self.gltf.setdefault("extensionsRequired", [])
            if name not in req:
                req.append(name)

    def to_bytes(self) -> bytes:
        binary = b"".join(self._parts)
        binary += b"\0" * _pad(len(binary), 4)
        gltf = dict(self.gltf)
        if binary:
            gltf["buffers"] = [{"byteLength": len(binary)}]
        else:
            gltf.pop("buffers")
        for key in ("bufferViews", "accessors"):
            if not gltf[key]:
                gltf.pop(key)
        js = json.dumps(gltf, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        js += b" " * _pad(len(js), 4)
        total = 12 + 8 + len(js) + (8 + len(binary) if binary else 0)
        out = [struct.pack("<4sII", GLB_MAGIC, 2, total), struct.pack("<II", len(js), _JSON_CHUNK), js]
        if binary:
            out += [struct.pack("<II", len(binary), _BIN_CHUNK), binary]
        return b"".join(out)


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """Split a .glb into its JSON (dict) and binary chunk; raises ValueError on a malformed file."""
    if len(data) < 20 or data[:4] != GLB_MAGIC:
        raise ValueError("not a glb (bad magic)")
    _, version, total = struct.unpack_from("<4sII", data, 0)
    if version != 2 or total != len(data):
        raise ValueError(f"glb header says version {version}, length {total}; file has {len(data)} bytes")
    jlen, jtype = struct.unpack_from("<II", data, 12)
    if jtype != _JSON_CHUNK:
        raise ValueError("first glb chunk is not JSON")
    gltf = json.loads(data[20:20 + jlen])
    binary = b""
    off = 20 + jlen
    if off < len(data):
        blen, btype = struct.unpack_from("<II", data, off)
        if btype != _BIN_CHUNK:
            raise ValueError("second glb chunk is not BIN")
        binary = data[off + 8:off + 8 + blen]
    return gltf, binary


def accessor_array(gltf: dict, binary: bytes, index: int) -> np.ndarray:
    """The data of accessor ``index`` as an (n, k) array (normalised integers scaled to floats)."""
    acc = gltf["accessors"][index]
    view = gltf["bufferViews"][acc["bufferView"]]
    dtype = COMPONENT_DTYPE[acc["componentType"]]
    k = TYPE_SIZE[acc["type"]]
    count = acc["count"]
    stride = view.get("byteStride", dtype.itemsize * k)
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    raw = np.frombuffer(binary, np.uint8, count=view["byteLength"] - acc.get("byteOffset", 0), offset=start)
    rows = np.lib.stride_tricks.as_strided(raw, shape=(count, dtype.itemsize * k), strides=(stride, 1))
    out = np.ascontiguousarray(rows).view(dtype).reshape(count, k)
    if acc.get("normalized"):
        info = np.iinfo(dtype)
        out = np.maximum(out.astype(np.float64) / info.max, -1.0)
    return out
