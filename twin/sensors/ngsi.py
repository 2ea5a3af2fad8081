"""NGSI-LD (ETSI GS CIM 009) and NGSI-v2 payloads -> the reading store.

Understood shapes: NGSI-LD entities (normalized ``{"type":"Property","value":…,"observedAt":…,
"unitCode":…}`` or ``options=keyValues``), NGSI-LD temporal responses (arrays of property instances,
or ``format=temporalValues`` ``{"values":[[v, t], …]}``), NGSI-v2 entities (``{"value","type","metadata"}``
with ``TimeInstant`` / ``dateObserved``), lists of these, and notifications (``{"data":[…]}``).
Attribute names follow Smart Data Models ``WeatherObserved`` (temperature, relativeHumidity (0..1),
precipitation, streamGauge / waterLevel).
"""

from __future__ import annotations

from twin.sensors._model import ParseStats, now_us, parse_observation
from twin.sensors.store import ReadingStore
from twin.sensors.units import conversion_for

__all__ = ["read_ngsi", "NGSI_ATTRIBUTES"]

# attribute -> (property, default unit when no unitCode is given)
NGSI_ATTRIBUTES = {
    "temperature": ("air_temperature", "CEL"), "airTemperature": ("air_temperature", "CEL"),
    "relativeHumidity": ("relative_humidity", "C62"), "humidity": ("relative_humidity", "C62"),
    "precipitation": ("precipitation", "MMT"), "rainfall": ("precipitation", "MMT"),
    "streamGauge": ("water_level", "MTR"), "waterLevel": ("water_level", "MTR"),
}
_TIME_KEYS = ("observedAt", "dateObserved", "TimeInstant", "timestamp")


def _short(key: str) -> str:
    return key.rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _entity_time(entity: dict) -> str | None:
    for k in ("dateObserved", "TimeInstant", "observedAt"):
        v = entity.get(k)
        if isinstance(v, dict):
            v = v.get("value", v.get("@value"))
            if isinstance(v, dict):
                v = v.get("@value")
        if isinstance(v, str):
            return v
    return None


def _instances(attr, entity_time):
    """(value, time, unitCode, raw) for every instance of one attribute in any of the shapes."""
    if isinstance(attr, list):  # temporal, normalized
        for inst in attr:
            yield from _instances(inst, entity_time)
        return
    if isinstance(attr, dict):
        if "values" in attr and isinstance(attr["values"], list):  # temporalValues
            for pair in attr["values"]:
                if isinstance(pair, (list, tuple)) and len(pair) >= 2:
                    yield pair[0], pair[1], attr.get("unitCode"), pair
            return
        meta = attr.get("metadata") or {}
        t = next((attr.get(k) for k in _TIME_KEYS if isinstance(attr.get(k), str)), None)
        if t is None:
            for k in _TIME_KEYS:
                mv = meta.get(k)
                if isinstance(mv, dict) and isinstance(mv.get("value"), str):
                    t = mv["value"]
                    break
        unit = attr.get("unitCode")
        if unit is None and isinstance(meta.get("unitCode"), dict):
            unit = meta["unitCode"].get("value")
        yield attr.get("value"), t or entity_time, unit, attr
        return
    yield attr, entity_time, None, attr  # keyValues


def read_ngsi(store: ReadingStore, payload, *, source: str = "ngsi", future_tolerance_s: float = 300.0
              ) -> ParseStats:
    """Store the readings of an NGSI-LD / NGSI-v2 payload (entity, list, temporal response or notification).

    Each (entity id, attribute) becomes a datastream ``iot_id = "<entity id>#<attribute>"`` of ``source``.
    Returns the counts; non-numeric values are rejected and counted like STA results."""
    stats = ParseStats()
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        payload = payload["data"]
    entities = payload if isinstance(payload, list) else [payload]
    limit = now_us() + int(future_tolerance_s * 1_000_000)
    for entity in entities:
        if not isinstance(entity, dict) or "id" not in entity:
            stats.reject("not_an_entity")
            continue
        eid = str(entity["id"])
        etime = _entity_time(entity)
        loc = entity.get("location")
        loc = loc.get("value", loc) if isinstance(loc, dict) else None
        lon = lat = None
        if isinstance(loc, dict) and loc.get("type") == "Point":
            lon, lat = (float(c) for c in loc["coordinates"][:2])
        for key, attr in entity.items():
            name = _short(key)
            if name not in NGSI_ATTRIBUTES:
                continue
            prop, default_unit = NGSI_ATTRIBUTES[name]
            rows, rejects = [], []
            ds = None
            for value, t, unit, raw in _instances(attr, etime):
                conv = conversion_for(unit or default_unit, datastream=f"{eid}#{name}")
                if ds is None:
                    ds = store.upsert_datastream(source=source, iot_id=f"{eid}#{name}", name=f"{eid} {name}",
                                                 property=prop, unit=conv.canonical, unit_source=conv.source,
                                                 thing=eid, lon=lon, lat=lat, meta={"type": entity.get("type")})
                stats.received += 1
                row, reason, raw_time = parse_observation({"phenomenonTime": t, "result": value}, conv,
                                                          future_limit_us=limit)
                if row is None:
                    stats.reject(reason)
                    rejects.append((raw_time, reason, repr(value)[:200]))
                else:
                    rows.append(row)
            if ds is not None:
                new = store.insert(ds, rows)
                stats.inserted += new
                stats.duplicates += len(rows) - new
                store.reject(ds, rejects)
    return stats
