"""``create_app(settings)``: the FastAPI application over one workspace."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from twin.api.errors import install_error_handlers
from twin.api.files import GzipCache
from twin.api.middleware import BodyLimitMiddleware
from twin.api.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("twin.api")

_REPO = Path(__file__).resolve().parents[2]
_VIEWER = Path(__file__).resolve().parent / "viewer"

_DESCRIPTION = """\
The twin digital twin over one workspace: scenes, scenarios, simulation runs with their progress and
results, sensor readings, and the 3D Tiles the viewer draws.

Access: reading needs the *viewer* role (public unless the server says otherwise), scenarios and runs
the *planner* role, deleting what others made the *admin* role. Send an API key as `X-API-Key` or a
token as `Authorization: Bearer ...`. Every error is `{"error": code, "message": text, "detail"?: ...}`.
"""


def cesium_candidates(settings: Settings) -> list[Path]:
    if settings.cesium_dir is not None:
        return [settings.cesium_dir]
    rel = Path("node_modules") / "cesium" / "Build" / "Cesium"
    out = [_REPO / rel, Path.cwd() / rel]
    out += [p / rel for p in settings.workspace.parents[:3]]
    seen, unique = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("twin")
    except PackageNotFoundError:
        return "unknown"


def _open_registry(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    try:
        from twin.workflows.registry import RunRegistry
    except ImportError as exc:
        app.state.registry_error = f"twin.workflows.registry is not available ({exc})"
        return
    try:
        registry = RunRegistry(settings.workspace)
        marked = registry.mark_interrupted()
    except Exception as exc:      # a broken registry must not stop the viewer and the tiles from being served
        log.exception("cannot open the run registry in %s", settings.workspace)
        app.state.registry_error = f"{type(exc).__name__}: {exc}"
        return
    app.state.registry = registry
    app.state.interrupted_at_start = marked
    if marked:
        log.warning("marked %s run(s) interrupted by the last shutdown", marked if isinstance(marked, int)
                    else len(marked))


def create_app(settings: Settings | None = None, **overrides) -> FastAPI:
    """The API and viewer over ``settings.workspace``.

    ``settings`` defaults to :class:`Settings` read from ``TWIN_*`` environment variables; keyword
    ``overrides`` replace single fields (``create_app(workspace="ws")``).
    """
    if settings is None:
        settings = Settings(**overrides)
    elif overrides:
        settings = settings.model_copy(update=overrides)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        _open_registry(app)
        runner = None
        if app.state.registry is not None:
            try:
                from twin.api.runner import RunManager
            except ModuleNotFoundError:
                RunManager = None
            if RunManager is not None:
                runner = RunManager(settings, app.state.registry)
        app.state.runner = runner
        try:
            yield
        finally:
            if runner is not None:
                runner.shutdown()
            app.state.runner = None

    version = _version()
    app = FastAPI(title="twin", version=version, description=_DESCRIPTION, lifespan=lifespan,
                  openapi_tags=[{"name": n, "description": d} for n, d in (
                      ("health", "liveness and server state"), ("viewer", "settings for the viewer page"),
                      ("scenes", "imported city models"), ("scenarios", "edits, forcing and models to run"),
                      ("runs", "simulation runs: start, follow, cancel, results"),
                      ("compare", "differences between runs"), ("sensors", "live sensor readings"),
                      ("files", "3D Tiles and the CesiumJS build"))])
    state = app.state
    state.settings = settings
    state.version = version
    state.registry = None
    state.registry_error = "not opened yet (the server has not started)"
    state.runner = None
    state.interrupted_at_start = 0
    state.scene_info_cache = {}
    state.gzip_cache = GzipCache()
    state.cesium_candidates = cesium_candidates(settings)
    state.cesium_dir = next((p for p in state.cesium_candidates if (p / "Cesium.js").is_file()), None)
    state.viewer_dir = settings.viewer_dir or _VIEWER

    install_error_handlers(app)
    from twin.api.routers import health, scenes, static

    for module in (health, scenes):
        app.include_router(module.router)
    _include_optional(app)
    app.include_router(static.router)   # last: its catch-all serves the viewer's files

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["ETag", "Content-Range", "Content-Length",
                                                                "Location"],
                           allow_credentials="*" not in settings.cors_origins)
    return app


def _include_optional(app: FastAPI) -> None:
    """Routers built later in the issue; absent modules are simply not mounted yet."""
    import importlib

    for name in ("scenarios", "runs", "compare", "sensors", "admin"):
        try:
            module = importlib.import_module(f"twin.api.routers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"twin.api.routers.{name}":
                continue
            raise
        app.include_router(module.router)
