"""Worker processes: one plain OS process per run (`python -m workbench.worker RUN_ID`).

A process, never a thread, so a CUDA crash or an out-of-memory kill takes down only its run.
Workers start in their own session (their own process group): the GUI or CLI that started
them can exit or be killed and the run goes on; cancelling kills the whole group, DataLoader
workers included. The store is the source of truth: a worker reports its own end
(finished / failed / cancelled); a worker that dies without doing so is found by its exit
code here, or by its missing pid at the next start-up, and marked `interrupted` (`cancelled`
if a cancel asked for in the store killed it).

A runner may keep a spare worker (`Runner(spare=True)`, the window's): a worker process started
before its run, which imports torch, timm and the methods while nobody waits (most of a run's
start: ~4 s on 2 cores) and takes the next run handed to it on its stdin.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from typing import Iterable, NamedTuple

from workbench import paths
from workbench.errors import NoCheckpointError, WorkbenchError
from workbench.jobs.gpus import gpu_count, pick_gpu
from workbench.jobs.processes import (
    NEW_SESSION,
    SPARE_FLAG,
    SPARE_NAME,
    WORKER_MODULE,
    exit_reason,
    is_worker_alive,
    log_path,
    log_tail,
    stop_tree,
    worker_process,
)
from workbench.store import RESUMABLE, Run, RunStatus, Store
from workbench.store.lifecycle import TOKEN_ENV, held_by

SPARE_IDLE_S = 600.0  # a spare nobody took goes after 10 minutes: it holds ~0.7 GB (0.4 its own)


STARTING_GRACE_S = 30.0  # a run claimed by a runner gets its pid a moment later
ADOPTED_CHECK_S = 2.0  # how often a runner checks that workers it did not start still live
CLUSTER_CHECK_S = 5.0  # how often it asks a cluster's scheduler about the runs sent there
# what a worker starting the next run of a study (from inside a torchrun rank, say) must not pass on
INHERITED_NOT = frozenset({"WORKBENCH_AUTO_DEVICE", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                           "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_NAME", "ROLE_RANK", "ROLE_WORLD_SIZE",
                           "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
                           "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_ERROR_FILE", TOKEN_ENV})


class Launched(NamedTuple):
    """A worker this runner started, and the token of the claim it was given."""

    proc: subprocess.Popen
    token: str


def reconcile(store: Store, skip: Iterable[int] = ()) -> list[int]:
    """Mark runs left `running` whose worker is gone as `interrupted` (or `cancelled`): on this host, at once by its
    missing pid; on any host, by a heartbeat older than the store's timeout. `skip`: runs whose
    worker the caller watches itself (its exit code says more)."""
    host = paths.host()
    lost, skip = [], set(skip)
    for run in store.list_runs(status=RunStatus.RUNNING):
        if run.id in skip or run.job_id or run.host not in (None, host) or is_worker_alive(run.pid, run.id):
            continue  # a cluster's job is followed through its scheduler (jobs.slurm.follow)
        spans = run.segments
        if run.pid is None and spans and time.time() - spans[-1][0] < STARTING_GRACE_S:  # claimed just now
            continue
        if _ended_unreported(store, run.id, f"the worker process (pid {run.pid}) was gone without reporting", run):
            lost.append(run.id)
    timeout = store.heartbeat_timeout()
    for run, silent in store.silent_runs(timeout):
        if run.id in skip or run.host in (None, host) and is_worker_alive(run.pid, run.id):
            continue  # a live worker here that could not write (a busy store) is not gone
        if _ended_unreported(store, run.id, f"no heartbeat from its worker on {run.host or 'an unknown host'} for "
                                         f"{silent:.0f} s (more than the store's {timeout:g} s: killed, its machine "
                                         f"down, or cut off from the database)", run):
            lost.append(run.id)
    return lost


def cancel_run(store: Store, run_id: int, grace: float = 10.0) -> RunStatus:
    """Ask the worker to stop (SIGTERM: it checkpoints and exits), kill it after `grace` seconds.
    A run on another host gets a request through the store that its worker honours after its next
    step (`running` is returned: it is cancelling; a worker that is gone is found by its heartbeat)."""
    run = store.get_run(run_id)
    if run.job_id and run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        from workbench.jobs import slurm  # it builds on this module

        return slurm.cancel(store, run, grace)
    if run.status == RunStatus.QUEUED:
        store.transition(run_id, RunStatus.CANCELLED, only_from=[RunStatus.QUEUED], finished_at=time.time())
        return RunStatus(store.get_run(run_id).status)
    if run.status != RunStatus.RUNNING:
        raise WorkbenchError(f"run {run_id} is {run.status}; only queued or running runs can be cancelled")
    if run.host not in (None, paths.host()):
        store.request_cancel(run_id)
        return RunStatus(store.get_run(run_id).status)
    worker = worker_process(run.pid, run_id)
    store.request_cancel(run_id)  # first: a runner that sees the worker end meanwhile records this cancel
    if worker is not None:
        stop_tree(worker, grace)
    how = (f"the worker did not stop within {grace:g} s and was killed" if worker is not None
           else "before its worker started" if run.pid is None else f"its worker (pid {run.pid}) was gone")
    store.transition(run_id, RunStatus.CANCELLED, only_from=[RunStatus.RUNNING], finished_at=time.time(),
                     error=f"cancelled; {how}")
    return RunStatus(store.get_run(run_id).status)


def _ended_unreported(store: Store, run_id: int, how: str, judged: Run | None = None) -> bool:
    """Record that the run's worker ended without recording an end: cancelled if a cancel was asked
    for (it killed the worker), else interrupted; only while the run still has the worker (pid and
    token) that `judged`, the caller's earlier read, shows (else the one it has now). True if recorded."""
    now = store.get_run(run_id)
    if now.cancel_requested_at is not None:
        status, error = RunStatus.CANCELLED, f"cancelled; {how}"
    else:
        oom = " (the system's out-of-memory killer sends it: see `dmesg`)" if "SIGKILL" in how else ""
        kept = store.artifacts(run_id, "checkpoint")
        again = (f"`workbench resume {run_id}` continues from the last checkpoint" if kept
                 else f"it had saved no checkpoint: `workbench resume {run_id}{' --from-scratch' if now.step else ''}` "
                      f"starts it again from step 0")
        status, error = RunStatus.INTERRUPTED, f"{how}{oom}; {again}"
    judged = judged or now
    return store.transition(run_id, status, only_from=[RunStatus.RUNNING], finished_at=time.time(), error=error,
                            where={"pid": judged.pid, **held_by(judged.worker_token)})


def resume_run(store: Store, run_id: int, from_scratch: bool = False) -> Run:
    """Put an interrupted, failed or cancelled run back in the queue: it continues from its newest
    checkpoint. A run that has trained but has no checkpoint file left is refused (raising
    `NoCheckpointError`) unless `from_scratch`, the user's consent to start it again from step 0
    (its checkpoints deleted, its metrics replaced as it trains): the CLI and the window both ask
    through this one rule. The status changes in one conditional UPDATE: of two resumes at once,
    the one that loses the race is told the run is already queued or running, so only one worker
    ever starts."""
    run = store.get_run(run_id)
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        raise WorkbenchError(_already(run_id, run.status))
    if run.status not in RESUMABLE:
        raise WorkbenchError(f"run {run_id} is {run.status}; only {', '.join(RESUMABLE)} runs can be resumed")
    if run.trashed_at is not None:
        raise WorkbenchError(f"run {run_id} is in the Trash; restore it first")
    checkpoints = store.artifacts(run_id, "checkpoint")
    if run.step and not from_scratch and not any(store.abspath(a).exists() for a in checkpoints):
        raise NoCheckpointError(run_id, run.step, f"gone from {paths.checkpoint_dir(run_id)}" if checkpoints else "")
    now = time.time()  # the last segment ends where the run stopped; the next one starts with its worker
    history = run.closed_segments(now)
    restart = {"step": 0, "summary": history} if from_scratch else {"summary": {**run.summary, **history}}
    if not store.transition(run_id, RunStatus.QUEUED, only_from=list(RESUMABLE), error=None, finished_at=None,
                            cancel_requested_at=None, job_id=None, job_state=None, archived_at=None,
                            worker_token=None, **restart):  # its last worker, even if alive, holds it no more
        raise WorkbenchError(_already(run_id, store.get_run(run_id).status))
    if from_scratch:  # only now: a resume that lost the race deletes nothing
        # with the checkpoints go the best weights and the record of the start (the worker starts again)
        gone = checkpoints + store.artifacts(run_id, "best") + store.artifacts(run_id, "init")
        for art in gone:
            store.abspath(art).unlink(missing_ok=True)
        store.delete_artifacts([a.id for a in gone])
    return store.get_run(run_id)


def _already(run_id: int, status: str) -> str:
    """What a resume of a run another resume (or a scheduler) has just taken says."""
    return f"run {run_id} is already {status}; `workbench show {run_id}` follows it"


class Spare:
    """A worker process started before its run (`python -m workbench.worker --spare TOKEN`): it
    imports what training needs, then waits on its stdin for the run `take` hands it. It exits
    when its stdin closes untaken (`close`, or the runner's process ending)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.token, self.wanted = env, f"spare-{secrets.token_hex(8)}", time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, SPARE_FLAG, self.token],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=env, **NEW_SESSION)

    def take(self, run_id: int, env: dict[str, str]) -> subprocess.Popen | None:
        """Hand it the run (`env`: what that run's worker needs beyond the spare's environment); None
        if it is gone, and the caller starts a worker of its own."""
        if self.proc.poll() is not None:
            return None
        (paths.run_dir(run_id) / SPARE_NAME).write_text(self.token)
        try:
            self.proc.stdin.write(json.dumps({"run": run_id, "env": env}).encode() + b"\n")
            self.proc.stdin.close()
        except OSError:  # it died just now
            return None
        return self.proc

    def close(self) -> None:
        """End it at once: untaken, it holds nothing (it may be importing still, deaf to its stdin)."""
        self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(OSError):
            self.proc.stdin.close()


class Runner:
    """Launches the worker processes of claimed runs and watches the ones it launched.

    It decides nothing: which queued run starts, and when, is the scheduler's
    (`workbench.studies.scheduler.tick`), which claims a run in the store and hands it here.
    `spare`: keep a spare worker from `warm` on, and again once each launched run has trained a
    step (a window, where the user starts runs one by one), so the next run skips the imports.
    """

    def __init__(self, store: Store, spare: bool = False) -> None:
        self.store, self.keep_spare = store, spare
        self.procs: dict[int, Launched] = {}
        self._next_check = self._next_cluster_check = 0.0
        self._gpus: int | None = None  # counted at the first launch
        self.spare: Spare | None = None
        self._spare_after: int | None = None  # the next spare starts once this run has trained a step
        self._spare_lock = threading.Lock()  # a window warms from one thread and launches from another

    def worker_environment(self) -> dict[str, str]:
        """A worker's environment: this process's, less what must not pass on, and the store's."""
        inside_torchrun = "RANK" in os.environ  # whose OMP_NUM_THREADS was cut to cores / nproc
        env = {k: v for k, v in os.environ.items()
               if k not in INHERITED_NOT and not (inside_torchrun and k == "OMP_NUM_THREADS")}
        env.update(self.store.environment(), PYTHONUNBUFFERED="1")
        return env

    def warm(self) -> None:
        """Start a spare worker if this runner keeps one and has none alive (one whose environment
        no longer matches goes)."""
        if not self.keep_spare:
            return
        env = self.worker_environment()
        with self._spare_lock:
            if self.spare is not None and (self.spare.proc.poll() is not None or self.spare.env != env):
                self.spare.close()
                self.spare = None
            if self.spare is not None:
                self.spare.wanted = time.monotonic()  # its idle time counts from now
                return
            try:
                self.spare = Spare(env)
            except OSError:  # the launch will start its own worker, and say why if it cannot
                pass

    def _pop_spare(self) -> Spare | None:
        with self._spare_lock:
            spare, self.spare = self.spare, None
        return spare

    def _take_spare(self, run_id: int, env: dict[str, str], extra: dict[str, str]) -> subprocess.Popen | None:
        spare = self._pop_spare()
        proc = spare.take(run_id, extra) if spare is not None and spare.env == env else None
        if proc is None and spare is not None:
            spare.close()
        return proc

    def _tend_spare(self) -> None:
        """End a spare idle too long; start the next once the last launched run has trained a step
        (not sooner: its imports would slow that run's start)."""
        with self._spare_lock:
            idle = self.spare is not None and time.monotonic() - self.spare.wanted > SPARE_IDLE_S
            spare, self.spare = (self.spare, None) if idle else (None, self.spare)
        if spare is not None:
            spare.close()
        after = self._spare_after
        if after is not None and (after not in self.procs or self.store.get_run(after).step > 0):
            self._spare_after = None
            self.warm()

    def close(self) -> None:
        """End the spare worker, if any (the runs' workers go on)."""
        if (spare := self._pop_spare()) is not None:
            spare.close()

    def launch(self, run_id: int, token: str) -> None:
        """Start the worker of a run the scheduler has just claimed (status running, no pid yet),
        given the claim's `token`: what its writes hold to."""
        run = self.store.get_run(run_id)
        env, extra = self.worker_environment(), {TOKEN_ENV: token}
        if run.config.get("device", "auto") == "auto" and int(run.config.get("nproc", 1)) == 1:
            if self._gpus is None:
                self._gpus = gpu_count()
            others = [r for r in self.store.list_runs(status=RunStatus.RUNNING) if r.id != run_id]
            gpu = pick_gpu(self._gpus, others) if self._gpus > 1 else None
            if gpu is not None:  # concurrent runs on distinct GPUs
                extra["WORKBENCH_AUTO_DEVICE"] = f"cuda:{gpu}"
        with open(log_path(run_id), "ab") as log:
            log.write(f"--- worker start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
            log.flush()
            proc = self._take_spare(run_id, env, extra)
            try:  # a session (process group) of its own: the window or CLI that starts it may exit
                proc = proc or subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(run_id)], stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env={**env, **extra}, **NEW_SESSION)
            except OSError as exc:
                self.store.transition(run_id, RunStatus.FAILED, only_from=[RunStatus.RUNNING], where=held_by(token),
                                      error=f"could not start the worker process: {exc}", finished_at=time.time())
                raise WorkbenchError(f"could not start a worker for run {run_id}: {exc}") from exc
        # its pid (a torchrun's rank 0 records its own), while the claim holds the run
        self.store.transition(run_id, RunStatus.RUNNING, only_from=[RunStatus.RUNNING], where=held_by(token),
                              pid=proc.pid)
        self.procs[run_id] = Launched(proc, token)
        self._spare_after = run_id if self.keep_spare else None

    def reap(self) -> list[int]:
        """Record the end of workers that exited without saying so (their exit code tells how),
        and, every few seconds, of workers on this host it did not launch (a closed window's, the
        CLI's); the ids whose status changed."""
        changed = []
        for run_id, (proc, token) in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.procs[run_id]
            changed.append(run_id)
            run = self.store.get_run(run_id)
            if run.worker_token != token or is_worker_alive(run.pid, run_id):
                continue  # another start's now: this worker was judged gone (suspended, cut off) and it started again
            if code > 0:
                self.store.transition(run_id, RunStatus.FAILED, only_from=[RunStatus.RUNNING], finished_at=time.time(),
                                      where=held_by(token),
                                      error=f"the worker {exit_reason(code)}:\n{log_tail(run_id)}")
            else:
                _ended_unreported(self.store, run_id, f"the worker was {exit_reason(code)} before it finished", run)
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + ADOPTED_CHECK_S
            changed += reconcile(self.store, skip=self.procs)
            self._tend_spare()
        if time.monotonic() >= self._next_cluster_check:
            from workbench.jobs import slurm  # it builds on this module

            self._next_cluster_check = time.monotonic() + CLUSTER_CHECK_S
            changed += slurm.follow(self.store)
        return changed

    def submit(self, run_id: int) -> None:
        """Send a run the scheduler has taken for a cluster (`Store.claim_submission`) to its queue."""
        from workbench.jobs import slurm  # it builds on this module

        slurm.submit(self.store, run_id)

    def cancel(self, run_id: int, grace: float = 10.0) -> RunStatus:
        status = cancel_run(self.store, run_id, grace)
        launched = self.procs.pop(run_id, None)
        if launched is not None:
            launched.proc.wait()
        return status
