"""Records shared by the sensor readers and the store: properties, time parsing, observation parsing."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from twin.sensors.units import Conversion

# canonical property -> (words matched in ObservedProperty name/definition, canonical unit)
PROPERTIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "air_temperature": (("air temperature", "airtemperature", "air_temperature", "temperature", "lufttemperatur",
                         "temperatur"), ("degC",)),
    "relative_humidity": (("relative humidity", "relativehumidity", "relative_humidity", "humidity",
                           "luftfeuchte", "luftfeuchtigkeit"), ("%",)),
    "precipitation": (("precipitation", "rainfall", "rain", "niederschlag", "regen"), ("mm", "mm/h")),
    "water_level": (("water level", "waterlevel", "water_level", "stream gauge", "streamgauge", "wasserstand",
                     "pegel", "gauge height"), ("mm",)),
}
# order matters: "water level" before "temperature" (e.g. "water temperature" is not air temperature)
_EXCLUDE = {"air_temperature": ("water temperature", "soil temperature", "wassertemperatur", "dew point",
                                "dewpoint", "taupunkt")}

UTC = timezone.utc
_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def classify_property(name: str | None, definition: str | None = None, description: str | None = None) -> str | None:
    """Canonical property (``air_temperature``, ``relative_humidity``, ``precipitation``, ``water_level``)
    of an ObservedProperty from its name, definition URI or description; None when none matches."""
    text = " ".join(s for s in (name, definition, description) if isinstance(s, str)).casefold()
    text_spaced = re.sub(r"[_/#:\-.]", " ", text)
    for prop in ("water_level", "precipitation", "relative_humidity", "air_temperature"):
        words, _ = PROPERTIES[prop]
        if any(bad in text_spaced or bad in text for bad in _EXCLUDE.get(prop, ())):
            continue
        if any(w in text_spaced or w in text for w in words):
            return prop
    return None


def parse_instant_us(text: str) -> int:
    """ISO 8601 instant -> microseconds since 1970 UTC. ``Z``, offsets, fractions and missing seconds
    are accepted; a time without zone is taken as UTC (STA requires one; some feeds omit it)."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * _US + delta.microseconds


def parse_phenomenon_time(value) -> tuple[int, int]:
    """``phenomenonTime`` (instant or ``start/end`` interval) -> (start_us, end_us); start == end for instants."""
    if not isinstance(value, str):
        raise ValueError(f"phenomenonTime is {value!r}, not an ISO 8601 string")
    if "/" in value:
        a, b = value.split("/", 1)
        start, end = parse_instant_us(a), parse_instant_us(b)
        if end < start:
            raise ValueError(f"phenomenonTime interval {value!r} ends before it starts")
        return start, end
    t = parse_instant_us(value)
    return t, t


def us_to_iso(us: int) -> str:
    """Microseconds since 1970 UTC -> ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    dt = datetime.fromtimestamp(us / _US, tz=UTC) if us % _US else datetime.fromtimestamp(us // _US, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if us % _US else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_us() -> int:
    return int(datetime.now(UTC).timestamp() * _US)


# QC / ingest flags, a bitmask stored with each reading (0 = passed every check that ran)
FLAG_RANGE = 1          # outside the plausible range of the property
FLAG_SPIKE = 2          # jump to and back from a neighbour larger than the allowed rate
FLAG_STUCK = 4          # the same value repeated over too long a time
FLAG_STALE = 8          # the newest reading of the datastream is older than the staleness limit
FLAG_FUTURE = 16        # phenomenonTime beyond now + tolerance (skewed clock)
FLAG_SPATIAL = 32       # CrowdQC-style: robust z-score against the other stations at that hour
FLAG_SERVER_QUALITY = 64  # the server's resultQuality says the value is bad
FLAG_NAMES = {FLAG_RANGE: "range", FLAG_SPIKE: "spike", FLAG_STUCK: "stuck", FLAG_STALE: "stale",
              FLAG_FUTURE: "future", FLAG_SPATIAL: "spatial_outlier", FLAG_SERVER_QUALITY: "server_quality"}


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]


@dataclass
class ParseStats:
    """Counts of one ingest step: what arrived, what was stored, what was rejected and why."""

    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    flagged_future: int = 0

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    def add(self, other: "ParseStats") -> None:
        self.received += other.received
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.flagged_future += other.flagged_future
        for k, v in other.rejected.items():
            self.rejected[k] = self.rejected.get(k, 0) + v

    def to_dict(self) -> dict:
        return {"received": self.received, "inserted": self.inserted, "duplicates": self.duplicates,
                "rejected": dict(self.rejected), "flagged_future": self.flagged_future}


_BAD_QUALITY = ("bad", "invalid", "erroneous", "missing", "suspect")


def parse_observation(obs: dict, conversion: Conversion, *, future_limit_us: int
                      ) -> tuple[tuple[int, int, float, int | None, int, str | None] | None, str | None, str | None]:
    """One STA Observation -> ``(row, reject_reason, raw_time)``.

    ``row`` is ``(t_start_us, t_end_us, value_canonical, result_time_us, flags, iot_id)`` or None when
    the observation is rejected; ``reject_reason`` then says why (``non_numeric``, ``null``, ``nan``,
    ``bad_time``).
    """
    raw_time = obs.get("phenomenonTime")
    try:
        t0, t1 = parse_phenomenon_time(raw_time)
    except (ValueError, TypeError):
        return None, "bad_time", str(raw_time)
    result = obs.get("result")
    if result is None:
        return None, "null", raw_time
    if isinstance(result, bool) or not isinstance(result, (int, float)):
        # numbers sent as strings ("21.5") are common in feeds; "NaN"/"abc" are not numbers
        if isinstance(result, str):
            try:
                result = float(result)
            except ValueError:
                return None, "non_numeric", raw_time
        else:
            return None, "non_numeric", raw_time
    value = float(result)
    if not math.isfinite(value):
        return None, "nan", raw_time
    flags = 0
    if t1 > future_limit_us:
        flags |= FLAG_FUTURE
    rq = obs.get("resultQuality")
    if rq is not None:
        text = str(rq).casefold()
        if any(w in text for w in _BAD_QUALITY):
            flags |= FLAG_SERVER_QUALITY
    rt = obs.get("resultTime")
    try:
        rt_us = parse_instant_us(rt) if isinstance(rt, str) else None
    except ValueError:
        rt_us = None
    iot_id = obs.get("@iot.id")
    return (t0, t1, conversion(value), rt_us, flags, None if iot_id is None else str(iot_id)), None, raw_time
