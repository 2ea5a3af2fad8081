"""Real servers for the sensor tests, started as subprocesses on 127.0.0.1 and always torn down.

- :class:`StaServer`: django-ogc-sensorthings (PyPI) on SQLite under uvicorn (``twin.workflows._sta_server``,
  the same server the demo starts).
- :class:`Mosquitto`: the Debian ``mosquitto`` broker (installed by ``make sysdeps``).
Every wait is bounded; a server that does not come up fails the test with its log.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float, log: Path) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not up after {timeout_s} s: {log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen | None, timeout_s: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


class StaServer:
    """django-ogc-sensorthings on SQLite at ``http://127.0.0.1:<port>/sensorthings/v1.1``."""

    def __init__(self, workdir: Path, *, port: int | None = None, max_top: int = 100):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.db = self.workdir / "sta.sqlite3"
        self.log = self.workdir / "sta.log"
        self.max_top = max_top
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/sensorthings/v1.1"

    def start(self, timeout_s: float = 60.0) -> "StaServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "twin.workflows._sta_server", "--port", str(self.port), "--db", str(self.db),
                 "--max-top", str(self.max_top)], cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, timeout_s, self.log)
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")
                                              if os.access(p, os.X_OK)), None)


class Mosquitto:
    """A Mosquitto broker on ``127.0.0.1:<port>`` with anonymous access, no persistence."""

    def __init__(self, workdir: Path, *, port: int | None = None):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 15.0) -> "Mosquitto":
        exe = mosquitto_path()
        if exe is None:
            raise RuntimeError("mosquitto is not installed; run `make sysdeps` (apt-get install mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                             "log_dest stderr\nmax_queued_messages 1000000\nmax_inflight_messages 1000\n")
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=fh, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, timeout_s, self.log)
        return self

    def stop(self) -> None:
        _stop(self.proc)
