"""``/api/compare?runs=a,b``: indicators and per-building changes between runs
(:func:`twin.workflows.compare_runs`; the first run is the reference)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from twin.api.deps import ViewerDep, WorkspaceDep
from twin.api.errors import ApiError, error_responses
from twin.api.jsonable import jsonable

router = APIRouter(prefix="/api/compare", tags=["compare"], responses=error_responses(401, 403))

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_lock = threading.Lock()


class Indicator(BaseModel):
    key: str
    label: str | None = None
    unit: str | None = None
    values: dict[str, float | int | None] = Field(description="per run id")
    delta: dict[str, float | int | None] = Field(description="run minus reference, per run id but the reference")


class CompareRun(BaseModel):
    id: str
    label: str | None = None
    models: list[str] = Field(default_factory=list)


class ComparisonOut(BaseModel):
    reference: str = Field(description="the first run; every other run is compared with it")
    runs: list[CompareRun]
    indicators: list[Indicator]
    buildings: list[dict[str, Any]] | None = Field(None, description="per-building changes (with buildings=true)")
    notes: list[str] = Field(default_factory=list)


def _parse_runs(text: str) -> list[str]:
    ids = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in ids if not _ID.match(t)]
    if bad:
        raise ApiError(422, f"invalid run id(s) {bad}: use 1-64 letters, digits, '_' or '-'",
                       detail=[{"field": "runs", "message": "invalid run id", "type": "value_error"}])
    if len(ids) < 2:
        raise ApiError(422, "a comparison needs at least two run ids: runs=REFERENCE,OTHER",
                       detail=[{"field": "runs", "message": "at least two run ids", "type": "value_error"}])
    if len(set(ids)) != len(ids):
        raise ApiError(422, "the same run appears twice in runs", detail=[{"field": "runs", "message": "duplicate",
                                                                          "type": "value_error"}])
    return ids


def _stamp(workspace: Path, rid: str) -> tuple:
    folder = workspace / "runs" / rid
    try:
        return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        return ()


@router.get("", response_model=ComparisonOut, responses=error_responses(404, 409, 422, 501),
            summary="Compare runs: indicators (flooded area, exposure, retained volume, heat stress) and buildings")
def compare(request: Request, workspace: WorkspaceDep, _: ViewerDep,
            runs: Annotated[str, Query(description="comma-separated run ids; the first is the reference",
                                       examples=["baseline-run,adaptation-run"])],
            buildings: Annotated[bool, Query(description="include the per-building change table")] = False,
            ) -> ComparisonOut:
    ids = _parse_runs(runs)
    missing = [r for r in ids if not (workspace / "runs" / r).is_dir()]
    if missing:
        raise ApiError(404, f"no run {', '.join(map(repr, missing))} in the workspace; list them with GET /api/runs")
    try:
        from twin.workflows import compare_runs
    except ImportError as exc:
        raise ApiError(501, f"run comparison is not available in this version of twin ({exc})",
                       error="not_implemented") from exc
    key = (tuple(ids), tuple(_stamp(workspace, r) for r in ids))
    cache = request.app.state.compare_cache
    with _lock:              # one comparison at a time; results are cached until a run folder changes
        result = cache.get(key)
        if result is None:
            result = jsonable(compare_runs(workspace, ids).to_dict())
            if len(cache) > 16:
                cache.pop(next(iter(cache)))
            cache[key] = result
    out = dict(result)
    if not buildings:
        out["buildings"] = None
    out["runs"] = [{"id": r["id"], "label": r.get("label"), "models": r.get("models") or []} for r in result["runs"]]
    return ComparisonOut(**out)
