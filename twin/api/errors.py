"""One error shape for every failure: ``{"error": code, "message": text, "detail"?: ...}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from twin.errors import TwinError, TwinIOError, TwinValueError

__all__ = ["ApiError", "ErrorBody", "install_error_handlers", "error_responses"]

log = logging.getLogger("twin.api")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
          416: "range_not_satisfiable", 422: "validation_error", 429: "too_many_requests",
          500: "internal_error", 501: "not_implemented", 503: "unavailable"}


class ErrorBody(BaseModel):
    """What every 4xx/5xx response carries."""

    error: str = Field(description="a stable machine-readable code, e.g. not_found, validation_error")
    message: str = Field(description="what went wrong and how to fix it, for people")
    detail: Any | None = Field(None, description="structured detail, e.g. the invalid fields of a 422")


class ApiError(StarletteHTTPException):
    """An HTTP error with the project's JSON body."""

    def __init__(self, status_code: int, message: str, *, error: str | None = None, detail: Any = None,
                 headers: dict[str, str] | None = None):
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.error = error or _CODES.get(status_code, "error")
        self.message = message
        self.extra = detail


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses=`` entries with the error model for the given status codes."""
    return {c: {"model": ErrorBody, "description": _CODES.get(c, "error").replace("_", " ")} for c in codes}


def _body(status: int, error: str, message: str, detail: Any = None) -> dict:
    out = {"error": error, "message": message}
    if detail is not None:
        out["detail"] = detail
    return out


def _json(status: int, error: str, message: str, detail: Any = None, headers=None) -> JSONResponse:
    return JSONResponse(_body(status, error, message, detail), status_code=status, headers=headers)


def _loc(loc) -> str:
    """``("body", "edits", 0, "depth")`` -> ``edits[0].depth``; query/path/header parameters keep their place."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out or "body"


async def _http_error(request: Request, exc: StarletteHTTPException):
    if isinstance(exc, ApiError):
        return _json(exc.status_code, exc.error, exc.message, exc.extra, exc.headers)
    status = exc.status_code
    if status == 404:
        message = f"nothing at {request.url.path}; the API is described at /docs and /openapi.json"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail) if exc.detail else _CODES.get(status, "error").replace("_", " ")
    return _json(status, _CODES.get(status, "error"), message, None, getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError):
    raw = list(exc.errors())
    errors = [{"field": _loc(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")} for e in raw]
    bad_json = [r for r in raw if r.get("type") == "json_invalid"]
    if bad_json:
        r = bad_json[0]
        why = (r.get("ctx") or {}).get("error") or r.get("msg", "")
        pos = r.get("loc", ("body", None))[-1]
        where = f" at character {pos}" if isinstance(pos, int) else ""
        return _json(422, "invalid_json", f"the request body is not valid JSON: {why}{where}",
                     [{"field": "body", "message": f"{why}{where}", "type": "json_invalid"}])
    body_errors = [e for e, r in zip(errors, raw) if tuple(r.get("loc", ()))[:1] == ("body",)]
    body = getattr(exc, "body", None)
    if body_errors and isinstance(body, dict):
        # a resource may word its body's problems better (scenarios: edits by index, no union branch names)
        for prefix, formatter in getattr(request.app.state, "body_formatters", ()):
            if request.url.path.startswith(prefix):
                better = formatter(body)
                if better:
                    errors = [e for e in errors if e not in body_errors] + better
                break
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return _json(422, "validation_error", f"invalid request: {summary}{more}", errors)


async def _twin_error(request: Request, exc: TwinError):
    if isinstance(exc, TwinValueError):
        return _json(422, "invalid_value", str(exc))
    if isinstance(exc, (FileNotFoundError,)):
        return _json(404, "not_found", str(exc))
    if isinstance(exc, TwinIOError):
        return _json(409, "io_error", str(exc))
    return _json(400, "twin_error", str(exc))


async def _unexpected(request: Request, exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json(500, "internal_error", f"the server failed on {request.method} {request.url.path}: "
                 f"{type(exc).__name__}; the server log has the traceback")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(TwinError, _twin_error)
    app.add_exception_handler(Exception, _unexpected)
