"""Training one run and recording how it ended: what a worker process does (`workbench.worker`),
callable in-process too (tests, benchmarks).

A stop request (SIGTERM in a worker, or a cancel stored in the database by any host, which the
heartbeat thread finds) finishes the current step, saves a checkpoint and reports `cancelled`.
While it trains, the worker's heartbeat tells every desktop and scheduler of the store, on any
host, that it is alive. An exception reports `failed` with the message (and the traceback in
the log); a data-parallel run whose other rank went away reports `interrupted`, naming the rank.

A worker writes to its run only while the token of its start holds it (`Run.worker_token`: given
by the claim that launched it, or taken here by a worker given none). A worker judged gone while
alive (its machine suspended, or cut off from the database past the heartbeat timeout) whose run
started again finds out at its next heartbeat or metric write, and stops writing nothing more.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any, Callable

from workbench import paths
from workbench.errors import RunEnded, StoreError, WorkbenchError
from workbench.store import RunStatus, Store
from workbench.store.lifecycle import TOKEN_ENV, held_by
from workbench.store.store import HEARTBEAT_S


class StopFlag:
    """Set from a signal handler or another thread; the loop checks it after every step. `lost`:
    why the run is no longer this worker's (another start holds it), so the stop writes nothing."""

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
    seconds (`Store.beat`) while its `token` holds the run, and asks the training loop to stop
    (`stop.request()`: a checkpoint, then the end) when a cancel was requested through the
    database or the run was ended by someone else, or to stop writing nothing (`stop.lose`) when
    another start holds the run. A store that cannot be reached for a while costs heartbeats,
    never the run: it keeps training and beats again when the store answers."""

    def __init__(self, store: Store, run_id: int, token: str, stop: StopFlag, log: Callable[[str], None],
                 every: float = HEARTBEAT_S) -> None:
        self.store, self.run_id, self.token, self.stop, self.log, self.every = store, run_id, token, stop, log, every
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
                beat = self.store.beat(self.run_id, self.token)
                if beat.taken and not self.stop.lost:
                    why = taken_from(self.store, self.run_id)
                    self.log(f"{why}; stopping after this step, writing nothing more")
                    self.stop.lose(why)
                elif beat.stop and not self.stop.requested:
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


def taken_from(store: Store, run_id: int) -> str:
    """Why the run is no longer this worker's, as its log says it: what the run is now."""
    try:
        run = store.get_run(run_id)
    except StoreError as exc:
        return f"run {run_id} is no longer this worker's ({exc})"
    now = (f"running with pid {run.pid} on {run.host}" if run.status == RunStatus.RUNNING
           else f"{run.status} ({run.error})" if run.error else str(run.status))
    return f"run {run_id} is no longer this worker's (pid {os.getpid()} on {paths.host()}): it is {now}"


def ended_before_start(store: Store, run_id: int) -> RunEnded:
    """Why a worker does not train its run: it ended, or another start holds it, before the worker started."""
    run = store.get_run(run_id)
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        return RunEnded(f"run {run_id} is held by another start (pid {run.pid} on {run.host}) than this worker's, "
                        f"which stops without training it")
    return RunEnded(f"run {run_id} is {run.status} already: it ended before its worker started, which stops "
                    f"without training it")


def execute(store: Store, run_id: int, stop: StopFlag | None = None,
            log: Callable[[str], None] = print) -> RunStatus:
    """Train the run and record its final status (what a worker does, callable in-process). The
    worker's token is the one its launcher gave it (`TOKEN_ENV`), or a new one that takes the run."""
    from workbench.engine import distributed
    from workbench.engine.trainer import (
        train,  # torch loads here, not when the module is imported
    )

    stop = stop or StopFlag()
    if not distributed.current().main:  # rank 0 of a torchrun launch records the run's status
        try:
            return train(store, run_id, stop, log=log)
        except RunEnded:  # rank 0 did not start the run, and says why
            return RunStatus(store.get_run(run_id).status)
    token = os.environ.get(TOKEN_ENV) or store.adopt(run_id)
    if token is None:
        if distributed.current().world > 1:  # the other ranks wait in the group for rank 0's word: give it
            try:
                train(store, run_id, stop, log=log, token="")  # "" holds nothing: every rank stops at its start
            except RunEnded:
                pass
        log(str(ended_before_start(store, run_id)))
        return RunStatus(store.get_run(run_id).status)
    held = held_by(token)  # every end below is recorded only while this start holds the run
    try:
        with Heartbeat(store, run_id, token, stop, log):
            status = train(store, run_id, stop, log=log, token=token)
    except RunEnded as exc:  # cancelled, or another start's, while this worker started or trained: left as it is
        log(str(exc))
        return RunStatus(store.get_run(run_id).status)
    except Exception as exc:
        traceback.print_exc()
        lost = distributed.lost_peers(distributed.current(), exc)
        if lost:  # a peer killed or crashed is an interruption, not this run's failure
            store.transition(run_id, RunStatus.INTERRUPTED, only_from=[RunStatus.RUNNING], where=held,
                             finished_at=time.time(),
                             error=f"{lost} stopped (killed or crashed: its last lines are in worker.log), so the "
                                   f"others could not go on; `workbench resume {run_id}` continues from the last "
                                   f"checkpoint")
            return RunStatus.INTERRUPTED
        message = str(exc) if isinstance(exc, WorkbenchError) else traceback.format_exc()
        if not store.transition(run_id, RunStatus.FAILED, only_from=[RunStatus.RUNNING, RunStatus.QUEUED],
                                where=held, error=message, finished_at=time.time()):
            return RunStatus(store.get_run(run_id).status)
        return RunStatus.FAILED
    store.transition(run_id, status, only_from=[RunStatus.RUNNING], where=held, finished_at=time.time())
    return RunStatus(store.get_run(run_id).status)
