"""Values ready for strict JSON: NaN and infinities become null, numpy scalars and arrays plain Python."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    item = getattr(value, "item", None)          # numpy / pandas scalars
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)      # numpy arrays
    if callable(tolist):
        return jsonable(tolist())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
