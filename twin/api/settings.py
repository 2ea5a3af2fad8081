"""Server settings (pydantic-settings): from keyword arguments, ``TWIN_*`` environment variables or a
``.env`` file, in that order of precedence.

Lists and mappings come from the environment as JSON, e.g.::

    TWIN_WORKSPACE=/srv/twin
    TWIN_API_KEYS='[{"name": "anna", "key": "s3cret-planner-key", "role": "planner"}]'
    TWIN_TOKENS='[{"name": "ops", "key": "long-bearer-token", "role": "admin"}]'
    TWIN_PUBLIC_VIEWER=false
    TWIN_CORS_ORIGINS='["https://geo.example.org"]'
"""

from __future__ import annotations

import enum
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Credential", "Role", "Settings"]


class Role(str, enum.Enum):
    """Access levels, each including the ones before it: viewer (read), planner (scenarios and runs),
    admin (delete what others made, read the settings)."""

    viewer = "viewer"
    planner = "planner"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.viewer: 0, Role.planner: 1, Role.admin: 2}


class Credential(BaseModel):
    """One API key (``X-API-Key`` header) or bearer token (``Authorization: Bearer ...``)."""

    name: str = Field(min_length=1, max_length=64, description="who holds it; recorded as the owner of what they create")
    key: SecretStr = Field(description="the secret itself (at least 16 characters)")
    role: Role = Role.viewer

    @field_validator("key")
    @classmethod
    def _long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 16:
            raise ValueError("a key or token needs at least 16 characters; generate one with "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`")
        return v


class Settings(BaseSettings):
    """Everything ``create_app`` needs. ``workspace`` is required; the rest has safe defaults
    (read-only public viewer, no keys: nobody may write until keys or tokens are configured)."""

    model_config = SettingsConfigDict(env_prefix="TWIN_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")

    workspace: Path = Field(description="the workspace folder (scenes/, scenarios/, runs/, tiles/, registry.sqlite)")
    api_keys: list[Credential] = Field(default_factory=list, description="keys accepted in the X-API-Key header")
    tokens: list[Credential] = Field(default_factory=list, description="tokens accepted as Authorization: Bearer")
    public_viewer: bool = Field(True, description="read access (viewer role) without a key")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS ('*' for any)")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body accepted (413 above)")
    max_concurrent_runs: int = Field(1, ge=1, le=64, description="runs executed at once (process pool size)")
    max_queued_runs: int = Field(16, ge=1, le=10_000, description="runs queued or running at once (429 above)")
    cesium_dir: Path | None = Field(None, description="CesiumJS build folder (default: node_modules/cesium/Build/"
                                                      "Cesium beside the workspace or the twin checkout)")
    viewer_dir: Path | None = Field(None, description="viewer files (default: twin/api/viewer)")
    tile_cache_control: str = Field("public, max-age=60, must-revalidate", description="Cache-Control of /tiles")
    gzip_min_bytes: int = Field(1024, ge=0, description="smallest response compressed on the fly")
    sse_poll_s: float = Field(0.5, gt=0, le=10, description="how often the event stream polls the registry")

    @field_validator("workspace", "cesium_dir", "viewer_dir")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        return None if v is None else Path(v).expanduser().resolve()
