"""3D Tiles 1.1 output: buildings, terrain and simulation results for CesiumJS.

Public surface: :func:`write_tiles` (everything under one folder, with ``manifest.json``),
:class:`SnapshotWriter` (time-dynamic results while a model runs), :func:`check_tileset` (the
project's own tileset checks) and :func:`read_run` (a run folder as the writer sees it). Importing
this package does no I/O.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["write_tiles", "TilesReport", "SnapshotWriter", "check_tileset", "read_run", "RunResults",
           "write_buildings", "write_terrain", "local_frame"]


def __getattr__(name: str):
    # lazy: importing twin.tiles stays cheap (no pandas/xarray until used)
    if name in ("write_tiles", "TilesReport"):
        from twin.tiles import writer
        return getattr(writer, name)
    if name in ("SnapshotWriter", "read_run", "RunResults"):
        from twin.tiles import runs
        return getattr(runs, name)
    if name == "check_tileset":
        from twin.tiles.check import check_tileset
        return check_tileset
    if name == "write_buildings":
        from twin.tiles.buildings import write_buildings
        return write_buildings
    if name == "write_terrain":
        from twin.tiles.terrain import write_terrain
        return write_terrain
    if name == "local_frame":
        from twin.tiles.frame import local_frame
        return local_frame
    raise AttributeError(f"module 'twin.tiles' has no attribute {name!r}")
