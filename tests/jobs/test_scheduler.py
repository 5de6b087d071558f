"""One scheduler, one cap: whoever ticks (a window, the command line, a worker whose run ended)
starts runs under the same limit, claimed in one UPDATE, so they never exceed it."""

import threading
import time

import pytest

from tests.conftest import wait_for
from workbench.jobs import Runner, create_run
from workbench.store import RunStatus, Store
from workbench.studies import Stage, StudySpec, create_study, tick

pytestmark = [pytest.mark.slow, pytest.mark.backends]
SHORT = {"max_steps": 15, "eval_every": 15, "log_every": 5}


def test_a_run_a_study_run_and_the_cli_never_overlap_under_a_limit_of_one(store: Store, cli) -> None:
    store.set_max_concurrent(1)
    plain = create_run(store, "vit", preset="tiny", overrides=SHORT)
    study = create_study(store, StudySpec([Stage("only", "vit", dict(SHORT))], parallel=2, name="one"))
    member = store.study_members(study.id)[0]
    assert store.get_run(member.run_id).status == RunStatus.QUEUED
    runner, stop = Runner(store), threading.Event()

    def window() -> None:  # a GUI's poll, ticking as fast as it likes meanwhile
        while not stop.is_set():
            tick(store, runner)
            time.sleep(0.05)

    polling = threading.Thread(target=window)
    polling.start()
    try:
        done = cli("train", "--method", "vit", "--preset", "tiny", *(f"--set={k}={v}" for k, v in SHORT.items()))
        assert done.returncode == 0, done.stderr
        from_cli = int(done.stdout)
        ids = [plain.id, member.run_id, from_cli]
        wait_for(lambda: all(store.get_run(i).status == RunStatus.FINISHED for i in ids), timeout=300)
    finally:
        stop.set()
        polling.join()
    spans = sorted((store.get_run(i).started_at, store.get_run(i).finished_at) for i in ids)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        # each run trains for seconds; the clocks are read before the writes that take the store's
        # lock, so the next claim's start can read a few ms before the end it waited for (7 ms seen)
        assert start >= end - 0.5, f"two runs overlapped: {spans}"


def test_a_studys_own_parallel_holds_back_only_its_runs(store: Store) -> None:
    store.set_max_concurrent(3)
    study = create_study(store, StudySpec([Stage("a", "vit", dict(SHORT)), Stage("b", "vit", dict(SHORT))],
                                          parallel=1, name="one at a time"))
    other = create_run(store, "vit", preset="tiny", overrides=SHORT)
    runner = Runner(store)
    started = tick(store, runner)
    members = [m.run_id for m in store.study_members(study.id)]
    assert sorted(started) == sorted([members[0], other.id])  # the study's second waits for its first
    assert store.get_run(members[1]).status == RunStatus.QUEUED
    for run_id in started:
        runner.cancel(run_id, grace=30)


def test_a_run_ending_in_a_slurm_job_starts_no_run_on_the_jobs_node(store: Store, monkeypatch) -> None:
    """A worker inside a Slurm job's task sends the cluster's runs when its run ends (tested with
    the cluster in test_slurm_runs) but starts no run for this machine there: it would run on
    the compute node inside the ended job, killed with it."""
    from workbench import worker
    from workbench.jobs import cancel_run
    from workbench.jobs.slurm import TASK_ENV

    local = create_run(store, "vit", preset="tiny", overrides=[f"{k}={v}" for k, v in SHORT.items()])
    monkeypatch.setenv(TASK_ENV, "1")
    worker._schedule_after(store, 0)
    assert store.get_run(local.id).status == RunStatus.QUEUED and store.get_run(local.id).pid is None
    monkeypatch.delenv(TASK_ENV)
    worker._schedule_after(store, 0)  # a local worker's end starts it
    assert store.get_run(local.id).status == RunStatus.RUNNING
    assert cancel_run(store, local.id) == RunStatus.CANCELLED
