"""The run registry: one SQLite file per workspace (``WORKSPACE/registry.sqlite``).

Every run of a scenario is a row: its scenario and hashes, the models, status and progress, times,
timings, water balance, input hashes, software version, run folder, error and a cancel flag. Several
processes share the file (the API's workers, the CLI): WAL journal, a busy timeout and one short
transaction per call, each on its own connection, so a reader never blocks a writer and no
connection crosses a process or thread.

Status: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``cancelled``; ``interrupted`` for runs
that were queued or running when their process died (:meth:`RunRegistry.mark_interrupted`, which
the API calls at start-up).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from twin.errors import TwinIOError, TwinValueError

__all__ = ["RunRegistry", "RunRecord", "RunNotFoundError", "STATUSES", "FINAL_STATUSES", "utc_now"]

STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
FINAL_STATUSES = ("done", "failed", "cancelled", "interrupted")
_SCHEMA_VERSION = 1
_JSON_FIELDS = ("models", "timings", "water_balance", "inputs")
_COLUMNS = ("id", "scenario_id", "scenario_hash", "models", "status", "progress", "message", "created", "started",
            "finished", "timings", "water_balance", "inputs", "version", "run_dir", "error", "cancel_requested")


class RunNotFoundError(TwinValueError, KeyError):
    """No run with that id in the registry."""

    def __str__(self) -> str:   # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def utc_now() -> str:
    """Now as ISO 8601 UTC with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class RunRecord:
    """One run as the registry holds it (times ISO 8601 UTC; ``progress`` 0..1)."""

    id: str
    scenario_id: str
    scenario_hash: str
    models: list[str]
    status: str = "queued"
    progress: float = 0.0
    message: str = ""
    created: str = ""
    started: str | None = None
    finished: str | None = None
    timings: dict = field(default_factory=dict)
    water_balance: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    version: str = ""
    run_dir: str = ""
    error: str | None = None
    cancel_requested: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class RunRegistry:
    """The run registry of a workspace.

    Parameters
    ----------
    workspace : path
        The workspace folder; the registry is ``workspace/registry.sqlite`` (created on first use).
    timeout_s : float
        How long a call waits for another process's write lock before failing.
    """

    def __init__(self, workspace: str | os.PathLike, *, timeout_s: float = 30.0) -> None:
        self.workspace = Path(workspace)
        self.path = self.workspace / "registry.sqlite"
        self.timeout_s = float(timeout_s)
        try:
            self.workspace.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TwinIOError(f"cannot create the workspace {self.workspace}: {exc}") from exc
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            con.execute("""CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY, scenario_id TEXT NOT NULL, scenario_hash TEXT NOT NULL, models TEXT NOT NULL,
                status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '',
                created TEXT NOT NULL, started TEXT, finished TEXT, timings TEXT NOT NULL DEFAULT '{}',
                water_balance TEXT NOT NULL DEFAULT '{}', inputs TEXT NOT NULL DEFAULT '{}',
                version TEXT NOT NULL DEFAULT '', run_dir TEXT NOT NULL DEFAULT '', error TEXT,
                cancel_requested INTEGER NOT NULL DEFAULT 0)""")
            con.execute("CREATE INDEX IF NOT EXISTS runs_hash ON runs (scenario_hash, status)")
            con.execute("CREATE INDEX IF NOT EXISTS runs_created ON runs (created)")
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(_SCHEMA_VERSION),))
            elif int(row[0]) > _SCHEMA_VERSION:
                raise TwinIOError(f"{self.path} was written by a newer twin (registry schema {row[0]}); upgrade twin")

    # ------------------------------------------------------------------------------------ plumbing
    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise TwinIOError(f"cannot open the run registry {self.path}: {exc}") from exc
        con.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() != "wal":
            con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        return _Closing(con)

    @staticmethod
    def _record(row: sqlite3.Row | tuple) -> RunRecord:
        d = dict(zip(_COLUMNS, row))
        for k in _JSON_FIELDS:
            d[k] = json.loads(d[k]) if d[k] else ({} if k != "models" else [])
        d["cancel_requested"] = bool(d["cancel_requested"])
        return RunRecord(**d)

    # ------------------------------------------------------------------------------------ API
    def create(self, *, scenario_id: str, scenario_hash: str, models: Iterable[str], inputs: dict | None = None,
               version: str = "", run_dir: str | None = None, run_id: str | None = None,
               message: str = "queued") -> RunRecord:
        """Register a new run (status ``queued``). The id is ``<scenario_id>-<8 hex>`` unless given."""
        rid = run_id or f"{scenario_id[:48]}-{secrets.token_hex(4)}"
        rec = RunRecord(id=rid, scenario_id=scenario_id, scenario_hash=scenario_hash, models=list(models),
                        status="queued", message=message, created=utc_now(), inputs=dict(inputs or {}),
                        version=version, run_dir=run_dir if run_dir is not None else str(self.workspace / "runs" / rid))
        values = self._values(rec)
        try:
            with self._connect() as con:
                con.execute(f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                            values)
        except sqlite3.IntegrityError as exc:
            raise TwinValueError(f"a run with id {rid!r} exists already") from exc
        return rec

    @staticmethod
    def _values(rec: RunRecord) -> tuple:
        d = rec.to_dict()
        return tuple(json.dumps(d[c], sort_keys=True, default=str) if c in _JSON_FIELDS else
                     (int(d[c]) if c == "cancel_requested" else d[c]) for c in _COLUMNS)

    def get(self, run_id: str) -> RunRecord:
        with self._connect() as con:
            row = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r} in {self.path}")
        return self._record(row)

    def list(self, *, scenario_id: str | None = None, status: str | Iterable[str] | None = None,
             limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first, optionally of one scenario and/or in some statuses."""
        where, params = [], []
        if scenario_id is not None:
            where.append("scenario_id = ?")
            params.append(scenario_id)
        if status is not None:
            sts = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({', '.join('?' * len(sts))})")
            params += sts
        sql = f"SELECT {', '.join(_COLUMNS)} FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY created DESC, id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        with self._connect() as con:
            return [self._record(r) for r in con.execute(sql, params).fetchall()]

    def update(self, run_id: str, **changes) -> RunRecord:
        """Set fields of a run (JSON fields replaced whole); returns the updated record."""
        bad = set(changes) - set(_COLUMNS[1:])
        if bad:
            raise TwinValueError(f"unknown run fields {sorted(bad)}; fields are {list(_COLUMNS[1:])}")
        if "status" in changes and changes["status"] not in STATUSES:
            raise TwinValueError(f"status {changes['status']!r} is not one of {STATUSES}")
        if not changes:
            return self.get(run_id)
        cols, vals = [], []
        for k, v in changes.items():
            cols.append(f"{k} = ?")
            vals.append(json.dumps(v, sort_keys=True, default=str) if k in _JSON_FIELDS else
                        (int(bool(v)) if k == "cancel_requested" else v))
        with self._connect() as con:
            cur = con.execute(f"UPDATE runs SET {', '.join(cols)} WHERE id = ?", (*vals, run_id))
            if cur.rowcount == 0:
                raise RunNotFoundError(f"no run {run_id!r} in {self.path}")
        return self.get(run_id)

    def request_cancel(self, run_id: str) -> RunRecord:
        """Ask a run to stop; a queued run is cancelled at once, a running one at its next progress step."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                con.execute("ROLLBACK")
                raise RunNotFoundError(f"no run {run_id!r} in {self.path}")
            if row[0] == "queued":
                con.execute("UPDATE runs SET cancel_requested = 1, status = 'cancelled', finished = ?, "
                            "message = 'cancelled before it started' WHERE id = ?", (utc_now(), run_id))
            elif row[0] == "running":
                con.execute("UPDATE runs SET cancel_requested = 1, message = 'cancel requested' WHERE id = ?",
                            (run_id,))
            con.execute("COMMIT")
        return self.get(run_id)

    def cancel_requested(self, run_id: str) -> bool:
        with self._connect() as con:
            row = con.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r} in {self.path}")
        return bool(row[0])

    def find_done(self, scenario_hash: str, models: Iterable[str], *, inputs: dict | None = None,
                  version: str | None = None) -> RunRecord | None:
        """The newest finished (``done``) run of this scenario hash with the same models (and, when
        given, the same input hashes and software version), else None."""
        want = sorted(models)
        for rec in self.list(status="done"):
            if rec.scenario_hash != scenario_hash or sorted(rec.models) != want:
                continue
            if version is not None and rec.version != version:
                continue
            if inputs is not None and any(rec.inputs.get(k) != v for k, v in inputs.items()):
                continue
            if rec.run_dir and not Path(rec.run_dir).is_dir():
                continue   # its folder was deleted: not reusable
            return rec
        return None

    def mark_interrupted(self, *, message: str = "interrupted: the process running it stopped") -> list[str]:
        """Set every queued or running run to ``interrupted`` (call once at start-up); returns their ids."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            ids = [r[0] for r in con.execute("SELECT id FROM runs WHERE status IN ('queued', 'running')")]
            if ids:
                con.execute(f"UPDATE runs SET status = 'interrupted', finished = ?, message = ? "
                            f"WHERE id IN ({', '.join('?' * len(ids))})", (utc_now(), message, *ids))
            con.execute("COMMIT")
        return ids

    def delete(self, run_id: str) -> None:
        """Remove a run's row (its folder is the caller's to remove)."""
        with self._connect() as con:
            if con.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 0:
                raise RunNotFoundError(f"no run {run_id!r} in {self.path}")


class _Closing:
    """A sqlite3 connection as a context manager that closes (sqlite3's own only commits)."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def execute(self, *a, **k):
        return self.con.execute(*a, **k)

    def __enter__(self) -> "_Closing":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.con.in_transaction:
            self.con.rollback()
        self.con.close()
