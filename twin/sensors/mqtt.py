"""Live Observations over the SensorThings MQTT extension (paho-mqtt 2.x), with HTTP backfill.

Subscribes to ``v1.1/Datastreams(<id>)/Observations`` for every watched Datastream. MQTT at QoS 0 has
no replay, so after every (re)connect the Datastreams are read over HTTP from their high-water mark
minus the lookback window; the store's key ``(datastream, phenomenonTime)`` removes the overlap.
paho's network thread reconnects with exponential backoff (``reconnect_min_s`` .. ``reconnect_max_s``).
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Sequence

from twin.sensors._model import ParseStats
from twin.sensors.client import SensorThingsClient, quote_id
from twin.sensors.ingest import DatastreamInfo, SyncReport, ingest_observations, register, sync_datastreams
from twin.sensors.store import ReadingStore

__all__ = ["MqttWatcher", "WatchReport", "parse_host_port"]

log = logging.getLogger("twin.sensors")
_TOPIC_ID = re.compile(r"Datastreams\((.+?)\)/Observations$")


def parse_host_port(text: str, default_port: int = 1883) -> tuple[str, int]:
    """``HOST:PORT`` (or ``mqtt://HOST:PORT``) -> (host, port)."""
    from twin.errors import TwinValueError

    t = text.split("://", 1)[-1].rstrip("/")
    host, _, port = t.rpartition(":") if ":" in t else (t, "", str(default_port))
    try:
        return host or "127.0.0.1", int(port)
    except ValueError as exc:
        raise TwinValueError(f"MQTT address {text!r} is not HOST:PORT; fix: e.g. --mqtt 127.0.0.1:1883") from exc


@dataclass
class WatchReport:
    """Counts of a watch: messages received over MQTT and what they stored, reconnects and backfills."""

    mqtt: ParseStats = field(default_factory=ParseStats)
    backfill: SyncReport = field(default_factory=SyncReport)
    connects: int = 0
    disconnects: int = 0
    backfills: int = 0
    unknown_topic: int = 0
    bad_payload: int = 0

    def to_dict(self) -> dict:
        b = self.backfill.to_dict()
        b.pop("per_datastream", None)
        return {"mqtt": self.mqtt.to_dict(), "backfill": b, "connects": self.connects,
                "disconnects": self.disconnects, "backfills": self.backfills, "unknown_topic": self.unknown_topic,
                "bad_payload": self.bad_payload}


class MqttWatcher:
    """Watch Datastreams over MQTT and keep the store complete.

    Parameters
    ----------
    client : SensorThingsClient
        For the backfill over HTTP (and the store's ``source``).
    store : ReadingStore
    infos : sequence of DatastreamInfo
        The Datastreams to watch (from :func:`twin.sensors.ingest.discover`).
    host, port : broker address.
    topic_prefix : str
        ``v1.1`` on FROST; the topic is ``<prefix>/Datastreams(<id>)/Observations``.
    """

    def __init__(self, client: SensorThingsClient, store: ReadingStore, infos: Sequence[DatastreamInfo], *,
                 host: str, port: int, topic_prefix: str = "v1.1", qos: int = 0, lookback_s: float = 3600.0,
                 page_size: int = 100, batch_max: int = 2000, flush_s: float = 0.1, reconnect_min_s: float = 0.5,
                 reconnect_max_s: float = 30.0, keepalive_s: int = 30, future_tolerance_s: float = 300.0,
                 client_id: str | None = None, since: str | None = None):
        import paho.mqtt.client as paho

        self.client, self.store = client, store
        self.infos = list(infos)
        for info in self.infos:
            if info.ds is None:
                register(store, client.root, info)
        self._by_id = {info.iot_id: info for info in self.infos}
        self.host, self.port, self.qos = host, port, qos
        self.topics = [f"{topic_prefix}/Datastreams({quote_id(i.iot_id)})/Observations" for i in self.infos]
        self.lookback_s, self.page_size, self.since = lookback_s, page_size, since
        self.batch_max, self.flush_s = batch_max, flush_s
        self.future_tolerance_s = future_tolerance_s
        self.report = WatchReport()
        self._queue: queue.Queue = queue.Queue()
        self._backfill = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._mqtt = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                 client_id=client_id or f"twin-sensors-{uuid.uuid4().hex[:12]}", clean_session=True)
        self._mqtt.reconnect_delay_set(min_delay=max(1, int(reconnect_min_s)), max_delay=int(reconnect_max_s))
        self._reconnect_min_s = reconnect_min_s
        self._keepalive = keepalive_s
        self._mqtt.on_connect = self._on_connect
        self._mqtt.on_disconnect = self._on_disconnect
        self._mqtt.on_message = self._on_message

    # -- paho callbacks (network thread) -------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if getattr(reason_code, "is_failure", False):
            log.warning("MQTT connect to %s:%d refused: %s", self.host, self.port, reason_code)
            return
        self.report.connects += 1
        if self.topics:
            client.subscribe([(t, self.qos) for t in self.topics])
        self._connected.set()
        self._backfill.set()  # subscribed first, then read the gap over HTTP

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None):
        self._connected.clear()
        if not self._stop.is_set():
            self.report.disconnects += 1
            log.warning("MQTT connection to %s:%d lost (%s); reconnecting", self.host, self.port, reason_code)

    def _on_message(self, client, userdata, msg):
        self._queue.put((msg.topic, msg.payload))

    # -- main thread ------------------------------------------------------------------------------------
    def _flush(self, items: list) -> None:
        batches: dict[str, list] = {}
        for topic, payload in items:
            m = _TOPIC_ID.search(topic)
            iot_id = m.group(1).strip("'").replace("''", "'") if m else None
            if iot_id not in self._by_id:
                self.report.unknown_topic += 1
                continue
            try:
                obs = json.loads(payload)
            except ValueError:
                self.report.bad_payload += 1
                continue
            if not isinstance(obs, dict):
                self.report.bad_payload += 1
                continue
            batches.setdefault(iot_id, []).append(obs)
        for iot_id, obs in batches.items():
            info = self._by_id[iot_id]
            st, newest = ingest_observations(self.store, info, obs, future_tolerance_s=self.future_tolerance_s)
            self.report.mqtt.add(st)
            if newest is not None:
                self.store.advance_hwm(info.ds, newest)

    def _do_backfill(self) -> None:
        self._backfill.clear()
        self.report.backfills += 1
        sync_datastreams(self.client, self.store, self.infos, since=self.since, lookback_s=self.lookback_s,
                         page_size=self.page_size, future_tolerance_s=self.future_tolerance_s,
                         report=self.report.backfill)

    def stop(self) -> None:
        self._stop.set()

    def run(self, *, duration_s: float | None = None, until: Callable[[], bool] | None = None) -> WatchReport:
        """Watch until :meth:`stop`, ``duration_s`` elapsed, or ``until()`` is true (checked every flush)."""
        t0 = time.monotonic()
        self._mqtt.connect_async(self.host, self.port, keepalive=self._keepalive)
        self._mqtt.loop_start()
        try:
            while not self._stop.is_set():
                if duration_s is not None and time.monotonic() - t0 >= duration_s:
                    break
                if self._backfill.is_set():
                    try:
                        self._do_backfill()
                    except Exception as exc:  # a failed backfill is retried at the next flush
                        log.warning("backfill failed: %s", exc)
                        self._backfill.set()
                        time.sleep(self._reconnect_min_s)
                items = []
                try:
                    items.append(self._queue.get(timeout=self.flush_s))
                    while len(items) < self.batch_max:
                        items.append(self._queue.get_nowait())
                except queue.Empty:
                    pass
                if items:
                    self._flush(items)
                if until is not None and until():
                    break
        finally:
            self._stop.set()
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
            rest = []
            while not self._queue.empty():
                rest.append(self._queue.get_nowait())
            if rest:
                self._flush(rest)
        return self.report

    @property
    def connected(self) -> bool:
        return self._connected.is_set()
