"""The ``tiles`` workflow: a saved scene (+ run folders) -> 3D Tiles under one folder.

Kept beside :mod:`twin.workflows` until it is folded in there; the CLI and the API call it.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

from twin.scene import Scene

__all__ = ["tiles"]


def tiles(scene_dir: str | os.PathLike, out: str | os.PathLike, *, runs: Sequence[str | os.PathLike] = (),
          max_features_per_tile: int = 1000, quantize: bool = True, terrain_tile_cells: int = 128,
          gzip_json: bool = False, overwrite: bool = False, vertical_datum: str | None = None,
          allow_local: bool = False, styles: Mapping[str, dict] | None = None):
    """Load the scene folder and write its tiles (see :func:`twin.tiles.write_tiles`).

    Returns
    -------
    twin.tiles.TilesReport
    """
    from twin.errors import TwinIOError
    from twin.tiles import write_tiles

    from pathlib import Path

    if Path(out).exists() and not overwrite:   # refuse before loading anything
        raise TwinIOError(f"{out} exists; pass overwrite=True (or --overwrite) to replace it")
    scene = Scene.load(scene_dir)
    return write_tiles(scene, out, runs=runs, max_features_per_tile=max_features_per_tile, quantize=quantize,
                       terrain_tile_cells=terrain_tile_cells, gzip_json=gzip_json, overwrite=overwrite,
                       vertical_datum=vertical_datum, allow_local=allow_local, styles=styles)
