"""A disk that fills up while a checkpoint is written, on a real tiny filesystem (a tmpfs mounted
over the run's checkpoint folder; where mounting is not allowed, torch.save raises what torch
raises on a full disk). torch reports a short write as RuntimeError("unexpected pos ..."), not
OSError: the run must still say "disk full at PATH"."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import torch

from workbench import paths
from workbench.engine import checkpoint
from workbench.engine.execute import execute
from workbench.errors import WorkbenchError
from workbench.jobs import create_run
from workbench.jobs.runner import resume_run
from workbench.store import RunStatus, Store

TORCH_FULL_DISK = "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A 512 kB tmpfs, or None where this user may not mount one."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)], capture_output=True)
    yield folder if done.returncode == 0 else None
    if done.returncode == 0:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_torchs_short_write_is_reported_as_a_full_disk(store: Store, tiny_disk: Path | None, monkeypatch) -> None:
    run = create_run(store, "vit", preset="tiny")
    folder = paths.run_dir(run.id) / "checkpoints"
    if tiny_disk is not None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.symlink_to(tiny_disk)
        # the free-space check passes, so the write itself meets the full disk, as when another
        # program fills it meanwhile
        monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda _p: type("U", (), {"free": 10 ** 12})())
    else:
        def full(state, fh) -> None:
            raise RuntimeError(TORCH_FULL_DISK)
        monkeypatch.setattr(checkpoint.torch, "save", full)
    state = {"step": 7, "model": {"w": torch.zeros(1_000_000)}}  # 4 MB: more than the disk holds
    with pytest.raises(WorkbenchError, match=r"could not write the checkpoint of step 7: disk full at .*checkpoints"):
        checkpoint.Checkpoints(store, run.id).save(7, state)
    assert list(folder.iterdir()) == []  # no torn or temporary file left


def test_a_run_on_a_full_disk_fails_clearly_and_resume_finishes(store: Store, tiny_disk: Path | None,
                                                                 monkeypatch) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=["max_steps=30", "eval_every=10", "checkpoint_every=10"])
    folder = paths.run_dir(run.id) / "checkpoints"
    if tiny_disk is not None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.symlink_to(tiny_disk)
        subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    real_save, real_torch_save = checkpoint.Checkpoints.save, checkpoint.torch.save

    def save(self, step: int, state: dict) -> Path:
        if step == 20:  # the disk fills up (something else wrote to it) after the first checkpoint
            if tiny_disk is not None:
                subprocess.run(["mount", "-o", f"remount,size={_used(tiny_disk) + 8192}", str(tiny_disk)], check=True)
            else:
                monkeypatch.setattr(checkpoint.torch, "save", lambda *_a: (_ for _ in ()).throw(
                    RuntimeError(TORCH_FULL_DISK)))
        return real_save(self, step, state)

    monkeypatch.setattr(checkpoint.Checkpoints, "save", save)
    assert execute(store, run.id, log=lambda _: None) == RunStatus.FAILED
    error = store.get_run(run.id).error
    assert f"could not write the checkpoint of step 20: disk full at {folder}" in error, error
    assert "continues from step 10" in error
    # no torn or temporary file: the checkpoint of step 10, and the best weights, written at step 20's
    # evaluation before the disk filled (the resumed run drops them with the rest of what came after step 10)
    assert sorted(p.name for p in folder.iterdir()) == ["best-00000020.pt", "step-00000010.pt"]

    if tiny_disk is not None:  # space freed
        subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    monkeypatch.setattr(checkpoint.Checkpoints, "save", real_save)
    monkeypatch.setattr(checkpoint.torch, "save", real_torch_save)
    resume_run(store, run.id)
    assert execute(store, run.id, log=lambda _: None) == RunStatus.FINISHED
    assert [r[1] for r in store.metrics(run.id, key="val/top1")] == [10, 20, 30]
    assert [a.step for a in store.artifacts(run.id, "best")] == [max(store.metrics(run.id, key="val/top1"),
                                                                      key=lambda r: (r[4], -r[1]))[1]]


def _used(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())
