"""twin: an open-source urban digital twin engine for municipalities.

Import is cheap: heavy modules (numba kernels, lxml, pyproj) load on first use.
"""

from __future__ import annotations

__all__ = ["Scene", "open_citygml", "read_citygml", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Scene":
        from twin.scene import Scene

        return Scene
    if name in ("open_citygml", "read_citygml"):
        from twin import citygml

        return getattr(citygml, name)
    raise AttributeError(f"module 'twin' has no attribute {name!r}")
