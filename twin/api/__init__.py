"""The HTTP API and the offline viewer: ``create_app(settings)`` (FastAPI) over one workspace.

Serve it with ``twin serve WORKSPACE`` or any ASGI server::

    from twin.api import Settings, create_app
    app = create_app(Settings(workspace="workspace"))
"""

from __future__ import annotations

__all__ = ["Settings", "create_app"]


def __getattr__(name):          # keep ``import twin.api`` cheap: FastAPI loads on first use
    if name == "create_app":
        from twin.api.app import create_app

        return create_app
    if name == "Settings":
        from twin.api.settings import Settings

        return Settings
    raise AttributeError(f"module 'twin.api' has no attribute {name!r}")
