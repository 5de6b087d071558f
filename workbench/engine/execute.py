"""Training one run and recording how it ended: what a worker process does (`workbench.worker`),
callable in-process too (tests, benchmarks).

A stop request (SIGTERM in a worker) finishes the current step, saves a checkpoint and reports
`cancelled`. An exception reports `failed` with the message (and the traceback in the log); a data-parallel run whose other rank
went away reports `interrupted`, naming the rank.
"""

from __future__ import annotations

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
        lost = distributed.lost_ranks(distributed.current(), exc)
        if lost:  # a peer killed or crashed is an interruption, not this run's failure
            world = distributed.current().world
            store.transition(run_id, RunStatus.INTERRUPTED, only_from=[RunStatus.RUNNING], finished_at=time.time(),
                             error=f"rank {' and '.join(map(str, lost))} of the {world} processes stopped (killed or "
                                   f"crashed: its last lines are in worker.log), so the others could not go on; "
                                   f"`workbench resume {run_id}` continues from the last checkpoint")
            return RunStatus.INTERRUPTED
        message = str(exc) if isinstance(exc, WorkbenchError) else traceback.format_exc()
        store.transition(run_id, RunStatus.FAILED, only_from=[RunStatus.RUNNING, RunStatus.QUEUED],
                         error=message, finished_at=time.time())
        return RunStatus.FAILED
    store.transition(run_id, status, only_from=[RunStatus.RUNNING], finished_at=time.time())
    return status
