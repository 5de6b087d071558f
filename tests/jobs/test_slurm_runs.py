"""Runs sent to a real Slurm cluster through submitit (`executor=slurm`; tests/slurm_cluster.py:
munged, slurmctld and slurmd on this machine). The scheduler submits, the tasks form the
data-parallel group from Slurm's ranks, the run's status follows the job, cancel is scancel, and
the signal Slurm sends near a job's time limit requeues it through submitit's checkpoint hook,
the run resuming from its last checkpoint."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.slurm_cluster import SlurmCluster
from workbench import fmt
from workbench.errors import ConfigError, WorkbenchError
from workbench.jobs import Runner, cancel_run, create_run
from workbench.jobs import slurm as slurm_jobs
from workbench.jobs.processes import log_path
from workbench.store import RunStatus, Store
from workbench.store.schema import SEGMENTS, SUBMITTING
from workbench.studies import create_study, scheduler, sweep_spec

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]
SLURM = ["executor=slurm", "epochs=1", "warmup_epochs=0"]


@pytest.fixture
def cluster(slurm_cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlurmCluster]:
    """The session's cluster as this test's Slurm (SLURM_CONF); no job of the test outlives it."""
    monkeypatch.setenv("SLURM_CONF", slurm_cluster.env["SLURM_CONF"])
    yield slurm_cluster
    subprocess.run(["scancel", "--user=root"], env=slurm_cluster.env, capture_output=True, timeout=30)
    deadline = time.monotonic() + 30
    while _squeue(slurm_cluster, "-t", "running,completing") and time.monotonic() < deadline:
        time.sleep(0.5)


def _squeue(cluster: SlurmCluster, *args: str) -> str:
    return subprocess.run(["squeue", "-h", *args], env=cluster.env, capture_output=True, text=True,
                          timeout=30).stdout.strip()


def job_fields(cluster: SlurmCluster, run_id: int, store: Store) -> dict[str, str]:
    """`scontrol show job` of the run's job (no accounting here, so no sacct)."""
    job = slurm_jobs.job_number(store.get_run(run_id))
    out = subprocess.run(["scontrol", "show", "job", "-o", job], env=cluster.env, capture_output=True, text=True,
                         timeout=30).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def follow_until(store: Store, runner: Runner, run_id: int, status: RunStatus, timeout: float = 150) -> None:
    """Tick as a window does until the run has `status` (a final one that differs fails at once)."""
    def there() -> bool:
        scheduler.tick(store, runner)
        now = RunStatus(store.get_run(run_id).status)
        assert now == status or not now.is_final, f"run {run_id} {now}: {store.get_run(run_id).error}"
        return now == status
    wait_for(there, timeout=timeout, interval=0.5)


def test_a_run_sent_to_slurm_trains_on_two_tasks_and_finishes(cluster: SlurmCluster, store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=[*SLURM, "nproc=2", "batch_size=64", "max_steps=12",
                                                            "slurm_time_min=5"])
    runner = Runner(store)
    assert scheduler.tick(store, runner) == [run.id] and not runner.procs  # sent, not started here
    sent = store.get_run(run.id)
    assert re.fullmatch(r"slurm:\d+", sent.job_id) and sent.status in ("queued", "running")
    script = next(slurm_jobs.job_folder(run.id).glob("*_submission.sh")).read_text()
    for flag in ("--ntasks-per-node=2", "--nodes=1", "--time=5", "--signal=USR2@90", "--job-name=workbench-run-"):
        assert flag in script, script
    follow_until(store, runner, run.id, RunStatus.FINISHED)
    done = store.get_run(run.id)
    assert done.job_id == sent.job_id and done.device == "cpu x2" and done.step == 12
    wait_for(lambda: job_fields(cluster, run.id, store)["JobState"] == "COMPLETED", timeout=60)  # the job ends after
    log = log_path(run.id).read_text()
    assert f"Slurm job {slurm_jobs.job_number(done)} on {cluster.node}" in log and "2 processes" in log
    assert len(store.metrics(run.id, key="train/loss")) > 0 and "val/top1" in done.summary


def test_cancel_scancels_a_waiting_job_and_stops_a_training_one(cluster: SlurmCluster, store: Store) -> None:
    runner = Runner(store)
    waiting = create_run(store, "vit", preset="tiny", overrides=[*SLURM, "slurm_sbatch=--begin=now+3600"])
    scheduler.tick(store, runner)
    wait_for(lambda: (slurm_jobs.follow(store), store.get_run(waiting.id).job_state)[1] == "PENDING (BeginTime)")
    assert store.get_run(waiting.id).status == "queued"  # waiting in Slurm's queue is queued here
    number = slurm_jobs.job_number(store.get_run(waiting.id))
    assert fmt.job(store.get_run(waiting.id)) == f"Slurm job {number} · PENDING (BeginTime)"  # as lists show it
    assert cancel_run(store, waiting.id) == RunStatus.CANCELLED
    assert job_fields(cluster, waiting.id, store)["JobState"] == "CANCELLED"

    training = create_run(store, "vit", preset="tiny", overrides=[*SLURM, "max_steps=100000", "epochs=1000"])
    scheduler.tick(store, runner)
    wait_for(lambda: store.get_run(training.id).step >= 5, timeout=120)
    assert runner.cancel(training.id, grace=30) == RunStatus.CANCELLED
    stopped = store.get_run(training.id)
    assert stopped.error is None, stopped.error  # its worker stopped after its step and said so itself
    assert store.latest_artifact(training.id, "checkpoint") is not None  # with a checkpoint
    wait_for(lambda: job_fields(cluster, training.id, store)["JobState"] == "CANCELLED", timeout=60)


def test_every_task_of_a_job_whose_run_no_longer_waits_for_it_ends_at_once(cluster: SlurmCluster,
                                                                           store: Store) -> None:
    """A job starts after its run was cancelled without it (its scancel lost): its first task finds
    nothing to do, and its other tasks see that and end too (they waited for the first in the
    data-parallel group, for torch's 30 minutes, holding their nodes)."""
    run = create_run(store, "vit", preset="tiny", overrides=[*SLURM, "nproc=2", "slurm_sbatch=--begin=now+3600"])
    scheduler.tick(store, Runner(store))
    number = slurm_jobs.job_number(store.get_run(run.id))
    assert store.transition(run.id, RunStatus.CANCELLED, only_from=[RunStatus.QUEUED], finished_at=time.time())
    subprocess.run(["scontrol", "update", f"JobId={number}", "StartTime=now"], env=cluster.env, check=True,
                   capture_output=True, timeout=30)
    wait_for(lambda: job_fields(cluster, run.id, store)["JobState"] == "COMPLETED", timeout=120)
    assert store.get_run(run.id).status == "cancelled"
    outputs = "".join(p.read_text() for p in slurm_jobs.job_folder(run.id).glob("*_log.out"))
    assert "no longer waiting for this job" in log_path(run.id).read_text()
    assert "was not taken by this job's first task; nothing to do" in outputs


def test_a_jobs_other_tasks_join_only_a_run_its_first_task_took_in_this_start(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny")
    job = f"{slurm_jobs.PREFIX}77"
    store.update_run(run.id, job_id=job)  # queued, waiting for job 77
    assert not slurm_jobs.taken(store, run.id, job, wait_s=0.5)  # its first task has not taken it
    assert store.start_job(run.id, job, host="node1", token="t")
    assert slurm_jobs.taken(store, run.id, job, wait_s=0.5)
    assert not slurm_jobs.taken(store, run.id, f"{slurm_jobs.PREFIX}78", wait_s=0.5)  # another job's run
    # Slurm requeued the job itself (a node lost): the run still runs since the job's last start,
    # its first task cannot take it, and the others must not wait for it to (nor for 120 s)
    store.update_run(run.id, summary={SEGMENTS: [[time.time() - 3600, None]]})
    asked = time.monotonic()
    assert not slurm_jobs.taken(store, run.id, job, wait_s=120)
    assert time.monotonic() - asked < 60


def test_a_job_warned_of_its_time_limit_is_requeued_and_resumes_from_its_checkpoint(
        cluster: SlurmCluster, store: Store) -> None:
    # a 5-minute limit: Slurm's own warning (90 s before it) comes after the test; with 1 minute, a
    # resumed job slower than ~60 s on a busy machine was warned again and requeued twice
    run = create_run(store, "vit", preset="tiny", overrides=[*SLURM, "epochs=10", "max_steps=300", "checkpoint_every=10",
                                                            "eval_every=100", "slurm_time_min=5"])
    runner = Runner(store)
    scheduler.tick(store, runner)
    wait_for(lambda: (store.latest_artifact(run.id, "checkpoint") or store.get_run(run.id)).step >= 60
             if store.get_run(run.id).status == "running" else False, timeout=120)
    import submitit

    # What Slurm does `slurm_signal_s` before the time limit (sbatch --signal=USR2@N), done now
    # with submitit's own test route (scancel --signal USR2): a time limit takes 60-90 s to fire
    submitit.SlurmJob(folder=slurm_jobs.job_folder(run.id), job_id=slurm_jobs.job_number(store.get_run(run.id))
                      )._interrupt(timeout=True)
    wait_for(lambda: store.get_run(run.id).status == "queued", timeout=60)
    requeued_at = store.latest_artifact(run.id, "checkpoint").step
    assert 60 <= requeued_at < 300
    follow_until(store, runner, run.id, RunStatus.FINISHED, timeout=180)
    done = store.get_run(run.id)
    assert job_fields(cluster, run.id, store)["Restarts"] == "1" and len(done.segments) == 2
    log = log_path(run.id).read_text()
    assert "requeued (1 of 3), it resumes from step" in log and f"resuming from step {requeued_at}" in log
    steps = [row[1] for row in store.metrics(run.id, key="train/loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 300  # one curve, continued, not restarted


def test_slurms_own_end_of_a_job_and_a_refused_submission_reach_the_run(cluster: SlurmCluster, store: Store) -> None:
    runner = Runner(store)
    run = create_run(store, "vit", preset="tiny", overrides=[*SLURM, "slurm_sbatch=--begin=now+3600"])
    scheduler.tick(store, runner)
    subprocess.run(["scancel", slurm_jobs.job_number(store.get_run(run.id))], env=cluster.env, check=True)
    wait_for(lambda: run.id in slurm_jobs.follow(store))
    ended = store.get_run(run.id)
    assert ended.status == "cancelled" and "was cancelled in Slurm (scancel)" in ended.error

    refused = create_run(store, "vit", preset="tiny", overrides=[*SLURM, "slurm_partition=nosuchpartition"])
    with pytest.raises(WorkbenchError, match="Slurm did not take the job"):
        scheduler.tick(store, runner)
    failed = store.get_run(refused.id)
    assert failed.status == "failed" and "invalid partition" in failed.error.lower() and failed.job_id is None


def test_runs_left_submitting_by_a_dead_scheduler_are_adopted_or_sent_again(cluster: SlurmCluster,
                                                                            store: Store) -> None:
    """A scheduler that died after sbatch left a job its run does not know; one that died before
    left none. The job is found by its name and adopted; the run without one is sent again, once."""
    waiting = [*SLURM, "slurm_sbatch=--begin=now+3600"]  # jobs that stay pending
    sent, lost = (create_run(store, "vit", preset="tiny", overrides=waiting) for _ in range(2))
    assert store.claim_submission(sent.id) and store.claim_submission(lost.id)
    number = slurm_jobs.submit(store, sent.id).removeprefix(slurm_jobs.PREFIX)
    store.update_run(sent.id, job_id=SUBMITTING, job_state="submitting")  # as if it died before recording it
    assert slurm_jobs.settle_stale_claims(store) == []  # taken seconds ago: its scheduler may be sending it
    assert sorted(slurm_jobs.settle_stale_claims(store, older_than=0)) == sorted([sent.id, lost.id])
    adopted, released = store.get_run(sent.id), store.get_run(lost.id)
    assert (adopted.job_id, adopted.job_state) == (f"slurm:{number}", "PENDING") and released.job_id is None
    scheduler.tick(store, Runner(store))  # sends the released one again: one job of its name
    assert store.get_run(lost.id).job_id.startswith(slurm_jobs.PREFIX)
    assert len(_squeue(cluster, "-n", slurm_jobs.job_name(lost.id)).splitlines()) == 1
    assert len(_squeue(cluster, "-n", slurm_jobs.job_name(sent.id)).splitlines()) == 1


def test_a_study_sends_its_members_to_slurm_one_after_the_other(cluster: SlurmCluster, store: Store) -> None:
    spec = sweep_spec("vit", [("lr", [1e-3, 2e-3])], budget="tiny",
                      common={"executor": "slurm", "max_steps": 6, "warmup_epochs": 0.0, "epochs": 1}, parallel=1)
    study = create_study(store, spec)
    runner = Runner(store)
    first, second = (m.run_id for m in store.study_members(study.id))
    assert scheduler.tick(store, runner) == [first]  # parallel=1: one in Slurm's queue at a time
    # the second is sent by the first's worker, inside its Slurm job, when it ends
    wait_for(lambda: store.get_run(second).job_id is not None, timeout=150)
    follow_until(store, runner, second, RunStatus.FINISHED)
    a, b = store.get_run(first), store.get_run(second)
    assert a.status == "finished" and a.job_id != b.job_id and b.started_at > a.finished_at - 1


def test_slurm_fields_are_checked_before_anything_is_sent(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="slurm_sbatch.*short forms"):
        create_run(store, "vit", preset="tiny", overrides=["executor=slurm", "slurm_sbatch=-C a100"])
    params = slurm_jobs.parameters(7, {"nproc": 4, "nnodes": 2, "slurm_gpus_per_node": 4, "slurm_mem_gb": 1.5,
                                       "slurm_time_min": 30, "slurm_signal_s": 120, "slurm_partition": "gpu",
                                       "slurm_sbatch": "--constraint=a100 --exclusive"})
    assert params["nodes"] == 2 and params["ntasks_per_node"] == 4 and params["gpus_per_node"] == 4
    assert params["mem"] == "1536MB" and params["time"] == 30 and params["signal_delay_s"] == 120
    assert params["partition"] == "gpu" and params["additional_parameters"] == {"constraint": "a100", "exclusive": True}
    assert "account" not in params and "cpus_per_task" not in params  # unset: the cluster's defaults
    monkeypatch.setenv("PATH", str(Path("/nonexistent")))
    with pytest.raises(ConfigError, match="executor=slurm: Slurm's commands"):
        create_run(store, "vit", preset="tiny", overrides=["executor=slurm"])
    assert store.list_runs() == []  # a refused run writes nothing
