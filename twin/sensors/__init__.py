"""Live sensor feeds for the twin: OGC SensorThings API 1.1 (HTTP + MQTT), NGSI-LD/NGSI-v2 payloads.

Readings go into a :class:`ReadingStore` (SQLite by default, PostgreSQL by URL) with per-datastream
high-water marks, quality flags (:mod:`twin.sensors.qc`) and rejected-value counts, and come out as
pandas/xarray time series and as model forcing (:mod:`twin.sensors.forcing`).

Names are imported lazily so ``import twin.sensors`` stays cheap (no httpx, paho or pandas at import).
"""

from __future__ import annotations

import importlib

__all__ = [
    "SensorThingsClient", "RetryPolicy", "CircuitBreaker",
    "sync", "sync_datastreams", "discover", "SyncReport",
    "ReadingStore", "open_store",
    "MqttWatcher",
    "run_qc", "flag_names",
    "rain_forcing", "heat_forcing",
    "read_ngsi",
    "conversion_for", "UnitError", "SensorServerError", "CircuitOpenError", "PagingError",
]

_WHERE = {
    "SensorThingsClient": "client", "RetryPolicy": "client", "CircuitBreaker": "client",
    "sync": "ingest", "sync_datastreams": "ingest", "discover": "ingest", "SyncReport": "ingest",
    "ReadingStore": "store", "open_store": "store", "MqttWatcher": "mqtt", "run_qc": "qc", "flag_names": "_model",
    "rain_forcing": "forcing", "heat_forcing": "forcing", "read_ngsi": "ngsi", "conversion_for": "units",
    "UnitError": "errors", "SensorServerError": "errors", "CircuitOpenError": "errors", "PagingError": "errors",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"twin.sensors.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'twin.sensors' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
