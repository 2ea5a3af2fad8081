"""Robust ingest from a SensorThings server into a :class:`~twin.sensors.store.ReadingStore`.

Per Datastream: read ``Observations`` with ``$filter=phenomenonTime ge <start>`` where ``start`` is the
high-water mark minus a lookback window (late data), page through every ``@iot.nextLink``, convert
units, reject non-numeric results (counted, stored in ``rejected``), flag future timestamps, and store
idempotently. The high-water mark advances only after the Datastream was read to its end, so an
interrupted sync re-reads from the old mark and the store's key removes the overlap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from twin.sensors._model import (FLAG_FUTURE, PROPERTIES, ParseStats, classify_property, now_us, parse_instant_us,
                                 parse_observation, us_to_iso)
from twin.sensors.client import SensorThingsClient, quote_id
from twin.sensors.errors import SensorServerError, UnitError
from twin.sensors.store import ReadingStore
from twin.sensors.units import Conversion, conversion_for

__all__ = ["DatastreamInfo", "SyncReport", "discover", "sync", "sync_datastreams", "ingest_observations"]

log = logging.getLogger("twin.sensors")
_US = 1_000_000


@dataclass
class DatastreamInfo:
    """A Datastream selected for ingest, with its conversion and store id."""

    iot_id: str
    name: str
    property: str
    conversion: Conversion
    thing: str | None = None
    lon: float | None = None
    lat: float | None = None
    ds: int | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass
class SyncReport:
    """What one sync did: per-datastream and total counts, datastreams skipped (unit, property) or
    left incomplete (server errors, paging loops) with the reason."""

    stats: ParseStats = field(default_factory=ParseStats)
    per_datastream: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    incomplete: dict = field(default_factory=dict)
    pages: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.incomplete

    def to_dict(self) -> dict:
        return {"ok": self.ok, **self.stats.to_dict(), "pages": self.pages, "seconds": round(self.seconds, 3),
                "datastreams": len(self.per_datastream), "skipped": self.skipped, "incomplete": self.incomplete,
                "per_datastream": {k: v.to_dict() for k, v in self.per_datastream.items()}}


def _location(thing: dict | None) -> tuple[float | None, float | None]:
    for loc in (thing or {}).get("Locations") or []:
        geo = loc.get("location") or {}
        if geo.get("type") == "Feature":
            geo = geo.get("geometry") or {}
        coords = geo.get("coordinates")
        if geo.get("type") == "Point" and isinstance(coords, (list, tuple)) and len(coords) >= 2:
            return float(coords[0]), float(coords[1])
    return None, None


def discover(client: SensorThingsClient, *, properties: Sequence[str] | None = None,
             bbox_wgs84: tuple[float, float, float, float] | None = None,
             report: SyncReport | None = None) -> list[DatastreamInfo]:
    """Datastreams of the wanted properties inside ``bbox_wgs84`` ``(lon_min, lat_min, lon_max, lat_max)``.

    The ObservedProperty's name/definition decides the property; the Thing's Location decides the place
    (filtered here, not by a server geo filter, which many servers lack). A Datastream whose unit is not
    in the conversion table is skipped with the reason in ``report.skipped``.
    """
    wanted = set(properties or PROPERTIES)
    unknown = wanted - set(PROPERTIES)
    if unknown:
        from twin.errors import TwinValueError

        raise TwinValueError(f"unknown properties {sorted(unknown)}; fix: choose from {sorted(PROPERTIES)}")
    # Discovery by ObservedProperty, then place by Thing -> Locations; both without to-one $expand
    things: dict[str, tuple[dict, float | None, float | None]] = {}
    for th in client.things_with_locations():
        lon, lat = _location(th)
        for ds in th.get("Datastreams") or []:
            things[str(ds.get("@iot.id"))] = (th, lon, lat)
    out = []
    for op in client.observed_properties():
        prop = classify_property(op.get("name"), op.get("definition"), op.get("description"))
        if prop is None or prop not in wanted:
            continue
        for ds in client.datastreams_of(op.get("@iot.id")):
            iot_id = str(ds.get("@iot.id"))
            th, lon, lat = things.get(iot_id, ({}, None, None))
            if bbox_wgs84 is not None:
                if lon is None or not (bbox_wgs84[0] <= lon <= bbox_wgs84[2]
                                       and bbox_wgs84[1] <= lat <= bbox_wgs84[3]):
                    continue
            ds = dict(ds, Thing=th, ObservedProperty=op)
            info = _info(ds, iot_id, prop, lon, lat, report)
            if info is not None:
                out.append(info)
    return out


def _info(ds: dict, iot_id: str, prop: str, lon, lat, report) -> DatastreamInfo | None:
    try:
        conv = conversion_for(ds.get("unitOfMeasurement"), datastream=f"{iot_id} ({ds.get('name')})")
    except UnitError as exc:
        log.warning("%s", exc)
        if report is not None:
            report.skipped[iot_id] = str(exc)
        return None
    if conv.canonical not in PROPERTIES[prop][1]:
        msg = (f"Datastream {iot_id} ({ds.get('name')}): unit {conv.source!r} does not fit property {prop}; "
               "fix: correct unitOfMeasurement or ObservedProperty on the server")
        log.warning("%s", msg)
        if report is not None:
            report.skipped[iot_id] = msg
        return None
    thing = ds.get("Thing") or {}
    return DatastreamInfo(iot_id=iot_id, name=str(ds.get("name")), property=prop, conversion=conv,
                          thing=thing.get("name"), lon=lon, lat=lat, raw=ds)


def register(store: ReadingStore, source: str, info: DatastreamInfo) -> int:
    """Register a discovered Datastream in the store; sets and returns ``info.ds``."""
    thing_props = (info.raw.get("Thing") or {}).get("properties") or {}
    info.ds = store.upsert_datastream(
        source=source, iot_id=info.iot_id, name=info.name, property=info.property, unit=info.conversion.canonical,
        unit_source=info.conversion.source, thing=info.thing, lon=info.lon, lat=info.lat,
        meta={"observationType": info.raw.get("observationType"), "thing_properties": thing_props,
              "scale": info.conversion.scale, "offset": info.conversion.offset})
    return info.ds


def ingest_observations(store: ReadingStore, info: DatastreamInfo, observations: Iterable[dict], *,
                        future_tolerance_s: float = 300.0, now: int | None = None,
                        seen: set | None = None) -> tuple[ParseStats, int | None]:
    """Parse, convert and store Observations of one Datastream. Returns the counts and the newest
    phenomenon end stored among readings that are not flagged as future."""
    stats = ParseStats()
    limit = (now if now is not None else now_us()) + int(future_tolerance_s * _US)
    rows, rejects = [], []
    newest = None
    for obs in observations:
        stats.received += 1
        iot_id = obs.get("@iot.id")
        if seen is not None and iot_id is not None:
            key = str(iot_id)
            if key in seen:
                stats.duplicates += 1
                continue
            seen.add(key)
        row, reason, raw_time = parse_observation(obs, info.conversion, future_limit_us=limit)
        if row is None:
            stats.reject(reason)
            rejects.append((raw_time, reason, repr(obs.get("result"))[:200]))
            continue
        if row[4] & FLAG_FUTURE:
            stats.flagged_future += 1
        elif newest is None or row[1] > newest:
            newest = row[1]
        rows.append(row)
    new = store.insert(info.ds, rows)
    stats.inserted = new
    stats.duplicates += len(rows) - new
    store.reject(info.ds, rejects)
    return stats, newest


def sync_datastreams(client: SensorThingsClient, store: ReadingStore, infos: Sequence[DatastreamInfo], *,
                     since: str | None = None, lookback_s: float = 3600.0, page_size: int = 100,
                     future_tolerance_s: float = 300.0, report: SyncReport | None = None,
                     deadline_s: float | None = None) -> SyncReport:
    """Read new Observations of already discovered Datastreams (used by :func:`sync` and after every MQTT
    reconnect). ``since`` bounds the first read of a Datastream without a high-water mark."""
    report = report or SyncReport()
    t_begin = time.monotonic()
    source = client.root
    since_us = parse_instant_us(since) if since else None
    for info in infos:
        if info.ds is None:
            register(store, source, info)
        if deadline_s is not None and time.monotonic() - t_begin > deadline_s:
            report.incomplete[info.iot_id] = "deadline reached before this datastream"
            continue
        hwm = store.hwm(info.ds)
        start = None if hwm is None else hwm - int(lookback_s * _US)
        if since_us is not None and (start is None or since_us > start):
            start = since_us
        params = {"$top": str(page_size)}
        if start is not None:
            params["$filter"] = f"phenomenonTime ge {us_to_iso(start)}"
        path = f"Datastreams({quote_id(info.iot_id)})/Observations"
        ds_stats = report.per_datastream.setdefault(info.iot_id, ParseStats())
        newest, seen = None, set()
        now = now_us()
        try:
            for page in client.pages(path, params):
                report.pages += 1
                st, nw = ingest_observations(store, info, page.value, future_tolerance_s=future_tolerance_s,
                                             now=now, seen=seen)
                ds_stats.add(st)
                report.stats.add(st)
                if nw is not None and (newest is None or nw > newest):
                    newest = nw
        except SensorServerError as exc:
            log.warning("Datastream %s: %s", info.iot_id, exc)
            report.incomplete[info.iot_id] = str(exc)
            continue
        # complete: the mark moves to the newest non-future reading stored (read now or before)
        store.advance_hwm(info.ds, store.max_time(info.ds), synced_at_us=now)
    report.seconds += time.monotonic() - t_begin
    return report


def sync(client: SensorThingsClient, store: ReadingStore, *, properties: Sequence[str] | None = None,
         bbox_wgs84: tuple[float, float, float, float] | None = None, since: str | None = None,
         lookback_s: float = 3600.0, page_size: int = 100, future_tolerance_s: float = 300.0) -> SyncReport:
    """Discover the Datastreams of ``properties`` in ``bbox_wgs84`` and read their new Observations.

    Returns a :class:`SyncReport`; ``report.ok`` is False when a Datastream could not be read to its end
    (it keeps its old high-water mark, so the next sync repeats it)."""
    report = SyncReport()
    t0 = time.monotonic()
    infos = discover(client, properties=properties, bbox_wgs84=bbox_wgs84, report=report)
    for info in infos:
        register(store, client.root, info)
    sync_datastreams(client, store, infos, since=since, lookback_s=lookback_s, page_size=page_size,
                     future_tolerance_s=future_tolerance_s, report=report)
    report.seconds = time.monotonic() - t0
    return report
