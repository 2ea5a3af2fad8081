"""``/api/settings`` (admin): the server's effective settings, secrets left out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from twin.api.deps import AdminDep, SettingsDep
from twin.api.errors import error_responses

router = APIRouter(prefix="/api/settings", tags=["admin"], responses=error_responses(401, 403))


class CredentialInfo(BaseModel):
    name: str
    role: str
    kind: str = Field(description="api_key or token")


class SettingsOut(BaseModel):
    settings: dict[str, Any] = Field(description="every setting but the keys and tokens")
    credentials: list[CredentialInfo] = Field(description="names and roles only, never the secrets")
    cesium_dir: str | None
    registry: bool
    interrupted_at_start: int


@router.get("", response_model=SettingsOut, summary="The server's settings (secrets left out)")
def get_settings_route(request: Request, settings: SettingsDep, _: AdminDep) -> SettingsOut:
    data = settings.model_dump(mode="json", exclude={"api_keys", "tokens"})
    creds = [CredentialInfo(name=c.name, role=c.role.value, kind="api_key") for c in settings.api_keys]
    creds += [CredentialInfo(name=c.name, role=c.role.value, kind="token") for c in settings.tokens]
    state = request.app.state
    marked = state.interrupted_at_start
    return SettingsOut(settings=data, credentials=creds,
                       cesium_dir=str(state.cesium_dir) if state.cesium_dir else None,
                       registry=state.registry is not None,
                       interrupted_at_start=marked if isinstance(marked, int) else len(marked or ()))
