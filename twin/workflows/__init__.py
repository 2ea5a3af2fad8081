"""Named-file workflows: what the CLI and the API run. They compose readers, models and writers
and compute nothing themselves."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable, Mapping, Sequence

from twin.errors import TwinIOError, TwinValueError, TwinWarning
from twin.scene import Scene

__all__ = ["import_city", "scene_info", "tiles", "compare_runs", "compare_run_dirs", "run_scenario", "execute_run",
           "building_results", "RunRegistry", "RunRecord", "RunCancelled", "RunNotFoundError"]

from twin.workflows.compare import compare_run_dirs, compare_runs  # noqa: E402  (cheap: numpy only)
from twin.workflows.registry import RunNotFoundError, RunRecord, RunRegistry  # noqa: E402  (stdlib sqlite3)
from twin.workflows.run import RunCancelled, building_results, execute_run, run_scenario  # noqa: E402


def import_city(files: Sequence[str | os.PathLike], out: str | os.PathLike, *, crs=None, lod: int | None = None,
                theme: str | None = None, terrain: Sequence[str | os.PathLike] | None = None,
                terrain_margin: float = 150.0, overwrite: bool = False,
                progress: Callable[[int], None] | None = None,
                on_file: Callable[[Path], None] | None = None) -> Scene:
    """Import CityGML files into one scene, attach its terrain and save it to ``out``.

    Parameters
    ----------
    files : paths
        CityGML files or folders of them (see :func:`twin.citygml.read_citygml`).
    out : path
        Scene folder to write; checked before any parsing, so a long import never ends in a
        refusal to write.
    terrain : paths, optional
        DEM tiles (GeoTIFF/COG, ESRI ASCII, DGM1 .xyz), mosaicked and clipped to the scene plus
        ``terrain_margin`` metres. Without them the scene's TINRelief is rasterised, or else an
        approximate terrain is interpolated from building ground points (a :class:`TwinWarning`
        says so); a scene with neither keeps no terrain.

    Returns
    -------
    Scene
        As saved; ``scene.problems`` lists what was skipped.
    """
    from twin.citygml import read_citygml
    from twin.terrain import attach_terrain

    out = Path(out)
    if out.exists() and not overwrite:
        raise TwinIOError(f"{out} exists; pass overwrite=True (or --overwrite) to replace it")
    scene = read_citygml(files, lod=lod, crs=crs, theme=theme, progress=progress, on_file=on_file)
    if terrain:
        attach_terrain(scene, list(terrain), margin=terrain_margin)
    else:
        try:
            attach_terrain(scene, None, margin=terrain_margin)
        except TwinValueError as exc:   # nothing to derive terrain from: the scene simply has none
            warnings.warn(f"the scene has no terrain: {exc}", TwinWarning, stacklevel=2)
    scene.save(out, overwrite=overwrite)
    return scene


def scene_info(scene: Scene) -> dict:
    """``twin info``'s content: the scene summary plus its terrain and the buildings' alignment on it."""
    from twin.terrain import alignment_report, terrain_info

    info = scene.summary()
    info["terrain"] = terrain_info(scene)
    info["alignment"] = alignment_report(scene) if scene.terrain is not None else None
    return info


def tiles(scene_dir: str | os.PathLike, out: str | os.PathLike, *, runs: Sequence[str | os.PathLike] = (),
          max_features_per_tile: int = 1000, quantize: bool = True, terrain_tile_cells: int = 128,
          gzip_json: bool = False, overwrite: bool = False, vertical_datum: str | None = None,
          allow_local: bool = False, styles: Mapping[str, dict] | None = None, client=None):
    """Load a scene folder and write its 3D Tiles (+ run layers) under ``out``.

    The output folder is checked before anything is loaded. See :func:`twin.tiles.write_tiles`.

    Returns
    -------
    twin.tiles.TilesReport
    """
    from twin.tiles import write_tiles

    if Path(out).exists() and not overwrite:
        raise TwinIOError(f"{out} exists; pass overwrite=True (or --overwrite) to replace it")
    scene = Scene.load(scene_dir)
    return write_tiles(scene, out, runs=runs, max_features_per_tile=max_features_per_tile, quantize=quantize,
                       terrain_tile_cells=terrain_tile_cells, gzip_json=gzip_json, overwrite=overwrite,
                       vertical_datum=vertical_datum, allow_local=allow_local, styles=styles, client=client)
