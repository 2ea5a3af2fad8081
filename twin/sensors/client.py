"""OGC SensorThings API 1.1 client on httpx: retries with backoff and jitter, a circuit breaker,
``@iot.nextLink`` paging that treats links as opaque and detects loops.

Reference: OGC 18-088 (SensorThings API Part 1: Sensing, version 1.1).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import urljoin

import httpx

from twin.sensors.errors import CircuitOpenError, PagingError, SensorServerError

__all__ = ["RetryPolicy", "CircuitBreaker", "SensorThingsClient", "Page"]

log = logging.getLogger("twin.sensors")

_RETRY_STATUS = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt ``k`` waits ``uniform(0, min(cap_s, base_s * 2**k))``
    seconds (at least ``min_s``); a 429/503 ``Retry-After`` header is honoured up to ``cap_s``."""

    max_attempts: int = 6
    base_s: float = 0.25
    cap_s: float = 8.0
    min_s: float = 0.05

    def delay(self, attempt: int, rng: random.Random) -> float:
        return max(self.min_s, rng.uniform(0.0, min(self.cap_s, self.base_s * (2 ** attempt))))


@dataclass
class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failed requests; while open, calls fail fast with
    :class:`CircuitOpenError`; after ``reset_s`` one trial call is let through (half-open) and its
    outcome closes or re-opens the circuit."""

    failure_threshold: int = 12
    reset_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    times_opened: int = 0

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.reset_s else "open"

    def before_call(self, url: str) -> None:
        if self.state == "open":
            wait = self.reset_s - (self.clock() - self.opened_at)
            raise CircuitOpenError(
                f"circuit open for {url}: {self.failures} consecutive failures; calls refused for another "
                f"{wait:.1f} s. Fix: check that the server is up, then retry the command")

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half-open" or self.failures >= self.failure_threshold:
            if self.opened_at is None or self.state == "half-open":
                self.times_opened += 1
            self.opened_at = self.clock()


@dataclass
class Page:
    """One collection response: its entities, the next link as sent (None at the end) and the URL read."""

    value: list
    next_link: str | None
    url: str


@dataclass
class _Stats:
    requests: int = 0
    retries: int = 0
    failures: dict = field(default_factory=dict)


class SensorThingsClient:
    """A SensorThings API 1.1 client.

    Parameters
    ----------
    root : str
        Service root, e.g. ``http://host/FROST-Server/v1.1`` (``/v1.1`` is appended when the URL has
        no version segment).
    timeout_s : float
        Per-request timeout (connect, read, write, pool), seconds.
    retry, breaker
        Retry policy and circuit breaker (defaults: 6 attempts, 12 failures to open).
    max_pages : int
        Page cap of one collection read (loop guard beyond link repetition).
    transport, seed
        An httpx transport (tests) and the seed of the jitter.
    """

    def __init__(self, root: str, *, timeout_s: float = 30.0, retry: RetryPolicy | None = None,
                 breaker: CircuitBreaker | None = None, max_pages: int = 100_000,
                 transport: httpx.BaseTransport | None = None, seed: int | None = None,
                 sleep: Callable[[float], None] = time.sleep, headers: dict | None = None):
        root = root.rstrip("/")
        if not root.startswith(("http://", "https://")):
            from twin.errors import TwinValueError

            raise TwinValueError(f"SensorThings root {root!r} is not an http(s) URL; fix: give e.g. "
                                 "--url http://host:8080/FROST-Server/v1.1")
        if not root.rsplit("/", 1)[-1].startswith("v1."):
            root = root + "/v1.1"
        self.root = root
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self.max_pages = max_pages
        self.stats = _Stats()
        self._rng = random.Random(seed)
        self._sleep = sleep
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s), transport=transport, follow_redirects=True,
                                  headers={"Accept": "application/json", **(headers or {})})

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- one request -------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.root}/{path.lstrip('/')}"

    def get_json(self, url: str, params: dict | None = None):
        """GET ``url`` (absolute, or a path under the root) as JSON with retries and the circuit breaker."""
        url = self.url(url)
        last: str = ""
        for attempt in range(self.retry.max_attempts):
            self.breaker.before_call(url)
            self.stats.requests += 1
            retry_after = None
            try:
                resp = self._http.get(url, params=params)
            except httpx.TimeoutException as exc:
                last, kind = f"timeout ({type(exc).__name__})", "timeout"
            except httpx.TransportError as exc:
                last, kind = f"connection failed ({exc})", "connection"
            else:
                if resp.status_code < 400:
                    try:
                        data = resp.json()
                    except ValueError:
                        last, kind = f"HTTP {resp.status_code} with a body that is not JSON: {resp.text[:200]!r}", \
                            "bad_json"
                    else:
                        self.breaker.success()
                        return data
                elif resp.status_code in _RETRY_STATUS:
                    last, kind = f"HTTP {resp.status_code}: {_error_text(resp)}", str(resp.status_code)
                    retry_after = _retry_after(resp)
                else:
                    self.breaker.success()  # the server works; the request is wrong: no retry
                    raise SensorServerError(f"GET {resp.request.url} answered HTTP {resp.status_code}: "
                                            f"{_error_text(resp)}; fix: check the URL, ids and query options")
            self.stats.failures[kind] = self.stats.failures.get(kind, 0) + 1
            self.breaker.failure()
            if attempt + 1 < self.retry.max_attempts:
                self.stats.retries += 1
                wait = self.retry.delay(attempt, self._rng)
                if retry_after is not None:
                    wait = max(wait, min(retry_after, self.retry.cap_s))
                log.info("GET %s failed (%s); retry %d in %.2f s", url, last, attempt + 1, wait)
                self._sleep(wait)
        raise SensorServerError(f"GET {url} failed {self.retry.max_attempts} times, last: {last}; fix: check "
                                "that the server is reachable, or raise the retry limit")

    # -- collections -----------------------------------------------------------------------------------
    def pages(self, path: str, params: dict | None = None) -> Iterator[Page]:
        """Pages of a collection, following ``@iot.nextLink`` verbatim until it is absent.

        The next link is resolved against the URL it came from (so relative links work) and sent as
        given (raw spaces are percent-encoded by httpx, keyset parameters untouched). ``@iot.count`` is
        ignored. A link seen before, or more than ``max_pages`` pages, raises :class:`PagingError`
        after the pages read so far were yielded.
        """
        url, query = self.url(path), params
        seen: set[str] = {str(httpx.URL(url, params=query))}
        ids: set = set()
        pages_without_new = 0
        for n in range(self.max_pages):
            data = self.get_json(url, query)
            if not isinstance(data, dict) or not isinstance(data.get("value"), list):
                raise SensorServerError(f"GET {url} did not return a collection ({{'value': [...]}}): "
                                        f"{str(data)[:200]!r}; fix: check the path")
            nxt = data.get("@iot.nextLink")
            page_ids = {str(e["@iot.id"]) for e in data["value"] if isinstance(e, dict) and "@iot.id" in e}
            if page_ids and page_ids <= ids:
                pages_without_new += 1
            else:
                pages_without_new = 0
            ids |= page_ids
            yield Page(data["value"], nxt if isinstance(nxt, str) and nxt else None, url)
            if not isinstance(nxt, str) or not nxt:
                return
            absolute = urljoin(url if query is None else str(httpx.URL(url, params=query)), nxt)
            if absolute in seen:
                raise PagingError(f"@iot.nextLink loop: {nxt!r} was already followed after page {n + 1}; "
                                  "the server's paging is broken, the read stopped there")
            if pages_without_new >= 3:
                raise PagingError(f"@iot.nextLink loop: {pages_without_new} pages in a row brought no new "
                                  f"@iot.id (last link {nxt!r}); the read stopped there")
            seen.add(absolute)
            url, query = absolute, None
        raise PagingError(f"{path}: more than {self.max_pages} pages; fix: narrow the query or raise max_pages")

    def entities(self, path: str, params: dict | None = None) -> Iterator[dict]:
        for page in self.pages(path, params):
            yield from page.value

    # -- discovery -------------------------------------------------------------------------------------
    def observed_properties(self, *, page_size: int = 100) -> list[dict]:
        return _unique(self.entities("ObservedProperties", {"$top": str(page_size)}))

    def datastreams_of(self, observed_property_id, *, page_size: int = 100) -> list[dict]:
        """Datastreams of one ObservedProperty (``ObservedProperties(<id>)/Datastreams``)."""
        return _unique(self.entities(f"ObservedProperties({quote_id(observed_property_id)})/Datastreams",
                                     {"$top": str(page_size)}))

    def things_with_locations(self, *, page_size: int = 100) -> list[dict]:
        """Things with their Locations and the ids of their Datastreams (to-many expansions only: some
        servers, django-ogc-sensorthings 1.2 among them, expand a to-one relation of a collection wrongly)."""
        return _unique(self.entities("Things", {"$expand": "Locations,Datastreams($select=id)",
                                                "$top": str(page_size)}))


def _unique(entities) -> list[dict]:
    out, ids = [], set()
    for e in entities:
        key = str(e.get("@iot.id"))
        if key not in ids:
            ids.add(key)
            out.append(e)
    return out


def _error_text(resp: httpx.Response) -> str:
    """The message of an error body: FROST {code,type,message}, django-ninja {detail}, NGSI-LD ProblemDetails,
    NGSI-v2 {error,description}; otherwise the start of the raw body."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict):
        for key in ("message", "detail", "description", "title", "error"):
            if key in body:
                return str(body[key])[:300]
    return str(body)[:200]


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def quote_id(iot_id) -> str:
    """``@iot.id`` as it appears in a resource path: numbers bare, strings quoted (``'a''b'`` escaped)."""
    if isinstance(iot_id, int) or (isinstance(iot_id, str) and iot_id.isdigit()):
        return str(iot_id)
    return "'" + str(iot_id).replace("'", "''") + "'"
