"""Opening CityGML sources safely: gzip detection, hostile-XML refusal, byte counting."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Callable

from twin.errors import CityGMLError, HostileXMLError

GZIP_MAGIC = b"\x1f\x8b"
_PROLOG_LIMIT = 1 << 20  # the prolog (before the root start tag) may not exceed 1 MiB
_ROOT_START = re.compile(rb"<[A-Za-z_]")


class CountingReader(io.RawIOBase):
    """A read-only stream that reports the bytes consumed from the underlying (compressed) file."""

    def __init__(self, raw, on_bytes: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_bytes = on_bytes
        self._last = 0
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.error is not None:
            return 0
        try:
            data = self._raw.read(min(len(b), 1 << 16))
        except EOFError as exc:   # truncated gzip member: end the stream here, the XML parser reports the break
            self.error = exc
            data = b""
        n = len(data)
        b[:n] = data
        if self._on_bytes is not None:
            pos = self._compressed_pos()
            if pos - self._last >= 1 << 16 or n == 0:
                self._on_bytes(pos - self._last)
                self._last = pos
        return n

    def _compressed_pos(self) -> int:
        fileobj = getattr(self._raw, "fileobj", None)  # gzip.GzipFile
        try:
            return (fileobj or self._raw).tell()
        except (OSError, ValueError):
            return self._last

    def close(self) -> None:
        if self._on_bytes is not None:
            pos = self._compressed_pos()
            if pos > self._last:
                self._on_bytes(pos - self._last)
                self._last = pos
        self._raw.close()
        super().close()


class GzipStream(io.RawIOBase):
    """Streaming gzip decompression that yields every byte it can from a truncated file.

    ``gzip.GzipFile`` raises EOFError and drops the partial block of a cut-off file; zlib's
    decompressobj hands out what it decoded, so an interrupted download still imports up to the break.
    """

    def __init__(self, path) -> None:
        import zlib

        self._zlib = zlib
        self.fileobj = open(path, "rb")
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buf = b""
        self.truncated = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while not self._buf:
            raw = self.fileobj.read(1 << 16)
            if not raw:
                if not self._d.eof:
                    self.truncated = True
                self._buf = self._d.flush()
                if not self._buf:
                    return b""
                break
            self._buf = self._d.decompress(raw)
            if self._d.eof and self._d.unused_data:   # a multi-member gzip file
                rest = self._d.unused_data
                self._d = self._zlib.decompressobj(16 + self._zlib.MAX_WBITS)
                self._buf += self._d.decompress(rest)
        n = len(self._buf) if n is None or n < 0 else n
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        self.fileobj.close()
        super().close()


def is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_source(path: str | os.PathLike, on_bytes: Callable[[int], None] | None = None):
    """Open a CityGML file (plain or gzip-compressed) for streaming, after the safety check.

    Raises
    ------
    CityGMLError
        If the file does not exist or cannot be read.
    HostileXMLError
        If the document declares entities or an external DTD (XXE, entity-expansion bombs).
    """
    path = Path(path)
    if not path.exists():
        raise CityGMLError(f"{path}: no such file")
    if path.is_dir():
        raise CityGMLError(f"{path} is a directory; pass the CityGML files inside it")
    try:
        check_prolog(path)
        raw = GzipStream(path) if is_gzip(path) else open(path, "rb")
    except (OSError, EOFError) as exc:
        if isinstance(exc, HostileXMLError):
            raise
        raise CityGMLError(f"{path}: cannot be read ({exc})") from exc
    return io.BufferedReader(CountingReader(raw, on_bytes), buffer_size=1 << 20)


def check_prolog(path: Path) -> None:
    """Refuse DTDs that declare entities or load external subsets; never resolve them."""
    head = b""
    with (GzipStream(path) if is_gzip(path) else open(path, "rb")) as f:
        while len(head) < _PROLOG_LIMIT:
            try:
                chunk = f.read(65536)
            except EOFError:   # truncated gzip: check what there is; the import reports the break
                chunk = b""
            if not chunk:
                break
            head += chunk
            # the prolog ends at the first start tag that is not <? or <!
            pos = 0
            found = False
            while True:
                m = _ROOT_START.search(head, pos)
                if m is None:
                    break
                # ignore matches inside comments
                before = head[: m.start()]
                if before.count(b"<!--") > before.count(b"-->"):
                    pos = m.end()
                    continue
                found = True
                head = head[: m.start()]
                break
            if found:
                break
        else:
            raise HostileXMLError(f"{path}: the XML prolog is longer than {_PROLOG_LIMIT} bytes; refused")
    upper = head.upper()
    if b"<!ENTITY" in upper:
        raise HostileXMLError(f"{path}: the document declares XML entities (<!ENTITY ...>); entity "
                              "declarations are refused for safety (external-entity and entity-expansion "
                              "attacks). Remove the DOCTYPE from the file to import it")
    if b"<!DOCTYPE" in upper and (b"SYSTEM" in upper or b"PUBLIC" in upper or b"[" in head):
        raise HostileXMLError(f"{path}: the document has a DOCTYPE with an external or internal subset; "
                              "DTDs are refused for safety and never loaded. Remove the DOCTYPE to import it")


class SliceStream(io.RawIOBase):
    """A document assembled from byte strings and byte ranges of one file, read sequentially.

    Used to parse one chunk of a large CityGML file on its own: the original header (up to the
    first ``cityObjectMember``), a run of whole members, and the root's closing tag.
    """

    def __init__(self, path, parts) -> None:
        self._f = open(path, "rb")
        self._parts = list(parts)   # bytes, or (start, end) ranges of the file
        self._cur: bytes | tuple | None = None
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while True:
            if self._cur is None:
                if not self._parts:
                    return 0
                self._cur = self._parts.pop(0)
                self._pos = 0
                if isinstance(self._cur, tuple):
                    self._f.seek(self._cur[0])
            if isinstance(self._cur, bytes):
                data = self._cur[self._pos:self._pos + len(b)]
            else:
                start, end = self._cur
                data = self._f.read(min(len(b), end - start - self._pos))
            if not data:
                self._cur = None
                continue
            self._pos += len(data)
            b[:len(data)] = data
            return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()
