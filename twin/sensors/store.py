"""Storage of sensor readings: SQLite (WAL, one file) by default, PostgreSQL when given a URL.

Readings are idempotent on ``(datastream, phenomenon start, phenomenon end)``: storing the same
observation twice (a duplicated page, an MQTT message that a backfill reads again) keeps one row.
Each datastream carries a high-water mark (``hwm_us``): the newest phenomenon end stored from a
complete read, so a restarted sync resumes where it stopped. Times are integer microseconds since
1970-01-01 UTC. Values are in the canonical unit of their property (see :mod:`twin.sensors.units`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Sequence

from twin.errors import TwinIOError, TwinValueError
from twin.sensors._model import FLAG_FUTURE, flag_names

__all__ = ["ReadingStore", "open_store"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS datastreams (
        id {pk}, source TEXT NOT NULL, iot_id TEXT NOT NULL, name TEXT, property TEXT, unit TEXT,
        unit_source TEXT, thing TEXT, lon DOUBLE PRECISION, lat DOUBLE PRECISION, hwm_us BIGINT,
        last_sync_us BIGINT, meta TEXT, UNIQUE (source, iot_id))""",
    """CREATE TABLE IF NOT EXISTS observations (
        ds INTEGER NOT NULL, t_start BIGINT NOT NULL, t_end BIGINT NOT NULL,
        value DOUBLE PRECISION NOT NULL, result_time BIGINT, flags INTEGER NOT NULL DEFAULT 0, iot_id TEXT,
        PRIMARY KEY (ds, t_start, t_end)){without_rowid}""",
    """CREATE TABLE IF NOT EXISTS rejected (
        ds INTEGER NOT NULL, phenomenon_time TEXT NOT NULL, reason TEXT NOT NULL, raw TEXT,
        PRIMARY KEY (ds, phenomenon_time))""",
]


class ReadingStore:
    """Sensor readings in SQLite or PostgreSQL. Use :func:`open_store`; close with :meth:`close`
    (or use as a context manager). One store object is used from one thread at a time."""

    def __init__(self, conn, *, dialect: str, location: str):
        self._conn = conn
        self.dialect = dialect
        self.location = location
        self._lock = threading.RLock()
        self._ds_cache: dict[tuple[str, str], int] = {}
        pk = "INTEGER PRIMARY KEY" if dialect == "sqlite" else "SERIAL PRIMARY KEY"
        wr = " WITHOUT ROWID" if dialect == "sqlite" else ""
        with self._tx() as cur:
            for stmt in _SCHEMA:
                cur.execute(stmt.format(pk=pk, without_rowid=wr))

    # -- plumbing -------------------------------------------------------------------------------------
    def _q(self, sql: str) -> str:
        return sql if self.dialect == "sqlite" else sql.replace("?", "%s")

    class _Tx:
        def __init__(self, store):
            self.store = store

        def __enter__(self):
            self.store._lock.acquire()
            self.cur = self.store._conn.cursor()
            if self.store.dialect == "sqlite":
                self.cur.execute("BEGIN")
            return self.cur

        def __exit__(self, exc_type, exc, tb):
            try:
                if exc_type is None:
                    self.store._conn.commit()
                else:
                    self.store._conn.rollback()
            finally:
                self.cur.close()
                self.store._lock.release()
            return False

    def _tx(self):
        return ReadingStore._Tx(self)

    def _fetch(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._tx() as cur:
            cur.execute(self._q(sql), tuple(params))
            return cur.fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- datastreams ----------------------------------------------------------------------------------
    def upsert_datastream(self, *, source: str, iot_id: str, name: str | None = None, property: str | None = None,
                          unit: str | None = None, unit_source: str | None = None, thing: str | None = None,
                          lon: float | None = None, lat: float | None = None, meta: dict | None = None) -> int:
        """Register (or update the description of) a datastream; returns its store id."""
        sql = ("INSERT INTO datastreams (source, iot_id, name, property, unit, unit_source, thing, lon, lat, meta) "
               "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (source, iot_id) DO UPDATE SET name=excluded.name, "
               "property=excluded.property, unit=excluded.unit, unit_source=excluded.unit_source, "
               "thing=excluded.thing, lon=excluded.lon, lat=excluded.lat, meta=excluded.meta")
        params = (source, str(iot_id), name, property, unit, unit_source, thing, lon, lat,
                  json.dumps(meta or {}, default=str))
        with self._tx() as cur:
            cur.execute(self._q(sql), params)
            cur.execute(self._q("SELECT id FROM datastreams WHERE source=? AND iot_id=?"), (source, str(iot_id)))
            ds = int(cur.fetchone()[0])
        self._ds_cache[(source, str(iot_id))] = ds
        return ds

    def datastream_id(self, source: str, iot_id: str) -> int | None:
        key = (source, str(iot_id))
        if key not in self._ds_cache:
            rows = self._fetch("SELECT id FROM datastreams WHERE source=? AND iot_id=?", key)
            if not rows:
                return None
            self._ds_cache[key] = int(rows[0][0])
        return self._ds_cache[key]

    def datastream(self, ds: int) -> dict:
        rows = self._fetch("SELECT id, source, iot_id, name, property, unit, unit_source, thing, lon, lat, hwm_us, "
                           "last_sync_us, meta FROM datastreams WHERE id=?", (ds,))
        if not rows:
            raise TwinValueError(f"no datastream with store id {ds!r} in {self.location}; "
                                 "fix: list them with `twin sensors list --db DB`")
        return self._ds_row(rows[0])

    @staticmethod
    def _ds_row(r) -> dict:
        keys = ("id", "source", "iot_id", "name", "property", "unit", "unit_source", "thing", "lon", "lat", "hwm_us",
                "last_sync_us", "meta")
        d = dict(zip(keys, r))
        d["meta"] = json.loads(d["meta"] or "{}")
        return d

    def list_datastreams(self, *, property: str | None = None, source: str | None = None) -> list[dict]:
        """Every datastream (optionally of one property/source) with its reading count and time span."""
        sql = ("SELECT d.id, d.source, d.iot_id, d.name, d.property, d.unit, d.unit_source, d.thing, d.lon, d.lat, "
               "d.hwm_us, d.last_sync_us, d.meta, COUNT(o.ds), MIN(o.t_end), MAX(o.t_end), "
               "SUM(CASE WHEN o.flags <> 0 THEN 1 ELSE 0 END) "
               "FROM datastreams d LEFT JOIN observations o ON o.ds = d.id")
        where, params = [], []
        if property is not None:
            where.append("d.property = ?")
            params.append(property)
        if source is not None:
            where.append("d.source = ?")
            params.append(source)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " GROUP BY d.id, d.source, d.iot_id, d.name, d.property, d.unit, d.unit_source, d.thing, d.lon, " \
               "d.lat, d.hwm_us, d.last_sync_us, d.meta ORDER BY d.id"
        out = []
        for r in self._fetch(sql, params):
            d = self._ds_row(r[:13])
            d.update(n_readings=int(r[13]), first_us=r[14], last_us=r[15], n_flagged=int(r[16] or 0))
            rej = self._fetch("SELECT reason, COUNT(*) FROM rejected WHERE ds=? GROUP BY reason", (d["id"],))
            d["rejected"] = {k: int(v) for k, v in rej}
            out.append(d)
        return out

    # -- high-water marks ----------------------------------------------------------------------------
    def hwm(self, ds: int) -> int | None:
        rows = self._fetch("SELECT hwm_us FROM datastreams WHERE id=?", (ds,))
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    def advance_hwm(self, ds: int, t_us: int | None, *, synced_at_us: int | None = None) -> None:
        """Raise the datastream's high-water mark to ``t_us`` (never lowers it)."""
        if t_us is None and synced_at_us is None:
            return
        big = "MAX" if self.dialect == "sqlite" else "GREATEST"
        with self._tx() as cur:
            if t_us is not None:
                cur.execute(self._q(f"UPDATE datastreams SET hwm_us = {big}(COALESCE(hwm_us, ?), ?) WHERE id=?"),
                            (t_us, t_us, ds))
            if synced_at_us is not None:
                cur.execute(self._q("UPDATE datastreams SET last_sync_us = ? WHERE id=?"), (synced_at_us, ds))

    def max_time(self, ds: int, *, exclude_flags: int = FLAG_FUTURE) -> int | None:
        """Newest phenomenon end stored for ``ds`` among rows without ``exclude_flags``."""
        rows = self._fetch("SELECT MAX(t_end) FROM observations WHERE ds=? AND (flags & ?) = 0", (ds, exclude_flags))
        return None if rows[0][0] is None else int(rows[0][0])

    # -- readings --------------------------------------------------------------------------------------
    def insert(self, ds: int, rows: Iterable[tuple]) -> int:
        """Store readings ``(t_start_us, t_end_us, value, result_time_us, flags, iot_id)``; returns how many
        were new (the rest were already stored and are left untouched)."""
        data = [(ds, *r) for r in rows]
        if not data:
            return 0
        if self.dialect == "sqlite":
            sql = ("INSERT OR IGNORE INTO observations (ds, t_start, t_end, value, result_time, flags, iot_id) "
                   "VALUES (?,?,?,?,?,?,?)")
            with self._tx() as cur:
                before = self._conn.total_changes
                cur.executemany(sql, data)
                return self._conn.total_changes - before
        sql = ("INSERT INTO observations (ds, t_start, t_end, value, result_time, flags, iot_id) "
               "VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING")
        n = 0
        with self._tx() as cur:
            for row in data:  # psycopg's executemany rowcount is not reliable across versions
                cur.execute(sql, row)
                n += cur.rowcount
        return n

    def reject(self, ds: int, items: Iterable[tuple[str, str, str]]) -> int:
        """Record rejected observations ``(phenomenon_time, reason, raw)``, once per (ds, time); returns new ones."""
        data = [(ds, str(t), reason, raw) for t, reason, raw in items]
        if not data:
            return 0
        n = 0
        with self._tx() as cur:
            if self.dialect == "sqlite":
                before = self._conn.total_changes
                cur.executemany("INSERT OR IGNORE INTO rejected (ds, phenomenon_time, reason, raw) VALUES (?,?,?,?)",
                                data)
                n = self._conn.total_changes - before
            else:
                for row in data:
                    cur.execute("INSERT INTO rejected (ds, phenomenon_time, reason, raw) VALUES (%s,%s,%s,%s) "
                                "ON CONFLICT DO NOTHING", row)
                    n += cur.rowcount
        return n

    def count(self, ds: int | None = None, *, flags: int | None = None) -> int:
        """Number of stored readings (of one datastream; with any of ``flags`` set)."""
        sql, params = "SELECT COUNT(*) FROM observations WHERE 1=1", []
        if ds is not None:
            sql += " AND ds=?"
            params.append(ds)
        if flags is not None:
            sql += " AND (flags & ?) <> 0"
            params.append(flags)
        return int(self._fetch(sql, params)[0][0])

    def count_rejected(self, ds: int | None = None) -> dict[str, int]:
        sql, params = "SELECT reason, COUNT(*) FROM rejected", []
        if ds is not None:
            sql += " WHERE ds=?"
            params.append(ds)
        return {k: int(v) for k, v in self._fetch(sql + " GROUP BY reason", params)}

    def rows(self, ds: int) -> list[tuple]:
        """All readings of a datastream ``(t_start, t_end, value, result_time, flags, iot_id)`` by time."""
        return self._fetch("SELECT t_start, t_end, value, result_time, flags, iot_id FROM observations WHERE ds=? "
                           "ORDER BY t_end, t_start", (ds,))

    def set_flags(self, ds: int, updates: Iterable[tuple[int, int, int]], *, mask: int) -> None:
        """Replace the bits of ``mask`` in the flags of readings ``(t_start, t_end, new_bits)``."""
        data = [(int(bits) & mask, t0, t1) for t0, t1, bits in updates]
        sql = self._q(f"UPDATE observations SET flags = (flags & {~mask & 0x7FFFFFFF}) | ? "
                      "WHERE ds=? AND t_start=? AND t_end=?")
        with self._tx() as cur:
            cur.executemany(sql, [(b, ds, t0, t1) for b, t0, t1 in data])

    def latest(self, *, property: str | None = None, include_flagged: bool = True) -> list[dict]:
        """The newest reading of every datastream (optionally of one property) with its description.

        Each item: the datastream's fields (``id``, ``name``, ``thing``, ``property``, ``unit``, ``lon``,
        ``lat``, ...) plus ``t_start_us``, ``t_end_us``, ``value``, ``flags``; datastreams without readings
        (or, unless ``include_flagged``, without an unflagged one) are left out.
        """
        cond = "" if include_flagged else " WHERE flags = 0"
        sql = ("SELECT d.id, d.source, d.iot_id, d.name, d.property, d.unit, d.unit_source, d.thing, d.lon, d.lat, "
               "d.hwm_us, d.last_sync_us, d.meta, o.t_start, o.t_end, o.value, o.flags "
               "FROM datastreams d JOIN observations o ON o.ds = d.id "
               f"JOIN (SELECT ds, MAX(t_end) AS t FROM observations{cond} GROUP BY ds) m "
               "ON m.ds = o.ds AND m.t = o.t_end")
        params: list = []
        where = [] if include_flagged else ["o.flags = 0"]
        if property is not None:
            where.append("d.property = ?")
            params.append(property)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY d.id, o.t_start DESC"
        out, seen = [], set()
        for r in self._fetch(sql, params):
            if r[0] in seen:          # two readings ending at the same time: the later-starting one
                continue
            seen.add(r[0])
            d = self._ds_row(r[:13])
            d.update(t_start_us=int(r[13]), t_end_us=int(r[14]), value=float(r[15]), flags=int(r[16]))
            out.append(d)
        return out

    # -- analysis views ----------------------------------------------------------------------------------
    def series(self, property: str, *, start: str | None = None, end: str | None = None,
               include_flagged: bool = True):
        """Readings of one property as a long pandas DataFrame.

        Columns: ``datastream`` (store id), ``iot_id``, ``name``, ``thing``, ``lon``, ``lat``, ``time`` (phenomenon
        end, UTC), ``start`` (phenomenon start, UTC), ``value`` (canonical unit, in ``df.attrs['units']``),
        ``flags`` (bitmask) and ``flag_names``.
        """
        import pandas as pd

        from twin.sensors._model import parse_instant_us

        sql = ("SELECT o.ds, d.iot_id, d.name, d.thing, d.lon, d.lat, o.t_end, o.t_start, o.value, o.flags, d.unit "
               "FROM observations o JOIN datastreams d ON d.id = o.ds WHERE d.property = ?")
        params: list = [property]
        if start is not None:
            sql += " AND o.t_end >= ?"
            params.append(parse_instant_us(start))
        if end is not None:
            sql += " AND o.t_end < ?"
            params.append(parse_instant_us(end))
        if not include_flagged:
            sql += " AND o.flags = 0"
        sql += " ORDER BY o.ds, o.t_end"
        rows = self._fetch(sql, params)
        df = pd.DataFrame(rows, columns=["datastream", "iot_id", "name", "thing", "lon", "lat", "time", "start", "value",
                                         "flags", "unit"])
        units = sorted(set(df["unit"])) if len(df) else []
        df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="us", utc=True)
        df["start"] = pd.to_datetime(df["start"].astype("int64"), unit="us", utc=True)
        df["flag_names"] = [",".join(flag_names(int(f))) for f in df["flags"]]
        df = df.drop(columns="unit")
        df.attrs["units"] = units[0] if len(units) == 1 else units
        df.attrs["property"] = property
        return df

    def to_xarray(self, property: str, *, start: str | None = None, end: str | None = None,
                  include_flagged: bool = False):
        """One property as an ``xarray.DataArray`` (time, station) with lon/lat/name coordinates and units.

        Flagged readings are left out (NaN) unless ``include_flagged``. Requires one canonical unit for the
        property (e.g. precipitation depths and rates are not mixed)."""
        import numpy as np
        import xarray as xr

        df = self.series(property, start=start, end=end, include_flagged=include_flagged)
        units = df.attrs["units"]
        if isinstance(units, list) and len(units) > 1:
            raise TwinValueError(f"{property} readings come in several units {units}; fix: select datastreams "
                                 "of one unit with series() and convert them first")
        wide = df.pivot_table(index="time", columns="datastream", values="value", aggfunc="first")
        meta = df.drop_duplicates("datastream").set_index("datastream").reindex(wide.columns)
        times = wide.index.tz_convert("UTC").tz_localize(None) if len(wide) else wide.index
        da = xr.DataArray(
            wide.to_numpy(dtype=float) if len(wide) else np.zeros((0, 0)), dims=("time", "station"),
            coords={"time": np.asarray(times, dtype="datetime64[ns]"), "station": wide.columns.to_numpy(),
                    "iot_id": ("station", meta["iot_id"].to_numpy()), "name": ("station", meta["name"].to_numpy()),
                    "lon": ("station", meta["lon"].to_numpy(float)), "lat": ("station", meta["lat"].to_numpy(float))},
            name=property, attrs={"units": units if units else "", "long_name": property.replace("_", " "),
                                  "time_zone": "UTC"})
        return da


def open_store(target: str | os.PathLike) -> ReadingStore:
    """Open (creating it if needed) a reading store.

    ``target`` is a file path for SQLite (WAL mode; parent folder created), or a
    ``postgresql://user:pw@host:port/db`` URL for PostgreSQL (needs the ``psycopg`` package).
    """
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg
        except ImportError as exc:
            raise TwinIOError(f"cannot open {text!r}: PostgreSQL needs the psycopg package; "
                              "fix: pip install 'psycopg[binary]' or use a SQLite file path") from exc
        try:
            conn = psycopg.connect(text, connect_timeout=10)
        except psycopg.Error as exc:
            raise TwinIOError(f"cannot connect to PostgreSQL at {text!r}: {exc}; fix: check the URL and that "
                              "the server is running") from exc
        return ReadingStore(conn, dialect="postgresql", location=text)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]
    path = Path(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except (sqlite3.Error, OSError) as exc:
        raise TwinIOError(f"cannot open the sensor database {str(path)!r}: {exc}; fix: give a writable file "
                          "path with --db") from exc
    return ReadingStore(conn, dialect="sqlite", location=str(path))
