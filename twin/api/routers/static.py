"""Files: the viewer at ``/``, CesiumJS under ``/cesium/``, the workspace's 3D Tiles under ``/tiles/``.

The handlers are coroutines: :func:`twin.api.files.file_response` reads small files inline (page
cache, microseconds) and streams large ones from a thread, so no request pays for a thread hop."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from twin.api.deps import ViewerDep
from twin.api.errors import ApiError, error_responses
from twin.api.files import file_response
from twin.api.paths import confined, safe_parts

router = APIRouter(tags=["files"])
#: the viewer's catch-all, mounted after every other route
viewer_router = APIRouter(tags=["files"])

_FILE_RESPONSES = {200: {"description": "the file (gzip-encoded when accepted)", "content": {
    "application/octet-stream": {}}}, 206: {"description": "the requested byte range"},
    304: {"description": "not modified (If-None-Match matched the ETag)"},
    **error_responses(400, 401, 403, 404, 416)}


@router.head("/tiles/{path:path}", response_class=Response, include_in_schema=False)
@router.get("/tiles/{path:path}", responses=_FILE_RESPONSES, response_class=Response,
            summary="3D Tiles and manifests under WORKSPACE/tiles (also HEAD)")
async def tiles(path: str, request: Request, _: ViewerDep) -> Response:
    state = request.app.state
    root = state.settings.workspace / "tiles"
    return await file_response(request, confined(root, path), cache_control=state.settings.tile_cache_control,
                         gzip_cache=state.gzip_cache, gzip_min_bytes=state.settings.gzip_min_bytes)


@router.head("/cesium/{path:path}", response_class=Response, include_in_schema=False)
@router.get("/cesium/{path:path}", responses={**_FILE_RESPONSES, **error_responses(503)}, response_class=Response,
            summary="The CesiumJS build, served locally (also HEAD)")
async def cesium(path: str, request: Request) -> Response:
    state = request.app.state
    root = state.cesium_dir
    safe_parts(path)
    if root is None:
        raise ApiError(503, "CesiumJS is not installed: run `make npmdeps` (npm ci installs node_modules/cesium) or "
                       "set TWIN_CESIUM_DIR to a folder holding Cesium.js; looked in: "
                       + ", ".join(str(p) for p in state.cesium_candidates), error="cesium_missing")
    return await file_response(request, confined(root, path), cache_control="public, max-age=86400",
                         gzip_cache=state.gzip_cache, gzip_min_bytes=state.settings.gzip_min_bytes)


@viewer_router.api_route("/", methods=["GET", "HEAD"], response_class=Response, include_in_schema=False)
async def index(request: Request) -> Response:
    return await viewer_file("index.html", request)


@viewer_router.api_route("/{path:path}", methods=["GET", "HEAD"], response_class=Response, include_in_schema=False)
async def viewer_file(path: str, request: Request) -> Response:
    """The viewer's own files (twin/api/viewer), at the root so the page's relative URLs work."""
    state = request.app.state
    if path.startswith(("api/", "tiles/", "cesium/")) or path in ("api", "tiles", "cesium"):
        raise ApiError(404, f"nothing at {request.url.path}; the API is described at /docs and /openapi.json")
    root = state.viewer_dir
    if root is None or not (root / "index.html").is_file():
        raise ApiError(503, f"the viewer page is missing (no index.html in {root}); reinstall twin",
                       error="viewer_missing")
    return await file_response(request, confined(root, path), cache_control="no-cache", gzip_cache=state.gzip_cache,
                         gzip_min_bytes=state.settings.gzip_min_bytes)
