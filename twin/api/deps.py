"""Dependencies: settings, the caller's identity and role, the run registry and the sensor store.

Routes declare what they need as ``Annotated[..., Depends(...)]`` aliases (``SettingsDep``,
``ViewerDep``, ``PlannerDep``, ``AdminDep``, ``RegistryDep``); tests swap any of them with
``app.dependency_overrides``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Iterator

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from twin.api.errors import ApiError
from twin.api.settings import Credential, Role, Settings

__all__ = ["AdminDep", "PlannerDep", "Principal", "RegistryDep", "SettingsDep", "ViewerDep", "WorkspaceDep",
           "get_principal", "get_registry", "get_settings", "may_change", "require", "sensor_store"]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_workspace(settings: SettingsDep) -> Path:
    return settings.workspace


WorkspaceDep = Annotated[Path, Depends(get_workspace)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a credential's name and role, or the anonymous public viewer."""

    name: str
    role: Role
    anonymous: bool = False

    def can(self, role: Role) -> bool:
        return self.role.rank >= role.rank

    @property
    def can_admin(self) -> bool:
        return self.role is Role.admin


_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key from the server settings")
_bearer = HTTPBearer(auto_error=False, description="a bearer token from the server settings")


def _find(creds: list[Credential], secret: str) -> Credential | None:
    found = None
    given = secret.encode()
    for c in creds:   # compare against all, in constant time each, so timing reveals nothing
        if hmac.compare_digest(c.key.get_secret_value().encode(), given):
            found = c
    return found


async def get_principal(settings: SettingsDep, api_key: Annotated[str | None, Security(_api_key)] = None,
                  bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None) -> Principal:
    challenge = {"WWW-Authenticate": 'Bearer realm="twin"'}
    if api_key:
        cred = _find(settings.api_keys, api_key)
        if cred is None:
            raise ApiError(401, "the X-API-Key is not known to this server", headers=challenge)
        return Principal(cred.name, cred.role)
    if bearer is not None:
        cred = _find(settings.tokens, bearer.credentials)
        if cred is None:
            raise ApiError(401, "the bearer token is not known to this server", headers=challenge)
        return Principal(cred.name, cred.role)
    if settings.public_viewer:
        return Principal("anonymous", Role.viewer, anonymous=True)
    raise ApiError(401, "this server needs an API key (X-API-Key header) or a bearer token (Authorization: "
                   "Bearer ...)", headers=challenge)


def require(role: Role):
    """A dependency that lets through callers holding ``role`` or a higher one."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.can(role):
            who = "anonymous callers" if principal.anonymous else f"{principal.name} ({principal.role.value})"
            if principal.anonymous:
                raise ApiError(401, f"{role.value} access needed; {who} may not do this: send an API key "
                               "(X-API-Key) or a bearer token", headers={"WWW-Authenticate": 'Bearer realm="twin"'})
            raise ApiError(403, f"{role.value} access needed; {who} may not do this")
        return principal

    check.__name__ = f"require_{role.value}"
    return check


# (the dependencies above do no I/O, so they are coroutines: FastAPI would run plain functions in a
# worker thread, a hop that costs more than the check itself)
def may_change(principal: Principal, owner: str | None, what: str) -> None:
    """Planners change what they made through the API; admins change anything (403 otherwise)."""
    if principal.can_admin or owner == principal.name:
        return
    whose = f"{owner}'s" if owner else "made outside the API, so only an admin may change it"
    raise ApiError(403, f"{what} is {whose}; {principal.name} ({principal.role.value}) may change only their own")


ViewerDep = Annotated[Principal, Depends(require(Role.viewer))]
PlannerDep = Annotated[Principal, Depends(require(Role.planner))]
AdminDep = Annotated[Principal, Depends(require(Role.admin))]


async def get_registry(request: Request):
    """The workspace's run registry (``twin.workflows.registry.RunRegistry``), opened at start-up."""
    registry = getattr(request.app.state, "registry", None)
    if registry is None:
        raise ApiError(503, "the run registry is not available on this server: "
                       + getattr(request.app.state, "registry_error", "not opened"), error="unavailable")
    return registry


RegistryDep = Annotated[object, Depends(get_registry)]


def sensor_store(workspace: WorkspaceDep) -> Iterator[object | None]:
    """The workspace's sensor store, or None where ``sensors.sqlite`` does not exist (never created here)."""
    path = workspace / "sensors.sqlite"
    if not path.is_file():
        yield None
        return
    from twin.sensors.store import open_store

    store = open_store(path)
    try:
        yield store
    finally:
        store.close()
