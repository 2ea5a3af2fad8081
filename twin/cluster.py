"""Where Dask work runs: in-process (default), a LocalCluster of N worker processes, or a running cluster.

Every tiled or distributed workflow of twin (tiled screening and heat, heavy rain by catchments,
ensembles) builds a Dask graph and hands it to :func:`compute` together with the client that
:func:`dask_client` gave it:

- ``dask_client()`` (neither option): no client; graphs run on Dask's threaded scheduler in this
  process (the embedded default, nothing to start).
- ``dask_client(workers=N)``: a ``dask.distributed.LocalCluster`` of N worker processes on
  127.0.0.1 (one thread each by default, no dashboard), closed when the block ends.
- ``dask_client(scheduler="tcp://host:8786")``: a client of an existing cluster (not closed).

The same code runs in all three; progress comes from the Dask tasks themselves (a tqdm bar over
finished futures, or Dask's local callbacks in-process).
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any, Callable, Iterator

from twin.errors import TwinIOError, TwinValueError

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = ["dask_client", "compute", "worker_memory", "cluster_info"]

_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")


def _check(workers: int | None, scheduler: str | None) -> None:
    if workers is not None and scheduler is not None:
        raise TwinValueError(f"give --workers ({workers}) or --scheduler ({scheduler}), not both")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise TwinValueError(f"workers must be a whole number >= 1, got {workers!r}")
    if scheduler is not None and not _ADDRESS.match(str(scheduler)):
        raise TwinValueError(f"scheduler address {scheduler!r} is not a Dask address; use e.g. tcp://10.0.0.5:8786")


@contextlib.contextmanager
def dask_client(*, workers: int | None = None, scheduler: str | None = None, threads_per_worker: int = 1,
                memory_limit: str | float | None = "auto", timeout_s: float = 30.0) -> Iterator["Client | None"]:
    """A Dask client for the block, or None for the in-process default.

    Parameters
    ----------
    workers : int, optional
        Start a LocalCluster with this many worker processes (127.0.0.1, no dashboard).
    scheduler : str, optional
        Connect to a running scheduler at this address (``tcp://host:port``).
    threads_per_worker : int
        Threads of each LocalCluster worker (1: Numba kernels use their own threads inside a task).
    memory_limit : str or float, optional
        Per-worker memory limit of a LocalCluster (Dask's spelling: ``"4GB"``, bytes, ``"auto"``).
    timeout_s : float
        How long to wait for a scheduler to answer (s).

    Raises
    ------
    TwinValueError
        Both options, a worker count < 1 or an address that is not ``scheme://host:port``.
    TwinIOError
        The scheduler does not answer within ``timeout_s``.
    """
    _check(workers, scheduler)
    if workers is None and scheduler is None:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{timeout_s}s")
        except (OSError, TimeoutError) as exc:
            raise TwinIOError(f"cannot reach the Dask scheduler at {scheduler} within {timeout_s:g} s: {exc}; "
                              "check the address and that `dask scheduler` runs there") from exc
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=int(threads_per_worker), processes=True,
                           host="127.0.0.1", dashboard_address=None, memory_limit=memory_limit)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def compute(*graphs: Any, client: "Client | None" = None, progress: bool | Callable[[int, int], None] = False,
            desc: str = "dask") -> list:
    """Compute Dask collections (delayed objects, arrays) and return their values in order.

    Parameters
    ----------
    *graphs
        Dask collections (or plain values, returned as they are).
    client : distributed.Client, optional
        Run on this cluster; None runs on the threaded scheduler in this process.
    progress : bool or callable(done, total)
        True draws a tqdm bar over finished tasks (finished futures on a cluster); a callable is called
        after every finished task (cluster) or graph node (in-process).
    desc : str
        Label of the progress bar.
    """
    import dask

    if client is not None:
        from distributed import as_completed

        futures = client.compute(list(graphs))
        if progress:
            bar = _bar(progress, len(futures), desc)
            for _ in as_completed(futures):
                bar(1)
            bar(None)
        return client.gather(futures)
    if not progress:
        return list(dask.compute(*graphs, scheduler="threads"))
    from dask.callbacks import Callback

    state = {"done": 0, "total": 0}
    bar = None

    def start_state(_dsk, st):
        nonlocal bar
        state["total"] = sum(len(st[k]) for k in ("ready", "waiting", "running", "finished") if k in st)
        bar = _bar(progress, state["total"], desc)

    def posttask(_key, _result, _dsk, _state, _id):
        bar(1)

    with Callback(start_state=start_state, posttask=posttask):
        out = list(dask.compute(*graphs, scheduler="threads"))
    if bar is not None:
        bar(None)
    return out


def _bar(progress, total: int, desc: str) -> Callable[[int | None], None]:
    """A step function: bar(n) advances by n, bar(None) closes."""
    if callable(progress):
        done = [0]

        def step(n):
            if n is not None:
                done[0] += n
                progress(done[0], total)
        return step
    from tqdm import tqdm

    t = tqdm(total=total, desc=desc, unit="task", leave=False)

    def step(n):
        if n is None:
            t.close()
        else:
            t.update(n)
    return step


def cluster_info(client: "Client | None") -> dict:
    """Workers, threads and memory limits of a client (``{"workers": 0}`` in-process)."""
    if client is None:
        return {"workers": 0, "mode": "in-process threads"}
    info = client.scheduler_info(n_workers=-1) if _takes_n_workers(client) else client.scheduler_info()
    ws = info.get("workers", {})
    return {"workers": len(ws), "mode": "distributed", "scheduler": info.get("address"),
            "threads": sum(w.get("nthreads", 0) for w in ws.values()),
            "memory_limit_bytes": [w.get("memory_limit") for w in ws.values()]}


def _takes_n_workers(client) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False


def worker_memory(client: "Client | None") -> dict[str, int]:
    """Resident memory (bytes) of every worker process now (psutil on each worker), or of this process."""
    import psutil

    def rss() -> int:
        import psutil as _ps

        return int(_ps.Process().memory_info().rss)

    if client is None:
        return {"local": int(psutil.Process().memory_info().rss)}
    return {str(k): int(v) for k, v in client.run(rss).items()}
