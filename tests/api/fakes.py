"""Stand-ins for ``twin.workflows.run.execute_run`` that run in the pool's worker processes: they
move a registered run through the registry as the real one does, without models."""

from __future__ import annotations

import os
import time

from twin.workflows.registry import RunRegistry, utc_now


def slow_run(workspace: str, run_id: str, steps: int = 40, step_s: float = 0.05):
    """Running for ``steps * step_s`` seconds, reporting progress, stopping when cancelled."""
    reg = RunRegistry(workspace)
    if reg.get(run_id).status in ("done", "cancelled"):
        return reg.get(run_id)
    reg.update(run_id, status="running", started=utc_now(), message="working")
    for i in range(steps):
        if reg.cancel_requested(run_id):
            return reg.update(run_id, status="cancelled", finished=utc_now(), message="cancelled")
        reg.update(run_id, progress=round(i / steps, 4), message=f"step {i + 1} of {steps}")
        time.sleep(step_s)
    return reg.update(run_id, status="done", progress=1.0, finished=utc_now(), message="done",
                      timings={"total_s": steps * step_s})


def endless_run(workspace: str, run_id: str):
    return slow_run(workspace, run_id, steps=100_000, step_s=0.05)


def crashing_run(workspace: str, run_id: str):
    """The worker process dies (as on an out-of-memory kill)."""
    RunRegistry(workspace).update(run_id, status="running", started=utc_now())
    os._exit(9)
