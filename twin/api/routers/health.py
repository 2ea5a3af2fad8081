"""``/api/health`` and ``/api/config``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from twin.api.deps import SettingsDep
from twin.api.models import Health, ViewerConfig

router = APIRouter(prefix="/api", tags=["health"])

MODELS = ["heavyrain", "screening", "heat"]


@router.get("/health", response_model=Health, summary="Liveness and the state of the run registry")
def health(request: Request) -> Health:
    state = request.app.state
    problems = []
    if getattr(state, "registry", None) is None:
        problems.append(f"run registry: {getattr(state, 'registry_error', 'not opened')}")
    runner = getattr(state, "runner", None)
    return Health(status="ok" if not problems else "degraded", version=state.version,
                  registry=getattr(state, "registry", None) is not None,
                  active_runs=runner.active_count() if runner is not None else 0, problems=problems)


@router.get("/config", response_model=ViewerConfig, tags=["viewer"], summary="Public settings for the viewer page")
def config(request: Request, settings: SettingsDep) -> ViewerConfig:
    cesium = request.app.state.cesium_dir
    return ViewerConfig(version=request.app.state.version, public_viewer=settings.public_viewer,
                        cesium_available=cesium is not None and (cesium / "Cesium.js").is_file(),
                        models=MODELS, max_concurrent_runs=settings.max_concurrent_runs)
