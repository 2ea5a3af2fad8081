"""``/api/scenarios``: scenario JSON files (``WORKSPACE/scenarios/<id>.json``), validated against
:class:`twin.scenario.Scenario`. Planners create them and change their own; admins change anyone's."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path as PathParam, Request, Response
from pydantic import BaseModel, Field

from twin.api.deps import PlannerDep, ViewerDep, WorkspaceDep, may_change
from twin.api.errors import ApiError, error_responses
from twin.api.paths import ID_PATTERN
from twin.scenario import Scenario, ScenarioError, load_scenario, scenario_hash
from twin.scenario import scenario_id as slug

router = APIRouter(prefix="/api/scenarios", tags=["scenarios"], responses=error_responses(401, 403))

ScenarioId = Annotated[str, PathParam(pattern=ID_PATTERN, description="scenario id (slug of its name)")]


class ScenarioItem(BaseModel):
    id: str = Field(description="file name under WORKSPACE/scenarios without .json")
    name: str
    scene: str
    description: str = ""
    models: list[str]
    hash: str = Field(description="SHA-256 of the canonical JSON (equal for scenarios that give equal results)")
    owner: str | None = Field(None, description="who created it through the API (none: made outside it)")
    url: str


class ScenarioOut(ScenarioItem):
    scenario: dict[str, Any] = Field(description="the scenario as stored (twin.scenario.Scenario JSON)")


class ScenarioProblem(BaseModel):
    id: str
    message: str


class ScenarioList(BaseModel):
    items: list[ScenarioItem]
    invalid: list[ScenarioProblem] = Field(default_factory=list, description="files that do not validate")


def _folder(workspace: Path) -> Path:
    return workspace / "scenarios"


def _item(sid: str, sc: Scenario, owner: str | None) -> ScenarioItem:
    return ScenarioItem(id=sid, name=sc.name, scene=sc.scene, description=sc.description, models=list(sc.models),
                        hash=scenario_hash(sc), owner=owner, url=f"/api/scenarios/{sid}")


def _out(sid: str, sc: Scenario, owner: str | None) -> ScenarioOut:
    return ScenarioOut(**_item(sid, sc, owner).model_dump(), scenario=sc.model_dump(mode="json"))


def read_scenario(workspace: Path, sid: str) -> Scenario:
    path = _folder(workspace) / f"{sid}.json"
    if not path.is_file():
        raise ApiError(404, f"no scenario {sid!r}; list them with GET /api/scenarios")
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        raise ApiError(409, f"the stored scenario {sid!r} is no longer valid: {exc}", error="invalid_stored_scenario",
                       detail=getattr(exc, "problems", None)) from exc


def _write(workspace: Path, sid: str, sc: Scenario) -> None:
    folder = _folder(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sid}.json"
    tmp = folder / f".{sid}.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(sc.model_dump(mode="json", exclude_defaults=False), indent=2, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)   # readers never see half a file


def _check_scene(workspace: Path, sc: Scenario) -> None:
    if not (workspace / "scenes" / sc.scene / "scene.json").is_file():
        raise ApiError(422, f"scene {sc.scene!r} does not exist in the workspace; list them with GET /api/scenes",
                       error="validation_error", detail=[{"field": "scene", "message": "unknown scene",
                                                          "type": "unknown_scene"}])


@router.get("", response_model=ScenarioList, summary="List the scenarios")
def list_scenarios(request: Request, workspace: WorkspaceDep, _: ViewerDep) -> ScenarioList:
    folder = _folder(workspace)
    owners = request.app.state.owners.many("scenario") if request.app.state.owners else {}
    items, invalid = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        sid = path.stem
        if sid.startswith("."):
            continue
        try:
            sc = load_scenario(path)
        except Exception as exc:   # a broken file is listed as such, never a 500 for the whole list
            invalid.append(ScenarioProblem(id=sid, message=str(exc)))
            continue
        items.append(_item(sid, sc, owners.get(sid)))
    return ScenarioList(items=items, invalid=invalid)


@router.get("/{scenario_id}", response_model=ScenarioOut, responses=error_responses(404, 409, 422),
            summary="One scenario")
def get_scenario(scenario_id: ScenarioId, request: Request, workspace: WorkspaceDep, _: ViewerDep) -> ScenarioOut:
    sc = read_scenario(workspace, scenario_id)
    owners = request.app.state.owners
    return _out(scenario_id, sc, owners.get("scenario", scenario_id) if owners else None)


@router.post("", response_model=ScenarioOut, status_code=201, responses=error_responses(409, 413, 422),
             summary="Create a scenario (its id is the slug of its name)")
def create_scenario(scenario: Annotated[Scenario, Body()], request: Request, response: Response,
                    workspace: WorkspaceDep, principal: PlannerDep) -> ScenarioOut:
    _check_scene(workspace, scenario)
    sid = slug(scenario.name)
    path = _folder(workspace) / f"{sid}.json"
    if path.exists():
        raise ApiError(409, f"scenario {sid!r} exists; change it with PUT /api/scenarios/{sid} or choose another name",
                       error="conflict")
    _write(workspace, sid, scenario)
    request.app.state.owners.set("scenario", sid, principal.name)
    response.headers["Location"] = f"/api/scenarios/{sid}"
    return _out(sid, scenario, principal.name)


@router.put("/{scenario_id}", response_model=ScenarioOut, responses=error_responses(404, 413, 422),
            summary="Replace a scenario (or create it under this id)")
def replace_scenario(scenario_id: ScenarioId, scenario: Annotated[Scenario, Body()], request: Request,
                     response: Response, workspace: WorkspaceDep, principal: PlannerDep) -> ScenarioOut:
    _check_scene(workspace, scenario)
    if slug(scenario.name) != scenario_id:
        raise ApiError(422, f"a scenario's id is the slug of its name: {scenario.name!r} gives "
                       f"{slug(scenario.name)!r}, not {scenario_id!r}; rename it or PUT to "
                       f"/api/scenarios/{slug(scenario.name)}",
                       detail=[{"field": "name", "message": "does not match the id in the path", "type": "value_error"}])
    owners = request.app.state.owners
    exists = (_folder(workspace) / f"{scenario_id}.json").is_file()
    owner = owners.get("scenario", scenario_id)
    if exists:
        may_change(principal, owner, f"scenario {scenario_id!r}")
    _write(workspace, scenario_id, scenario)
    if not exists:
        owners.set("scenario", scenario_id, principal.name)
        owner = principal.name
        response.status_code = 201
        response.headers["Location"] = f"/api/scenarios/{scenario_id}"
    return _out(scenario_id, scenario, owner)


@router.delete("/{scenario_id}", status_code=204, response_class=Response, responses=error_responses(404, 422),
               summary="Delete a scenario (its runs stay)")
def delete_scenario(scenario_id: ScenarioId, request: Request, workspace: WorkspaceDep,
                    principal: PlannerDep) -> Response:
    path = _folder(workspace) / f"{scenario_id}.json"
    if not path.is_file():
        raise ApiError(404, f"no scenario {scenario_id!r}; list them with GET /api/scenarios")
    owners = request.app.state.owners
    may_change(principal, owners.get("scenario", scenario_id), f"scenario {scenario_id!r}")
    path.unlink()
    owners.delete("scenario", scenario_id)
    return Response(status_code=204)


def scenario_problems(body: dict) -> list[dict] | None:
    """``body_formatters`` hook: the schema's own wording of a scenario's problems."""
    from twin.scenario import parse_scenario

    try:
        parse_scenario(body)
    except ScenarioError as exc:
        return [{"field": p.get("loc", ""), "message": p.get("msg", ""), "type": p.get("type", "")}
                for p in exc.problems] or None
    except Exception:
        return None
    return None
