"""``/api/runs``: start a run of a scenario (202), follow it (record, Server-Sent Events), cancel it,
and read its per-building results. Runs execute in the server's process pool (:mod:`twin.api.runner`)
and are recorded in the workspace's run registry."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import operator
import re
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Path as PathParam, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from twin.api.deps import PlannerDep, RegistryDep, SettingsDep, ViewerDep, WorkspaceDep, may_change
from twin.api.errors import ApiError, error_responses
from twin.api.jsonable import jsonable
from twin.api.paths import ID_PATTERN
from twin.api.runner import TERMINAL

router = APIRouter(prefix="/api/runs", tags=["runs"], responses=error_responses(401, 403))

RunId = Annotated[str, PathParam(pattern=ID_PATTERN, description="run id")]
Status = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
ModelName = Literal["heavyrain", "screening", "heat"]


class RunLinks(BaseModel):
    self: str
    events: str = Field(description="Server-Sent Events: progress, snapshots, end")
    buildings: str = Field(description="per-building results (GeoJSON or CSV)")
    tiles: str | None = Field(None, description="the run's 3D Tiles manifest, once written")


class RunOut(BaseModel):
    """A run as the registry records it."""

    id: str
    scenario_id: str | None = None
    scenario_hash: str | None = None
    models: list[str] = Field(default_factory=list)
    status: Status
    progress: float = Field(0.0, ge=0, le=1)
    message: str | None = None
    created: str | None = Field(None, description="ISO 8601 UTC")
    started: str | None = None
    finished: str | None = None
    timings: dict[str, Any] | None = Field(None, description="seconds per step")
    water_balance: dict[str, Any] | None = Field(None, description="heavy-rain volumes (m3) and closure")
    inputs: dict[str, Any] | None = Field(None, description="hashes of the inputs (scene files, grid)")
    version: str | None = Field(None, description="twin version that made it")
    error: str | None = None
    cancel_requested: bool = False
    owner: str | None = Field(None, description="who started it through the API")
    reused: bool = Field(False, description="(POST) an earlier identical run was returned instead of a new one")
    links: RunLinks


class RunList(BaseModel):
    items: list[RunOut]
    total: int


class RunRequest(BaseModel):
    scenario: str = Field(pattern=ID_PATTERN, description="id of a scenario under /api/scenarios")
    models: list[ModelName] | None = Field(None, min_length=1, description="default: the scenario's models")
    reuse: bool = Field(True, description="return a finished run of the identical scenario and inputs instead of "
                                          "running again")


# ------------------------------------------------------------------------------------------ records
def record_dict(rec) -> dict:
    if rec is None:
        return {}
    if hasattr(rec, "model_dump"):
        d = rec.model_dump()
    elif dataclasses.is_dataclass(rec):
        d = dataclasses.asdict(rec)
    elif isinstance(rec, dict):
        d = dict(rec)
    else:
        d = dict(vars(rec))
    return jsonable(d)


def get_record(registry, run_id: str):
    try:
        rec = registry.get(run_id)
    except (KeyError, LookupError, ValueError):
        rec = None
    if rec is None:
        raise ApiError(404, f"no run {run_id!r}; list them with GET /api/runs")
    return rec


def run_out(workspace: Path, d: dict, owner: str | None, *, reused: bool = False) -> RunOut:
    rid = d["id"]
    manifest = workspace / "tiles" / "runs" / rid / "manifest.json"
    fields = {k: d.get(k) for k in RunOut.model_fields if k in d and k not in ("links", "owner", "reused")}
    fields["models"] = list(fields.get("models") or [])
    fields["progress"] = min(max(float(fields.get("progress") or 0.0), 0.0), 1.0)
    fields["cancel_requested"] = bool(fields.get("cancel_requested"))
    for k in ("timings", "water_balance", "inputs"):
        if isinstance(fields.get(k), str):
            try:
                fields[k] = json.loads(fields[k])
            except ValueError:
                fields[k] = {"value": fields[k]}
    return RunOut(**fields, owner=owner, reused=reused, links=RunLinks(
        self=f"/api/runs/{rid}", events=f"/api/runs/{rid}/events", buildings=f"/api/runs/{rid}/buildings",
        tiles=f"/tiles/runs/{rid}/manifest.json" if manifest.is_file() else None))


def _owners(request: Request):
    return request.app.state.owners


def _runner(request: Request):
    runner = request.app.state.runner
    if runner is None:
        raise ApiError(503, "this server cannot execute runs (no run registry or process pool); see GET /api/health",
                       error="unavailable")
    return runner


# ------------------------------------------------------------------------------------------ routes
@router.get("", response_model=RunList, summary="List runs, newest first")
def list_runs(request: Request, workspace: WorkspaceDep, registry: RegistryDep, _: ViewerDep,
              status: Annotated[Status | None, Query(description="only runs with this status")] = None,
              scenario: Annotated[str | None, Query(pattern=ID_PATTERN, description="only runs of this scenario")] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              offset: Annotated[int, Query(ge=0)] = 0) -> RunList:
    owners = _owners(request).many("run")
    recs = [record_dict(r) for r in registry.list(status=status, scenario_id=scenario)]   # newest first
    page = recs[offset:offset + limit]
    return RunList(items=[run_out(workspace, r, owners.get(r["id"])) for r in page], total=len(recs))


@router.get("/{run_id}", response_model=RunOut, responses=error_responses(404, 422),
            summary="One run: status, progress, timings, water balance")
def get_run(run_id: RunId, request: Request, workspace: WorkspaceDep, registry: RegistryDep, _: ViewerDep) -> RunOut:
    d = record_dict(get_record(registry, run_id))
    return run_out(workspace, d, _owners(request).get("run", run_id))


@router.post("", response_model=RunOut, status_code=202, responses={
    200: {"model": RunOut, "description": "an identical finished run was reused (reuse=true)"},
    **error_responses(404, 409, 413, 422, 429, 503)},
    summary="Start a run of a scenario (202 with its id; follow it at /api/runs/{id}/events)")
def start_run(body: RunRequest, request: Request, workspace: WorkspaceDep, settings: SettingsDep,
              registry: RegistryDep, principal: PlannerDep) -> Response:
    from twin.api.routers.scenarios import read_scenario

    runner = _runner(request)
    scenario = read_scenario(workspace, body.scenario)
    if not (workspace / "scenes" / scenario.scene / "scene.json").is_file():
        raise ApiError(409, f"scenario {body.scenario!r} needs scene {scenario.scene!r}, which is not in the "
                       "workspace; import it with `twin import ... --out WORKSPACE/scenes/" + scenario.scene + "`",
                       error="conflict")
    if body.models is not None:
        missing = [m for m in body.models if m == "heavyrain" and scenario.forcing.rain is None
                   or m == "heat" and scenario.forcing.heat is None]
        if missing:
            raise ApiError(422, f"model(s) {missing} need forcing the scenario lacks (heavyrain: forcing.rain, "
                           "heat: forcing.heat)", detail=[{"field": "models", "message": "forcing missing",
                                                            "type": "value_error"}])
    if runner.active_count() >= settings.max_queued_runs:
        raise ApiError(429, f"{runner.active_count()} runs are queued or running (at most {settings.max_queued_runs}); "
                       "try again when one has finished", headers={"Retry-After": "30"})
    from twin.workflows.run import run_scenario

    with request.app.state.start_lock:   # two identical requests at once register one run
        rec = run_scenario(workspace, scenario, models=body.models, reuse=body.reuse, register_only=True)
        d = record_dict(rec)
        reused = d.get("status") == "done"
        if not reused:
            _owners(request).set("run", d["id"], principal.name)
            runner.submit(d["id"])
    out = run_out(workspace, record_dict(registry.get(d["id"])) or d,
                  _owners(request).get("run", d["id"]), reused=reused)
    return JSONResponse(out.model_dump(mode="json"), status_code=200 if reused else 202,
                        headers={"Location": out.links.self})


@router.delete("/{run_id}", response_model=RunOut, status_code=202, responses=error_responses(404, 409, 422),
               summary="Cancel a queued or running run")
def cancel_run(run_id: RunId, request: Request, workspace: WorkspaceDep, registry: RegistryDep,
               principal: PlannerDep) -> RunOut:
    d = record_dict(get_record(registry, run_id))
    owner = _owners(request).get("run", run_id)
    may_change(principal, owner, f"run {run_id!r}")
    if d.get("status") in TERMINAL:
        raise ApiError(409, f"run {run_id!r} is already {d.get('status')}; nothing to cancel", error="conflict")
    runner = request.app.state.runner
    if runner is not None and runner.is_active(run_id):
        runner.cancel(run_id)
    else:        # queued in a pool that is gone (another server process): the flag is all we can set
        registry.request_cancel(run_id)
    return run_out(workspace, record_dict(registry.get(run_id)), owner)


# ------------------------------------------------------------------------------------------ events
def _sse(event: str, data: dict, seq: int) -> bytes:
    return f"id: {seq}\nevent: {event}\ndata: {json.dumps(jsonable(data), separators=(',', ':'))}\n\n".encode()


def _snapshots(workspace: Path, run_id: str) -> list[dict]:
    """Snapshots listed in the run's tiles manifest, with tileset URLs under /tiles."""
    path = workspace / "tiles" / "runs" / run_id / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    base = f"/tiles/runs/{run_id}/"
    out = []
    for run in manifest.get("runs") or []:
        for snap in run.get("snapshots") or []:
            layers = [{**layer, "url": base + layer["tileset"]} for layer in snap.get("layers") or []
                      if isinstance(layer, dict) and isinstance(layer.get("tileset"), str)]
            out.append({"layer_run": run.get("id"), "index": snap.get("index"), "time_s": snap.get("time_s"),
                        "layers": layers, "manifest": base + "manifest.json"})
    return out


@router.get("/{run_id}/events", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {}}, "description": "events `progress` {status, progress, message}, "
          "`snapshot` {layer_run, index, time_s, layers[].url}, `end` (the final run record); the stream closes "
          "after `end`"}, **error_responses(404, 422)},
    summary="Follow a run: Server-Sent Events until it ends")
async def run_events(run_id: RunId, request: Request, workspace: WorkspaceDep, settings: SettingsDep,
                     registry: RegistryDep, _: ViewerDep) -> StreamingResponse:
    first = await anyio.to_thread.run_sync(get_record, registry, run_id)
    owner = _owners(request).get("run", run_id)
    poll = settings.sse_poll_s

    async def stream():
        seq = 0
        last = None
        seen: set = set()
        beat = time.monotonic()
        rec = first
        yield b"retry: 2000\n\n"
        while True:
            d = record_dict(rec)
            key = (d.get("status"), d.get("progress"), d.get("message"))
            if key != last:
                last = key
                seq += 1
                yield _sse("progress", {"id": run_id, "status": d.get("status"), "progress": d.get("progress") or 0.0,
                                        "message": d.get("message")}, seq)
            for snap in await anyio.to_thread.run_sync(_snapshots, workspace, run_id):
                k = (snap["layer_run"], snap["index"])
                if k not in seen:
                    seen.add(k)
                    seq += 1
                    yield _sse("snapshot", snap, seq)
            if d.get("status") in TERMINAL:
                seq += 1
                yield _sse("end", run_out(workspace, d, owner).model_dump(mode="json"), seq)
                return
            if time.monotonic() - beat > 15:
                beat = time.monotonic()
                yield b": keep-alive\n\n"
            await asyncio.sleep(poll)
            rec = await anyio.to_thread.run_sync(get_record, registry, run_id)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# ------------------------------------------------------------------------------------------ buildings
_OPS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
        "=": operator.eq}
_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\[\]-]*)\s*(>=|<=|!=|>|<|=)\s*(.+?)\s*$")
_cache_lock = threading.Lock()


def _buildings_table(request: Request, workspace: Path, run_id: str):
    folder = workspace / "runs" / run_id
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.parquet"))) if folder.is_dir() else ()
    key = (run_id, stamp)
    cache = request.app.state.buildings_cache
    with _cache_lock:
        hit = cache.get(key)
    if hit is not None:
        return hit
    from twin.workflows.run import building_results

    gdf = building_results(workspace, run_id)
    with _cache_lock:
        if len(cache) >= 8:
            cache.pop(next(iter(cache)))
        cache[key] = gdf
    return gdf


@router.get("/{run_id}/buildings", responses={
    200: {"description": "GeoJSON FeatureCollection (EPSG:4326 footprints) or CSV (lon/lat of a point inside "
          "each footprint)", "content": {"application/geo+json": {}, "text/csv": {}}},
    **error_responses(404, 409, 422)}, response_class=Response,
    summary="Per-building results of a run, filtered and sorted")
def run_buildings(run_id: RunId, request: Request, workspace: WorkspaceDep, registry: RegistryDep, _: ViewerDep,
                  format: Annotated[Literal["geojson", "csv"], Query(description="GeoJSON or CSV")] = "geojson",
                  filter: Annotated[list[str], Query(description="conditions `column OP value` (OP: = != < <= > >=), "
                                                     "all must hold; e.g. `heavyrain_max_depth_m>0.3`")] = [],
                  gml_id: Annotated[list[str], Query(description="only these buildings")] = [],
                  sort: Annotated[str | None, Query(description="column to sort by")] = None,
                  order: Annotated[Literal["asc", "desc"], Query()] = "desc",
                  limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
                  offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    import pandas as pd

    d = record_dict(get_record(registry, run_id))
    if d.get("status") != "done":
        raise ApiError(409, f"run {run_id!r} is {d.get('status')}; per-building results exist once it is done",
                       error="conflict")
    gdf = _buildings_table(request, workspace, run_id)
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    mask = pd.Series(True, index=gdf.index)
    for cond in filter:
        m = _FILTER.match(cond)
        if not m:
            raise ApiError(422, f"filter {cond!r} is not `column OP value` (OP one of = != < <= > >=)",
                           detail=[{"field": "filter", "message": "bad condition", "type": "value_error"}])
        col, op, raw = m.groups()
        if col not in columns:
            raise ApiError(422, f"filter column {col!r} is unknown; columns: {columns}",
                           detail=[{"field": "filter", "message": f"unknown column {col}", "type": "value_error"}])
        series = gdf[col]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            try:
                value: Any = float(raw)
            except ValueError:
                raise ApiError(422, f"filter {cond!r}: column {col!r} is numeric, {raw!r} is not a number",
                               detail=[{"field": "filter", "message": "not a number", "type": "value_error"}]) from None
        elif pd.api.types.is_bool_dtype(series):
            value = raw.strip().lower() in ("1", "true", "yes")
        else:
            value = raw
            series = series.astype("string")
        mask &= _OPS[op](series, value).fillna(False).astype(bool)
    if gml_id:
        key = gdf["gml_id"] if "gml_id" in gdf.columns else pd.Series(gdf.index.astype(str), index=gdf.index)
        mask &= key.isin(gml_id)
    sel = gdf[mask.to_numpy()]
    if sort is not None:
        if sort not in columns:
            raise ApiError(422, f"sort column {sort!r} is unknown; columns: {columns}",
                           detail=[{"field": "sort", "message": "unknown column", "type": "value_error"}])
        sel = sel.sort_values(sort, ascending=order == "asc", na_position="last", kind="stable")
    total = len(sel)
    sel = sel.iloc[offset: None if limit is None else offset + limit]
    headers = {"X-Total-Count": str(total)}
    if format == "csv":
        pts = sel.geometry.representative_point() if len(sel) else None
        table = pd.DataFrame(sel.drop(columns=sel.geometry.name))
        if "gml_id" not in table.columns:
            table.insert(0, "gml_id", sel.index.astype(str))
        table["lon"] = pts.x.round(7).to_numpy() if pts is not None else []
        table["lat"] = pts.y.round(7).to_numpy() if pts is not None else []
        buf = io.StringIO()
        table.to_csv(buf, index=False)
        headers["Content-Disposition"] = f'attachment; filename="{run_id}-buildings.csv"'
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    fc = jsonable(sel.to_geo_dict(drop_id=True) if hasattr(sel, "to_geo_dict") else json.loads(sel.to_json()))
    fc["numberMatched"] = total
    fc["numberReturned"] = len(sel)
    return JSONResponse(fc, media_type="application/geo+json", headers=headers)
