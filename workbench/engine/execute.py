"""Training one run and recording how it ended: what a worker process does (`workbench.worker`),
callable in-process too (tests, benchmarks).

A stop request (SIGTERM in a worker, or a cancel stored in the database by any host, which the
heartbeat thread finds) finishes the current step, saves a checkpoint and reports `cancelled`.
While it trains, the worker's heartbeat tells every desktop and scheduler of the store, on any
host, that it is alive. An exception reports `failed` with the message (and the traceback in the log); a data-parallel run whose other rank
went away reports `interrupted`, naming the rank.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable

from workbench.errors import RunEnded, StoreError, WorkbenchError
from workbench.store import RunStatus, Store
from workbench.store.store import HEARTBEAT_S


class Heartbeat:
    """The worker's sign of life: a background thread writes the run's heartbeat every `every`
    seconds (`Store.beat`) and, when a cancel has been requested through the database, asks the
    training loop to stop (`stop.request()`). A store that cannot be reached for a while costs
    heartbeats, never the run: it keeps training and beats again when the store answers."""

    def __init__(self, store: Store, run_id: int, stop: Any, log: Callable[[str], None],
                 every: float = HEARTBEAT_S) -> None:
        self.store, self.run_id, self.stop, self.log, self.every = store, run_id, stop, log, every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        failing = False
        while True:
            try:
                if self.store.beat(self.run_id) and not self.stop.requested:
                    self.log(f"run {self.run_id}: cancel requested through the store; stopping after this step")
                    self.stop.request()
                if failing:
                    self.log(f"run {self.run_id}: the store answers again; heartbeats resumed")
                failing = False
            except StoreError as exc:
                if not failing:
                    self.log(f"run {self.run_id}: heartbeat not recorded ({exc}); training goes on, retrying")
                failing = True
            if self._done.wait(self.every):
                return


def execute(store: Store, run_id: int, stop: Any = None, log: Callable[[str], None] = print) -> RunStatus:
    """Train the run and record its final status (what a worker does, callable in-process)."""
    from workbench.engine import distributed
    from workbench.engine.trainer import (
        StopFlag,
        train,  # torch loads here, not when the module is imported
    )

    stop = stop or StopFlag()
    if not distributed.current().main:  # rank 0 of a torchrun launch records the run's status
        return train(store, run_id, stop, log=log)
    try:
        with Heartbeat(store, run_id, stop, log):
            status = train(store, run_id, stop, log=log)
    except RunEnded as exc:  # cancelled (or judged gone) while this worker started: left as it is
        log(str(exc))
        return RunStatus(store.get_run(run_id).status)
    except Exception as exc:
        traceback.print_exc()
        lost = distributed.lost_peers(distributed.current(), exc)
        if lost:  # a peer killed or crashed is an interruption, not this run's failure
            store.transition(run_id, RunStatus.INTERRUPTED, only_from=[RunStatus.RUNNING], finished_at=time.time(),
                             error=f"{lost} stopped (killed or crashed: its last lines are in worker.log), so the "
                                   f"others could not go on; `workbench resume {run_id}` continues from the last "
                                   f"checkpoint")
            return RunStatus.INTERRUPTED
        message = str(exc) if isinstance(exc, WorkbenchError) else traceback.format_exc()
        store.transition(run_id, RunStatus.FAILED, only_from=[RunStatus.RUNNING, RunStatus.QUEUED],
                         error=message, finished_at=time.time())
        return RunStatus.FAILED
    store.transition(run_id, status, only_from=[RunStatus.RUNNING], finished_at=time.time())
    return status
