"""Who created which scenario or run (``WORKSPACE/api.sqlite``): planners change only their own,
admins anyone's. Kept beside the run registry, not in it, because ownership is the API's concern."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["Owners"]


class Owners:
    def __init__(self, workspace: Path | None):
        """``workspace=None`` keeps the table in memory (a read-only workspace)."""
        self.path = None if workspace is None else Path(workspace) / "api.sqlite"
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(":memory:" if self.path is None else self.path, timeout=30, isolation_level=None,
                                     check_same_thread=False)
        if self.path is not None:
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS owners (kind TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, "
                           "created TEXT NOT NULL, PRIMARY KEY (kind, id))")

    def get(self, kind: str, id: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT owner FROM owners WHERE kind=? AND id=?", (kind, id)).fetchone()
        return row[0] if row else None

    def many(self, kind: str) -> dict[str, str]:
        with self._lock:
            return dict(self._conn.execute("SELECT id, owner FROM owners WHERE kind=?", (kind,)).fetchall())

    def set(self, kind: str, id: str, owner: str) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._conn.execute("INSERT INTO owners (kind, id, owner, created) VALUES (?,?,?,?) ON CONFLICT (kind, id) "
                               "DO UPDATE SET owner=excluded.owner, created=excluded.created", (kind, id, owner, now))

    def set_default(self, kind: str, id: str, owner: str) -> None:
        """Record ``owner`` unless the item already has one."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._conn.execute("INSERT OR IGNORE INTO owners (kind, id, owner, created) VALUES (?,?,?,?)",
                               (kind, id, owner, now))

    def delete(self, kind: str, id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM owners WHERE kind=? AND id=?", (kind, id))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
