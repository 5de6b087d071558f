"""Runs on a Slurm cluster (`executor=slurm`), through submitit (the `slurm` extra).

A scheduler that picks such a run sends it to the cluster's queue instead of starting a worker
here: `submit` asks submitit for one job of `nnodes` nodes with `nproc` tasks each, and records
its id (`runs.job_id` = `slurm:1234`). The run stays `queued` while the job waits in Slurm's
queue; `follow` (every few seconds, from any scheduler's reap) copies what Slurm says of it into
`runs.job_state` ("PENDING (Priority)") and records a job that ended without its worker
reporting (cancelled by an administrator, out of memory, its node lost) with Slurm's reason.

On the cluster each task runs `SlurmTask`: ranks come from submitit's `JobEnvironment`, so
the tasks form the data-parallel group with no torchrun; the first takes the run (queued ->
running) and writes to the store as a local worker's rank 0 does. Near its time limit Slurm
sends SIGUSR2 and submitit calls `SlurmTask.checkpoint`, which puts the run back to `queued`,
then requeues the job: it starts again from the run's last checkpoint (`checkpoint_every`).
`scancel` (a cancel) sends SIGTERM, which stops the run after its step with a checkpoint.

Slurm's state is read with `squeue`, which every cluster answers, rather than submitit's
`sacct`, which needs an accounting database. The cluster's nodes must reach the store (a
PostgreSQL server, or a SQLite file on a filesystem they share) and the run folders.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

from workbench import paths
from workbench.errors import ConfigError, WorkbenchError
from workbench.fields import sbatch_flags
from workbench.jobs.processes import WORKER_MODULE, log_path, log_tail
from workbench.store import Run, RunStatus, Store
from workbench.store.lifecycle import TOKEN_ENV, held_by, new_token
from workbench.store.schema import SUBMITTING

PREFIX = "slurm:"  # runs.job_id of a Slurm job
# Slurm's states of a job that is not over: the run waits (queued) or trains (running)
WAITING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED",
           "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT", "RUNNING", "COMPLETING"}
# a job over with its run not recorded as ended: what the run becomes, and why
ENDED = {
    "CANCELLED": (RunStatus.CANCELLED, "was cancelled in Slurm (scancel) before its worker reported"),
    "TIMEOUT": (RunStatus.INTERRUPTED, "reached its time limit with no requeue left (slurm_time_min, slurm_requeues)"),
    "PREEMPTED": (RunStatus.INTERRUPTED, "was preempted and not requeued"),
    "NODE_FAIL": (RunStatus.INTERRUPTED, "lost its node"),
    "BOOT_FAIL": (RunStatus.FAILED, "could not boot its node"),
    "DEADLINE": (RunStatus.FAILED, "missed its deadline"),
    "OUT_OF_MEMORY": (RunStatus.FAILED, "ran out of memory (slurm_mem_gb)"),
    "FAILED": (RunStatus.FAILED, "failed"),
    "COMPLETED": (RunStatus.FAILED, "ended without its worker recording the run's end"),
}
RESUME = "`workbench resume {}` continues from the last checkpoint"
STALE_CLAIM_S = 120.0  # sending a run takes seconds: a claim this old lost its scheduler
FIRST_TASK_WAIT_S = 300.0  # how long a job's other tasks wait to see its first task take the run
CLOCK_SLACK_S = 120.0  # a job's tasks start within this of each other, by their nodes' clocks
TASK_ENV = "WORKBENCH_SLURM_TASK"  # set in a job's task: its worker starts no run on the job's node


def missing() -> str | None:
    """Why runs cannot go to Slurm from this machine, or None when they can."""
    if importlib.util.find_spec("submitit") is None:
        return "submitit is not installed: pip install 'vit-workbench[slurm]'"
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        return "Slurm's commands (sbatch, squeue) are not on this machine's PATH"
    return None


def check_available() -> None:
    """Refuse `executor=slurm` now, when this machine cannot submit, rather than when it starts."""
    reason = missing()
    if reason:
        raise ConfigError("executor", f"executor=slurm: {reason}")


def job_folder(run_id: int) -> Path:
    """submitit's files for the run's jobs (its pickles, each task's log)."""
    return paths.run_dir(run_id) / "slurm"


def job_name(run_id: int) -> str:
    """The name of a run's Slurm jobs: how a job sent by a scheduler that died before recording it is found."""
    return f"workbench-run-{run_id}"


def parameters(run_id: int, config: dict[str, Any]) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters (sbatch's, by its names) of a run's config."""
    optional = {"partition": config.get("slurm_partition", ""), "account": config.get("slurm_account", ""),
                "qos": config.get("slurm_qos", ""), "gpus_per_node": config.get("slurm_gpus_per_node", 0),
                "cpus_per_task": config.get("slurm_cpus_per_task", 0),
                "mem": f"{round(config['slurm_mem_gb'] * 1024)}MB" if config.get("slurm_mem_gb") else ""}
    return {"job_name": job_name(run_id), "time": int(config.get("slurm_time_min", 60)),
            "nodes": int(config.get("nnodes", 1)), "ntasks_per_node": int(config.get("nproc", 1)),
            "signal_delay_s": int(config.get("slurm_signal_s", 90)), "stderr_to_stdout": True,
            "additional_parameters": sbatch_flags(config.get("slurm_sbatch", "")),
            **{k: v for k, v in optional.items() if v}}


@contextlib.contextmanager
def _outside_any_job() -> Iterator[None]:
    """os.environ without Slurm's job variables while sbatch runs: a run's worker that starts
    the next run from inside its own job (a study's) must not hand its job's settings on."""
    saved = {k: v for k, v in os.environ.items()
             if (k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SUBMITIT_")) or k == TASK_ENV) and k != "SLURM_CONF"}
    for k in saved:
        del os.environ[k]
    try:
        yield
    finally:
        os.environ.update(saved)


def submit(store: Store, run_id: int) -> str:
    """Send a run its scheduler has taken (`claim_submission`) to Slurm's queue; its job id.
    A refused submission fails the run with sbatch's message."""
    import submitit

    run = store.get_run(run_id)
    try:
        executor = submitit.SlurmExecutor(folder=job_folder(run_id), max_num_timeout=run.config.get("slurm_requeues", 3))
        executor.update_parameters(**parameters(run_id, run.config))
        with _outside_any_job():
            job = executor.submit(SlurmTask(run_id, store.environment()))
    except Exception as exc:  # sbatch's refusal (a partition that does not exist, a limit) is the run's error
        store.transition(run_id, RunStatus.FAILED, only_from=[RunStatus.QUEUED], job_id=None, job_state=None,
                         finished_at=time.time(), error=f"Slurm did not take the job: {exc}")
        raise WorkbenchError(f"run {run_id}: Slurm did not take the job: {exc}") from exc
    job_id = f"{PREFIX}{job.job_id}"
    if not store.settle_submission(run_id, job_id, "PENDING"):  # taken by its job already, or ended meanwhile
        run = store.get_run(run_id)
        if RunStatus(run.status).is_final:  # cancelled while it was being sent
            store.update_run(run_id, job_id=job_id)
            _scancel(job.job_id)
    return job_id


def _scancel(job: str) -> None:
    """Cancel a Slurm job through submitit (scancel)."""
    import submitit

    try:
        submitit.SlurmJob(folder=job_folder(0), job_id=job).cancel(check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        raise WorkbenchError(f"scancel {job} failed: {exc}") from exc


def is_slurm(run: Run) -> bool:
    return bool(run.job_id) and (run.job_id.startswith(PREFIX) or run.job_id == SUBMITTING)


def cancel(store: Store, run: Run, grace: float = 10.0) -> RunStatus:
    """Cancel a run sent to Slurm: scancel its job. Waiting in the queue, it is cancelled at once;
    training, its worker gets SIGTERM and records its end after its step (with a checkpoint); one
    that has not within `grace` seconds is recorded cancelled here (Slurm kills it)."""
    if run.job_id and run.job_id.startswith(PREFIX):
        _scancel(run.job_id[len(PREFIX):])
    why = f"cancelled; Slurm job {job_number(run)} cancelled (scancel)"
    if store.transition(run.id, RunStatus.CANCELLED, only_from=[RunStatus.QUEUED], finished_at=time.time(),
                        error=why, job_state="CANCELLED"):
        return RunStatus.CANCELLED
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not RunStatus(store.get_run(run.id).status).is_final:
        time.sleep(0.2)
    store.transition(run.id, RunStatus.CANCELLED, only_from=[RunStatus.RUNNING], finished_at=time.time(),
                     error=f"{why}; its worker did not report within {grace:g} s")
    return RunStatus(store.get_run(run.id).status)


def job_number(run: Run) -> str:
    """The Slurm job id of a run sent to Slurm (`1234`), or `submitting`."""
    return (run.job_id or "").removeprefix(PREFIX)


def squeue(jobs: list[str]) -> dict[str, tuple[str, str]] | None:
    """Job id -> (state, reason) for the jobs Slurm still knows (a job over is forgotten some
    minutes after its end, MinJobAge); None when squeue cannot be asked."""
    return _squeue("-j", ",".join(jobs))


def squeue_named(name: str) -> dict[str, tuple[str, str]] | None:
    """`squeue` of the jobs with this name."""
    return _squeue("-n", name)


def _squeue(*which: str) -> dict[str, tuple[str, str]] | None:
    try:
        done = subprocess.run(["squeue", "-h", "-t", "all", *which, "-o", "%i|%T|%r"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:  # every id unknown is an error to squeue; anything else: it cannot answer now
        return {} if "Invalid job id" in done.stderr else None
    states = {}
    for line in done.stdout.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        states[job.strip()] = (state.strip(), reason.strip())
    return states


def settle_stale_claims(store: Store, older_than: float = STALE_CLAIM_S) -> list[int]:
    """Runs left `submitting` by a scheduler that died while sending them to Slurm: a job of the
    run's name that Slurm still holds, not over, was sent and is adopted; with none the run goes
    back to the queue, sent again by the next scheduler. Never sent twice: the job name tells. The
    ids settled; none while squeue cannot be asked."""
    settled = []
    for run_id in store.stale_submissions(older_than):
        jobs = squeue_named(job_name(run_id))
        if jobs is None:
            return settled
        live = [(job, state) for job, (state, _) in jobs.items() if state in WAITING]
        job, state = max(live, key=lambda js: int(js[0])) if live else (None, None)
        if store.settle_submission(run_id, f"{PREFIX}{job}" if job else None, state):
            settled.append(run_id)
    return settled


def follow(store: Store) -> list[int]:
    """Bring the runs sent to Slurm up to date with their jobs; the ids whose status changed."""
    settle_stale_claims(store)
    runs = [r for r in store.list_runs(status=[RunStatus.QUEUED, RunStatus.RUNNING])
            if r.job_id and r.job_id.startswith(PREFIX)]
    states = squeue([job_number(r) for r in runs]) if runs else None
    if states is None:
        return []
    changed = []
    for run in runs:
        state, reason = states.get(job_number(run), ("", ""))
        if state in WAITING:
            said = f"{state} ({reason})" if reason and reason != "None" else state
            if said != run.job_state:
                store.update_run(run.id, job_state=said)
            continue
        status, what = ENDED.get(state, (RunStatus.INTERRUPTED, "is no longer known to Slurm"))
        error = f"Slurm job {job_number(run)} {what}" + (f" ({reason})" if reason and reason != "None" else "")
        if status != RunStatus.CANCELLED:
            error += "; " + RESUME.format(run.id) if status == RunStatus.INTERRUPTED else f":\n{log_tail(run.id)}"
        if store.transition(run.id, status, only_from=[RunStatus.QUEUED, RunStatus.RUNNING], error=error,
                            where={"job_id": run.job_id},  # not a resubmission sent since squeue answered
                            finished_at=time.time(), job_state=state or "gone"):
            changed.append(run.id)
    return changed


class SlurmTask:
    """What each task of a run's Slurm job runs (pickled by submitit): the run's worker, as one
    rank of `nnodes x nproc`. `checkpoint` is submitit's requeue hook."""

    def __init__(self, run_id: int, env: dict[str, str], requeues: int = 0) -> None:
        self.run_id = run_id
        self.env = env  # what opens the same store and run folders (Store.environment)
        self.requeues = requeues  # how many times this job has been requeued so far

    def __call__(self) -> str:
        import submitit

        os.environ.update(self.env, PYTHONUNBUFFERED="1", **{TASK_ENV: "1"})
        job = submitit.JobEnvironment()
        if job.num_tasks > 1:  # the data-parallel group: ranks from Slurm, rank 0's node as the meeting point
            os.environ.update(RANK=str(job.global_rank), WORLD_SIZE=str(job.num_tasks),
                              LOCAL_RANK=str(job.local_rank), LOCAL_WORLD_SIZE=str(job.num_tasks // job.num_nodes),
                              MASTER_ADDR=job.hostnames[0], MASTER_PORT=str(20000 + int(job.raw_job_id) % 20000))
        name = f"{PREFIX}{job.raw_job_id}"
        if job.global_rank == 0:
            _log_to(log_path(self.run_id), f"Slurm job {job.job_id} on {job.hostname}")
            os.environ[TOKEN_ENV] = new_token()  # this start's: the worker's writes hold to it
            if not Store().start_job(self.run_id, name, host=paths.host(), token=os.environ[TOKEN_ENV]):
                print(f"run {self.run_id} is no longer waiting for this job; nothing to do", flush=True)
                return "skipped"
        elif not taken(Store(), self.run_id, name):
            print(f"run {self.run_id} was not taken by this job's first task; nothing to do", flush=True)
            return "skipped"
        importlib.import_module(WORKER_MODULE).main([str(self.run_id)])  # by name, as the local runner starts it
        status = RunStatus(Store().get_run(self.run_id).status)
        if status == RunStatus.FAILED:
            raise WorkbenchError(f"run {self.run_id} failed; its error is in the run's details")  # the job FAILED
        return status.value

    def checkpoint(self) -> Any:
        """submitit's hook before it requeues the job (the time limit is near, or preemption): the
        run goes back to `queued` (its job's), and the requeued job resumes it from its last
        checkpoint."""
        import submitit

        store = Store()
        run, now = store.get_run(self.run_id), time.time()
        step, limit = _last_checkpoint(store, self.run_id), int(run.config.get("slurm_requeues", 3))
        held = held_by(os.environ.get(TOKEN_ENV))  # only while this job's start holds the run
        if self.requeues >= limit:  # None: submitit ends the job, not requeued
            store.transition(self.run_id, RunStatus.INTERRUPTED, only_from=[RunStatus.RUNNING], finished_at=now,
                             where=held,
                             error=f"Slurm job {job_number(run)} reached its time limit (or was preempted) after "
                                   f"{limit} requeues (slurm_requeues); its last checkpoint is at step {step}: "
                                   + RESUME.format(self.run_id))
            return None
        store.transition(self.run_id, RunStatus.QUEUED, only_from=[RunStatus.RUNNING], job_state="REQUEUED",
                         where=held, worker_token=None, summary={**run.summary, **run.closed_segments(now)})
        print(f"run {self.run_id}: Slurm's time limit is near (or the job is preempted); requeued "
              f"({self.requeues + 1} of {limit}), it resumes from step {step}", flush=True)
        return submitit.helpers.DelayedSubmission(SlurmTask(self.run_id, self.env, self.requeues + 1))


def taken(store: Store, run_id: int, job: str, wait_s: float = FIRST_TASK_WAIT_S) -> bool:
    """Whether the job's first task took the run (`start_job`), which its other tasks wait to see
    before they join its data-parallel group: a run no longer waiting for the job (cancelled,
    sent again) has no group to join, and they would wait for its first member for torch's 30
    minutes, holding their nodes. Taken means by this start of the job: one Slurm requeued itself
    (a node lost) finds its run still running since its last start, which its first task cannot
    take. False too when the first task has not taken it in `wait_s`."""
    since, deadline = time.time(), time.monotonic() + wait_s
    while True:
        run = store.get_run(run_id)
        if run is None or run.job_id not in (job, SUBMITTING) or run.status not in (RunStatus.QUEUED,
                                                                                    RunStatus.RUNNING):
            return False
        if run.status == RunStatus.RUNNING:
            return bool(run.segments) and run.segments[-1][0] >= since - CLOCK_SLACK_S
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def _last_checkpoint(store: Store, run_id: int) -> int:
    latest = store.latest_artifact(run_id, "checkpoint")
    return latest.step if latest is not None else 0


def _log_to(path: Path, header: str) -> None:
    """This process's stdout and stderr to the end of the run's log (what the window shows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"--- worker start {time.strftime('%Y-%m-%d %H:%M:%S')}: {header} ---\n".encode())
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
