"""``/api/scenes``: the scene folders of the workspace and their ``twin info`` summaries."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Path as PathParam, Request

from twin.api.deps import ViewerDep, WorkspaceDep
from twin.api.errors import ApiError, error_responses
from twin.api.jsonable import jsonable
from twin.api.models import SceneDetail, SceneSummary
from twin.api.paths import ID_PATTERN

router = APIRouter(prefix="/api/scenes", tags=["scenes"], responses=error_responses(401, 403))

SceneId = Annotated[str, PathParam(pattern=ID_PATTERN, description="scene folder name")]
_info_lock = threading.Lock()


def _tiles_url(workspace: Path, scene_id: str) -> str | None:
    return (f"/tiles/scenes/{scene_id}/manifest.json"
            if (workspace / "tiles" / "scenes" / scene_id / "manifest.json").is_file() else None)


def _summary(workspace: Path, folder: Path) -> SceneSummary | None:
    try:
        head = json.loads((folder / "scene.json").read_text())
    except (OSError, ValueError):
        return None
    counts = {k: int(v) for k, v in (head.get("counts") or {}).items() if isinstance(v, (int, float))}
    return SceneSummary(id=folder.name, crs=head.get("crs"), counts=counts, tiles=_tiles_url(workspace, folder.name))


def scene_ids(workspace: Path) -> list[str]:
    root = workspace / "scenes"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "scene.json").is_file()
                  and not p.name.endswith(".partial"))


@router.get("", response_model=list[SceneSummary], summary="List the scenes in the workspace")
def list_scenes(workspace: WorkspaceDep, _: ViewerDep) -> list[SceneSummary]:
    out = []
    for sid in scene_ids(workspace):
        s = _summary(workspace, workspace / "scenes" / sid)
        if s is not None:
            out.append(s)
    return out


@router.get("/{scene_id}", response_model=SceneDetail, responses=error_responses(404, 422),
            summary="One scene: the `twin info --json` summary, terrain and alignment")
def get_scene(scene_id: SceneId, request: Request, workspace: WorkspaceDep, _: ViewerDep) -> SceneDetail:
    folder = workspace / "scenes" / scene_id
    head = folder / "scene.json"
    if not head.is_file():
        raise ApiError(404, f"no scene {scene_id!r} in the workspace; list them with GET /api/scenes")
    summary = _summary(workspace, folder)
    if summary is None:
        raise ApiError(500, f"scene {scene_id!r} has an unreadable scene.json", error="scene_unreadable")
    key = (str(folder), head.stat().st_mtime_ns)
    cache = request.app.state.scene_info_cache
    info = cache.get(key)
    if info is None:
        from twin.scene import Scene
        from twin.workflows import scene_info

        with _info_lock:          # one load at a time: a scene can be large
            info = cache.get(key)
            if info is None:
                info = jsonable(scene_info(Scene.load(folder)))
                cache[key] = info
    return SceneDetail(**summary.model_dump(), info=info)
