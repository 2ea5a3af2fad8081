"""Named-file workflows: what the CLI and the API run. They compose readers, models and writers
and compute nothing themselves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from twin.errors import TwinIOError
from twin.scene import Scene

__all__ = ["import_city"]


def import_city(files: Sequence[str | os.PathLike], out: str | os.PathLike, *, crs=None, lod: int | None = None,
                theme: str | None = None, overwrite: bool = False,
                progress: Callable[[int], None] | None = None,
                on_file: Callable[[Path], None] | None = None) -> Scene:
    """Import CityGML files into one scene and save it to ``out``.

    The output folder is checked before any parsing, so a long import never ends in a refusal to
    write. Returns the scene (its ``problems`` table lists what was skipped).
    """
    from twin.citygml import read_citygml

    out = Path(out)
    if out.exists() and not overwrite:
        raise TwinIOError(f"{out} exists; pass overwrite=True (or --overwrite) to replace it")
    scene = read_citygml(files, lod=lod, crs=crs, theme=theme, progress=progress, on_file=on_file)
    scene.save(out, overwrite=overwrite)
    return scene
