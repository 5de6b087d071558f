"""Real worker processes started through the runner and the CLI, against a real SQLite file and a real
PostgreSQL server."""

import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from sqlalchemy import text

from tests.conftest import wait_for
from workbench import paths
from workbench.engine.execute import execute
from workbench.jobs import Runner, cancel_run, create_run, reconcile
from workbench.jobs.processes import is_worker_alive, log_path
from workbench.jobs.runner import Launched
from workbench.store import RunStatus, Store
from workbench.studies import scheduler

pytestmark = [pytest.mark.slow, pytest.mark.backends]


@pytest.mark.one_backend
def test_cli_tiny_vit_run_finishes_clearly_above_chance(cli, store: Store) -> None:
    done = cli("train", "--method", "vit", "--preset", "tiny", "--set", "epochs=5", "--wait")
    assert done.returncode == 0, done.stderr
    run_id = int(done.stdout.strip())
    run = store.get_run(run_id)
    assert run.status == RunStatus.FINISHED and run.device == "cpu"
    assert run.pid not in (None, os.getpid())  # trained in its own process
    with store.engine.connect() as db:  # the metrics are in the database itself (plain SQL)
        top1 = db.execute(text("SELECT value FROM metrics WHERE run_id=:r AND key='val/top1' ORDER BY step DESC "
                               "LIMIT 1"), {"r": run_id}).scalar_one()
        rows = db.execute(text("SELECT count(*) FROM metrics WHERE run_id=:r"), {"r": run_id}).scalar_one()
    assert top1 >= 0.2, f"val top-1 {top1:.3f} is not clearly above chance (0.1)"
    assert rows > 100
    assert "finished" in done.stderr and log_path(run_id).read_text().count("val/top1=") == 5


@pytest.mark.one_backend
def test_sigkill_keeps_flushed_metrics_and_resume_finishes(cli, store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=["epochs=2", "checkpoint_every=20", "log_every=5"])
    runner = Runner(store)
    scheduler.tick(store, runner)
    wait_for(lambda: store.get_run(run.id).step >= 45 and store.latest_artifact(run.id, "checkpoint") is not None)
    flushed = store.metrics(run.id)
    os.kill(store.get_run(run.id).pid, signal.SIGKILL)
    wait_for(lambda: runner.reap() and store.get_run(run.id).status != RunStatus.RUNNING, timeout=30)
    killed = store.get_run(run.id)
    assert killed.status == RunStatus.INTERRUPTED and "SIGKILL" in killed.error
    after = store.metrics(run.id)
    assert after[:len(flushed)] == flushed  # every row it had flushed survived the kill

    resumed = cli("resume", str(run.id), "--wait")
    assert resumed.returncode == 0, resumed.stderr
    final = store.get_run(run.id)
    assert final.status == RunStatus.FINISHED and final.step == final.total_steps
    steps = [r[1] for r in store.metrics(run.id, key="train/loss")]
    assert steps == sorted(set(steps)) and steps[-1] == final.total_steps  # no duplicated stretch
    assert "resuming from step" in log_path(run.id).read_text()


def test_two_runs_at_once_both_finish_without_lock_errors(store: Store) -> None:
    runs = [create_run(store, "vit", preset="tiny", overrides=["max_steps=60", "log_every=1", "eval_every=20"])
            for _ in range(2)]
    store.set_max_concurrent(2)
    runner = Runner(store)
    scheduler.tick(store, runner)  # starts both queued runs
    assert set(runner.procs) == {r.id for r in runs}
    for r in runs:
        assert scheduler.wait_for(store, runner, r.id, timeout=180) == RunStatus.FINISHED
    a, b = (store.get_run(r.id) for r in runs)
    assert b.started_at < a.finished_at  # they really overlapped
    for r in runs:
        assert len(store.metrics(r.id, key="train/loss")) == 60
        assert "locked" not in log_path(r.id).read_text()


def test_cancel_stops_the_worker_and_keeps_a_checkpoint(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny")
    runner = Runner(store)
    scheduler.tick(store, runner)
    wait_for(lambda: store.get_run(run.id).step >= 10)
    pid = store.get_run(run.id).pid
    assert runner.cancel(run.id) == RunStatus.CANCELLED
    assert not is_worker_alive(pid, run.id)
    assert store.latest_artifact(run.id, "checkpoint") is not None
    assert store.get_run(run.id).error is None  # it stopped gracefully, not killed
    queued = create_run(store, "vit", preset="tiny")
    assert cancel_run(store, queued.id) == RunStatus.CANCELLED


@pytest.mark.one_backend
def test_a_spare_worker_takes_the_next_run_and_one_that_died_is_replaced(store: Store) -> None:
    store.set_max_concurrent(1)
    runner = Runner(store, spare=True)
    runner.warm()
    spare = runner.spare.proc
    run, other = create_run(store, "vit", preset="tiny"), create_run(store, "vit", preset="tiny")
    assert scheduler.tick(store, runner) == [run.id]  # one run at a time
    pid = store.get_run(run.id).pid
    assert pid == spare.pid and is_worker_alive(pid, run.id) and not is_worker_alive(pid, other.id)
    assert cancel_run(store, other.id) == RunStatus.CANCELLED  # not started by the run's end (its worker ticks)
    assert runner.spare is None  # the next run's spare waits for this one's first step ...
    wait_for(lambda: store.get_run(run.id).step >= 10)
    wait_for(lambda: runner.reap() is not None and runner.spare is not None, timeout=10)  # its checks every 2 s
    assert runner.spare.proc.pid != pid and runner.spare.proc.poll() is None  # ... then starts
    assert run.id not in reconcile(store)  # its cmdline names no run: its token file does
    assert f"run {run.id}: vit on cpu" in log_path(run.id).read_text()  # the spare writes the run's log
    assert runner.cancel(run.id) == RunStatus.CANCELLED and store.get_run(run.id).error is None  # SIGTERM heard

    runner.spare.proc.kill()  # the next spare died: the next run starts a worker of its own
    runner.spare.proc.wait()
    other = create_run(store, "vit", preset="tiny")
    assert scheduler.tick(store, runner) == [other.id]
    assert store.get_run(other.id).pid not in (pid, spare.pid, None)
    wait_for(lambda: runner.reap() is not None and runner.spare is not None)  # once it trains
    assert runner.cancel(other.id) == RunStatus.CANCELLED
    last = runner.spare.proc
    runner.close()
    assert last.wait(timeout=10) is not None


@pytest.mark.one_backend
def test_an_untaken_spare_ends_with_its_runners_process_or_when_idle(store: Store,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.jobs import runner as runner_module

    spare = runner_module.Spare(Runner(store).worker_environment())
    spare.proc.stdin.close()  # as when the window's process ends: the pipe's other end closes
    assert spare.proc.wait(timeout=120) == 0
    runner = Runner(store, spare=True)
    runner.warm()
    idle = runner.spare.proc
    monkeypatch.setattr(runner_module, "SPARE_IDLE_S", 0.0)
    runner.reap()
    assert runner.spare is None and idle.poll() is not None


def test_worker_error_marks_failed_with_the_message(cli, store: Store, tmp_path) -> None:
    from PIL import Image

    from workbench.data import registry

    for name in ("cat", "dog"):  # a registered folder that is gone by the time the run starts
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(tmp_path / "pets" / name / f"{i}.png")
    registry.register(store, "pets", "imagefolder", tmp_path / "pets")
    shutil.rmtree(tmp_path / "pets")
    done = cli("train", "--method", "vit", "--preset", "tiny", "--set", "dataset=pets", "batch_size=4", "--wait")
    assert done.returncode == 1
    run = store.get_run(int(done.stdout.strip()))
    assert run.status == RunStatus.FAILED
    assert "there is no folder at" in run.error and "there is no folder at" in done.stderr


def test_startup_marks_runs_whose_worker_is_gone(store: Store) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone, stranger = create_run(store, "vit"), create_run(store, "vit")
    store.update_run(gone.id, status=RunStatus.RUNNING, pid=dead.pid)
    store.update_run(stranger.id, status=RunStatus.RUNNING, pid=os.getpid())  # pid reused by another program
    assert sorted(reconcile(store)) == [gone.id, stranger.id]
    for r in (gone, stranger):
        row = store.get_run(r.id)
        assert row.status == RunStatus.INTERRUPTED and "workbench resume" in row.error


def test_a_worker_inside_execve_is_alive() -> None:
    """A worker becoming torchrun (os.execv, same pid) shows no command line for a moment; a
    check then must not call it gone (reconcile marked such a run interrupted while it trained)."""
    again = ("import os, sys\nleft = int(sys.argv[3])\nif left:\n"
             "    os.execv(sys.executable, [sys.executable, '-S', '-c', os.environ['AGAIN'], *sys.argv[1:3], str(left - 1)])")
    proc = subprocess.Popen([sys.executable, "-S", "-c", again, "workbench.worker", "7", "150"],
                            env={**os.environ, "AGAIN": again})
    checks = wrong = 0
    while proc.poll() is None:
        alive = is_worker_alive(proc.pid, 7)
        wrong += not alive and proc.poll() is None
        checks += 1
    assert proc.returncode == 0 and checks > 100
    assert wrong == 0, f"{wrong} of {checks} checks called a live worker gone"


def test_a_run_cancelled_before_its_worker_started_stays_cancelled(store: Store) -> None:
    """Cancel between the scheduler's claim and the worker's start (the window's poll claims while
    its Cancel runs): the run is cancelled, said so truly, and the worker that starts then does
    not train it (its start had put the run back to running, trained it to the end)."""
    run = create_run(store, "vit", preset="tiny", overrides=["max_steps=5"])
    assert store.claim_run(run.id, host=paths.host(), limit=2)  # running, no pid yet
    assert cancel_run(store, run.id) == RunStatus.CANCELLED
    assert store.get_run(run.id).error == "cancelled; before its worker started"
    assert execute(store, run.id, log=lambda _: None) == RunStatus.CANCELLED
    row = store.get_run(run.id)
    assert row.status == RunStatus.CANCELLED and row.step == 0 and not store.metrics(run.id, key="train/loss")


def test_a_worker_killed_by_a_cancel_is_cancelled_whoever_sees_it_end_first(store: Store) -> None:
    """The runner's reap can see a worker's end before the cancel that killed it records it (the
    window cancels on one thread while it polls on another): it records the cancel, not an
    interruption. A run's next worker is not judged by its last one's pid."""
    run = create_run(store, "vit", preset="tiny")
    token = store.claim_run(run.id, host=paths.host(), limit=2)
    runner = Runner(store)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "workbench.worker", str(run.id)],
                              start_new_session=True)
    runner.procs[run.id] = Launched(worker, token)
    store.update_run(run.id, pid=worker.pid)
    assert store.request_cancel(run.id)  # what cancel_run records first, then it kills the worker ...
    worker.kill()
    worker.wait()
    assert runner.reap() == [run.id]  # ... and the poll sees the end before cancel_run's last write
    row = store.get_run(run.id)
    assert row.status == RunStatus.CANCELLED and row.error == "cancelled; the worker was killed by signal SIGKILL " \
                                                              "before it finished"

    other = create_run(store, "vit", preset="tiny")
    assert store.claim_run(other.id, host=paths.host(), limit=2)
    store.update_run(other.id, pid=worker.pid)
    assert not store.transition(other.id, RunStatus.INTERRUPTED, only_from=[RunStatus.RUNNING], where={"pid": 1})
    assert store.transition(other.id, RunStatus.INTERRUPTED, only_from=[RunStatus.RUNNING], where={"pid": worker.pid})


def _fake_worker(run_id: int, code: int) -> subprocess.Popen:
    """A process whose command line names it the run's worker (what liveness checks read), which
    exits with `code` when its stdin is closed."""
    return subprocess.Popen([sys.executable, "-c", f"import sys; sys.stdin.read(); sys.exit({code})",
                             "workbench.worker", str(run_id)], stdin=subprocess.PIPE, start_new_session=True)


@pytest.mark.parametrize("code", [1, 0])
def test_a_worker_ending_after_its_run_was_taken_leaves_the_taker_alone(store: Store, code: int) -> None:
    """A runner's worker judged gone (suspended past the timeout, say) whose run was started
    again, on any host: when it ends, failed or not, its runner records nothing over the run the
    other start trains (it marked that run failed, or interrupted)."""
    run = create_run(store, "vit", preset="tiny")
    token = store.claim_run(run.id, host=paths.host(), limit=2)
    runner = Runner(store)
    judged = _fake_worker(run.id, code)
    runner.procs[run.id] = Launched(judged, token)
    store.update_run(run.id, worker_token="another start", pid=judged.pid + 1, host="node-9")  # resumed, claimed
    judged.communicate(timeout=30)
    assert runner.reap() == [run.id] and run.id not in runner.procs
    row = store.get_run(run.id)
    assert (row.status, row.error, row.worker_token) == (RunStatus.RUNNING, None, "another start")
    taker = _fake_worker(run.id, 0)
    store.update_run(run.id, pid=taker.pid, host=paths.host())
    runner.procs[run.id] = Launched(taker, "another start")
    taker.communicate(timeout=30)  # ended without recording an end: its runner records one
    assert runner.reap() == [run.id] and store.get_run(run.id).status == RunStatus.INTERRUPTED


def test_concurrent_auto_runs_get_distinct_gpus(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.engine.device import select_device
    from workbench.jobs.gpus import gpu_count, pick_gpu

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert gpu_count() == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_count() == 0
    runs = [create_run(store, "vit") for _ in range(3)]
    for run, device in zip(runs, ["cuda:0", "cuda:2 x2", "cpu"]):
        store.update_run(run.id, status=RunStatus.RUNNING, device=device, host=socket.gethostname())
    running = store.list_runs(status=RunStatus.RUNNING)
    assert pick_gpu(3, running) == 1
    assert pick_gpu(2, running[:1]) == 1 and pick_gpu(1, running) is None  # all taken: share
    monkeypatch.setenv("WORKBENCH_AUTO_DEVICE", "cpu")  # what the runner passes to a worker it placed
    assert str(select_device("auto")) == "cpu"


def test_a_worker_killed_before_its_first_checkpoint_says_how_to_start_it_again(store: Store) -> None:
    """Out of memory on its first steps (the kernel's SIGKILL): the run's error names the likely
    cause and does not promise a checkpoint it never saved."""
    run = create_run(store, "vit", preset="tiny")
    token = store.claim_run(run.id, host=paths.host(), limit=2)
    runner = Runner(store)
    worker = _fake_worker(run.id, 0)
    runner.procs[run.id] = Launched(worker, token)
    store.update_run(run.id, pid=worker.pid, step=3)
    worker.kill()
    worker.wait()
    assert runner.reap() == [run.id]
    error = store.get_run(run.id).error
    assert error.startswith("the worker was killed by signal SIGKILL before it finished (the system's out-of-memory")
    assert error.endswith(f"it had saved no checkpoint: `workbench resume {run.id} --from-scratch` starts it again "
                          f"from step 0")
