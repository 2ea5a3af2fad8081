"""Runs outside the event loop: a process pool of bounded size executing
``twin.workflows.run.execute_run(workspace, run_id)``, which records progress and status in the run
registry itself. This module imports no web framework, so the pool's workers start light.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import sys
import threading
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["RunManager", "TERMINAL"]

log = logging.getLogger("twin.api")

#: statuses after which a run changes no more
TERMINAL = frozenset({"done", "failed", "cancelled", "interrupted"})
DEFAULT_TARGET = "twin.workflows.run:execute_run"


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _execute(target: str, workspace: str, run_id: str) -> str:
    """Runs in a pool worker: import the target and execute the run (picklable arguments only)."""
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name)
    record = fn(workspace, run_id)
    return str(getattr(record, "status", "done"))


def _context():
    # forkserver: workers fork from a clean single-threaded server, never from the threaded web process
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)


class RunManager:
    """Submits runs to a ``ProcessPoolExecutor`` (``max_workers = settings.max_concurrent_runs``).

    Runs beyond the pool's size wait in its queue with status ``queued``. Cancelling a queued run
    removes it from the queue; cancelling a running one sets the record's ``cancel_requested``, which
    ``execute_run`` checks between steps. A worker that dies marks its run ``failed``.
    """

    def __init__(self, settings, registry, *, target: str = DEFAULT_TARGET):
        self.workspace = Path(settings.workspace)
        self.max_workers = int(settings.max_concurrent_runs)
        self.registry = registry
        self.target = target
        self._lock = threading.Lock()
        self._futures: dict[str, Future] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    # -- pool ----------------------------------------------------------------------------------------
    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.max_workers, mp_context=_context())
        return self._pool

    def active_count(self) -> int:
        with self._lock:
            return sum(1 for f in self._futures.values() if not f.done())

    def active_ids(self) -> list[str]:
        with self._lock:
            return [k for k, f in self._futures.items() if not f.done()]

    def is_active(self, run_id: str) -> bool:
        with self._lock:
            f = self._futures.get(run_id)
            return f is not None and not f.done()

    # -- runs ----------------------------------------------------------------------------------------
    def submit(self, run_id: str) -> None:
        """Queue a registered run for execution."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the run manager is shut down")
            if run_id in self._futures and not self._futures[run_id].done():
                return
            try:
                future = self._get_pool().submit(_execute, self.target, str(self.workspace), run_id)
            except BrokenProcessPool:
                self._pool = None      # a worker died earlier: start a fresh pool
                future = self._get_pool().submit(_execute, self.target, str(self.workspace), run_id)
            self._futures[run_id] = future
        future.add_done_callback(lambda f, rid=run_id: self._finished(rid, f))

    def cancel(self, run_id: str) -> bool:
        """Cancel a run: at once when it still waits in the queue, else through ``cancel_requested``.
        Returns True when it was removed from the queue before starting."""
        with self._lock:
            future = self._futures.get(run_id)
        if future is not None and future.cancel():
            self._set_status(run_id, "cancelled", "cancelled before it started")
            return True
        self.registry.request_cancel(run_id)
        return False

    def _finished(self, run_id: str, future: Future) -> None:
        try:
            exc = future.exception()
        except CancelledError:
            return
        if exc is None or self._closed:     # at shutdown, shutdown() records what was left unfinished
            return
        # execute_run records its own failures; this covers crashes it could not record (a killed worker)
        log.error("run %s ended with %s: %s", run_id, type(exc).__name__, exc)
        rec = self._get(run_id)
        if rec is not None and getattr(rec, "status", None) not in TERMINAL:
            reason = ("the worker process died (out of memory or killed)" if isinstance(exc, BrokenProcessPool)
                      else f"{type(exc).__name__}: {exc}")
            self._set_status(run_id, "failed", reason, error=reason)
        if isinstance(exc, BrokenProcessPool):
            with self._lock:
                self._pool = None

    def _get(self, run_id: str):
        try:
            return self.registry.get(run_id)
        except Exception:
            return None

    def _set_status(self, run_id: str, status: str, message: str, **extra) -> None:
        try:
            self.registry.update(run_id, status=status, message=message, **extra)
        except Exception:
            log.exception("cannot record status %s of run %s", status, run_id)

    def shutdown(self) -> None:
        """Stop: drop queued runs, end the workers of running ones, and record every run that had not
        finished as ``interrupted`` (not ``cancelled``: nobody asked them to stop; they can be started
        again)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            pending = {k: f for k, f in self._futures.items() if not f.done()}
        if pool is None:
            return
        for future in pending.values():
            future.cancel()
        # ProcessPoolExecutor has no public way to stop a running task (terminate_workers() arrives in
        # Python 3.14); keep the worker handles before shutdown() drops them
        procs = list((getattr(pool, "_processes", None) or {}).values())
        if any(not f.done() for f in pending.values()):
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        for run_id in pending:
            rec = self._get(run_id)
            if rec is not None and getattr(rec, "status", None) not in TERMINAL:
                self._set_status(run_id, "interrupted", "the server stopped while the run was queued or running",
                                 finished=_utc_now())
