"""Resuming a run when something about it is not as it was (issue #18): two resumes at once, every
checkpoint gone, the data changed under it; and a resumed run's time, kept over its segments."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from tests.conftest import wait_for
from workbench import fmt, paths
from workbench.cli import main
from workbench.data import folders, registry
from workbench.engine.execute import StopFlag, execute
from workbench.errors import NoCheckpointError, WorkbenchError
from workbench.jobs import Runner, create_run
from workbench.jobs.processes import log_path
from workbench.jobs.runner import resume_run
from workbench.store import RunStatus, Store
from workbench.studies import scheduler

pytestmark = pytest.mark.slow

TINY = ["max_steps=4", "eval_every=2", "checkpoint_every=2", "log_every=1", "batch_size=16"]


def _stopped_run(store: Store, *overrides: str) -> int:
    """A run that a resume may restart: cancelled before its worker wrote anything (step 0)."""
    run = create_run(store, "vit", preset="tiny", overrides=[*TINY, *overrides])
    store.update_run(run.id, status=RunStatus.CANCELLED, finished_at=1.0)
    return run.id


# ------------------------------------------------------------- two resumes at once (item 22)
def test_a_resume_that_loses_the_race_says_the_run_is_already_queued(store: Store, monkeypatch) -> None:
    """Both resumes read the run as cancelled before either queues it: one wins, the other is told."""
    run_id = _stopped_run(store)
    barrier, real_get = threading.Barrier(2), Store.get_run
    read: set[int] = set()

    def get_run_then_wait(self: Store, rid: int):
        row = real_get(self, rid)
        if threading.get_ident() not in read:  # each racer's first read: both see it cancelled
            read.add(threading.get_ident())
            barrier.wait(timeout=10)
        return row

    monkeypatch.setattr(Store, "get_run", get_run_then_wait)
    outcomes: list[str] = []

    def racer() -> None:
        try:
            outcomes.append(resume_run(Store(), run_id).status)
        except WorkbenchError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == sorted([RunStatus.QUEUED, f"run {run_id} is already queued; "
                                                         f"`workbench show {run_id}` follows it"])


def test_resume_of_a_queued_or_running_run_says_so(store: Store, capsys) -> None:
    run_id = _stopped_run(store)
    for status in (RunStatus.QUEUED, RunStatus.RUNNING):
        store.update_run(run_id, status=status, started_at=time.time())  # just claimed: its worker is starting
        assert main(["resume", str(run_id)]) == 2
        err = capsys.readouterr().err
        assert f"run {run_id} is already {status}; `workbench show {run_id}` follows it" in err
        assert "started" not in err


RACER = r"""
import pathlib, sys, time
from workbench.cli import main
pathlib.Path(sys.argv[3]).touch()  # imported: ready to go
while not pathlib.Path(sys.argv[1]).exists():
    time.sleep(0.001)
sys.exit(main(["resume", sys.argv[2]]))
"""


def test_two_cli_resumes_at_once_start_one_worker(store: Store, tmp_path: Path) -> None:
    run_id = _stopped_run(store)
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(go), str(run_id), str(r)], env=dict(os.environ),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in ready]
    while not all(r.exists() for r in ready):  # both imported: let them go together
        pass
    go.touch()
    done = [(p.wait(timeout=120), *p.communicate()) for p in racers]
    codes = sorted(code for code, _, _ in done)
    assert codes == [0, 2], done
    (_, out, won), (_, _, lost) = sorted(done)
    assert out.strip() == str(run_id) and f"run {run_id} started" in won
    assert f"run {run_id} is already" in lost and "started" not in lost and "Traceback" not in lost
    assert scheduler.wait_for(store, Runner(store), run_id, timeout=120) == RunStatus.FINISHED
    assert log_path(run_id).read_text().count("--- worker start") == 1


# ---------------------------------------------------------- every checkpoint gone (item 18)
def _trained(store: Store) -> int:
    """A tiny run trained to its end in-process (checkpoints at steps 2 and 4), then marked as a
    worker killed at the end would leave it."""
    run = create_run(store, "vit", preset="tiny", overrides=TINY)
    assert execute(store, run.id, log=lambda _: None) == RunStatus.FINISHED
    store.update_run(run.id, status=RunStatus.INTERRUPTED)
    return run.id


def _checkpoint_files(run_id: int) -> list[Path]:
    return sorted((paths.run_dir(run_id) / "checkpoints").glob("*.pt"))


def test_resume_with_every_checkpoint_gone_asks_for_from_scratch(store: Store, capsys) -> None:
    run_id = _trained(store)
    for file in _checkpoint_files(run_id):
        file.unlink()
    metrics = store.metrics(run_id)
    assert main(["resume", str(run_id)]) == 2
    err = capsys.readouterr().err
    folder = paths.run_dir(run_id) / "checkpoints"
    assert (f"run {run_id} has no checkpoint left (its checkpoint files are gone from {folder}); "
            f"`workbench resume {run_id} --from-scratch` starts it again from step 0 and replaces its metrics") in err
    assert store.get_run(run_id).status == RunStatus.INTERRUPTED and store.metrics(run_id) == metrics  # untouched

    assert main(["resume", str(run_id), "--from-scratch", "--wait"]) == 0, log_path(run_id).read_text()
    run = store.get_run(run_id)
    assert run.status == RunStatus.FINISHED and run.step == 4
    assert [r[1] for r in store.metrics(run_id, key="train/loss")] == [1, 2, 3, 4]  # replaced, not doubled
    assert "starting again from step 0" in log_path(run_id).read_text()


def test_a_run_stopped_before_its_first_checkpoint_is_not_restarted_silently(store: Store) -> None:
    run_id = _stopped_run(store)
    store.update_run(run_id, step=3)  # it had trained and reported 3 steps
    with pytest.raises(NoCheckpointError, match="it stopped at step 3 before writing one"):
        resume_run(store, run_id)


def test_unreadable_checkpoints_fail_the_run_until_from_scratch(store: Store) -> None:
    """Files that exist but cannot be read pass resume's look; the worker refuses, keeping the metrics."""
    run_id = _trained(store)
    for file in _checkpoint_files(run_id):
        file.write_bytes(b"torn")
    metrics = store.metrics(run_id)
    resume_run(store, run_id)
    assert execute(store, run_id, log=lambda _: None) == RunStatus.FAILED
    run = store.get_run(run_id)
    assert run.error.startswith(f"run {run_id} has no checkpoint left (its checkpoint files are unreadable in ")
    assert "Traceback" not in run.error and store.metrics(run_id) == metrics

    resume_run(store, run_id, from_scratch=True)
    assert store.get_run(run_id).step == 0 and _checkpoint_files(run_id) == []  # the best weights too
    assert execute(store, run_id, log=lambda _: None) == RunStatus.FINISHED
    assert [r[1] for r in store.metrics(run_id, key="train/loss")] == [1, 2, 3, 4]
    assert [f.name for f in _checkpoint_files(run_id) if f.name.startswith("step-")] == \
        ["step-00000002.pt", "step-00000004.pt"]


# ------------------------------------------------------------ a resumed run's time (item 8)
def _stop_at(step: int) -> tuple[StopFlag, Callable[[str], None]]:
    """A stop flag and a log that requests the stop at the evaluation of `step` (checkpointed then)."""
    stop = StopFlag()
    return stop, lambda message: stop.request() if message.startswith(f"step {step}/") else None


def test_a_resumed_run_keeps_its_first_start_and_counts_every_segment(store: Store, capsys) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=TINY)
    assert execute(store, run.id, *_stop_at(2)) == RunStatus.CANCELLED  # segment 1, in this process
    first = store.get_run(run.id)
    time.sleep(1.5)  # stopped: this gap is no training time
    assert main(["resume", str(run.id), "--wait"]) == 0  # segment 2: claimed, trained by a worker
    run = store.get_run(run.id)
    assert run.status == RunStatus.FINISHED and run.started_at == first.started_at
    (start1, end1), (start2, end2) = run.segments
    assert (start1, end1) == (first.started_at, first.finished_at) and start2 >= end1 + 1.5
    assert end2 == run.finished_at
    assert run.training_seconds == pytest.approx((end1 - start1) + (end2 - start2))
    assert run.training_seconds < run.finished_at - run.started_at - 1.4
    assert fmt.duration(run) == fmt.seconds(run.training_seconds)
    capsys.readouterr()
    assert main(["show", str(run.id)]) == 0
    shown = capsys.readouterr().out
    assert f"started {fmt.clock(first.started_at)}  duration {fmt.duration(run)}  ({fmt.segments(run)})" in shown
    assert fmt.segments(run).startswith("2 segments: ") and fmt.segments(run).count("–") == 2
    assert main(["show", str(run.id), "--json"]) == 0  # the last segment ends where the run did, not at null
    assert json.loads(capsys.readouterr().out)["summary"]["segments"] == [[start1, end1], [start2, run.finished_at]]


# ------------------------------------------------------ the data changed under it (items 1, 16)
CLOTHES = {"bag": (200, 60, 40), "boot": (40, 60, 200), "coat": (40, 180, 70)}


def _clothes(store: Store, root: Path) -> Path:
    """A labelled folder of three classes, eight 24 px images each, registered as 'clothes'."""
    rng = np.random.default_rng(0)
    for name, colour in CLOTHES.items():
        (root / name).mkdir(parents=True)
        for i in range(8):
            _add_image(root / name / f"{i}.png", colour, rng)
    registry.register(store, "clothes", "imagefolder", root, val_fraction=0.25)
    return root


def _add_image(path: Path, colour: tuple[int, int, int], rng: np.random.Generator) -> None:
    pixels = np.clip(np.array(colour) + rng.normal(0, 30, (24, 24, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def _stopped_on_clothes(store: Store) -> int:
    """A run on 'clothes' stopped at step 2, with its checkpoint there."""
    run = create_run(store, "vit", preset="tiny", overrides=[*TINY, "dataset=clothes", "batch_size=6"])
    assert execute(store, run.id, *_stop_at(2)) == RunStatus.CANCELLED
    assert store.latest_artifact(run.id, "checkpoint").step == 2
    return run.id


@pytest.mark.parametrize("change, words", [
    ("renamed", "(gone: bag; new: zbag); its model's outputs stand for bag, boot, coat in that order, so going on "
                "would mislabel images. Restore the class folders as they were (bag) and resume"),
    ("removed", "(gone: coat); its model's outputs stand for bag, boot, coat in that order, so going on would "
                "mislabel images. Restore the class folders as they were (coat) and resume"),
])
def test_resume_on_other_classes_fails_with_what_changed(store: Store, tmp_path: Path, change: str,
                                                         words: str) -> None:
    """The dataset registered again after its folders changed (as its own check asks): the
    checkpoint's classes are what the model's outputs mean, so they decide."""
    root = _clothes(store, tmp_path / "clothes")
    run_id = _stopped_on_clothes(store)
    if change == "renamed":
        (root / "bag").rename(root / "zbag")
    else:
        shutil.rmtree(root / "coat")
    store.remove_dataset("clothes")
    registry.register(store, "clothes", "imagefolder", root, val_fraction=0.25)

    resume_run(store, run_id)
    assert execute(store, run_id, log=lambda _: None) == RunStatus.FAILED
    error = store.get_run(run_id).error
    assert error.startswith(f"run {run_id} cannot resume: dataset 'clothes' has other classes than its checkpoint "
                            f"of step 2 was trained on ")
    assert words in error and f"`workbench resume {run_id} --from-scratch`" in error
    assert "Traceback" not in error and "size mismatch" not in error


def test_killed_run_resumed_after_a_class_folder_was_renamed_fails_with_a_sentence(cli, store: Store,
                                                                                    tmp_path: Path) -> None:
    """The issue's case end to end: a worker killed, `bag` renamed to `zbag`, `workbench resume`."""
    root = _clothes(store, tmp_path / "clothes")
    run = create_run(store, "vit", preset="tiny", overrides=["dataset=clothes", "batch_size=6", "epochs=500",
                                                             "checkpoint_every=2", "eval_every=1000"])
    runner = Runner(store)
    scheduler.tick(store, runner)
    wait_for(lambda: store.latest_artifact(run.id, "checkpoint") is not None)
    os.kill(store.get_run(run.id).pid, signal.SIGKILL)
    wait_for(lambda: runner.reap() and store.get_run(run.id).status == RunStatus.INTERRUPTED, timeout=30)
    (root / "bag").rename(root / "zbag")

    done = cli("resume", str(run.id), "--wait")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    row = store.get_run(run.id)
    assert row.status == RunStatus.FAILED and "Traceback" not in row.error
    assert "bag" in row.error and "zbag" in row.error and row.error in done.stderr


def test_resume_on_changed_images_goes_on_with_a_warning(store: Store, tmp_path: Path) -> None:
    root = _clothes(store, tmp_path / "clothes")
    run_id = _stopped_on_clothes(store)
    rng = np.random.default_rng(1)
    for i in range(8, 12):  # same classes, more images
        _add_image(root / "boot" / f"{i}.png", CLOTHES["boot"], rng)

    resume_run(store, run_id)
    said: list[str] = []
    assert execute(store, run_id, log=said.append) == RunStatus.FINISHED
    warning = ("resumed at step 2 on other images: dataset 'clothes' has the classes its checkpoint was trained on "
               "but not the same images (files added, removed or edited); the run went on with the images as they "
               "are now")
    assert store.get_run(run_id).warnings == [warning]
    assert f"warning: {warning}" in said


def test_resume_after_a_validation_image_was_replaced_goes_on_with_a_warning(store: Store, tmp_path: Path) -> None:
    """A validation image replaced by another keeps every count and the training images' channel
    statistics: the folder's own fingerprint (its files' names, sizes and times) is what tells the
    checkpoint's data apart."""
    root = _clothes(store, tmp_path / "clothes")
    run_id = _stopped_on_clothes(store)
    _, val = folders.split(folders.scan(root, labelled=True).items, 0.25)  # the registry's split
    _add_image(val[0][0], CLOTHES["coat"], np.random.default_rng(5))  # another picture under its name

    resume_run(store, run_id)
    assert execute(store, run_id, log=lambda _: None) == RunStatus.FINISHED
    assert [w.split(":")[0] for w in store.get_run(run_id).warnings] == ["resumed at step 2 on other images"]
