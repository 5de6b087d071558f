"""Crash cases with real processes and files: the window that started workers is SIGKILLed (its
workers go on and a new window re-attaches to them), and the disk fills up while a checkpoint
is written (a clear error, the previous checkpoint intact, resume finishes)."""

import errno
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import wait_for
from workbench.engine import checkpoint
from workbench.engine.execute import execute
from workbench.jobs import create_run
from workbench.jobs.processes import is_worker_alive
from workbench.jobs.runner import Runner, resume_run
from workbench.store import RunStatus, Store
from workbench.studies import scheduler

pytestmark = pytest.mark.slow

WINDOW = r"""
import sys, time
from workbench.jobs import create_run
from workbench.jobs.runner import Runner
from workbench.store import Store
from workbench.studies import tick
store = Store()
store.set_max_concurrent(2)
runner = Runner(store)
for steps in sys.argv[1:]:
    run = create_run(store, "vit", preset="tiny", overrides=[f"max_steps={steps}", "eval_every=50"])
    print(run.id, flush=True)
while True:
    tick(store, runner)
    time.sleep(0.2)
"""


def test_killed_window_leaves_workers_running_and_a_new_runner_reattaches(store: Store) -> None:
    window = subprocess.Popen([sys.executable, "-c", WINDOW, "300", "2000"], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ))
    survivor, victim = int(window.stdout.readline()), int(window.stdout.readline())
    wait_for(lambda: all(store.get_run(r).step > 0 for r in (survivor, victim)))
    window.kill()  # SIGKILL: no chance to clean up
    window.wait()
    pids = {r: store.get_run(r).pid for r in (survivor, victim)}
    assert all(is_worker_alive(pid, r) for r, pid in pids.items())  # the workers outlive their window
    os.killpg(pids[victim], signal.SIGKILL)  # and one of them dies while no window watches

    queued = create_run(store, "vit", preset="tiny", overrides=["max_steps=5", "eval_every=5"])
    store.set_max_concurrent(1)
    runner = Runner(store)  # a window opened again

    def victim_found() -> bool:
        scheduler.tick(store, runner)
        return store.get_run(victim).status == RunStatus.INTERRUPTED
    wait_for(victim_found, timeout=30)
    assert "workbench resume" in store.get_run(victim).error
    scheduler.tick(store, runner)
    assert store.get_run(survivor).status == RunStatus.RUNNING  # re-attached, not marked lost
    assert store.get_run(queued.id).status == RunStatus.QUEUED  # the adopted worker fills the one slot
    assert scheduler.wait_for(store, runner, survivor, timeout=180) == RunStatus.FINISHED
    assert scheduler.wait_for(store, runner, queued.id, timeout=180) == RunStatus.FINISHED
    steps = [r[1] for r in store.metrics(survivor, key="val/top1")]
    assert steps == [50, 100, 150, 200, 250, 300]  # nothing reported was lost across the window's death


def test_full_disk_while_checkpointing_fails_clearly_and_resume_finishes(store: Store, monkeypatch) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=["max_steps=30", "eval_every=10", "checkpoint_every=10"])
    real_save = checkpoint.torch.save

    def full_disk(state, fh) -> None:
        if state["step"] == 20:
            fh.write(b"\0" * 4096)  # part of the file made it to disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(state, fh)

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    assert execute(store, run.id, log=lambda _: None) == RunStatus.FAILED
    row = store.get_run(run.id)
    assert "could not write the checkpoint of step 20" in row.error and "No space left on device" in row.error
    assert "continues from step 10" in row.error
    folder = store.abspath(store.latest_artifact(run.id, "checkpoint")).parent
    # no torn or temporary file: the checkpoint of step 10 and the best weights, of step 10 (step 20's failed first)
    assert sorted(p.name for p in folder.iterdir()) == ["best-00000010.pt", "step-00000010.pt"]
    state, art = checkpoint.Checkpoints(store, run.id).latest_readable()
    assert art.step == 10 and state["step"] == 10

    monkeypatch.setattr(checkpoint.torch, "save", real_save)  # space freed
    resume_run(store, run.id)
    assert execute(store, run.id, log=lambda _: None) == RunStatus.FINISHED
    assert [r[1] for r in store.metrics(run.id, key="val/top1")] == [10, 20, 30]
