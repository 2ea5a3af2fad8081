"""MQTT integration: a real Mosquitto broker and a real SensorThings server on 127.0.0.1.

The test plays FROST's MQTT extension: it creates each Observation over HTTP and publishes the entity
on ``v1.1/Datastreams(<id>)/Observations``. The broker is killed mid-stream; the Observations created
while it is down reach the store only through the HTTP backfill after the reconnect.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import paho.mqtt.client as paho
import pytest

from tests.sensors.fixtures import mosquitto, start_seeded  # noqa: F401 (fixtures)
from tests.sensors.seed import OM_MEASUREMENT, SENSOR
from twin.sensors.client import RetryPolicy, SensorThingsClient, quote_id
from twin.sensors.ingest import discover
from twin.sensors.mqtt import MqttWatcher, parse_host_port
from twin.sensors.store import open_store

pytestmark = pytest.mark.timeout(120)

N_SEED, N_LIVE_A, N_GAP, N_LIVE_C = 5, 20, 15, 10


def _gauge(name, lon, lat, t0, n):
    return {"name": name, "description": "gauge", "properties": {},
            "Locations": [{"name": name, "description": "x", "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": [lon, lat]}}],
            "Datastreams": [{"name": f"{name} precipitation", "description": "5-min sum",
                             "unitOfMeasurement": {"name": "millimetre", "symbol": "mm", "definition": "ucum"},
                             "observationType": OM_MEASUREMENT, "Sensor": SENSOR,
                             "ObservedProperty": {"name": "Precipitation", "definition": "http://x/rain",
                                                  "description": "rain"},
                             "Observations": [{"phenomenonTime": _iso(t0 + timedelta(minutes=k)), "result": 0.1 * k}
                                              for k in range(n)]}]}


def _iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _wait(cond, timeout_s, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Feed:
    """Creates Observations on the STA server and (optionally) publishes them like FROST does."""

    def __init__(self, base, broker_port):
        self.base, self.broker_port = base, broker_port
        self.http = httpx.Client(timeout=10)
        self.pub = None

    def connect(self):
        self.pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"feed-{time.monotonic_ns()}")
        self.pub.connect("127.0.0.1", self.broker_port)
        self.pub.loop_start()

    def disconnect(self):
        if self.pub is not None:
            self.pub.loop_stop()
            self.pub = None

    def observe(self, ds_id, t, value, *, publish=True):
        # django-ogc-sensorthings answers 405 to POST Datastreams(<id>)/Observations: link in the body
        r = self.http.post(f"{self.base}/Observations",
                           json={"phenomenonTime": _iso(t), "result": value, "Datastream": {"@iot.id": ds_id}})
        assert r.status_code == 201, r.text
        if publish:
            entity = self.http.get(r.headers["Location"]).json()
            info = self.pub.publish(f"v1.1/Datastreams({quote_id(ds_id)})/Observations", json.dumps(entity), qos=0)
            info.wait_for_publish(5)


def test_mqtt_live_feed_survives_a_broker_kill_without_loss_or_duplicates(tmp_path, mosquitto):
    t0 = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=3)
    seeded = start_seeded(tmp_path / "sta", things=[_gauge("G1", 7.44, 46.95, t0, N_SEED),
                                                    _gauge("G2", 7.45, 46.96, t0, N_SEED)])
    srv = seeded.server
    feed = Feed(srv.base, mosquitto.port)
    try:
        store = open_store(tmp_path / "r.sqlite")
        client = SensorThingsClient(srv.base, timeout_s=5, retry=RetryPolicy(max_attempts=8, base_s=0.05, cap_s=0.5))
        infos = discover(client)
        assert len(infos) == 2
        watcher = MqttWatcher(client, store, infos, host="127.0.0.1", port=mosquitto.port, lookback_s=600,
                              reconnect_min_s=0.5, reconnect_max_s=2, keepalive_s=5)
        th = threading.Thread(target=watcher.run, kwargs={"duration_s": 90}, daemon=True)
        th.start()
        _wait(lambda: watcher.connected and watcher.report.backfills >= 1 and store.count() == 2 * N_SEED, 20,
              "first connect and backfill")

        feed.connect()
        k = N_SEED
        for i in range(N_LIVE_A):  # live: published and stored
            for info in infos:
                feed.observe(info.iot_id, t0 + timedelta(minutes=k), 1.0 + i)
            k += 1
        _wait(lambda: store.count() == 2 * (N_SEED + N_LIVE_A), 20, "live messages")
        assert watcher.report.mqtt.inserted == 2 * N_LIVE_A

        mosquitto.proc.kill()  # the connection dies mid-stream
        mosquitto.proc.wait(5)
        feed.disconnect()
        _wait(lambda: not watcher.connected, 15, "the watcher to notice the disconnect")
        for i in range(N_GAP):  # created while the broker is down: never published
            for info in infos:
                feed.observe(info.iot_id, t0 + timedelta(minutes=k), 50.0 + i, publish=False)
            k += 1
        mosquitto.start()  # same port
        _wait(lambda: watcher.report.connects >= 2 and watcher.report.backfills >= 2, 30, "reconnect + backfill")
        feed.connect()
        for i in range(N_LIVE_C):
            for info in infos:
                feed.observe(info.iot_id, t0 + timedelta(minutes=k), 80.0 + i)
            k += 1
        total = 2 * (N_SEED + N_LIVE_A + N_GAP + N_LIVE_C)
        _wait(lambda: store.count() == total, 30, "gap backfilled and live messages after the reconnect")
        time.sleep(0.5)  # late duplicates would show up now
        watcher.stop()
        th.join(15)
        rep = watcher.report
        assert store.count() == total
        for info in infos:
            assert store.count(info.ds) == total // 2
        # every Observation was inserted exactly once, by MQTT or by a backfill; the rest were duplicates
        assert rep.mqtt.inserted + rep.backfill.stats.inserted == total
        assert rep.backfill.stats.inserted >= 2 * N_GAP
        assert rep.disconnects >= 1 and rep.unknown_topic == 0 and rep.bad_payload == 0
    finally:
        feed.disconnect()
        srv.stop()


def test_parse_host_port():
    assert parse_host_port("127.0.0.1:18830") == ("127.0.0.1", 18830)
    assert parse_host_port("mqtt://broker") == ("broker", 1883)
