"""pytest fixtures for the sensor integration tests (imported by tests/test_sensors_*.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.sensors import seed as seeding
from tests.sensors.proxy import FaultProxy
from tests.sensors.servers import Mosquitto, StaServer, mosquitto_path


@dataclass
class Seeded:
    server: StaServer
    things: list
    expected: dict  # observations per Datastream name (known units only)

    @property
    def total(self) -> int:
        return sum(self.expected.values())


def start_seeded(workdir, things=None) -> Seeded:
    things = things if things is not None else seeding.all_things()
    srv = StaServer(workdir).start()
    try:
        seeding.seed(srv.base, things)
    except Exception:
        srv.stop()
        raise
    return Seeded(srv, things, seeding.expected_counts(things))


@pytest.fixture(scope="session")
def sta_seeded(tmp_path_factory):
    """A real django-ogc-sensorthings server seeded with the Bern sample and generated gauges (read-only use)."""
    s = start_seeded(tmp_path_factory.mktemp("sta"))
    yield s
    s.server.stop()


@pytest.fixture
def fault_proxy(sta_seeded):
    origin = f"http://127.0.0.1:{sta_seeded.server.port}"
    p = FaultProxy(origin).start()
    yield p
    p.stop()


@pytest.fixture
def mosquitto(tmp_path):
    if mosquitto_path() is None:
        pytest.fail("mosquitto is not installed: `make test` installs it (make sysdeps); run that first")
    b = Mosquitto(tmp_path / "mqtt").start()
    yield b
    b.stop()
