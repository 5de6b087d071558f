"""Checkpoints: written atomically, read without unpickling code, the last few kept.

A checkpoint is a dict of tensors and plain values (model, optimizer, scheduler, step, RNG
states) saved with `torch.save` and read with `weights_only=True`. It is first written to a
temporary file and renamed into place, so a crash or a full disk never leaves a torn file
under the real name. If the newest one cannot be read, the previous one is used. A checkpoint
also says what data it was trained on (`data_fingerprint`), so a resume on other classes is
refused with the ways on (`classes_changed`).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench import paths
from workbench.config import WEIGHTS
from workbench.errors import WorkbenchError
from workbench.methods import config_from_dict
from workbench.store import Artifact, Run, Store

if TYPE_CHECKING:
    from workbench.data import DataInfo
    from workbench.data.loading import DataBundle
    from workbench.methods.base import Method, ParentRun

KIND = "checkpoint"
BEST = "best"  # the weights of the run's best evaluation (one file, replaced as it improves)


def write_atomic(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _nbytes(state: Any) -> int:
    """Bytes of the tensors in a (nested) checkpoint dict: about its size on disk."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(_nbytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(_nbytes(v) for v in state)
    return 0


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _why(exc: BaseException, folder: Path) -> str:
    """'disk full at PATH: ...' when the disk is what failed, else the error itself."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and str(exc.strerror).startswith("disk full"):
        return str(exc.strerror)
    free = shutil.disk_usage(folder).free
    if isinstance(exc, RuntimeError) or exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full at {folder} ({_mb(free)} free; {getattr(exc, 'strerror', None) or exc})"
    return f"{exc.strerror or exc} at {folder}"


def seed_rngs(seed: int) -> None:
    """Seed every generator `rng_states` keeps, so two runs of one seed draw alike: timm's Mixup
    draws from numpy's global generator, which nothing else seeds (`manual_seed` seeds the
    devices' too)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_states(device: torch.device) -> dict[str, Any]:
    """Every random generator a step draws from (torch's, the device's for flips, crops and masks,
    numpy's for timm's Mixup, Python's for timm's RandomErasing), as tensors and plain values a
    weights-only load accepts."""
    version, keys, gauss = random.getstate()
    _, np_keys, pos, has_gauss, cached = np.random.get_state()
    return {"rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
            **({"rng_mps": torch.mps.get_rng_state()} if device.type == "mps" else {}),
            "rng_numpy": {"keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(pos),
                          "has_gauss": int(has_gauss), "cached": float(cached)},
            "rng_python": {"version": version, "keys": torch.tensor(keys, dtype=torch.int64), "gauss": gauss}}


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Put back what `rng_states` saved (checkpoints of earlier builds hold torch's alone)."""
    torch.set_rng_state(state["rng_cpu"])
    if device.type == "cuda" and state["rng_cuda"]:
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    if device.type == "mps" and "rng_mps" in state:
        torch.mps.set_rng_state(state["rng_mps"])
    if "rng_numpy" in state:
        n = state["rng_numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "rng_python" in state:
        p = state["rng_python"]
        random.setstate((p["version"], tuple(p["keys"].tolist()), p["gauss"]))


def read(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


class Checkpoints:
    """The checkpoints of one run, recorded as artifacts in the store."""

    def __init__(self, store: Store, run_id: int, keep: int = 2, token: str | None = None) -> None:
        """`token`: the worker's start; its checkpoints are placed and recorded only while it holds the run."""
        self.store, self.run_id, self.keep, self.token = store, run_id, keep, token

    def save(self, step: int, state: dict[str, Any]) -> Path | None:
        """Write the checkpoint of `step`; only the newest `keep` are kept. None: another start holds the run."""
        return self._write(KIND, f"step-{step:08d}.pt", step, state, self.keep)

    def save_best(self, step: int, state: dict[str, Any], metric: str, value: float) -> Path | None:
        """Write the weights of the best evaluation so far (`metric` = `value` at `step`) in place of
        the previous best: what export and `init: run:ID` take by default."""
        return self._write(BEST, f"best-{step:08d}.pt", step, state, 1, {"metric": metric, "value": value})

    def _write(self, kind: str, name: str, step: int, state: dict[str, Any], keep: int,
               meta: dict[str, Any] | None = None) -> Path | None:
        """Write `state` atomically as artifact `kind`, checking the disk first; drop all but the newest
        `keep`. The file takes its name only while the worker's start holds the run (None when not)."""
        path = paths.checkpoint_dir(self.run_id) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        written = path.with_name(path.name + ".written")  # its name once recorded (`Store.keep_file`)
        need = _nbytes(state)
        free = shutil.disk_usage(path.parent).free
        try:
            if free < need:
                raise OSError(errno.ENOSPC, f"disk full at {path.parent}: {_mb(free)} free, the checkpoint "
                                            f"needs about {_mb(need)}")
            write_atomic(written, state)
        except (OSError, RuntimeError) as exc:
            # torch's zip writer reports a short write (a disk filling up meanwhile) as a RuntimeError,
            # "unexpected pos N vs M", not as an OSError
            if isinstance(exc, RuntimeError) and "unexpected pos" not in str(exc):
                raise
            raise WorkbenchError(f"could not write the checkpoint of step {step}: {_why(exc, path.parent)}; free "
                                 f"some space, then resume the run (it continues from {self._kept()}, which is "
                                 f"intact)") from None
        try:
            old = self.store.keep_file(self.run_id, kind, path, lambda: os.replace(written, path), step=step,
                                       keep=keep, meta=meta, token=self.token)
        finally:
            written.unlink(missing_ok=True)  # not placed: another start holds the run, or the store failed
        if old is None:
            return None
        for art in old:
            self.store.abspath(art).unlink(missing_ok=True)
        return path

    def _kept(self) -> str:
        kept = [a.step for a in self.store.artifacts(self.run_id, KIND)]
        return f"step {kept[-1]}" if kept else "the start"

    def latest_readable(self, step: int | None = None) -> tuple[dict[str, Any], Artifact] | None:
        """The newest checkpoint that loads (the one at `step`, if given); unreadable or missing
        ones are reported and skipped."""
        for art in reversed(self.store.artifacts(self.run_id, KIND)):
            if step is not None and art.step != step:
                continue
            path = self.store.abspath(art)
            try:
                return read(path), art
            except FileNotFoundError:
                print(f"checkpoint {path} is missing; trying an older one", file=sys.stderr)
            except Exception as exc:  # a torn or corrupted file: fall back to the previous one
                print(f"checkpoint {path} is unreadable ({exc}); trying an older one", file=sys.stderr)
        return None


@dataclass
class Trained:
    """A run's model rebuilt through its method and loaded from one of its checkpoints."""

    run: Run
    method: Method
    model: torch.nn.Module
    data: DataInfo
    step: int
    weights: str = "last"  # which weights, said for a log or a model card: "best: val/top1 0.45 at step 390"
    metrics: dict[str, float] | None = None  # the validation metrics of these weights, where known (best)


def load_trained(store: Store, run_id: int, step: int | None = None, *, weights: str = "last") -> Trained:
    """The run's whole model (eval mode). `weights`: "last" (the newest readable checkpoint, or the
    one at `step`), "best" (its best evaluation's; the last where it kept none, as runs from before
    best checkpoints did), or "ema" (the moving average of the weights, runs trained with ema=true).
    Parent runs only shape the model here: its own checkpoint holds every weight."""
    from workbench.data import DataInfo
    from workbench.methods import get_method

    if weights not in WEIGHTS:
        raise WorkbenchError(f"{weights!r} is not a choice of weights; use one of {', '.join(WEIGHTS)}")
    run = store.get_run(run_id)
    state, art, label = _pick_weights(store, run_id, step, weights)
    cfg = config_from_dict(run.method, run.config, strict=False)
    if "data" in state:
        data = DataInfo(**state["data"])
    else:  # checkpoints from before the data description was stored in them
        from workbench.data.loading import load_data

        data = load_data(cfg, store, fill=False).info
    method = get_method(run.method)(cfg, data, parent_runs(store, run_id, weights=False))
    model = method.build()
    model.load_state_dict(state["ema" if weights == "ema" else "model"])
    return Trained(run, method, model.eval(), data, art.step, label, state.get("val"))


def _pick_weights(store: Store, run_id: int, step: int | None, weights: str) -> tuple[dict[str, Any], Artifact, str]:
    """(checkpoint state, its artifact, a label saying which weights) for `load_trained`."""
    if weights == "best" and step is None:
        for art in reversed(store.artifacts(run_id, BEST)):
            try:
                state = read(store.abspath(art))
            except Exception as exc:  # missing or torn: the last checkpoint serves instead, said below
                print(f"best checkpoint {store.abspath(art)} cannot be read ({exc}); using the last", file=sys.stderr)
                continue
            return state, art, f"best: {art.meta['metric']} {art.meta['value']:.4g} at step {art.step}"
    found = Checkpoints(store, run_id).latest_readable(step)
    if found is None:
        which = f"at step {step}" if step is not None else "left (deleted?)"
        raise WorkbenchError(f"run {run_id} has no readable checkpoint {which}; pick another checkpoint or "
                             f"resume the run to write one")
    state, art = found
    if weights == "ema" and "ema" not in state:
        raise WorkbenchError(f"run {run_id} has no moving average of its weights (it trained with ema=false); "
                             f"use its best or last weights")
    if weights == "best" and step is None:
        return state, art, f"last: step {art.step} (the run kept no best checkpoint)"
    return state, art, f"{'ema' if weights == 'ema' else 'last'}: step {art.step}"


def parent_runs(store: Store, run_id: int, *, weights: bool) -> dict[str, ParentRun]:
    """Each parent of a run: its config, a loader of its newest readable checkpoint's weights
    (`weights=False`: a loader of None, the architecture alone), and its own parents, whose
    weights are never needed (they are inside the parent's checkpoint)."""
    from workbench.methods.base import ParentRun

    parents = {}
    for role, run in store.parents(run_id).items():
        def load_state(parent_id: int = run.id) -> dict[str, torch.Tensor]:
            found = Checkpoints(store, parent_id).latest_readable()
            if found is None:
                raise WorkbenchError(f"parent run {parent_id} has no readable checkpoint; "
                                     f"its files may have been deleted — pick another parent run")
            return found[0]["model"]
        parents[role] = ParentRun(run.id, run.method, config_from_dict(run.method, run.config, strict=False),
                                  load_state if weights else lambda: None, parent_runs(store, run.id, weights=False))
    return parents


def data_fingerprint(data: DataBundle) -> str:
    """What a checkpoint's images were, as a short hash: the dataset's classes, per-channel mean and
    std, and split sizes (an image added or removed changes a size; an edited one, almost surely the
    statistics). Read from the data as loaded, so the built-in, folder and CIFAR datasets alike. A
    folder's statistics come from ~500 of its images, and images moved between classes keep them:
    its files' own fingerprint (`DataBundle.files`) is kept beside this one."""
    facts = {**dataclasses.asdict(data.info), "train": len(data.train), "val": len(data.val)}
    return hashlib.sha1(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]


def classes_changed(run_id: int, dataset: str, step: int, was: list[str], now: list[str]) -> str:
    """Why a run cannot resume on its dataset's classes as they are now, and the ways on."""
    gone, new = [c for c in was if c not in now], [c for c in now if c not in was]
    change = "; ".join([f"gone: {', '.join(gone)}"] * bool(gone) + [f"new: {', '.join(new)}"] * bool(new))
    return (f"run {run_id} cannot resume: dataset {dataset!r} has other classes than its checkpoint of step {step} "
            f"was trained on ({change or 'the same classes in another order'}); its model's outputs stand for "
            f"{', '.join(was)} in that order, so going on would mislabel images. Restore the class folders as they "
            f"were" + (f" ({', '.join(gone)})" if gone else "") + " and resume, or start a new run on the data as it "
            f"is now (`workbench resume {run_id} --from-scratch` starts this one again from step 0)")
