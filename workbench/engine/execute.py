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
from workbench.store.lifecycle import Beat, this_worker
from workbench.store.store import HEARTBEAT_S


class StopFlag:
    """Set from a signal handler or another thread; the loop checks it after every step. `lost`:
    why the run is no longer this worker's (the heartbeat found it taken), so the stop writes nothing."""

    def __init__(self) -> None:
        self.requested = False
        self.lost: str | None = None

    def request(self, *_: Any) -> None:
        self.requested = True

    def lose(self, why: str) -> None:
        self.lost = why
        self.requested = True


class Heartbeat:
    """The worker's sign of life: a background thread writes the run's heartbeat every `every`
    seconds (`Store.beat`) and, when a cancel has been requested through the database, asks the
    training loop to stop (`stop.request()`). A store that cannot be reached for a while costs
    heartbeats, never the run: it keeps training and beats again when the store answers. Once the
    run's start names this process as its worker, a heartbeat that finds the run no longer so
    (judged gone while this machine was cut off or suspended, and perhaps started again by another
    worker) stops the loop writing nothing more (`stop.lose`): the run is the other worker's."""

    def __init__(self, store: Store, run_id: int, stop: Any, log: Callable[[str], None],
                 every: float = HEARTBEAT_S) -> None:
        self.store, self.run_id, self.stop, self.log, self.every = store, run_id, stop, log, every
        self.me = this_worker()
        self.started = False  # the run's start recorded this process as its worker
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
                self._check(self.store.beat(self.run_id, self.me if self.started else None))
                if failing:
                    self.log(f"run {self.run_id}: the store answers again; heartbeats resumed")
                failing = False
            except StoreError as exc:
                if not failing:
                    self.log(f"run {self.run_id}: heartbeat not recorded ({exc}); training goes on, retrying")
                failing = True
            if self._done.wait(self.every):
                return

    def _check(self, beat: Beat) -> None:
        if beat.taken and not self.stop.lost:
            why = taken_from(self.store, self.run_id, self.me)
            self.log(f"{why}; stopping after this step, writing nothing more")
            self.stop.lose(why)
        elif beat.cancel and not self.stop.requested:
            self.log(f"run {self.run_id}: cancel requested through the store; stopping after this step")
            self.stop.request()
        self.started = self.started or beat.worker == self.me

    def held(self) -> dict[str, Any]:
        """The store's condition for a write that only this run's worker may make (`Store.transition`)."""
        return {"pid": self.me[0], "host": self.me[1]}


def taken_from(store: Store, run_id: int, worker: tuple[int, str]) -> str:
    """Why the run is no longer `worker`'s, as its log says it: what the run is now."""
    run = store.get_run(run_id)
    now = (f"running with pid {run.pid} on {run.host}" if run.status == RunStatus.RUNNING
           else f"{run.status} ({run.error})" if run.error else str(run.status))
    return f"run {run_id} is no longer this worker's (pid {worker[0]} on {worker[1]}): it is {now}"

def execute(store: Store, run_id: int, stop: Any = None, log: Callable[[str], None] = print) -> RunStatus:
    """Train the run and record its final status (what a worker does, callable in-process)."""
    from workbench.engine import distributed
    from workbench.engine.trainer import (
        train,  # torch loads here, not when the module is imported
    )

    stop = stop or StopFlag()
    if not distributed.current().main:  # rank 0 of a torchrun launch records the run's status
        return train(store, run_id, stop, log=log)
    heartbeat = Heartbeat(store, run_id, stop, log)
    try:
        with heartbeat:
            status = train(store, run_id, stop, log=log)
    except RunEnded as exc:  # cancelled (or judged gone) while this worker started: left as it is
        log(str(exc))
        return RunStatus(store.get_run(run_id).status)
    except Exception as exc:
        traceback.print_exc()
        lost = distributed.lost_peers(distributed.current(), exc)
        # the end is recorded only while the run is this worker's (once its start named it: `held`)
        held = heartbeat.held() if heartbeat.started else None
        if lost:  # a peer killed or crashed is an interruption, not this run's failure
            store.transition(run_id, RunStatus.INTERRUPTED, only_from=[RunStatus.RUNNING], where=held,
                             finished_at=time.time(),
                             error=f"{lost} stopped (killed or crashed: its last lines are in worker.log), so the "
                                   f"others could not go on; `workbench resume {run_id}` continues from the last "
                                   f"checkpoint")
            return RunStatus.INTERRUPTED
        message = str(exc) if isinstance(exc, WorkbenchError) else traceback.format_exc()
        store.transition(run_id, RunStatus.FAILED, only_from=[RunStatus.RUNNING, RunStatus.QUEUED], where=held,
                         error=message, finished_at=time.time())
        return RunStatus.FAILED
    if not store.transition(run_id, status, only_from=[RunStatus.RUNNING], where=heartbeat.held(),
                            finished_at=time.time()):  # taken since the last heartbeat
        return RunStatus(store.get_run(run_id).status)
    return status
