"""Sensor ingest throughput into SQLite: observations/s over HTTP paging and over MQTT.

HTTP: a real django-ogc-sensorthings server (SQLite, $top up to 1000) seeded with N observations,
read by ``twin.sensors.sync``; the reference in the same run is a bare httpx loop fetching the same
pages without parsing or storing (the ratio shows what the ingest costs above the server).
MQTT: a real Mosquitto broker; N STA Observation messages published on
``v1.1/Datastreams(<id>)/Observations`` as fast as paho sends them, timed from the first publish until
the store holds all N; the reference is a bare paho subscriber counting the same messages.

Run: ``.venv/bin/python benchmarks/sensors.py [--n 20000]`` (needs mosquitto: ``make sysdeps``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import importlib.util  # noqa: E402

import httpx  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402


def _load(name: str):
    """The test helpers by file path (a dependency may install a top-level ``tests`` package)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "sensors" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_twin_bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_seed, _servers = _load("seed"), _load("servers")
OM_MEASUREMENT, SENSOR = _seed.OM_MEASUREMENT, _seed.SENSOR
Mosquitto, StaServer = _servers.Mosquitto, _servers.StaServer
from twin.sensors.client import SensorThingsClient, quote_id  # noqa: E402
from twin.sensors.ingest import discover, sync  # noqa: E402
from twin.sensors.mqtt import MqttWatcher  # noqa: E402
from twin.sensors.store import open_store  # noqa: E402

T0 = datetime(2025, 6, 5, tzinfo=timezone.utc)


def _thing(n: int) -> dict:
    return {"name": "bench", "description": "b", "Locations": [{"name": "l", "description": "l",
            "encodingType": "application/geo+json", "location": {"type": "Point", "coordinates": [7.44, 46.95]}}],
            "Datastreams": [{"name": "bench rain", "description": "d", "observationType": OM_MEASUREMENT,
                             "unitOfMeasurement": {"name": "millimetre", "symbol": "mm", "definition": "ucum"},
                             "Sensor": SENSOR, "ObservedProperty": {"name": "Precipitation", "definition": "x",
                                                                    "description": "rain"},
                             "Observations": [{"phenomenonTime": (T0 + timedelta(seconds=10 * k)).strftime(
                                 "%Y-%m-%dT%H:%M:%SZ"), "result": round(0.1 * (k % 50), 1)} for k in range(n)]}]}


def bench_http(work: Path, n: int, page: int) -> dict:
    srv = StaServer(work / "sta", max_top=page).start()
    try:
        with httpx.Client(timeout=300) as http:
            r = http.post(f"{srv.base}/Things", json=_thing(n))
            assert r.status_code == 201, r.text[:300]
        store = open_store(work / "http.sqlite")
        with SensorThingsClient(srv.base, timeout_s=120) as client:
            t = time.perf_counter()
            rep = sync(client, store, page_size=page)
            dt = time.perf_counter() - t
        assert rep.ok and store.count() == n, (rep.to_dict(), store.count())
        # reference: the same pages fetched bare
        with SensorThingsClient(srv.base, timeout_s=120) as client:
            ds = store.list_datastreams()[0]["iot_id"]
            t = time.perf_counter()
            got = sum(len(p.value) for p in client.pages(f"Datastreams({quote_id(ds)})/Observations",
                                                         {"$top": str(page)}))
            dt_ref = time.perf_counter() - t
        assert got >= n
        # the ingest alone (parse, convert, store) on the fetched pages, without the server
        return {"n": n, "page_size": page, "pages": rep.pages, "sync_s": round(dt, 3),
                "obs_per_s": round(n / dt), "bare_fetch_s": round(dt_ref, 3),
                "bare_fetch_obs_per_s": round(n / dt_ref), "ratio_to_bare_fetch": round(dt / dt_ref, 2)}
    finally:
        srv.stop()


def bench_ingest_only(work: Path, n: int) -> dict:
    """Parsing + unit conversion + SQLite insert of STA JSON pages, no network (client-side ceiling)."""
    from twin.sensors.ingest import DatastreamInfo, register
    from twin.sensors.units import conversion_for

    store = open_store(work / "ingest.sqlite")
    info = DatastreamInfo(iot_id="1", name="x", property="precipitation", conversion=conversion_for("mm"))
    register(store, "bench", info)
    obs = [{"@iot.id": k, "phenomenonTime": (T0 + timedelta(seconds=10 * k)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "result": 0.1 * (k % 50)} for k in range(n)]
    payload = [json.dumps({"value": obs[i:i + 1000]}) for i in range(0, n, 1000)]
    from twin.sensors.ingest import ingest_observations

    t = time.perf_counter()
    for p in payload:
        ingest_observations(store, info, json.loads(p)["value"])
    dt = time.perf_counter() - t
    assert store.count() == n
    return {"n": n, "s": round(dt, 3), "obs_per_s": round(n / dt)}


def bench_mqtt(work: Path, n: int) -> dict:
    broker = Mosquitto(work / "mqtt").start()
    srv = StaServer(work / "sta-mqtt").start()
    try:
        with httpx.Client(timeout=60) as http:
            http.post(f"{srv.base}/Things", json=_thing(1)).raise_for_status()
        store = open_store(work / "mqtt.sqlite")
        client = SensorThingsClient(srv.base, timeout_s=30)
        infos = discover(client)
        topic = f"v1.1/Datastreams({quote_id(infos[0].iot_id)})/Observations"
        msgs = [json.dumps({"@iot.id": f"m{k}", "phenomenonTime": (T0 + timedelta(days=1, seconds=k)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"), "result": 0.1 * (k % 50)}) for k in range(n)]

        # reference: a bare paho subscriber counting messages
        got = [0]
        done = threading.Event()
        sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-ref")
        sub.on_message = lambda c, u, m: (got.__setitem__(0, got[0] + 1), got[0] >= n and done.set())
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe(topic, qos=1)
        sub.loop_start()
        time.sleep(0.3)
        pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-pub")
        pub.max_queued_messages_set(0)
        pub.max_inflight_messages_set(1000)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        t = time.perf_counter()
        for m in msgs:
            pub.publish(topic, m, qos=1)
        assert done.wait(120), f"bare subscriber got {got[0]} of {n}"
        dt_ref = time.perf_counter() - t
        sub.loop_stop()
        sub.disconnect()

        watcher = MqttWatcher(client, store, infos, host="127.0.0.1", port=broker.port, qos=1)
        base = 1  # the seeded observation, stored by the first backfill
        th = threading.Thread(target=watcher.run, kwargs={"duration_s": 180,
                                                           "until": lambda: store.count() >= base + n}, daemon=True)
        th.start()
        t_wait = time.monotonic()
        while not (watcher.connected and watcher.report.backfills >= 1) and time.monotonic() - t_wait < 30:
            time.sleep(0.05)
        time.sleep(0.3)
        t = time.perf_counter()
        for m in msgs:
            pub.publish(topic, m, qos=1)
        th.join(180)
        dt = time.perf_counter() - t
        pub.loop_stop()
        assert store.count() == base + n, (store.count(), base + n)
        return {"n": n, "s": round(dt, 3), "obs_per_s": round(n / dt), "bare_subscriber_s": round(dt_ref, 3),
                "bare_subscriber_msgs_per_s": round(n / dt_ref), "ratio_to_bare_subscriber": round(dt / dt_ref, 2)}
    finally:
        srv.stop()
        broker.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--page", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        res = {"ingest_only": bench_ingest_only(work, args.n), "http": bench_http(work, args.n, args.page),
               "mqtt": bench_mqtt(work, args.n)}
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
