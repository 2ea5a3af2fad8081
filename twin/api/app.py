"""``create_app(settings)``: the FastAPI application over one workspace."""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from twin.api.errors import install_error_handlers
from twin.api.files import GzipCache
from twin.api.middleware import BodyLimitMiddleware
from twin.api.runner import DEFAULT_TARGET
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
    n_marked = marked if isinstance(marked, int) else len(marked or ())
    app.state.interrupted_at_start = n_marked
    try:
        statuses = [getattr(r, "status", None) for r in registry.list()]
    except Exception:
        statuses = []
    log.info("run registry %s: %d run(s), %d done, %d marked interrupted by the last shutdown",
             settings.workspace, len(statuses), statuses.count("done"), n_marked)


def _open_owners(workspace: Path):
    from twin.api.owners import Owners

    try:
        return Owners(workspace)
    except (sqlite3.Error, OSError) as exc:
        log.warning("cannot write %s/api.sqlite (%s): ownership is kept in memory", workspace, exc)
        return Owners(None)


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
            from twin.api.runner import RunManager

            runner = RunManager(settings, app.state.registry, target=app.state.run_target)
        app.state.runner = runner
        try:
            yield
        finally:
            if runner is not None:
                import anyio

                await anyio.to_thread.run_sync(runner.shutdown)
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
    state.run_target = DEFAULT_TARGET     # what the pool executes; tests swap it like a dependency override
    state.interrupted_at_start = 0
    state.scene_info_cache = {}
    state.buildings_cache = {}
    state.compare_cache = {}
    state.start_lock = threading.Lock()
    state.owners = _open_owners(settings.workspace)
    state.body_formatters = []
    state.gzip_cache = GzipCache()
    state.cesium_candidates = cesium_candidates(settings)
    state.cesium_dir = next((p for p in state.cesium_candidates if (p / "Cesium.js").is_file()), None)
    state.viewer_dir = settings.viewer_dir or _VIEWER

    install_error_handlers(app)
    from twin.api.routers import admin, compare, health, runs, scenarios, scenes, sensors, static

    app.include_router(static.router)          # first: tiles are most of the requests
    for module in (health, scenes, scenarios, runs, compare, sensors, admin):
        app.include_router(module.router)
    app.include_router(static.viewer_router)   # last: its catch-all serves the viewer's files
    state.body_formatters.append(("/api/scenarios", scenarios.scenario_problems))

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["ETag", "Content-Range", "Content-Length",
                                                                "Location"],
                           allow_credentials="*" not in settings.cors_origins)
    return app
