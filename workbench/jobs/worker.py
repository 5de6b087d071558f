"""Worker process entry point: `python -m workbench.jobs.worker RUN_ID`.

Trains one run and records how it ended. SIGTERM asks it to stop: it finishes the current
step, saves a checkpoint and reports `cancelled`. An exception reports `failed` with the
message (and the traceback in the run's log). A run with `nproc` > 1 turns its worker into
torchrun (same process), which runs this module once per rank (`workbench.engine.distributed`).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from typing import Any, Callable

from workbench.errors import WorkbenchError
from workbench.store import RunStatus, Store


def execute(store: Store, run_id: int, stop: Any = None, log: Callable[[str], None] = print) -> RunStatus:
    """Train the run and record its final status (what a worker does, callable in-process)."""
    from workbench.engine import distributed
    from workbench.engine.trainer import (
        train,  # torch loads here, not when the module is imported
    )

    if not distributed.current().main:  # rank 0 of a torchrun launch records the run's status
        return train(store, run_id, stop, log=log)
    try:
        status = train(store, run_id, stop, log=log)
    except Exception as exc:
        traceback.print_exc()
        message = str(exc) if isinstance(exc, WorkbenchError) else traceback.format_exc()
        store.transition(run_id, RunStatus.FAILED, only_from=[RunStatus.RUNNING, RunStatus.QUEUED],
                         error=message, finished_at=time.time())
        return RunStatus.FAILED
    store.transition(run_id, status, only_from=[RunStatus.RUNNING], finished_at=time.time())
    return status


def _continue_study(store: Store, run_id: int) -> None:
    """Start what this run unblocked in its study, so a study goes on with no window open."""
    from workbench.studies import on_run_end

    try:
        started = on_run_end(store, run_id)
    except WorkbenchError as exc:  # the run itself is recorded; a runner's poll will go on later
        print(f"run {run_id}: could not continue its study: {exc}", flush=True)
        return
    if started:
        print(f"run {run_id}: its study goes on with run(s) {', '.join(map(str, started))}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m workbench.jobs.worker RUN_ID", file=sys.stderr)
        return 2
    from workbench.engine.trainer import StopFlag

    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.request)
    signal.signal(signal.SIGINT, stop.request)
    run_id = int(args[0])
    store = Store()
    nproc = int(store.get_run(run_id).config.get("nproc", 1))
    if nproc > 1 and "RANK" not in os.environ:  # become torchrun (same pid), which starts the ranks
        from workbench.engine.distributed import launch_argv
        from workbench.jobs.runner import WORKER_MODULE

        argv = launch_argv(WORKER_MODULE, run_id, nproc)
        print(f"run {run_id}: {nproc} processes through torchrun", flush=True)
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
        os.execv(argv[0], argv)
    status = execute(store, run_id, stop)
    if os.environ.get("RANK", "0") == "0":
        print(f"run {run_id} {status}", flush=True)
        _continue_study(store, run_id)
    return 1 if status == RunStatus.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
