"""Integration tests against a real SensorThings server (django-ogc-sensorthings on SQLite, 127.0.0.1),
directly and through a loopback fault proxy. Expected counts come from the seed payloads."""

from __future__ import annotations

import threading
import time

import pytest

from tests.sensors.fixtures import fault_proxy, sta_seeded, start_seeded  # noqa: F401 (fixtures)
from tests.sensors.proxy import Faults
from twin.sensors._model import FLAG_FUTURE, parse_instant_us
from twin.sensors.client import CircuitBreaker, RetryPolicy, SensorThingsClient
from twin.sensors.errors import SensorServerError
from twin.sensors.ingest import sync
from twin.sensors.store import open_store

pytestmark = pytest.mark.timeout(120)

FAST_RETRY = RetryPolicy(max_attempts=8, base_s=0.02, cap_s=0.2, min_s=0.0)


def _client(root, **kw):
    kw.setdefault("timeout_s", 5.0)
    kw.setdefault("retry", FAST_RETRY)
    return SensorThingsClient(root, seed=7, **kw)


def _counts_by_name(store) -> dict[str, int]:
    return {d["name"]: d["n_readings"] for d in store.list_datastreams()}


def test_sync_reads_every_observation_exactly_once_across_pages(sta_seeded, tmp_path):
    store = open_store(tmp_path / "r.sqlite")
    with _client(sta_seeded.server.base) as client:
        report = sync(client, store, page_size=40)
    assert report.ok, report.incomplete
    assert _counts_by_name(store) == sta_seeded.expected
    assert store.count() == sta_seeded.total
    assert report.pages > len(sta_seeded.expected)  # several pages per long datastream
    # the Datastream in an unknown unit is skipped, with the unit in the reason
    assert len(report.skipped) == 1 and "fur/fortnight" in next(iter(report.skipped.values()))
    # a second sync re-reads only the lookback window and stores nothing new
    with _client(sta_seeded.server.base) as client:
        again = sync(client, store, page_size=40)
    assert again.stats.inserted == 0 and store.count() == sta_seeded.total
    for d in store.list_datastreams():
        assert d["hwm_us"] == d["last_us"]  # high-water mark = newest reading


def test_sync_since_filters_on_phenomenon_time_and_follows_links_with_raw_spaces(sta_seeded, tmp_path):
    store = open_store(tmp_path / "r.sqlite")
    since = "2024-11-02T00:00:00+01:00"  # time zones are normalised: 2024-11-01T23:00Z
    with _client(sta_seeded.server.base) as client:
        report = sync(client, store, properties=["air_temperature"], since=since, page_size=20)
    assert report.ok
    series = next(t for t in sta_seeded.things if t["properties"].get("bern_id") == "11117")
    temps = next(d for d in series["Datastreams"] if "Temperature" in d["name"])["Observations"]
    want = sum(parse_instant_us(o["phenomenonTime"]) >= parse_instant_us(since) for o in temps)
    got = _counts_by_name(store)["Temperature Datastream for Ittigen Papiermühle Kreisel"]
    assert got == want and want > 40  # > 2 pages of 20, reached through nextLinks holding "$filter=... ge ..."
    assert set(store.series("air_temperature")["time"].dt.tz.__str__() for _ in [0]) == {"UTC"}


def test_sync_bbox_keeps_only_stations_inside(sta_seeded, tmp_path):
    store = open_store(tmp_path / "r.sqlite")
    bbox = (7.42, 46.92, 7.46, 46.97)  # the three generated gauges and Vordere Länggasse, not Lyss/Ittigen
    with _client(sta_seeded.server.base) as client:
        sync(client, store, bbox_wgs84=bbox)
    names = {d["name"] for d in store.list_datastreams()}
    assert "RG-Bern-Mitte precipitation" in names and "Temperature Datastream for Vordere Länggasse" in names
    assert not any("Lyss" in n or "Ittigen" in n for n in names)


def test_faults_5xx_429_and_timeouts_give_exact_counts(fault_proxy, sta_seeded, tmp_path):
    fault_proxy.faults = Faults(error_every=3, too_many_every=7, timeout_every=11, delay_s=1.0)
    store = open_store(tmp_path / "r.sqlite")
    with _client(fault_proxy.url("/sensorthings/v1.1"), timeout_s=0.4) as client:
        report = sync(client, store, page_size=50)
        retries = client.stats.retries
    assert report.ok, report.incomplete
    assert _counts_by_name(store) == sta_seeded.expected
    inj = fault_proxy.faults.injected
    assert inj["error"] > 0 and inj["429"] > 0 and inj["timeout"] > 0
    assert retries == sum(inj.values())


def test_fault_nextlink_loop_is_detected_and_the_next_sync_completes(fault_proxy, sta_seeded, tmp_path):
    fault_proxy.faults = Faults(loop_after=2)
    store = open_store(tmp_path / "r.sqlite")
    root = fault_proxy.url("/sensorthings/v1.1")
    with _client(root) as client:
        report = sync(client, store, page_size=50)
    assert fault_proxy.faults.injected["loop"] > 0
    assert report.incomplete and all("loop" in msg for msg in report.incomplete.values())
    counts = _counts_by_name(store)
    assert all(counts[n] <= sta_seeded.expected[n] for n in counts)  # nothing doubled
    looped = [d for d in store.list_datastreams() if d["iot_id"] in report.incomplete]
    assert all(d["hwm_us"] is None for d in looped)  # the mark did not move past unread data
    fault_proxy.faults = Faults()
    with _client(root) as client:
        again = sync(client, store, page_size=50)
    assert again.ok and _counts_by_name(store) == sta_seeded.expected


def test_fault_duplicated_pages_never_double_count(fault_proxy, sta_seeded, tmp_path):
    fault_proxy.faults = Faults(duplicate_pages=True)
    store = open_store(tmp_path / "r.sqlite")
    with _client(fault_proxy.url("/sensorthings/v1.1")) as client:
        report = sync(client, store, page_size=30)
    assert fault_proxy.faults.injected["duplicate_page"] > 0
    assert report.ok and report.stats.duplicates >= 30
    assert _counts_by_name(store) == sta_seeded.expected


def test_fault_nan_results_and_skewed_clocks_are_rejected_or_flagged(fault_proxy, sta_seeded, tmp_path):
    f = fault_proxy.faults = Faults(bad_result_mod=10, future_mod=10, skew_offsets=True)
    store = open_store(tmp_path / "r.sqlite")
    with _client(fault_proxy.url("/sensorthings/v1.1")) as client:
        report = sync(client, store, page_size=50)
    assert report.ok
    n_bad, n_future = len(f.nan_ids), len(f.future_ids)
    assert n_bad > 0 and n_future > 0
    assert store.count() == sta_seeded.total - n_bad
    assert sum(store.count_rejected().values()) == n_bad == report.stats.n_rejected
    assert store.count(flags=FLAG_FUTURE) == n_future == report.stats.flagged_future
    # skewed offsets are the same instants: the 11117 series keeps its UTC times
    series = next(t for t in sta_seeded.things if t["properties"].get("bern_id") == "11117")
    temps = next(d for d in series["Datastreams"] if "Temperature" in d["name"])["Observations"]
    want = {parse_instant_us(o["phenomenonTime"]) for o in temps}
    ds = next(d for d in store.list_datastreams() if d["name"] == "Temperature Datastream for Ittigen Papiermühle Kreisel")
    got = {r[1] for r in store.rows(ds["id"]) if not r[4] & FLAG_FUTURE}
    assert got <= want and len(want - got) <= n_bad + n_future
    # future readings do not move the high-water mark
    assert all(d["hwm_us"] is None or d["hwm_us"] < time.time() * 1e6 for d in store.list_datastreams())


def test_server_restart_mid_sync_loses_and_doubles_nothing(tmp_path):
    seeded = start_seeded(tmp_path / "sta")
    srv = seeded.server
    try:
        store = open_store(tmp_path / "r.sqlite")
        retry = RetryPolicy(max_attempts=12, base_s=0.1, cap_s=1.0, min_s=0.05)
        client = _client(srv.base, retry=retry, breaker=CircuitBreaker(failure_threshold=50))
        restarted = threading.Event()

        def restart_when_busy():
            t0 = time.monotonic()
            while client.stats.requests < 12 and time.monotonic() - t0 < 30:
                time.sleep(0.005)
            srv.kill()
            time.sleep(0.3)
            srv.start(timeout_s=60)
            restarted.set()

        th = threading.Thread(target=restart_when_busy, daemon=True)
        th.start()
        with client:
            report = sync(client, store, page_size=20)
        th.join(60)
        assert restarted.is_set()
        assert client.stats.failures.get("connection", 0) > 0  # the restart was felt
        if not report.ok:  # a datastream that ran out of retries is completed by the next sync
            with _client(srv.base) as c2:
                report = sync(c2, store, page_size=20)
        assert report.ok
        assert _counts_by_name(store) == seeded.expected
    finally:
        srv.stop()


def test_unreachable_server_opens_the_circuit(tmp_path):
    from tests.sensors.servers import free_port

    breaker = CircuitBreaker(failure_threshold=3, reset_s=60)
    client = _client(f"http://127.0.0.1:{free_port()}/sta", breaker=breaker,
                     retry=RetryPolicy(max_attempts=5, base_s=0.0, cap_s=0.0, min_s=0.0))
    with client, pytest.raises(SensorServerError, match="circuit open"):
        sync(client, open_store(tmp_path / "r.sqlite"))
    assert breaker.times_opened == 1 and client.stats.requests == 3
