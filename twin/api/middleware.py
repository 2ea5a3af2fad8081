"""ASGI middleware: request body size limit (413 before the body is read when Content-Length says so,
and while reading when a chunked body grows past the limit)."""

from __future__ import annotations

import json

from twin.api.errors import ApiError

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _reply(send, 400, "bad_request", "Content-Length is not a number")
        if declared is not None and declared > limit:
            return await _reply(send, 413, "payload_too_large",
                                f"the request body has {declared} bytes; this server accepts at most {limit}")
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # raised inside the route's body read, so the app's handlers turn it into JSON
                    raise ApiError(413, f"the request body exceeds the {limit} bytes this server accepts")
            return message

        await self.app(scope, limited_receive, send)


async def _reply(send, status: int, error: str, message: str) -> None:
    body = json.dumps({"error": error, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
