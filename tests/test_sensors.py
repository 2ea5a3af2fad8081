"""Unit tests of twin.sensors: units, time parsing, observation parsing, store, paging (mock transport),
QC, forcing and NGSI payloads; CLI against the real SensorThings server."""

from __future__ import annotations

import json
import math

import httpx
import numpy as np
import pytest

from tests.common import TEST_DATA
from tests.sensors.fixtures import sta_seeded  # noqa: F401 (fixture)
from twin.sensors._model import (FLAG_FUTURE, FLAG_RANGE, FLAG_SPATIAL, FLAG_SPIKE, FLAG_STALE, FLAG_STUCK,
                                 classify_property, parse_instant_us, parse_observation, parse_phenomenon_time)
from twin.sensors.client import CircuitBreaker, RetryPolicy, SensorThingsClient
from twin.sensors.errors import CircuitOpenError, PagingError, UnitError
from twin.sensors.store import open_store
from twin.sensors.units import conversion_for

H = 3_600_000_000


@pytest.mark.parametrize("unit, value, canonical, expected", [
    ({"symbol": "Cel"}, 20.0, "degC", 20.0), ({"symbol": "°C"}, 20.0, "degC", 20.0), ("degC", 1.0, "degC", 1.0),
    ("K", 293.15, "degC", 20.0), ("%", 55.0, "%", 55.0), ("C62", 0.55, "%", 55.0), ("mm", 1.2, "mm", 1.2),
    ("cm", 12.0, "mm", 120.0), ("mm/h", 6.0, "mm/h", 6.0), ("mm/min", 0.1, "mm/h", 6.0),
    ({"name": "Degree Celsius", "symbol": ""}, 3.0, "degC", 3.0),
])
def test_unit_table(unit, value, canonical, expected):
    conv = conversion_for(unit)
    assert conv.canonical == canonical and conv(value) == pytest.approx(expected)


def test_unknown_unit_is_rejected_with_a_message():
    with pytest.raises(UnitError, match="furlong.*known symbols"):
        conversion_for({"symbol": "furlong", "name": "furlong"}, datastream="42")


def test_time_parsing_normalises_to_utc():
    z = parse_instant_us("2025-06-05T18:00:00Z")
    assert parse_instant_us("2025-06-05T20:00:00+02:00") == z
    assert parse_instant_us("2025-06-05T18:00Z") == z  # missing seconds
    assert parse_instant_us("2025-06-05T18:00:00.250Z") == z + 250_000
    assert parse_phenomenon_time("2025-06-05T17:55:00Z/2025-06-05T18:00:00Z") == (z - 300_000_000, z)


@pytest.mark.parametrize("result, reason", [("NaN", "nan"), (None, "null"), ("abc", "non_numeric"),
                                            ({"v": 1}, "non_numeric"), (True, "non_numeric"),
                                            (float("inf"), "nan")])
def test_non_numeric_results_are_rejected(result, reason):
    row, why, _ = parse_observation({"phenomenonTime": "2025-06-05T18:00:00Z", "result": result},
                                    conversion_for("mm"), future_limit_us=2**62)
    assert row is None and why == reason


def test_numeric_strings_intervals_and_future_flags():
    row, why, _ = parse_observation({"phenomenonTime": "2025-06-05T17:55:00Z/2025-06-05T18:00:00Z", "result": "0.4"},
                                    conversion_for("mm"), future_limit_us=parse_instant_us("2025-06-05T17:00:00Z"))
    assert why is None and row[2] == 0.4 and row[1] - row[0] == 300_000_000 and row[4] & FLAG_FUTURE


def test_classify_property():
    assert classify_property("Temperature", "http://sensorthings.org/Temperature") == "air_temperature"
    assert classify_property("Water temperature") is None
    assert classify_property("Humidity") == "relative_humidity"
    assert classify_property("Niederschlag") == "precipitation"
    assert classify_property("Pegel") == "water_level"
    assert classify_property("PM10") is None


def test_store_is_idempotent_and_round_trips(tmp_path):
    store = open_store(tmp_path / "db" / "r.sqlite")
    ds = store.upsert_datastream(source="s", iot_id="1", name="g", property="precipitation", unit="mm")
    assert store.upsert_datastream(source="s", iot_id="1", name="g2", property="precipitation", unit="mm") == ds
    rows = [(k * H, k * H, 0.1 * k, None, 0, str(k)) for k in range(10)]
    assert store.insert(ds, rows) == 10 and store.insert(ds, rows[5:]) == 0
    assert [r[:3] for r in store.rows(ds)] == [r[:3] for r in rows]
    store.advance_hwm(ds, 5 * H)
    store.advance_hwm(ds, 3 * H)
    assert store.hwm(ds) == 5 * H
    assert store.reject(ds, [("t", "nan", "'NaN'")] * 2) == 1
    da = store.to_xarray("precipitation")
    assert da.shape == (10, 1) and da.attrs["units"] == "mm"
    store.close()
    assert open_store(tmp_path / "db" / "r.sqlite").count() == 10  # persisted


def _page_transport(pages):
    """A mock server: path+query -> JSON page (unit test of the paging logic)."""
    def handler(request: httpx.Request):
        key = request.url.raw_path.decode()
        return httpx.Response(200, json=pages[key]) if key in pages else httpx.Response(404, json={"message": key})
    return httpx.MockTransport(handler)


def test_nextlink_followed_verbatim_relative_and_absolute_and_loops_detected():
    pages = {
        "/v1.1/Observations?%24top=2": {"value": [{"@iot.id": 1}, {"@iot.id": 2}], "@iot.count": 999,
                                        "@iot.nextLink": "Observations?$top=2&$skipFilter=(id gt 2)"},
        "/v1.1/Observations?$top=2&$skipFilter=(id%20gt%202)": {
            "value": [{"@iot.id": 3}], "@iot.nextLink": "http://sta/v1.1/Observations?$top=2&$skip=3"},
        "/v1.1/Observations?$top=2&$skip=3": {"value": [{"@iot.id": 4}, {"@iot.id": 5}]},
    }
    with SensorThingsClient("http://sta/v1.1", transport=_page_transport(pages)) as c:
        ids = [e["@iot.id"] for e in c.entities("Observations", {"$top": "2"})]
    assert ids == [1, 2, 3, 4, 5]  # a short page does not end the paging; @iot.count is ignored
    pages["/v1.1/Observations?$top=2&$skip=3"]["@iot.nextLink"] = "Observations?$top=2&$skipFilter=(id gt 2)"
    with SensorThingsClient("http://sta/v1.1", transport=_page_transport(pages)) as c, \
            pytest.raises(PagingError, match="loop"):
        list(c.entities("Observations", {"$top": "2"}))


def test_retry_honours_status_and_breaker_opens():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(503 if len(calls) < 3 else 200, json={"value": []})

    slept = []
    c = SensorThingsClient("http://sta", transport=httpx.MockTransport(handler), sleep=slept.append, seed=1,
                           retry=RetryPolicy(max_attempts=5, base_s=0.1, cap_s=1.0))
    assert c.get_json("Things") == {"value": []} and len(calls) == 3 and len(slept) == 2
    assert all(0.0 <= s <= 1.0 for s in slept)
    clock = [0.0]
    b = CircuitBreaker(failure_threshold=2, reset_s=10, clock=lambda: clock[0])
    b.failure(), b.failure()
    with pytest.raises(CircuitOpenError):
        b.before_call("x")
    clock[0] = 11.0
    b.before_call("x")  # half-open: one trial
    b.success()
    assert b.state == "closed"


def test_qc_flags_range_spike_stuck_stale_and_spatial(tmp_path):
    store = open_store(tmp_path / "r.sqlite")
    ids = []
    for s in range(6):
        ds = store.upsert_datastream(source="s", iot_id=str(s), name=f"T{s}", property="air_temperature",
                                     unit="degC", thing=f"st{s}", lon=7.4 + s / 100, lat=46.9)
        ids.append(ds)
        vals = [20.0 + 0.1 * k + 0.05 * s for k in range(24)]
        if s == 0:
            vals[5] = 80.0     # out of range
            vals[10] = 35.0    # spike
        if s == 1:
            vals[12:24] = [22.0] * 12  # stuck for 11 h
        if s == 2:
            vals = [v + 12.0 for v in vals]  # spatial outlier every hour
        store.insert(ds, [(k * H, k * H, v, None, 0, None) for k, v in enumerate(vals)])
    counts = run = __import__("twin.sensors.qc", fromlist=["run_qc"]).run_qc(store, "air_temperature",
                                                                               now=30 * H, stale_h=2)
    flags0 = [r[4] for r in store.rows(ids[0])]
    assert flags0[5] & FLAG_RANGE and flags0[10] & FLAG_SPIKE and not flags0[11] & FLAG_SPIKE
    assert all(r[4] & FLAG_STUCK for r in store.rows(ids[1])[12:])
    assert all(r[4] & FLAG_SPATIAL for r in store.rows(ids[2]))
    assert counts["stale"] == 6 and store.count(flags=FLAG_STALE) == 6
    assert store.count() == 6 * 24  # flagged, not dropped
    assert run is counts


def test_rain_forcing_uniform_and_fields(tmp_path):
    from twin.sensors.forcing import rain_field, rain_forcing

    store = open_store(tmp_path / "r.sqlite")
    t0 = parse_instant_us("2025-06-05T12:00:00Z")
    step = 300_000_000
    for g, (lon, depth) in enumerate([(7.40, 1.0), (7.50, 3.0)]):
        ds = store.upsert_datastream(source="s", iot_id=str(g), name=f"G{g}", property="precipitation", unit="mm",
                                     lon=lon, lat=46.9)
        store.insert(ds, [(t0 + k * step, t0 + (k + 1) * step, depth, None, 0, None) for k in range(12)])
    ds = rain_forcing(store, start="2025-06-05T12:00:00Z", end="2025-06-05T13:00:00Z")
    assert ds.sizes == {"time": 12, "gauge": 2}
    np.testing.assert_allclose(ds["rain_mm_per_h"].isel(gauge=0), 12.0)  # 1 mm per 5 min
    np.testing.assert_allclose(ds["rain_uniform_mm_per_h"], 24.0)
    # volume: the uniform series integrates to the mean gauge depth
    assert float(ds["rain_uniform_mm_per_h"].sum()) * 5 / 60 == pytest.approx(24.0)
    x = np.array([0.0, 50.0, 100.0])
    f = rain_field(ds["rain_mm_per_h"], x, np.array([0.0]), gauge_x=[0.0, 100.0], gauge_y=[0.0, 0.0])
    np.testing.assert_allclose(f.isel(time=0, y=0), [12.0, 24.0, 36.0])
    t = rain_field(ds["rain_mm_per_h"], x, np.array([0.0]), gauge_x=[0.0, 100.0], gauge_y=[0.0, 0.0],
                   method="thiessen")
    np.testing.assert_allclose(t.isel(time=0, y=0), [12.0, 12.0, 36.0])


def test_ngsi_payloads_into_the_store(tmp_path):
    from twin.sensors.ngsi import read_ngsi

    store = open_store(tmp_path / "r.sqlite")
    d = TEST_DATA / "sensors" / "ngsi"
    st = read_ngsi(store, json.loads((d / "weather_observed.json").read_text()))
    assert st.inserted == 4 and st.rejected == {"non_numeric": 1}
    st2 = read_ngsi(store, json.loads((d / "temporal.json").read_text()))
    assert st2.inserted == 4 and st2.duplicates == 0 and st2.rejected == {"null": 1}
    st3 = read_ngsi(store, json.loads((d / "v2_entities.json").read_text()))
    assert st3.inserted == 2
    rh = store.series("relative_humidity")
    assert list(rh["value"]) == [pytest.approx(62.0)]  # 0..1 ratio -> %
    ta = store.series("air_temperature")
    assert sorted(ta["value"].round(2)) == [19.0, 20.1, 20.9, 21.0, 21.4]  # 294.15 K -> 21.0 degC
    wl = store.series("water_level")
    assert list(wl["value"]) == [pytest.approx(1350.0)]  # m -> mm
    b2 = ta[ta["name"].str.contains("Bern-02")]
    assert str(b2["time"].iloc[0]) == "2025-06-05 16:00:00+00:00"  # +02:00 normalised
    # the same payload again stores nothing new
    assert read_ngsi(store, json.loads((d / "temporal.json").read_text())).inserted == 0


def test_heat_forcing_from_the_real_server(sta_seeded, tmp_path, capsys):
    """CLI sync (real server) -> QC -> one hour of temperature/humidity for the heat model; list --json."""
    from twin.cli.main import main
    from twin.sensors.forcing import heat_forcing

    db = tmp_path / "r.sqlite"
    assert main(["sensors", "sync", "--url", sta_seeded.server.base, "--db", str(db),
                 "--bbox", "7.0,46.5,8.0,47.5", "--page-size", "50"]) == 0
    out = capsys.readouterr().out
    assert f"{sta_seeded.total} new" in out
    assert main(["sensors", "list", "--db", str(db), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {d["name"]: d["n_readings"] for d in listed} == sta_seeded.expected
    store = open_store(db)
    ds = heat_forcing(store, hour="2024-11-01T12:00:00Z")
    assert ds.sizes["station"] == 1 and 0 < float(ds["air_temperature"][0]) < 30
    assert 0 < float(ds["relative_humidity"][0]) <= 100 and not math.isnan(ds.attrs["air_temperature_mean"])
    from twin.sensors.forcing import rain_forcing

    rain = rain_forcing(store, start="2025-06-05T12:00:00Z", end="2025-06-05T18:00:00Z")
    # 40 mm storms in 0.1 mm steps: the per-gauge totals survive the trip through the server
    totals = (rain["rain_mm_per_h"].sum("time") * 5 / 60).values
    np.testing.assert_allclose(totals, 40.0, atol=0.5)


def test_cli_rejects_a_bad_bbox(capsys):
    from twin.cli.main import main

    assert main(["sensors", "sync", "--url", "http://127.0.0.1:9/v1.1", "--db", "x.sqlite", "--bbox", "1,2,3"]) == 2
    assert "--bbox" in capsys.readouterr().err
