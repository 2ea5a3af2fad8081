"""``twin serve WORKSPACE [--host 127.0.0.1] [--port 8000]``: the API and the offline viewer (uvicorn)."""

from __future__ import annotations

import argparse
import os
import sys


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="serve the HTTP API and the 3D viewer for a workspace",
                       description="Serve WORKSPACE (scenes/, scenarios/, runs/, tiles/) over HTTP: the API under "
                                   "/api (OpenAPI at /docs) and the offline CesiumJS viewer at /. Keys, tokens, "
                                   "CORS and limits come from TWIN_* environment variables (see twin.api.Settings).")
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument("--max-concurrent-runs", type=int, metavar="N", help="runs executed at once (TWIN_MAX_CONCURRENT_RUNS, 1)")
    p.add_argument("--private", action="store_true", help="reading needs a key too (TWIN_PUBLIC_VIEWER=false)")
    p.add_argument("--no-session-key", action="store_true",
                   help="do not create a planner key for this session when no planner/admin keys are configured")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import uvicorn
    from pydantic import ValidationError

    from twin.api import Settings, create_app
    from twin.errors import TwinValueError

    workspace = Path(args.workspace)
    if not workspace.is_dir():
        raise TwinValueError(f"{workspace} is not a folder; create a workspace with `twin import ... --out "
                             f"{workspace}/scenes/NAME` first")
    overrides: dict = {"workspace": workspace}
    if args.max_concurrent_runs is not None:
        overrides["max_concurrent_runs"] = args.max_concurrent_runs
    if args.private:
        overrides["public_viewer"] = False
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise TwinValueError(f"invalid server settings (TWIN_* environment): {exc}") from exc
    session_key = None
    if not any(c.role.rank >= 1 for c in settings.api_keys + settings.tokens) and not args.no_session_key:
        # like a notebook server's token: a random planner key valid while this server runs
        import secrets

        from twin.api.settings import Credential

        session_key = secrets.token_urlsafe(18)
        settings = settings.model_copy(update={"api_keys": [*settings.api_keys, Credential(
            name="session", key=session_key, role="planner")]})
    app = create_app(settings)
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}/"
    print(f"twin serve: {workspace.resolve()} at {url} (API docs at {url}docs)", flush=True)
    if session_key:
        print(f"twin serve: planner key for this session: {session_key}\n"
              "  (enter it in the viewer to start runs, or send it as X-API-Key; configure lasting keys with "
              "TWIN_API_KEYS)", flush=True)
    if app.state.cesium_dir is None:
        print("twin serve: warning: CesiumJS not found (run `make npmdeps` or set TWIN_CESIUM_DIR); the viewer "
              "page cannot draw", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5,
                access_log=os.environ.get("TWIN_ACCESS_LOG", "0") == "1")
    return 0
