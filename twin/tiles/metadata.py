"""3D Metadata for buildings: the schema (tileset level and in every glb) and the binary property
tables of ``EXT_structural_metadata``.

A property is one column: ``STRING`` (UTF-8 values + UINT32 offsets), ``INT32`` or ``FLOAT64``
scalars. Missing numbers are written as the property's ``noData`` value (JSON cannot hold NaN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["Property", "schema", "encode_property_table", "sanitize_id", "NO_DATA_INT", "NO_DATA_FLOAT",
           "SCHEMA_ID", "CLASS_ID"]

SCHEMA_ID = "twin"
CLASS_ID = "building"
NO_DATA_INT = -2147483648
NO_DATA_FLOAT = -9999.0
_TYPES = {"STRING": None, "INT32": np.int32, "FLOAT64": np.float64}


@dataclass
class Property:
    """One column of the property table: ``id`` (identifier-safe), display ``name``, ``kind``
    (``STRING``, ``INT32``, ``FLOAT64``), a description and the values of every feature."""

    id: str
    name: str
    kind: str
    values: np.ndarray
    description: str = ""

    def definition(self) -> dict:
        d: dict = {"name": self.name}
        if self.description:
            d["description"] = self.description
        if self.kind == "STRING":
            d["type"] = "STRING"
        else:
            d["type"] = "SCALAR"
            d["componentType"] = self.kind
            d["noData"] = NO_DATA_INT if self.kind == "INT32" else NO_DATA_FLOAT
        return d


def sanitize_id(name: str, taken: set[str]) -> str:
    """An identifier for a property (``^[a-zA-Z_][a-zA-Z0-9_]*$``), unique within ``taken``."""
    s = re.sub(r"[^0-9a-zA-Z_]", "_", str(name)).strip("_") or "property"
    if s[0].isdigit():
        s = "_" + s
    base, i = s, 2
    while s in taken:
        s = f"{base}_{i}"
        i += 1
    taken.add(s)
    return s


def schema(properties: list[Property], *, class_id: str = CLASS_ID, description: str = "") -> dict:
    """The ``EXT_structural_metadata`` / 3D Tiles 1.1 schema with one class."""
    cls: dict = {"name": class_id, "properties": {p.id: p.definition() for p in properties}}
    if description:
        cls["description"] = description
    return {"id": SCHEMA_ID, "classes": {class_id: cls}}


def encode_property_table(builder, properties: list[Property], rows: np.ndarray, *,
                          class_id: str = CLASS_ID) -> dict:
    """Write the columns of ``properties`` at feature rows ``rows`` into ``builder``; returns the
    ``propertyTables`` entry (``count`` = ``len(rows)``)."""
    table: dict = {"class": class_id, "count": int(len(rows)), "properties": {}}
    for p in properties:
        vals = p.values[rows]
        if p.kind == "STRING":
            encoded = [("" if v is None else str(v)).encode("utf-8") for v in vals]
            offsets = np.zeros(len(encoded) + 1, np.uint32)
            np.cumsum([len(b) for b in encoded], out=offsets[1:])
            v_view = builder.add_view(b"".join(encoded))
            o_view = builder.add_view(offsets.tobytes())
            table["properties"][p.id] = {"values": v_view, "stringOffsets": o_view, "stringOffsetType": "UINT32"}
        else:
            arr = np.asarray(vals, _TYPES[p.kind])
            table["properties"][p.id] = {"values": builder.add_view(arr.tobytes())}
    return table
