"""Worker process entry point: `python -m workbench.jobs.worker RUN_ID`.

Trains one run and records how it ended. SIGTERM asks it to stop: it finishes the current
step, saves a checkpoint and reports `cancelled`. An exception reports `failed` with the
message (and the traceback in the run's log).
"""

from __future__ import annotations

import signal
import sys
import time
import traceback
from typing import Any, Callable

from workbench.errors import WorkbenchError
from workbench.store import RunStatus, Store


def execute(store: Store, run_id: int, stop: Any = None, log: Callable[[str], None] = print) -> RunStatus:
    """Train the run and record its final status (what a worker does, callable in-process)."""
    from workbench.engine.trainer import (
        train,  # torch loads here, not when the module is imported
    )

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
    status = execute(Store(), run_id, stop)
    print(f"run {run_id} {status}", flush=True)
    return 1 if status == RunStatus.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
