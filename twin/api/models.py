"""Response (and request) models of the HTTP API; they make the OpenAPI document complete."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Health", "ViewerConfig", "SceneSummary", "SceneDetail"]


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded when the run registry cannot be opened")
    version: str
    registry: bool = Field(description="the run registry is open")
    active_runs: int = Field(0, description="runs queued or running in this server's pool")
    problems: list[str] = Field(default_factory=list)


class ViewerConfig(BaseModel):
    """What the viewer page needs before it draws anything (public, no secrets)."""

    version: str
    public_viewer: bool = Field(description="reading works without a key")
    write_needs_key: bool = Field(True, description="starting runs and editing scenarios needs a planner key")
    cesium_base_url: str = "/cesium/"
    cesium_available: bool = Field(description="the CesiumJS build was found; else /cesium/ answers 503")
    tiles_base_url: str = "/tiles/"
    languages: list[str] = ["de", "en"]
    default_language: str = "de"
    models: list[str] = Field(description="models a run can include")
    max_concurrent_runs: int


class SceneSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(description="the scene folder's name under WORKSPACE/scenes")
    crs: dict[str, Any] | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="features and triangles")
    tiles: str | None = Field(None, description="URL of the scene's tiles manifest, when tiled")


class SceneDetail(SceneSummary):
    """``twin info --json`` of the scene (summary, terrain, alignment) plus its id and tiles."""

    info: dict[str, Any]
