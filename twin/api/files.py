"""Static files with validators and ranges: strong ETags, ``If-None-Match`` (304), ``Cache-Control``,
gzip by ``Accept-Encoding`` (a precompressed ``.gz`` sibling when there is one, else compressed once and
cached), and single ``Range: bytes=`` requests (206, 416).

Small files are read on the event loop (they come from the page cache in microseconds; a thread hop
would cost more than the read); larger ones stream from a worker thread.
"""

from __future__ import annotations

import gzip
import mimetypes
import os
import stat as stat_mod
import threading
from collections import OrderedDict
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from twin.api.errors import ApiError

__all__ = ["GzipCache", "file_response"]

_TYPES = {".glb": "model/gltf-binary", ".gltf": "model/gltf+json", ".json": "application/json",
          ".b3dm": "application/octet-stream", ".i3dm": "application/octet-stream",
          ".pnts": "application/octet-stream", ".subtree": "application/octet-stream", ".ktx2": "image/ktx2",
          ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".wasm": "application/wasm",
          ".html": "text/html", ".svg": "image/svg+xml", ".geojson": "application/geo+json",
          ".csv": "text/csv", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
          ".webp": "image/webp", ".xml": "application/xml", ".txt": "text/plain", ".md": "text/markdown"}
_TEXT = ("text/", "application/json", "application/javascript", "application/xml", "image/svg+xml",
         "application/geo+json", "model/gltf+json")
# worth compressing: text and the binary tile formats (glb with quantised attributes shrinks ~30-60 %)
_COMPRESSIBLE = _TEXT + ("model/gltf-binary", "application/octet-stream", "application/wasm")
_INLINE_MAX = 512 * 1024


def media_type(path: Path) -> str:
    t = _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{t}; charset=utf-8" if t.startswith(_TEXT) and "charset" not in t else t


class GzipCache:
    """Compressed bodies keyed by (path, ETag), least recently used out beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = 128 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key, data: bytes) -> None:
        if len(data) > self.max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._items[key] = data
            self._size += len(data)
            while self._size > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)


def _etag(st: os.stat_result) -> str:
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        token, _, params = part.strip().partition(";")
        if token.strip().lower() in ("gzip", "*"):
            q = params.strip()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def _matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` range -> inclusive (start, end); None = ignore the header (serve 200);
    raises 416 when it cannot be satisfied."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None                      # other units and multipart ranges: the full body (RFC 9110 allows it)
    first, sep, last = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                raise ValueError
            start, end = max(size - n, 0), size - 1
        else:
            start = int(first)
            end = int(last) if last else max(size - 1, start)
            if start < 0 or end < start:
                return None
    except ValueError:
        return None
    if start >= size:
        raise ApiError(416, f"range {header!r} starts beyond the file's {size} bytes",
                       headers={"Content-Range": f"bytes */{size}"})
    return start, min(end, size - 1)


def _read(path: Path, start: int = 0, length: int | None = None) -> bytes:
    with open(path, "rb") as f:
        if start:
            f.seek(start)
        return f.read() if length is None else f.read(length)


async def file_response(request: Request, path: Path, *, cache_control: str, gzip_cache: GzipCache | None = None,
                        gzip_min_bytes: int = 1024) -> Response:
    """The response for a GET/HEAD of ``path`` (already confined to its folder)."""
    try:
        st = path.stat()
    except OSError:
        st = None
    if st is None or not stat_mod.S_ISREG(st.st_mode):
        raise ApiError(404, f"no file at {request.url.path}")
    size = st.st_size
    etag = _etag(st)
    mtype = media_type(path)
    headers = {"Cache-Control": cache_control, "Accept-Ranges": "bytes", "Vary": "Accept-Encoding"}
    head = request.method == "HEAD"
    range_header = request.headers.get("range")
    if range_header and (if_range := request.headers.get("if-range")) is not None and if_range.strip() != etag:
        range_header = None              # the client's copy is stale: send the whole current file

    use_gzip = (not range_header and size >= gzip_min_bytes and mtype.startswith(_COMPRESSIBLE)
                and _accepts_gzip(request.headers.get("accept-encoding", "")))
    if use_gzip:
        etag = etag[:-1] + '-gz"'
    headers["ETag"] = etag
    inm = request.headers.get("if-none-match")
    if inm is not None and _matches(inm, etag):
        return Response(status_code=304, headers=headers)

    if use_gzip:
        key = (str(path), etag)
        body = gzip_cache.get(key) if gzip_cache is not None else None
        if body is None:        # compress once, off the event loop; later requests hit the cache
            body = await anyio.to_thread.run_sync(_gzip_body, path, st, etag, gzip_cache)
        headers.update({"Content-Encoding": "gzip", "Content-Length": str(len(body))})
        return Response(b"" if head else body, media_type=mtype, headers=headers)

    span = _parse_range(range_header, size) if range_header else None
    if span is not None:
        start, end = span
        length = end - start + 1
        headers.update({"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(length)})
        if head:
            body = b""
        elif length <= _INLINE_MAX:
            body = _read(path, start, length)
        else:
            body = await anyio.to_thread.run_sync(_read, path, start, length)
        return Response(body, status_code=206, media_type=mtype, headers=headers)
    if head or size <= _INLINE_MAX:
        headers["Content-Length"] = str(size)
        return Response(b"" if head else _read(path), media_type=mtype, headers=headers)
    # larger files stream in chunks from a worker thread
    return FileResponse(path, media_type=mtype, headers=headers, stat_result=st)


def _gzip_body(path: Path, st: os.stat_result, etag: str, cache: GzipCache | None) -> bytes:
    key = (str(path), etag)
    sibling = path.with_name(path.name + ".gz")
    try:
        gst = sibling.stat()
        body = _read(sibling) if gst.st_mtime_ns >= st.st_mtime_ns else None
    except OSError:
        body = None
    if body is None:
        body = gzip.compress(_read(path), compresslevel=6, mtime=0)
    if cache is not None:
        cache.put(key, body)
    return body
