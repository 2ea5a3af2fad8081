"""Seed data for the real SensorThings server: the shipped Bern sample and generated gauge series.

Every expected count in the tests is derived from these payloads (``expected_counts``), never typed in.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sensors" / "bern_sample.json"
OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
SENSOR = {"name": "sensor", "description": "sensor", "encodingType": "text/html", "metadata": "https://example.org"}
# rain gauges near Bern (lon, lat), inside the sample's bbox
GAUGES = {"RG-Bern-Nord": (7.44, 46.96), "RG-Bern-Mitte": (7.45, 46.95), "RG-Bern-Sued": (7.43, 46.93)}
RAIN_START = datetime(2025, 6, 5, 12, 0, tzinfo=timezone.utc)


def load_sample(path: Path = SAMPLE) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def design_storm_mm(n_steps: int = 72, *, peak_step: int = 24, total_mm: float = 40.0, shift: int = 0) -> list[float]:
    """5-min rain depths (mm) of a smooth single-peak storm (a gamma-shaped hyetograph), rounded to
    the 0.1 mm of a tipping bucket; ``shift`` moves the peak for a second gauge."""
    k = 3.0
    theta = (peak_step + shift) / (k - 1.0)
    w = [((i + 0.5) ** (k - 1)) * math.exp(-(i + 0.5) / theta) for i in range(n_steps)]
    s = sum(w)
    return [round(total_mm * x / s, 1) for x in w]


def bern_things(sample: dict) -> list[dict]:
    """Deep-insert payloads of the Bern stations: Thing + Location + temperature/humidity Datastreams with
    their latest Observation, plus the 11117 time series."""
    locs = {loc["@iot.id"]: loc for loc in sample["Locations"]}
    by_thing: dict[str, list] = {}
    for ds in sample["Datastreams"]:
        by_thing.setdefault(ds["Thing"]["@iot.id"], []).append(ds)
    latest = {o["Datastream"]["@iot.id"]: o for o in sample["Observations"]}
    series = sample["Timeseries"]
    out = []
    for th in sample["Things"]:
        tid = th["@iot.id"]
        loc = locs[tid]
        datastreams = []
        for ds in by_thing.get(tid, []):
            kind = ds["@iot.id"].split("-", 1)[1]  # temperature | humidity
            obs = {}
            if tid == series["station"]:
                obs.update({t: v for t, v in series[kind]})
            o = latest.get(ds["@iot.id"])
            if o is not None:
                obs[o["phenomenonTime"]] = o["result"]
            datastreams.append({
                "name": ds["name"], "description": ds["description"], "unitOfMeasurement": ds["unitOfMeasurement"],
                "observationType": ds["observationType"], "Sensor": dict(SENSOR, name=ds["Sensor"]["name"]),
                "ObservedProperty": {"name": ds["ObservedProperty"]["name"],
                                     "definition": ds["ObservedProperty"]["definition"],
                                     "description": ds["ObservedProperty"]["name"]},
                "properties": {"bern_id": ds["@iot.id"]},
                "Observations": [{"phenomenonTime": t, "result": v} for t, v in obs.items()],
            })
        out.append({"name": th["name"], "description": th["description"], "properties": dict(th["properties"],
                    bern_id=tid),
                    "Locations": [{"name": loc["name"], "description": loc["description"],
                                   "encodingType": "application/geo+json", "location": loc["location"]}],
                    "Datastreams": datastreams})
    return out


def rain_things(n_steps: int = 72) -> list[dict]:
    """Three generated rain gauges (5-min sums in mm, instants at the interval end: the server stores no
    intervals), one water-level gauge in cm and one Datastream in an unknown unit (must be skipped)."""
    out = []
    for i, (name, (lon, lat)) in enumerate(GAUGES.items()):
        depths = design_storm_mm(n_steps, shift=2 * i)
        obs = [{"phenomenonTime": (RAIN_START + timedelta(minutes=5 * (k + 1))).isoformat().replace("+00:00", "Z"),
                "result": d} for k, d in enumerate(depths)]
        dss = [{"name": f"{name} precipitation", "description": "5-min rain sum",
                "unitOfMeasurement": {"name": "millimetre", "symbol": "mm", "definition": "http://unitsofmeasure.org"},
                "observationType": OM_MEASUREMENT, "Sensor": dict(SENSOR, name="tipping bucket"),
                "ObservedProperty": {"name": "Precipitation", "definition": "http://vocab.nerc.ac.uk/standard_name/"
                                     "thickness_of_rainfall_amount/", "description": "rain depth per 5 min"},
                "Observations": obs}]
        if i == 0:
            dss.append({"name": f"{name} water level", "description": "Pegel",
                        "unitOfMeasurement": {"name": "centimetre", "symbol": "cm", "definition": "ucum"},
                        "observationType": OM_MEASUREMENT, "Sensor": dict(SENSOR, name="radar gauge"),
                        "ObservedProperty": {"name": "Water level", "definition": "http://example.org/waterlevel",
                                             "description": "water level"},
                        "Observations": [{"phenomenonTime": (RAIN_START + timedelta(minutes=15 * k)).isoformat()
                                          .replace("+00:00", "Z"), "result": 120.0 + k} for k in range(24)]})
            dss.append({"name": f"{name} rain rate", "description": "unit nobody knows",
                        "unitOfMeasurement": {"name": "furlong per fortnight", "symbol": "fur/fortnight",
                                              "definition": "none"},
                        "observationType": OM_MEASUREMENT, "Sensor": dict(SENSOR, name="odd"),
                        "ObservedProperty": {"name": "Precipitation intensity", "definition": "http://example.org/rr",
                                             "description": "rain"},
                        "Observations": [{"phenomenonTime": "2025-06-05T12:00:00Z", "result": 1.0}]})
        out.append({"name": name, "description": "generated rain gauge", "properties": {"generated": True},
                    "Locations": [{"name": name, "description": "gauge", "encodingType": "application/geo+json",
                                   "location": {"type": "Point", "coordinates": [lon, lat]}}],
                    "Datastreams": dss})
    return out


def all_things(sample: dict | None = None) -> list[dict]:
    return bern_things(sample or load_sample()) + rain_things()


def expected_counts(things: list[dict]) -> dict[str, int]:
    """Observations per Datastream name in the seed, for Datastreams with a known unit."""
    return {ds["name"]: len(ds["Observations"]) for th in things for ds in th["Datastreams"]
            if ds["unitOfMeasurement"]["symbol"] != "fur/fortnight"}


def seed(base_url: str, things: list[dict], *, timeout_s: float = 60.0) -> None:
    """Deep-insert ``things`` into the server at ``base_url`` (…/v1.1)."""
    import httpx

    with httpx.Client(timeout=timeout_s) as http:
        for th in things:
            r = http.post(f"{base_url}/Things", json=th)
            if r.status_code != 201:
                raise RuntimeError(f"seeding {th['name']} failed: HTTP {r.status_code} {r.text[:300]}")
